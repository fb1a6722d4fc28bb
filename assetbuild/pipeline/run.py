"""A build, start to end: plan, realise what changed, place it, publish.

This is orchestration only. Where jobs run is the executor's business (:mod:`.executor`), how
a planned item becomes an outcome is the realise path's (:mod:`.realise`), and what is written
after the assets is publishing's (:mod:`.publish`). A failing asset never stops the others.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import backends
from ..errors import UsageError
from ..fsutil import place_file, remove_temps
from ..manifest.model import Manifest, sidecar_file
from ..records import Processed
from . import publish
from .cache import Cache
from .executor import Executor, Lazy, LocalExecutor
from .lock import Lockfile
from .outcome import Action, Failure, Outcome, Status, Step
from .plan import Item, Plan, billed_characters, consult, make_plan, recover
from .realise import realise
from .remote import Remote, RemoteSpec
from .state import State, exclusive, paths_of

Event = Callable[[str, dict[str, Any]], None]


@dataclass
class Options:
    cache_dir: Path | None = None
    jobs: int = 0  # 0: one per core
    copy: bool = False
    locked: bool = False
    # For long-running callers (`watch`, `serve`): the executor they own, used instead of one
    # per build. The build neither shuts it down nor unloads its models, even when interrupted.
    executor: Executor | None = None
    commercial: bool = False  # refuse to build when an asset would come from a non-commercial model
    max_characters: int | None = None  # refuse a build that would bill more characters than this
    remote: RemoteSpec | None = None  # the team's remote cache (pipeline/remote.py)
    cluster: str | None = None  # run on Ray: "local" (a Ray for this build) or a cluster's address


@dataclass
class BuildResult:
    plan: Plan
    processed: int = 0
    removed: int = 0
    failures: list[Failure] = field(default_factory=list)
    locked_mismatch: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    generated_ids: set[str] = field(default_factory=set)
    processed_ids: set[str] = field(default_factory=set)  # every asset the process stage ran for
    fetched_ids: set[str] = field(default_factory=set)  # assets whose audio came from the remote cache
    fetched_bytes: int = 0
    uploaded: int = 0  # cache entries uploaded to the remote
    warnings: list[str] = field(default_factory=list)  # the remote cache's, one line each
    mixed: list[str] = field(default_factory=list)  # sequences mixed by this build

    @property
    def generated(self) -> int:
        return len(self.generated_ids)

    @property
    def reused(self) -> int:
        """Assets ready without generating (fresh, restored or only re-processed)."""
        failed = {f.id for f in self.failures if f.stage.of_asset}
        return len(self.plan.items) - len(self.generated_ids | failed)

    def summary(self) -> dict[str, Any]:
        """What ``build --json`` prints (docs/ci.md)."""
        return {
            "generated": self.generated,
            "processed": self.processed,
            "reused": self.reused,
            "failed": len(self.failures),
            "sequences": len(self.plan.manifest.sequences),
            "mixed": len(self.mixed),
            "removed": self.removed,
            "assets": len(self.plan.items),
            "profile": self.plan.manifest.profile,
            "output": str(self.plan.manifest.output_dir),
            "seconds": round(self.seconds, 3),
            "failures": [f.to_json() for f in self.failures],
            "billed_characters": billed_characters(i for i in self.plan.items if i.id in self.generated_ids),
            "fetched": len(self.fetched_ids),
            "fetched_bytes": self.fetched_bytes,
            "uploaded": self.uploaded,
            "warnings": list(self.warnings),
        }


def plan_of(manifest: Manifest, cache: Cache, lock: Lockfile, state: State) -> Plan:
    known = state.keys if state.manifest == manifest.digest else None
    return make_plan(manifest, cache, lock, state.outputs, known, state.fingerprints)


def plan_build(manifest: Manifest, cache_dir: Path | None = None, remote: Remote | None = None) -> Plan:
    """The plan a build would run, without running it (``assetbuild plan``)."""
    paths = paths_of(manifest, cache_dir)
    state = State.read(paths.state)
    plan = plan_of(manifest, Cache(paths.cache), Lockfile(paths.lock, state), state)
    return consult_remote(plan, remote) if remote is not None else plan


def consult_remote(plan: Plan, remote: Remote) -> Plan:
    """Ask the remote cache, in bulk, for what the plan would make here (docs/scale.md)."""
    work = plan.with_action(Action.PROCESS, Action.GENERATE)
    keys = [i.process_key for i in work] + [i.generate_key for i in work if i.action == Action.GENERATE]
    return consult(plan, remote.which(keys)) if keys else plan


def build(manifest: Manifest, options: Options, on_event: Event = lambda kind, data: None) -> BuildResult:
    start = time.perf_counter()
    paths = paths_of(manifest, options.cache_dir)
    with exclusive(manifest.root / ".assetbuild"):
        cache = Cache(paths.cache)
        state = State.read(paths.state)
        lock = Lockfile(paths.lock, state)
        plan = plan_of(manifest, cache, lock, state)
        result = BuildResult(plan)
        check_licences(plan, options)
        if options.locked:
            result.locked_mismatch = locked_mismatch(plan, lock)
            if result.locked_mismatch:
                result.seconds = time.perf_counter() - start
                return result
        p = publish.Publication(manifest, plan, paths, state, lock, {})
        if publish.is_noop(p):
            # Nothing to do, and the metadata was written from these very manifest bytes.
            result.seconds = time.perf_counter() - start
            on_event("finish", result.summary())
            return result
        p.built = publish.previous_entries(manifest, state)
        plan = recover(plan, p.built, cache)
        remote = Remote(options.remote, warn=lambda m: on_event("warning", {"message": m})) if (
            options.remote and plan.work) else None
        try:
            if remote is not None:
                plan = consult_remote(plan, remote)
            p.plan = result.plan = plan
            refused = locked_takes(plan, lock) if options.locked else []
            work = [i for i in plan.work if i.id not in {f.id for f in refused}]
            budget = check_billing(plan, options, {f.id for f in refused})
            on_event("plan", plan.totals())
            for failure in refused:
                p.failures.append(failure)
                on_event("failed", {"id": failure.id, "error": failure.error})
            if work:
                cache.clean_tmp()
                remove_temps(manifest.output_dir)
                _realise(work, plan, cache, options, p, result, on_event, remote, _guard(options, lock, budget))
            if remote is not None:
                remote.finish()  # the uploads under way
                _adopt(remote, plan, cache, p, options, on_event)
        finally:
            if remote is not None:
                remote.close()
        if remote is not None:
            result.fetched_bytes, result.uploaded = remote.fetched_bytes, remote.uploaded
            result.warnings = list(remote.warnings)
        publish.publish(p)
        result.failures, result.removed, result.mixed = p.failures, p.removed, p.mixed
    result.seconds = time.perf_counter() - start
    on_event("finish", result.summary())
    return result


def check_licences(plan: Plan, options: Options) -> None:
    """--commercial: refuse before anything runs, naming the entries."""
    if options.commercial:
        bad = [i for i in plan.items if not (i.licence or {}).get("commercial")]
        if bad:
            names = ", ".join(f"{i.id} ({(i.licence or {}).get('name', 'unknown')})" for i in bad[:10])
            more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise UsageError(f"--commercial: {len(bad)} assets would come from models not licensed for commercial "
                             f"use: {names}{more}")


def check_billing(plan: Plan, options: Options, refused: AbstractSet[str] = frozenset()) -> int | None:
    """--max-characters: refuse before anything is generated (what the remote cache has is not,
    nor what --locked refused). Returns the characters left for fall-backs, or None."""
    if options.max_characters is None:
        return None
    billed = billed_characters(i for i in plan.with_action(Action.GENERATE) if i.id not in refused)
    if billed > options.max_characters:
        raise UsageError(f"--max-characters {options.max_characters}: this build would bill {billed} characters "
                         "(see `assetbuild plan`)")
    return options.max_characters - billed


def locked_mismatch(plan: Plan, lock: Lockfile) -> list[dict[str, Any]]:
    """--locked: how the plan differs from the lockfile (same assets, same keys). Assets whose
    keys match but whose cache entries are gone (a cold CI cache) are built again: no mismatch."""
    return [
        {"id": i.id, "action": i.action.value if i.action in (Action.GENERATE, Action.PROCESS) else "rebuild",
         "reasons": i.reasons if i.id in lock.brief else ["not in the lockfile"]}
        for i in plan.items
        if lock.brief.get(i.id, {}).get("process") != i.process_key
    ] + [{"id": aid, "action": "remove", "reasons": ["no longer in the manifest"]} for aid in plan.removed]


LOCKED_TAKE = "locked take not in any cache: pull it (`assetbuild cache pull`) or rebuild without --locked"


def locked_takes(plan: Plan, lock: Lockfile) -> list[Failure]:
    """--locked: the takes the lockfile records that would have to be generated again by a
    backend that does not reproduce them (neither cache has them). They fail, naming the
    entry; an approved take is never replaced by a new one."""
    return [Failure(i.id, Step.GENERATE, LOCKED_TAKE) for i in plan.with_action(Action.GENERATE)
            if i.id in lock.brief and not backends.get(i.asset.backend).deterministic]


def _guard(options: Options, lock: Lockfile, budget: int | None) -> Callable[[Item], str | None]:
    """Whether an item the plan meant to fetch or place may be generated after all (its cache
    entry turned out missing or corrupt): not a locked take of a backend that does not
    reproduce it, nor past what --max-characters leaves."""
    left = [budget]

    def may_generate(item: Item) -> str | None:
        cls = backends.get(item.asset.backend)
        if options.locked and item.id in lock.brief and not cls.deterministic:
            return LOCKED_TAKE
        if left[0] is not None and cls.billed:
            cost = len(item.request.text or "")
            if cost > left[0]:
                return (f"--max-characters {options.max_characters}: generating it here after all would bill "
                        f"{cost} more characters than are left")
            left[0] -= cost
        return None

    return may_generate


def _adopt(remote: Remote, plan: Plan, cache: Cache, p: publish.Publication, options: Options,
           on_event: Event) -> None:
    """Another machine uploaded a different take of an asset first (a backend that does not
    reproduce its takes): the team cache keeps the first, and so does this build, so that
    every machine ends with the same take."""
    takes = {i.process_key: i for i in plan.items}
    for stage, key in list(remote.conflicts):
        item = takes.get(key)
        if stage != "process" or item is None or item.id not in p.built:
            continue
        if remote.fetch(key, cache) != "process":
            continue
        entry = cache.get_entry("process", key)
        if entry is None:
            continue
        processed = Processed.from_json(entry["record"])
        files = {"main": cache.blob_path(processed.sha256)} | {n: cache.blob_path(sha)
                                                               for n, sha in processed.sidecars.items()}
        outcome = Outcome(item.id, Status.FETCHED, processed, files, fetched=True)
        if options.locked or _place(outcome, item, p.manifest.output_dir, options.copy) is not None:
            continue
        p.built[item.id] = processed
        remote.warn(f"{item.id}: another machine put a different take in the remote cache first; using that one "
                    "(the team cache keeps one take per key)")


def _realise(work: list[Item], plan: Plan, cache: Cache, options: Options, p: publish.Publication,
             result: BuildResult, on_event: Event, remote: Remote | None,
             may_generate: Callable[[Item], str | None]) -> None:
    """Realise ``work`` and place each outcome in the output folder as it arrives."""
    owned = options.executor is None
    executor = options.executor or _executor(options, len(work), remote)
    items = {i.id: i for i in work}
    try:
        # closing(): the jobs not yet started are cancelled however the loop ends.
        with closing(realise(work, cache, executor, plan.manifest.sample_rate, remote=remote,
                             may_generate=may_generate)) as outcomes:
            for outcome in outcomes:
                item = items[outcome.id]
                if _take(outcome, item, options, p, result, on_event) and remote is not None:
                    # What this machine made (and placed, and --locked accepted), for the others.
                    if outcome.generated:
                        remote.submit_push("generate", item.generate_key, cache)
                    if outcome.status != Status.FETCHED:
                        remote.submit_push("process", item.process_key, cache)
    except BaseException:
        # Ctrl-C or a crash: stop now. Finished jobs are already in the cache; running ones
        # leave only temp files, which the next build removes.
        if owned:
            executor.shutdown(kill=True)
        raise
    if owned:
        executor.shutdown()


def _take(outcome: Outcome, item: Item, options: Options, p: publish.Publication, result: BuildResult,
          on_event: Event) -> bool:
    """Count an outcome, place its files, report it; whether it is in the output now."""
    if outcome.generated:
        result.generated_ids.add(outcome.id)
    if outcome.fetched and outcome.ok:
        result.fetched_ids.add(outcome.id)
    if outcome.processed is not None and outcome.status not in (Status.PLACED, Status.FETCHED):
        result.processed += 1
        result.processed_ids.add(outcome.id)
    failure = outcome.failure or (_locked_take(outcome, item, p) if options.locked else None) or _place(
        outcome, item, p.manifest.output_dir, options.copy)
    if failure is not None:
        p.failures.append(failure)
        on_event("failed", {"id": failure.id, "error": failure.error})
        return False
    assert outcome.processed is not None
    p.built[outcome.id] = outcome.processed
    p.statuses[outcome.id] = outcome.status
    on_event("asset", outcome.event(item.asset.kind, item.file))
    return True


def _locked_take(outcome: Outcome, item: Item, p: publish.Publication) -> Failure | None:
    """--locked: what was made must be the take the lockfile records, byte for byte. A take
    that is not is also dropped from the local cache, so that the next build looks for the
    locked one (in the remote cache) instead of finding this one under the same key."""
    locked = (p.lock.entries.get(item.id) or {}).get("sha256")
    made = outcome.processed.sha256 if outcome.processed else None
    if locked is None or made == locked:
        return None
    cache = Cache(p.paths.cache)
    cache.drop("process", item.process_key)
    if outcome.generated:
        cache.drop("generate", item.generate_key)
    return Failure(item.id, Step.PROCESS, f"made again, it differs from the locked take (sha256 {str(made)[:12]} "
                                          f"instead of {locked[:12]}); the previous output is kept")


def _place(outcome: Outcome, item: Item, output_dir: Path, copy: bool) -> Failure | None:
    """Put an outcome's files (its main file and each sidecar) at their paths in the output."""
    dest = output_dir / item.file
    try:
        for name, blob in outcome.files.items():
            if name != "main":
                place_file(blob, output_dir / sidecar_file(item.file, name), copy)
        place_file(outcome.files["main"], dest, copy)
    except OSError as exc:
        return Failure(item.id, Step.PLACE, f"cannot write {dest}: {exc.strerror or exc}")
    return None


def _executor(options: Options, jobs: int, remote: Remote | None) -> Executor:
    """The executor a build runs its ``jobs`` in when its caller gave none. A Ray cluster is
    joined when the first job needs it (a build that only fetches and places starts no Ray).
    Its workers may upload to the remote cache themselves, except under --locked (the driver
    checks every take first) or when the remote stopped working for this build."""
    if options.cluster:
        from .cluster import RayExecutor

        address = None if options.cluster == "local" else options.cluster
        spec = options.remote if remote is not None and not remote.down else None
        if spec is not None and remote is not None and (options.locked or remote.write_down):
            spec = dataclasses.replace(spec, write=False)
        return Lazy(lambda: RayExecutor(address, options.jobs, spec), options.jobs or _cores())
    return LocalExecutor(min(options.jobs or _cores(), jobs))


def _cores() -> int:
    import os

    return os.cpu_count() or 1

"""The scheduler: run a plan's stages, place outputs, write the lockfile and metadata.

Generate jobs are grouped by backend and model. Backends that declare ``parallel = True``
(cheap CPU models such as the embedded ones) run in a process pool sized by ``jobs``; heavy
ones run in one background thread of this process, group after group, so only one heavy
model is resident at a time (load, run all its batches, unload). Processing always runs in the
pool. A failing asset never stops the others.
"""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .. import backends
from ..errors import UsageError
from ..export.metadata import (REPORT, SIDECARS, asset_record, assetpack_doc, dump_assetpack, record_key, sidecar_file,
                               sidecar_names)
from ..manifest.model import Manifest
from . import keys
from .cache import Cache
from .lock import Lockfile, brief_of, read_json, render_lock, signatures, stat_signature, unchanged, write_if_changed
from .plan import FRESH, GENERATE, PLACE, PROCESS, Item, Plan, billed_characters, complete, make_plan
from .worker import CacheMiss, generate_batch, process_job_for, unload
from .worker import process as process_job

Event = Callable[[str, dict[str, Any]], None]


@dataclass
class Options:
    cache_dir: Path | None = None
    jobs: int = 0  # 0: one per core
    copy: bool = False
    locked: bool = False
    # For long-running callers (`assetbuild watch`): a process pool the caller owns (see
    # new_pool), used instead of starting one per build; the build neither shuts it down nor
    # kills its workers, even when interrupted. ``jobs`` should be its size.
    executor: Executor | None = None
    keep_models: bool = False  # leave heavy models loaded after the build (the caller unloads)
    commercial: bool = False  # refuse to build when an asset would come from a non-commercial model
    max_characters: int | None = None  # refuse a build that would bill more characters than this


@dataclass
class BuildResult:
    plan: Plan
    processed: int = 0
    removed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    locked_mismatch: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    generated_ids: set[str] = field(default_factory=set)
    processed_ids: set[str] = field(default_factory=set)  # every asset the process stage ran for
    mixed: list[str] = field(default_factory=list)  # sequences mixed by this build

    @property
    def generated(self) -> int:
        return len(self.generated_ids)

    @property
    def reused(self) -> int:
        """Assets ready without generating (fresh, restored or only re-processed)."""
        failed = {f["id"] for f in self.failures if not f.get("stage")}
        return len(self.plan.items) - len(self.generated_ids | failed)

    def summary(self) -> dict[str, Any]:
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
            "failures": self.failures,
            "billed_characters": billed_characters([i for i in self.plan.items if i.asset.id in self.generated_ids]),
        }


def project_paths(manifest: Manifest, cache_dir: Path | None) -> tuple[Path, Path, Path]:
    """(cache root, lockfile, state file) for a manifest, or for the profile it was loaded with.

    Every profile shares the cache; each has its own lockfile (``assetbuild.NAME.lock``, to be
    committed like the main one) and state file, since its process keys and outputs differ.
    """
    state_dir = manifest.root / ".assetbuild"
    env = os.environ.get("ASSETBUILD_CACHE")
    cache = Path(cache_dir) if cache_dir else Path(env) if env else state_dir / "cache"
    if manifest.preview:  # a scratch build of one sequence: nothing of it is committed
        return cache, manifest.output_dir / "preview.lock", manifest.output_dir / ".state.json"
    return cache, lock_path(manifest.root, manifest.profile), state_dir / (
        f"state.{manifest.profile}.json" if manifest.profile else "state.json")


def lock_path(root: Path, profile: str | None = None) -> Path:
    return root / (f"assetbuild.{profile}.lock" if profile else "assetbuild.lock")


def plan_build(manifest: Manifest, cache_dir: Path | None = None) -> Plan:
    cache_root, lock_path, state_path = project_paths(manifest, cache_dir)
    state = read_json(state_path) or {}
    return make_plan(manifest, Cache(cache_root), Lockfile(lock_path, state), state.get("outputs", {}), state)


def build(manifest: Manifest, options: Options, on_event: Event = lambda kind, data: None) -> BuildResult:
    start = time.perf_counter()
    cache_root, lock_path, state_path = project_paths(manifest, options.cache_dir)
    with _exclusive(manifest.root / ".assetbuild"):
        cache = Cache(cache_root)
        state = read_json(state_path) or {}
        lock = Lockfile(lock_path, state)
        outputs_state: dict[str, Any] = dict(state.get("outputs", {}))
        plan = make_plan(manifest, cache, lock, outputs_state, state)
        result = BuildResult(plan)
        _check_terms(plan, options)
        if options.locked:
            # The lockfile must already describe this build: same assets, same keys. Assets whose
            # keys match but whose cache entries are gone (a cold CI cache) are built again.
            result.locked_mismatch = [
                {"id": i.asset.id, "action": i.action if i.action in (GENERATE, PROCESS) else "rebuild",
                 "reasons": i.reasons if i.asset.id in lock.brief else ["not in the lockfile"]}
                for i in plan.items
                if lock.brief.get(i.asset.id, {}).get("process") != i.process_key
            ] + [{"id": aid, "action": "remove", "reasons": ["no longer in the manifest"]} for aid in plan.removed]
            if result.locked_mismatch:
                result.seconds = time.perf_counter() - start
                return result
        pack_path = manifest.output_dir / "assetpack.json"
        if (not plan.removed and all(i.action == FRESH for i in plan.items)
                and state.get("manifest") == manifest.digest and state.get("assetpack") == stat_signature(pack_path)
                and state.get("fingerprints") == plan.fingerprints  # same code and backends as then
                and _exports_fresh(manifest, state) and _sequences_fresh(manifest, state)
                and (manifest.output_dir / REPORT).is_file()):
            # Nothing to do, and the metadata was written from these very manifest bytes.
            result.seconds = time.perf_counter() - start
            on_event("finish", result.summary())
            return result
        records = _previous_records(manifest, state)
        for item in plan.items:
            if item.action == FRESH and item.asset.id not in records:
                # Its metadata is gone (assetpack.json edited or deleted): take it from the cache.
                entry = cache.get_entry("process", item.process_key)
                if entry is not None:
                    records[item.asset.id] = entry["record"]
                else:
                    item.action = PROCESS if cache.has_entry("generate", item.generate_key) else GENERATE
                    item.reasons = ["metadata missing"]
                    complete(item, manifest.sample_rate)
        on_event("plan", plan.totals())
        if any(i.action != FRESH for i in plan.items):
            cache.clean_tmp()
            _clean_output_temps(manifest.output_dir)
            _Runner(manifest, options, cache, plan, result, on_event).run(records)
        _write_results(manifest, plan, result, records, lock, outputs_state, lock_path, state_path,
                       state.get("exports") or {}, state.get("sequences") or {})
    result.seconds = time.perf_counter() - start
    on_event("finish", result.summary())
    return result


def _check_terms(plan: Plan, options: Options) -> None:
    """--commercial and --max-characters: refuse before anything runs, naming the entries."""
    if options.commercial:
        bad = [i for i in plan.items if not (i.licence or {}).get("commercial")]
        if bad:
            names = ", ".join(f"{i.asset.id} ({(i.licence or {}).get('name', 'unknown')})" for i in bad[:10])
            more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise UsageError(f"--commercial: {len(bad)} assets would come from models not licensed for commercial "
                             f"use: {names}{more}")
    if options.max_characters is None:
        return
    billed = plan.totals()["billed_characters"]
    if billed > options.max_characters:
        raise UsageError(f"--max-characters {options.max_characters}: this build would bill {billed} characters "
                         "(see `assetbuild plan`)")


def _write_results(manifest: Manifest, plan: Plan, result: BuildResult, records: dict[str, dict[str, Any]],
                   lock: Lockfile, outputs_state: dict[str, Any], lock_path: Path, state_path: Path,
                   old_exports: dict[str, Any], old_sequences: dict[str, Any]) -> None:
    """Record what this build left on disk: lockfile, assetpack.json and the state file.

    Failed assets keep their previous lock entry and metadata; removed assets lose their output.
    """
    pack_path = manifest.output_dir / "assetpack.json"
    new_lock = dict(lock.entries)
    failed = {f["id"] for f in result.failures}
    for item in plan.items:
        aid = item.asset.id
        if aid in failed:
            continue
        built = records.get(aid)
        if built is None:
            continue
        out = manifest.output_dir
        names = sidecar_names(built)
        keep = {item.file, *(sidecar_file(item.file, n) for n in names)}
        old = lock.entries.get(aid)
        if old and old.get("file") != item.file:
            _unlink_output(out, old["file"], keep)
        before = outputs_state.get(aid) or {}
        for gone in set(before.get("sidecars", {})) - set(names):  # e.g. a format dropped
            if before.get("file") == item.file:
                _unlink(out / sidecar_file(item.file, gone))
        new_lock[aid] = _lock_entry(item, built, old)
        outputs_state[aid] = {"file": item.file, "sig": stat_signature(out / item.file)}
        if names:
            outputs_state[aid]["sidecars"] = {name: stat_signature(out / sidecar_file(item.file, name))
                                              for name in names}
    for aid, entry in plan.removed.items():
        _unlink_output(manifest.output_dir, entry.get("file", ""))
        new_lock.pop(aid, None)
        outputs_state.pop(aid, None)
        records.pop(aid, None)
        result.removed += 1
    current = {i.asset.id: i for i in plan.items}
    full = {a: {**asset_record(current[a].asset, current[a].file, r), "licence": current[a].licence}
            for a, r in records.items() if a in current}
    seq_records, seq_state = [], {}
    if manifest.sequences or old_sequences:
        from . import sequences

        seq_records, seq_state = sequences.build_all(
            manifest, full, old_sequences,
            lambda sid, error: result.failures.append({"id": sid, "error": error, "stage": "sequence"}))
        result.mixed = [sid for sid, st in seq_state.items() if st is not old_sequences.get(sid)]
    doc = assetpack_doc(manifest, list(full.values()), seq_records)
    write_if_changed(pack_path, dump_assetpack(doc))
    write_if_changed(lock_path, render_lock(new_lock))
    exports = {}
    if manifest.engines:
        from ..export import engines

        view = engines.Pack(manifest.output_dir, doc, manifest.prefixes)
        for name in manifest.engines:
            try:
                written = engines.write(name, view)
            except UsageError as exc:  # e.g. two assets that make the same engine-side name
                result.failures.append({"id": f"{name} export", "error": str(exc), "stage": "export"})
                continue
            exports[name] = signatures(manifest.output_dir, [p.relative_to(manifest.output_dir).as_posix()
                                                             for p in written])
    for name in set(old_exports) - set(manifest.engines):  # taken out of [export] engines
        shutil.rmtree(manifest.output_dir / name, ignore_errors=True)
    _write_report(manifest, doc, result)
    new_state = {"version": 1, "outputs": outputs_state, "assetpack": stat_signature(pack_path),
                 "manifest": manifest.digest if not result.failures else "",
                 "lock": stat_signature(lock_path), "keys": brief_of(new_lock), "exports": exports,
                 "fingerprints": plan.fingerprints,
                 "sequences": seq_state}
    write_if_changed(state_path, _json(new_state))


def _write_report(manifest: Manifest, doc: dict[str, Any], result: BuildResult) -> None:
    """``<output>/report.html``: every asset with its status in this build (docs/report.md)."""
    from ..export import report

    failed = {f["id"] for f in result.failures}
    status = {aid: "processed" for aid in result.processed_ids}
    status.update((aid, "generated") for aid in result.generated_ids)
    status.update((aid, "failed") for aid in failed)
    report.write(manifest.output_dir, doc, status, result.failures,
                 manifest.root / ".assetbuild" / "waveforms")


def _sequences_fresh(manifest: Manifest, state: dict[str, Any]) -> bool:
    """Every sequence was mixed by the last build (whose manifest and assets these are) and its
    files are still the ones it wrote."""
    done = state.get("sequences") or {}
    return sorted(done) == sorted(s.id for s in manifest.sequences) and all(
        unchanged(manifest.output_dir, d["files"]) for d in done.values())


def _exports_fresh(manifest: Manifest, state: dict[str, Any]) -> bool:
    """The engine exports the manifest asks for are the files the last build wrote."""
    exports = state.get("exports") or {}
    return sorted(exports) == sorted(manifest.engines) and all(
        unchanged(manifest.output_dir, files) for files in exports.values())


def _lock_entry(item: Item, built: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    if old and old.get("process") == item.process_key and "inputs" in old:
        inputs = old["inputs"]
    else:
        inputs = {"generate": keys.input_digests(item.generate_inputs),
                  "process": keys.input_digests(item.process_inputs)}
    return {
        "kind": item.asset.kind,
        "backend": item.asset.backend,
        "generate": item.generate_key,
        "process": item.process_key,
        "file": item.file,
        "sha256": built["sha256"],
        "duration": built["duration"],
        "loudness": built["loudness"],
        "inputs": inputs,
    }


def _previous_records(manifest: Manifest, state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-asset records of the last assetpack.json, if it is still the file we wrote."""
    path = manifest.output_dir / "assetpack.json"
    if not state.get("assetpack") or state["assetpack"] != stat_signature(path):
        return {}
    doc = read_json(path) or {}
    return {record_key(r): r for r in doc.get("assets", []) if isinstance(r, dict) and "id" in r}


class _Runner:
    def __init__(self, manifest: Manifest, options: Options, cache: Cache, plan: Plan, result: BuildResult,
                 on_event: Event):
        self.manifest, self.options, self.cache, self.plan = manifest, options, cache, plan
        self.result, self.on_event = result, on_event
        self.items = {i.asset.id: i for i in plan.items}
        self.pending: dict[Future, tuple[str, Any]] = {}
        # Finished futures arrive here (O(1) per job, however many are pending).
        self.done: queue.SimpleQueue[Future] = queue.SimpleQueue()
        self.jobs = options.jobs or os.cpu_count() or 1
        self.regenerated: set[str] = set()
        self.generating: dict[str, list[Item]] = {}  # generate key -> items waiting for it

    # -- entry points ----------------------------------------------------------------------
    def run(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records
        work = [i for i in self.plan.items if i.action != FRESH]
        heavy_items = [i for i in work if i.action == GENERATE and not backends.get(i.asset.backend).parallel]
        self.workers = max(1, min(self.jobs, len(work)))
        self._pool: ProcessPoolExecutor | None = None
        shared = self.options.executor
        try:
            with ThreadPoolExecutor(1) as heavy:
                self.heavy = heavy
                for item in work:
                    if item.action == PLACE:
                        self.place(item)
                    elif item.action == PROCESS:
                        self.submit_process(item)
                self.submit_generate([i for i in work if i.action == GENERATE and i not in heavy_items],
                                     heavy=False)
                self.submit_generate(heavy_items, heavy=True)
                while self.pending:
                    try:  # a timed get, because an untimed one cannot be interrupted by Ctrl-C
                        self.complete(self.done.get(timeout=0.5))
                    except queue.Empty:
                        pass
                if not self.options.keep_models:
                    heavy.submit(_unload_all).result()
        except BaseException:
            # Ctrl-C or a crash here: stop now. Finished jobs are already in the cache; running
            # ones leave only temp files, which the next build removes. A caller's pool is the
            # caller's to stop: only drop this build's queued jobs.
            for future in list(self.pending) if shared is not None else []:
                future.cancel()
            if self._pool is not None:
                for proc in list(getattr(self._pool, "_processes", {}).values()):
                    proc.terminate()
            raise
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def pool(self) -> ProcessPoolExecutor:
        """Started on first use: a build that only places cached files needs no workers."""
        if self.options.executor is not None:
            return self.options.executor  # type: ignore[return-value]
        if self._pool is None:
            self._pool = new_pool(self.workers)
        return self._pool

    # -- stages ----------------------------------------------------------------------------
    def submit_generate(self, items: list[Item], heavy: bool) -> None:
        groups: dict[tuple[str, str], list[Item]] = {}
        for item in items:
            # Takes made by pitch/gain variation share one generated sound: generate it once.
            if item.generate_key in self.generating:
                self.generating[item.generate_key].append(item)
                continue
            self.generating[item.generate_key] = [item]
            # A batch shares one model and one set of settings (a voice preset, sampling).
            r = item.request
            model = keys.canonical([item.generate_inputs["backend version"], r.kind, r.locale, r.emotion,
                                    r.settings]).decode()
            groups.setdefault((item.asset.backend, model), []).append(item)
        root = str(self.cache.root)
        for (name, _), group in sorted(groups.items()):
            cls = backends.get(name)
            # Parallel backends: spread a group over the workers; heavy ones: full batches of
            # similar length, since a batch generates to its longest item.
            if heavy:
                size = min(cls.max_batch, group[0].request.settings.get("batch_size") or cls.max_batch)
                group = sorted(group, key=_expected_length)
            else:
                size = max(1, min(cls.max_batch, math.ceil(len(group) / self.jobs)))
            for start in range(0, len(group), size):
                batch = group[start:start + size]
                jobs = [(i.generate_key, i.request) for i in batch]
                if heavy:
                    future = self.heavy.submit(_heavy_batch, root, name, jobs)
                else:
                    future = self.pool.submit(generate_batch, root, name, jobs)
                self.track(future, ("generate", [i.asset.id for i in batch]))

    def submit_process(self, item: Item) -> None:
        job = process_job_for(item.asset, item.generate_key, item.process_key, self.manifest.sample_rate)
        self.track(self.pool.submit(process_job, str(self.cache.root), job), ("process", item.asset.id))

    def track(self, future: Future, what: tuple[str, Any]) -> None:
        self.pending[future] = what
        future.add_done_callback(self.done.put)

    def complete(self, future: Future) -> None:
        stage, what = self.pending.pop(future)
        if stage == "generate":
            try:
                outcomes = future.result()
            except Exception as exc:  # the worker died (e.g. killed): fail the batch, keep going
                outcomes = [(aid, f"worker failed: {exc}") for aid in what]
            for aid, error in outcomes:
                leader = self.items[aid]
                for item in self.generating.pop(leader.generate_key, [leader]):
                    if error:
                        self.fail(item.asset.id, error)
                        continue
                    if item is leader:
                        self.result.generated_ids.add(aid)
                    else:
                        item.action = PROCESS
                    self.submit_process(item)
            return
        item = self.items[what]
        try:
            record = future.result()
        except CacheMiss:
            self.regenerate(item)
            return
        except Exception as exc:
            self.fail(what, _one_line(exc))
            return
        self.result.processed += 1
        self.result.processed_ids.add(what)
        self.finish(item, record, "generated" if item.action == GENERATE else "processed")

    def place(self, item: Item) -> None:
        entry = self.cache.get_entry("process", item.process_key)
        blob = self.cache.verified_blob(entry["file"]) if entry else None
        if blob is None:  # corrupt or vanished: never export it, rebuild instead
            self.rebuild(item)
            return
        self.finish(item, entry["record"], "placed", blob)

    def rebuild(self, item: Item) -> None:
        if item.action == PLACE and self.cache.has_entry("generate", item.generate_key):
            item.action = PROCESS
            self.submit_process(item)
        else:
            self.regenerate(item)

    def regenerate(self, item: Item) -> None:
        if item.asset.id in self.regenerated:  # once only: the fresh entry is unreadable too
            self.fail(item.asset.id, "generated audio could not be read back from the cache")
            return
        self.regenerated.add(item.asset.id)
        item.action, item.reasons = GENERATE, ["cache entry corrupt"]
        self.submit_generate([item], heavy=not backends.get(item.asset.backend).parallel)

    def finish(self, item: Item, record: dict[str, Any], status: str, blob: Path | None = None) -> None:
        dest = self.manifest.output_dir / item.file
        try:
            blob = blob or self.cache.blob_path(record["sha256"])
            for name, sha in (record.get("sidecars") or {}).items():
                side = self.cache.verified_blob(sha)
                if side is None:
                    raise CacheMiss(sha)
                place_file(side, self.manifest.output_dir / sidecar_file(item.file, name), self.options.copy)
            place_file(blob, dest, self.options.copy)
        except CacheMiss:  # a sidecar file is corrupt or gone
            self.rebuild(item)
            return
        except OSError as exc:
            self.fail(item.asset.id, f"cannot write {dest}: {exc.strerror or exc}")
            return
        self.records[item.asset.id] = record
        self.on_event("asset", {"id": item.asset.id, "kind": item.asset.kind, "status": status,
                                "file": item.file, "generator": record.get("generator"),
                                "target_met": record.get("target_met", True),
                                "warnings": (record.get("warnings") or []) if status != "placed" else []})

    def fail(self, asset_id: str, error: str) -> None:
        self.result.failures.append({"id": asset_id, "error": error})
        self.on_event("failed", {"id": asset_id, "error": error})


def new_pool(workers: int, initializer: Callable[..., None] | None = None,
             initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """The worker pool a build runs jobs in (its workers ignore SIGINT; ``initializer``, if
    given, must call ``_ignore_sigint`` itself)."""
    import multiprocessing

    # forkserver/spawn: never fork this (possibly multi-threaded) process directly.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers, initializer=initializer or _ignore_sigint, initargs=initargs,
                               mp_context=multiprocessing.get_context(method))


def warm_worker(backend_names: list[str]) -> None:
    """Initializer for a long-lived pool (`watch`, `serve`): ignore Ctrl-C (like a build's
    workers), import the audio chain and load the parallel backends the manifest uses, before
    the first job needs them."""
    _ignore_sigint()
    try:
        from ..audio import cleanup, master  # noqa: F401
        from ..export import audiofile, lipsync, subtitles  # noqa: F401
        from ..speech import alignment, script  # noqa: F401
        from . import worker

        for name in backend_names:
            try:
                backends.create(name).load()
                worker._loaded.add(name)
            except Exception:  # reported by the build when a job needs it
                pass
    except Exception:
        pass


def noop_job() -> None:
    """Submitted once per worker to start a long-lived pool's workers ahead of the first job."""


def _ignore_sigint() -> None:
    # Ctrl-C reaches every process of the terminal's group; the main process handles it.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _expected_length(item: Item) -> float:
    """Seconds an item will take: its duration, or for a line about 14 characters a second."""
    r = item.request
    return r.duration if r.duration is not None else len(r.text or r.prompt or "") / 14.0


def _heavy_batch(root: str, name: str, jobs: list[tuple[str, Any]]) -> list[tuple[str, str | None]]:
    # Runs on the single heavy thread: switching backend unloads the previous one first.
    global _resident
    if _resident not in (None, name):
        unload(_resident)
    _resident = name
    return generate_batch(root, name, jobs)


_resident: str | None = None


def _unload_all() -> None:
    global _resident
    if _resident is not None:
        unload(_resident)
        _resident = None


def place_file(blob: Path, dest: Path, copy: bool = False) -> None:
    """Put a cached file at ``dest`` atomically: hardlink (or copy) to a temp name, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    _unlink(tmp)
    if not copy:
        try:
            os.link(blob, tmp)
        except OSError:  # other filesystem, or links not allowed: copy instead
            copy = True
    if copy:
        shutil.copyfile(blob, tmp)
    os.replace(tmp, dest)
    # rename() does nothing when both names are links to the same file (dest was already this
    # blob): the temp name is then still there.
    _unlink(tmp)


def _clean_output_temps(output_dir: Path) -> None:
    if output_dir.exists():
        for tmp in output_dir.rglob(".*.tmp"):
            _unlink(tmp)


def _unlink_output(output_dir: Path, file: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Remove an asset's file and whatever sidecar files it had, except the paths in ``keep``
    (its new files, when only its main format changed)."""
    if not file:
        return
    for path in [file, *(sidecar_file(file, name) for name in SIDECARS)]:
        if path not in keep:
            _unlink(output_dir / path)


def _unlink(path: Path) -> None:
    try:
        if path.is_file():
            path.unlink()
    except OSError:
        pass


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"


class ProjectBusy(UsageError):
    """Another build holds the project's lock (``watch`` retries; ``build`` exits 2)."""


@contextmanager
def _exclusive(state_dir: Path) -> Iterator[None]:
    """One build per project at a time."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "build.lock", "a+") as f:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock; builds are not expected to overlap there
            yield
            return
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ProjectBusy(f"another assetbuild is running on this project ({state_dir})") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

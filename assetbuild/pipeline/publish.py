"""Publishing: record what a build left on disk, one step after another.

After the assets are realised, each step writes one thing from the same :class:`Publication`:
the outputs' bookkeeping (old files removed, new ones signed), the mixed sequences,
assetpack.json, the lockfile, the engine exports, the report and, last, the state file. A step
also says whether what it wrote last time is still there and current (:meth:`Step.fresh`),
which is how a no-op build knows it has nothing to do. A new export is a new step in
:data:`STEPS`; the scheduler does not change.

Failed assets keep their previous lock entry and metadata; removed assets lose their output.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..export.metadata import PACK, REPORT, assetpack_doc, dump_assetpack, pack_entry, read_entries
from ..fsutil import read_json, signatures, stat_signature, unchanged, unlink, write_if_changed
from ..manifest.model import SIDECARS, Manifest, sidecar_file
from ..records import PackEntry, Processed
from . import keys
from .lock import Lockfile, brief_of, render_lock
from .outcome import Failure, Status, Step
from .plan import Item, Plan
from .state import Paths, Placed, State


@dataclass
class Publication:
    """What the steps share: the build's inputs and results, and what the steps make."""

    manifest: Manifest
    plan: Plan
    paths: Paths
    old: State  # the state file as the last build left it
    lock: Lockfile
    built: dict[str, Processed | PackEntry]  # by asset id: made by this build, or kept from the last
    statuses: dict[str, Status] = field(default_factory=dict)  # what this build did per asset
    failures: list[Failure] = field(default_factory=list)  # steps add theirs
    # Made by the steps:
    new: State = field(default_factory=State)
    entries: dict[str, PackEntry] = field(default_factory=dict)
    locked: dict[str, dict[str, Any]] = field(default_factory=dict)  # the new lockfile's entries
    sequences: list[dict[str, Any]] = field(default_factory=list)  # assetpack.json's sequence records
    doc: dict[str, Any] = field(default_factory=dict)  # assetpack.json
    removed: int = 0
    mixed: list[str] = field(default_factory=list)

    @property
    def out(self) -> Any:
        return self.manifest.output_dir


class Publisher(Protocol):
    def fresh(self, p: Publication) -> bool:
        """What this step wrote last time is there, unchanged, and what it would write now."""
        ...

    def write(self, p: Publication) -> None: ...


def previous_entries(manifest: Manifest, state: State) -> dict[str, Processed | PackEntry]:
    """The entries of the last assetpack.json, by asset id, if it is still the file we wrote."""
    path = manifest.output_dir / PACK
    if not state.assetpack or state.assetpack != stat_signature(path):
        return {}
    return dict(read_entries(read_json(path) or {}))


def is_noop(p: Publication) -> bool:
    """Nothing to do: every asset is fresh, none was removed, the last build was of these very
    manifest bytes with the same code and backends, and every step's output is as it left it."""
    return (not p.plan.removed and not p.plan.work and p.old.manifest == p.manifest.digest
            and p.old.fingerprints == p.plan.fingerprints and all(step.fresh(p) for step in STEPS))


def publish(p: Publication) -> None:
    for step in STEPS:
        step.write(p)


class Outputs:
    """Remove what assets no longer have (a changed file name, a dropped format, a removed
    asset), sign what they have now, and make their lockfile entries."""

    def fresh(self, p: Publication) -> bool:
        return True  # the plan found every output fresh

    def write(self, p: Publication) -> None:
        failed = {f.id for f in p.failures}
        p.locked = dict(p.lock.entries)
        outputs = dict(p.old.outputs)
        for item in p.plan.items:
            built = p.built.get(item.id)
            if item.id in failed or built is None:
                continue
            names = built.sidecar_names
            keep = {item.file, *(sidecar_file(item.file, n) for n in names)}
            old = p.lock.entries.get(item.id)
            if old and old.get("file") != item.file:
                _unlink_output(p, old["file"], keep)
            before = outputs.get(item.id)
            if before is not None and before.file == item.file:
                for gone in set(before.sidecars) - set(names):  # e.g. a format dropped
                    unlink(p.out / sidecar_file(item.file, gone))
            p.locked[item.id] = _lock_entry(item, built, old)
            outputs[item.id] = Placed(item.file, stat_signature(p.out / item.file),
                                      {n: stat_signature(p.out / sidecar_file(item.file, n)) for n in names})
        for aid, entry in p.plan.removed.items():
            _unlink_output(p, entry.get("file", ""))
            p.locked.pop(aid, None)
            outputs.pop(aid, None)
            p.built.pop(aid, None)
            p.removed += 1
        p.new.outputs = outputs
        current = {i.id: i for i in p.plan.items}
        p.entries = {aid: pack_entry(current[aid].asset, b, current[aid].licence)
                     for aid, b in p.built.items() if aid in current}


class Sequences:
    """Mix the sequences whose assets or settings changed (pipeline/sequences.py)."""

    def fresh(self, p: Publication) -> bool:
        done = p.old.sequences
        return sorted(done) == sorted(s.id for s in p.manifest.sequences) and all(
            unchanged(p.out, d.files) for d in done.values())

    def write(self, p: Publication) -> None:
        if not p.manifest.sequences and not p.old.sequences:
            return
        from . import sequences

        def fail(sid: str, error: str) -> None:
            p.failures.append(Failure(sid, Step.SEQUENCE, error))

        p.sequences, p.new.sequences = sequences.build_all(p.manifest, p.entries, p.old.sequences, fail)
        p.mixed = [sid for sid, st in p.new.sequences.items() if st is not p.old.sequences.get(sid)]


class Assetpack:
    def fresh(self, p: Publication) -> bool:
        return p.old.assetpack == stat_signature(p.out / PACK)

    def write(self, p: Publication) -> None:
        p.doc = assetpack_doc(p.manifest, list(p.entries.values()), p.sequences)
        write_if_changed(p.out / PACK, dump_assetpack(p.doc))
        p.new.assetpack = stat_signature(p.out / PACK)


class Lock:
    def fresh(self, p: Publication) -> bool:
        return True  # the plan compared every asset with it

    def write(self, p: Publication) -> None:
        write_if_changed(p.paths.lock, render_lock(p.locked))
        p.new.lock = stat_signature(p.paths.lock)
        p.new.keys = brief_of(p.locked)


class Exports:
    """The engine exports of ``[export] engines`` (export/engines)."""

    def fresh(self, p: Publication) -> bool:
        exports = p.old.exports
        return sorted(exports) == sorted(p.manifest.engines) and all(
            unchanged(p.out, files) for files in exports.values())

    def write(self, p: Publication) -> None:
        from ..errors import UsageError

        if p.manifest.engines:
            from ..export import engines

            view = engines.Pack(p.out, p.doc, p.manifest.prefixes)
            for name in p.manifest.engines:
                try:
                    written = engines.write(name, view)
                except UsageError as exc:  # e.g. two assets that make the same engine-side name
                    p.failures.append(Failure(f"{name} export", Step.EXPORT, str(exc)))
                    continue
                p.new.exports[name] = signatures(p.out, [f.relative_to(p.out).as_posix() for f in written])
        for name in set(p.old.exports) - set(p.manifest.engines):  # taken out of [export] engines
            shutil.rmtree(p.out / name, ignore_errors=True)


class Report:
    """``<output>/report.html``: every asset with its status in this build (docs/report.md)."""

    def fresh(self, p: Publication) -> bool:
        return (p.out / REPORT).is_file()

    def write(self, p: Publication) -> None:
        from ..export import report

        status = {aid: s.value for aid, s in p.statuses.items() if s != Status.PLACED}
        status.update((f.id, "failed") for f in p.failures)
        report.write(p.out, p.doc, status, [f.to_json() for f in p.failures],
                     p.manifest.root / ".assetbuild" / "waveforms")


class StateFile:
    """Last: the state file names what the steps before wrote."""

    def fresh(self, p: Publication) -> bool:
        return True

    def write(self, p: Publication) -> None:
        p.new.manifest = p.manifest.digest if not p.failures else ""
        p.new.fingerprints = p.plan.fingerprints
        p.new.write(p.paths.state)


STEPS: list[Publisher] = [Outputs(), Sequences(), Assetpack(), Lock(), Exports(), Report(), StateFile()]


def _lock_entry(item: Item, built: Processed | PackEntry, old: dict[str, Any] | None) -> dict[str, Any]:
    if old and old.get("process") == item.process_key and "inputs" in old:
        inputs = old["inputs"]
    else:
        inputs = {"generate": keys.input_digests(item.generate_inputs),
                  "process": keys.input_digests(item.process_inputs)}
    measured = built if isinstance(built, Processed) else built.processed
    return {
        "kind": item.asset.kind,
        "backend": item.asset.backend,
        "generate": item.generate_key,
        "process": item.process_key,
        "file": item.file,
        "sha256": measured.sha256,
        "duration": measured.duration,
        "loudness": measured.loudness,
        "inputs": inputs,
    }


def _unlink_output(p: Publication, file: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Remove an asset's file and whatever sidecar files it had, except the paths in ``keep``
    (its new files, when only its main format changed)."""
    if not file:
        return
    for path in [file, *(sidecar_file(file, name) for name in SIDECARS)]:
        if path not in keep:
            unlink(p.out / path)


"""Where a project keeps its build state, and ``.assetbuild/state.json``, read in one place.

The state file is local (not committed). It remembers how the last build left the output
folder: each output's stat signature (so a no-op build checks outputs with a ``stat`` instead
of hashing them, as Ninja does), the signatures of assetpack.json and the lockfile it wrote, the
manifest digest and backend fingerprints it was built from, a compact copy of the lockfile's
keys, and what the engine exports and sequences wrote.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProjectBusy
from ..fsutil import Signature, read_json, write_if_changed
from ..manifest.model import Manifest

STATE_VERSION = 1


@dataclass(frozen=True)
class Paths:
    """Where a build of a manifest (or of one of its profiles) keeps things."""

    cache: Path  # shared by every profile
    lock: Path  # assetbuild.lock, or assetbuild.NAME.lock for a profile (committed)
    state: Path  # .assetbuild/state.json, or state.NAME.json

    @property
    def state_dir(self) -> Path:
        return self.state.parent


def lock_path(root: Path, profile: str | None = None) -> Path:
    return root / (f"assetbuild.{profile}.lock" if profile else "assetbuild.lock")


def paths_of(manifest: Manifest, cache_dir: Path | None = None) -> Paths:
    """The paths for a manifest as loaded (with its profile, if any).

    Every profile shares the cache; each has its own lockfile (to be committed like the main
    one) and state file, since its process keys and outputs differ. The cache is ``cache_dir``,
    else $ASSETBUILD_CACHE, else .assetbuild/cache beside the manifest.
    """
    state_dir = manifest.root / ".assetbuild"
    env = os.environ.get("ASSETBUILD_CACHE")
    cache = Path(cache_dir) if cache_dir else Path(env) if env else state_dir / "cache"
    if manifest.preview:  # a scratch build of one sequence: nothing of it is committed
        return Paths(cache, manifest.output_dir / "preview.lock", manifest.output_dir / ".state.json")
    name = f"state.{manifest.profile}.json" if manifest.profile else "state.json"
    return Paths(cache, lock_path(manifest.root, manifest.profile), state_dir / name)


@dataclass(frozen=True)
class Placed:
    """An asset's files as the last build placed them."""

    file: str
    sig: Signature
    sidecars: dict[str, Signature] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "sig": self.sig}
        if self.sidecars:
            out["sidecars"] = self.sidecars
        return out


@dataclass(frozen=True)
class Mixed:
    """A sequence as the last build mixed it: its key, its assetpack record and its files."""

    key: str
    record: dict[str, Any]
    files: dict[str, Signature]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "record": self.record, "files": self.files}


@dataclass
class State:
    outputs: dict[str, Placed] = field(default_factory=dict)
    assetpack: Signature = None
    manifest: str = ""  # digest of the manifest it built; "" when that build had failures
    lock: Signature = None
    keys: dict[str, dict[str, Any]] | None = None  # the lockfile's keys, {id: {generate, process, file}}
    exports: dict[str, dict[str, Signature]] = field(default_factory=dict)
    fingerprints: str = ""  # see plan.Plan.fingerprints
    sequences: dict[str, Mixed] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> State:
        """The state file, or an empty state when it is missing or unreadable."""
        data = read_json(path) or {}
        if data.get("version") not in (None, STATE_VERSION):
            return cls()
        try:
            outputs = {aid: Placed(o["file"], o.get("sig"), o.get("sidecars") or {})
                       for aid, o in (data.get("outputs") or {}).items()}
            sequences = {sid: Mixed(m["key"], m["record"], m.get("files") or {})
                         for sid, m in (data.get("sequences") or {}).items()}
        except (KeyError, TypeError, AttributeError):  # damaged: start over (outputs are re-placed)
            return cls()
        keys = data.get("keys")
        return cls(outputs=outputs, assetpack=data.get("assetpack"), manifest=data.get("manifest") or "",
                   lock=data.get("lock"), keys=keys if isinstance(keys, dict) else None,
                   exports=data.get("exports") or {}, fingerprints=data.get("fingerprints") or "",
                   sequences=sequences)

    def write(self, path: Path) -> None:
        doc = {"version": STATE_VERSION, "outputs": {a: p.to_json() for a, p in self.outputs.items()},
               "assetpack": self.assetpack, "manifest": self.manifest, "lock": self.lock, "keys": self.keys,
               "exports": self.exports, "fingerprints": self.fingerprints,
               "sequences": {s: m.to_json() for s, m in self.sequences.items()}}
        write_if_changed(path, json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n")


@contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """One build per project at a time: ProjectBusy when another holds the lock."""
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

"""The manifest being served, reloaded when one of its files changes.

Synthesis requests are validated against the served manifest's tables (voices, defaults,
lexicon, locales), so what a request resolves to is what the same line would resolve to in a
build. When a manifest file changes on disk the next request reloads it; a manifest that no
longer loads is reported in ``/health`` and the last good one keeps serving.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fsutil import stat_signature
from ..manifest import include
from ..manifest.load import load, read_toml
from ..manifest.model import Manifest
from ..pipeline.state import paths_of


@dataclass
class Snapshot:
    """One load of the manifest: the validated manifest and its raw tables (includes merged)."""

    manifest: Manifest
    raw: dict[str, Any]  # project, defaults, voices, lexicon, ... as written (voices of includes merged in)
    voice_files: dict[str, str]
    cache_root: Path
    signature: dict[str, Any]
    seeds: dict[str, int] | None = None  # see synth.manifest_seed; filled on first use
    seeds_lock: threading.Lock = field(default_factory=threading.Lock)


class ServedProject:
    def __init__(self, path: str | Path, cache_dir: Path | None = None):
        self.path = Path(path)
        self.cache_dir = cache_dir
        self.error: str | None = None  # why the manifest on disk does not load (the last good one serves)
        self._lock = threading.Lock()
        self._snapshot = self._load()  # a UsageError here: nothing to serve

    def _load(self) -> Snapshot:
        manifest = load(self.path)
        shown = str(self.path)
        raw, data = read_toml(self.path, shown)
        sources = include.read(self.path.resolve(), shown, raw, data)
        cache_root = paths_of(manifest, self.cache_dir).cache
        return Snapshot(manifest, copy.deepcopy(sources.raw), dict(sources.voice_files), cache_root,
                        _signature(manifest))

    def current(self) -> Snapshot:
        """The manifest as it is on disk now (or the last one that loaded)."""
        with self._lock:
            if _signature(self._snapshot.manifest) != self._snapshot.signature:
                self.reload_locked()
            return self._snapshot

    def reload(self) -> Snapshot:
        with self._lock:
            self.reload_locked()
            return self._snapshot

    def reload_locked(self) -> None:
        try:
            self._snapshot = self._load()
            self.error = None
        except UsageError as exc:
            self.error = str(exc)
            # Do not try again until something changes once more.
            self._snapshot.signature = _signature(self._snapshot.manifest)


def _signature(manifest: Manifest) -> dict[str, Any]:
    return {str(p): stat_signature(Path(p)) for p in manifest.sources}

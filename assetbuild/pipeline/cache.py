"""A local content-addressed store, split like DVC/Bazel into blobs and action entries.

Layout under the cache root::

    objects/ab/abcdef...      file contents, named by their sha256, read-only
    generate/ab/<key>.json    generate stage result: raw-audio blob + backend metadata
    process/ab/<key>.json     process stage result: final-file blob + measurements
    tmp/                      files being written; renamed into place when complete

Every write goes to ``tmp/`` first and is renamed into place, so a killed build never
leaves a half-written entry under its final name. Entries carry the hash of their own
content and blobs are named by theirs: anything corrupt is detected on read, treated as
a miss and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ..fsutil import file_sha256

STAGES = ("generate", "process")


class Cache:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.tmp = self.root / "tmp"

    # -- blobs -----------------------------------------------------------------------------
    def blob_path(self, sha: str) -> Path:
        return self.root / "objects" / sha[:2] / sha

    def temp_file(self, suffix: str = "") -> Path:
        """A fresh path under tmp/ for a writer that needs a file name (e.g. soundfile)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        # The pid prefix lets clean_tmp tell a dead build's leftovers from a live one's.
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix=f"{os.getpid()}-", suffix=suffix)
        os.close(fd)
        return Path(name)

    def put_file(self, path: Path) -> str:
        """Move a finished file from tmp/ into the store; return its sha256."""
        sha = file_sha256(path)
        dest = self.blob_path(sha)
        if dest.exists():
            path.unlink()
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.replace(path, dest)
        return sha

    def put_bytes(self, data: bytes) -> str:
        tmp = self.temp_file()
        tmp.write_bytes(data)
        return self.put_file(tmp)

    def verified_blob(self, sha: str) -> Path | None:
        """Path of the blob if present and intact; a corrupt blob is removed."""
        path = self.blob_path(sha)
        try:
            if file_sha256(path) == sha:
                return path
        except OSError:
            return None
        _remove(path)
        return None

    # -- entries ---------------------------------------------------------------------------
    def entry_path(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / f"{key}.json"

    def put_entry(self, stage: str, key: str, data: dict[str, Any]) -> None:
        body = dict(data, key=key)
        body["checksum"] = entry_checksum(body)
        tmp = self.temp_file(".json")
        tmp.write_text(json.dumps(body, sort_keys=True, indent=1), encoding="utf-8")
        dest = self.entry_path(stage, key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)

    def get_entry(self, stage: str, key: str) -> dict[str, Any] | None:
        """The entry, or None when missing or corrupt (a corrupt one is removed)."""
        path = self.entry_path(stage, key)
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            checksum = body.pop("checksum")
            if body.get("key") == key and checksum == entry_checksum(body):
                return body
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, AttributeError):
            pass
        _remove(path)
        return None

    def has_entry(self, stage: str, key: str) -> bool:
        return self.entry_path(stage, key).exists()

    def drop(self, stage: str, key: str) -> None:
        """Forget an entry (its blobs stay until gc), e.g. a take --locked refused."""
        _remove(self.entry_path(stage, key))

    # -- housekeeping ----------------------------------------------------------------------
    def clean_tmp(self) -> None:
        """Remove leftovers of killed builds (files whose writer process is gone)."""
        if not self.tmp.exists():
            return
        for path in self.tmp.iterdir():
            pid = path.name.partition("-")[0]
            if not (pid.isdigit() and _alive(int(pid))):
                _remove(path)

    def gc(self, keep: dict[str, set[str]]) -> tuple[int, int]:
        """Delete entries whose key is not in ``keep[stage]`` and blobs no kept entry uses.

        Returns (entries removed, bytes freed).
        """
        removed, freed = 0, 0
        used: set[str] = set()
        for stage in STAGES:
            for path in sorted((self.root / stage).glob("*/*.json")):
                key = path.stem
                entry = self.get_entry(stage, key) if key in keep.get(stage, set()) else None
                if entry is None:
                    freed += _size(path)
                    _remove(path)
                    removed += 1
                else:
                    used.update(entry.get("blobs", []))
        for path in sorted((self.root / "objects").glob("*/*")):
            if path.name not in used:
                freed += _size(path)
                _remove(path)
        self.clean_tmp()
        return removed, freed


def entry_checksum(body: dict[str, Any]) -> str:
    """The checksum an entry carries of its own content (everything but the checksum)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    try:  # a killed worker can linger as a zombie until reaped: it writes nothing more
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass

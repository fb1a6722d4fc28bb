"""``assetbuild.lock`` (reviewed, committed) and ``.assetbuild/state.json`` (local, not committed).

The lockfile records per asset its stage keys, a digest per input (so `plan` can say what
changed), the output file and its hash, duration and loudness. It is JSON with sorted keys and
one value per line, so diffs read well in review.

The state file remembers how each output looked on disk (size, mtime, inode) when placed, so a
no-op build checks outputs with a stat instead of hashing them, as Ninja does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

LOCK_VERSION = 1


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_lock(path: Path) -> dict[str, dict[str, Any]]:
    """Assets recorded in the lockfile (empty when missing or unreadable)."""
    data = read_json(path)
    if not data or data.get("version") != LOCK_VERSION or not isinstance(data.get("assets"), dict):
        return {}
    return data["assets"]


def render_lock(assets: dict[str, dict[str, Any]]) -> str:
    return json.dumps({"version": LOCK_VERSION, "assets": assets}, sort_keys=True, indent=1,
                      ensure_ascii=False) + "\n"


def write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    atomic_write_text(path, text)
    return True


def signatures(root: Path, files: Any) -> dict[str, Any]:
    """``{relative path: stat_signature}`` for files under ``root``, as the state file keeps them."""
    return {rel: stat_signature(root / rel) for rel in files}


def unchanged(root: Path, signatures: dict[str, Any]) -> bool:
    """Every file is still exactly as recorded by :func:`signatures` (size, mtime, inode)."""
    return all(stat_signature(root / rel) == sig for rel, sig in signatures.items())


def stat_signature(path: str | os.PathLike[str]) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class Lockfile:
    """The lockfile's entries, parsed only when needed.

    When the file is exactly as the last build wrote it (its signature is in the state file),
    the stage keys and output files come from the state's compact copy, so a no-op build does
    not parse a lockfile of many megabytes.
    """

    def __init__(self, path: Path, state: dict[str, Any]):
        self.path = path
        self._entries: dict[str, dict[str, Any]] | None = None
        keys = state.get("keys")
        fresh = isinstance(keys, dict) and state.get("lock") == stat_signature(path)
        self._brief: dict[str, dict[str, Any]] | None = keys if fresh else None
        self.is_current = fresh  # the lockfile is the one the last build wrote


    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = read_lock(self.path)
        return self._entries

    @property
    def brief(self) -> dict[str, dict[str, Any]]:
        """Per asset: {"process": key, "file": path}."""
        if self._brief is None:
            self._brief = brief_of(self.entries)
        return self._brief


def brief_of(entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {aid: {"generate": e.get("generate"), "process": e.get("process"), "file": e.get("file")}
            for aid, e in entries.items()}

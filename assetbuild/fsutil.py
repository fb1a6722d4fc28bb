"""File-system helpers every layer uses: hashing, atomic writes, stat signatures, placing files.

Every write here goes to a temp name in the destination's folder and is renamed into place,
so a reader (or the next build, after a crash) sees the old file or the new one, never half
of one. Temp names are ``.<name>.<pid>.tmp``; a build removes the ones a dead process left.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20

#: ``[size, mtime_ns, inode]`` of a file, or None when it does not exist.
Signature = list[int] | None


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def temp_name(dest: Path) -> Path:
    """The temp file a write to ``dest`` goes through (same folder, so the rename is atomic)."""
    return dest.with_name(f".{dest.name}.{os.getpid()}.tmp")


def atomic_write(dest: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` to write a temp file beside ``dest``, then rename it over ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest)
    try:
        write(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder, fsync and a rename."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already holds it; return whether it wrote."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    atomic_write_text(path, text)
    return True


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stat_signature(path: str | os.PathLike[str]) -> Signature:
    """Size, modification time and inode: a file placed by a build and untouched since has the
    same signature, so checking outputs costs one ``stat`` each, as in Ninja."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def signatures(root: Path, files: Iterable[str]) -> dict[str, Signature]:
    """``{relative path: stat_signature}`` for files under ``root``, as the state file keeps them."""
    return {rel: stat_signature(root / rel) for rel in files}


def unchanged(root: Path, recorded: Mapping[str, Signature]) -> bool:
    """Every file is still exactly as recorded by :func:`signatures`."""
    return all(stat_signature(root / rel) == sig for rel, sig in recorded.items())


def place_file(blob: Path, dest: Path, copy: bool = False) -> None:
    """Put a cached file at ``dest`` atomically: hardlink (or copy) to a temp name, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest)
    unlink(tmp)
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
    unlink(tmp)


def unlink(path: Path) -> None:
    """Remove a file if it is there; a folder or an error is left alone."""
    try:
        if path.is_file():
            path.unlink()
    except OSError:
        pass


def remove_temps(folder: Path, pid: int | None = None) -> None:
    """Remove the temp files (see :func:`temp_name`) under ``folder``: every one, or those of
    process ``pid``."""
    if folder.exists():
        for tmp in folder.rglob(f".*.{pid}.tmp" if pid is not None else ".*.tmp"):
            unlink(tmp)

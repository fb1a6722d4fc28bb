"""``assetbuild.lock``: what was built, reviewed and committed.

The lockfile records per asset its stage keys, a digest per input (so `plan` can say what
changed), the output file and its hash, duration and loudness. It is JSON with sorted keys and
one value per line, so diffs read well in review.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..fsutil import read_json, stat_signature
from .state import State

LOCK_VERSION = 1


def read_lock(path: Path) -> dict[str, dict[str, Any]]:
    """Assets recorded in the lockfile (empty when missing or unreadable)."""
    data = read_json(path)
    if not data or data.get("version") != LOCK_VERSION or not isinstance(data.get("assets"), dict):
        return {}
    return data["assets"]


def render_lock(assets: dict[str, dict[str, Any]]) -> str:
    return json.dumps({"version": LOCK_VERSION, "assets": assets}, sort_keys=True, indent=1,
                      ensure_ascii=False) + "\n"


class Lockfile:
    """The lockfile's entries, parsed only when needed.

    When the file is exactly as the last build wrote it (its signature is in the state file),
    the stage keys and output files come from the state's compact copy, so a no-op build does
    not parse a lockfile of many megabytes.
    """

    def __init__(self, path: Path, state: State):
        self.path = path
        self._entries: dict[str, dict[str, Any]] | None = None
        fresh = state.keys is not None and state.lock == stat_signature(path)
        self._brief: dict[str, dict[str, Any]] | None = state.keys if fresh else None
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

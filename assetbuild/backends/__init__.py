"""Backend registry: built-in backends plus any registered under the entry-point group
``assetbuild.backends`` (``name = "package.module:Class"``), so third parties can add their own.

Only the backend's module is imported to list it; backends import their heavy libraries in
``load``/``generate``.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from .base import Backend, BackendUnavailable, Request, Result

__all__ = ["Backend", "BackendUnavailable", "Request", "Result", "names", "get", "create"]

ENTRY_POINT_GROUP = "assetbuild.backends"

BUILTIN = {
    "audiogen": "assetbuild.backends.audiogen:AudioGenBackend",
    "bark": "assetbuild.backends.bark:BarkBackend",
    "elevenlabs": "assetbuild.backends.elevenlabs:ElevenLabsBackend",
    "espeak": "assetbuild.backends.espeak:EspeakBackend",
    "mms": "assetbuild.backends.mms:MmsBackend",
    "musicgen": "assetbuild.backends.musicgen:MusicGenBackend",
    "procedural": "assetbuild.backends.procedural:ProceduralBackend",
    "speecht5": "assetbuild.backends.speecht5:SpeechT5Backend",
}


@lru_cache(maxsize=1)
def _targets() -> dict[str, str]:
    from importlib.metadata import entry_points

    targets = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        targets.setdefault(ep.name, ep.value)
    return targets


def names() -> list[str]:
    return sorted(_targets())


@lru_cache(maxsize=None)
def get(name: str) -> type:
    """The backend class registered as ``name``. KeyError when unknown."""
    target = _targets()[name]
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


_instances: dict[str, Backend] = {}


def create(name: str) -> Backend:
    """One instance per backend per process, so a loaded model is reused."""
    if name not in _instances:
        _instances[name] = get(name)()
    return _instances[name]


UNKNOWN_LICENCE = {"name": "unknown", "commercial": False}


def licence_of(backend: Backend, request: Request) -> dict[str, Any]:
    """Terms of the model behind ``request``: {"name", "commercial", ...}. A backend without a
    ``licence`` method is reported as unknown, which ``build --commercial`` does not accept."""
    method = getattr(backend, "licence", None)
    return dict(method(request)) if method else dict(UNKNOWN_LICENCE)


def status_rows() -> list[dict[str, Any]]:
    """Per installed backend: name, kinds, whether it can run here and why not (what
    `assetbuild backends` prints and `serve` answers at /backends)."""
    rows = []
    for name in names():
        try:
            cls = get(name)
            reason = cls().availability()
            kinds = sorted(cls.kinds)
        except Exception as exc:  # a broken plugin is reported, not fatal
            reason, kinds = f"cannot be imported: {exc}", []
        rows.append({"name": name, "kinds": kinds, "available": reason is None, "reason": reason})
    return rows

"""Backend registry: built-in backends plus any registered under the entry-point group
``assetbuild.backends`` (``name = "package.module:Class"``), so third parties can add their own.

Only the backend's module is imported to list it; backends import their heavy libraries in
``load``/``generate``.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache, lru_cache
from typing import Any

from .base import Backend, BackendUnavailable, BaseBackend, Request, Result

__all__ = ["Backend", "BackendUnavailable", "BaseBackend", "Request", "Result", "create", "get", "names",
           "register"]

ENTRY_POINT_GROUP = "assetbuild.backends"

BUILTIN = {
    "audiogen": "assetbuild.backends.audiogen:AudioGenBackend",
    "bark": "assetbuild.backends.bark:BarkBackend",
    "elevenlabs": "assetbuild.backends.elevenlabs:ElevenLabsBackend",
    "espeak": "assetbuild.backends.espeak:EspeakBackend",
    "mms": "assetbuild.backends.mms:MmsBackend",
    "musicgen": "assetbuild.backends.musicgen:MusicGenBackend",
    "piper": "assetbuild.backends.piper:PiperBackend",
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
    return sorted(set(_targets()) | set(_registered))


_registered: dict[str, type[Backend]] = {}


def register(name: str, cls: type) -> None:
    """Register a backend class under ``name`` in this process (a program that embeds
    assetbuild; packages use the entry-point group). It wins over one of the same name.

    Worker processes do not see it: register heavy backends (``parallel = False``, run in
    this process's heavy lane) this way, and publish parallel ones through the entry points."""
    _registered[name] = with_defaults(cls)
    get.cache_clear()
    _instances.pop(name, None)


@cache
def get(name: str) -> type[Backend]:
    """The backend class registered as ``name``. KeyError when unknown."""
    if name in _registered:
        return _registered[name]
    target = _targets()[name]
    module, _, attr = target.partition(":")
    return with_defaults(getattr(importlib.import_module(module), attr))


def with_defaults(cls: type) -> type[Backend]:
    """``cls``, or for a plugin that does not derive from BaseBackend a subclass of it with
    BaseBackend's defaults for what it leaves out (``billed``, ``licence``, ...), so the
    pipeline can ask every backend every part of the protocol. A method the plugin has only
    from deriving from the ``Backend`` protocol itself is a stub, and is left out too."""
    if issubclass(cls, BaseBackend):
        return cls
    stubs = vars(Backend)
    defaults = {name: value for name, value in vars(BaseBackend).items()
                if not name.startswith("__")
                and inspect.getattr_static(cls, name, stubs.get(name)) is stubs.get(name)}
    return type(cls.__name__, (cls,), {**defaults, "__module__": cls.__module__, "__doc__": cls.__doc__})


_instances: dict[str, Backend] = {}


def create(name: str) -> Backend:
    """One instance per backend per process, so a loaded model is reused."""
    if name not in _instances:
        _instances[name] = get(name)()
    return _instances[name]


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

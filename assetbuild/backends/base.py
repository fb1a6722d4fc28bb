"""The backend protocol: the one small interface every audio generator implements.

A backend turns a batch of :class:`Request` objects into :class:`Result` objects. The
pipeline never looks inside a backend; it only needs the fingerprint (for cache keys), the
kinds it serves and how it may be scheduled. A plugin needs nothing but this module (it
re-exports :class:`~assetbuild.fields.Field` and the errors a backend raises).

Backend modules must import nothing heavy at module level (no numpy-heavy set-up, never
torch): the registry imports them to list them, and ``assetbuild --help`` must stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..errors import BackendUnavailable, InvalidRequest
from ..fields import Field, Stage

__all__ = ["Backend", "BackendUnavailable", "BaseBackend", "Field", "InvalidRequest", "Request", "Result", "Stage"]


@dataclass(frozen=True)
class Request:
    """One asset to generate. Everything in here but ``base_dir`` is part of the generate cache key."""

    id: str
    kind: str  # dialogue | ambience | music | sfx
    seed: int
    text: str | None = None  # dialogue
    prompt: str | None = None  # ambience, music, sfx
    duration: float | None = None  # seconds; None lets the backend choose
    loop: bool = False
    emotion: str | None = None
    locale: str | None = None  # language of the line ("en", "fr", ...) when the project has locales
    ssml: bool = False  # ``text`` is SSML
    # Pronunciation lexicon entries the line uses: word -> {"say": ..., "phonemes": ...}.
    lexicon: dict[str, dict[str, str]] = field(default_factory=dict)
    # Backend settings: the voice table (dialogue) merged with per-entry overrides.
    settings: dict[str, Any] = field(default_factory=dict)
    # Neighbouring lines of the same voice, {"previous_text", "next_text"}, filled only for
    # backends that declare ``uses_context = True`` (ElevenLabs uses them for continuity).
    context: dict[str, str] = field(default_factory=dict)
    # Not an input: the manifest's folder, which relative paths in ``settings`` (model folders,
    # voice presets) are resolved from. Backends key such files by content in ``fingerprint``.
    base_dir: str = field(default="", compare=False)


@dataclass
class Result:
    """Generated audio. ``audio`` is float32, shape (frames,) or (frames, channels), in [-1, 1]."""

    audio: Any  # numpy.ndarray; typed loosely so this module does not import numpy
    sample_rate: int
    # Optional extras recorded in the metadata: "words" (see assetbuild.speech.alignment: one
    # per display token, {text, start, end, span}, seconds), "phonemes" ({symbol, start, end}),
    # "timing" ("measured" or "estimated"), "generator" (what rendered it), "model", "notes",
    # and "warnings" (one-line strings the build shows the user, e.g. a prompt nothing matched).
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """What the pipeline asks of a backend. :class:`BaseBackend` gives every attribute but
    ``name``, ``kinds`` and ``generate`` a default; the registry gives a plugin that does not
    derive from it the same defaults (see ``backends.get``)."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    # Largest batch ``generate`` accepts; the scheduler never sends more.
    max_batch: ClassVar[int]
    # True when jobs may run in worker processes (cheap to load, CPU only). Heavy models say
    # False and run in the executor's heavy lane, one model resident at a time.
    parallel: ClassVar[bool]
    # Keys allowed in a voice table / entry for this backend, validated by the manifest.
    settings: ClassVar[tuple[Field, ...]]
    # A paid service that bills per character of text (plan and summary count them).
    billed: ClassVar[bool]
    # Wants each line's neighbours of the same voice in ``Request.context``.
    uses_context: ClassVar[bool]
    # The same request gives the same samples on any machine of a kind, every time. A take the
    # lockfile records from a backend that is not (neural models on a GPU, a web service) is
    # never made again under --locked: it must come from a cache.
    deterministic: ClassVar[bool]
    # GPUs one loaded instance needs on a cluster (the Ray executor places heavy models by it;
    # 0: the CPU, a fraction: several instances share a GPU).
    gpus: ClassVar[float]

    def availability(self) -> str | None:
        """None when usable here, else a one-line reason (with the install command)."""
        ...

    def fingerprint(self, request: Request) -> dict[str, Any]:
        """Version of the backend and identity of the model that would serve ``request``.

        Part of the generate key: when it changes, the asset is regenerated.
        """
        ...

    def licence(self, request: Request) -> dict[str, Any]:
        """Terms of the model behind ``request``: {"name", "commercial", ...} (assetpack.json,
        ``build --commercial``)."""
        ...

    def load(self) -> None: ...

    def unload(self) -> None: ...

    def generate(self, requests: list[Request]) -> list[Result]:
        """Generate one result per request, in order. Raise to fail the whole batch."""
        ...


UNKNOWN_LICENCE = {"name": "unknown", "commercial": False}


class BaseBackend:
    """Defaults for the optional parts of :class:`Backend`; third-party backends may derive
    from it and set ``name``, ``kinds`` and ``generate``."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    max_batch: ClassVar[int] = 1
    parallel: ClassVar[bool] = False
    settings: ClassVar[tuple[Field, ...]] = ()
    billed: ClassVar[bool] = False
    uses_context: ClassVar[bool] = False
    deterministic: ClassVar[bool] = False  # unless a backend says so, a take cannot be made again
    gpus: ClassVar[float] = 0.0

    def availability(self) -> str | None:
        return None

    def fingerprint(self, request: Request) -> dict[str, Any]:
        # No default: a constant one would keep serving old audio after the backend changes.
        raise BackendUnavailable(f"backend '{self.name}' does not say what its audio depends on: it needs a "
                                 "fingerprint(request) method (docs/backends.md, \"Writing a backend\")")

    def licence(self, request: Request) -> dict[str, Any]:
        # Unknown terms: `build --commercial` does not accept them.
        return dict(UNKNOWN_LICENCE)

    def load(self) -> None:
        pass

    def unload(self) -> None:
        pass

    def generate(self, requests: list[Request]) -> list[Result]:
        raise NotImplementedError

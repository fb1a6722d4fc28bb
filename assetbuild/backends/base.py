"""The backend protocol: the one small interface every audio generator implements.

A backend turns a batch of :class:`Request` objects into :class:`Result` objects. The
build graph never looks inside a backend; it only needs the fingerprint (for cache keys),
the kinds it serves and how it may be scheduled.

Backend modules must import nothing heavy at module level (no numpy-heavy set-up, never
torch): the registry imports them to list them, and ``assetbuild --help`` must stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..manifest.fields import Field


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


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (missing extra, missing model files). The message says why."""


class InvalidRequest(ValueError):
    """The request asks for something this backend cannot do, such as a language or voice it
    does not have. ``field`` names the request field at fault: "locale", "emotion", or
    "settings.<key>" for a voice setting (the server answers 422 naming it)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@runtime_checkable
class Backend(Protocol):
    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    # Largest batch ``generate`` accepts; the scheduler never sends more.
    max_batch: ClassVar[int]
    # True when jobs may run in worker processes (cheap to load, CPU only). Heavy models say
    # False and run in the main process, one model resident at a time.
    parallel: ClassVar[bool]
    # Keys allowed in a voice table / entry for this backend, validated by the manifest.
    settings: ClassVar[tuple[Field, ...]]

    def availability(self) -> str | None:
        """None when usable here, else a one-line reason (with the install command)."""

    def fingerprint(self, request: Request) -> dict[str, Any]:
        """Version of the backend and identity of the model that would serve ``request``.

        Part of the generate key: when it changes, the asset is regenerated.
        """

    def load(self) -> None: ...

    def unload(self) -> None: ...

    def generate(self, requests: list[Request]) -> list[Result]:
        """Generate one result per request, in order. Raise to fail the whole batch."""

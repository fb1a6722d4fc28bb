"""Every error assetbuild raises on purpose, under one root that carries its exit code.

The CLI catches :class:`AssetbuildError`, prints :meth:`~AssetbuildError.lines` (one line per
problem, never a traceback) and exits with :attr:`~AssetbuildError.exit_code`::

    AssetbuildError                exit 1: something could not be done
    ├── UsageError                 exit 2: bad input (options, arguments); lists Problems
    │   ├── ManifestError          the manifest is invalid: every problem, each naming file, entry, field
    │   └── ProjectBusy            another build holds the project's lock (watch retries)
    ├── BackendUnavailable         exit 2: a backend cannot run here (missing extra or model files)
    │   └── ModelMissing           the model's weights are not on this machine (models/store.py)
    ├── InvalidRequest             exit 2: a request asks a backend for what it cannot do; names the field
    │   └── GraphError             a .onnx that is not a Piper voice (backends/_piper_onnx.py)
    ├── CacheMiss                  a cache entry an earlier stage made is missing or corrupt
    ├── TimelineError              a sequence's events do not resolve (timeline.py)
    ├── ScriptError                malformed SSML or line markup (speech/script.py)
    ├── SilentAudio                audio too quiet to measure or master (audio/loudness.py)
    ├── SequenceFailed             a sequence could not be mixed (pipeline/sequences.py)
    ├── VoiceError, SynthError     eSpeak NG has no such voice, or failed (backends/_espeak_ctypes.py)
    ├── ElevenLabsError            the ElevenLabs API refused or failed (backends/elevenlabs.py)
    └── ServerError                what the HTTP server answers with a status (server/errors.py)

Errors that callers also catch by a built-in type keep that base as well (``InvalidRequest``
is a ``ValueError``, ``BackendUnavailable`` a ``RuntimeError``), so plugins written against
those keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input: where it is and what is expected."""

    file: str
    where: str  # 'dialogue "intro_01"', '[voices.narrator]', 'dialogue #3', '' for the file
    message: str
    field: str | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.where:
            parts.append(self.where)
        text = f"'{self.field}' {self.message}" if self.field else self.message
        return ": ".join(parts) + ": " + text


class AssetbuildError(Exception):
    """The root of every error assetbuild raises on purpose."""

    exit_code: int = 1

    @property
    def message(self) -> str:
        """The error in one line."""
        return first_line(self)

    def lines(self) -> list[str]:
        """What the CLI prints, one line each."""
        return [self.message]


class UsageError(AssetbuildError):
    """Bad input from the user (manifest, options). Exit code 2."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("assetbuild", "", problems)]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class ManifestError(UsageError):
    """The manifest is invalid; ``problems`` lists every problem found, not just the first."""


class ProjectBusy(UsageError):
    """Another build holds the project's lock (``watch`` retries; ``build`` exits 2)."""


class BackendUnavailable(AssetbuildError, RuntimeError):
    """The backend cannot run here (missing extra, missing model files). The message says why."""

    exit_code = 2


class InvalidRequest(AssetbuildError, ValueError):
    """The request asks for something this backend cannot do, such as a language or voice it
    does not have. ``field`` names the request field at fault: "locale", "emotion", or
    "settings.<key>" for a voice setting (the server answers 422 naming it)."""

    exit_code = 2

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class CacheMiss(AssetbuildError):
    """A cache entry an earlier stage made is missing or corrupt: that stage must run again."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options``, or nothing."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""

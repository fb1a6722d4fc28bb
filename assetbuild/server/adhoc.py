"""A synthesis request -> the Asset a manifest line with the same values would be.

The request is written as a one-entry manifest in memory, on top of the served manifest's own
tables (``[project]``, ``[defaults]``, ``[voices]``, ``[lexicon]``), and validated by the
manifest loader itself. So defaults, voices, locale settings and lexicon entries layer exactly
as in a build, and every check the loader makes applies. Its problems come back as
:class:`RequestProblem` naming the request field.

``voice`` names a ``[voices.NAME]`` table; ``backend`` + ``settings`` describe a voice inline
(with ``voice`` too: the voice's settings with these on top). Inline voices are validated as
a ``[voices.*]`` table named :data:`REQUEST_VOICE`.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

from .. import backends
from ..errors import ManifestError, Problem
from ..manifest import include
from ..manifest.load import validate
from ..manifest.model import BUILTIN_DEFAULTS, Asset, Manifest
from .errors import RequestProblem
from .project import Snapshot

__all__ = ["Line", "RequestProblem", "resolve"]

ENTRY_ID = "request"
REQUEST_VOICE = "__request__"
SHOWN = "request"
# Tables a one-line manifest does not need (profiles and exports change nothing of one line).
_DROPPED = ("profiles", "export")


@dataclass
class Line:
    """What to synthesise, as the request gave it (already type-checked by the API model)."""

    text: str
    voice: str | None = None
    backend: str | None = None
    settings: dict[str, Any] | None = None
    emotion: str | None = None
    locale: str | None = None
    speed: float | None = None
    format: str = "wav"  # wav | ogg | opus | pcm (pcm: a 16-bit wav, sent without its header)
    sample_rate: int | None = None
    loudness: float | None = None
    seed: int | None = None


def resolve(snap: Snapshot, line: Line) -> tuple[Asset, Manifest]:
    """The Asset for ``line`` and the one-entry manifest it was validated in."""
    raw = {k: copy.deepcopy(v) for k, v in snap.raw.items() if k not in _DROPPED}
    project = raw.setdefault("project", {})
    if not isinstance(project, dict):  # cannot happen for a manifest that loaded
        raise RequestProblem([], "the served manifest's [project] is not a table", 500)
    entry: dict[str, Any] = {"id": ENTRY_ID, "text": line.text}
    for key in ("emotion", "loudness", "seed"):
        if getattr(line, key) is not None:
            entry[key] = getattr(line, key)
    if line.format == "pcm":
        entry["format"], entry["bit_depth"] = ["wav"], 16
    else:
        entry["format"] = [line.format]
    if line.sample_rate is not None:
        project["sample_rate"] = line.sample_rate
    voices = raw.setdefault("voices", {})
    if line.settings and "locales" in line.settings:
        raise RequestProblem(["settings", "locales"], "per-locale voice settings cannot be given in a request; "
                             "send the settings for the line's locale")
    if line.backend is not None or line.settings:
        base_name = line.voice if line.voice is not None else _default_voice(raw)
        if line.voice is not None and line.voice not in voices:
            raise RequestProblem(["voice"], _unknown_voice(line.voice, voices))
        inline = copy.deepcopy(voices.get(base_name, {})) if base_name in voices else {}
        if not inline:
            inline["backend"] = _default_backend(raw)
        if line.backend is not None:
            voice_backend = inline.get("backend", BUILTIN_DEFAULTS["dialogue"]["backend"])
            if line.voice is not None and voice_backend != line.backend:
                raise RequestProblem(["backend"], f"is '{line.backend}' but voice '{line.voice}' uses "
                                     f"'{inline.get('backend', BUILTIN_DEFAULTS['dialogue']['backend'])}'")
            if line.voice is None:
                inline = {"backend": line.backend}
        inline.update(line.settings or {})
        voices[REQUEST_VOICE] = inline
        entry["voice"] = REQUEST_VOICE
        entry["speaker"] = line.voice or "request"
    elif line.voice is not None:
        entry["voice"] = line.voice

    locales = project.get("locales") or []
    want = line.locale or (locales[0] if locales else None)
    if line.locale is not None:
        project["locales"] = [line.locale] + [lo for lo in locales if lo != line.locale]
    if project.get("locales"):
        project["missing_locale"] = "fallback"  # the other locales stand in with this text; only `want` is used
        entry["text"] = {want: line.text}

    sources = include.Sources(raw=raw, entries={k: [] for k in include.ENTRY_TABLES},
                              voice_files=dict(snap.voice_files), files=[snap.manifest.path])
    sources.entries["dialogue"] = [include.Entry(entry, SHOWN, 1)]
    try:
        manifest = validate(snap.manifest.path, SHOWN, raw, sources)
    except ManifestError as exc:
        raise _problem(exc.problems) from None
    asset = next(a for a in manifest.assets if a.locale == want)
    if line.speed is not None:
        asset = _with_speed(asset, line.speed)
    return asset, manifest


def _with_speed(asset: Asset, speed: float) -> Asset:
    """``speed`` as the backend's own setting: ``speed`` if it has one, else ``rate`` scaled."""
    fields = {f.name: f for f in backends.get(asset.backend).settings}
    if "speed" in fields:
        name, value = "speed", speed
    elif "rate" in fields:
        base = asset.settings.get("rate", fields["rate"].default)
        name, value = "rate", round(base * speed) if isinstance(base, int) else base * speed
    else:
        raise RequestProblem(["speed"], f"backend '{asset.backend}' has no speed or rate setting")
    value, issue = fields[name].check(value)
    if issue:
        raise RequestProblem(["speed"], f"gives {name} {value!r}, which {issue}")
    return dataclasses.replace(asset, settings={**asset.settings, name: value})


def _dialogue_default(raw: dict[str, Any], key: str) -> Any:
    """``key`` from [defaults.dialogue], else from [defaults]."""
    defaults = raw["defaults"] if isinstance(raw.get("defaults"), dict) else {}
    kind = defaults["dialogue"] if isinstance(defaults.get("dialogue"), dict) else {}
    return kind.get(key, defaults.get(key))


def _default_voice(raw: dict[str, Any]) -> str | None:
    name = _dialogue_default(raw, "voice")
    return name if isinstance(name, str) else None


def _default_backend(raw: dict[str, Any]) -> str:
    name = _dialogue_default(raw, "backend")
    return name if isinstance(name, str) else str(BUILTIN_DEFAULTS["dialogue"]["backend"])


def _unknown_voice(name: str, voices: dict[str, Any]) -> str:
    from ..errors import did_you_mean

    known = sorted(v for v in voices if v != REQUEST_VOICE)
    return f"unknown voice '{name}' (voices: {', '.join(known) or 'none defined'})" + did_you_mean(name, known)


def _problem(problems: list[Problem]) -> RequestProblem:
    """The first problem that is the request's (the served manifest itself loaded fine)."""
    p = problems[0]
    message = p.message.replace(f"'{REQUEST_VOICE}'", "(inline voice)")
    if p.where.startswith(f"[voices.{REQUEST_VOICE}"):
        loc = ["backend"] if p.field in (None, "backend") else ["settings", p.field]
    elif p.where.startswith("[project]"):
        loc = ["locale"] if p.field == "locales" else [p.field or "sample_rate"]
    elif p.field in ("text", "emotion", "loudness", "seed", "voice", "backend", "sample_rate"):
        loc = [p.field]
    elif p.field in ("format", "bit_depth"):
        loc = ["format"]
    else:
        loc = [p.field] if p.field else []
    return RequestProblem(loc, message)

"""From a line as written in the manifest to what a backend is asked to say.

A line has a *display* text (what subtitles show and what word spans refer to) and one or
more *pieces* of *spoken* text (what the backend receives). They differ where the line has
``[pause]`` markers (removed; the line is split there and silence is inserted), pronunciation
lexicon entries (the respelling is spoken, the written word is shown), SSML markup (spoken as
is, shown as its text content), or is longer than a backend speaks well (split at sentences).

Every piece carries a map from each spoken character to a display character, so timings a
backend reports against the spoken text land on the right displayed word.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import AssetbuildError

DEFAULT_PAUSE = 0.5  # seconds for a bare [pause]
SENTENCE_GAP = 0.25  # seconds between pieces of a line split for length
MAX_PAUSE = 10.0

# [pause], [pause 1.5], [pause 1.5s], [pause 300ms], [pause=2s]
PAUSE = re.compile(r"\[pause(?:\s*[=:]?\s*(\d+(?:\.\d+)?)\s*(ms|s)?)?\s*\]", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\u00bb]*(?=\s|$)")
_CLAUSE_END = re.compile(r"[,;:\u2014\u2013\u3001\uff0c]+(?=\s|$)")


@dataclass(frozen=True)
class Piece:
    spoken: str
    # to_display[i]: display index of spoken character i; one extra entry for the end.
    to_display: tuple[int, ...]
    pause_after: float = 0.0
    # The line was cut after this piece for length (``pause_after`` is SENTENCE_GAP), not at a
    # [pause] marker: a backend with its own pause between sentences may use that instead.
    cut: bool = False


@dataclass(frozen=True)
class Script:
    display: str
    pieces: tuple[Piece, ...]
    ssml: bool = False


class ScriptError(AssetbuildError, ValueError):
    """The line cannot be spoken as written (malformed SSML, bad pause marker)."""


def pause_seconds(match: re.Match[str]) -> float:
    value, unit = match.group(1), (match.group(2) or "s").lower()
    if value is None:
        return DEFAULT_PAUSE
    seconds = float(value) / (1000.0 if unit == "ms" else 1.0)
    return min(seconds, MAX_PAUSE)


def display_text(text: str, *, ssml: bool = False) -> str:
    """What subtitles show for ``text``: SSML reduced to its text, pause markers removed."""
    if ssml:
        return _flatten_ssml(text)[0]
    return _strip_pauses(text)[0]


def plain_script(request: Any, backend: str, max_chars: int | None = None,
                 rewrite: Callable[[str], str] | None = None) -> tuple[Script, list[str]]:
    """A line (a ``backends.Request``) for a backend that reads plain text, not SSML: markup is
    reduced to its text, with a warning for the user; lexicon respellings and ``[pause]``
    markers apply. ``rewrite`` edits the text first (e.g. adds a cue). Raises ValueError when
    there is nothing to speak."""
    if not request.text or not request.text.strip():
        raise ValueError(f"{request.id}: no text to speak")
    text, warnings = request.text, []
    if request.ssml:
        text = display_text(text, ssml=True)
        warnings.append(f"{backend}: SSML markup is not read, only its text (use [pause] markers for pauses)")
    script = prepare(rewrite(text) if rewrite else text, lexicon=request.lexicon, max_chars=max_chars)
    if not script.pieces:
        raise ValueError(f"{request.id}: nothing to speak in {request.text!r}")
    return script, warnings


def prepare(text: str, *, ssml: bool = False, lexicon: dict[str, dict[str, str]] | None = None,
            max_chars: int | None = None, phonemes: Callable[[str], str] | None = None) -> Script:
    """Split and rewrite ``text`` for a backend.

    ``lexicon`` maps a word to ``{"say": respelling}`` and/or ``{"phonemes": ...}``;
    ``phonemes`` turns a phoneme string into the backend's inline notation (None: the backend
    takes no phonemes, and ``say`` or the word itself is used). ``max_chars`` splits long
    pieces at sentence, then clause, then word boundaries.
    """
    if ssml:
        display, spoken, to_display = _flatten_ssml(text)
        spoken, to_display = _apply_lexicon(spoken, to_display, lexicon, phonemes, ssml=True)
        return Script(display, (Piece(spoken, tuple(to_display)),), ssml=True)
    display, segments = _strip_pauses(text)
    pieces: list[Piece] = []
    for start, end, pause in segments:
        parts = _split_long(display, start, end, max_chars)
        for i, (s, e) in enumerate(parts):
            spoken = display[s:e]
            to_display = list(range(s, e + 1))
            spoken, to_display = _apply_lexicon(spoken, to_display, lexicon, phonemes)
            cut = i < len(parts) - 1
            pieces.append(Piece(spoken, tuple(to_display), SENTENCE_GAP if cut else pause, cut))
    if pieces:  # no silence after the last piece: the line ends there
        pieces[-1] = Piece(pieces[-1].spoken, pieces[-1].to_display, 0.0)
    pieces = [p for p in pieces if p.spoken.strip()]
    return Script(display, tuple(pieces))


# -- pause markers -------------------------------------------------------------------------

def _strip_pauses(text: str) -> tuple[str, list[tuple[int, int, float]]]:
    """(display text, segments as (start, end, pause after) in display indexes)."""
    out: list[str] = []
    segments: list[tuple[int, int, float]] = []
    seg_start = 0
    pos = 0
    for m in PAUSE.finditer(text):
        out.append(text[pos:m.start()])
        pos = m.end()
        length = sum(map(len, out))
        segments.append((seg_start, length, pause_seconds(m)))
        seg_start = length
    out.append(text[pos:])
    display = "".join(out)
    segments.append((seg_start, len(display), 0.0))
    if len(segments) > 1:
        # Tidy the double spaces a removed marker leaves, keeping segment bounds in step.
        display, segments = _collapse_spaces(display, segments)
    # Trim each segment's edges, keep non-empty ones; a pause before an empty segment carries over.
    kept: list[tuple[int, int, float]] = []
    for s, e, p in segments:
        while s < e and display[s].isspace():
            s += 1
        while e > s and display[e - 1].isspace():
            e -= 1
        if s == e:
            if kept:  # a pause before nothing adds to the one before it
                kept[-1] = (kept[-1][0], kept[-1][1], kept[-1][2] + p)
            continue
        kept.append((s, e, p))
    return display, kept


def _collapse_spaces(display: str, segments: list[tuple[int, int, float]]) -> tuple[str, list]:
    keep = [not (c.isspace() and i > 0 and display[i - 1].isspace()) for i, c in enumerate(display)]
    new_index = [0] * (len(display) + 1)
    n = 0
    for i, k in enumerate(keep):
        new_index[i] = n
        n += k
    new_index[len(display)] = n
    out = "".join(c for c, k in zip(display, keep) if k)
    stripped = out.strip()
    lead = len(out) - len(out.lstrip())
    segs = [(max(new_index[s] - lead, 0), min(max(new_index[e] - lead, 0), len(stripped)), p) for s, e, p in segments]
    return stripped, segs


# -- splitting long text ---------------------------------------------------------------------

_BOUNDARIES = (_SENTENCE_END, _CLAUSE_END, re.compile(r"\S+(?=\s|$)"))


def _split_long(text: str, start: int, end: int, max_chars: int | None, level: int = 0) -> list[tuple[int, int]]:
    """Split text[start:end] into pieces of at most ``max_chars``: at sentence ends, then
    clause ends, then between words. A single word longer than that stays whole."""
    if not max_chars or end - start <= max_chars or level >= len(_BOUNDARIES):
        return [(start, end)]
    cuts = [m.end() for m in _BOUNDARIES[level].finditer(text, start, end) if start < m.end() < end] + [end]
    parts: list[tuple[int, int]] = []
    s = start
    i = 0
    while i < len(cuts):
        j = i  # take as many units as fit, at least one
        while j + 1 < len(cuts) and cuts[j + 1] - s <= max_chars:
            j += 1
        ps, pe = _trim(text, s, cuts[j])
        if ps < pe:
            parts.extend(_split_long(text, ps, pe, max_chars, level + 1))
        s = cuts[j]
        i = j + 1
    return parts


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


# -- lexicon -------------------------------------------------------------------------------

def lexicon_pattern(word: str) -> re.Pattern[str]:
    """How a lexicon word is found: whole word, any case."""
    return re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)", re.IGNORECASE)


def matching_entries(text: str, lexicon: dict[str, Any] | None) -> dict[str, Any]:
    """The lexicon entries ``text`` uses: only these go into the line's cache key."""
    if not lexicon:
        return {}
    return {w: e for w, e in sorted(lexicon.items()) if lexicon_pattern(w).search(text)}


def _apply_lexicon(spoken: str, to_display: list[int], lexicon: dict[str, dict[str, str]] | None,
                   phonemes: Callable[[str], str] | None, ssml: bool = False) -> tuple[str, list[int]]:
    if not lexicon:
        return spoken, to_display
    # Longest words first, so "New York" wins over "New".
    spans: list[tuple[int, int, str]] = []
    taken = [False] * len(spoken)
    masked = _mask_tags(spoken) if ssml else spoken
    for word in sorted(lexicon, key=lambda w: (-len(w), w)):
        entry = lexicon[word]
        if phonemes and entry.get("phonemes"):
            replacement = phonemes(entry["phonemes"])
        else:
            replacement = entry.get("say") or word
        if ssml:
            replacement = html.escape(replacement, quote=False)
        for m in lexicon_pattern(word).finditer(masked):
            if not any(taken[m.start():m.end()]):
                spans.append((m.start(), m.end(), replacement))
                for i in range(m.start(), m.end()):
                    taken[i] = True
    if not spans:
        return spoken, to_display
    out: list[str] = []
    new_map: list[int] = []
    pos = 0
    for s, e, replacement in sorted(spans):
        out.append(spoken[pos:s])
        new_map.extend(to_display[pos:s])
        out.append(replacement)
        # Every character of the respelling belongs to the written word's start.
        new_map.extend([to_display[s]] * len(replacement))
        pos = e
    out.append(spoken[pos:])
    new_map.extend(to_display[pos:])
    return "".join(out), new_map


def _mask_tags(ssml: str) -> str:
    """``ssml`` with markup blanked out (same length), so words are only found in text."""
    return re.sub(r"<[^>]*>|&[^;\s]*;", lambda m: " " * len(m.group()), ssml)


# -- SSML ----------------------------------------------------------------------------------

def check_ssml(text: str) -> str | None:
    """None when ``text`` is well-formed SSML (a <speak> document or a fragment), else why not."""
    import xml.etree.ElementTree as ET

    body = text.strip()
    doc = body if body.startswith("<speak") else f"<speak>{body}</speak>"
    try:
        root = ET.fromstring(doc)
    except ET.ParseError as exc:
        return f"is not well-formed SSML: {exc}"
    if root.tag.split("}")[-1] != "speak":
        return f"SSML must have <speak> as its root element, not <{root.tag}>"
    if not "".join(root.itertext()).strip():
        return "SSML has no text to speak"
    return None


def _flatten_ssml(text: str) -> tuple[str, str, list[int]]:
    """(display text, spoken SSML, map spoken index -> display index).

    Tags map to the display position that follows them; an entity maps all its characters to
    the one character it stands for. Whitespace runs collapse to one space.
    """
    problem = check_ssml(text)
    if problem:
        raise ScriptError(problem)
    spoken = text.strip()
    if not spoken.startswith("<speak"):
        spoken = f"<speak>{spoken}</speak>"
    display: list[str] = []
    to_display: list[int] = []
    i = 0
    n = len(spoken)
    while i < n:
        c = spoken[i]
        if c == "<":
            j = spoken.index(">", i) + 1
            to_display.extend([len(display)] * (j - i))
            i = j
            continue
        if c == "&":
            j = spoken.find(";", i)
            if j != -1:
                char = html.unescape(spoken[i:j + 1])
                to_display.extend([len(display)] * (j + 1 - i))
                display.append(char)
                i = j + 1
                continue
        if c.isspace() and (not display or display[-1] == " "):
            to_display.append(len(display))
        else:
            to_display.append(len(display))
            display.append(" " if c.isspace() else c)
        i += 1
    to_display.append(len(display))
    shown = "".join(display)
    cut = len(shown.rstrip())
    return shown[:cut], spoken, [min(d, cut) for d in to_display]

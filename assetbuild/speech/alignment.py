"""The one alignment model every speech backend reports in.

A line's timing is a list of *words*, one per source token of the display text::

    {"text": "Hello", "start": 0.12, "end": 0.48, "span": [0, 5]}

(seconds in the audio; ``span`` is the half-open code-point range in the display text), and
optionally *phonemes* ``{"symbol", "start", "end"}``. Backends report *spoken words* —
``{"pos": display index, "start", "end"}`` for whatever they said, however their engine splits
it — and :func:`project` turns them into words: each source token gets the span of everything
spoken for it ("$1,250" spans all of "one thousand two hundred and fifty dollars"). Backends
with character timing (ElevenLabs) go through :func:`spoken_from_characters`; backends with
none get :func:`estimate`, which the metadata marks as estimated.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

_CHUNK = re.compile(r"\S+")

# Punctuation eSpeak and others never speak as a word (dashes, brackets, quotes, sentence
# marks), as opposed to '&', '%', '@', '#', '*', '/' which may be read out.
_SILENT_CATEGORIES = ("Pd", "Ps", "Pe", "Pi", "Pf")
_SILENT_CHARS = frozenset(".,;:!?\u2026\u00a1\u00bf\"'\u00b7\u2025\u3002\u3001\uff0c\uff01\uff1f\u00ab\u00bb")


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _is_silent(ch: str) -> bool:
    return ch in _SILENT_CHARS or unicodedata.category(ch) in _SILENT_CATEGORIES


def tokens(text: str) -> list[tuple[int, int, int, int]]:
    """Source tokens: (chunk start, chunk end, token start, token end), in code points.

    A chunk is a whitespace-separated run; its token is the chunk with punctuation stripped
    from both edges. A chunk of punctuation only is kept (token start == end) when it may be
    spoken ("&", "%"); chunks of silent punctuation ("--", "...") are left out.
    """
    out = []
    for m in _CHUNK.finditer(text):
        s, e = m.span()
        ts, te = s, e
        while ts < te and _is_punct(text[ts]):
            ts += 1
        while te > ts and _is_punct(text[te - 1]):
            te -= 1
        if ts == te and all(_is_silent(c) for c in text[s:e]):
            continue
        out.append((s, e, ts, te))
    return out


def project(display: str, spoken: Sequence[dict[str, Any]], duration: float) -> list[dict[str, Any]]:
    """Words of ``display`` timed by ``spoken`` words (``pos`` a display index, ``start``/``end`` s).

    Each spoken word belongs to the chunk its position falls in, or else the next one (engines'
    positions drift past skipped punctuation). A token nothing was spoken for shares the time
    of its neighbour. The result is monotonic and inside [0, duration].
    """
    chunks = tokens(display)
    owner: list[list[dict[str, Any]]] = [[] for _ in chunks]
    ci = 0
    for w in sorted(spoken, key=lambda w: (w["pos"], w["start"])):
        while ci < len(chunks) - 1 and chunks[ci][1] <= w["pos"]:
            ci += 1
        if chunks:
            owner[ci].append(w)

    items: list[dict[str, Any]] = []
    for (cs, ce, ts, te), ws in zip(chunks, owner):
        if ts == te:  # all-punctuation chunk: a word only when something was spoken for it
            if not ws:
                continue
            ts, te = cs, ce
        item: dict[str, Any] = {"span": [ts, te], "start": None, "end": None}
        if ws:
            item["start"] = min(w["start"] for w in ws)
            item["end"] = max(w["end"] for w in ws)
        items.append(item)
    _fill_untimed(items, duration)

    # Words abut when there is no pause: a word ends where the next starts at the latest.
    for it, nxt in zip(items, items[1:]):
        if it["start"] <= nxt["start"] < it["end"]:
            it["end"] = nxt["start"]
    return _finish(display, items, duration)


def _finish(display: str, items: list[dict[str, Any]], duration: float) -> list[dict[str, Any]]:
    words = []
    prev = 0.0
    for it in items:
        start = min(max(it["start"], prev), duration)
        end = min(max(it["end"], start), duration)
        prev = end
        s, e = it["span"]
        words.append({"text": display[s:e], "start": _sec(start), "end": _sec(end), "span": [s, e]})
    return words


def _sec(x: float) -> float:
    return round(float(x), 4)


def _fill_untimed(items: list[dict[str, Any]], duration: float) -> None:
    """Give tokens nothing was spoken for a share of their timed neighbour's interval.

    eSpeak sometimes speaks two words as one ("on the"); the untimed word shares the interval
    of the timed word before it (or after it, at the start), in proportion to characters.
    """
    if not items:
        return
    if all(it["start"] is None for it in items):
        _split(items, 0.0, duration)
        return
    groups: list[list[int]] = []
    for i, it in enumerate(items):
        if it["start"] is not None or not groups:
            groups.append([i])
        else:
            groups[-1].append(i)
    if items[groups[0][0]]["start"] is None and len(groups) > 1:  # leading untimed tokens
        groups[1] = groups[0] + groups[1]
        groups.pop(0)
    for g in groups:
        members = [items[i] for i in g]
        timed = next(it for it in members if it["start"] is not None)
        if len(members) > 1:
            _split(members, timed["start"], max(timed["end"], timed["start"]))


def _split(members: list[dict[str, Any]], start: float, end: float, weights: list[float] | None = None) -> None:
    weights = weights or [max(it["span"][1] - it["span"][0], 1) for it in members]
    total = sum(weights) or 1.0
    acc = 0.0
    for it, w in zip(members, weights):
        it["start"] = start + (end - start) * acc / total
        acc += w
        it["end"] = start + (end - start) * acc / total


# -- other sources of timing ------------------------------------------------------------------

def spoken_from_characters(spoken_text: str, characters: Sequence[str], starts: Sequence[float],
                           ends: Sequence[float], to_display: Sequence[int]) -> list[dict[str, Any]]:
    """Spoken words from per-character timing (ElevenLabs' ``alignment``).

    ``characters`` should spell ``spoken_text``; where a service normalised the text the two
    are matched up with a sequence diff, and characters it added are timed but not placed.
    """
    import difflib

    said = "".join(characters)
    index: list[int | None] = [None] * len(characters)
    if said == spoken_text:
        index = list(range(len(characters)))
    else:
        sm = difflib.SequenceMatcher(None, said, spoken_text, autojunk=False)
        for a, b, size in sm.get_matching_blocks():
            for k in range(size):
                index[a + k] = b + k
    words: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for i, ch in enumerate(characters):
        if ch.isspace():
            current = None
            continue
        if current is None:
            current = {"pos": None, "start": float(starts[i]), "end": float(ends[i])}
            words.append(current)
        current["end"] = max(current["end"], float(ends[i]))
        at = index[i]
        if current["pos"] is None and at is not None:
            current["pos"] = to_display[at]
    # A word whose characters all failed to match takes the position of the word before it.
    last = 0
    for w in words:
        if w["pos"] is None:
            w["pos"] = last
        last = w["pos"]
    return words


def estimate(display: str, speech_start: float, speech_end: float, duration: float) -> list[dict[str, Any]]:
    """Words spread over [speech_start, speech_end] by length, with room for pauses at commas
    and sentence ends: a guess for backends that report no timing (marked as estimated)."""
    chunks = tokens(display)
    items: list[dict[str, Any]] = []
    weights: list[tuple[float, float]] = []
    for cs, ce, ts, te in chunks:
        if ts == te:
            ts, te = cs, ce
        tail = display[te:ce]
        pause = 4.0 if any(c in ".!?\u2026" for c in tail) else 2.0 if any(c in ",;:" for c in tail) else 0.0
        items.append({"span": [ts, te], "start": None, "end": None})
        weights.append((max(te - ts, 1) + 1.0, pause))
    if not items:
        return []
    total = sum(a + b for a, b in weights) - weights[-1][1]
    scale = (speech_end - speech_start) / total if total else 0.0
    t = speech_start
    for it, (chars, pause) in zip(items, weights):
        it["start"] = t
        it["end"] = t + chars * scale
        t = it["end"] + pause * scale
    return _finish(display, items, duration)


def shift(words: list[dict[str, Any]], phonemes: list[dict[str, Any]], offset: float,
          duration: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Timings after ``offset`` seconds were cut from the start of a file now ``duration`` long."""
    def move(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for it in items:
            start = min(max(it["start"] - offset, 0.0), duration)
            end = min(max(it["end"] - offset, start), duration)
            out.append({**it, "start": _sec(start), "end": _sec(end)})
        return out

    return move(words), move(phonemes)


#: One spoken piece of a line: (audio, its words or None, its phonemes), as :func:`join` takes them.
Part = tuple[Any, list[dict[str, Any]] | None, list[dict[str, Any]]]


def join(script: Any, parts: Sequence[Part],
         sample_rate: int) -> tuple[Any, list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """Join the audio of a :class:`~.script.Script`'s pieces into one line.

    ``parts``: per piece, (mono float32 audio, spoken words with ``pos`` a *spoken* index of
    that piece and times in seconds within it — or None when the backend gave no timing —,
    phonemes with times within it). Pieces are separated by their ``pause_after`` of silence;
    timings are moved to the joined timeline and words projected onto the display text.
    Returns (audio, words or None, phonemes).
    """
    import numpy as np

    chunks = []
    spoken: list[dict[str, Any]] | None = []
    phonemes: list[dict[str, Any]] = []
    t = 0.0
    for piece, (audio, words, phons) in zip(script.pieces, parts):
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        chunks.append(audio)
        if words is None or spoken is None:
            spoken = None
        else:
            last = len(piece.to_display) - 1
            spoken.extend({"pos": piece.to_display[min(max(w["pos"], 0), last)],
                           "start": w["start"] + t, "end": w["end"] + t} for w in words)
        phonemes.extend({**p, "start": _sec(p["start"] + t), "end": _sec(p["end"] + t)} for p in phons)
        t += len(audio) / sample_rate
        gap = round(piece.pause_after * sample_rate)
        if gap:
            chunks.append(np.zeros(gap, dtype=np.float32))
            t += gap / sample_rate
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    duration = len(audio) / sample_rate
    words_out = project(script.display, spoken, duration) if spoken is not None else None
    return audio, words_out, phonemes

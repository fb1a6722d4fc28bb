"""Subtitle cues (SRT and WebVTT) for a dialogue line, from its source text and word timings.

Input: the line's source text, its words (``{"text", "start", "end", "span"}``, ``span`` being the
word's half-open code-point range in the text, edge punctuation excluded) and the file's duration.
:func:`cues` picks the cues, :func:`render_srt` and :func:`render_vtt` write them.

Rules:

* **Text** is cut from the source text, not rebuilt from the words, so punctuation survives.
  Punctuation touching a word belongs to it. A free-standing mark (``« Bonjour »``, ``Où ?``,
  ``done -- maybe``) goes with the word before it, except opening marks (``« ( “ ¿ ¡``), which go
  with the word after, so a line never starts with ``»`` or ends with ``«``. Whitespace is collapsed
  to single spaces; no-break spaces (U+00A0, U+202F, U+2007) are kept and never broken at. Words
  glued without whitespace (``dit-il``, ``3.5``) are never split, except in CJK text, which has no
  spaces and may break between any two words.
* **Sentences first**: a cue never spans a sentence end (``. ! ? …`` and CJK ``。！？``), so each
  cue reads as a unit. A terminator followed by a lowercase word is not a sentence end (``"Stop!"
  she said``, ``e.g. from``), nor is the period of a common title (``Mr.``, ``Dr.``).
* **Then clauses**: a sentence too long for one cue (``max_lines`` lines of ``max_chars``) is split
  after ``, ; : — –`` where it can, because a cue that ends where the speaker pauses reads better
  than one that stops mid-phrase. The split with the fewest mid-clause breaks wins, then the one
  with the fewest cues, then the most balanced. A break between words inside a clause happens only
  where a clause alone does not fit.
* **Short sentences merge**: consecutive sentences that each fit on one line, with under 0.5 s of
  pause between them, share a cue while it still fits (``"Halt! Who goes there?"``), so quick
  exchanges do not flash by. Such a cue breaks its lines at the sentence ends where it can.
* **Lines**: the fewest lines that fit, then the most balanced break (ties go bottom-heavy). 42
  characters is the common broadcast / Netflix line limit for Latin scripts; CJK scripts usually
  want a smaller ``max_chars``. Length is ``len()`` (code points). A word longer than a line gets a
  line of its own and is never cut.
* **Timing**: a cue runs from its first word's start to its last word's end, then is held to at
  least ``min_duration`` where there is room: not past the next cue's start minus ``gap``, not past
  ``duration``. Cues are in order, never overlap and last at least 1 ms. Speech is never cut: a cue
  always covers its words, even a word the timings place past ``duration``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MERGE_PAUSE", "Cue", "cues", "render_srt", "render_vtt"]

#: Sentences separated by less than this pause (seconds) may share a cue.
MERGE_PAUSE = 0.5
_MIN_CUE = 0.001  # one millisecond: the resolution of both formats

_SENTENCE_END = frozenset(".!?…。！？｡‼⁇⁈⁉؟")
_CLAUSE_END = frozenset(",;:—–、，；：،")
_DASH_CHUNKS = frozenset({"-", "--", "—", "–"})
_OPENING = frozenset("¿¡")  # besides Unicode categories Ps (open bracket) and Pi (initial quote)
_NO_BREAK = "\u00a0\u202f\u2007"
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "mt", "jr", "sr", "vs", "messrs"})

_SPACE_RE = re.compile(rf"[^\S{_NO_BREAK}]+")  # breaking whitespace only
_CHUNK_RE = re.compile(rf"(?:\S|[{_NO_BREAK}])+")


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    lines: tuple[str, ...]


# --- text analysis ------------------------------------------------------------------------------

def _collapse(s: str) -> str:
    return _SPACE_RE.sub(" ", s).strip(" ")


def _is_opening(ch: str) -> bool:
    return ch in _OPENING or unicodedata.category(ch) in ("Ps", "Pi")


def _is_cjk(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _lead_start(text: str, s0: int) -> int:
    """Start of the first word's cue text: back over the punctuation-only chunks before it."""
    pos = s0
    for m in reversed(list(_CHUNK_RE.finditer(text, 0, s0))):
        a, b = m.span()
        k = b
        while k > a and not text[k - 1].isalnum():
            k -= 1
        if k == a:
            pos = a
            continue
        if b == s0:  # touching the word: keep just its punctuation
            pos = k
        break  # text that is not punctuation (an unspoken "[sighs]") is not shown
    return pos


def _tail_end(text: str, e: int) -> int:
    """End of the last word's cue text: on over the punctuation-only chunks after it."""
    pos = e
    for m in _CHUNK_RE.finditer(text, e):
        a, b = m.span()
        k = a
        while k < b and not text[k].isalnum():
            k += 1
        if k == b:
            pos = b
            continue
        if a == e:
            pos = k
        break
    return pos


def _split_gap(text: str, lo: int, hi: int) -> tuple[int, bool, bool]:
    """Divide the text between two words: (position, may break there, whitespace there)."""
    if not _SPACE_RE.search(text, lo, hi):
        # Glued (``dit-il``, ``3.5``, CJK): opening marks at the end go with the next word.
        pos = hi
        while pos > lo and _is_opening(text[pos - 1]):
            pos -= 1
        cjk = (lo > 0 and _is_cjk(text[lo - 1])) or (hi < len(text) and _is_cjk(text[hi]))
        return pos, cjk, False
    chunks = [m.span() for m in _CHUNK_RE.finditer(text, lo, hi)]
    if not chunks:
        return lo, True, True
    attached_prev, attached_next = chunks[0][0] == lo, chunks[-1][1] == hi
    for k, (a, b) in enumerate(chunks):
        if k == 0 and attached_prev:
            continue
        if (k == len(chunks) - 1 and attached_next) or all(_is_opening(c) for c in text[a:b]):
            return (chunks[k - 1][1] if k else lo), True, True
    return chunks[-1][1], True, True  # all of it goes with the word before


@dataclass
class _Unit:
    """Words that are never split (one word, or several glued together) and their cue text."""

    first: int  # word indices, inclusive
    last: int
    text: str
    sep: str  # joins it to the unit before on one line: " ", or "" for a CJK break


def _first_alpha(s: str) -> str:
    return next((c for c in s if c.isalpha()), "")


def _analyse(text: str, words: Sequence[dict[str, Any]]) -> tuple[list[_Unit], list[int]]:
    """Units, and for each boundary between two units its kind: 0 word, 1 clause, 2 sentence."""
    spans = []
    prev = 0
    for w in words:
        s, e = (int(x) for x in w["span"])
        if not prev <= s <= e <= len(text):
            raise ValueError(f"word span {[s, e]} is out of order or outside the text ({w.get('text')!r})")
        spans.append((s, e))
        prev = e
    n = len(spans)
    cuts = [_lead_start(text, spans[0][0])]  # word i owns text[cuts[i]:cuts[i + 1]]
    breakable, spaced = [], []
    for i in range(n - 1):
        pos, can, sp = _split_gap(text, spans[i][1], spans[i + 1][0])
        cuts.append(pos)
        breakable.append(can)
        spaced.append(sp)
    cuts.append(_tail_end(text, spans[-1][1]))
    for i, (s, e) in enumerate(spans):  # an empty word would make an empty line: glue it on
        if s == e and n > 1:
            breakable[i - 1 if i else 0] = False

    units: list[_Unit] = []
    i = 0
    while i < n:
        j = i
        while j < n - 1 and not breakable[j]:
            j += 1
        t = _collapse(text[cuts[i]:cuts[j + 1]])
        if t:
            units.append(_Unit(i, j, t, " " if i and spaced[i - 1] else ""))
        elif units:  # nothing to show: fold into the unit before
            units[-1].last = j
        i = j + 1

    kinds = []
    for u, v in zip(units, units[1:]):
        j, k = u.last, v.first
        trail = text[spans[j][1]:cuts[j + 1]]
        lead = text[cuts[k]:spans[k][0]]
        next_lower = _first_alpha(text[spans[k][0]:spans[k][1]]).islower()
        kind = 0
        ends = [c for c in trail if c in _SENTENCE_END]
        if ends:
            kind = 2
            only_period = all(c == "." for c in ends)
            word = re.sub(r"^\W+", "", text[spans[j][0]:spans[j][1]]).lower()
            if only_period and (next_lower or word in _ABBREVIATIONS):
                kind = 0  # "e.g. from", "Mr. Smith": an abbreviation, not an end
            elif next_lower:
                kind = 1  # '"Stop!" she said', "and then… nothing": the sentence goes on
        if kind == 0 and (
            any(c in _CLAUSE_END for c in trail)
            or any(c in _DASH_CHUNKS for c in trail.split())
            or lead.strip()[:1] in ("—", "–")
        ):
            kind = 1
        kinds.append(kind)
    return units, kinds


# --- layout -------------------------------------------------------------------------------------

class _Layout:
    def __init__(self, units: list[_Unit], kinds: list[int], max_chars: int, max_lines: int):
        self.units, self.kinds = units, kinds
        self.max_chars, self.max_lines = max_chars, max_lines
        self._prefix = [0]
        for u in units:
            self._prefix.append(self._prefix[-1] + len(u.sep) + len(u.text))

    def length(self, a: int, b: int) -> int:
        """Length of units a..b (inclusive) on one line."""
        return self._prefix[b + 1] - self._prefix[a] - len(self.units[a].sep)

    def reach(self, a: int, limit: int, max_lines: int) -> Iterator[int]:
        """Every b <= limit such that units a..b fit in max_lines lines (greedy fill is optimal)."""
        lines, cur = 1, len(self.units[a].text)
        yield a
        for k in range(a + 1, limit + 1):
            u = self.units[k]
            need = cur + len(u.sep) + len(u.text)
            if need > self.max_chars:  # also after an overlong word, which fills its line
                lines += 1
                if lines > max_lines:
                    return
                need = len(u.text)
            cur = need
            yield k

    def fits(self, a: int, b: int) -> bool:
        return max(self.reach(a, b, self.max_lines)) == b

    def split(self, a: int, b: int) -> list[tuple[int, int]]:
        """Units a..b cut into cues: fewest mid-clause breaks, then fewest cues, then balanced."""
        best: dict[int, tuple[int, int, int]] = {a: (0, 0, 0)}
        back: dict[int, int] = {}
        for i in range(a, b + 1):
            if i not in best:
                continue
            nb, nc, sq = best[i]
            for j in self.reach(i, b, self.max_lines):
                mid_clause = 0 if j == b or self.kinds[j] >= 1 else 1
                cost = (nb + mid_clause, nc + 1, sq + self.length(i, j) ** 2)
                if j + 1 not in best or cost < best[j + 1]:
                    best[j + 1], back[j + 1] = cost, i
        pieces, end = [], b + 1
        while end > a:
            pieces.append((back[end], end - 1))
            end = back[end]
        return pieces[::-1]

    def lines(self, a: int, b: int) -> tuple[str, ...]:
        """Units a..b in the fewest lines, breaking at sentence ends where possible, then balanced
        (ties bottom-heavy). The per-line costs add up, so a small DP finds the best."""
        count = 1
        for _ in range(self.max_lines):
            if max(self.reach(a, b, count)) == b:
                break
            count += 1
        best: dict[tuple[int, int], tuple[int, int, int]] = {(a, 0): (0, 0, 0)}
        back: dict[tuple[int, int], int] = {}
        for line in range(count):
            for i in range(a, b + 1):
                if (i, line) not in best:
                    continue
                pen, sq, heavy = best[(i, line)]
                for j in self.reach(i, b, 1):
                    if (j == b) != (line == count - 1):
                        continue
                    n = self.length(i, j)
                    brk = 0 if j == b or self.kinds[j] == 2 else 1
                    cost = (pen + brk, sq + n * n, heavy - line * n)
                    key = (j + 1, line + 1)
                    if key not in best or cost < best[key]:
                        best[key], back[key] = cost, i
        out, end = [], b + 1
        for line in range(count, 0, -1):
            start = back[(end, line)]
            us = self.units[start:end]
            out.append(us[0].text + "".join(u.sep + u.text for u in us[1:]))
            end = start
        return tuple(out[::-1])


# --- cues ---------------------------------------------------------------------------------------

def cues(text: str, words: Sequence[dict[str, Any]], duration: float, *, max_chars: int = 42,
         max_lines: int = 2, min_duration: float = 0.7, gap: float = 0.0) -> list[Cue]:
    """The subtitle cues for one line of dialogue (see the module docstring for the rules)."""
    if max_chars < 1 or max_lines < 1:
        raise ValueError("max_chars and max_lines must be at least 1")
    if min_duration < 0 or gap < 0 or duration < 0:
        raise ValueError("min_duration, gap and duration must not be negative")
    if not words:
        return []
    units, kinds = _analyse(text, words)
    if not units:
        return []
    lay = _Layout(units, kinds, max_chars, max_lines)

    pieces: list[tuple[int, int, bool]] = []  # (first unit, last unit, a whole short sentence)
    a = 0
    for b in [k for k, kind in enumerate(kinds) if kind == 2] + [len(units) - 1]:
        if lay.fits(a, b):
            pieces.append((a, b, lay.length(a, b) <= max_chars))
        else:
            pieces.extend((x, y, False) for x, y in lay.split(a, b))
        a = b + 1

    groups: list[list[Any]] = []
    for a, b, short in pieces:
        if groups and short and groups[-1][2]:
            pause = float(words[units[a].first]["start"]) - float(words[units[groups[-1][1]].last]["end"])
            if pause < MERGE_PAUSE and lay.fits(groups[-1][0], b):
                groups[-1][1] = b
                continue
        groups.append([a, b, short])

    spans = [(float(words[units[a].first]["start"]), float(words[units[b].last]["end"])) for a, b, _ in groups]
    out: list[Cue] = []
    prev_end = -math.inf
    for k, ((a, b, _), (start, end)) in enumerate(zip(groups, spans)):
        start = max(start, prev_end)  # only moves when an earlier zero-length cue took 1 ms
        end = max(end, start)
        limit = duration if k == len(spans) - 1 else min(duration, spans[k + 1][0] - gap)
        end = max(end, min(start + min_duration, limit))
        if end <= start:  # zero-length speech: show it for 1 ms, inside the file if there is room
            end = min(start + _MIN_CUE, duration)
            if end <= start:
                start = max(prev_end, end - _MIN_CUE, 0.0)
                if end <= start:
                    end = start + _MIN_CUE
        out.append(Cue(start, end, lay.lines(a, b)))
        prev_end = end
    return out


# --- rendering ----------------------------------------------------------------------------------

def _prepared(cue_list: Sequence[Cue]) -> Iterator[tuple[int, int, list[str]]]:
    """Cues in whole milliseconds (start down, end up), kept apart and non-empty after rounding;
    blank lines are dropped since a blank line ends a cue in both formats."""
    prev = 0
    for cue in cue_list:
        lines = [s.strip() for line in cue.lines for s in line.splitlines() if s.strip()]
        if not lines:
            continue
        start = max(math.floor(cue.start * 1000 + 1e-6), prev)  # 1e-6: 1.001 * 1000 < 1001
        end = max(math.ceil(cue.end * 1000 - 1e-6), start + 1)
        prev = end
        yield start, end, lines


def _timestamp(ms: int, sep: str) -> str:
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render_srt(cue_list: Sequence[Cue]) -> str:
    """SubRip text; "" for no cues."""
    blocks = [f"{i}\n{_timestamp(s, ',')} --> {_timestamp(e, ',')}\n" + "\n".join(lines)
              for i, (s, e, lines) in enumerate(_prepared(cue_list), 1)]
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _vtt_escape(s: str) -> str:
    # Escaping ">" also keeps "-->" out of the cue text, where it would end the cue.
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(cue_list: Sequence[Cue]) -> str:
    """WebVTT text; just the header for no cues."""
    blocks = [f"{_timestamp(s, '.')} --> {_timestamp(e, '.')}\n" + "\n".join(map(_vtt_escape, lines))
              for s, e, lines in _prepared(cue_list)]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + "\n" if blocks else "WEBVTT\n"

"""The ``espeak`` backend: dialogue spoken by eSpeak NG, embedded.

eSpeak NG runs in this process through ctypes on the shared library shipped by the
``espeakng-loader`` wheel (see :mod:`._espeak_ctypes`); nothing needs installing system-wide.
It is small, fast (a few ms of CPU a line) and speaks about a hundred languages, but sounds
robotic: a placeholder voice for prototypes and scratch dialogue.

Determinism: on platforms with ``os.fork`` (Linux, macOS) every line is spoken by a child
forked from a process that initialised eSpeak but never spoke, so the same request always
gives the same bytes (about 10 ms a line). Without fork (Windows) lines are spoken in process
and repeated runs may differ slightly.

Timing: ``meta["words"]`` has one entry per source token (a whitespace-separated word with
punctuation stripped from its edges), with the time span of everything eSpeak said for it
("$1,250" spans all of "one thousand two hundred and fifty dollars"), taken from eSpeak's
word and phoneme events. ``meta["phonemes"]`` lists eSpeak's phoneme mnemonics with times.

Importing this module is cheap: numpy and the library are loaded by ``load``/``generate``.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import unicodedata
from typing import Any, ClassVar

from ..manifest.fields import Field
from .base import BackendUnavailable, Request, Result

INSTALL_HINT = "pip install espeakng-loader"

# Delivery per emotion, applied on top of the voice settings:
#   rate:    multiplier on the speaking rate (words per minute)
#   pitch:   offset added to the base pitch (0-100 scale)
#   range:   pitch range (intonation) to use instead of the voice's, 0-100; None keeps it
#   variant: eSpeak voice variant to switch to (replacing any the voice has); None keeps it
# Results are clamped to the settings' limits.
EMOTION_DELIVERY: dict[str, dict[str, Any]] = {
    "neutral": {"rate": 1.00, "pitch": 0, "range": None, "variant": None},
    "happy": {"rate": 1.08, "pitch": 8, "range": 70, "variant": None},
    "excited": {"rate": 1.20, "pitch": 15, "range": 85, "variant": None},
    "sad": {"rate": 0.82, "pitch": -12, "range": 20, "variant": None},
    "angry": {"rate": 1.10, "pitch": -6, "range": 80, "variant": None},
    "fearful": {"rate": 1.15, "pitch": 12, "range": 35, "variant": None},
    "surprised": {"rate": 1.05, "pitch": 18, "range": 90, "variant": None},
    "calm": {"rate": 0.90, "pitch": -4, "range": 35, "variant": None},
    "whisper": {"rate": 0.90, "pitch": 0, "range": 40, "variant": "whisper"},
}

_SETTINGS = (
    Field("voice", "str", "eSpeak NG voice name, e.g. en-us, en-gb, fr, de; optionally with a variant: en-us+f3",
          default="en-us"),
    Field("rate", "int", "Speaking rate in words per minute", default=175, minimum=80, maximum=450),
    Field("pitch", "int", "Base pitch, 0-100", default=50, minimum=0, maximum=100),
    Field("range", "int", "Pitch range (intonation), 0-100", default=50, minimum=0, maximum=100),
)
_BY_NAME = {f.name: f for f in _SETTINGS}


def _paths() -> tuple[str, str]:
    """(shared library, data folder) from espeakng-loader, without loading anything."""
    import espeakng_loader  # light: pathlib, platform, ctypes

    lib = espeakng_loader.get_library_path()
    data = os.path.join(os.path.dirname(lib), "espeak-ng-data")
    try:
        data = espeakng_loader.get_data_path()
    except Exception:  # noqa: BLE001 - reported by the existence check below
        pass
    return lib, data


def _engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"espeakng-loader {version('espeakng-loader')}"
    except PackageNotFoundError:
        return "espeakng-loader (not installed)"


def _clamp(name: str, value: float) -> int:
    f = _BY_NAME[name]
    return int(min(max(round(value), f.minimum), f.maximum))


def _split_voice(voice: str) -> tuple[str, str | None]:
    base, plus, variant = voice.strip().partition("+")
    return base.strip(), (variant.strip() or None) if plus else None


def delivery(request: Request) -> dict[str, Any]:
    """The voice and parameters that speak ``request``: settings, defaults, then emotion."""
    s = request.settings or {}
    voice = str(s.get("voice") or _BY_NAME["voice"].default)
    rate = s.get("rate", _BY_NAME["rate"].default)
    pitch = s.get("pitch", _BY_NAME["pitch"].default)
    range_ = s.get("range", _BY_NAME["range"].default)
    base, variant = _split_voice(voice)
    if request.emotion:
        try:
            adj = EMOTION_DELIVERY[request.emotion]
        except KeyError:
            raise ValueError(f"unknown emotion '{request.emotion}' (expected one of "
                             + ", ".join(EMOTION_DELIVERY) + ")") from None
        rate = rate * adj["rate"]
        pitch = pitch + adj["pitch"]
        if adj["range"] is not None:
            range_ = adj["range"]
        if adj["variant"]:
            new = adj["variant"]
            # keep a female voice female: eSpeak has a female whisper
            if new == "whisper" and variant and re.fullmatch(r"f\d+|whisperf", variant):
                new = "whisperf"
            variant = new
    return {
        "voice": base + (f"+{variant}" if variant else ""),
        "base": base,
        "variant": variant,
        "rate": _clamp("rate", rate),
        "pitch": _clamp("pitch", pitch),
        "range": _clamp("range", range_),
    }


class EspeakBackend:
    name: ClassVar[str] = "espeak"
    kinds: ClassVar[frozenset[str]] = frozenset({"dialogue"})
    max_batch: ClassVar[int] = 32
    parallel: ClassVar[bool] = True
    settings: ClassVar[tuple[Field, ...]] = _SETTINGS
    VERSION: ClassVar[str] = "1"

    def __init__(self) -> None:
        self._engine: Any = None

    # -- protocol ----------------------------------------------------------------------
    def availability(self) -> str | None:
        try:
            lib, data = _paths()
        except ImportError:
            return f"espeakng-loader is not installed ({INSTALL_HINT})"
        except Exception as exc:  # noqa: BLE001
            return f"espeakng-loader is broken: {exc} (reinstall: {INSTALL_HINT})"
        if not os.path.isfile(lib):
            return f"eSpeak NG library not found at {lib} (reinstall: {INSTALL_HINT})"
        if not os.path.isfile(os.path.join(data, "phontab")):
            return f"eSpeak NG data not found at {data} (reinstall: {INSTALL_HINT})"
        return None

    def fingerprint(self, request: Request) -> dict[str, Any]:
        return {"backend": self.name, "version": self.VERSION, "engine": _engine_version()}

    def load(self) -> None:
        from . import _espeak_ctypes as ec

        with ec.LOCK:
            if self._engine is not None and self._engine.lib is not None:
                return
            reason = self.availability()
            if reason:
                raise BackendUnavailable(reason)
            lib, data = _paths()
            try:
                self._engine = ec.engine(lib, data)
            except OSError as exc:
                raise BackendUnavailable(f"cannot load the eSpeak NG library {lib}: {exc} "
                                         f"(reinstall: {INSTALL_HINT})") from exc

    def unload(self) -> None:
        if self._engine is None:
            return
        from . import _espeak_ctypes as ec

        ec.close()
        self._engine = None

    def generate(self, requests: list[Request]) -> list[Result]:
        import numpy as np

        from . import _espeak_ctypes as ec

        self.load()
        results = []
        with ec.LOCK:
            eng = self._engine
            speak = eng.synth_forked if _CAN_FORK else eng.synth
            _, data = _paths()
            for req in requests:
                if req.kind not in self.kinds:
                    raise ValueError(f"the espeak backend speaks dialogue, not {req.kind}")
                if not req.text or not req.text.strip():
                    raise ValueError(f"{req.id}: no text to speak")
                d = delivery(req)
                _check_variant(d["variant"], data)
                pcm, events = speak(req.text, d["voice"], d["rate"], d["pitch"], d["range"], req.seed)
                if not pcm:
                    raise ec.SynthError(f"{req.id}: eSpeak produced no audio")
                audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768.0)
                sr = eng.sample_rate
                words, phonemes = align(req.text, events, len(audio), sr)
                results.append(Result(audio=audio, sample_rate=sr, meta={
                    "words": words,
                    "phonemes": phonemes,
                    "voice": d["voice"],
                    "generator": f"eSpeak NG {eng.version}".strip(),
                }))
        return results


_CAN_FORK = hasattr(os, "fork") and sys.platform != "win32"

_variant_cache: dict[str, bool] = {}
_variant_lock = threading.Lock()


def _check_variant(variant: str | None, data: str) -> None:
    """eSpeak silently ignores an unknown variant: refuse it instead."""
    if not variant:
        return
    with _variant_lock:
        ok = _variant_cache.get(variant)
        if ok is None:
            folder = os.path.join(data, "voices", "!v")
            ok = os.path.basename(variant) == variant and os.path.isfile(os.path.join(folder, variant))
            _variant_cache[variant] = ok
    if not ok:
        raise ValueError(f"unknown eSpeak voice variant '{variant}' (try f1-f5, m1-m8, whisper, klatt, ...)")


# -- word and phoneme timing -----------------------------------------------------------

_CHUNK = re.compile(r"\S+")


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


# Punctuation eSpeak never speaks as a word (dashes, brackets, quotes, sentence marks), as
# opposed to '&', '%', '@', '#', '*', '/' which it may read out.
_SILENT_CATEGORIES = ("Pd", "Ps", "Pe", "Pi", "Pf")
_SILENT_CHARS = frozenset(".,;:!?\u2026\u00a1\u00bf\"'\u00b7\u2025")


def _is_silent(ch: str) -> bool:
    return ch in _SILENT_CHARS or unicodedata.category(ch) in _SILENT_CATEGORIES


def tokens(text: str) -> list[tuple[int, int, int, int]]:
    """Candidate source tokens: (chunk start, chunk end, token start, token end), in code points.

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


def align(text: str, events: list, n: int, sr: int) -> tuple[list[dict], list[dict]]:
    """Words and phonemes (times in seconds) from eSpeak events for a synthesis of ``n`` samples.

    ``events``: (type, text_position, length, sample, symbol) in emission order, with
    eSpeak's 1-based character positions.
    """
    from ._espeak_ctypes import EVENT_END, EVENT_PHONEME, EVENT_WORD

    phon = [(min(max(e[3], 0), n), e[4] or "") for e in events if e[0] == EVENT_PHONEME]
    ends = sorted(min(max(e[3], 0), n) for e in events if e[0] == EVENT_END)
    word_samples = sorted(min(max(e[3], 0), n) for e in events if e[0] == EVENT_WORD)

    # Each WORD event with the phonemes spoken for it (those that follow it in the stream).
    spoken: list[dict] = []
    pi = 0
    for e in events:
        if e[0] == EVENT_WORD:
            spoken.append({"pos": e[1] - 1, "sample": min(max(e[3], 0), n), "last": None})
        elif e[0] == EVENT_PHONEME:
            if spoken and not (e[4] or "").startswith("_"):
                spoken[-1]["last"] = pi
            pi += 1

    chunks = tokens(text)
    # Assign each spoken word to the chunk its text position falls in, or else the next one
    # (eSpeak's positions can drift past skipped punctuation).
    owner: list[list[dict]] = [[] for _ in chunks]
    ci = 0
    for w in sorted(spoken, key=lambda w: w["pos"]):
        while ci < len(chunks) - 1 and chunks[ci][1] <= w["pos"]:
            ci += 1
        if chunks:
            owner[ci].append(w)

    def word_end(w: dict) -> int:
        if w["last"] is not None:  # the next phoneme event starts where the word stops
            return phon[w["last"] + 1][0] if w["last"] + 1 < len(phon) else n
        later = [s for s in word_samples if s > w["sample"]] + [s for s in ends if s > w["sample"]]
        return min(later, default=n)

    # One entry per token; all-punctuation chunks count only when eSpeak spoke them ("&").
    items: list[dict] = []
    for (cs, ce, ts, te), ws in zip(chunks, owner):
        if ts == te:
            if not ws:
                continue
            ts, te = cs, ce
        entry = {"span": [ts, te], "start": None, "end": None}
        if ws:
            entry["start"] = min(w["sample"] for w in ws)
            entry["end"] = max(word_end(w) for w in ws)
        items.append(entry)

    _fill_untimed(items, n)

    def sec(x: int) -> float:
        return min(round(x / sr, 4), n / sr)

    # Words abut when there is no pause: a word ends where the next one starts at the latest.
    for it, nxt in zip(items, items[1:]):
        if it["start"] <= nxt["start"] < it["end"]:
            it["end"] = nxt["start"]

    words = []
    prev = 0
    for it in items:
        start = min(max(it["start"], prev), n)
        end = min(max(it["end"], start), n)
        prev = end
        s, e = it["span"]
        words.append({"text": text[s:e], "start": sec(start), "end": sec(end), "span": [s, e]})

    phonemes = []
    for i, (start, symbol) in enumerate(phon):
        end = phon[i + 1][0] if i + 1 < len(phon) else n
        if symbol.startswith("_") or end <= start:
            continue  # pauses and zero-length modifiers
        phonemes.append({"symbol": symbol, "start": sec(start), "end": sec(end)})
    return words, phonemes


def _fill_untimed(items: list[dict], n: int) -> None:
    """Give tokens eSpeak spoke no word event for a share of their neighbour's time.

    eSpeak sometimes speaks two words as one ("on the"); the untimed word shares the
    interval of the timed word before it (or after it, at the start), in proportion to
    the characters of each.
    """
    timed = [i for i, it in enumerate(items) if it["start"] is not None]
    if not timed:
        _split(items, 0, n)
        return
    groups: list[list[int]] = []
    for i, it in enumerate(items):
        if it["start"] is not None or not groups:
            groups.append([i])
        else:
            groups[-1].append(i)
    # Leading untimed tokens join the first timed token's group.
    if items[groups[0][0]]["start"] is None and len(groups) > 1:
        groups[1] = groups[0] + groups[1]
        groups.pop(0)
    for g in groups:
        members = [items[i] for i in g]
        timed_one = next(it for it in members if it["start"] is not None)
        if len(members) > 1:
            _split(members, timed_one["start"], max(timed_one["end"], timed_one["start"]))


def _split(members: list[dict], start: int, end: int) -> None:
    weights = [max(it["span"][1] - it["span"][0], 1) for it in members]
    total = sum(weights)
    acc = 0
    for it, w in zip(members, weights):
        it["start"] = start + (end - start) * acc // total
        acc += w
        it["end"] = start + (end - start) * acc // total

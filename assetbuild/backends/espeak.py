"""The ``espeak`` backend: dialogue spoken by eSpeak NG, embedded.

eSpeak NG runs in this process through ctypes on the shared library shipped by the
``espeakng-loader`` wheel (see :mod:`._espeak_ctypes`); nothing needs installing system-wide.
It is small, fast (a few ms of CPU a line) and speaks about a hundred languages, but sounds
robotic: a placeholder voice for prototypes and scratch dialogue.

Determinism: on platforms with ``os.fork`` (Linux, macOS) every line is spoken by a child
forked from a process that initialised eSpeak but never spoke, so the same request always
gives the same bytes (about 10 ms a line). Without fork (Windows) lines are spoken in process
and repeated runs may differ slightly.

Timing: ``meta["words"]`` has one entry per source token of the displayed text (see
:mod:`assetbuild.speech.alignment`), with the time span of everything eSpeak said for it
("$1,250" spans all of "one thousand two hundred and fifty dollars"), taken from eSpeak's
word and phoneme events. ``meta["phonemes"]`` lists eSpeak's phoneme mnemonics with times.
Lexicon phonemes are passed as eSpeak's ``[[...]]`` phoneme input (enabled for every line).

Importing this module is cheap: numpy and the library are loaded by ``load``/``generate``.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Any, ClassVar

from ..fields import Field
from .base import BackendUnavailable, BaseBackend, InvalidRequest, Request, Result

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
    Field("voice", "str", "eSpeak NG voice name, e.g. en-us, en-gb, fr, de; optionally with a variant: "
          "en-us+f3. Default: the line's locale (\"en\" speaks en-us), or en-us without locales."),
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
    except Exception:
        pass
    return lib, data


def _engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"espeakng-loader {version('espeakng-loader')}"
    except PackageNotFoundError:
        return "espeakng-loader (not installed)"


def _clamp(name: str, value: float) -> int:
    return int(_BY_NAME[name].clamp(round(value)))


def locale_voice(locale: str | None) -> str:
    """The eSpeak voice for a locale code: voices are named by language ("fr", "pt-br")."""
    if not locale or locale.lower() == "en":
        return "en-us"
    return locale.lower()


def _split_voice(voice: str) -> tuple[str, str | None]:
    base, plus, variant = voice.strip().partition("+")
    return base.strip(), (variant.strip() or None) if plus else None


def delivery(request: Request) -> dict[str, Any]:
    """The voice and parameters that speak ``request``: settings, defaults, then emotion."""
    s = request.settings or {}
    voice = str(s.get("voice") or locale_voice(request.locale))
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


class EspeakBackend(BaseBackend):
    name: ClassVar[str] = "espeak"
    kinds: ClassVar[frozenset[str]] = frozenset({"dialogue"})
    max_batch: ClassVar[int] = 32
    parallel: ClassVar[bool] = True
    deterministic: ClassVar[bool] = True  # same input, same samples (tests compare bytes)
    settings: ClassVar[tuple[Field, ...]] = _SETTINGS
    VERSION: ClassVar[str] = "2"

    def __init__(self) -> None:
        self._engine: Any = None

    # -- protocol ----------------------------------------------------------------------
    def availability(self) -> str | None:
        try:
            lib, data = _paths()
        except ImportError:
            return f"espeakng-loader is not installed ({INSTALL_HINT})"
        except Exception as exc:
            return f"espeakng-loader is broken: {exc} (reinstall: {INSTALL_HINT})"
        if not os.path.isfile(lib):
            return f"eSpeak NG library not found at {lib} (reinstall: {INSTALL_HINT})"
        if not os.path.isfile(os.path.join(data, "phontab")):
            return f"eSpeak NG data not found at {data} (reinstall: {INSTALL_HINT})"
        return None

    def fingerprint(self, request: Request) -> dict[str, Any]:
        return {"backend": self.name, "version": self.VERSION, "engine": _engine_version()}

    def licence(self, request: Request) -> dict[str, Any]:
        # The GPL covers eSpeak NG's code, not the speech it outputs.
        return {"name": "eSpeak NG (GPL-3.0-or-later engine; output unrestricted)", "commercial": True}

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

        from ..speech.alignment import join
        from ..speech.script import prepare
        from . import _espeak_ctypes as ec

        self.load()
        results = []
        with ec.LOCK:
            eng = self._engine
            speak = eng.synth_forked if _CAN_FORK else eng.synth
            _, data = _paths()
            sr = eng.sample_rate
            for req in requests:
                if req.kind not in self.kinds:
                    raise ValueError(f"the espeak backend speaks dialogue, not {req.kind}")
                if not req.text or not req.text.strip():
                    raise ValueError(f"{req.id}: no text to speak")
                d = delivery(req)
                _check_variant(d["variant"], data)
                script = prepare(req.text, ssml=req.ssml, lexicon=req.lexicon, max_chars=MAX_CHARS,
                                 phonemes=lambda p: f"[[{p}]]")
                if not script.pieces:
                    raise ValueError(f"{req.id}: nothing to speak in {req.text!r}")
                flags = ec.espeakPHONEMES | (ec.espeakSSML if script.ssml else 0)
                parts = []
                for piece in script.pieces:
                    try:
                        pcm, events = speak(piece.spoken, d["voice"], d["rate"], d["pitch"], d["range"], req.seed,
                                            flags)
                    except ec.VoiceError as exc:  # a voice or language eSpeak does not have
                        raise InvalidRequest("settings.voice" if (req.settings or {}).get("voice") else "locale",
                                             str(exc)) from None
                    if not pcm:
                        raise ec.SynthError(f"{req.id}: eSpeak produced no audio")
                    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768.0)
                    parts.append((audio, *spoken_words(events, len(audio), sr)))
                audio, words, phonemes = join(script, parts, sr)
                results.append(Result(audio=audio, sample_rate=sr, meta={
                    "text": script.display,
                    "words": words,
                    "phonemes": phonemes,
                    "timing": "measured",
                    "voice": d["voice"],
                    "generator": f"eSpeak NG {eng.version}".strip(),
                }))
        return results


# eSpeak speaks long text fine, but a line is split at sentences past this many characters so
# one piece's timing drift or a runaway expansion stays local.
MAX_CHARS = 600

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

def spoken_words(events: list, n: int, sr: int) -> tuple[list[dict], list[dict]]:
    """eSpeak events of a synthesis of ``n`` samples -> (spoken words, phonemes), in seconds.

    ``events``: (type, text_position, length, sample, symbol) in emission order, with eSpeak's
    1-based character positions. A spoken word ends where its last phoneme ends (the next WORD
    event would include the pause) and starts with its first. ``pos`` is its 0-based position
    in the spoken text.
    """
    from ._espeak_ctypes import EVENT_END, EVENT_PHONEME, EVENT_WORD

    def clip(x: int) -> int:
        return min(max(x, 0), n)

    phon = [(clip(e[3]), e[4] or "") for e in events if e[0] == EVENT_PHONEME]
    ends = sorted(clip(e[3]) for e in events if e[0] == EVENT_END)
    word_samples = sorted(clip(e[3]) for e in events if e[0] == EVENT_WORD)

    spoken: list[dict] = []
    pi = 0
    for e in events:
        if e[0] == EVENT_WORD:
            spoken.append({"pos": e[1] - 1, "sample": clip(e[3]), "first": None, "last": None})
        elif e[0] == EVENT_PHONEME:
            if spoken and not (e[4] or "").startswith("_"):
                if spoken[-1]["first"] is None:
                    spoken[-1]["first"] = pi
                spoken[-1]["last"] = pi
            pi += 1

    def word_end(w: dict) -> int:
        if w["last"] is not None:  # the next phoneme event starts where the word stops
            return phon[w["last"] + 1][0] if w["last"] + 1 < len(phon) else n
        later = [s for s in word_samples if s > w["sample"]] + [s for s in ends if s > w["sample"]]
        return min(later, default=n)

    def word_start(w: dict) -> int:  # its first sounding phoneme: the WORD event may precede a pause
        return max(w["sample"], phon[w["first"]][0]) if w["first"] is not None else w["sample"]

    words = [{"pos": w["pos"], "start": word_start(w) / sr, "end": word_end(w) / sr} for w in spoken]
    phonemes = []
    for i, (start, symbol) in enumerate(phon):
        end = phon[i + 1][0] if i + 1 < len(phon) else n
        if symbol.startswith("_") or end <= start:
            continue  # pauses and zero-length modifiers
        phonemes.append({"symbol": symbol, "start": round(start / sr, 4), "end": round(end / sr, 4)})
    return words, phonemes


def align(text: str, events: list, n: int, sr: int) -> tuple[list[dict], list[dict]]:
    """Words of ``text`` (spoken as is, in one piece) and phonemes, from eSpeak events."""
    from ..speech.alignment import project

    spoken, phonemes = spoken_words(events, n, sr)
    return project(text, spoken, n / sr), phonemes

"""The ``piper`` backend: natural neural speech on the CPU, offline, with measured word timings.

Piper voices are VITS models exported to ONNX (one file per voice, about 60 MB, with a JSON
config). The bundled voice, ``en_US-joe-medium`` (CC0), comes with ``assetbuild[piper]``; any
other Piper voice is a ``.onnx`` path or a hub voice pulled with ``assetbuild models pull piper:NAME``.

How a line is spoken:

* **Phonemes** come from piper's own phonemiser (``PiperVoice.phonemize``: piper's build of eSpeak
  NG and its data, with the voice's settings such as vowel clusters), because a voice was
  trained on exactly those symbols; the core's eSpeak NG library is another build, and a
  phoneme it writes differently is a sound the voice never learnt.
* **The model** runs in onnxruntime through :mod:`._piper_onnx`, which rewrites the graph so its
  noise comes from the request's seed (the same seed gives the same bytes in any process; a
  different seed, a different take) and the per-phoneme durations come out with the audio.
  One sentence per model call, as Piper does; lines longer than ``MAX_CHARS`` are first split
  at sentences by :mod:`assetbuild.speech.script`.
* **Timing is measured**: each phoneme lasts the frames the model gave its ids (times the
  hop length), so phoneme and word times are exact. Words are found in the phoneme stream by
  phonemising each written word alone and aligning the two with a sequence diff, which also
  covers eSpeak's merges ("of the") and expansions ("$1,250").
* **Level**: the raw model output, not peak-normalised per sentence as Piper's command line
  does (that changes loudness between sentences of one line); mastering sets the loudness.

Emotion: VITS has no emotion input; :data:`EMOTION_DELIVERY` maps each emotion onto what it does
have, speed, voice variation (noise), rhythm variation (noise_w) and pauses between sentences.
Runs in worker processes (``parallel``): onnxruntime on one thread each, one voice loaded per process.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..fields import Field
from ..models.catalog import PIPER_BUNDLED
from .base import BackendUnavailable, BaseBackend, InvalidRequest, Request, Result

if TYPE_CHECKING:
    from ..models.voices import Voice
    from ..speech.alignment import Part

INSTALL = 'pip install "assetbuild[piper]"'
PACKAGES = ("piper-tts", "onnx", "onnxruntime")
# numpy's Generator draws the noise: a new numpy may draw other numbers, so it keys the take too.
FINGERPRINT_PACKAGES = (*PACKAGES, "numpy")

# Delivery per emotion: multipliers on (rate, noise, noise_w) and seconds added between sentences.
EMOTION_DELIVERY: dict[str, tuple[float, float, float, float]] = {
    "neutral": (1.00, 1.00, 1.00, 0.0),
    "happy": (1.06, 1.15, 1.10, 0.0),
    "excited": (1.15, 1.30, 1.25, 0.0),
    "sad": (0.85, 0.80, 0.70, 0.25),
    "angry": (1.08, 1.25, 1.10, 0.0),
    "fearful": (1.12, 1.20, 1.35, 0.1),
    "surprised": (1.05, 1.30, 1.20, 0.0),
    "calm": (0.92, 0.75, 0.60, 0.2),
    "whisper": (0.90, 0.60, 0.70, 0.1),  # VITS cannot whisper: slower and flatter, nothing more
}

_SETTINGS = (
    Field("voice", "str", f"Piper voice: the bundled {PIPER_BUNDLED}, a hub voice pulled with `assetbuild models "
          "pull piper:NAME` (e.g. en_GB-alan-medium), or a path to a .onnx voice with its .onnx.json beside it.",
          default=PIPER_BUNDLED),
    Field("speaker", "str", "Speaker of a multi-speaker voice: a name from its config's speaker_id_map, or a "
          "number (\"12\"). Default: the voice's first speaker."),
    Field("rate", "float", "Speed; 1 is the voice's own, 1.2 is 20% faster (divides the voice's length scale).",
          default=1.0, minimum=0.25, maximum=4.0),
    Field("noise", "float", "Variation of the voice (VITS noise scale). Default: the voice's (0.667 for most).",
          minimum=0.0, maximum=2.0),
    Field("noise_w", "float", "Variation of the rhythm (phoneme-duration noise). Default: the voice's (0.8 for "
          "most).", minimum=0.0, maximum=2.0),
    Field("sentence_silence", "float", "Seconds of silence added between sentences of a line.", default=0.0,
          minimum=0.0, maximum=5.0),
)
_BY_NAME = {f.name: f for f in _SETTINGS}

# Longer lines are split at sentences (then clauses) before phonemising: one model call each.
MAX_CHARS = 400
_KEEP_LOADED = 2  # voices kept loaded per process (a project rarely mixes more per batch)


def delivery(request: Request, inference: dict[str, Any]) -> dict[str, float]:
    """rate, noise, noise_w, sentence_silence: settings (else the voice's defaults), then emotion."""
    s = request.settings or {}
    d = {
        "rate": float(s.get("rate", _BY_NAME["rate"].default)),
        "noise": float(s["noise"]) if s.get("noise") is not None else float(inference.get("noise_scale", 0.667)),
        "noise_w": float(s["noise_w"]) if s.get("noise_w") is not None else float(inference.get("noise_w", 0.8)),
        "sentence_silence": float(s.get("sentence_silence", _BY_NAME["sentence_silence"].default)),
    }
    if request.emotion:
        try:
            rate, noise, noise_w, pause = EMOTION_DELIVERY[request.emotion]
        except KeyError:
            raise InvalidRequest("emotion", f"unknown emotion '{request.emotion}' (expected one of "
                                 + ", ".join(EMOTION_DELIVERY) + ")") from None
        d["rate"] = _BY_NAME["rate"].clamp(d["rate"] * rate)
        d["noise"] = _BY_NAME["noise"].clamp(d["noise"] * noise)
        d["noise_w"] = _BY_NAME["noise_w"].clamp(d["noise_w"] * noise_w)
        d["sentence_silence"] = _BY_NAME["sentence_silence"].clamp(d["sentence_silence"] + pause)
    return {k: round(float(v), 4) for k, v in d.items()}


@dataclass
class _Loaded:
    voice: Voice
    identity: tuple[str, str]
    session: Any  # _piper_onnx.Session
    phonemizer: Any  # piper.voice.PiperVoice, used for its phonemiser only
    config: dict[str, Any]
    sample_rate: int
    hop: int


class PiperBackend(BaseBackend):
    name: ClassVar[str] = "piper"
    kinds: ClassVar[frozenset[str]] = frozenset({"dialogue"})
    max_batch: ClassVar[int] = 8
    parallel: ClassVar[bool] = True
    # Same request, same bytes: the noise is fed from the seed and onnxruntime runs one thread
    # (tests compare bytes across processes). onnxruntime picks kernels by CPU features, so the
    # promise is per kind of machine, as for the other deterministic backends.
    deterministic: ClassVar[bool] = True
    settings: ClassVar[tuple[Field, ...]] = _SETTINGS
    VERSION: ClassVar[str] = "1"

    def __init__(self) -> None:
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.Lock()
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._ready = False

    # -- protocol ----------------------------------------------------------------------------
    def availability(self) -> str | None:
        from .neural import missing_packages

        missing = missing_packages(*PACKAGES)
        if missing:
            return f"needs {', '.join(missing)}: {INSTALL}"
        return None

    def voice(self, request: Request) -> Voice:
        from ..models import voices

        ref = str((request.settings or {}).get("voice") or PIPER_BUNDLED)
        return voices.locate(ref, request.base_dir)

    def fingerprint(self, request: Request) -> dict[str, Any]:
        from .neural import versions

        fp: dict[str, Any] = {"backend": self.name, "version": self.VERSION,
                              "engine": versions(*FINGERPRINT_PACKAGES)}
        try:
            voice = self.voice(request)
            fp["voice"] = {"model": self._hash(voice.model), "config": self._hash(voice.config)}
        except (BackendUnavailable, InvalidRequest, OSError) as exc:  # the build fails these entries with it
            fp["voice"] = {"ref": (request.settings or {}).get("voice"), "unavailable": str(exc)}
        return fp

    def licence(self, request: Request) -> dict[str, Any]:
        from ..models import voices

        try:
            return voices.licence(self.voice(request))
        except (BackendUnavailable, InvalidRequest):
            return {"name": "unknown", "commercial": False, "model": (request.settings or {}).get("voice")}

    def load(self) -> None:
        if self._ready:  # asked per batch; the packages do not come and go within a process
            return
        reason = self.availability()
        if reason:
            raise BackendUnavailable(reason)
        self._ready = True

    def unload(self) -> None:
        with self._lock:
            self._loaded.clear()

    def generate(self, requests: list[Request]) -> list[Result]:
        self.load()
        return [self._speak(req) for req in requests]

    # -- voices ------------------------------------------------------------------------------
    def _hash(self, path: Any) -> str:
        """Content hash of a voice file, remembered by (path, size, mtime) in this process and
        in the user cache (:func:`assetbuild.models.store.file_hash`)."""
        from ..models.store import file_hash

        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = file_hash(path)
        return self._hashes[key]

    def _load(self, request: Request) -> _Loaded:
        import json

        voice = self.voice(request)
        identity = (self._hash(voice.model), self._hash(voice.config))
        key = str(voice.model)
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is not None and loaded.identity == identity:
                return loaded
            from piper.config import PhonemeType, PiperConfig
            from piper.voice import PiperVoice

            from . import _piper_onnx

            try:
                config = json.loads(voice.config.read_text(encoding="utf-8"))
                piper_config = PiperConfig.from_dict(config)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise InvalidRequest("settings.voice", f"voice {voice.name}: {voice.config.name} is not a Piper "
                                     f"voice config ({exc})") from None
            if piper_config.phoneme_type not in (PhonemeType.ESPEAK, PhonemeType.TEXT):
                raise BackendUnavailable(f"voice {voice.name} uses {piper_config.phoneme_type.value} phonemes, which "
                                         "assetbuild does not read yet (eSpeak and text voices only)")
            try:
                session = _piper_onnx.Session(str(voice.model))
            except _piper_onnx.GraphError:
                raise
            except Exception as exc:  # onnx/onnxruntime refuse a truncated or foreign file in their own types
                raise InvalidRequest("settings.voice", f"voice {voice.name}: {voice.model.name} cannot be loaded "
                                     f"as an ONNX model ({str(exc).splitlines()[0][:200]})") from None
            loaded = _Loaded(voice, identity, session, PiperVoice(session=session.session, config=piper_config),
                             config, int(piper_config.sample_rate), int(piper_config.hop_length))
            while len(self._loaded) >= _KEEP_LOADED:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[key] = loaded
            return loaded

    # -- one line ----------------------------------------------------------------------------
    def _speak(self, req: Request) -> Result:
        import numpy as np

        from ..speech.alignment import join
        from ..speech.script import plain_script

        if req.kind not in self.kinds:
            raise ValueError(f"the piper backend speaks dialogue, not {req.kind}")
        loaded = self._load(req)
        _check_language(req, loaded)
        script, warnings = plain_script(req, "piper", MAX_CHARS)
        d = delivery(req, loaded.config.get("inference") or {})
        # Between pieces cut for length, the same pause as between sentences inside a piece.
        script = replace(script, pieces=tuple(replace(p, pause_after=d["sentence_silence"]) if p.cut else p
                                              for p in script.pieces))
        for word, entry in sorted((req.lexicon or {}).items()):
            if entry.get("phonemes") and not entry.get("say"):
                warnings.append(f"piper: the lexicon's phonemes for '{word}' are eSpeak mnemonics, which Piper "
                                "does not read; give it a `say` respelling")
        speaker = _speaker(req, loaded)
        length_scale = float((loaded.config.get("inference") or {}).get("length_scale", 1.0)) / d["rate"]
        scales = (d["noise"], length_scale, d["noise_w"])
        parts: list[Part] = []
        missing: set[str] = set()
        for k, piece in enumerate(script.pieces):
            # Each piece and sentence has its own noise stream, so editing one sentence of a
            # long line leaves the others' takes as they were.
            audio, words, phonemes = self._piece(loaded, piece.spoken, scales, speaker, d["sentence_silence"],
                                                 (req.seed, k), missing)
            parts.append((audio, words, phonemes))
        if missing:
            warnings.append(f"voice {loaded.voice.name} has no ids for these phonemes, skipped: "
                            + " ".join(sorted(missing)))
        audio, words, phonemes = join(script, parts, loaded.sample_rate)
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if peak > 1.0:  # rare VITS overshoot: scale, never clip (mastering sets the level anyway)
            audio = audio / np.float32(peak)
        meta: dict[str, Any] = {"text": script.display, "phonemes": phonemes, "voice": loaded.voice.name,
                                "generator": f"Piper {loaded.voice.name}"}
        if words is not None:  # None: a piece's words could not be found in its phonemes
            meta.update(words=words, timing="measured")
        notes = []
        if req.emotion:
            notes.append(f"emotion {req.emotion}: " + ", ".join(f"{k} {v:g}" for k, v in d.items()))
        if req.emotion == "whisper":
            notes.append("piper cannot whisper: emotion 'whisper' only slows and flattens the delivery")
        if notes:
            meta["notes"] = notes
        if warnings:
            meta["warnings"] = warnings
        return Result(audio=np.asarray(audio, dtype=np.float32), sample_rate=loaded.sample_rate, meta=meta)

    def _piece(self, loaded: _Loaded, text: str, scales: tuple[float, float, float], speaker: int | None,
               silence: float, seed: tuple[int, int], missing: set[str]) -> Part:
        """(audio, spoken words, phonemes) of one piece: one model call per sentence."""
        import numpy as np

        sr = loaded.sample_rate
        chunks: list[Any] = []
        stream: list[tuple[str, int, int]] = []  # (code point, start, end) in samples of the piece
        offset = 0
        sentences = [s for s in loaded.phonemizer.phonemize(text) if s]
        for n, symbols in enumerate(sentences):
            ids, ranges = _ids(symbols, loaded.config["phoneme_id_map"], missing)
            audio, frames = loaded.session.run(ids, scales, (*seed, n), speaker)
            samples = frames * loaded.hop
            total = int(samples.sum())
            if total != len(audio) and total > 0:
                # A voice whose config states another hop than its graph has: the durations are
                # still the model's, in proportion; share out the real length by them.
                samples = np.floor(np.cumsum(samples) * (len(audio) / total)).astype(np.int64)
                samples = np.diff(np.concatenate([[0], samples]))
            ends = np.cumsum(samples)
            starts = ends - samples
            for symbol, span in zip(symbols, ranges):
                if span is not None:
                    stream.append((symbol, offset + int(starts[span[0]]), offset + int(ends[span[1] - 1])))
            chunks.append(audio)
            offset += len(audio)
            if silence and n < len(sentences) - 1:
                gap = int(round(silence * sr))
                chunks.append(np.zeros(gap, dtype=np.float32))
                offset += gap
        if not chunks:
            raise ValueError(f"nothing to speak in {text!r}")
        audio = np.concatenate(chunks).astype(np.float32)
        words = _words(text, stream, loaded.phonemizer, sr)
        return audio, words, _phonemes(stream, sr)


def _check_language(req: Request, loaded: _Loaded) -> None:
    """A Piper voice speaks one language: a line of another locale is refused, not read with the
    wrong phonemes."""
    if not req.locale:
        return
    language = loaded.config.get("language") or {}
    speaks = str(language.get("family") or (loaded.config.get("espeak") or {}).get("voice", "")).lower()
    speaks = re.split(r"[-_]", speaks)[0]
    wants = re.split(r"[-_]", req.locale.strip().lower())[0]
    if speaks and wants != speaks:
        raise InvalidRequest("locale", f"voice {loaded.voice.name} speaks '{speaks}', not '{req.locale}': give "
                             f"this locale its own Piper voice ([voices.NAME.locales.{req.locale}] voice = ...)")


def _speaker(req: Request, loaded: _Loaded) -> int | None:
    value = (req.settings or {}).get("speaker")
    count = int(loaded.config.get("num_speakers") or 1)
    names: dict[str, int] = loaded.config.get("speaker_id_map") or {}
    if value is None or value == "":
        return 0 if count > 1 else None
    if count <= 1:
        raise InvalidRequest("settings.speaker", f"voice {loaded.voice.name} has one speaker: remove `speaker`")
    text = str(value).strip()
    if text in names:
        return int(names[text])
    if text.isdigit() and int(text) < count:
        return int(text)
    import difflib

    close = difflib.get_close_matches(text, list(names), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise InvalidRequest("settings.speaker", f"voice {loaded.voice.name} has no speaker '{text}' (it has {count}: "
                         f"names from its speaker_id_map or numbers 0-{count - 1}){hint}")


def _ids(symbols: list[str], id_map: dict[str, list[int]],
         missing: set[str]) -> tuple[list[int], list[tuple[int, int] | None]]:
    """Phoneme ids as piper lays them out (BOS, PAD, then each phoneme's ids and a PAD, EOS) and,
    per symbol, its id range including the PAD after it (None for a symbol the voice lacks,
    which piper skips too)."""
    pad = list(id_map.get("_", [0]))
    ids = list(id_map.get("^", [1])) + pad
    ranges: list[tuple[int, int] | None] = []
    for symbol in symbols:
        if symbol not in id_map:
            missing.add(symbol)
            ranges.append(None)
            continue
        start = len(ids)
        ids.extend(id_map[symbol])
        ids.extend(pad)
        ranges.append((start, len(ids)))
    ids.extend(id_map.get("$", [2]))
    return ids, ranges


def _sounds(stream: list[tuple[str, int, int]]) -> list[tuple[int, int, int, int]]:
    """Grouped sounds of the stream: (first, last + 1, start sample, end sample). A stress mark's
    time goes to the sound after it; a modifier's (length, aspiration) is part of its sound."""
    from ..speech.ipa import STRESS, group

    symbols = [s for s, _, _ in stream]
    out = []
    for a, b in group(symbols):
        start = stream[a - 1][1] if a > 0 and symbols[a - 1] in STRESS else stream[a][1]
        out.append((a, b, start, stream[b - 1][2]))
    return out


def _phonemes(stream: list[tuple[str, int, int]], sr: int) -> list[dict[str, Any]]:
    """Sounds with times, named by eSpeak mnemonic (what lip-sync reads) and by IPA."""
    from ..speech.ipa import mnemonic

    out = []
    for a, b, start, end in _sounds(stream):
        if end <= start:
            continue
        ipa = "".join(s for s, _, _ in stream[a:b])
        out.append({"symbol": mnemonic(ipa), "ipa": ipa, "start": round(start / sr, 4), "end": round(end / sr, 4)})
    return out


def _base_sounds(symbols: list[str]) -> list[int]:
    """Indexes of the symbols compared when finding words: sounds without stress or modifiers."""
    import unicodedata

    from ..speech.ipa import is_sound

    return [i for i, s in enumerate(symbols)
            if is_sound(s) and unicodedata.category(s[0]) not in ("Lm", "Mn", "Sk")]


def _words(text: str, stream: list[tuple[str, int, int]], phonemizer: Any,
           sr: int) -> list[dict[str, Any]] | None:
    """Spoken words ({pos, start, end}, seconds in the piece) from the timed phoneme stream; None
    when they cannot be found in it.

    Each written word is phonemised alone; the concatenation is aligned to the stream with a
    sequence diff (on base sounds), and each sound of the stream belongs to the word its match
    came from (an unmatched sound to the word before it). A word lasts from its first sound to
    its last, with the same spans as the phonemes.
    """
    import difflib

    from ..speech.alignment import tokens

    said = [s for s, _, _ in stream]
    said_idx = _base_sounds(said)
    ref: list[str] = []
    owner: list[int] = []
    spans = []
    for w, (cs, ce, ts, te) in enumerate(tokens(text)):
        spans.append(ts if ts < te else cs)
        word = text[ts:te] if ts < te else text[cs:ce]
        symbols = [c for sentence in phonemizer.phonemize(word) for c in sentence]
        for i in _base_sounds(symbols):
            ref.append(symbols[i])
            owner.append(w)
    if not said_idx or not ref:
        return None
    matcher = difflib.SequenceMatcher(None, [said[i] for i in said_idx], ref, autojunk=False)
    who: dict[int, int] = {}  # stream index of a base sound -> word
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            who[said_idx[a + k]] = owner[b + k]
    if not who:
        return None
    timed: dict[int, list[int]] = {}
    current = min(who.values())
    for a, b, start, end in _sounds(stream):
        match = next((who[i] for i in range(a, b) if i in who), None)
        if match is not None and match >= current:  # owners only move forward
            current = match
        times = timed.setdefault(current, [start, end])
        times[0] = min(times[0], start)
        times[1] = max(times[1], end)
    return [{"pos": spans[w], "start": a / sr, "end": b / sr} for w, (a, b) in sorted(timed.items())]

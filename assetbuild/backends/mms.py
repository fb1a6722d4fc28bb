"""The ``mms`` backend: dialogue spoken by Meta's MMS-TTS, one small VITS model per language.

Runs through transformers (``VitsModel`` + ``VitsTokenizer``). The model follows the line's
locale (``fr`` -> ``mms-tts-fra``) unless the voice names one with ``model``.

VITS draws noise for every item of a batch from one generator, so a padded batch gives each
line different audio than it gets alone. Lines are therefore generated one at a time (one
model load per batch); each is seeded with its own seed, so a line sounds the same whatever
else is built with it.

Word timings are measured: the forward pass predicts how many frames each input character
lasts (captured from the duration predictor), which gives each word's start and end.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..fields import Field
from ..models import store
from ..models.catalog import MMS_LANGUAGES
from .base import BackendUnavailable, Request, Result
from .neural import COMMON_SETTINGS, NeuralBackend, seed_everything

if TYPE_CHECKING:
    from ..speech.alignment import Part

DEFAULT_MODEL = "mms-tts-eng"

# Delivery per emotion: multipliers on (speaking rate, noise scale, duration noise scale).
# Noise scale varies the voice (pitch, energy); duration noise varies the rhythm.
EMOTION_DELIVERY: dict[str, tuple[float, float, float]] = {
    "neutral": (1.00, 1.00, 1.00),
    "happy": (1.05, 1.10, 1.10),
    "excited": (1.15, 1.25, 1.25),
    "sad": (0.85, 0.85, 0.80),
    "angry": (1.08, 1.20, 1.15),
    "fearful": (1.10, 1.15, 1.30),
    "surprised": (1.05, 1.25, 1.20),
    "calm": (0.92, 0.80, 0.70),
    "whisper": (0.90, 0.70, 0.80),  # VITS cannot whisper: only quieter-sounding, flatter delivery
}

_SETTINGS = (
    Field("model", "str", "MMS-TTS model: a short name (mms-tts-fra), a hub id (facebook/mms-tts-xxx) or a local "
          "folder. Default: the model of the line's locale (en -> mms-tts-eng), or mms-tts-eng without locales."),
    Field("speaking_rate", "float", "Speed; higher is faster. Default: the model's (1.0 for MMS)",
          minimum=0.25, maximum=4.0),
    Field("noise_scale", "float", "Variation of the voice (VITS noise scale). Default: the model's (0.667 for MMS)",
          minimum=0.0, maximum=2.0),
    Field("noise_scale_duration", "float", "Variation of the rhythm (duration noise). Default: the model's "
          "(0.8 for MMS)", minimum=0.0, maximum=2.0),
)
_BY_NAME = {f.name: f for f in _SETTINGS}

# Long lines are spoken in pieces split at sentences (VITS memory grows with the line).
MAX_CHARS = 500


def locale_model(locale: str | None) -> str | None:
    """The MMS model for a locale ("en", "en-US", "pt_BR"); None when there is none."""
    if not locale:
        return DEFAULT_MODEL
    lang = re.split(r"[-_]", locale.strip())[0].lower()
    code = MMS_LANGUAGES.get(lang)
    return f"mms-tts-{code}" if code else None


def unsupported_locale(locale: str | None) -> str:
    return (f"mms has no model for locale '{locale}' (supported: {', '.join(sorted(MMS_LANGUAGES))}); "
            "set `model` to an MMS-TTS model for it, e.g. model = \"facebook/mms-tts-xxx\" (ISO 639-3 code)")


def delivery(request: Request, config: Any) -> dict[str, float]:
    """speaking_rate, noise_scale, noise_scale_duration: settings (else the model's), then emotion."""
    s = request.settings or {}
    values = {name: float(s[name]) if s.get(name) is not None else float(getattr(config, name))
              for name in ("speaking_rate", "noise_scale", "noise_scale_duration")}
    if request.emotion:
        try:
            factors = EMOTION_DELIVERY[request.emotion]
        except KeyError:
            raise ValueError(f"unknown emotion '{request.emotion}' (expected one of "
                             + ", ".join(EMOTION_DELIVERY) + ")") from None
        for name, factor in zip(values, factors):
            values[name] = round(_BY_NAME[name].clamp(values[name] * factor), 4)
    return values


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    name: str  # for meta["generator"]


class MmsBackend(NeuralBackend):
    name: ClassVar[str] = "mms"
    kinds: ClassVar[frozenset[str]] = frozenset({"dialogue"})
    max_batch: ClassVar[int] = 8
    gpus: ClassVar[float] = 0.25  # a small model: four share a GPU
    default_model: ClassVar[str] = DEFAULT_MODEL
    packages: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    extra: ClassVar[str] = "hf"
    half_precision: ClassVar[bool] = False  # small model; its flows are not float16-safe
    settings: ClassVar[tuple[Field, ...]] = (*_SETTINGS, *COMMON_SETTINGS)

    def model_ref(self, request: Request) -> str:
        explicit = (request.settings or {}).get("model")
        if explicit:
            return str(explicit)
        # A placeholder for a locale without a model: ``locate`` refuses it with the reason.
        return locale_model(request.locale) or f"mms-tts (no model for locale {request.locale})"

    def locate(self, request: Request) -> store.Located:
        if not (request.settings or {}).get("model") and locale_model(request.locale) is None:
            raise BackendUnavailable(unsupported_locale(request.locale))
        return super().locate(request)

    def load_model(self, located: store.Located, device: str, dtype: Any) -> Any:
        from transformers import AutoModel, AutoTokenizer

        path = str(located.path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path).to(device=device, dtype=dtype).eval()
        if not hasattr(model, "duration_predictor") or not hasattr(tokenizer, "encoder"):
            raise BackendUnavailable(f"model '{located.ref}' is not a VITS / MMS-TTS model "
                                     f"({type(model).__name__}, {type(tokenizer).__name__})")
        if len(tokenizer) > model.config.vocab_size:
            raise BackendUnavailable(f"model '{located.ref}': tokenizer has {len(tokenizer)} symbols, the model "
                                     f"{model.config.vocab_size}; the folder is incomplete or mixed")
        name = located.info.repo if located.info else located.ref
        return _Loaded(model, tokenizer, name)

    def generate_with(self, model: Any, requests: list[Request]) -> list[Result]:
        return [self._speak(model, r) for r in requests]

    # -- one line -----------------------------------------------------------------------------
    def _speak(self, loaded: _Loaded, req: Request) -> Result:
        import numpy as np

        from ..speech.alignment import join
        from ..speech.script import plain_script

        if req.kind not in self.kinds:
            raise ValueError(f"the mms backend speaks dialogue, not {req.kind}")
        script, warnings = plain_script(req, "mms", MAX_CHARS)
        notes: list[str] = []
        d = delivery(req, loaded.model.config)
        if req.emotion:
            notes.append(f"emotion {req.emotion}: " + ", ".join(f"{k} {v:g}" for k, v in d.items()))
        if req.emotion == "whisper":
            notes.append("mms cannot whisper: emotion 'whisper' only slows and flattens the delivery")
        sr = int(loaded.model.config.sampling_rate)
        seed_everything(req.seed)
        parts: list[Part] = []
        skipped: set[str] = set()
        for piece in script.pieces:
            audio, words, dropped = self._piece(loaded, piece.spoken, d, req.id)
            skipped |= dropped
            parts.append((audio, words, []))
        if skipped:
            warnings.append(f"{loaded.name} cannot say these characters, skipped: {' '.join(sorted(skipped))} "
                            "(write numbers and symbols as words)")
        audio, words, _ = join(script, parts, sr)
        meta: dict[str, Any] = {"text": script.display, "generator": f"MMS-TTS {loaded.name}"}
        if words is not None:
            meta.update(words=words, timing="measured")
        if notes:
            meta["notes"] = notes
        if warnings:
            meta["warnings"] = warnings
        return Result(audio=np.asarray(audio, dtype=np.float32), sample_rate=sr, meta=meta)

    def _piece(self, loaded: _Loaded, text: str, d: dict[str, float],
               req_id: str) -> tuple[Any, list[dict] | None, set[str]]:
        """(audio, spoken words or None, characters the model cannot say) for one piece."""
        import torch

        model, tok = loaded.model, loaded.tokenizer
        _check_uroman(tok, text, loaded.name)
        enc = tok(text, return_tensors="pt")
        ids = enc["input_ids"].to(model.device)
        kept, dropped = _kept_characters(tok, text)
        blank = 1 if getattr(tok, "add_blank", False) else 0
        if ids.shape[1] <= blank or not kept:
            raise ValueError(f"{req_id}: {loaded.name} can say none of the characters of {text!r}")
        captured: list[Any] = []
        hook = model.duration_predictor.register_forward_hook(lambda _m, _i, out: captured.append(out))
        saved = (model.noise_scale, model.noise_scale_duration)
        try:
            model.noise_scale, model.noise_scale_duration = d["noise_scale"], d["noise_scale_duration"]
            out = model(input_ids=ids, attention_mask=enc["attention_mask"].to(model.device),
                        speaking_rate=d["speaking_rate"])
        finally:
            hook.remove()
            model.noise_scale, model.noise_scale_duration = saved
        n = int(out.sequence_lengths[0])
        audio = out.waveform[0, :n].float().cpu().numpy()
        words = None
        if captured and _tokens_match(tok, ids[0].tolist(), [text[i] for i in kept], blank):
            hop = 1
            for r in model.config.upsample_rates:
                hop *= int(r)
            # The same arithmetic as VitsModel.forward: frames per input token.
            frames = torch.ceil(torch.exp(captured[0].float()) * (1.0 / d["speaking_rate"])).reshape(-1)
            if int(frames.sum().item()) * hop == n:
                words = _spoken_words(text, kept, frames.cpu().tolist(), hop / model.config.sampling_rate, blank)
        return audio, words, dropped


def _check_uroman(tok: Any, text: str, name: str) -> None:
    if getattr(tok, "is_uroman", False) and any(ord(c) > 127 for c in text):
        from transformers.utils import is_uroman_available

        if not is_uroman_available():
            raise BackendUnavailable(f"{name} reads romanised text: install the uroman romaniser "
                                     "(pip install uroman) to speak non-Latin script with it")


def _kept_characters(tok: Any, text: str) -> tuple[list[int], set[str]]:
    """Indexes of ``text``'s characters the tokenizer keeps (it lower-cases and drops what is not
    in its alphabet, then strips), and the letters/digits it drops."""
    vocab = tok.encoder
    kept: list[int] = []
    dropped: set[str] = set()
    for i, ch in enumerate(text):
        if ch in vocab or ch.lower() in vocab:
            kept.append(i)
        elif unicodedata.category(ch)[0] in "LN":
            dropped.add(ch)
    while kept and text[kept[0]].isspace():
        kept.pop(0)
    while kept and text[kept[-1]].isspace():
        kept.pop()
    return kept, dropped


def _tokens_match(tok: Any, ids: list[int], chars: list[str], blank: int) -> bool:
    """The tokenizer's symbols are ``chars`` (with blanks between): the character map holds."""
    symbols = tok.convert_ids_to_tokens(ids)
    said = symbols[1::2] if blank else symbols
    return len(said) == len(chars) and all(s == c or s == c.lower() for s, c in zip(said, chars))


def _spoken_words(text: str, kept: list[int], frames: list[float], seconds_per_frame: float,
                  blank: int) -> list[dict[str, Any]]:
    """Spoken words ({pos, start, end}) from frames per token: a word runs from its first kept
    character's start to its last one's end (blanks between words are pauses)."""
    ends = []
    total = 0.0
    for f in frames:
        total += f
        ends.append(total)
    char_time = {}
    for k, pos in enumerate(kept):
        t = 2 * k + 1 if blank else k
        start = ends[t - 1] if t > 0 else 0.0
        char_time[pos] = (start * seconds_per_frame, ends[t] * seconds_per_frame)
    words = []
    for m in re.finditer(r"\S+", text):
        times = [char_time[i] for i in range(m.start(), m.end()) if i in char_time]
        if times:
            words.append({"pos": m.start(), "start": times[0][0], "end": times[-1][1]})
    return words

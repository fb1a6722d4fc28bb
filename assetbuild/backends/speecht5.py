"""The ``speecht5`` backend: English dialogue spoken by Microsoft's SpeechT5 through transformers.

``SpeechT5ForTextToSpeech`` predicts a mel spectrogram that a separate HiFi-GAN vocoder
(setting ``vocoder``) turns into 16 kHz audio. The voice is a speaker x-vector (512 numbers)
from a ``.npy`` file: SpeechT5 has no built-in voices.

Generation is autoregressive with dropout always on in the decoder prenet, so the seed matters.
In a batch that dropout mask is drawn once and shared by every item, and the stop point and
the postnet depend on the padded batch: a line would sound different batched than alone.
Lines are therefore generated one at a time (one model load per batch), each with its own seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..fields import Field
from ..models import store
from ..models.catalog import find
from .base import BackendUnavailable, Request, Result
from .neural import COMMON_SETTINGS, NeuralBackend, seed_everything

if TYPE_CHECKING:
    from ..speech.alignment import Part

DEFAULT_MODEL = "speecht5-tts"
DEFAULT_VOCODER = "speecht5-hifigan"

_SETTINGS = (
    Field("model", "str", "SpeechT5 text-to-speech model: short name, hub id or local folder",
          default=DEFAULT_MODEL),
    Field("vocoder", "str", "HiFi-GAN vocoder turning the spectrogram into audio: short name, hub id or local folder",
          default=DEFAULT_VOCODER),
    Field("speaker", "str", "Speaker x-vector: a .npy file of 512 numbers, shape (512,) or (1, 512), relative to "
          "the manifest"),
    Field("speakers", "str", "A table of x-vectors: a .npy file of shape (N, 512), relative to the manifest; "
          "`speaker_index` picks the row"),
    Field("speaker_index", "int", "Row of `speakers` to speak with", default=0, minimum=0),
    Field("threshold", "float", "Stop when the stop probability of a step (summed over its 2 frames) reaches this; "
          "higher runs longer", default=0.5, minimum=0, exclusive_minimum=True, maximum=2.0),
    Field("max_seconds", "float", "Longest audio one piece of a line may run (a line over 300 characters is spoken "
          "in pieces)", default=20.0, minimum=0, exclusive_minimum=True, maximum=120.0),
    Field("minlenratio", "float", "Shortest output, in decoder steps per input character", default=0.0,
          minimum=0.0, maximum=20.0),
    Field("maxlenratio", "float", "Longest output, in decoder steps per input character", default=20.0,
          minimum=0, exclusive_minimum=True, maximum=100.0),
)
_BY_NAME = {f.name: f for f in _SETTINGS}

# SpeechT5 reads at most 450 tokens (about one per character) and drifts on long input:
# longer lines are spoken in pieces split at sentences.
MAX_CHARS = 300


def _setting(request: Request, name: str) -> Any:
    value = (request.settings or {}).get(name)
    return _BY_NAME[name].default if value is None else value


def speaker_vector(request: Request, dim: int | None = None) -> Any:
    """The x-vector (float32, shape (D,)) the request speaks with. ValueError says what is wrong."""
    import numpy as np

    s = request.settings or {}
    one, table = s.get("speaker"), s.get("speakers")
    if one and table:
        raise ValueError("speecht5: set either `speaker` (one x-vector) or `speakers` (a table), not both")
    if not one and not table:
        raise ValueError("speecht5 needs a speaker: set `speaker` to an x-vector .npy file (512 numbers), or "
                         "`speakers` to an (N, 512) .npy table and `speaker_index` to its row")
    path = store.resolve_path(str(one or table), request.base_dir)
    if not path.is_file():
        raise ValueError(f"speecht5: speaker file {one or table} does not exist ({path})")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"speecht5: cannot read speaker file {path}: {exc}") from None
    want = dim or "D"
    if one:
        if data.ndim == 2 and data.shape[0] == 1:
            data = data[0]
        if data.ndim != 1 or (dim and data.shape[0] != dim):
            raise ValueError(f"speecht5: speaker file {one}: expected an x-vector of shape ({want},) or "
                             f"(1, {want}), got {tuple(data.shape)}")
        vec = data
    else:
        index = int(_setting(request, "speaker_index"))
        if data.ndim != 2 or (dim and data.shape[1] != dim):
            raise ValueError(f"speecht5: speakers file {table}: expected a table of shape (N, {want}), "
                             f"got {tuple(data.shape)}")
        if index >= data.shape[0]:
            raise ValueError(f"speecht5: speaker_index {index} is out of range: {table} holds "
                             f"{data.shape[0]} speakers")
        vec = data[index]
    vec = np.ascontiguousarray(vec, dtype=np.float32)
    if not np.isfinite(vec).all() or not vec.any():
        raise ValueError(f"speecht5: the x-vector in {one or table} is all zeros or not finite")
    return vec


@dataclass
class _Loaded:
    model: Any
    processor: Any
    name: str


class SpeechT5Backend(NeuralBackend):
    name: ClassVar[str] = "speecht5"
    kinds: ClassVar[frozenset[str]] = frozenset({"dialogue"})
    max_batch: ClassVar[int] = 8
    gpus: ClassVar[float] = 0.25  # a small model: four share a GPU
    default_model: ClassVar[str] = DEFAULT_MODEL
    packages: ClassVar[tuple[str, ...]] = ("torch", "transformers", "sentencepiece")
    extra: ClassVar[str] = "hf"
    half_precision: ClassVar[bool] = False  # small model; the stop head is sensitive to precision
    settings: ClassVar[tuple[Field, ...]] = (*_SETTINGS, *COMMON_SETTINGS)

    def __init__(self) -> None:
        super().__init__()
        self._vocoder: Any = None
        self._vocoder_key: tuple[str, str] | None = None
        self._vocoder_name = ""

    # -- identity ---------------------------------------------------------------------------
    def _vocoder_ref(self, request: Request) -> str:
        return str(_setting(request, "vocoder"))

    def _locate_vocoder(self, request: Request) -> store.Located:
        return store.locate(self._vocoder_ref(request), "transformers", request.base_dir)

    def extra_fingerprint(self, request: Request) -> dict[str, Any]:
        fp: dict[str, Any] = {}
        try:
            fp["vocoder"] = self._locate_vocoder(request).identity
        except BackendUnavailable as exc:  # generation fails the entry with this message
            fp["vocoder"] = {"ref": self._vocoder_ref(request), "unavailable": str(exc)}
        try:
            vec = speaker_vector(request)
            # The vector used, not the file: other rows of a table may change freely.
            fp["speaker"] = {"sha256": hashlib.sha256(vec.tobytes()).hexdigest(), "dim": int(vec.shape[0])}
        except ValueError as exc:
            fp["speaker"] = {"error": str(exc)}
        return fp

    def licence(self, request: Request) -> dict[str, Any]:
        """The model's terms, or the vocoder's where those are the stricter."""
        main = super().licence(request)
        ref = self._vocoder_ref(request)
        try:
            voc = store.licence(self._locate_vocoder(request))
        except BackendUnavailable:
            info = find(ref)
            voc = ({"name": info.licence, "commercial": info.commercial, "model": ref} if info
                   else {"name": "unknown", "commercial": False, "model": ref})
        if main.get("commercial") and not voc.get("commercial"):
            return {**voc, "model": f"{main.get('model')} + vocoder {ref}"}
        return main

    # -- loading ----------------------------------------------------------------------------
    def load_model(self, located: store.Located, device: str, dtype: Any) -> Any:
        from transformers import AutoModelForTextToSpectrogram, AutoProcessor

        path = str(located.path)
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForTextToSpectrogram.from_pretrained(path).to(device=device, dtype=dtype).eval()
        if not hasattr(model, "generate_speech"):
            raise BackendUnavailable(f"model '{located.ref}' is not a SpeechT5 text-to-speech model "
                                     f"({type(model).__name__})")
        size = len(processor.tokenizer)
        if size > model.config.vocab_size:
            raise BackendUnavailable(f"model '{located.ref}': tokenizer has {size} symbols, the model "
                                     f"{model.config.vocab_size}; the folder is incomplete or mixed")
        name = located.info.repo if located.info else located.ref
        return _Loaded(model, processor, name)

    def _vocoder_for(self, request: Request, loaded: _Loaded) -> Any:
        located = self._locate_vocoder(request)
        key = (str(located.path), repr(sorted(located.identity.items())))
        if self._vocoder_key != key:
            from transformers import SpeechT5HifiGan

            self._vocoder, self._vocoder_key = None, None
            vocoder = SpeechT5HifiGan.from_pretrained(str(located.path)).to(self.device or "cpu").eval()
            if vocoder.config.model_in_dim != loaded.model.config.num_mel_bins:
                raise BackendUnavailable(f"vocoder '{located.ref}' takes {vocoder.config.model_in_dim} mel bins, "
                                         f"the model makes {loaded.model.config.num_mel_bins}")
            self._vocoder, self._vocoder_key = vocoder, key
            self._vocoder_name = located.info.repo if located.info else located.ref
        return self._vocoder

    def _drop(self) -> None:
        self._vocoder, self._vocoder_key = None, None
        super()._drop()

    # -- generating -------------------------------------------------------------------------
    def generate_with(self, model: Any, requests: list[Request]) -> list[Result]:
        vocoder = self._vocoder_for(requests[0], model)  # one fingerprint per batch: one vocoder
        return [self._speak(model, vocoder, r) for r in requests]

    def _speak(self, loaded: _Loaded, vocoder: Any, req: Request) -> Result:
        import numpy as np
        import torch

        from ..speech.alignment import join
        from ..speech.script import plain_script

        if req.kind not in self.kinds:
            raise ValueError(f"the speecht5 backend speaks dialogue, not {req.kind}")
        script, warnings = plain_script(req, "speecht5", MAX_CHARS)
        model = loaded.model
        vec = speaker_vector(req, int(model.config.speaker_embedding_dim))
        speaker = torch.from_numpy(vec).unsqueeze(0).to(device=model.device, dtype=model.dtype)
        notes: list[str] = []
        if req.emotion and req.emotion != "neutral":
            notes.append(f"speecht5 has no emotion control: emotion '{req.emotion}' was ignored")
        sr = int(vocoder.config.sampling_rate)
        seed_everything(req.seed)
        parts: list[Part] = []
        for piece in script.pieces:
            audio, capped = self._piece(loaded, vocoder, speaker, piece.spoken, req)
            if capped and not any("length cap" in w for w in warnings):
                warnings.append(f"speecht5: a piece reached the length cap ({capped}) before the model stopped; "
                                "it may be cut or end in babble")
            parts.append((audio, None, []))
        audio, _, _ = join(script, parts, sr)
        meta: dict[str, Any] = {"text": script.display,
                                "generator": f"SpeechT5 {loaded.name} + {self._vocoder_name}"}
        if notes:
            meta["notes"] = notes
        if warnings:
            meta["warnings"] = warnings
        return Result(audio=np.asarray(audio, dtype=np.float32), sample_rate=sr, meta=meta)

    def _piece(self, loaded: _Loaded, vocoder: Any, speaker: Any, text: str, req: Request) -> tuple[Any, str]:
        """(audio, "" or which cap stopped it) for one piece of a line."""
        model = loaded.model
        enc = loaded.processor(text=text, return_tensors="pt")
        ids = enc["input_ids"].to(model.device)
        n_in = int(ids.shape[1])
        if n_in > model.config.max_text_positions:
            raise ValueError(f"{req.id}: a piece of {n_in} tokens is longer than the model reads "
                             f"({model.config.max_text_positions})")
        r = int(model.config.reduction_factor)
        hop = 1
        for u in vocoder.config.upsample_rates:
            hop *= int(u)
        max_seconds = float(_setting(req, "max_seconds"))
        # generate_speech caps decoder steps at int(n_in * maxlenratio / r); cap them in seconds too.
        by_ratio = int(n_in * float(_setting(req, "maxlenratio")) / r)
        by_seconds = max(1, int(max_seconds * vocoder.config.sampling_rate / (hop * r)))
        steps = max(1, min(by_ratio, by_seconds))
        spectrogram = model.generate_speech(
            ids, speaker, attention_mask=enc["attention_mask"].to(model.device),
            threshold=float(_setting(req, "threshold")),
            minlenratio=min(float(_setting(req, "minlenratio")), steps * r / n_in),  # never past the cap
            maxlenratio=(steps + 0.5) * r / n_in)
        capped = ""
        if spectrogram.shape[0] >= steps * r:
            capped = f"max_seconds {max_seconds:g}" if by_seconds <= by_ratio else "maxlenratio"
        audio = vocoder(spectrogram.to(vocoder.dtype))
        return audio.reshape(-1).float().cpu().numpy(), capped

"""The ``musicgen`` backend: music beds from Meta's MusicGen, through transformers or AudioCraft.

``implementation = "transformers"`` (default) runs ``MusicgenForConditionalGeneration``;
``"audiocraft"`` runs AudioCraft's ``MusicGen`` on the checkpoint's AudioCraft files (see
:mod:`._audiocraft`). Both give 32 kHz audio (stereo checkpoints give two channels).

Length: the model writes codec frames (50 a second); a batch generates to its longest item and
each item keeps its own frames, decoded alone, so an item's audio never depends on its batch.
Beds longer than ``window`` continue window after window, each prompted with the last
``overlap`` seconds of codes; all codes are decoded in one pass, so there is no seam.

Seeds (transformers): every item samples from its own seeded generator (``neural.row_sampler``),
so batched equals unbatched. AudioCraft samples from torch's global generator, so that path
generates one item at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from ..fields import Field
from . import _audiocraft as ac
from .base import BackendUnavailable, Request, Result
from .neural import COMMON_SETTINGS, NeuralBackend, row_sampler, versions

IMPLEMENTATIONS = ("transformers", "audiocraft")
DEFAULT_SECONDS = 10.0  # when an entry gives no duration

_SAMPLING = ac.sampling_fields(window=30.0, overlap=10.0)


@dataclass
class Loaded:
    implementation: str
    model: Any
    processor: Any = None


class MusicGenBackend(NeuralBackend):
    name: ClassVar[str] = "musicgen"
    kinds: ClassVar[frozenset[str]] = frozenset({"music"})
    max_batch: ClassVar[int] = 8
    default_model: ClassVar[str] = "musicgen-small"
    VERSION: ClassVar[str] = "1"
    settings: ClassVar[tuple[Field, ...]] = (
        Field("model", "str", "MusicGen model: musicgen-small (default), -medium, -large, -melody, a hub id "
              "or a local folder.", min_length=1),
        Field("implementation", "str", "Library that runs the model.", default="transformers",
              choices=IMPLEMENTATIONS),
        *_SAMPLING,
        *COMMON_SETTINGS,
    )

    def implementation(self, request: Request) -> str:
        return str(request.settings.get("implementation") or "transformers")

    def extra_fingerprint(self, request: Request) -> dict[str, Any]:
        fp: dict[str, Any] = {"musicgen": self.VERSION}
        if self.implementation(request) == "audiocraft":
            fp["audiocraft"] = versions("audiocraft")["audiocraft"]
        return fp

    # -- loading ---------------------------------------------------------------------------
    def model_for(self, request: Request) -> Any:
        self._implementation = self.implementation(request)  # load_model is not told
        return super().model_for(request)

    def load_model(self, located: Any, device: str, dtype: Any) -> Loaded:
        if self._implementation == "audiocraft":
            return Loaded("audiocraft", ac.load("MusicGen", located, device))
        from transformers import AutoConfig, AutoModelForTextToWaveform, AutoProcessor

        path = str(located.path)
        try:
            kind = AutoConfig.from_pretrained(path).model_type
            if kind not in ("musicgen", "musicgen_melody"):
                raise BackendUnavailable(f"model '{located.ref}' is a {kind} model, not MusicGen")
            model = AutoModelForTextToWaveform.from_pretrained(path)
            processor = AutoProcessor.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise BackendUnavailable(f"model '{located.ref}' could not be loaded with transformers: {exc}") from None
        vocab = model.config.text_encoder.vocab_size
        if not vocab // 2 <= len(processor.tokenizer) <= vocab:  # a placeholder tokenizer (see reference)
            raise BackendUnavailable(f"model '{located.ref}': its tokenizer ({len(processor.tokenizer)} tokens) "
                                     f"does not match its text encoder ({vocab})")
        return Loaded("transformers", model.to(device=device, dtype=dtype).eval(), processor)

    # -- generating ------------------------------------------------------------------------
    def generate_with(self, model: Loaded, requests: list[Request]) -> list[Result]:
        opts = [ac.options(r, _SAMPLING) for r in requests]  # check them all before generating
        if model.implementation == "audiocraft":
            return [self._audiocraft(model.model, r, o) for r, o in zip(requests, opts)]
        results: dict[int, Result] = {}
        groups: dict[tuple, list[int]] = {}
        for i, o in enumerate(opts):  # direct callers may mix sampling settings in one batch
            groups.setdefault(tuple(sorted(o.items())), []).append(i)
        for key, idx in groups.items():
            for i, res in zip(idx, _transformers(model, [requests[i] for i in idx], dict(key))):
                results[i] = res
        return [results[i] for i in range(len(requests))]

    def _audiocraft(self, model: Any, r: Request, o: dict[str, Any]) -> Result:
        seconds = r.duration or DEFAULT_SECONDS
        samples = ac.samples_needed(seconds, model.sample_rate, r.loop)
        audio = ac.generate(model, r.prompt or "", samples, r.seed, o["window"], o["overlap"], o["top_k"],
                            o["top_p"], o["temperature"], o["guidance"])
        return Result(ac.finish(audio, model.sample_rate, seconds, r.loop), model.sample_rate,
                      {"generator": "musicgen (audiocraft)", "notes": ac.notes(r, seconds, o)})


def window_seed(seed: int, window: int) -> int:
    """The first window samples with the entry's seed; later ones with seeds derived from it."""
    return seed if window == 0 else (seed * 1_000_003 + window) % 2**63


def _transformers(loaded: Loaded, requests: list[Request], o: dict[str, Any]) -> list[Result]:
    import torch

    model, processor = loaded.model, loaded.processor
    sr = model.config.audio_encoder.sampling_rate
    rate = model.config.audio_encoder.frame_rate
    hop = sr / rate
    k = model.decoder.num_codebooks
    window = max(2, int(o["window"] * rate))
    overlap = min(max(1, int(o["overlap"] * rate)), window - 1)
    seconds = [r.duration or DEFAULT_SECONDS for r in requests]
    need = [math.ceil(ac.samples_needed(s, sr, r.loop) / hop) for s, r in zip(seconds, requests)]
    text = processor(text=[r.prompt or "" for r in requests], padding=True, return_tensors="pt").to(model.device)
    codes: list[Any] = [None] * len(requests)
    step = 0
    while True:
        todo = [i for i in range(len(requests)) if codes[i] is None or codes[i].shape[-1] < need[i]]
        if not todo:
            break
        if step == 0:
            new = {i: min(need[i], window) for i in todo}
            prompt = None
        else:
            new = {i: min(need[i] - codes[i].shape[-1], window - overlap) for i in todo}
            prompt = torch.stack([codes[i][:, -overlap:] for i in todo]).reshape(len(todo) * k, overlap)
        # The upper codebooks of a frame see the first codebook a few frames ahead (the delay
        # pattern), so K - 1 frames past the last kept one are generated too: a kept frame then
        # never depends on how far the batch's longest item runs.
        out = _generate(model, {key: v[todo] for key, v in text.items()}, prompt,
                        max(new.values()) + k - 1, [window_seed(requests[i].seed, step) for i in todo], k, o)
        start = 0 if prompt is None else overlap
        for row, i in enumerate(todo):
            piece = out[row, :, start:start + new[i]]
            codes[i] = piece if codes[i] is None else torch.cat([codes[i], piece], dim=-1)
        step += 1
    results = []
    for i, r in enumerate(requests):
        audio = _decode(model, codes[i][None, :, :need[i]])
        results.append(Result(ac.finish(audio, sr, seconds[i], r.loop), sr,
                              {"generator": "musicgen (transformers)", "notes": ac.notes(r, seconds[i], o)}))
    return results


def _generate(model: Any, text: dict[str, Any], prompt: Any, frames: int, seeds: list[int], k: int,
              o: dict[str, Any]) -> Any:
    """Codes (batch, codebooks, prompt + frames): the prompt codes followed by ``frames`` new ones."""
    from transformers import LogitsProcessorList

    top_k = 0 if o["top_p"] > 0 else o["top_k"]  # as AudioCraft: top_p, when set, replaces top_k
    sampler = _GuidedSampler(row_sampler(seeds, k, str(model.device), top_k, o["top_p"], o["temperature"]),
                             len(seeds) * k, o["guidance"])
    captured: list[Any] = []

    def capture(audio_codes: Any, *args: Any, **kwargs: Any) -> Any:
        # generate() ends by decoding the whole batch; keep the codes instead, so each item can
        # be decoded on its own (and long beds in one pass).
        captured.append(audio_codes)
        return _NoAudio(audio_codes.new_zeros((audio_codes.shape[1], 1, 0), dtype=model.dtype))

    extra = {} if prompt is None else {"decoder_input_ids": prompt}
    model.audio_encoder.decode = capture
    try:
        model.generate(**text, **extra, do_sample=False, guidance_scale=o["guidance"], top_k=None, top_p=None,
                       temperature=None, max_new_tokens=frames + k - 1,
                       logits_processor=LogitsProcessorList([sampler]))
    finally:
        del model.audio_encoder.decode
    if len(captured) == 2:  # stereo: left and right codebooks were decoded apart; interleave them
        import torch

        left, right = captured
        return torch.stack([left[0], right[0]], dim=2).reshape(left.shape[1], -1, left.shape[-1])
    return captured[0][0]


class _NoAudio:
    def __init__(self, audio_values: Any) -> None:
        self.audio_values = audio_values


class _GuidedSampler:
    """Classifier-free guidance, then per-item seeded sampling.

    transformers adds its guidance processor after the custom ones, so this one sees the
    conditional and unconditional rows: it guides them itself, samples, and hands back the
    pick as the conditional half over a zero unconditional half, which the later guidance
    step maps back onto the pick. Handed guided rows only, it just samples.
    """

    def __init__(self, sampler: Any, rows: int, guidance: float) -> None:
        self.sampler, self.rows, self.guidance = sampler, rows, guidance

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if scores.shape[0] == 2 * self.rows:
            cond, uncond = scores.float().split(self.rows)
            picked = self.sampler(input_ids, uncond + (cond - uncond) * self.guidance)
            return torch.cat([picked, torch.zeros_like(picked)]).to(scores.dtype)
        return self.sampler(input_ids, scores)


def _decode(model: Any, codes: Any) -> Any:
    """float32 numpy audio, (frames,) or (frames, 2), from codes (1, codebooks, frames)."""
    import torch

    codes = codes[None]  # (chunks=1, batch=1, codebooks, frames)
    if model.decoder.config.audio_channels == 2:
        left = model.audio_encoder.decode(codes[:, :, ::2], [None]).audio_values
        right = model.audio_encoder.decode(codes[:, :, 1::2], [None]).audio_values
        audio = torch.cat([left, right], dim=1)
    else:
        audio = model.audio_encoder.decode(codes, [None]).audio_values
    out = audio[0].float().cpu().numpy()  # (channels, frames)
    return out[0] if out.shape[0] == 1 else out.T

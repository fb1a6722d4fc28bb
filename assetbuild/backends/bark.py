"""The ``bark`` backend: expressive dialogue from Suno's Bark, through transformers' ``BarkModel``.

Bark reads text prompts: cues such as ``[laughs]``, ``[sighs]``, ``[music]``, ``♪``, ``—`` and
CAPS are passed to it unchanged; bracketed cues and ``♪`` are left out of the displayed text
(subtitles, word spans). The voice is a *history prompt*: a built-in preset of the model
(``v2/en_speaker_6``) or a suno ``.npz`` file. Bark speaks about 13 s at most, so longer lines
are split at sentences, then clauses, then words, and every chunk is generated with the same
history prompt; without a preset, the later chunks use the first chunk's own output as theirs,
so the whole line keeps one voice.

Batches: Bark's three stages sample from one global generator. Here the semantic and coarse
stages run batched, with ``neural.row_sampler`` drawing each row from its own seeded generator
(fed through ``generate(custom_generate=...)``, since Bark's sub-models pass their own logits
processors), and the fine stage and the codec run row by row, seeded per row. So a line gives
the same audio whatever else is in its batch. Bark reports no word timings.

torch and transformers are imported only when a model loads.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from ..fields import Field
from ..fsutil import file_sha256
from ..models import store
from .base import BackendUnavailable, Request, Result
from .neural import COMMON_SETTINGS, NeuralBackend, row_sampler, versions

if TYPE_CHECKING:
    from ..speech.alignment import Part

DEFAULT_MODEL = "bark-small"
SAMPLE_RATE = 24_000
VERSION = "2"  # bump when the way audio is made changes

# Speaking rate used to size chunks: Bark's semantic stage stops after about 15 s.
CHARS_PER_SECOND = 14.0

# A leading cue per emotion, only where Bark has one. The others are left to the words,
# punctuation and the preset.
EMOTION_CUES: dict[str, str | None] = {
    "neutral": None,
    "happy": "[laughs]",
    "excited": None,
    "sad": "[sighs]",
    "angry": None,
    "fearful": "[gasps]",
    "surprised": "[gasps]",
    "calm": None,
    "whisper": None,
}

# What subtitles leave out: bracketed words ([laughs], [clears throat], [MAN]) and music notes.
CUE = re.compile(r"\[[A-Za-z][A-Za-z' -]{0,29}\]|\u266a")
_LEADING_CUE = re.compile(r"\s*\[[A-Za-z][A-Za-z' -]{0,29}\]")

PRESET_KEYS = {"semantic_prompt": 1, "coarse_prompt": 2, "fine_prompt": 2}  # key -> array rank
FADE = 0.01  # seconds of fade at each chunk edge, so joins do not click

_SETTINGS = (
    Field("model", "str", "Bark weights: bark-small, bark, a hub id or a local folder", default=DEFAULT_MODEL),
    Field("preset", "str", "Voice: a preset of the model such as v2/en_speaker_6, or a path to a Bark .npz "
          "history prompt (relative to the manifest). Default: none (the seed picks a voice)", min_length=1),
    Field("temperature", "float", "Sampling temperature of the semantic (text to speech tokens) stage",
          default=0.7, minimum=0, exclusive_minimum=True, maximum=2),
    Field("coarse_temperature", "float", "Sampling temperature of the coarse acoustic stage", default=0.7,
          minimum=0, exclusive_minimum=True, maximum=2),
    Field("fine_temperature", "float", "Sampling temperature of the fine acoustic stage (1.0 takes the most "
          "likely codes)", default=0.5, minimum=0, exclusive_minimum=True, maximum=1),
    Field("max_chunk_seconds", "float", "Longest chunk a line is split into, estimated at 14 characters a "
          "second", default=13.0, minimum=2, maximum=14),
)
_DEFAULTS = {f.name: f.default for f in _SETTINGS}


def display(text: str) -> str:
    """``text`` without Bark's cues, tidied: what subtitles show."""
    out = CUE.sub(" ", text)
    out = re.sub(r"\s+", " ", out)
    out = re.sub(r"\s+([,.;:!?\u2026])", r"\1", out)
    return out.strip()


def with_emotion(text: str, emotion: str | None) -> str:
    """``text`` with the emotion's leading cue, unless the line already starts with a cue."""
    cue = EMOTION_CUES.get(emotion or "")
    if not cue or _LEADING_CUE.match(text):
        return text
    return f"{cue} {text}"


def is_preset_file(preset: str) -> bool:
    return preset.lower().endswith(".npz") or store.is_path(preset)


def sub_seed(seed: int, chunk: int, stage: str) -> int:
    """A seed per line, chunk and stage, independent of what else is generated."""
    digest = hashlib.sha256(f"{seed}:{chunk}:{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def load_preset_file(preset: str, base_dir: str = "") -> dict[str, Any]:
    """A suno ``.npz`` history prompt as {key: int64 array}; ValueError saying what is wrong."""
    import numpy as np

    path = store.resolve_path(preset, base_dir)
    if not path.is_file():
        raise ValueError(f"Bark preset file {preset} not found (looked at {path})")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except Exception as exc:
        raise ValueError(f"Bark preset {preset} is not a readable .npz file: {exc}") from None
    problems = []
    for key, rank in PRESET_KEYS.items():
        a = arrays.get(key)
        if a is None:
            problems.append(f"no '{key}'")
        elif a.ndim != rank or a.size == 0 or not np.issubdtype(a.dtype, np.integer):
            problems.append(f"'{key}' must be a non-empty {rank}-D integer array, got {a.dtype} {a.shape}")
        elif a.min() < 0 or a.max() >= (10_000 if key == "semantic_prompt" else 1024):
            problems.append(f"'{key}' has codes out of range")
    if not problems:
        if arrays["coarse_prompt"].shape[0] != 2:
            problems.append(f"'coarse_prompt' must have 2 codebooks, got {arrays['coarse_prompt'].shape[0]}")
        if arrays["fine_prompt"].shape[0] != 8:
            problems.append(f"'fine_prompt' must have 8 codebooks, got {arrays['fine_prompt'].shape[0]}")
    if problems:
        raise ValueError(f"Bark preset {preset} is not a Bark history prompt: {'; '.join(problems)} "
                         "(expected keys semantic_prompt, coarse_prompt, fine_prompt)")
    return {k: arrays[k].astype(np.int64) for k in PRESET_KEYS}


@dataclass
class _Loaded:
    model: Any
    processor: Any
    name: str  # for meta["generator"]


@dataclass
class _Row:
    item: int  # index of the request
    chunk: int
    text: str
    seed: int


class BarkBackend(NeuralBackend):
    name: ClassVar[str] = "bark"
    kinds: ClassVar[frozenset[str]] = frozenset({"dialogue"})
    max_batch: ClassVar[int] = 8
    default_model: ClassVar[str] = DEFAULT_MODEL
    packages: ClassVar[tuple[str, ...]] = ("torch", "transformers", "numpy")
    extra: ClassVar[str] = "hf"
    settings: ClassVar[tuple[Field, ...]] = (*_SETTINGS, *COMMON_SETTINGS)

    def extra_fingerprint(self, request: Request) -> dict[str, Any]:
        fp: dict[str, Any] = {"bark": VERSION}
        preset = (request.settings or {}).get("preset")
        if preset and is_preset_file(str(preset)):
            path = store.resolve_path(str(preset), request.base_dir)
            # A missing file is reported when the line is generated; here it only keys the entry.
            fp["preset_sha256"] = file_sha256(path) if path.is_file() else "missing"
        return fp

    def load_model(self, located: store.Located, device: str, dtype: Any) -> Any:
        from transformers import AutoProcessor, BarkModel

        path = located.path
        # The presets ship in the model repo; without that file the processor only warns.
        presets = "speaker_embeddings_path.json" if (path / "speaker_embeddings_path.json").is_file() else None
        processor = AutoProcessor.from_pretrained(str(path), speaker_embeddings_dict_path=presets)
        model = BarkModel.from_pretrained(str(path), dtype=dtype).to(device).eval()
        offset = model.generation_config.semantic_config.get("text_encoding_offset", 10_048)
        vocab = model.config.semantic_config.input_vocab_size
        if not hasattr(processor, "tokenizer") or len(processor.tokenizer) + offset > vocab:
            raise BackendUnavailable(f"model '{located.ref}': its tokenizer does not fit its semantic model "
                                     f"({len(getattr(processor, 'tokenizer', []))} tokens + {offset} > {vocab}); "
                                     "the folder is incomplete or mixed")
        name = located.info.repo if located.info else located.ref
        return _Loaded(model, processor, name)

    # -- generating ------------------------------------------------------------------------
    def generate_with(self, model: Any, requests: list[Request]) -> list[Result]:
        import numpy as np

        from ..audio.cleanup import fade
        from ..speech.alignment import join
        from ..speech.script import plain_script

        loaded: _Loaded = model
        scripts, voices, warnings, settings = [], [], [], []
        files: dict[str, Any] = {}  # preset files read once per call
        rows: list[_Row] = []
        for i, req in enumerate(requests):
            if req.kind not in self.kinds:
                raise ValueError(f"the bark backend speaks dialogue, not {req.kind}")
            s = {**_DEFAULTS, **(req.settings or {})}
            max_chars = max(1, int(float(s["max_chunk_seconds"]) * CHARS_PER_SECOND))
            script, warn = plain_script(req, "bark", max_chars, rewrite=partial(with_emotion, emotion=req.emotion))
            if self._all_unknown(loaded, script):
                warn.append("the model's tokenizer knows none of the words of this line")
            scripts.append(script)
            warnings.append(warn)
            settings.append(s)
            voices.append(self._voice(loaded, req, files))
            rows.extend(_Row(i, c, p.spoken, req.seed) for c, p in enumerate(script.pieces))

        # First every row whose voice is known: with a preset, or a line's first chunk. Rows
        # share a batch when they share the history prompt and the sampling temperatures.
        outputs: dict[tuple[int, int], tuple[Any, dict[str, Any]]] = {}
        groups: dict[Any, list[_Row]] = {}
        for r in rows:
            key, _ = voices[r.item]
            if key is not None or r.chunk == 0:
                s = settings[r.item]
                groups.setdefault((key, s["temperature"], s["coarse_temperature"]), []).append(r)
        for group in groups.values():
            for start in range(0, len(group), self.max_batch):
                self._render(loaded, requests, group[start:start + self.max_batch], voices[group[0].item][1],
                             settings, outputs)
        # Then the later chunks of lines without a preset, in the voice of their first chunk.
        for i in sorted({r.item for r in rows if voices[r.item][0] is None and r.chunk > 0}):
            later = [r for r in rows if r.item == i and r.chunk > 0]
            for start in range(0, len(later), self.max_batch):
                self._render(loaded, requests, later[start:start + self.max_batch], outputs[(i, 0)][1],
                             settings, outputs)

        rate = self._rate(loaded)
        results = []
        for i, req in enumerate(requests):
            pieces = scripts[i].pieces
            last = len(pieces) - 1
            # Chunks faded at the joins so they do not click, then joined with the script's pauses.
            parts: list[Part] = [(fade(np.asarray(outputs[(i, c)][0], dtype=np.float32), rate, FADE if c > 0 else 0.0,
                           FADE if c < last else 0.0, curve="linear"), None, []) for c in range(len(pieces))]
            audio = join(scripts[i], parts, rate)[0]
            preset = settings[i].get("preset")
            notes = [f"{len(pieces)} chunk{'s' if len(pieces) != 1 else ''} "
                     f"(max_chunk_seconds {float(settings[i]['max_chunk_seconds']):g})",
                     f"preset {preset}" if preset else "no preset: the seed picks the voice"]
            cue = EMOTION_CUES.get(req.emotion or "")
            if cue:
                notes.append(f"emotion {req.emotion}: {cue}")
            meta: dict[str, Any] = {"text": display(scripts[i].display), "generator": self._generator(loaded),
                                    "notes": notes}
            if warnings[i]:
                meta["warnings"] = warnings[i]
            results.append(Result(audio=np.clip(audio, -1.0, 1.0).astype(np.float32), sample_rate=rate, meta=meta))
        return results

    def _voice(self, loaded: _Loaded, req: Request, files: dict[str, Any]) -> tuple[Any, Any]:
        """(grouping key, history prompt for the processor) of a request: (None, None) without a
        preset, else a preset name of the model or the arrays of a preset file."""
        preset = (req.settings or {}).get("preset")
        if not preset:
            return None, None
        preset = str(preset)
        if is_preset_file(preset):
            path = str(store.resolve_path(preset, req.base_dir))
            if path not in files:
                files[path] = load_preset_file(preset, req.base_dir)
            return ("file", path), files[path]
        available = loaded.processor.available_voice_presets
        if preset not in available:
            some = ", ".join(sorted(available)[:6]) if available else "none"
            raise ValueError(f"unknown Bark preset '{preset}': model '{self.model_ref(req)}' has "
                             f"{len(available)} presets ({some}{', ...' if len(available) > 6 else ''}); "
                             "or give a path to a .npz history prompt")
        return ("name", preset), preset

    @staticmethod
    def _all_unknown(loaded: _Loaded, script: Any) -> bool:
        tok = loaded.processor.tokenizer
        ids = [t for p in script.pieces for t in tok(display(p.spoken), add_special_tokens=False)["input_ids"]]
        return bool(ids) and all(t == tok.unk_token_id for t in ids)

    # -- the three stages --------------------------------------------------------------------
    def _render(self, loaded: _Loaded, requests: list[Request], rows: list[_Row], voice: Any,
                settings: list[dict[str, Any]], outputs: dict[tuple[int, int], tuple[Any, dict[str, Any]]]) -> None:
        """Generate ``rows`` (one batch, one history prompt) into ``outputs[(item, chunk)]`` =
        (audio, the row's own codes as a history prompt)."""
        import numpy as np
        import torch
        from transformers.models.bark.generation_configuration_bark import (
            BarkCoarseGenerationConfig,
            BarkFineGenerationConfig,
            BarkSemanticGenerationConfig,
        )

        model, processor = loaded.model, loaded.processor
        device = model.device
        gc = model.generation_config
        # Sampling happens in row_sampler (with the model's own top_k / top_p, as transformers
        # would apply them): the stages themselves decode greedily.
        greedy = {"do_sample": False, "temperature": 1.0, "top_k": None, "top_p": None}
        sem = BarkSemanticGenerationConfig(**{**gc.semantic_config, **greedy})
        coarse = BarkCoarseGenerationConfig(**{**gc.coarse_acoustics_config, **greedy})
        fine = BarkFineGenerationConfig(**gc.fine_acoustics_config)
        codebook_size = getattr(gc, "codebook_size", 1024)

        inputs = processor([r.text for r in rows], voice_preset=voice)
        history = inputs.get("history_prompt")
        history = {k: v.to(device) for k, v in history.items()} if history is not None else None
        s0 = settings[rows[0].item]  # the batch shares its temperatures (grouped so)

        def sampler(stage: str, config: dict[str, Any], temperature: float) -> Any:
            seeds = [sub_seed(r.seed, r.chunk, stage) for r in rows]
            return _with_sampler(row_sampler(seeds, 1, str(device), top_k=int(config.get("top_k") or 0),
                                             top_p=float(config.get("top_p") or 0.0), temperature=temperature))

        semantic = model.semantic.generate(
            inputs["input_ids"].to(device), history_prompt=history, semantic_generation_config=sem,
            attention_mask=inputs["attention_mask"].to(device),
            custom_generate=sampler("semantic", gc.semantic_config, float(s0["temperature"])))
        semantic_codes = semantic.clone()  # the coarse stage overwrites padding in place
        codes, lengths = model.coarse_acoustics.generate(
            semantic, history_prompt=history, semantic_generation_config=sem, coarse_generation_config=coarse,
            codebook_size=codebook_size, return_output_lengths=True,
            custom_generate=sampler("coarse", gc.coarse_acoustics_config, float(s0["coarse_temperature"])))
        for b, r in enumerate(rows):
            n = int(lengths[b])
            if n <= 0:
                raise ValueError(f"{requests[r.item].id}: Bark produced no speech for {r.text!r} (try another seed)")
            # The fine stage attends over its whole window and samples all rows at once: per row.
            torch.manual_seed(sub_seed(r.seed, r.chunk, "fine"))
            fine_codes = model.fine_acoustics.generate(
                codes[b:b + 1, :n], history_prompt=history, semantic_generation_config=sem,
                coarse_generation_config=coarse, fine_generation_config=fine, codebook_size=codebook_size,
                temperature=float(settings[r.item]["fine_temperature"]))
            audio = model.codec_decode(fine_codes)[0].float().cpu().numpy().reshape(-1)
            sem_row = semantic_codes[b].cpu().numpy()
            end = np.flatnonzero(sem_row >= sem.semantic_vocab_size)
            sem_row = sem_row[:end[0]] if len(end) else sem_row
            f = fine_codes[0].cpu().numpy().astype(np.int64)
            own = {"semantic_prompt": sem_row.astype(np.int64), "coarse_prompt": f[:2].copy(), "fine_prompt": f}
            outputs[(r.item, r.chunk)] = (audio.astype(np.float32), own)

    @staticmethod
    def _rate(loaded: _Loaded) -> int:
        return int(getattr(loaded.model.generation_config, "sample_rate", SAMPLE_RATE) or SAMPLE_RATE)

    @staticmethod
    def _generator(loaded: _Loaded) -> str:
        return f"Bark ({loaded.name}) via transformers {versions('transformers')['transformers']}"


def _with_sampler(sampler: Any) -> Any:
    """A ``custom_generate`` decoding loop: transformers' own, with ``sampler`` appended to
    the logits processors the Bark sub-model set up (it passes its own, so they cannot be
    given to ``generate``)."""
    from transformers import GenerationMixin

    def decode(self: Any, input_ids: Any, logits_processor: Any, stopping_criteria: Any, generation_config: Any,
               synced_gpus: bool = False, streamer: Any = None, **model_kwargs: Any) -> Any:
        logits_processor.append(sampler)
        return GenerationMixin._sample(self, input_ids, logits_processor, stopping_criteria, generation_config,
                                       synced_gpus=synced_gpus, streamer=streamer, **model_kwargs)

    return decode

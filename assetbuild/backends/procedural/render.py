"""Request -> Result: parse the prompt, run the kind's generators, make the loop, normalise."""

from __future__ import annotations

import numpy as np

from ..base import Request, Result
from . import ambience, dsp, music, sfx
from .bed import render_layers
from .dsp import SR
from .prompt import Layer, Recipe, parse

BED_SECONDS = 30.0


def render(request: Request) -> Result:
    if request.kind not in ("ambience", "music", "sfx"):
        raise ValueError(f"the procedural backend does not render {request.kind!r}")
    recipe = parse(request.prompt, request.kind)
    n_req = int(round(request.duration * SR)) if request.duration else None
    if n_req is not None and n_req < 1:
        n_req = 1
    notes: list[str] = []
    if request.kind == "sfx":
        audio, labels = _sfx(request, recipe, n_req, notes)
    elif request.kind == "music":
        audio, labels = _music(request, recipe, n_req, notes)
    else:
        audio, labels = _ambience(request, recipe, n_req, notes)
    if recipe.layers:
        for layer in recipe.layers:
            if layer.mods.words:
                notes.append(f"{layer.gen}: " + ", ".join(dict.fromkeys(layer.mods.words)))
        if recipe.unknown:
            notes.append("ignored words: " + ", ".join(dict.fromkeys(recipe.unknown)))
    if not np.isfinite(audio).all():  # never expected; a NaN would poison mastering
        audio = np.nan_to_num(audio)
    if request.loop:
        audio = dsp.quiet_seam(audio)
    audio = np.ascontiguousarray(audio.T if audio.ndim == 2 else audio, dtype=np.float32)
    dsp.normalize_peak(audio)
    warnings = [n for n in notes if n.startswith(_UNMATCHED)]  # shown by the build, not just recorded
    return Result(audio=audio, sample_rate=SR,
                  meta={"generator": "+".join(labels), "notes": notes, "warnings": warnings})


_UNMATCHED = "no generator matched"


def _unmatched(recipe: Recipe, fallback: str) -> str:
    said = " ".join(recipe.words) or recipe.prompt.strip()
    return f"{_UNMATCHED} {said!r}; used {fallback}"


def _ambience(request: Request, recipe: Recipe, n_req: int | None, notes: list[str]) -> tuple[np.ndarray, list[str]]:
    layers = recipe.layers
    if not layers:
        layers = [Layer("noise", None, recipe.mods)]
        notes.append(_unmatched(recipe, "a soft noise bed"))
    n = n_req or int(BED_SECONDS * SR)
    bed = render_layers(layers, ambience.GENERATORS, n, 2, request.seed, recipe.words, request.loop)
    notes.extend(bed.notes)
    if not recipe.layers:
        return bed.audio, ["noise"]
    return bed.audio, bed.labels


def _music(request: Request, recipe: Recipe, n_req: int | None, notes: list[str]) -> tuple[np.ndarray, list[str]]:
    n = n_req or int(BED_SECONDS * SR)
    spec = recipe.music
    assert spec is not None  # a music recipe always has one
    audio, mnotes = music.render(spec, recipe.mods, n, request.loop, request.seed, request.settings or {})
    notes.extend(mnotes)
    if spec is not None and spec.mood == "neutral":
        notes.append("no mood word matched; used a neutral feel (try calm, tense, epic, sad, happy, mysterious)")
    labels = ["music"]
    if recipe.layers:
        # Ambience asked for in the prompt ("calm piano with rain") sits under the music.
        bed = render_layers(recipe.layers, ambience.GENERATORS, n, 2, request.seed, recipe.words, request.loop)
        notes.extend(bed.notes)
        m_rms = float(np.sqrt(np.mean(audio ** 2))) or 1.0
        b_rms = float(np.sqrt(np.mean(bed.audio ** 2))) or 1.0
        audio = audio + bed.audio * (0.4 * m_rms / b_rms)
        labels += bed.labels
    return audio, labels


def _sfx(request: Request, recipe: Recipe, n_req: int | None, notes: list[str]) -> tuple[np.ndarray, list[str]]:
    layers = recipe.layers
    if not layers:
        layers = [Layer("puff", None, recipe.mods)]
        notes.append(_unmatched(recipe, "a soft noise burst"))
    loop = request.loop
    tail = dsp.loop_tail(n_req, 0.25) if (loop and n_req) else 0
    target = (n_req + tail) / SR if n_req else None
    parts: list[np.ndarray] = []
    labels: list[str] = []
    for i, layer in enumerate(layers):
        if layer.gen in sfx.GENERATORS:
            fx = sfx.Fx(dsp.rng_for(request.seed, "sfx", layer.gen), layer.mods, layer.variant, recipe.words, target)
            sig = sfx.GENERATORS[layer.gen](fx)
            labels.append(layer.gen if not fx.variant else f"{layer.gen}-{fx.variant}")
            notes.extend(fx.notes)
        else:
            # An ambience generator as a one-shot ("thunder clap", "fire crackle"): mono, short.
            n = int(round((target or ambience.SFX_SECONDS.get(layer.gen, 2.0)) * SR))
            bed = render_layers([layer], ambience.GENERATORS, n, 1, request.seed, recipe.words, False, single=True,
                                nfft=1024)
            sig = dsp.fade_edges(bed.audio[0], 0.005, 0.1)
            labels.extend(bed.labels)
            notes.extend(bed.notes)
        m = layer.mods
        if m.distance > 0:
            sig = dsp.lowpass(sig, 16000.0 * 0.12 ** m.distance)
        peak = float(np.max(np.abs(sig))) or 1.0
        gain = (1.0 if i == 0 else 0.7) * min(m.level, 2.0) * (1.0 - 0.4 * m.distance)
        parts.append(sig * (gain / peak))
    total = n_req + tail if n_req else max(len(p) for p in parts)
    out = np.zeros(total)
    for p in parts:
        out[: min(total, len(p))] += p[:total]
    if not loop:
        fade = min(len(out) // 4, int(0.002 * SR))
        if max(len(p) for p in parts) > total:  # cut short: fade a little longer
            fade = min(len(out) // 4, int(0.01 * SR))
        if fade:
            out[-fade:] *= np.linspace(1.0, 0.0, fade)
        return out, labels
    if n_req is None:
        n = max(1, int(total * 0.8))
        return dsp.loop_crossfade(out, n), labels
    return dsp.loop_crossfade(out, n_req), labels

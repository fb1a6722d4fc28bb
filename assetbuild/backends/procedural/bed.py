"""Layer mixing for beds: each generator fills a :class:`LayerCtx`, the mixer balances the
layers, renders all their noise in one pass and makes the loop seam.

A layer has three kinds of content:

* noise terms, (envelope at frame rate) x (power spectrum), synthesised together at the end
  (independent Gaussian noises add in power, so one synthesis serves every layer);
* time-domain audio (crackles, chirps, drops) rendered over the whole span, loop tail included;
* "coherent" audio that repeats exactly every ``period`` frames (mains hum, drone partials,
  frequencies rounded to whole cycles): it needs no crossfade, and crossfading it would swell
  or cancel, so it is added after the seam is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import dsp
from .dsp import SR
from .prompt import Layer, Mods

# Relative level of each generator in a mix (before modifiers); thunder is sparse and
# punchy, birds and insects sit a little under the bed.
BASE_GAIN = {"wind": 1.0, "rain": 1.0, "thunder": 1.5, "water": 1.0, "fire": 1.0, "birds": 0.75,
             "insects": 0.6, "roomtone": 1.0, "drone": 1.0, "crowd": 1.0, "noise": 1.0}


class LayerCtx:
    """What a generator sees and fills."""

    def __init__(self, grid: dsp.NoiseGrid, channels: int, period: int, rng: np.random.Generator, layer: Layer,
                 words: list[str], single: bool):
        self.grid = grid
        self.n = grid.n  # frames to render, loop tail included
        self.period = period  # frames in the output; coherent content repeats with this period
        self.ch = channels
        self.t = grid.t  # frame times, seconds
        self.f = grid.f  # bin frequencies, Hz
        self.rng = rng
        self.mods: Mods = layer.mods
        self.variant = layer.variant
        self.words = set(words)
        self.single = single  # one-shot (sfx): event generators render one event near the start
        self.terms: list[tuple[np.ndarray, np.ndarray]] = []
        self.y: np.ndarray | None = None
        self.coh: np.ndarray | None = None
        self.notes: list[str] = []

    @property
    def seconds(self) -> float:
        return self.n / SR

    def noise(self, env: np.ndarray | float, shape: np.ndarray) -> None:
        """Noise with power spectrum ``shape`` (any scale) and variance ``env`` per frame."""
        env = np.broadcast_to(np.asarray(env, dtype=np.float64), (self.grid.frames,)) if np.ndim(env) == 0 \
            else np.asarray(env, dtype=np.float64)
        # Shapes are normalised to unit mean power, so ``env`` is the term's actual variance and
        # weights mean the same thing whether a shape is broad or narrow.
        shape = np.asarray(shape, dtype=np.float64)
        mean = float(np.mean(shape[1:]))
        if mean > 0:
            self.terms.append((env, shape / mean))

    def add(self, sig: np.ndarray, channel: int | None = None, start: int = 0, gain: float = 1.0) -> None:
        """Add mono (to all channels, or one) or (channels, m) audio at ``start``."""
        if self.y is None:
            self.y = np.zeros((self.ch, self.n), dtype=np.float32)  # single precision: long beds
        if sig.ndim == 2:
            dsp.place(self.y, start, sig, gain)
        elif channel is None:
            for c in range(self.ch):
                dsp.place(self.y[c], start, sig, gain)
        else:
            dsp.place(self.y[channel], start, sig, gain)

    def add_coherent(self, sig: np.ndarray) -> None:
        """Audio exactly one period long that loops onto itself ((period,) or (channels, period))."""
        if self.coh is None:
            self.coh = np.zeros((self.ch, self.period))
        self.coh += sig

    def pan(self, p: float) -> np.ndarray:
        return dsp.pan_gains(p, self.ch)

    def loop_freq(self, f: float) -> float:
        """Nearest frequency with a whole number of cycles per period (inaudibly close)."""
        span = self.period / SR
        return max(1.0, round(f * span)) / span

    def frame_power(self) -> np.ndarray:
        """Mean power per frame hop (mono average), for balancing layers."""
        frames = self.grid.frames
        hop = self.grid.hop
        p = dsp.noise_variance(self.terms, self.ch, frames).mean(axis=0) if self.terms else np.zeros(frames)
        for sig in (self.y, self.coh):
            if sig is None:
                continue
            m = sig.shape[1] // hop
            if m == 0:
                continue
            tp = (sig[:, :m * hop] ** 2).reshape(self.ch, m, hop).mean(axis=(0, 2))
            p[:m] += tp[:frames]
        return p


@dataclass
class BedResult:
    audio: np.ndarray  # (channels, n)
    labels: list[str]
    notes: list[str] = field(default_factory=list)


def render_layers(layers: list[Layer], generators: dict, n_out: int, channels: int, seed: int, words: list[str],
                  loop: bool, single: bool = False, tail_seconds: float = 2.0, nfft: int = 2048) -> BedResult:
    tail = dsp.loop_tail(n_out, tail_seconds) if loop else 0
    n = n_out + tail
    grid = dsp.NoiseGrid(n, nfft)
    terms: list[tuple[np.ndarray, np.ndarray]] = []
    y = np.zeros((channels, n), dtype=np.float32)
    coh = None
    notes: list[str] = []
    labels = []
    for layer in layers:
        ctx = LayerCtx(grid, channels, n_out, dsp.rng_for(seed, "layer", layer.gen), layer, words, single)
        generators[layer.gen](ctx)
        labels.append(layer.gen if not ctx.variant else f"{layer.gen}-{ctx.variant}")
        notes.extend(ctx.notes)
        m = layer.mods
        # Balance layers on their loud parts (95th percentile of frame power), so sparse
        # layers (thunder, birdsong) are judged by their events, not by the silence between.
        power = ctx.frame_power()
        ref = float(np.sqrt(np.percentile(power, 95))) if power.size else 0.0
        if ref <= 0:
            continue
        gain = BASE_GAIN.get(layer.gen, 1.0) * min(m.level, 3.0) * (1.0 - 0.5 * m.distance) / ref
        shape_filter, td_cut = _colour(grid.f, m)
        for env, shape in ctx.terms:
            terms.append((env * gain ** 2, shape * shape_filter))
        if ctx.y is not None:
            y += gain * (dsp.lowpass(ctx.y, td_cut) if td_cut else ctx.y)
        if ctx.coh is not None:
            c = gain * (_lowpass_periodic(ctx.coh, td_cut) if td_cut else ctx.coh)
            coh = c if coh is None else coh + c
        ctx.y = ctx.coh = None  # free the layer's audio before the next one renders
    if terms:
        y += dsp.synth_noise(grid, terms, channels, dsp.rng_for(seed, "noise"))
    out = dsp.loop_crossfade(y, n_out) if loop else y[:, :n_out]
    if coh is not None:
        out = out + coh
    if not loop:
        dsp.fade_edges(out, 0.02, 0.1)  # a bed that starts at full level would click
    return BedResult(out, labels, notes)


def _colour(f: np.ndarray, m: Mods) -> tuple[np.ndarray, float | None]:
    """Distance and brightness as filters: a power curve for noise, a lowpass for the rest."""
    curve = np.ones_like(f)
    cut = None
    if m.distance > 0:
        fc = 16000.0 * 0.12 ** m.distance  # distant: ~2 kHz
        curve = curve * dsp.lp(f, fc, 1)
        cut = fc
    b = float(np.clip(m.brightness, 0.2, 4.0))
    if b < 0.95:
        fc = 14000.0 * b ** 1.5
        curve = curve * dsp.lp(f, fc, 1)
        cut = fc if cut is None else min(cut, fc)
    elif b > 1.05:
        curve = curve * np.clip((np.maximum(f, 50.0) / 1500.0) ** (0.5 * np.log2(b)), 0.25, 4.0)
    return curve, cut


def _lowpass_periodic(x: np.ndarray, fc: float) -> np.ndarray:
    """Lowpass a signal that repeats every len(x) frames without breaking the repetition: the
    filter first runs over the end of the period so it starts in its steady state."""
    warm = min(x.shape[-1], int(0.2 * SR))
    y = dsp.lowpass(np.concatenate([x[..., x.shape[-1] - warm:], x], axis=-1), fc)
    return y[..., warm:]

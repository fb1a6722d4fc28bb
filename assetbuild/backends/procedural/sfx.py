"""Sound effects, sfxr-style: oscillators (square/saw/triangle/sine/pitched noise) with
pitch slides and simple envelopes, plus a few physically-flavoured recipes (footsteps,
whoosh, shimmer, explosion). Each generator returns mono float64 audio of its natural length
(scaled by size/speed, or stretched towards the requested duration).
"""

from __future__ import annotations

import numpy as np

from . import dsp
from .dsp import SR
from .prompt import SURFACES, Mods


class Fx:
    """What an effect generator sees."""

    def __init__(self, rng: np.random.Generator, mods: Mods, variant: str | None, words: list[str],
                 target: float | None):
        self.rng = rng
        self.m = mods
        self.variant = variant
        self.words = set(words)
        self.target = target  # seconds asked for, or None
        self.notes: list[str] = []

    def seconds(self, natural: float) -> float:
        """Length to render: natural length shaped by size/speed, or the requested duration
        (envelopes stretch up to 4x / shrink down to 1/4; beyond that the rest is silence)."""
        base = natural * min(max(self.m.size, 0.3), 3.0) ** 0.5 / min(max(self.m.speed, 0.3), 3.0) ** 0.7
        if self.target is None:
            return base
        return float(min(max(self.target, base * 0.25), base * 4.0))

    @property
    def retro(self) -> bool:
        return self.m.retro

    @property
    def soft(self) -> bool:
        return bool(self.m.words) and self.m.brightness < 0.9 and self.m.intensity < 0.9


def _n(seconds: float) -> int:
    return max(16, int(round(seconds * SR)))


def _decay_env(n: int, sustain: float, punch: float = 0.0, curve: float = 2.0, attack: int = 48) -> np.ndarray:
    """sfxr envelope: quick attack, sustain for a fraction of the length (with an optional
    punch that decays through it), then a decay that reaches exactly zero at the end."""
    env = np.ones(n)
    s = int(n * sustain)
    if punch and s:
        env[:s] += punch * (1.0 - np.arange(s) / s)
    d = n - s
    if d > 0:
        ramp = 1.0 - np.arange(d) / d
        env[s:] *= ramp if curve == 1.0 else ramp * ramp if curve == 2.0 else ramp ** curve
    a = min(attack, n // 4)
    if a:
        env[:a] *= np.arange(a) / a
    return env


def _burst(rng: np.random.Generator, n: int, tau: float, lo: float | None = None, hi: float | None = None,
           start: int = 0) -> np.ndarray:
    """Exponentially decaying noise burst, band-limited, placed at ``start`` in an n-sample
    buffer. Only its audible part (~9 time constants, -80 dB) is generated and filtered."""
    out = np.zeros(n)
    m = min(n - start, int(9 * tau * SR) + 240)
    if m <= 0:
        return out
    seg = dsp.white(rng, m) * np.exp(-np.arange(m) / (tau * SR))
    out[start:start + m] = dsp.band_limit(seg, lo, hi)
    return out


def _norm(x: np.ndarray) -> np.ndarray:
    return x / (np.max(np.abs(x)) + 1e-12)


def _decay(n: int, tau: float, attack: float = 0.0) -> np.ndarray:
    """exp(-t/tau), with an optional linear attack."""
    env = np.exp(np.arange(n) * (-1.0 / (tau * SR)))
    a = min(n, int(attack * SR))
    if a > 1:
        env[:a] *= np.arange(a) / a
    return env


# --------------------------------------------------------------------------- effects

def coin(fx: Fx) -> np.ndarray:
    """Two square notes: a short one, then a jump up a fourth/fifth/octave that rings out."""
    m, rng = fx.m, fx.rng
    n = _n(fx.seconds(0.4))
    f0 = float(rng.choice([880.0, 987.8, 1046.5, 1174.7, 1318.5])) * m.pitch
    ratio = float(rng.choice([4 / 3, 3 / 2, 2.0]))
    if m.sweep < 0:
        ratio = 1.0 / ratio
    freq = np.full(n, f0)
    freq[int(n * 0.17):] = f0 * ratio
    kind = "triangle" if fx.soft else "square"
    duty = 0.5 if fx.retro else float(rng.choice([0.25, 0.5]))
    sig = dsp.wave(kind, freq, n, duty) * _decay_env(n, 0.3, punch=0.3, curve=2.0)
    if not fx.retro:
        sig = dsp.lowpass(sig, 7000.0 * m.brightness)
    return sig


def jump(fx: Fx) -> np.ndarray:
    """Square wave sliding up (down when "descending"), sfxr's jump."""
    m, rng = fx.m, fx.rng
    n = _n(fx.seconds(0.3))
    f0 = rng.uniform(220.0, 330.0) * m.pitch / min(max(m.size, 0.3), 3.0) ** 0.5
    f1 = f0 * rng.uniform(1.8, 2.6)
    if m.sweep < 0:
        f0, f1 = f1, f0
    freq = dsp.glide(n, f0, f1, 0.6)
    duty = rng.uniform(0.3, 0.5)
    sig = dsp.wave("square", freq, n, duty)
    if not fx.retro:
        sig = dsp.lowpass(sig, 5000.0 * m.brightness)
    return sig * _decay_env(n, 0.15, curve=2.0)


def laser(fx: Fx) -> np.ndarray:
    """Bright saw (square when retro) diving fast from high to low, with a touch of vibrato and
    a narrowing pulse; rises instead when "ascending"."""
    m, rng = fx.m, fx.rng
    n = _n(fx.seconds(0.25))
    f0 = rng.uniform(900.0, 1600.0) * m.pitch
    f1 = f0 * rng.uniform(0.12, 0.25)
    if m.sweep > 0:
        f0, f1 = f1 * 1.5, f0 * 1.5
    freq = dsp.glide(n, f0, f1, 0.6)
    freq *= 1.0 + 0.02 * dsp.sine(rng.uniform(25.0, 40.0), n)
    if fx.retro:
        duty = np.linspace(0.5, 0.15, n)
        sig = dsp.wave("square", freq, n, duty)
    else:
        sig = dsp.wave("saw", freq, n)
    if fx.words & {"blaster", "heavy", "big"} or m.size > 1.2:
        sig = sig + 0.4 * dsp.wave("noise", freq * 4.0, n, rng=rng)
    sig *= _decay_env(n, 0.1, punch=0.5, curve=1.0, attack=24)
    return dsp.band_limit(sig, 120.0, None if fx.retro else 9000.0 * m.brightness)


def explosion(fx: Fx) -> np.ndarray:
    if fx.variant == "gunshot":
        return _gunshot(fx)
    m, rng = fx.m, fx.rng
    size = min(max(m.size, 0.3), 3.0)
    n = _n(fx.seconds(1.6))
    far = m.distance
    secs = n / SR
    attack = 0.003 + 0.03 * far  # sharp, softer when distant

    def amp(t: np.ndarray) -> np.ndarray:
        # Fast decay plus a long rumbling tail.
        return (np.exp(-t / (0.18 * secs)) + 0.35 * np.exp(-t / (0.5 * secs))) * np.minimum(t / attack, 1.0)

    if fx.retro:
        # sfxr: pitched noise whose rate slides down.
        sig = dsp.wave("noise", dsp.glide(n, 4000.0 * m.pitch, 250.0 * m.pitch, 0.7), n, rng=rng)
        return sig * amp(np.arange(n) / SR) * (1.0 - np.arange(n) / n)
    # Body: noise whose lowpass cut-off falls from bright to a low rumble (spectral frames of
    # ~21 ms, fine enough for a boom; the thump and crack carry the attack).
    grid = dsp.NoiseGrid(n, 1024)
    ft = grid.t
    fc = (150.0 + 5000.0 * m.brightness * np.exp(-ft / (0.08 * secs))) * m.pitch / size ** 0.5 * (1.0 - 0.6 * far)
    r2 = (grid.f[None, :] / fc[:, None]) ** 2
    power = (amp(ft) ** 2)[:, None] / (1.0 + r2 * r2) * (dsp.pink(grid.f, 150.0) * dsp.hp(grid.f, 25.0))[None, :]
    body = _norm(dsp.synth_power(grid, power, rng))
    # Sub thump: a sine falling from ~60 to ~28 Hz.
    tau = 0.15 * size
    k = min(n, int(6 * tau * SR))
    thump = np.zeros(n)
    thump[:k] = dsp.wave("sine", dsp.glide(k, 60.0 * m.pitch / size ** 0.3, 28.0, 0.5), k) * _decay(k, tau, attack)
    sig = body + 0.8 * thump
    if far < 0.5:
        sig += 0.4 * _norm(_burst(rng, n, 0.004, 200.0))  # the crack of the blast front
    if size > 1.2 or fx.words & {"debris", "rubble"}:
        # Debris: small clicks trailing off (differenced noise grains: bright, no filter pass).
        k = int(40 * size)
        times = 0.15 * secs + rng.exponential(0.2 * secs, k)
        g = 200
        grains = np.diff(rng.random((k, g + 1)), axis=1) * np.exp(-np.arange(g) / rng.uniform(10.0, 40.0, k)[:, None])
        sig = sig + dsp.scatter(n, (times * SR).astype(np.int64), grains,
                                np.exp(-times / (0.3 * secs)) * rng.uniform(0.1, 0.3, k))
    x = 1.3 * _norm(sig)
    sig = x * (27.0 + x * x) / (27.0 + 9.0 * x * x)  # tanh (Pade): a little saturation for weight
    return sig * _decay_env(n, 0.7, curve=1.0, attack=1)


def _gunshot(fx: Fx) -> np.ndarray:
    """Crack (very short bright burst) + body (band noise) + low thump + short room tail."""
    m, rng = fx.m, fx.rng
    n = _n(fx.seconds(0.6))
    t = np.arange(n) / SR
    crack = _burst(rng, n, 0.0015)
    body = _norm(_burst(rng, n, 0.025, 600.0 * m.pitch, 4000.0 * m.brightness))
    thump = dsp.wave("sine", dsp.glide(n, 110.0 * m.pitch, 55.0, 0.3), n) * _decay(n, 0.04)
    tail = _norm(_burst(rng, n, 0.12, None, 2500.0)) * np.minimum(t / 0.01, 1.0)
    sig = 0.5 * crack / np.max(np.abs(crack[:480])) + 1.0 * body + 0.8 * thump + 0.3 * tail
    return sig * _decay_env(n, 0.6, curve=1.0, attack=1)


def hit(fx: Fx) -> np.ndarray:
    """Impact: a low thump with a fast pitch drop, a short noise burst and a click.
    Metal/clang adds inharmonic ringing partials; wood/knock a short resonance."""
    m, rng = fx.m, fx.rng
    size = min(max(m.size, 0.3), 3.0)
    metal = fx.variant == "metal" or bool(fx.words & {"metal", "metallic", "clang", "clank", "sword", "anvil"})
    wood = bool(fx.words & {"wood", "wooden", "knock", "door"})
    n = _n(fx.seconds(1.0 if metal else 0.35))
    t = np.arange(n) / SR
    f_hi, f_lo = 160.0 * m.pitch / size ** 0.5, 55.0 * m.pitch / size ** 0.5
    freq = f_lo + (f_hi - f_lo) * np.exp(-t / 0.03)
    thump = dsp.wave("sine", freq, n) * _decay(n, 0.07 * size)
    burst = _norm(_burst(rng, n, 0.008, 300.0, 4000.0 * m.brightness))
    click = np.zeros(n)
    c = min(n, 48)
    click[:c] = dsp.white(rng, c) * np.linspace(1.0, 0.0, c)
    sig = thump + 0.6 * burst + 0.3 * click
    if wood:
        ring = dsp.resonator(burst, rng.uniform(220.0, 380.0) * m.pitch, 12.0)
        sig += 1.5 * ring / (np.max(np.abs(ring)) + 1e-12)
    if metal:
        f0 = rng.uniform(350.0, 600.0) * m.pitch / size ** 0.5
        # Inharmonic partials of a struck bar/plate; higher ones die away sooner.
        ring = np.zeros(n)
        for k, ratio in enumerate((1.0, 2.76, 5.40, 8.93)):
            tau = rng.uniform(0.3, 0.6) / (1.0 + k)
            m_ = min(n, int(7 * tau * SR))
            ring[:m_] += dsp.sine(f0 * ratio * rng.uniform(0.99, 1.01), m_, rng.random()) * _decay(m_, tau) \
                / (k + 1) ** 0.5
        sig = 0.6 * sig + ring * np.minimum(t / 0.001, 1.0)
    return sig * _decay_env(n, 0.5, curve=1.0, attack=1)


_UI_NOTES = np.array([880.0, 1046.5, 1174.7, 1318.5, 1568.0, 1760.0])


def ui(fx: Fx) -> np.ndarray:
    m, rng = fx.m, fx.rng
    variant = fx.variant or "blip"
    fx.variant = variant
    kind = "square" if fx.retro else "sine"
    if variant == "click":
        # A tick (tiny bright noise burst) and a very short high ping.
        n = _n(fx.seconds(0.08))
        tick = np.zeros(n)
        k = min(n, 240)  # 0.6 ms decay; differenced noise is already bright, no filter needed
        tick[:k] = _norm(np.diff(dsp.white(rng, k + 1)) * np.exp(-np.arange(k) / (0.0006 * SR)))
        fp = rng.uniform(2500.0, 4500.0) * m.pitch * (0.6 if fx.soft else 1.0)
        ping = dsp.sine(fp, n) * _decay(n, 0.005)
        return (0.6 * tick + ping) * _decay_env(n, 0.5, curve=1.0, attack=1)
    if variant == "blip":
        n = _n(fx.seconds(0.1))
        f0 = float(rng.choice(_UI_NOTES)) * m.pitch
        freq = dsp.glide(n, f0, f0 * (0.8 if m.sweep < 0 else 1.03), 0.5)
        sig = dsp.wave(kind, freq, n, 0.5) * np.exp(-np.arange(n) / (n / 4.0))
        return sig * _decay_env(n, 0.6, attack=96)
    # Two-note confirm (up a fifth) or error (down, lower, buzzier).
    up = variant == "confirm"
    n = _n(fx.seconds(0.22 if up else 0.3))
    f0 = float(rng.choice(_UI_NOTES[:4])) * m.pitch * (1.0 if up else 0.35)
    ratio = 1.5 if up else 0.75
    if m.sweep:
        ratio = 1.5 if m.sweep > 0 else 0.75
    half = n // 2
    freq = np.full(n, f0)
    freq[half:] = f0 * ratio
    kind = kind if up else "square"
    sig = dsp.wave(kind, freq, n, 0.5)
    if up:
        sig = sig + 0.3 * dsp.wave("sine", freq * 2.0, n)
    else:
        sig = dsp.lowpass(sig, 2500.0)
    env = np.concatenate([_decay_env(half, 0.5, curve=1.0, attack=96), _decay_env(n - half, 0.3, curve=1.5, attack=96)])
    return sig * env


def powerup(fx: Fx) -> np.ndarray:
    """Rising major arpeggio over two octaves, each step with a little upward slide, plus
    vibrato; "descending"/"powerdown" plays it downwards."""
    m, rng = fx.m, fx.rng
    n = _n(fx.seconds(0.8))
    semis = np.array([0, 4, 7, 12, 16, 19, 24], dtype=np.float64)
    if m.sweep < 0:
        semis = semis[::-1]
    f0 = rng.uniform(300.0, 450.0) * m.pitch
    body = int(n * 0.85)
    step = max(1, body // len(semis))
    idx = np.minimum(np.arange(n) // step, len(semis) - 1)
    within = (np.arange(n) % step) / step
    freq = f0 * 2.0 ** (semis[idx] / 12.0) * (1.0 + 0.08 * within)
    freq *= 1.0 + 0.015 * dsp.sine(8.0, n)
    if fx.retro:
        sig = dsp.wave("square", freq, n, 0.5)
    else:
        sig = dsp.lowpass(0.6 * dsp.wave("saw", freq, n) + 0.5 * dsp.wave("square", freq * 1.005, n, 0.25),
                          6000.0 * m.brightness)
    return sig * _decay_env(n, 0.65, curve=1.5, attack=48)


def footstep(fx: Fx) -> np.ndarray:
    """One step = heel thump (lowpassed noise + a low sine) + toe scuff, coloured by surface.
    Footsteps/walking/running = a sequence of steps at a walking (or running) pace."""
    m, rng = fx.m, fx.rng
    surface = next((SURFACES[w] for w in fx.words if w in SURFACES), "stone")
    fx.notes.append(f"footstep: {surface}")
    many = fx.variant == "walk"
    if many:
        running = bool(fx.words & {"run", "running", "sprint", "sprinting", "jog", "jogging"})
        interval = (0.32 if running else 0.52) / min(max(m.speed, 0.3), 3.0)
        n = _n(fx.target if fx.target else 2.5)
        count = max(1, int((n / SR - 0.05) / interval) + 1)
        out = np.zeros(n)
        for k in range(count):
            at = int((0.02 + k * interval * rng.uniform(0.96, 1.04)) * SR)
            if at >= n:
                break
            step = _step(fx, surface) * (1.0 if k % 2 == 0 else 0.8) * rng.uniform(0.85, 1.0)
            dsp.place(out, at, step)
        return out
    return _step(fx, surface, fx.seconds(0.3))


def _step(fx: Fx, surface: str, seconds: float = 0.3) -> np.ndarray:
    m, rng = fx.m, fx.rng
    size = min(max(m.size * (1.3 if fx.words & {"boots", "heavy"} else 1.0), 0.3), 3.0)
    n = _n(seconds)
    light = m.intensity < 0.8
    # Heel: a dull thump of lowpassed noise plus a low sine, 2 ms attack.
    heel = _norm(_burst(rng, n, 0.02 * size, None, 250.0 * m.pitch / size ** 0.5))
    heel += 0.6 * dsp.sine(80.0 * m.pitch / size ** 0.3, n) * _decay(n, 0.03)
    heel *= np.minimum(np.arange(n) / (0.002 * SR), 1.0)
    # Toe: a short scuff 40-80 ms later.
    toe = _norm(_burst(rng, n, 0.006, 1500.0, 6000.0 * m.brightness, int(rng.uniform(0.04, 0.08) * SR)))
    sig = heel + (0.2 if light else 0.4) * toe
    if surface in ("gravel", "snow", "grass"):
        # Crunch: a burst of tiny grains over ~80 ms.
        k = int(rng.integers(20, 40))
        times = rng.uniform(0.0, 0.08, k) + rng.uniform(0.0, 0.01)
        g = 96
        grains = (rng.random((k, g)) - 0.5) * np.exp(-np.arange(g) / rng.uniform(4.0, 20.0, k)[:, None])
        lo, hi = {"gravel": (1500.0, 8000.0), "snow": (700.0, 3000.0), "grass": (2500.0, 9000.0)}[surface]
        m_ = min(n, int(0.1 * SR))
        crunch = np.zeros(n)
        crunch[:m_] = dsp.band_limit(dsp.scatter(m_, (times * SR).astype(np.int64), grains, rng.uniform(0.3, 1.0, k)),
                                     lo, hi)
        sig = 0.7 * sig + (0.5 if surface == "snow" else 0.8) * _norm(crunch)
    elif surface == "wood":
        ring = dsp.resonator(heel, rng.uniform(180.0, 320.0) * m.pitch, 10.0)
        sig += 0.8 * _norm(ring)
    elif surface == "metal":
        f0 = rng.uniform(500.0, 800.0) * m.pitch
        ring = np.asarray(sum(dsp.sine(f0 * r, n, rng.random()) / (k + 1) for k, r in enumerate((1.0, 2.4, 4.1))))
        sig += 0.4 * ring * _decay(n, 0.12, 0.001)
    elif surface == "water":
        splash = _norm(_burst(rng, n, 0.07, 500.0, 5000.0)) * np.minimum(np.arange(n) / (0.01 * SR), 1.0)
        sig = 0.6 * sig + splash
    else:  # stone, concrete, tile: a sharp tick at the heel and a short slap-back
        sig += 0.3 * _norm(_burst(rng, n, 0.001, 3000.0))
        d = int(0.03 * SR)
        sig[d:] += 0.15 * sig[:-d]
    return sig * _decay_env(n, 0.6, curve=1.0, attack=1)


def whoosh(fx: Fx) -> np.ndarray:
    """Band-pass noise whose centre sweeps with the level (rises and falls as it passes), or
    one way when ascending/descending; swings and swishes are shorter and brighter."""
    m, rng = fx.m, fx.rng
    quick = bool(fx.words & {"swing", "swish", "swipe", "sword"})
    n = _n(fx.seconds(0.35 if quick else 0.7))
    grid = dsp.NoiseGrid(n, 256)
    x = np.clip(grid.t / (n / SR), 0.0, 1.0)
    p = 0.55
    a = np.where(x < p, np.sin(0.5 * np.pi * x / p) ** 2, np.cos(0.5 * np.pi * (x - p) / (1 - p)) ** 2)
    size = min(max(m.size, 0.3), 3.0)
    lo = 250.0 * m.pitch / size ** 0.5 * (1.6 if quick else 1.0)
    hi = 2500.0 * m.pitch * m.brightness * (1.5 if quick else 1.0)
    if m.sweep > 0:
        fc = lo * (hi / lo) ** x
    elif m.sweep < 0:
        fc = hi * (lo / hi) ** x
    else:
        fc = lo * (hi / lo) ** a
    f = grid.f
    bandp = np.exp(-0.5 * (np.log2(np.maximum(f[None, :], 1.0) / fc[:, None]) / 0.6) ** 2)
    power = (a ** 2)[:, None] * (bandp + 0.05 * dsp.pink(f, 300.0)[None, :])
    return dsp.synth_power(grid, power, rng) * _decay_env(n, 0.9, curve=1.0, attack=1)


def magic(fx: Fx) -> np.ndarray:
    """Sparkles: random high sine partials from a pentatonic scale, each with its own decay,
    denser early on, over a soft airy swell, then a cloud of echoes for a reverb-ish tail."""
    m, rng = fx.m, fx.rng
    n = _n(fx.seconds(1.8))
    secs = n / SR
    dark = m.brightness < 0.9 or bool(fx.words & {"dark", "evil", "curse", "cursed"})
    scale = np.array([0, 3, 5, 7, 10] if dark else [0, 2, 4, 7, 9], dtype=np.float64)
    root = (523.25 if dark else 1046.5) * m.pitch
    k = int(min(max(24 * m.intensity, 8), 60))
    onsets = np.sort(rng.random(k) ** 1.5 * 0.6 * secs)
    octave = rng.integers(0, 3, k).astype(np.float64)
    if m.sweep:
        # Rising (or falling) glitter: later sparkles sit higher (lower).
        octave = np.sort(octave) if m.sweep > 0 else np.sort(octave)[::-1]
    semis = rng.choice(scale, k) + 12.0 * octave
    freqs = root * 2.0 ** (semis / 12.0)
    # Grains: fixed-point phase into the sine table (exact, no float rounding), decays picked
    # from four precomputed curves, a 20 ms fade so no grain is cut off.
    g = min(n, int(0.3 * SR))
    tt = np.arange(g, dtype=np.int64)
    inc = np.round(freqs * (dsp.TABLE / SR) * 65536.0).astype(np.int64)
    ph = rng.integers(0, dsp.TABLE << 16, k)
    idx = ((inc[:, None] * tt[None, :] + ph[:, None]) >> 16) & (dsp.TABLE - 1)
    curves = np.exp(-np.arange(g)[None, :] / (np.array([0.03, 0.06, 0.1, 0.15])[:, None] * SR))
    curves[:, :48] *= np.arange(48) / 48.0
    curves[:, -960:] *= np.linspace(1.0, 0.0, 960)
    grains = dsp._SINE.take(idx) * curves[rng.integers(0, 4, k)]
    sig = _norm(dsp.scatter(n, (onsets * SR).astype(np.int64), grains, rng.uniform(0.3, 1.0, k)))
    # Airy swell under the sparkles, and an echo cloud (a dozen decaying taps at random
    # delays) for the reverb-ish tail; both band-limited in one pass.
    x = np.arange(n) / n
    wet = 0.08 * dsp.white(rng, n) * np.sin(np.pi * np.minimum(x / 0.7, 1.0)) ** 2
    for d, gain in zip(np.sort(rng.uniform(0.03, 0.6, 12)), rng.uniform(0.3, 0.6, 12)):
        s_ = int(d * SR)
        if s_ < n:
            wet[s_:] += 0.6 * gain * np.exp(-d / 0.35) * sig[: n - s_]
    sig = sig + dsp.band_limit(wet, 0.8 * root, 7000.0 * m.brightness)
    return sig * _decay_env(n, 0.75, curve=1.5, attack=24)


def puff(fx: Fx) -> np.ndarray:
    """Fallback: a soft, short band-limited noise swell."""
    m, rng = fx.m, fx.rng
    n = _n(fx.seconds(0.4))
    x = np.arange(n) / n
    env = np.sin(np.pi * x ** 0.6) ** 2
    return dsp.bandpass(dsp.white(rng, n), 300.0 * m.pitch, 3000.0 * m.brightness) * env


GENERATORS = {"coin": coin, "jump": jump, "laser": laser, "explosion": explosion, "hit": hit, "ui": ui,
              "powerup": powerup, "footstep": footstep, "whoosh": whoosh, "magic": magic, "puff": puff}

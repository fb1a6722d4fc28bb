"""Ambience generators. Each fills a :class:`~.bed.LayerCtx` with noise terms (shaped,
slowly modulated noise: wind, rain hiss, surf, murmur) and/or time-domain events (drops,
crackles, chirps, bubbles). Levels inside a generator are relative; the mixer balances layers.

Modifiers used here: intensity (density/strength), speed (event rate, modulation rate),
pitch, size, brightness. Distance and overall brightness are applied by the mixer.
"""

from __future__ import annotations

import numpy as np

from . import dsp
from .bed import LayerCtx
from .dsp import SR, band, brown, hp, lp, pink


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


def _noise_rms(c: LayerCtx) -> float:
    if not c.terms:
        return 1.0
    return float(np.sqrt(dsp.noise_variance(c.terms, c.ch, c.grid.frames).mean()))


def _scaled(sig: np.ndarray, rms: float) -> np.ndarray:
    r = float(np.sqrt(np.mean(sig ** 2))) if sig.size else 0.0
    return sig * (rms / r) if r > 0 else sig


def _tame(x: np.ndarray, limit: float) -> np.ndarray:
    """Soft-knee limit: unchanged below 70% of ``limit``, approaching ``limit`` smoothly above."""
    knee = 0.7 * limit
    a = np.abs(x)
    over = a > knee
    if not over.any():
        return x
    y = x.copy()
    y[over] = np.sign(x[over]) * (knee + (limit - knee) * np.tanh((a[over] - knee) / (limit - knee)))
    return y


def _poisson_times(rng: np.random.Generator, rate: float, seconds: float) -> np.ndarray:
    k = int(rng.poisson(max(rate, 0.0) * seconds))
    return np.sort(rng.uniform(0.0, seconds, k))


# --------------------------------------------------------------------------- wind

def wind(c: LayerCtx) -> None:
    """Noise through a band that wanders with slow gusts; strong wind adds a low buffet and
    a howling whistle that follows the gusts."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    s = _clip(m.intensity, 0.25, 3.0)
    howl = c.variant == "howl" or s > 1.5
    # Two time scales: slow swells (tens of seconds) and gusts (a few seconds).
    rate = 0.25 * m.speed * (0.8 + 0.3 * s)
    swell = dsp.slow_curve(rng, t, 0.05 * m.speed)
    common = 0.55 * swell + 0.7 * dsp.slow_curve(rng, t, rate)
    centres = 110.0 * 2.0 ** (np.arange(15) / 2.0)
    f0 = 420.0 * m.pitch * (1.15 - 0.15 * min(s, 2.0)) * (1.0 + 0.4 * (s < 0.8))
    depth = 0.22 + 0.12 * min(s, 2.5)
    env_w = np.zeros((len(centres), c.ch, c.grid.frames))
    base = np.zeros((c.ch, c.grid.frames))
    rumble = np.zeros_like(base)
    for ch in range(c.ch):
        g = common + 0.35 * dsp.slow_curve(rng, t, rate * 2.0)  # each ear gets its own flutter
        a2 = np.exp(2.0 * depth * g)
        lc = np.log2(f0) + 0.5 * g
        for i, cf in enumerate(centres):
            env_w[i, ch] = a2 * np.exp(-0.5 * ((np.log2(cf) - lc) / 0.75) ** 2)
        base[ch] = 0.12 * a2
        rumble[ch] = 0.25 * s * a2 ** 1.5
    top = env_w.max()
    for i, cf in enumerate(centres):
        if env_w[i].max() > 1e-3 * top:
            c.noise(env_w[i], band(f, cf, 0.45))
    c.noise(base, pink(f, 300.0) * lp(f, 3000.0) * hp(f, 40.0))
    if s > 0.8:
        c.noise(rumble, lp(f, 90.0) * hp(f, 20.0))
    if howl:
        # Whistle: a sine gliding with the gusts, only audible at their peaks.
        hop = c.grid.hop
        level = _noise_rms(c)
        for ratio, amp in ((1.0, 0.35), (1.49, 0.18)):
            fw = dsp.upsample_curve(620.0 * m.pitch * ratio * 2.0 ** (0.35 * common), hop, c.n)
            a = dsp.upsample_curve(np.clip(common - 0.3, 0, None) ** 2, hop, c.n)
            tone = dsp.wave("sine", fw, c.n) * a
            tone = _scaled(tone, amp * level)
            for ch, gch in enumerate(c.pan(rng.uniform(-0.5, 0.5))):
                c.add(tone * gch, ch)
        c.notes.append("wind: howling whistle")


# --------------------------------------------------------------------------- rain

def rain(c: LayerCtx) -> None:
    """Hiss (many distant drops) + individual drop ticks + a few plinks on puddles.
    Heavy rain adds a low wash; light rain is sparse ticks over a soft hiss."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    s = _clip(m.intensity, 0.2, 4.0)
    b = m.brightness
    hiss = hp(f, 500.0, 2) * lp(f, 5500.0 * b, 1) * (1.0 + band(f, 2500.0 * m.pitch, 1.0))
    env = np.stack([(1.0 + 0.12 * dsp.slow_curve(rng, t, 0.08 * m.speed)) ** 2 for _ in range(c.ch)])
    c.noise(env * s ** 0.8, hiss)
    if s > 1.1:
        c.noise(env * 0.8 * (s - 1.0), lp(f, 450.0) * hp(f, 50.0))
    level = _noise_rms(c)
    secs = c.seconds
    rate = 350.0 * s ** 1.3 * m.speed
    for ch in range(c.ch):
        # Drop ticks: impulses ringing three small resonances (surfaces), loudness spread
        # but bounded so single drops never poke far out of the bed.
        ticks = np.zeros(c.n)
        for fr in (1800.0, 3200.0, 5500.0):
            starts = (_poisson_times(rng, rate / 3, secs) * SR).astype(np.int64)
            amps = np.minimum(rng.lognormal(0.0, 0.45, len(starts)), 3.0) * rng.choice([-1.0, 1.0], len(starts))
            ticks += dsp.resonator(dsp.impulses(c.n, starts, amps), fr * m.pitch * min(b, 1.5), 2.5)
        c.add(_tame(_scaled(ticks, level * 0.5 / s ** 0.3), 5.0 * level), ch)
    # Plinks: drops into puddles ring briefly, rising in pitch (a bubble closing).
    g = 1024
    tt = np.arange(g) / SR
    for ch in range(c.ch):
        times = _poisson_times(rng, 4.0 * s ** 0.5 * m.speed, secs)
        if len(times) == 0:
            continue
        f0 = rng.uniform(1500.0, 4000.0, len(times))[:, None] * m.pitch
        tau = rng.uniform(0.003, 0.01, len(times))[:, None]
        grains = np.sin(dsp.TWO_PI * f0 * (tt + 15.0 * tt * tt)) * np.exp(-tt / tau)
        y = dsp.scatter(c.n, (times * SR).astype(np.int64), grains, rng.lognormal(0.0, 0.5, len(times)))
        c.add(_tame(_scaled(y, level * 0.25), 4.0 * level), ch)


# --------------------------------------------------------------------------- thunder

def thunder(c: LayerCtx) -> None:
    """Rumble bursts: a few overlapping swells of low noise per strike, brighter at the start
    (close strikes get a crack), rolling off into low rumble. Distant: slower, duller, no crack."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    far = m.distance
    size = _clip(m.size, 0.4, 3.0)
    secs = c.seconds
    if c.single:
        times = [0.02]
    else:
        times = []
        x = rng.uniform(0.3, max(0.35, min(4.0, 0.3 * secs)))
        gap = 12.0 / (_clip(m.intensity, 0.3, 3.0) * m.speed)
        while x < secs - 0.5 or not times:
            times.append(x)
            x += 3.5 + rng.exponential(gap)
    frames = c.grid.frames
    low = np.zeros((c.ch, frames))
    mid = np.zeros_like(low)
    hi = np.zeros_like(low)
    cracks = []
    for t0 in times:
        length = rng.uniform(3.0, 7.0) * size * (1.0 + 0.5 * far)
        k = int(rng.integers(3, 8))
        offs = np.sort(rng.uniform(0.0, 0.45 * length, k))
        offs[0] = 0.0
        amps = rng.lognormal(0.0, 0.5, k)
        amps[0] *= 0.7 if far > 0.5 else 1.6
        att = rng.uniform(0.03, 0.25, k) * (1.0 + 2.0 * far)
        tau = rng.uniform(0.3, 1.3, k) * size * (1.0 + far)
        e = np.zeros(frames)
        for j in range(k):
            x = t - t0 - offs[j]
            bump = np.where(x < 0, 0.0, np.where(x < att[j], (np.maximum(x, 0) / att[j]) ** 2,
                                                 np.exp(-np.maximum(x - att[j], 0.0) / tau[j])))
            e += amps[j] ** 2 * bump ** 2
        dt = np.maximum(t - t0, 0.0)
        gains = c.pan(rng.uniform(-0.6, 0.6)) ** 2 * rng.lognormal(0.0, 0.3)
        for ch in range(c.ch):
            low[ch] += gains[ch] * e
            mid[ch] += gains[ch] * e * np.exp(-dt / (1.2 * size))
            hi[ch] += gains[ch] * e * np.exp(-dt / 0.3) * (1.0 - far)
        if far < 0.5 and (c.single or rng.random() < 0.6):
            cracks.append((t0, gains))
    b = m.brightness
    c.noise(low, brown(f, 70.0 * m.pitch) * hp(f, 25.0, 2))
    c.noise(mid * 0.5, lp(f, 800.0 * b * m.pitch) * pink(f, 150.0) * hp(f, 40.0))
    if hi.any():
        c.noise(hi * 0.4, lp(f, 4000.0 * b, 1) * pink(f, 400.0) * hp(f, 60.0))
    if cracks:
        peak = float(np.sqrt(dsp.noise_variance(c.terms, c.ch, frames).max()))
        g = int(0.08 * SR)
        for t0, gains in cracks:
            burst = dsp.highpass(rng.standard_normal(g) * dsp.exp_env(g, 0.012, 0.001), 300.0)
            burst = np.tanh(2.0 * burst / np.max(np.abs(burst))) * peak * 2.0
            for ch in range(c.ch):
                c.add(burst * np.sqrt(gains[ch]), ch, int(t0 * SR))
    c.notes.append(f"thunder: {len(times)} strike{'s' if len(times) != 1 else ''}")


# --------------------------------------------------------------------------- water

def water(c: LayerCtx) -> None:
    variant = c.variant or "stream"
    c.variant = variant
    {"ocean": _ocean, "river": _stream, "waterfall": _stream, "stream": _stream, "drips": _drips}[variant](c)


def _ocean(c: LayerCtx) -> None:
    """Waves: each swell rises slowly, crashes (mid-band noise burst) and washes out (fizz);
    a constant low roar underneath. Waves reach the two ears slightly apart."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    secs = c.seconds
    period = 9.0 / m.speed * _clip(m.size, 0.5, 2.0) ** 0.3
    waves = []
    x = -rng.uniform(0.0, period)
    while x < secs:
        length = period * rng.uniform(0.75, 1.3)
        waves.append((x, length, rng.lognormal(0.0, 0.25), rng.uniform(-0.8, 0.8)))
        x += length * rng.uniform(0.7, 1.0)
    frames = c.grid.frames
    swell = np.zeros((c.ch, frames))
    crash = np.zeros_like(swell)
    fizz = np.zeros_like(swell)
    xp = 0.4
    for s0, length, a, pan in waves:
        gains = c.pan(pan) ** 2
        for ch in range(c.ch):
            delay = 0.15 * pan * (1 if ch == 0 else -1) if c.ch == 2 else 0.0
            u = (t - s0 - delay) / length
            rise = np.where((u >= 0) & (u < xp), np.sin(0.5 * np.pi * np.clip(u, 0, xp) / xp) ** 2, 0.0)
            after = np.where(u >= xp, np.exp(-(u - xp) * 5.0), 0.0)
            shape = rise + after
            swell[ch] += gains[ch] * a * shape
            crash[ch] += gains[ch] * a * a * shape ** 4
            fizz[ch] += gains[ch] * a * np.where(u >= xp, np.exp(-(u - xp) * 2.5) * (1 - np.exp(-(u - xp) * 15.0)), 0.0)
    s = _clip(m.intensity, 0.3, 3.0)
    b = m.brightness
    c.noise(0.25 + 0.5 * swell, brown(f, 200.0) * hp(f, 30.0))
    c.noise(crash * 1.5 * s, band(f, 700.0 * b * m.pitch, 1.4))
    c.noise(fizz * 0.3, hp(f, 2000.0) * lp(f, 9000.0 * b, 1))
    c.notes.append(f"ocean: {len(waves)} waves")


def _stream(c: LayerCtx) -> None:
    """Babbling water: three noise bands with fast independent flutter, plus many small
    bubbles (short rising sine pings, Minnaert-like). Rivers are lower and fuller,
    waterfalls mostly broadband roar."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    s = _clip(m.intensity, 0.3, 3.0)
    p = m.pitch / _clip(m.size, 0.5, 2.0) ** 0.5
    bands: tuple[tuple[float, float], ...]
    if c.variant == "river":
        bands, rate, roar = ((300.0, 0.7), (800.0, 0.6), (1800.0, 0.6)), 35.0, 0.8
    elif c.variant == "waterfall":
        bands, rate, roar = ((500.0, 1.2), (2500.0, 1.0)), 15.0, 1.5
    else:
        bands, rate, roar = ((450.0, 0.6), (1100.0, 0.5), (2600.0, 0.6)), 80.0, 0.15
    for fc, width in bands:
        env = np.stack([np.exp(1.2 * 0.5 * dsp.slow_curve(rng, t, 5.0 * m.speed)) for _ in range(c.ch)])
        c.noise(env * s, band(f, fc * p, width))
    c.noise(roar * s, brown(f, 250.0) * hp(f, 40.0))
    c.noise(0.08 * s, hp(f, 3000.0) * lp(f, 10000.0 * m.brightness, 1))
    level = _noise_rms(c)
    g = 720
    tt = np.arange(g) / SR
    attack = 1.0 - np.exp(-tt / 0.0003)
    for ch in range(c.ch):
        times = _poisson_times(rng, rate * s * m.speed, c.seconds)
        if len(times) == 0:
            continue
        f0 = np.clip(np.exp(rng.normal(np.log(650.0 * p), 0.45, len(times))), 200.0, 4000.0)[:, None]
        tau = rng.uniform(0.003, 0.012, len(times))[:, None]
        grains = np.sin(dsp.TWO_PI * f0 * (tt + 12.0 * tt * tt)) * np.exp(-tt / tau) * attack
        y = dsp.scatter(c.n, (times * SR).astype(np.int64), grains, rng.lognormal(0.0, 0.6, len(times)))
        c.add(_scaled(y, level * (0.8 if c.variant != "waterfall" else 0.3)), ch)


def _drips(c: LayerCtx) -> None:
    """Sparse drops in a resonant space: a rising ping with two echoes, over faint air."""
    m, rng, f = c.mods, c.rng, c.f
    c.noise(0.02, brown(f, 120.0) * hp(f, 30.0))
    level = 0.2
    g = int(0.35 * SR)
    tt = np.arange(g) / SR
    rate = 0.9 * _clip(m.intensity, 0.3, 3.0) * m.speed
    times = _poisson_times(rng, rate, c.seconds)
    if c.single or len(times) == 0:
        times = np.concatenate([[0.01], times])
    for t0 in times:
        f0 = rng.uniform(900.0, 2600.0) * m.pitch
        ping = np.sin(dsp.TWO_PI * f0 * (tt + 8.0 * tt * tt)) * np.exp(-tt / 0.02) * (1 - np.exp(-tt / 0.0005))
        grain = ping.copy()
        for delay, gain in ((rng.uniform(0.06, 0.1), 0.35), (rng.uniform(0.13, 0.2), 0.18)):
            d = int(delay * SR)
            grain[d:] += gain * ping[: g - d]
        gains = c.pan(rng.uniform(-0.8, 0.8)) * rng.lognormal(0.0, 0.4) * level
        for ch in range(c.ch):
            c.add(grain * gains[ch], ch, int(t0 * SR))


# --------------------------------------------------------------------------- fire

def fire(c: LayerCtx) -> None:
    """Low flickering roar + faint hiss + crackles (clusters of sharp clicks with a
    heavy-tailed loudness) + the odd pop of a resin pocket."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    big = "bonfire" in c.words or m.size > 1.2
    s = _clip(m.intensity * (1.5 if big else 1.0), 0.25, 3.0)
    env = np.stack([np.exp(0.5 * dsp.slow_curve(rng, t, 0.8 * m.speed) + 0.25 * dsp.slow_curve(rng, t, 4.0 * m.speed))
                    ** 2 for _ in range(c.ch)])
    c.noise(env * (0.3 + 0.5 * s), (brown(f, 150.0 * m.pitch) + 0.35 * band(f, 500.0 * m.pitch, 0.9)) * hp(f, 30.0))
    c.noise(0.06 * (1.0 + 0.3 * env), hp(f, 2500.0) * lp(f, 10000.0 * m.brightness, 1))
    level = _noise_rms(c)
    secs = c.seconds
    g = 160
    tt = np.arange(g)
    for ch in range(c.ch):
        parents = _poisson_times(rng, 5.0 * s * m.speed, secs)
        counts = rng.geometric(0.45, len(parents))  # crackles come in little clusters
        times = np.concatenate([p0 + np.cumsum(rng.exponential(0.012, k)) for p0, k in zip(parents, counts)]) \
            if len(parents) else np.zeros(0)
        if c.single and len(times) == 0:
            times = np.array([0.05])
        k = len(times)
        if k == 0:
            continue
        tau = rng.uniform(4.0, 30.0, k)[:, None]
        grains = rng.standard_normal((k, g)) * np.exp(-tt / tau)
        amps = np.minimum(rng.pareto(2.5, k) + 0.3, 4.0)
        y = dsp.highpass(dsp.scatter(c.n, (times * SR).astype(np.int64), grains, amps), 700.0)
        # Crackles are judged by their peaks: the loudest sit ~16 dB over the roar.
        c.add(_tame(y * (6.0 * level / (np.max(np.abs(y)) + 1e-12)), 5.0 * level), ch)
    # Pops: a low damped thump with a click.
    gp = 1500
    tp = np.arange(gp) / SR
    for ch in range(c.ch):
        times = _poisson_times(rng, 0.4 * s * m.speed, secs)
        if len(times) == 0:
            continue
        fp = rng.uniform(150.0, 450.0, len(times))[:, None]
        grains = np.sin(dsp.TWO_PI * fp * tp) * np.exp(-tp / 0.006) + 0.5 * rng.standard_normal((len(times), gp)) \
            * np.exp(-tp / 0.002)
        y = dsp.scatter(c.n, (times * SR).astype(np.int64), grains, rng.uniform(0.5, 1.0, len(times)))
        c.add(_tame(y * level * 1.5, 4.0 * level), ch)


# --------------------------------------------------------------------------- birds

def birds(c: LayerCtx) -> None:
    """Several species, each with its own motif of FM sine sweeps (up, down, chevron, trill),
    repeated with small variations at irregular intervals from its own place in the field."""
    m, rng, f = c.mods, c.rng, c.f
    c.noise(0.0005, pink(f, 500.0) * lp(f, 5000.0) * hp(f, 200.0))
    secs = c.seconds
    n_species = int(_clip(round(2 + 1.5 * m.intensity + rng.uniform(0, 1.5)), 1, 6))
    if c.single:
        n_species = 1
    for _sp in range(n_species):
        fb = rng.uniform(2200.0, 5000.0) * m.pitch / _clip(m.size, 0.5, 2.0) ** 0.5
        note_dur = rng.uniform(0.04, 0.16)
        n_notes = int(rng.integers(2, 9))
        gap = rng.uniform(0.02, 0.09)
        kind = ("up", "down", "chevron", "trill", "flat")[int(rng.integers(0, 5))]
        ratio = rng.uniform(1.15, 1.8)
        fm_rate, fm_depth = rng.uniform(25.0, 70.0), rng.uniform(0.03, 0.12)
        step = rng.choice([-0.08, -0.04, 0.0, 0.05, 0.1])
        interval = rng.uniform(1.5, 6.0) / m.speed
        level = rng.uniform(0.3, 1.0)
        gains = c.pan(rng.uniform(-0.8, 0.8)) * level
        phrase_len = n_notes * (note_dur + gap)
        x = rng.uniform(0.05, min(interval, 1.5))
        if c.single:
            x = 0.02
        while x < secs:
            start = x
            for j in range(n_notes):
                dur = note_dur * rng.uniform(0.9, 1.1)
                nn = max(16, int(dur * SR))
                u = np.arange(nn) / nn
                tt = np.arange(nn) / SR
                base = fb * (1.0 + step * j) * rng.uniform(0.97, 1.03)
                if kind == "up":
                    fr = base * (1.0 + (ratio - 1.0) * u)
                elif kind == "down":
                    fr = base * (ratio - (ratio - 1.0) * u)
                elif kind == "chevron":
                    fr = base * (1.0 + (ratio - 1.0) * np.sin(np.pi * u))
                elif kind == "trill":
                    fr = base * (1.0 + fm_depth * np.sin(dsp.TWO_PI * fm_rate * tt))
                else:
                    fr = base * (1.0 + 0.03 * u)
                ph = dsp.TWO_PI * np.cumsum(fr) / SR
                note = (np.sin(ph) + 0.12 * np.sin(2 * ph)) * np.sin(np.pi * u ** 0.7) ** 2
                for ch in range(c.ch):
                    c.add(note * gains[ch], ch, int(start * SR))
                start += dur + gap * rng.uniform(0.8, 1.2)
            if c.single:
                break
            x += phrase_len + interval * rng.uniform(0.5, 1.5)


# --------------------------------------------------------------------------- insects

def insects(c: LayerCtx) -> None:
    if c.variant == "cicadas":
        _cicadas(c)
    else:
        c.variant = "crickets"
        _crickets(c)


def _crickets(c: LayerCtx) -> None:
    """A chorus of crickets: each repeats a chirp (a few pulses of a pure high tone) at its own
    rate and pitch, from its own distance and direction, resting now and then."""
    m, rng, f = c.mods, c.rng, c.f
    c.noise(0.0005, pink(f, 200.0) * lp(f, 2500.0) * hp(f, 60.0))
    secs = c.seconds
    count = int(_clip(round(3 + 3 * m.intensity), 1, 12))
    for k in range(count):
        fc = rng.uniform(3600.0, 5200.0) * m.pitch
        pr = rng.uniform(28.0, 50.0) * m.speed
        npulse = int(rng.integers(2, 6))
        cp = rng.uniform(0.3, 0.9) / m.speed
        level = 1.0 if k == 0 else rng.uniform(0.15, 0.6)
        g = int(npulse / pr * SR)
        tt = np.arange(g) / SR
        pp = dsp.frac(tt * pr)
        env = np.where(pp < 0.55, np.sin(np.pi * pp / 0.55) ** 2, 0.0)
        grain = (np.sin(dsp.TWO_PI * fc * tt) + 0.1 * np.sin(dsp.TWO_PI * 2 * fc * tt)) * env
        times = rng.uniform(0, cp) + cp * np.arange(int(secs / cp) + 1)
        times = times + rng.normal(0.0, 0.01 * cp, len(times))
        rest = dsp.slow_curve(rng, times, 0.15) > -1.0  # now and then the cricket rests
        if c.single:
            rest[:] = True
        times = times[rest & (times >= 0)]
        amps = rng.uniform(0.85, 1.15, len(times)) * level
        track = dsp.scatter(c.n, (times * SR).astype(np.int64), np.broadcast_to(grain, (len(times), g)), amps)
        for ch, gch in enumerate(c.pan(rng.uniform(-0.9, 0.9))):
            c.add(track * gch, ch)
    c.notes.append(f"crickets: {count}")


def _cicadas(c: LayerCtx) -> None:
    """Cicadas: fast pulse trains (~200/s) ringing a high resonance, swelling in long phrases."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    c.noise(0.0005, pink(f, 200.0) * lp(f, 2500.0) * hp(f, 60.0))
    secs = c.seconds
    count = int(_clip(round(1 + 1.5 * m.intensity), 1, 5))
    for _k in range(count):
        pr = rng.uniform(150.0, 260.0) * m.speed
        fc = rng.uniform(4200.0, 7000.0) * m.pitch
        times = np.arange(0.0, secs, 1.0 / pr)
        times = times + rng.normal(0.0, 0.08 / pr, len(times))
        amps = rng.lognormal(0.0, 0.3, len(times))
        buzz = dsp.resonator(dsp.impulses(c.n, (times * SR).astype(np.int64), amps), fc, 5.0)
        swell = 1.0 / (1.0 + np.exp(-3.0 * dsp.slow_curve(rng, t, 0.08 * m.speed) - (1.0 if c.single else 0.0)))
        buzz *= dsp.upsample_curve(swell, c.grid.hop, c.n)
        level = rng.uniform(0.4, 1.0)
        for ch, gch in enumerate(c.pan(rng.uniform(-0.8, 0.8))):
            c.add(buzz * gch * level, ch)


# --------------------------------------------------------------------------- room tone

_HUM_WORDS = {"hum", "humming", "buzz", "buzzing", "electrical", "electric", "fluorescent", "transformer", "fridge",
              "refrigerator", "generator"}
_AIR_WORDS = {"hvac", "ventilation", "vent", "aircon", "airconditioning", "fan", "server", "serverroom", "machinery"}
_BUZZ_WORDS = {"buzz", "buzzing", "electrical", "electric", "fluorescent", "transformer"}


def roomtone(c: LayerCtx) -> None:
    """Room air (soft pink noise, most energy low) + mains hum at 50 or 60 Hz with harmonics.
    The hum is coherent: frequencies are rounded to whole cycles per loop."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    words = c.words
    if words & {"60hz", "60"}:
        mains = 60.0
    elif words & {"50hz", "50"}:
        mains = 50.0
    else:
        mains = 50.0 if rng.random() < 0.5 else 60.0
    buzz = c.variant == "buzz" or bool(words & _BUZZ_WORDS)
    air_focus = bool(words & _AIR_WORDS)
    env = np.stack([(1.0 + 0.04 * dsp.slow_curve(rng, t, 0.05)) ** 2 for _ in range(c.ch)])
    air = pink(f, 120.0) * lp(f, (5000.0 if air_focus else 2200.0) * m.brightness, 1) * hp(f, 30.0) \
        + 0.5 * band(f, 110.0, 0.8)
    c.noise(env, air)
    level = _noise_rms(c)
    k = 24 if buzz else 8
    amps = np.array([1.0, 0.7, 0.35, 0.25, 0.12, 0.1, 0.05, 0.06] if not buzz
                    else [0.8 / (i + 1) ** 0.6 * (1.4 if i % 2 == 0 else 0.8) for i in range(k)])
    table = dsp.harmonic_table(amps, rng.uniform(0, dsp.TWO_PI, k))
    hum = dsp.table_osc(table, c.loop_freq(mains), c.period)
    wobble = 1.0 + 0.06 * dsp.slow_curve(rng, t, 0.1, period=c.period / SR)
    hum *= dsp.upsample_curve(wobble, c.grid.hop, c.period)
    hum_level = 1.2 if (words & _HUM_WORDS) else 0.15 if air_focus else 0.4
    c.add_coherent(_scaled(hum, level * hum_level))
    c.notes.append(f"roomtone: {mains:.0f} Hz hum")


# --------------------------------------------------------------------------- drone

def drone(c: LayerCtx) -> None:
    """Sustained low chord of soft wavetable voices, each a detuned pair that beats slowly,
    with slow independent swells, over a gently sweeping band of air. Coherent (loops exactly).
    Dark/eerie/cave prompts get a minor second and tritone; space/sci-fi more upper partials."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    words = c.words
    dark = c.variant == "cave" or m.brightness < 0.9 or bool(words & {"eerie", "ominous", "dark", "horror", "void",
                                                                      "alien"})
    space = bool(words & {"space", "spaceship", "starship", "scifi"})
    root = float(rng.choice([36, 38, 40, 41, 43]))
    f0 = 440.0 * 2.0 ** ((root - 69.0) / 12.0) * m.pitch
    if dark:
        intervals = [0, 12, 13, 18, 24]
    elif space:
        intervals = [0, 7, 12, 19, 26, 31]
    else:
        intervals = [0, 7, 12, 16, 19]
    period = c.period
    period_s = period / SR
    hop = c.grid.hop
    b = _clip(m.brightness, 0.3, 3.0)
    voices = []
    for i, iv in enumerate(intervals):
        fr = f0 * 2.0 ** (iv / 12.0)
        harm = np.arange(1, 13)
        amps = 1.0 / harm ** 1.6 * lp(fr * harm, 900.0 * b, 1)
        table = dsp.harmonic_table(amps, rng.uniform(0, dsp.TWO_PI, len(harm)))
        beat = rng.uniform(0.1, 0.4)
        swell = np.exp(0.6 * dsp.slow_curve(rng, t, rng.uniform(0.03, 0.08), period=period_s)) / (1.0 + 0.5 * i)
        voices.append((table, c.loop_freq(fr - beat / 2), c.loop_freq(fr + beat / 2), rng.random(), rng.random(),
                       swell))
    # Synthesised in chunks: the working set stays in cache, which is much faster on long beds.
    out = np.zeros((c.ch, period), dtype=np.float32)
    xs = np.arange(c.grid.frames, dtype=np.float64) * hop
    chunk = 1 << 16
    for c0 in range(0, period, chunk):
        k = min(chunk, period - c0)
        pos = np.arange(c0, c0 + k, dtype=np.float64)
        for table, fa, fb, pa, pb, swell in voices:
            am = np.interp(pos, xs, swell)
            a = dsp.table_osc(table, fa, k, pa, c0) * am
            bb = dsp.table_osc(table, fb, k, pb, c0) * am
            if c.ch == 2:
                out[0, c0:c0 + k] += 0.8 * a + 0.4 * bb
                out[1, c0:c0 + k] += 0.4 * a + 0.8 * bb
            else:
                out[0, c0:c0 + k] += a + bb
    c.add_coherent(out)
    level = float(np.sqrt(np.mean(np.square(out, dtype=np.float64))))
    # Air: a band of noise drifting slowly through the mids.
    centre = 700.0 * m.pitch * 2.0 ** (1.2 * dsp.slow_curve(rng, t, 0.03 * m.speed))
    centres = 150.0 * 2.0 ** np.arange(0, 7, 1.0)
    for cf in centres:
        w = np.exp(-0.5 * ((np.log2(cf) - np.log2(centre)) / 0.8) ** 2)
        if w.max() > 1e-3:
            c.noise(w * (0.15 * level) ** 2, band(f, cf, 0.5))
    if dark:
        c.notes.append("drone: dark intervals")


# --------------------------------------------------------------------------- crowd

def crowd(c: LayerCtx) -> None:
    """Babble: many voices, each a sequence of syllables (3-12 per phrase, pauses between)
    with its own formants per syllable, as noise in 1/3-octave bands; the nearer voices also
    get a voiced buzz (glottal pulse trains through formant resonators)."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    secs = c.seconds
    frames = c.grid.frames
    fps = SR / c.grid.hop
    voices = int(_clip(round(14 * m.intensity * m.size), 3, 40))
    centres = 160.0 * 2.0 ** (np.arange(16) / 3.0)
    lc = np.log2(centres)
    weights = np.zeros((c.ch, len(centres), frames))
    voiced_starts: list[list[np.ndarray]] = [[] for _ in range(c.ch)]
    voiced_amps: list[list[np.ndarray]] = [[] for _ in range(c.ch)]
    n_voiced = min(voices, 8)
    for v in range(voices):
        female = rng.random() < 0.5
        fs = 1.17 if female else 1.0
        level = rng.uniform(0.3, 1.0) if v >= n_voiced else rng.uniform(0.7, 1.0)
        gains = c.pan(rng.uniform(-0.9, 0.9)) ** 2 * level ** 2
        env_v = np.zeros(frames)
        x = rng.uniform(-1.0, 1.5)
        while x < secs:
            for _s in range(int(rng.integers(3, 12))):
                dur = rng.uniform(0.1, 0.28) / m.speed
                a0, a1 = int(max(0.0, x) * fps), int(min(secs, x + dur) * fps) + 1
                if a1 > a0 and x >= 0:
                    u = (np.arange(a0, a1) / fps - x) / dur
                    e = np.sin(np.pi * np.clip(u, 0, 1)) ** 2 * rng.uniform(0.5, 1.0)
                    f1 = rng.uniform(300.0, 800.0) * fs
                    f2 = rng.uniform(900.0, 2400.0) * fs
                    # Two formants of the vowel plus a fixed "presence" formant near 2.8 kHz.
                    w = (np.exp(-0.5 * ((lc - np.log2(f1)) / 0.3) ** 2)
                         + 0.5 * np.exp(-0.5 * ((lc - np.log2(f2)) / 0.3) ** 2)
                         + 0.2 * np.exp(-0.5 * ((lc - np.log2(2800.0 * fs)) / 0.4) ** 2))
                    for ch in range(c.ch):
                        weights[ch, :, a0:a1] += gains[ch] * w[:, None] * e[None, :]
                    env_v[a0:a1] = np.maximum(env_v[a0:a1], e)
                x += dur
            x += rng.uniform(0.3, 2.0)
        if v < n_voiced:
            base = (210.0 if female else 115.0) * 2.0 ** (0.1 * rng.standard_normal())
            f0 = base * 2.0 ** (0.12 * dsp.slow_curve(rng, t, 2.5))
            period = 1.0 / np.interp(np.arange(int(secs * base * 1.4) + 2) / base, t, f0)
            times = np.cumsum(period)
            times = times[times < secs]
            amp = np.sqrt(np.interp(times, t, env_v)) * level
            for ch in range(c.ch):
                voiced_starts[ch].append((times * SR).astype(np.int64))
                voiced_amps[ch].append(amp * np.sqrt(gains[ch]) / max(level, 1e-3))
    for i, cf in enumerate(centres):
        c.noise(weights[:, i] * 0.5, band(f, cf, 0.22))
    c.noise(0.004 * voices, pink(f, 300.0) * band(f, 600.0, 1.2))
    level = _noise_rms(c)
    for ch in range(c.ch):
        if not voiced_starts[ch]:
            continue
        imp = dsp.impulses(c.n, np.concatenate(voiced_starts[ch]), np.concatenate(voiced_amps[ch]))
        voiced = dsp.resonator(imp, 500.0, 1.5) + 0.6 * dsp.resonator(imp, 1500.0, 2.0)
        c.add(_scaled(voiced, 0.5 * level), ch)
    c.notes.append(f"crowd: {voices} voices")


# --------------------------------------------------------------------------- fallback

def noise(c: LayerCtx) -> None:
    """Soft noise bed: pink-ish, dull, breathing very slowly."""
    m, rng, t, f = c.mods, c.rng, c.t, c.f
    env = np.stack([np.exp(0.4 * dsp.slow_curve(rng, t, 0.1 * m.speed)) for _ in range(c.ch)])
    c.noise(env, pink(f, 150.0) * lp(f, 2500.0 * m.brightness, 1) * hp(f, 40.0))


GENERATORS = {"wind": wind, "rain": rain, "thunder": thunder, "water": water, "fire": fire, "birds": birds,
              "insects": insects, "roomtone": roomtone, "drone": drone, "crowd": crowd, "noise": noise}

# Natural one-shot lengths when an ambience generator is asked for as an sfx.
SFX_SECONDS = {"wind": 4.0, "rain": 3.0, "thunder": 6.0, "water": 3.0, "fire": 3.0, "birds": 2.0,
               "insects": 3.0, "roomtone": 3.0, "drone": 4.0, "crowd": 4.0, "noise": 1.0}

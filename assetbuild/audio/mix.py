"""Timeline mixing: placed events -> bus stems -> mix.

Events come resolved from :mod:`assetbuild.build.timeline`; sources are the built (mastered)
assets at the mix sample rate. Each event is trimmed or looped to its length on the timeline,
faded, gained and panned into its bus stem; dialogue event spans duck the ducked buses; the mix
is the plain sum of the stems (before any limiter). Everything is float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..timeline import Placed
from .cleanup import FADE_CURVES

__all__ = ["ANTI_CLICK_S", "DIALOGUE_BUS", "Ducking", "Source", "duck_curve", "frame_at", "mix"]

#: The bus whose events trigger ducking.
DIALOGUE_BUS = "dialogue"
#: Minimum fade-out where an event's source is cut (trimmed, or a loop stopped mid-way).
ANTI_CLICK_S = 0.005
# An event without its own duration plays its whole source; its timeline length (from the
# asset durations) may differ from the source by rounding, but not by more than this.
_LENGTH_TOLERANCE_S = 0.001

_fade_curve = FADE_CURVES["sine"]  # equal power, as cleanup.fade's default
# Events are rendered this many frames at a time: temporaries stay small (no full-length
# copies of a three-minute bed) and in cache.
_CHUNK = 1 << 15


@dataclass(frozen=True)
class Source:
    """A built asset: ``audio`` shaped ``(frames,)`` or ``(frames, channels)`` (1 or 2 channels),
    and its loop region ``(start, end)`` in frames, end inclusive, if it has one."""

    audio: np.ndarray
    loop: tuple[int, int] | None = None


@dataclass(frozen=True)
class Ducking:
    """Side-chain-free ducking driven by the dialogue events' spans; see :func:`duck_curve`."""

    depth: float = 9.0  # dB of reduction on the ducked buses while dialogue plays
    attack: float = 0.15  # s to reach full depth
    release: float = 0.6  # s to recover after the line ends
    lookahead: float = 0.1  # s: the duck starts this long before the line
    buses: tuple[str, ...] = ("music", "ambience")
    enabled: bool = True


def frame_at(t: float, sr: int) -> int:
    """The frame where time ``t`` falls: ``t * sr`` rounded half up.

    Not Python's ``round`` (half to even): half-up commutes with whole-frame shifts, so an event's
    frame count ``frame_at(end) - frame_at(start)`` never depends on where it starts, and an event
    that starts at another's end starts exactly at its last frame + 1.
    """
    return int(math.floor(t * sr + 0.5))


def _raised_cosine(u: np.ndarray) -> np.ndarray:
    """0 -> 1 over u in [0, 1] with zero slope at both ends (no corner in the gain curve)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))


def duck_curve(spans: list[tuple[int, int]], n: int, sr: int, ducking: Ducking) -> np.ndarray:
    """Linear gain (``n`` frames) for the ducked buses, from dialogue spans ``[start, end)`` in frames.

    Reduction in dB is ``-depth * d(t)`` with ``d`` built from trapezoids, one per (merged) span
    ``[s, e)``: ``d`` rises from 0 at ``s - lookahead`` to 1 at ``s - lookahead + attack``,
    holds 1 until ``e``, and falls back to 0 at ``e + release``; both ramps are raised cosines
    (``(1 - cos(pi u)) / 2``, u the ramp's 0..1 progress). With ``attack <= lookahead`` full
    depth is reached by the line start. Spans whose trapezoids would touch or overlap (the next
    ramp starts before the previous release has ended) are merged into one, so the duck holds
    through short pauses instead of dipping back up. Frames before 0 are not rendered; a ramp
    that would start there is simply cut.
    """
    curve = np.ones(n, dtype=np.float64)
    for lo, hi, g in _duck_segments(spans, n, sr, ducking):
        curve[lo:hi] = g
    return curve


def _duck_segments(spans: list[tuple[int, int]], n: int, sr: int,
                   ducking: Ducking) -> list[tuple[int, int, np.ndarray]]:
    """:func:`duck_curve` as ``(lo, hi, gain)`` pieces; the gain is 1 outside them, which
    spares multiplying (and computing) the long undisturbed stretches."""
    if not spans or ducking.depth == 0:
        return []
    attack, release, look = (max(0, int(round(x * sr))) for x in (ducking.attack, ducking.release, ducking.lookahead))
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s - look <= merged[-1][1] + release:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    pieces = []
    for s, e in merged:
        r0 = s - look  # ramp start
        lo, hi = max(0, r0), min(n, e + release)
        if hi <= lo:
            continue
        # Fraction of the full depth: the lower of the attack and release ramps (a line shorter
        # than attack - lookahead never reaches full depth, and nothing steps).
        d = np.ones(hi - lo)
        up = min(hi, r0 + attack)  # attack ramp: lo .. up
        if up > lo:
            d[:up - lo] = _raised_cosine((np.arange(lo, up) - r0) / attack)
        down = max(lo, e)  # release ramp: down .. hi
        if hi > down:
            tail = d[down - lo:]
            np.minimum(tail, 1.0 - _raised_cosine((np.arange(down, hi) - e) / release), out=tail)
        g = np.full(hi - lo, 10.0 ** (-ducking.depth / 20.0))  # the hold, without a power per frame
        for r in (slice(0, max(0, up - lo)), slice(max(0, down - lo), hi - lo)):
            g[r] = 10.0 ** (-ducking.depth * d[r] / 20.0)
        pieces.append((lo, hi, g))
    return pieces


def _reader(src: Source, frames: int, explicit: bool, name: str, sr: int) -> tuple[np.ndarray, int, int | None, bool]:
    """How an event of ``frames`` frames reads ``src``: ``(audio, stop, wrap, cut)``.

    Output frame ``i`` plays source frame ``i`` while ``i < stop``; past it, frame
    ``wrap + (i - wrap) % (stop - wrap)`` when looping (``wrap`` = loop start), silence when not
    (``wrap`` None). ``cut``: the source is stopped before its end (trimmed, or mid-loop).
    """
    a = np.asarray(src.audio)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] not in (1, 2):
        raise ValueError(f"'{name}': source must be shaped (frames,) or (frames, 1|2), got {np.shape(src.audio)}")
    n = a.shape[0]
    if not explicit:
        # The timeline length is the asset's own; a frame of rounding difference is padded or dropped.
        if abs(frames - n) > max(1, _LENGTH_TOLERANCE_S * sr):
            raise ValueError(f"'{name}': timeline length {frames} frames does not match the source ({n} frames)")
        return a, n, None, False
    if frames <= n:
        return a, n, None, frames < n
    if n == 0:
        raise ValueError(f"'{name}': cannot loop an empty source to {frames} frames")
    ls, le = src.loop if src.loop is not None else (0, n - 1)
    if not 0 <= ls <= le < n:
        raise ValueError(f"'{name}': loop points {src.loop} outside the source's {n} frames")
    # Play up to the loop end, then the loop region again and again (anything after it is a
    # tail that a looping playback never reaches). A short loop region is repeated up front so
    # that each chunk needs only a few slice copies.
    period = le - ls + 1
    if period < _CHUNK:
        reps = -(-_CHUNK // period)
        a = np.concatenate([a[:le + 1], np.tile(a[ls:le + 1], (reps - 1, 1))])
        le = a.shape[0] - 1
    return a, le + 1, ls, True


def _read(a: np.ndarray, stop: int, wrap: int | None, c0: int, out: np.ndarray) -> None:
    """Fill ``out`` with the event's frames from ``c0`` on (see :func:`_reader`)."""
    c, c1 = c0, c0 + out.shape[0]
    while c < c1:
        if c < stop:
            s = c
        elif wrap is None:
            out[c - c0:] = 0.0
            return
        else:
            s = wrap + (c - wrap) % (stop - wrap)
        k = min(c1 - c, stop - s)
        out[c - c0:c - c0 + k] = a[s:s + k]
        c += k


def _envelope(c0: int, c1: int, frames: int, n_in: int, n_out: int) -> np.ndarray | None:
    """Fade gains of the event's frames ``c0 .. c1``, or None where there is no fade.

    Sine fades shaped as :func:`assetbuild.audio.cleanup.fade` (0 at the first / last frame),
    each clamped to the event length; where they overlap they multiply.
    """
    n_in, n_out = min(n_in, frames), min(n_out, frames)
    if c0 >= n_in and c1 <= frames - n_out:
        return None
    i = np.arange(c0, c1)
    env = np.ones(c1 - c0)
    if c0 < n_in:
        env *= _fade_curve(np.minimum(i, n_in) / n_in)
    if c1 > frames - n_out:
        env *= _fade_curve(np.minimum(frames - 1 - i, n_out) / n_out)
    return env


def _pan_gains(pan: float, src_channels: int, channels: int) -> np.ndarray:
    """``(src_channels, channels)`` matrix taking the source to the output layout."""
    if channels == 1:
        return np.full((src_channels, 1), 1.0 / src_channels)  # mono out: average, as convert.to_channels
    if src_channels == 1:
        # Constant power: L^2 + R^2 = 1, so the mono asset keeps its BS.1770 loudness anywhere.
        theta = 0.25 * np.pi * (pan + 1.0)
        return np.array([[np.cos(theta), np.sin(theta)]])
    # Balance: the centre stays at unity; the far side is turned down (cosine law) to 0 at +-1.
    return np.diag([np.cos(0.5 * np.pi * max(pan, 0.0)), np.cos(0.5 * np.pi * max(-pan, 0.0))])


def mix(placed: list[Placed], sources: dict[str, Source], sr: int, *, bus_gains: dict[str, float] | None = None,
        ducking: Ducking | None = None, channels: int = 2) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Mix ``placed`` events; returns ``(mix, stems)``, float64 ``(frames, channels)``.

    * An event occupies frames ``frame_at(start)`` to ``frame_at(end)`` (exclusive) of its bus
      stem, ``frame_at(t) = round(t * sr)`` half up; the mix is ``max(frame_at(end))`` frames
      long (at least 1). Events that touch on the timeline touch in frames: no gap, no overlap.
    * With ``event.duration`` set, the source is trimmed (with a sine fade-out of at least
      :data:`ANTI_CLICK_S`) or looped over its loop region (the whole source without one;
      also ended with that fade-out). Without it the whole source plays.
    * Then the event's sine fades, its gain (dB) and pan: mono sources constant-power, stereo
      sources balance (unity at centre); to ``channels`` (1: averaged, pan ignored).
    * ``bus_gains`` (dB, default 0) scale whole stems; ``ducking`` (None: ``Ducking()``; pass
      ``Ducking(enabled=False)`` to turn it off) applies :func:`duck_curve` of the dialogue
      bus's event spans to its ``buses``.
    * ``stems`` has one entry per bus that has events, each the full mix length, and the mix is
      exactly their sum (the pre-limiter mix).
    """
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    ducking = Ducking() if ducking is None else ducking
    bus_gains = bus_gains or {}
    spans: list[tuple[int, int, Placed]] = []
    for p in placed:
        a, b = frame_at(p.start, sr), frame_at(p.end, sr)
        if a < 0 or b < a:
            raise ValueError(f"'{p.event.name}': bad placement {p.start} .. {p.end} s")
        if p.event.asset not in sources:
            raise ValueError(f"'{p.event.name}': no source for asset '{p.event.asset}'")
        spans.append((a, b, p))
    n = max([1] + [b for _, b, _ in spans])

    stems: dict[str, np.ndarray] = {}
    for a, b, p in spans:
        ev = p.event
        stem = stems.get(ev.bus)
        if stem is None:
            stem = stems[ev.bus] = np.zeros((n, channels), dtype=np.float64)
        if b == a:
            continue
        frames = b - a
        audio, stop, wrap, cut = _reader(sources[ev.asset], frames, ev.duration is not None, ev.name, sr)
        n_in = int(round(ev.fade_in * sr))
        n_out = int(round((max(ev.fade_out, ANTI_CLICK_S) if cut else ev.fade_out) * sr))
        ins = audio.shape[1]
        g = _pan_gains(ev.pan, ins, channels) * 10.0 ** (ev.gain / 20.0)
        diag = np.diag(g) if ins == channels else None
        x = np.empty((min(frames, _CHUNK), ins), dtype=np.float64)
        y = np.empty((x.shape[0], 2), dtype=np.float64) if ins < channels else None
        for c0 in range(0, frames, _CHUNK):
            c1 = min(frames, c0 + _CHUNK)
            xc = x[:c1 - c0]
            _read(audio, stop, wrap, c0, xc)
            env = _envelope(c0, c1, frames, n_in, n_out)
            if env is not None:
                xc *= env[:, None]
            dst = stem[a + c0:a + c1]
            if diag is not None:
                xc *= diag
                dst += xc
            elif y is not None:  # mono to stereo
                yc = y[:c1 - c0]
                np.multiply(xc, g[0], out=yc)
                dst += yc
            else:  # stereo to mono
                xc *= g[:, 0]
                dst[:, 0] += xc[:, 0]
                dst[:, 0] += xc[:, 1]

    if ducking.enabled:
        lines = [(a, b) for a, b, p in spans if p.event.bus == DIALOGUE_BUS and b > a]
        ducked = [bus for bus in ducking.buses if bus in stems and bus != DIALOGUE_BUS]
        for lo, hi, g in _duck_segments(lines, n, sr, ducking) if ducked else []:
            for bus in ducked:
                stems[bus][lo:hi] *= g[:, None]
    for bus, stem in stems.items():
        gain_db = bus_gains.get(bus, 0.0)
        if gain_db:
            stem *= 10.0 ** (gain_db / 20.0)
    out = np.zeros((n, channels), dtype=np.float64)
    for stem in stems.values():
        out += stem
    return out, stems

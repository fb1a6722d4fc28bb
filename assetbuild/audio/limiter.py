"""A look-ahead true-peak limiter, vectorised with numpy and soxr.

The gain curve is computed from a 4x-oversampled peak envelope, so inter-sample peaks are caught:

1. ``need[n]``: the gain that brings the loudest oversampled value around sample ``n`` (on any
   channel -- channels are linked) down to the ceiling, capped at 1.
2. A moving minimum over the next ``lookahead`` seconds: the gain is down before the peak arrives.
3. Exponential release: the gain reduction in dB decays with time constant ``release``
   (``gr[n] = max(need_gr[n], gr[n-1] * exp(-1 / (release * sr)))``), computed in closed form.
4. Attack smoothing: a moving average over the look-ahead window, so the gain glides down over
   ``lookahead`` seconds instead of stepping (no clicks) and still reaches the required value at
   the peak.

The gain is aligned with the signal it was computed from, so there is no added latency and the
output has the input's length. Applying a time-varying gain can move inter-sample peaks a little,
so the output is re-measured and, if it still exceeds the ceiling, scaled down by the (tiny)
excess: the output's true peak (``loudness.true_peak``) never exceeds the ceiling (beyond
float32 rounding, ~1e-6 dB).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d

from .loudness import oversampled_peaks, true_peak

__all__ = ["gain_curve", "limit", "limit_measured", "peak_envelope"]

_MAX_BLOCK = 16  # frames per block for the hold and release stages


def _peak_envelope(a: np.ndarray, sr: int) -> np.ndarray:
    """Per-frame peak (float32, channels linked) of the 4x-oversampled signal: frame ``n`` gets
    the largest value between frames ``n - 1`` and ``n + 1``, and its own sample values."""
    m = oversampled_peaks(a, sr)
    peak = m.copy()
    np.maximum(peak[1:], m[:-1], out=peak[1:])
    absmax = np.abs(a[:, 0])
    for ch in range(1, a.shape[1]):
        np.maximum(absmax, np.abs(a[:, ch]), out=absmax)
    np.maximum(peak, absmax, out=peak)
    return peak


def gain_curve(peak: np.ndarray, ceiling: float, sr: int, lookahead: float, release: float) -> np.ndarray:
    """The limiter's linear gain (float64, one value per frame) for a per-frame ``peak`` envelope
    and a linear ``ceiling``.

    Hold and release run on blocks of a few frames (block minima, so never less reduction than
    needed); the attack smoothing at full rate turns the block steps into a smooth curve.
    """
    n = len(peak)
    la = max(1, int(round(lookahead * sr)))
    b = max(1, min(_MAX_BLOCK, la // 8))
    nb = -(-n // b)
    padded_peak = np.zeros(nb * b, dtype=np.float64)
    padded_peak[:n] = peak
    block_peak = padded_peak.reshape(nb, b).max(axis=1) if b > 1 else padded_peak
    need = np.minimum(1.0, ceiling / np.maximum(block_peak, 1e-30))
    # 2. look-ahead hold: frame i needs min(need[i .. i + la]); those frames lie in blocks
    #    i // b .. i // b + span.
    span = (b - 1 + la) // b
    held = minimum_filter1d(need, size=span + 1, origin=-((span + 1) // 2), mode="nearest")
    # 3. exponential release of the dB gain reduction r = -20 log10(g) >= 0:
    #    r[j] = max(r_need[j], r[j-1] * q), q = exp(-b / (release * sr))
    #    <=>  log r[j] = max(log r_need[j], log r[j-1] + log q)
    #    =>   log r[j] = j log q + cummax_k(log r_need[k] - k log q).
    active = np.flatnonzero(held < 1.0)
    if active.size == 0:
        return np.ones(n)
    first = active[0]  # start the recursion at the first reduction: keeps the ramp terms small
    with np.errstate(divide="ignore"):
        log_r = np.log(-20.0 * np.log10(held[first:]))
    ramp = np.arange(len(log_r), dtype=np.float64) * (b / max(release * sr, 1.0))
    log_r = np.maximum.accumulate(log_r + ramp) - ramp
    held[first:] = 10.0 ** (-np.exp(log_r) / 20.0)
    full = np.repeat(held, b)[:n] if b > 1 else held
    # 4. attack smoothing: the mean over full[i - la .. i] reaches full's minimum at every peak.
    #    Before the start the gain is taken as full[0], so peaks in the first look-ahead window
    #    are caught too (the output simply starts with that gain).
    csum = np.cumsum(np.concatenate((np.full(la + 1, full[0]), full)))
    return (csum[la + 1:] - csum[:-la - 1]) / (la + 1)


def limit(audio: np.ndarray, sr: int, ceiling_db: float = -1.0, lookahead: float = 0.005,
          release: float = 0.05) -> np.ndarray:
    """Limit ``audio`` so its true peak (4x oversampled) is at most ``ceiling_db`` dBTP.

    ``audio`` is float, ``(frames,)`` or ``(frames, channels)``; the result has the same shape,
    float32, the same length and no delay. One gain is applied to all channels. Audio whose true
    peak is already at or below the ceiling is returned unchanged (a bit-identical float32 copy).
    """
    return limit_measured(audio, sr, ceiling_db, lookahead, release)[0]


def peak_envelope(audio: np.ndarray, sr: int) -> np.ndarray:
    """The envelope :func:`limit_measured` works from. It scales with gain, so a caller trying
    several gains on one signal computes it once."""
    a = np.asarray(audio, dtype=np.float32)
    return _peak_envelope(a if a.ndim == 2 else a[:, None], sr)


def limit_measured(audio: np.ndarray, sr: int, ceiling_db: float = -1.0, lookahead: float = 0.005,
                   release: float = 0.05, envelope: np.ndarray | None = None,
                   in_place: bool = False) -> tuple[np.ndarray, float, bool]:
    """:func:`limit`, also returning the output's true peak in dBTP and whether it reduced gain.

    ``envelope`` is the input's :func:`peak_envelope`, if known. The true peak comes for free:
    unlimited audio has the envelope's maximum; limited audio is re-measured anyway. With
    ``in_place``, float32 ``audio`` is limited in place (it is the returned array).
    """
    x = np.asarray(audio)
    if x.ndim not in (1, 2):
        raise ValueError(f"audio must be shaped (frames,) or (frames, channels), got {x.shape}")
    out = x if in_place and x.dtype == np.float32 else np.array(x, dtype=np.float32, copy=True)
    a = out if out.ndim == 2 else out[:, None]
    if a.shape[0] == 0 or a.shape[1] == 0 or not np.any(a):
        return out, float("-inf"), False
    ceiling = 10.0 ** (ceiling_db / 20.0)
    peak = _peak_envelope(a, sr) if envelope is None else envelope
    top = float(peak.max())
    if top <= ceiling:
        return out, 20.0 * np.log10(top), False
    gain = gain_curve(peak, ceiling, sr, lookahead, release).astype(np.float32)
    a *= gain[:, None]
    # The time-varying gain can move inter-sample peaks slightly: re-measure and trim.
    tp = true_peak(a, sr)
    if tp > ceiling_db:
        scale = 10.0 ** ((ceiling_db - tp) / 20.0) * (1.0 - 1e-6)
        a *= np.float32(scale)
        tp += 20.0 * np.log10(scale)
    return out, tp, True

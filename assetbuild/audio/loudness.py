"""Loudness and peak meters.

All meters take float audio shaped ``(frames,)`` or ``(frames, channels)`` and return dB values
(``-inf`` for digital silence):

* :func:`integrated` -- ITU-R BS.1770-4 / EBU R128 gated integrated loudness in LUFS (pyloudnorm).
  Reliable for clips of about 3 s or more.
* :func:`momentary_max` -- the highest 400 ms momentary loudness (K-weighted, 100 ms hop) in LUFS;
  the measure Wwise calls "Momentary Max", used for short sounds where integrated loudness is
  unstable.
* :func:`true_peak` -- BS.1770-4 Annex 2 true peak in dBTP (4x oversampling, soxr HQ).
* :func:`sample_peak` -- plain sample peak in dBFS.
* :func:`measure` -- pick one of the loudness measures for a clip (``mode="auto"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyloudnorm
import soxr
from scipy.signal import sosfilt

from ..errors import AssetbuildError

__all__ = [
    "AUTO_INTEGRATED_MIN_S",
    "MODES",
    "Measurement",
    "SilentAudio",
    "integrated",
    "measure",
    "momentary_max",
    "oversampled_peaks",
    "resolve_mode",
    "sample_peak",
    "true_peak",
]

#: Clips at least this long are measured with integrated loudness in ``mode="auto"``.
AUTO_INTEGRATED_MIN_S = 3.0
#: Measurement modes accepted by :func:`measure` (besides ``"auto"``).
MODES = ("integrated", "momentary-max", "peak")

_BLOCK_S = 0.400  # BS.1770 momentary block
_HOP_S = 0.100  # momentary loudness update rate (EBU Tech 3341)
_OVERSAMPLE = 4  # BS.1770-4 Annex 2
_CHUNK = 16384  # frames per soxr call when oversampling
# BS.1770 channel weights: L, R, C = 1.0; surrounds = 1.41 (~+1.5 dB).
_CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)


class SilentAudio(AssetbuildError, ValueError):
    """Audio is silent or too quiet to measure or normalize meaningfully."""


@dataclass(frozen=True)
class Measurement:
    """A loudness reading: ``value`` in LUFS (or dBFS for ``mode == "peak"``) and how it was taken."""

    value: float
    mode: str


def _as_2d(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"audio must be shaped (frames,) or (frames, channels), got {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"audio must be floating point, got {a.dtype}")
    return a


def _db(power_or_amp: float, factor: float) -> float:
    if not power_or_amp > 0.0:
        return float("-inf")
    return float(factor * np.log10(power_or_amp))


def integrated(audio: np.ndarray, sr: int) -> float:
    """Integrated gated loudness (BS.1770-4) in LUFS.

    Returns ``-inf`` for silence, for audio below the -70 LUFS absolute gate, and for clips
    shorter than one 400 ms block (which BS.1770 cannot measure).
    """
    a = _as_2d(audio)
    if a.shape[0] < _BLOCK_S * sr or a.shape[1] == 0 or not np.any(a):
        return float("-inf")
    if a.shape[1] > len(_CHANNEL_GAINS):
        raise ValueError(f"at most {len(_CHANNEL_GAINS)} channels can be measured, got {a.shape[1]}")
    # pyloudnorm gates and sums; the K-weighting (its own coefficients) runs here as one
    # second-order-section filter over all channels, about 3x faster than its per-channel lfilter.
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(pyloudnorm.Meter(sr, filter_class="custom").integrated_loudness(_k_weighted(a, sr)))
    return value if np.isfinite(value) else float("-inf")


def _k_weighted(a: np.ndarray, sr: int) -> np.ndarray:
    """``a`` (2-D) through pyloudnorm's K-weighting stages (high shelf, then high pass), float64."""
    stages = list(pyloudnorm.Meter(sr)._filters.values())
    sos = np.array([np.concatenate([st.b, st.a]) / st.a[0] for st in stages])
    gain = float(np.prod([st.passband_gain for st in stages]))
    y = sosfilt(sos, np.asarray(a, dtype=np.float64), axis=0)
    return y * gain if gain != 1.0 else y


def momentary_max(audio: np.ndarray, sr: int) -> float:
    """Maximum momentary loudness in LUFS: 400 ms K-weighted blocks every 100 ms, ungated.

    Uses pyloudnorm's K-weighting filter stages and the BS.1770 channel sum. Clips shorter than
    one block are zero-padded to one block (a short sound followed by silence, as it plays); the
    end of longer clips is zero-padded so the block grid covers every sample.
    """
    a = _as_2d(audio)
    n, channels = a.shape
    if channels > len(_CHANNEL_GAINS):
        raise ValueError(f"at most {len(_CHANNEL_GAINS)} channels can be measured, got {channels}")
    if n == 0 or not np.any(a):
        return float("-inf")
    block = int(round(_BLOCK_S * sr))
    hop = int(round(_HOP_S * sr))
    total = block if n <= block else block + int(np.ceil((n - block) / hop)) * hop
    x = np.zeros((total, channels), dtype=np.float64)
    x[:n] = a
    y = _k_weighted(x, sr)  # as integrated() uses
    power = np.zeros(total, dtype=np.float64)
    for ch in range(channels):
        power += _CHANNEL_GAINS[ch] * np.square(y[:, ch])
    csum = np.concatenate(([0.0], np.cumsum(power)))
    starts = np.arange(0, total - block + 1, hop)
    energy = (csum[starts + block] - csum[starts]) / block
    return _db(float(energy.max()), 10.0) - 0.691 if energy.max() > 0 else float("-inf")


def oversampled_peaks(audio: np.ndarray, sr: int) -> np.ndarray:
    """Per-frame peak of the 4x-oversampled signal (soxr HQ), all channels linked.

    Returns float32 ``m`` with ``m[n] = max |x_up[4n .. 4n + 3]|`` over all channels: frame ``n``
    and the three inter-sample points after it. Streams in chunks so no 4x copy of the whole
    signal is ever held.
    """
    a = _as_2d(audio)
    n, channels = a.shape
    m = np.zeros(n, dtype=np.float32)
    if n == 0 or channels == 0:
        return m
    # HQ (20-bit) rather than VHQ: peaks agree within 0.005 dB on our test signals, and the
    # meter runs twice per limited asset, where VHQ cost a third more time.
    stream = soxr.ResampleStream(sr, _OVERSAMPLE * sr, channels, dtype="float32", quality="HQ")
    carry = np.zeros(0, dtype=np.float32)
    pos = 0
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        chunk = np.ascontiguousarray(a[start:stop], dtype=np.float32)
        up = np.abs(stream.resample_chunk(chunk, last=stop == n))
        env = up[:, 0]
        for ch in range(1, channels):
            env = np.maximum(env, up[:, ch])
        env = np.concatenate((carry, env)) if carry.size else env
        groups = min(len(env) // _OVERSAMPLE, n - pos)
        used = groups * _OVERSAMPLE
        g = env[:used]
        m[pos:pos + groups] = np.maximum(np.maximum(g[0::4], g[1::4]), np.maximum(g[2::4], g[3::4]))
        pos += groups
        carry = env[used:].copy()
    if carry.size and pos < n:
        m[pos] = carry.max()
    return m


def true_peak(audio: np.ndarray, sr: int) -> float:
    """True peak in dBTP: the highest absolute value of the 4x-oversampled signal (soxr HQ),
    never below the sample peak. ``-inf`` for silence."""
    a = _as_2d(audio)
    if a.size == 0 or not np.any(a):
        return float("-inf")
    peak = max(float(oversampled_peaks(a, sr).max()), float(np.abs(a).max()))
    return _db(peak, 20.0)


def sample_peak(audio: np.ndarray) -> float:
    """Sample peak in dBFS (``-inf`` for silence or empty audio)."""
    a = np.asarray(audio)
    if a.size == 0:
        return float("-inf")
    return _db(float(np.abs(a).max()), 20.0)


def resolve_mode(audio: np.ndarray, sr: int, mode: str = "auto") -> str:
    """The concrete measurement mode for ``mode``: ``"auto"`` picks ``"integrated"`` for clips of
    :data:`AUTO_INTEGRATED_MIN_S` or more, otherwise ``"momentary-max"``."""
    if mode == "auto":
        frames = np.asarray(audio).shape[0]
        return "integrated" if frames >= AUTO_INTEGRATED_MIN_S * sr else "momentary-max"
    if mode not in MODES:
        raise ValueError(f"unknown loudness mode {mode!r}; expected 'auto' or one of {', '.join(MODES)}")
    return mode


def measure(audio: np.ndarray, sr: int, mode: str = "auto") -> Measurement:
    """Measure ``audio`` with ``mode`` (``"auto"``, ``"integrated"``, ``"momentary-max"`` or
    ``"peak"``; peak is the sample peak in dBFS)."""
    mode = resolve_mode(audio, sr, mode)
    if mode == "integrated":
        value = integrated(audio, sr)
    elif mode == "momentary-max":
        value = momentary_max(audio, sr)
    else:
        value = sample_peak(audio)
    return Measurement(value, mode)

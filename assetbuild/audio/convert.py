"""Channel layout, sample rate and loudness normalization for generated audio."""

from __future__ import annotations

from typing import Any

import numpy as np
import soxr

from . import loudness
from .limiter import limit_measured, peak_envelope
from .loudness import SilentAudio

__all__ = [
    "SILENCE_MOMENTARY_LUFS",
    "SILENCE_PEAK_DBFS",
    "TARGET_TOLERANCE",
    "SilentAudio",
    "normalize",
    "resample",
    "to_channels",
]

#: Audio whose momentary-max loudness is below this is treated as silent (BS.1770 absolute gate).
SILENCE_MOMENTARY_LUFS = -70.0
#: Audio whose sample peak is below this is treated as silent.
SILENCE_PEAK_DBFS = -80.0
#: ``target_met`` when the re-measured value is within this many LU (dB for peak mode).
TARGET_TOLERANCE = 0.5
# When limiting pulls the loudness below the target, extra gain (at most this many dB in all)
# is tried before the limiter, up to _MAKEUP_PASSES times, to get back to the target.
_MAX_MAKEUP_DB = 3.0
_MAKEUP_PASSES = 3
_MAKEUP_CLOSE_ENOUGH = 0.1


def to_channels(audio: np.ndarray, n: int) -> np.ndarray:
    """Return ``audio`` as ``(frames, n)``.

    Mono is duplicated to every channel; several channels mixed to mono are averaged. Other
    conversions (e.g. 3 -> 2) are refused rather than guessed.
    """
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"audio must be shaped (frames,) or (frames, channels), got {a.shape}")
    if n < 1:
        raise ValueError(f"channel count must be at least 1, got {n}")
    have = a.shape[1]
    if have == n:
        return a
    if have == 1:
        return np.repeat(a, n, axis=1)
    if n == 1:
        return a.mean(axis=1, keepdims=True, dtype=np.float64).astype(a.dtype, copy=False)
    raise ValueError(f"cannot convert {have} channels to {n}")


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Resample with soxr at very high quality; ``audio`` itself when the rates are equal."""
    if int(sr_from) == int(sr_to):
        return audio
    if sr_from <= 0 or sr_to <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_from} -> {sr_to}")
    a = np.asarray(audio)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32)
    return soxr.resample(np.ascontiguousarray(a), sr_from, sr_to, quality="VHQ")


def _apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    return np.asarray(audio, dtype=np.float32) * np.float32(10.0 ** (gain_db / 20.0))


def normalize(audio: np.ndarray, sr: int, target_lufs: float, ceiling_dbtp: float,
              mode: str = "auto") -> tuple[np.ndarray, dict[str, Any]]:
    """Bring ``audio`` to ``target_lufs`` under a true-peak ceiling of ``ceiling_dbtp``.

    Measures with ``mode`` (see :func:`loudness.measure`; for ``"peak"`` the target is a sample
    peak in dBFS), applies the gain that reaches the target, limits to the ceiling, and
    re-measures with the same measure. If the limiter cost more than 0.1 LU, up to 3 dB of
    extra gain is tried (each pass re-limits the original audio) to win it back.

    Returns ``(audio, info)``: float32 audio of the input's shape, and ``info`` with ``mode``,
    ``measured_before``, ``gain_db`` (gain applied before the limiter), ``loudness`` and
    ``true_peak`` (after), ``target``, ``target_met`` (within 0.5 LU) and ``limited``.

    Raises :class:`SilentAudio` when the input is silent or nearly so (momentary max below
    -70 LUFS or sample peak below -80 dBFS): an empty asset must fail, not become loud noise.
    """
    x = np.asarray(audio)
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise SilentAudio(f"no audio to normalize (shape {x.shape})")
    if not np.all(np.isfinite(x)):
        raise ValueError("audio contains NaN or infinite samples")
    peak = loudness.sample_peak(x)
    if peak < SILENCE_PEAK_DBFS:
        raise SilentAudio(f"audio is silent (sample peak {peak:.1f} dBFS < {SILENCE_PEAK_DBFS:g})")

    mode = loudness.resolve_mode(x, sr, mode)
    # Integrated loudness is -inf exactly when every 400 ms block is under -70 LUFS, i.e. when
    # the momentary max is: long material needs only the one measurement.
    before = loudness.integrated(x, sr) if mode == "integrated" else float("-inf")
    if not np.isfinite(before):
        mm = loudness.momentary_max(x, sr)
        if mm < SILENCE_MOMENTARY_LUFS:
            raise SilentAudio(f"audio is silent (momentary max {mm:.1f} LUFS < {SILENCE_MOMENTARY_LUFS:g})")
        before = mm if mode == "momentary-max" else loudness.measure(x, sr, mode).value
    if not np.isfinite(before):
        raise SilentAudio(f"audio is too quiet to measure ({mode} loudness {before})")

    envelope = peak_envelope(x, sr)  # scales with gain: computed once for every pass below
    gain_db = target_lufs - before
    base_gain = gain_db
    out, after, limited, tp = _gain_and_limit(x, sr, gain_db, ceiling_dbtp, mode, envelope, before)
    for _ in range(_MAKEUP_PASSES):
        short = target_lufs - after
        if not limited or short <= _MAKEUP_CLOSE_ENOUGH:
            break
        new_gain = min(gain_db + short, base_gain + _MAX_MAKEUP_DB)
        if new_gain <= gain_db + 0.01:
            break
        cand = _gain_and_limit(x, sr, new_gain, ceiling_dbtp, mode, envelope, before)
        if cand[1] <= after + 0.01:  # the limiter eats the extra gain: stop
            break
        (out, after, limited, tp), gain_db = cand, new_gain

    info = {
        "mode": mode,
        "measured_before": float(before),
        "gain_db": float(gain_db),
        "loudness": float(after),
        "true_peak": float(tp),
        "target": float(target_lufs),
        "target_met": bool(abs(after - target_lufs) <= TARGET_TOLERANCE),
        "limited": bool(limited),
    }
    return out, info


def _gain_and_limit(x: np.ndarray, sr: int, gain_db: float, ceiling_dbtp: float, mode: str,
                    envelope: np.ndarray, before: float) -> tuple[np.ndarray, float, bool, float]:
    """(output, its loudness, whether the limiter worked, its true peak) for one gain."""
    gained = _apply_gain(x, gain_db)
    out, tp, limited = limit_measured(gained, sr, ceiling_db=ceiling_dbtp,
                                      envelope=envelope * np.float32(10.0 ** (gain_db / 20.0)), in_place=True)
    # Untouched by the limiter, the loudness moved by exactly the gain: no second measurement.
    after = loudness.measure(out, sr, mode).value if limited else before + gain_db
    return out, after, limited, tp

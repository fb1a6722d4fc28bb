"""The process stage: turn generated audio into a mastered file at the project's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .convert import normalize, resample, to_channels

# Audio on each side of a loop that the resampler sees, so the seam is resampled as the
# continuous signal it is when played, not against silence.
_LOOP_CONTEXT_S = 0.05


@dataclass(frozen=True)
class Settings:
    sample_rate: int
    channels: int
    loudness: float
    true_peak: float
    loop: bool = False
    trim: bool = False
    trim_threshold: float = -50.0
    trim_pad: float = 0.05


def master(audio: np.ndarray, sr: int, s: Settings) -> tuple[np.ndarray, dict[str, Any]]:
    """Trim -> channels -> sample rate -> loudness and true peak. Returns (frames x channels, info).

    ``info["offset"]`` is the seconds cut from the start: timings of the generated audio minus
    it are timings in the output (resampling keeps times; it only changes the frame count).
    """
    audio = to_channels(np.asarray(audio, dtype=np.float32), s.channels)
    offset = 0
    if s.trim and not s.loop:
        from .cleanup import trim_silence

        audio, offset = trim_silence(audio, sr, threshold_db=s.trim_threshold, pad=s.trim_pad)
    if s.loop and sr != s.sample_rate:
        audio = _resample_loop(audio, sr, s.sample_rate)
    else:
        audio = resample(audio, sr, s.sample_rate)
    audio, info = normalize(audio, s.sample_rate, s.loudness, s.true_peak)
    info["loop"] = {"start": 0, "end": len(audio) - 1} if s.loop else None
    info["offset"] = offset / sr
    return np.ascontiguousarray(audio, dtype=np.float32), info


def _resample_loop(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    n = len(audio)
    pad = min(n, int(_LOOP_CONTEXT_S * sr_from))
    wrapped = np.concatenate([audio[n - pad:], audio, audio[:pad]])
    out = resample(wrapped, sr_from, sr_to)
    start = round(pad * sr_to / sr_from)
    return out[start:start + round(n * sr_to / sr_from)]

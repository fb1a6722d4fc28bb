"""The process stage: turn generated audio into a mastered file at the project's settings."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .convert import normalize, resample, to_channels

# Audio on each side of a loop that the resampler sees, so the seam is resampled as the
# continuous signal it is when played, not against silence.
_LOOP_CONTEXT_S = 0.05
# A one-shot high-pass at least this high removes the DC offset itself (it starts settled on
# the first sample, so no transient): the separate DC filter is then skipped.
_DC_BY_HIGHPASS_HZ = 20.0


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
    loudness_mode: str = "auto"
    remove_dc: bool = True
    highpass: float = 0.0
    fade_in: float = 0.0
    fade_out: float = 0.0
    fade_curve: str = "sine"
    loop_crossfade: float = 0.0
    pitch: float = 0.0  # semitones of varispeed (a take made by pitch_variation)

    @classmethod
    def of(cls, sample_rate: int, values: dict[str, Any]) -> Settings:
        """Settings for an entry's resolved manifest values (keys named as the fields)."""
        names = {f.name for f in fields(cls)} - {"sample_rate"}
        return cls(sample_rate=sample_rate, **{k: values[k] for k in names if k in values})


def master(audio: np.ndarray, sr: int, s: Settings) -> tuple[np.ndarray, dict[str, Any]]:
    """The mastering chain. Returns (frames x channels float32, info).

    Varispeed (pitch) -> channels -> trim silence -> DC removal -> high-pass -> loop crossfade -> sample rate ->
    fades -> loudness and true peak. Filters run before the loop is cut so its seam stays
    continuous, and fades before normalising so the level is measured on what ships.
    ``info["offset"]`` is the seconds cut from the start: timings of the generated audio minus
    it are timings in the output (resampling keeps times; it only changes the frame count).
    """
    from . import cleanup

    audio = to_channels(np.asarray(audio, dtype=np.float32), s.channels)
    if s.pitch:
        # Played faster (higher) or slower: the audio is read as if recorded at sr * ratio.
        ratio = 2.0 ** (s.pitch / 12.0)
        audio = _resample_loop(audio, sr * ratio, sr) if s.loop else resample(audio, sr * ratio, sr)
    offset = 0
    if s.trim and not s.loop:
        audio, offset = cleanup.trim_silence(audio, sr, threshold_db=s.trim_threshold, pad=s.trim_pad)
    if s.remove_dc and (s.loop or s.highpass < _DC_BY_HIGHPASS_HZ):
        audio = cleanup.remove_dc(audio, sr, loop=s.loop)
    if s.highpass > 0:
        audio = cleanup.highpass(audio, sr, min(s.highpass, 0.45 * sr), loop=s.loop)
    if s.loop and s.loop_crossfade > 0:
        audio = cleanup.loop_crossfade(audio, sr, s.loop_crossfade)
    if s.loop and sr != s.sample_rate:
        audio = _resample_loop(audio, sr, s.sample_rate)
    else:
        audio = resample(audio, sr, s.sample_rate)
    if not s.loop and (s.fade_in > 0 or s.fade_out > 0):
        audio = cleanup.fade(audio, s.sample_rate, s.fade_in, s.fade_out, curve=s.fade_curve)
    audio, info = normalize(audio, s.sample_rate, s.loudness, s.true_peak, mode=s.loudness_mode)
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

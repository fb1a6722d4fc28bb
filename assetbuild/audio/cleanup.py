"""Clean-up steps of the mastering chain: trim, fades, DC and rumble removal, loops, dither.

Every function is pure: it takes float audio shaped ``(frames,)`` or ``(frames, channels)`` and
returns new float32 audio of the same ``ndim`` (the input is never modified). Filters run in
float64 internally.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.signal import butter, sosfilt, sosfilt_zi, sosfiltfilt

__all__ = [
    "FADE_CURVES",
    "active_range",
    "fade",
    "highpass",
    "loop_crossfade",
    "remove_dc",
    "tpdf_dither",
    "trim_silence",
]

_TRIM_WINDOW_S = 0.010  # RMS window of the trim activity detector
_DC_CUTOFF_HZ = 5.0  # corner of the DC blocker

#: Fade-in gain for ``t`` in [0, 1); fade-outs use the same curve reversed in time.
FADE_CURVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda t: t,
    "sine": lambda t: np.sin(0.5 * np.pi * t),  # quarter sine: equal power
    "exp": lambda t: t ** 3,  # slow start, fast finish (exponential-ish)
    "log": lambda t: 1.0 - (1.0 - t) ** 3,  # fast start, slow finish (logarithmic-ish)
}


def _prepare(audio: np.ndarray, copy: bool = True) -> tuple[np.ndarray, bool]:
    """A float32 ``(frames, channels)`` copy of ``audio`` (or, for steps that only read it, a
    view when it already is float32) and whether the input was 1-D."""
    a = np.array(audio, dtype=np.float32, copy=True) if copy else np.asarray(audio, dtype=np.float32)
    if a.ndim not in (1, 2):
        raise ValueError(f"audio must be shaped (frames,) or (frames, channels), got {a.shape}")
    return (a[:, None], True) if a.ndim == 1 else (a, False)


def _finish(a: np.ndarray, was_1d: bool) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)
    return a[:, 0] if was_1d else a


def _active_bounds(a: np.ndarray, sr: int, threshold_db: float) -> tuple[int, int] | None:
    """First and last active frame (inclusive) of 2-D ``a``, or None when all of it is silent."""
    n = a.shape[0]
    if n == 0 or a.shape[1] == 0:
        return None
    w = min(n, max(1, int(round(_TRIM_WINDOW_S * sr))))
    first = _first_active(a, w, threshold_db, sr)
    if first is None:
        return None
    # The last active frame is the first one of the time-reversed audio (same windows).
    return first, n - 1 - _first_active(a[::-1], w, threshold_db, sr)


def _first_active(a: np.ndarray, w: int, threshold_db: float, sr: int) -> int | None:
    """First frame above the threshold amplitude inside the first ``w``-frame window whose
    mean power is above the threshold. Scans from the start in chunks, so a long sound that
    starts early costs only its first chunk."""
    n = a.shape[0]
    power_floor, amp_floor = 10.0 ** (threshold_db / 10.0), 10.0 ** (threshold_db / 20.0)
    chunk = max(4 * w, sr // 2)
    for pos in range(0, n - w + 1, chunk):
        seg = a[pos:min(n, pos + chunk + w - 1)]
        power = np.mean(np.square(seg, dtype=np.float64), axis=1)
        csum = np.concatenate(([0.0], np.cumsum(power)))
        level = (csum[w:] - csum[:-w]) / w  # mean power of the window starting at each frame
        loud = np.flatnonzero(level > power_floor)
        if loud.size:
            start = pos + int(loud[0])
            above = np.max(np.abs(a[start:start + w]), axis=1) > amp_floor
            return start + int(np.argmax(above))
    return None


def active_range(audio: np.ndarray, sr: int, threshold_db: float = -50.0) -> tuple[int, int]:
    """``(start, end)`` frames of the sound in ``audio`` (end exclusive), detected as in
    :func:`trim_silence`; ``(0, frames)`` when it is all silent."""
    a, _ = _prepare(audio, copy=False)
    bounds = _active_bounds(a, sr, threshold_db)
    return (0, a.shape[0]) if bounds is None else (bounds[0], bounds[1] + 1)


def trim_silence(audio: np.ndarray, sr: int, threshold_db: float = -50.0, pad: float = 0.05, *,
                 start: bool = True, end: bool = True) -> tuple[np.ndarray, int]:
    """Cut leading (``start``) and trailing (``end``) silence; returns ``(audio, offset)``.

    Activity is detected with a sliding 10 ms RMS (mean power over all channels) compared with
    ``threshold_db`` in dBFS -- a fixed level relative to full scale, not to the clip's peak, so
    a quiet clip is not trimmed into its noise floor. A lone click (one loud sample) carries
    too little energy over 10 ms to count. The onset is the first sample of the first window
    above the threshold, refined to the first sample in that window whose absolute value (on
    any channel) exceeds the threshold amplitude; the end is found the same way from the back.
    ``pad`` seconds of the original audio are kept on each side (never beyond its bounds).

    ``offset`` is the number of frames removed from the start: timings of the input minus
    ``offset / sr`` are timings in the output. All-silent audio is returned unchanged with
    offset 0 (silence is reported elsewhere).
    """
    if sr <= 0 or pad < 0:
        raise ValueError(f"need sr > 0 and pad >= 0, got sr={sr}, pad={pad}")
    a, was_1d = _prepare(audio, copy=False)
    bounds = _active_bounds(a, sr, threshold_db) if (start or end) else None
    if bounds is None:
        return _finish(a.copy(), was_1d), 0
    p = int(round(pad * sr))
    lo = max(0, bounds[0] - p) if start else 0
    hi = min(a.shape[0], bounds[1] + 1 + p) if end else a.shape[0]
    return _finish(a[lo:hi].copy(), was_1d), lo


def fade(audio: np.ndarray, sr: int, fade_in: float = 0.0, fade_out: float = 0.0,
         curve: str = "sine") -> np.ndarray:
    """Fade in over ``fade_in`` and out over ``fade_out`` seconds, shaped by ``curve``.

    Curves (see :data:`FADE_CURVES`): ``"linear"``, ``"sine"`` (quarter sine, equal power),
    ``"exp"`` (cubic, slow start) and ``"log"`` (mirrored cubic, fast start). The fade-in gain
    is 0 at the first sample and rises to just below 1 (the next sample has gain 1); the
    fade-out is its mirror image, reaching 0 at the last sample, so the file starts and ends
    on silence without a click. Each fade is clamped to half the length, so they never overlap.
    """
    if curve not in FADE_CURVES:
        raise ValueError(f"unknown fade curve {curve!r}; expected one of {sorted(FADE_CURVES)}")
    if fade_in < 0 or fade_out < 0:
        raise ValueError(f"fade lengths must be >= 0, got {fade_in}, {fade_out}")
    a, was_1d = _prepare(audio)
    n = a.shape[0]
    shape = FADE_CURVES[curve]
    n_in = min(int(round(fade_in * sr)), n // 2)
    n_out = min(int(round(fade_out * sr)), n // 2)
    if n_in:
        a[:n_in] *= shape(np.arange(n_in) / n_in).astype(np.float32)[:, None]
    if n_out:
        a[n - n_out:] *= shape(np.arange(n_out)[::-1] / n_out).astype(np.float32)[:, None]
    return _finish(a, was_1d)


def remove_dc(audio: np.ndarray, sr: int, *, loop: bool = False) -> np.ndarray:
    """Remove DC offset.

    One-shots get a first-order 5 Hz high-pass applied forward and backward (zero phase; about
    -0.3 dB at 20 Hz and nothing audible above). Unlike subtracting the mean, it also follows
    slowly drifting offsets, and it does not treat a short sound's own asymmetric waveform as
    offset and shift the silence around it away from zero. The ends are padded by mirroring
    (0.2 s) so a constant offset at the edges causes no start/end transient.

    Loops (``loop=True``) only get their mean subtracted: a constant keeps every sample-to-sample
    step, so the loop seam stays exactly as continuous as it was, where a filter's start
    transient would break it.
    """
    a, was_1d = _prepare(audio, copy=False)
    x = a.astype(np.float64)
    n = x.shape[0]
    if n == 0:
        return _finish(a.copy(), was_1d)
    if loop or n < 2:
        return _finish(x - x.mean(axis=0), was_1d)
    sos = butter(1, _DC_CUTOFF_HZ, btype="highpass", fs=sr, output="sos")
    padlen = min(n - 1, int(round(sr / _DC_CUTOFF_HZ)))
    return _finish(sosfiltfilt(sos, x, axis=0, padtype="even", padlen=padlen), was_1d)


def highpass(audio: np.ndarray, sr: int, cutoff_hz: float, *, order: int = 2,
             loop: bool = False) -> np.ndarray:
    """Butterworth high-pass of ``order`` at ``cutoff_hz`` (rumble removal); ``cutoff_hz <= 0``
    returns the input (as float32).

    One-shots are filtered causally, like a console's low-cut (no pre-ringing before
    transients), starting in the steady state of their first sample, so an offset causes no
    start transient; the filter removes the offset too.
    Loops are filtered circularly: the filter starts in the exact periodic steady state (the
    state it would have after endlessly many repetitions of the loop), so the output is one
    period of the filtered endless loop and its seam is as continuous as the input's.
    """
    a, was_1d = _prepare(audio, copy=False)
    if cutoff_hz <= 0 or a.shape[0] == 0:
        return _finish(a.copy(), was_1d)
    if cutoff_hz >= sr / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz must be below Nyquist ({sr / 2} Hz)")
    sos = butter(order, cutoff_hz, btype="highpass", fs=sr, output="sos")
    x = a.astype(np.float64)
    if not loop:
        # Start as if the first sample's value had always been there: an offset (or a sound
        # cut mid-waveform) causes no start transient.
        zi = sosfilt_zi(sos)[:, :, None] * x[0][None, None, :]
        return _finish(sosfilt(sos, x, axis=0, zi=zi)[0], was_1d)
    n, ch = x.shape
    ns = sos.shape[0]
    k = 2 * ns  # state variables per channel
    # The final state is linear in (initial state, input): z_end = M @ z0 + z_input. The
    # periodic steady state solves z0 = M @ z0 + z_input.
    _, z_input = sosfilt(sos, x, axis=0, zi=np.zeros((ns, 2, ch)))
    _, z_unit = sosfilt(sos, np.zeros((n, k)), axis=0, zi=np.eye(k).reshape(ns, 2, k))
    m = z_unit.reshape(k, k)
    z0 = np.linalg.solve(np.eye(k) - m, z_input.reshape(k, ch))
    y, _ = sosfilt(sos, x, axis=0, zi=z0.reshape(ns, 2, ch))
    return _finish(y, was_1d)


def tpdf_dither(audio: np.ndarray, bits: int, seed: int = 0) -> np.ndarray:
    """Add triangular-PDF dither for reduction to ``bits`` (16 or 24; 32 returns the input).

    The noise is the sum of two independent uniform variables of +-0.5 LSB each (LSB =
    ``2 ** -(bits - 1)`` of full scale): within +-1 LSB, std ``1 / sqrt(6)`` LSB, zero mean. It
    makes the writer's rounding error independent of the signal (no distortion on fades and
    quiet tails). Deterministic for a given ``seed``. The result stays float32; the writer
    quantises it.

    This runs after limiting, so it can move a sample by at most 1 LSB past the input's peak;
    the true-peak ceiling's margin absorbs that (1 LSB is -90 dBFS at 16 bit, -138 at 24).
    """
    if bits >= 32:
        return np.array(audio, dtype=np.float32, copy=True)
    if bits < 2:
        raise ValueError(f"bits must be at least 2, got {bits}")
    a = np.asarray(audio)
    if a.ndim not in (1, 2):
        raise ValueError(f"audio must be shaped (frames,) or (frames, channels), got {a.shape}")
    lsb = 2.0 ** -(bits - 1)
    rng = np.random.default_rng(seed)
    # Triangular on (-1, 1) LSB, in float32 (its 24-bit mantissa resolves a 16-bit LSB at full
    # scale 256 times over; 24-bit files get float64).
    dtype = np.float32 if bits <= 16 else np.float64
    noise = rng.random(a.shape, dtype=dtype)
    noise += rng.random(a.shape, dtype=dtype)
    noise -= 1.0
    noise *= lsb
    noise += a
    return noise.astype(np.float32, copy=False)


def loop_crossfade(audio: np.ndarray, sr: int, crossfade_s: float) -> np.ndarray:
    """Make a seamless loop by crossfading the last ``crossfade_s`` seconds into the head.

    With ``N`` input frames and ``L`` crossfade frames (at most ``N // 2``) the output has
    ``N - L`` frames::

        out[i] = x[i] * sin(theta_i) + x[N - L + i] * cos(theta_i),  theta_i = pi/2 * i / L, i < L
        out[i] = x[i]                                                 L <= i < N - L

    Geometry: when the loop wraps, ``out[-1] = x[N-L-1]`` is followed by ``out[0]``, which is
    exactly ``x[N-L]`` (tail weight cos 0 = 1), its natural continuation in the original. Over
    the crossfade the tail fades out while the head fades in, and at ``i = L`` the head is at
    full gain and continues unchanged into ``x[L]``. The sin/cos pair is equal power
    (sin^2 + cos^2 = 1), so uncorrelated material keeps its level through the crossfade
    (correlated material may rise by up to 3 dB). The loop runs from frame 0 to frame
    ``len(out) - 1`` inclusive. ``crossfade_s <= 0`` returns the input.
    """
    a, was_1d = _prepare(audio, copy=False)
    n = a.shape[0]
    xf = min(int(round(max(crossfade_s, 0.0) * sr)), n // 2)
    if xf == 0:
        return _finish(a.copy(), was_1d)
    theta = 0.5 * np.pi * np.arange(xf) / xf
    x = a.astype(np.float64)
    out = x[:n - xf].copy()
    out[:xf] = x[:xf] * np.sin(theta)[:, None] + x[n - xf:] * np.cos(theta)[:, None]
    return _finish(out, was_1d)

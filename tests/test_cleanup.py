"""Clean-up steps: trim, fades, DC removal, high-pass, dither and loop crossfades."""

from __future__ import annotations

import numpy as np
import pytest

from assetbuild.audio.cleanup import (
    FADE_CURVES,
    active_range,
    fade,
    highpass,
    loop_crossfade,
    remove_dc,
    tpdf_dither,
    trim_silence,
)

SR = 48000
MS = SR // 1000


def db_to_amp(db: float) -> float:
    return 10.0 ** (db / 20.0)


def rms_db(x: np.ndarray) -> float:
    return 10.0 * np.log10(np.mean(np.square(x, dtype=np.float64)))


def tone(seconds: float, freq: float, amp: float = 0.5, channels: int = 0, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(round(seconds * SR))) / SR
    x = amp * np.sin(2 * np.pi * freq * t + phase)
    if channels:
        x = np.repeat(x[:, None], channels, axis=1)
    return x.astype(np.float32)


def pink(seconds: float, channels: int = 2, seed: int = 0, slope: float = 0.5) -> np.ndarray:
    """Noise with a 1/f**(2*slope) power spectrum (0.5: pink, 1: brown) at -20 dBFS RMS.

    Cut from a longer FFT-made block, so it is not itself a seamless loop."""
    n = int(seconds * SR)
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal((2 * n, channels)), axis=0)
    f = np.fft.rfftfreq(2 * n, 1 / SR)
    f[0] = f[1]
    x = np.fft.irfft(spectrum / f[:, None] ** slope, n=2 * n, axis=0)[:n]
    return (x * 0.1 / np.sqrt(np.mean(x ** 2, axis=0))).astype(np.float32)


def seam_ok(y: np.ndarray) -> bool:
    """The wrap-around step is no larger than the 99th percentile of the steps inside."""
    steps = np.abs(np.diff(y, axis=0))
    seam = np.abs(y[-1] - y[0])
    return bool(np.all(seam <= np.percentile(steps, 99, axis=0)))


# --- trim_silence -------------------------------------------------------------------------------

def speech_clip(channels: int = 2, seed: int = 3):
    """0.5 s of -80 dBFS noise, 1 s of noise at -20 dBFS RMS, 0.7 s of -80 dBFS noise."""
    rng = np.random.default_rng(seed)
    pre, body, post = int(0.5 * SR), SR, int(0.7 * SR)
    n = pre + body + post
    x = rng.standard_normal((n, channels)) * db_to_amp(-80)
    x[pre:pre + body] = rng.standard_normal((body, channels)) * 0.1
    return x.astype(np.float32), pre, pre + body


@pytest.mark.parametrize("pad", [0.05, 0.1, 0.0])
def test_trim_onset_offset_and_pads(pad):
    x, onset, stop = speech_clip()
    y, offset = trim_silence(x, SR, threshold_db=-50.0, pad=pad)
    p = int(round(pad * SR))
    assert y.dtype == np.float32 and y.shape[1] == 2
    assert abs((onset - offset) - p) <= MS  # the sound starts pad seconds into the output
    assert abs(offset + p - onset) <= MS
    assert np.array_equal(y, x[offset:offset + len(y)])  # a slice of the original, no gain
    assert abs((offset + len(y)) - (stop + p)) <= MS  # trailing pad kept


def test_trim_onset_is_sample_accurate_on_tone():
    sil = np.zeros(int(0.3 * SR), dtype=np.float32)
    x = np.concatenate([sil, tone(0.5, 440.0, phase=0.5), sil])
    y, offset = trim_silence(x, SR, pad=0.02)
    assert y.ndim == 1
    assert offset == len(sil) - int(0.02 * SR)
    assert len(y) == int(0.5 * SR) + 2 * int(0.02 * SR)


def test_trim_pad_never_beyond_bounds():
    x, onset, stop = speech_clip()
    y, offset = trim_silence(x, SR, pad=2.0)
    assert offset == 0 and np.array_equal(y, x)
    body = x[onset:stop]
    y, offset = trim_silence(body, SR, pad=0.05)
    assert offset == 0 and len(y) == len(body)


def test_trim_start_or_end_only():
    x, onset, stop = speech_clip()
    y, offset = trim_silence(x, SR, pad=0.0, end=False)
    assert abs(offset - onset) <= MS and offset + len(y) == len(x)
    y, offset = trim_silence(x, SR, pad=0.0, start=False)
    assert offset == 0 and abs(len(y) - stop) <= MS


def test_trim_all_silent_unchanged():
    x, _, _ = speech_clip()
    quiet = x[:int(0.4 * SR)]
    y, offset = trim_silence(quiet, SR)
    assert offset == 0 and np.array_equal(y, quiet)
    y, offset = trim_silence(np.zeros(1000, dtype=np.float32), SR)
    assert offset == 0 and len(y) == 1000


def test_trim_clicks_below_window_energy_are_not_activity():
    x, onset, stop = speech_clip()
    x[int(0.1 * SR), 0] = db_to_amp(-60)  # below the threshold amplitude
    x[int(0.2 * SR), 1] = db_to_amp(-40)  # above it as a sample, far below it over 10 ms
    x[stop + int(0.3 * SR), 0] = -db_to_amp(-40)
    y, offset = trim_silence(x, SR, threshold_db=-50.0, pad=0.05)
    assert abs(offset + int(0.05 * SR) - onset) <= MS
    assert abs(offset + len(y) - (stop + int(0.05 * SR))) <= MS


def test_active_range():
    x, onset, stop = speech_clip()
    start, end = active_range(x, SR)
    assert abs(start - onset) <= MS and abs(end - stop) <= MS
    y, offset = trim_silence(x, SR, pad=0.0)
    assert (offset, offset + len(y)) == (start, end)
    assert active_range(x[:int(0.4 * SR), 0], SR) == (0, int(0.4 * SR))


def test_trim_threshold_is_absolute_not_relative_to_peak():
    x, onset, _ = speech_clip()
    quiet = (x * db_to_amp(-40)).astype(np.float32)  # body now at -60 dBFS RMS: all below -50
    y, offset = trim_silence(quiet, SR, threshold_db=-50.0)
    assert offset == 0 and len(y) == len(x)


# --- fade ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("curve", sorted(FADE_CURVES))
def test_fade_endpoints_and_monotonic(curve):
    dc = np.full((SR, 2), 0.5, dtype=np.float32)
    y = fade(dc, SR, fade_in=0.1, fade_out=0.2, curve=curve)
    assert y.shape == dc.shape and y.dtype == np.float32
    assert np.all(y[0] == 0) and np.all(y[-1] == 0)
    gain = y[:, 0] / 0.5
    n_in, n_out = int(0.1 * SR), int(0.2 * SR)
    assert np.all(np.diff(gain[:n_in + 1]) >= 0) and gain[n_in // 2] < 1.0
    assert np.all(np.diff(gain[-n_out - 1:]) <= 0) and gain[-n_out // 2] < 1.0
    assert np.all(gain[n_in:-n_out] == 1.0)
    assert np.allclose(y[:, 0], y[:, 1])
    assert np.array_equal(dc, np.full((SR, 2), 0.5, dtype=np.float32))  # input untouched


def test_fade_curve_shapes():
    dc = np.ones(SR, dtype=np.float32)
    mid = int(0.05 * SR)  # half-way through a 0.1 s fade-in
    g = {c: fade(dc, SR, fade_in=0.1, curve=c)[mid] for c in FADE_CURVES}
    assert g["linear"] == pytest.approx(0.5, abs=1e-4)
    assert g["sine"] == pytest.approx(np.sqrt(0.5), abs=1e-4)  # equal power: -3 dB half-way
    assert g["exp"] == pytest.approx(0.125, abs=1e-4)
    assert g["log"] == pytest.approx(0.875, abs=1e-4)
    with pytest.raises(ValueError):
        fade(dc, SR, fade_in=0.1, curve="cosine")


def test_fade_lengths_clamped_to_half():
    dc = np.ones(1001, dtype=np.float32)
    y = fade(dc, SR, fade_in=10.0, fade_out=10.0, curve="linear")
    assert y.ndim == 1 and y[0] == 0 and y[-1] == 0
    assert np.all(np.diff(y[:501]) > 0) and np.all(np.diff(y[500:]) < 0)
    assert y.max() == 1.0 and int(np.argmax(y)) == 500


# --- remove_dc ----------------------------------------------------------------------------------

def test_remove_dc_one_shot():
    x = (tone(1.0, 440.0, amp=0.3, channels=2) + 0.2).astype(np.float32)
    y = remove_dc(x, SR)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.all(np.abs(y.mean(axis=0)) < 1e-3)
    # the content is left alone (zero phase, far above the 5 Hz corner) including the edges
    assert np.max(np.abs(y - (x - 0.2))) < 5e-3
    assert np.max(np.abs(y[SR // 10:-SR // 10] - (x - 0.2)[SR // 10:-SR // 10])) < 1e-3


def test_remove_dc_keeps_silence_at_zero_around_asymmetric_sound():
    # a one-sided 20 ms pulse in 2 s of silence: its own mean is content, not offset, and
    # subtracting the clip's mean would move the silence (and the file's ends) off zero
    x = np.zeros(2 * SR, dtype=np.float32)
    pulse = int(0.02 * SR)
    x[SR:SR + pulse] = 0.5 * np.sin(np.pi * np.arange(pulse) / pulse)
    assert abs(float(x.mean())) > 1e-3
    y = remove_dc(x, SR)
    assert np.max(np.abs(y[:SR // 2])) < 1e-5 and np.max(np.abs(y[-SR // 2:])) < 1e-5
    assert np.max(y) > 0.4


def test_remove_dc_loop_keeps_seam():
    x = (tone(1.01, 440.0, amp=0.3) + 0.2).astype(np.float32)  # non-integer periods: a real seam step
    y = remove_dc(x, SR, loop=True)
    assert abs(float(np.mean(y))) < 1e-3
    before = abs(float(x[-1]) - float(x[0]))
    after = abs(float(y[-1]) - float(y[0]))
    assert before > 0.05
    assert abs(after - before) <= 1e-6 * before
    assert np.allclose(np.diff(y), np.diff(x), atol=1e-6)


# --- highpass -----------------------------------------------------------------------------------

@pytest.mark.parametrize("order, low_hz, min_db", [(2, 20.0, 20.0), (4, 40.0, 20.0)])
def test_highpass_attenuation(order, low_hz, min_db):
    steady = slice(SR // 2, None)  # skip the filter's start transient
    low = tone(2.0, low_hz, channels=2)
    y = highpass(low, SR, 80.0, order=order)
    assert y.shape == low.shape and y.dtype == np.float32
    assert rms_db(low[steady]) - rms_db(y[steady]) > min_db
    high = tone(2.0, 1000.0)
    y = highpass(high, SR, 80.0, order=order)
    assert y.ndim == 1
    assert abs(rms_db(high[steady]) - rms_db(y[steady])) < 0.5


def test_highpass_zero_cutoff_is_identity():
    x = pink(0.5)
    assert np.array_equal(highpass(x, SR, 0.0), x)


def test_highpass_loop_seam_is_continuous():
    # a seamless loop (integer periods) riding on an offset and rumble: a causal filter starting
    # from rest would leave a start transient and a big seam step
    n = SR
    t = np.arange(n) / SR
    x = (0.3 + 0.2 * np.sin(2 * np.pi * 10 * t) + 0.2 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    assert not seam_ok(highpass(x, SR, 80.0, order=2))
    y = highpass(x, SR, 80.0, order=2, loop=True)
    assert seam_ok(y)
    assert abs(float(np.mean(y))) < 1e-3
    # the result is one period of the endlessly repeated loop, filtered
    long = highpass(np.tile(x, 3), SR, 80.0, order=2)
    assert np.max(np.abs(y - long[2 * n:])) < 1e-4


def test_highpass_loop_stereo_noise():
    x = pink(1.0)
    y = highpass(np.concatenate([x[-100:], x]), SR, 120.0, order=4, loop=True)  # arbitrary loop
    assert y.shape == (SR + 100, 2)
    y = highpass(x, SR, 120.0, order=4, loop=True)
    long = highpass(np.tile(x, (3, 1)), SR, 120.0, order=4)
    assert np.max(np.abs(y - long[2 * SR:])) < 1e-4


# --- tpdf_dither --------------------------------------------------------------------------------

def test_dither_deterministic_and_statistics():
    x = np.zeros((SR, 2), dtype=np.float32)
    a = tpdf_dither(x, 16, seed=7)
    assert a.dtype == np.float32 and a.shape == x.shape
    assert np.array_equal(a, tpdf_dither(x, 16, seed=7))
    assert not np.array_equal(a, tpdf_dither(x, 16, seed=8))
    lsb = 2.0 ** -15
    noise = a.astype(np.float64) / lsb
    assert np.std(noise) == pytest.approx(1 / np.sqrt(6), rel=0.02)
    assert abs(np.mean(noise)) < 0.01
    assert np.max(np.abs(noise)) <= 1.0
    # triangular, not uniform: values near 0 are more common than near +-1
    assert np.mean(np.abs(noise) < 0.5) == pytest.approx(0.75, abs=0.01)


def test_dither_24_bit_and_32_bit():
    x = tone(0.5, 440.0, amp=0.9)
    d = tpdf_dither(x, 24, seed=1).astype(np.float64) - x
    assert np.max(np.abs(d)) <= 2.0 ** -23 + 1e-7  # 1 LSB plus float32 rounding
    assert np.std(d) == pytest.approx(2.0 ** -23 / np.sqrt(6), rel=0.1)
    assert np.array_equal(tpdf_dither(x, 32, seed=1), x)


def test_dither_stays_within_one_lsb_of_peak():
    x = (tone(0.5, 997.0, amp=db_to_amp(-1.0), channels=2))
    y = tpdf_dither(x, 16, seed=3)
    assert np.max(np.abs(y)) <= np.max(np.abs(x)) + 2.0 ** -15 + 1e-7


# --- loop_crossfade -----------------------------------------------------------------------------

def test_loop_crossfade_pink_noise():
    x = pink(4.0)
    xf = int(0.5 * SR)
    y = loop_crossfade(x, SR, 0.5)
    assert y.shape == (len(x) - xf, 2) and y.dtype == np.float32
    assert seam_ok(y)
    assert np.array_equal(y[0], x[len(x) - xf])  # playback continues the original at the wrap
    assert np.array_equal(y[xf:], x[xf:len(x) - xf])
    rest = rms_db(y[xf:])
    assert abs(rms_db(y[:xf]) - rest) < 1.5  # equal power: no level dip
    assert abs(rms_db(y[xf // 4:3 * xf // 4]) - rest) < 1.5  # not even in the middle


@pytest.mark.parametrize("slope", [0.75, 1.0])
def test_loop_crossfade_red_noise_seam(slope):
    # steeper than pink, so a jump between unrelated samples stands out from the steps inside
    x = pink(2.0, slope=slope, seed=5)
    assert not seam_ok(x)
    assert seam_ok(loop_crossfade(x, SR, 0.2))


def test_loop_crossfade_formula():
    x = pink(1.0, channels=1)[:, 0]
    xf = int(0.1 * SR)
    y = loop_crossfade(x, SR, 0.1)
    theta = 0.5 * np.pi * np.arange(xf) / xf
    n = len(x)
    expected = x[:xf] * np.sin(theta) + x[n - xf:] * np.cos(theta)
    assert y.ndim == 1 and len(y) == n - xf
    assert np.allclose(y[:xf], expected, atol=1e-6)


def test_loop_crossfade_sine_non_integer_periods():
    x = tone(1.0, 443.3, amp=0.5, channels=2)  # 443.3 periods: a raw loop jumps
    assert not seam_ok(x)
    y = loop_crossfade(x, SR, 0.05)
    assert len(y) == len(x) - int(0.05 * SR)
    assert seam_ok(y)


def test_loop_crossfade_clamped_to_half():
    x = pink(0.2)
    y = loop_crossfade(x, SR, 5.0)
    assert len(y) == len(x) - len(x) // 2
    assert np.array_equal(loop_crossfade(x, SR, 0.0), x)

"""The sequence mixer: placement, trim/loop, fades, gain, pan, bus gains, ducking, stems."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from assetbuild.audio.cleanup import loop_crossfade
from assetbuild.audio.mix import ANTI_CLICK_S, Ducking, Source, duck_curve, frame_at, mix
from assetbuild.timeline import Event, Placed, Scene, resolve, resolve_scenes

SR = 48000
OFF = Ducking(enabled=False)


def pink(seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Pink noise at -20 dBFS RMS per channel (FFT-shaped)."""
    n = int(round(seconds * SR))
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal((n, channels)), axis=0)
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    x = np.fft.irfft(spectrum / np.sqrt(f)[:, None], n=n, axis=0)
    return (x * 0.1 / np.sqrt(np.mean(x ** 2, axis=0))).astype(np.float32)


def noise(seconds: float, channels: int = 0, seed: int = 1) -> np.ndarray:
    shape = (int(round(seconds * SR)),) + ((channels,) if channels else ())
    return (0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def place(name: str, asset: str, start: float, length: float, **kw) -> Placed:
    return Placed(Event(name, asset, at=start, **kw), start, start + length)


def energy(x: np.ndarray) -> float:
    return float(np.sum(np.square(x, dtype=np.float64)))


def db(ratio: float) -> float:
    return 10.0 * np.log10(ratio)


def short_term(x: np.ndarray, start_s: float) -> float:
    """EBU short-term loudness (K-weighted, 3 s window) of ``x`` from ``start_s``: pyloudnorm's
    meter with one 3 s block over exactly that window (one block: gating cannot drop it)."""
    a = frame_at(start_s, SR)
    return pyloudnorm.Meter(SR, block_size=3.0).integrated_loudness(x[a:a + 3 * SR])


# ---------------------------------------------------------------------------- placement

@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("stereo_source", [False, True])
def test_impulse_lands_on_its_frame(channels, stereo_source):
    imp = np.array([[1.0, 1.0]] if stereo_source else [1.0], dtype=np.float32)
    ts = [0.0, 0.1, 0.123456, 1.00001, 2.7182818, 3.0 + 0.3 / SR, 3.5 + 0.7 / SR]
    for t in ts:
        assert frame_at(t, SR) == round(t * SR)  # not on a half frame: same as round()
    placed = [place(f"i{k}", "imp", t, 1 / SR, bus="sfx" if k % 2 else "music") for k, t in enumerate(ts)]
    out, stems = mix(placed, {"imp": Source(imp)}, SR, channels=channels, ducking=OFF)
    expected = sorted(round(t * SR) for t in ts)
    for ch in range(channels):
        assert list(np.flatnonzero(out[:, ch])) == expected
    assert list(np.flatnonzero(stems["music"][:, 0])) == [round(t * SR) for t in ts[0::2]]
    assert list(np.flatnonzero(stems["sfx"][:, 0])) == [round(t * SR) for t in ts[1::2]]
    # centre: mono source constant-power into stereo, stereo source at unity, mono out averages
    peak = 1.0 if channels == 1 or stereo_source else np.sqrt(0.5)
    assert np.allclose(out[expected], peak)


def test_half_frame_rounds_up_and_never_drops_an_event():
    # Python's round() sends 2.5 to 2 and 3.5 to 4: an event of one frame at 2.5 .. 3.5 would
    # get 2 frames, one at 1.5 .. 2.5 none. Half up keeps every one-frame event one frame.
    for k in (0.5, 1.5, 2.5, 1000.5):
        out, _ = mix([place("i", "imp", k / SR, 1 / SR)], {"imp": Source(np.ones(1))}, SR, channels=1)
        assert list(np.flatnonzero(out[:, 0])) == [int(k + 0.5)]


def test_chained_events_touch_exactly():
    n = 4801  # not a whole number of milliseconds
    events = [Event("a", "one", at=10.3 / SR), Event("b", "one", after="a"), Event("c", "one", after="b"),
              Event("d", "one", with_="c", offset=n / SR)]
    placed = resolve(events, {"one": n / SR})
    out, _ = mix(placed, {"one": Source(np.ones(n, dtype=np.float32))}, SR, channels=1, ducking=OFF)
    first = frame_at(10.3 / SR, SR)
    assert out.shape == (first + 4 * n, 1)
    assert np.all(out[:first] == 0) and np.all(out[first:] == 1.0)  # no gap, no doubled frame


def test_length_and_empty_mix():
    out, stems = mix([place("a", "x", 0.5, 0.25), place("b", "x", 0.1, 0.2, duration=0.2)],
                     {"x": Source(np.ones(12000))}, SR)
    assert out.shape == (frame_at(0.75, SR), 2) and stems["sfx"].shape == out.shape
    out, stems = mix([], {}, SR)
    assert out.shape == (1, 2) and stems == {}


def test_stems_sum_to_mix():
    rng = np.random.default_rng(5)
    sources = {"m": Source(loop_crossfade(pink(3.0), SR, 0.2), loop=(0, 3 * SR - int(0.2 * SR) - 1)),
               "w": Source(pink(4.0, seed=2)), "v": Source(noise(1.3)), "s": Source(noise(0.2, 2, seed=3))}
    placed = [place("m", "m", 0.0, 20.0, bus="music", duration=20.0, fade_in=1.0, fade_out=2.0, gain=-3.0),
              place("w", "w", 1.0, 4.0, bus="ambience", pan=-0.3)]
    for k in range(30):
        asset = "v" if k % 3 == 0 else "s"
        start = float(rng.uniform(0, 18))
        length = 1.3 if asset == "v" else 0.2
        placed.append(place(f"e{k}", asset, start, length, bus="dialogue" if asset == "v" else "sfx",
                            pan=float(rng.uniform(-1, 1)), gain=float(rng.uniform(-6, 6))))
    out, stems = mix(placed, sources, SR, bus_gains={"music": -2.0, "sfx": 1.5, "unused": 4.0})
    assert set(stems) == {"music", "ambience", "dialogue", "sfx"}
    assert all(s.shape == out.shape and s.dtype == np.float64 for s in stems.values())
    assert np.max(np.abs(out - sum(stems.values()))) <= 1e-6
    out1, stems1 = mix(placed, sources, SR, channels=1)
    assert out1.shape == (out.shape[0], 1)
    assert np.max(np.abs(out1 - sum(stems1.values()))) <= 1e-6


def test_only_buses_with_events_get_stems():
    _, stems = mix([place("a", "x", 0, 0.1, bus="ambience")], {"x": Source(noise(0.1))}, SR)
    assert list(stems) == ["ambience"]


# ---------------------------------------------------------------------------- trim and loop

def test_trim_to_shorter_duration_with_anti_click_fade():
    src = noise(2.0, 2)
    out, _ = mix([place("a", "x", 0.0, 1.0, duration=1.0)], {"x": Source(src)}, SR, ducking=OFF)
    n, fade = SR, int(round(ANTI_CLICK_S * SR))
    assert out.shape == (n, 2)
    assert np.array_equal(out[:n - fade], src[:n - fade].astype(np.float64))
    assert np.all(out[-1] == 0)
    ramp = np.sin(0.5 * np.pi * np.arange(fade)[::-1] / fade)
    assert np.allclose(out[n - fade:], src[n - fade:n] * ramp[:, None])
    # a longer own fade-out wins
    out, _ = mix([place("a", "x", 0.0, 1.0, duration=1.0, fade_out=0.2)], {"x": Source(src)}, SR)
    assert np.array_equal(out[:n - SR // 5], src[:n - SR // 5].astype(np.float64))
    assert not np.array_equal(out[n - SR // 5], src[n - SR // 5])


def test_no_duration_plays_whole_source_without_fade():
    src = noise(0.5)
    out, _ = mix([place("a", "x", 0.25, 0.5)], {"x": Source(src)}, SR, channels=1)
    assert np.array_equal(out[SR // 4:, 0], src.astype(np.float64))
    with pytest.raises(ValueError, match="'a': timeline length"):
        mix([place("a", "x", 0.0, 0.6)], {"x": Source(src)}, SR)


def steps_ok(y: np.ndarray, seams: list[int]) -> bool:
    """Each step across a seam (seam - 1 -> seam) is no larger than the largest step inside the
    loop body, and no larger than its 99.9th percentile."""
    steps = np.abs(np.diff(y, axis=0))
    inside = np.delete(steps, [s - 1 for s in seams], axis=0)
    limit = np.minimum(inside.max(axis=0), np.percentile(inside, 99.9, axis=0))
    return all(bool(np.all(steps[s - 1] <= limit)) for s in seams)


def test_loop_with_loop_points_is_exact_and_seamless():
    # intro (0.5 s) + a seamless pink-noise loop body + a loud tail that looping never reaches
    body = loop_crossfade(pink(2.0, seed=4), SR, 0.1)
    intro = pink(0.5, seed=7)
    tail = np.full((SR // 10, 2), 0.9, dtype=np.float32)
    src = np.concatenate([intro, body, tail])
    ls, le = len(intro), len(intro) + len(body) - 1
    out, _ = mix([place("m", "m", 0.0, 7.0, duration=7.0, bus="music")], {"m": Source(src, loop=(ls, le))}, SR)
    n = 7 * SR
    period = le - ls + 1
    idx = np.arange(n)
    idx[idx > le] = ls + (idx[idx > le] - ls) % period
    fade = int(round(ANTI_CLICK_S * SR))
    assert np.array_equal(out[:n - fade], src[idx[:n - fade]].astype(np.float64))
    assert np.max(np.abs(out)) < 0.9  # the tail is never played
    seams = list(range(le + 1, n - fade, period))
    assert len(seams) == 3
    assert steps_ok(out[:n - fade], seams)
    # a pure tone whose loop holds whole periods: the seam step equals ordinary steps
    tone = np.sin(2 * np.pi * 480 * np.arange(SR) / SR)  # 100 frames per period
    out, _ = mix([place("t", "t", 0.0, 3.0, duration=3.0)], {"t": Source(tone, loop=(50, 50 + 100 * 300 - 1))}, SR,
                 channels=1)
    assert np.allclose(out[:-fade, 0], np.sin(2 * np.pi * 480 * np.arange(3 * SR - fade) / SR), atol=1e-9)


def test_loop_without_loop_points_repeats_whole_source():
    src = loop_crossfade(pink(1.0, channels=1, seed=9), SR, 0.05)[:, 0]
    out, _ = mix([place("a", "a", 0.0, 2.5, duration=2.5)], {"a": Source(src)}, SR, channels=1)
    m = len(src)
    fade = int(round(ANTI_CLICK_S * SR))
    expected = np.tile(src, 3)[:int(2.5 * SR) - fade]
    assert np.array_equal(out[:len(expected), 0], expected.astype(np.float64))
    assert steps_ok(out[:len(expected)], [m, 2 * m])
    assert out[-1, 0] == 0


def test_bad_sources():
    with pytest.raises(ValueError, match="loop points"):
        mix([place("a", "a", 0, 2.0, duration=2.0)], {"a": Source(np.ones(100), loop=(50, 100))}, SR)
    with pytest.raises(ValueError, match="no source for asset 'b'"):
        mix([place("a", "b", 0, 1.0)], {}, SR)
    with pytest.raises(ValueError, match="shaped"):
        mix([place("a", "a", 0, 1 / SR)], {"a": Source(np.ones((1, 3)))}, SR)
    with pytest.raises(ValueError, match="channels"):
        mix([], {}, SR, channels=6)


# ---------------------------------------------------------------------------- fades, gain, pan

def test_fades_are_sine_curves():
    ones = np.ones(SR, dtype=np.float32)
    out, _ = mix([place("a", "a", 0.0, 1.0, fade_in=0.1, fade_out=0.25)], {"a": Source(ones)}, SR, channels=1)
    y = out[:, 0]
    n_in, n_out = SR // 10, SR // 4
    assert np.allclose(y[:n_in], np.sin(0.5 * np.pi * np.arange(n_in) / n_in))
    assert np.all(y[n_in:SR - n_out] == 1.0)
    assert np.allclose(y[SR - n_out:], np.sin(0.5 * np.pi * np.arange(n_out)[::-1] / n_out))
    assert y[0] == 0 and y[-1] == 0
    # equal power: a sine fade-out and a sine fade-in of uncorrelated noise keep the energy
    a, b = noise(1.0, seed=11), noise(1.0, seed=12)
    out, _ = mix([place("a", "a", 0.0, 1.0, fade_out=1.0), place("b", "b", 0.0, 1.0, fade_in=1.0)],
                 {"a": Source(a), "b": Source(b)}, SR, channels=1)
    assert abs(db(energy(out) / energy(a))) < 0.1


def test_gain_and_bus_gain():
    src = noise(0.5)
    sources = {"x": Source(src)}
    ref, _ = mix([place("a", "x", 0, 0.5)], sources, SR, channels=1)
    for gain in (6.0, -12.0):
        out, _ = mix([place("a", "x", 0, 0.5, gain=gain)], sources, SR, channels=1)
        assert np.allclose(out, ref * 10 ** (gain / 20), rtol=1e-12)
    out, stems = mix([place("a", "x", 0, 0.5, bus="music"), place("b", "x", 0, 0.5, bus="sfx")], sources, SR,
                     channels=1, bus_gains={"music": -6.0})
    assert np.allclose(stems["music"], ref * 10 ** (-6 / 20), rtol=1e-12)
    assert np.array_equal(stems["sfx"], ref)


def test_pan_law_mono_source_constant_power():
    src = noise(1.0)
    e = energy(src)
    def lr(pan):
        out, _ = mix([place("a", "x", 0, 1.0, pan=pan)], {"x": Source(src)}, SR)
        return energy(out[:, 0]) / e, energy(out[:, 1]) / e
    left, right, centre = lr(-1.0), lr(1.0), lr(0.0)
    assert left[0] == pytest.approx(1.0) and left[1] < 1e-30
    assert right[1] == pytest.approx(1.0) and right[0] < 1e-30
    assert db(centre[0]) == pytest.approx(-3.0103, abs=1e-3) and db(centre[1]) == pytest.approx(-3.0103, abs=1e-3)
    for pan in (-0.7, -0.2, 0.4, 0.9):
        l, r = lr(pan)
        assert l + r == pytest.approx(1.0)  # same total power (and BS.1770 loudness) anywhere
        assert (l > r) == (pan < 0)


def test_pan_stereo_source_is_balance_with_unity_centre():
    src = noise(0.5, channels=2)
    def gains(pan):
        out, _ = mix([place("a", "x", 0, 0.5, pan=pan)], {"x": Source(src)}, SR)
        return [float(np.sqrt(energy(out[:, c]) / energy(src[:, c]))) for c in (0, 1)]
    assert gains(0.0) == pytest.approx([1.0, 1.0])
    assert gains(1.0) == pytest.approx([0.0, 1.0], abs=1e-12)
    assert gains(-1.0) == pytest.approx([1.0, 0.0], abs=1e-12)
    assert gains(-0.5) == pytest.approx([1.0, np.sqrt(0.5)])


def test_mono_output():
    mono, stereo = noise(0.5), noise(0.5, channels=2, seed=4)
    out, _ = mix([place("a", "m", 0, 0.5, pan=-1.0), place("b", "s", 0, 0.5, pan=0.5)],
                 {"m": Source(mono), "s": Source(stereo)}, SR, channels=1)
    assert np.allclose(out[:, 0], mono + stereo.astype(np.float64).mean(axis=1))  # pan ignored


# ---------------------------------------------------------------------------- ducking

def bed_and_line(line_start: float, line_len: float, total: float = 24.0) -> tuple[list[Placed], dict[str, Source]]:
    """A steady pink-noise music bed (seamless 4 s loop) and one dialogue line."""
    body = loop_crossfade(pink(4.2, seed=3), SR, 0.2)
    sources = {"bed": Source(body), "line": Source(noise(line_len, seed=8))}
    placed = [place("bed", "bed", 0.0, total, duration=total, bus="music"),
              place("line", "line", line_start, line_len, bus="dialogue")]
    return placed, sources


def test_ducking_depth_and_recovery_short_term_loudness():
    # Measured as EBU short-term loudness (K-weighted, 3 s window) of the music stem, against
    # the same stem mixed without ducking.
    duck = Ducking()  # 9 dB, attack 0.15, release 0.6, lookahead 0.1
    placed, sources = bed_and_line(8.0, 6.0)
    _, ducked = mix(placed, sources, SR, ducking=duck)
    _, plain = mix(placed, sources, SR, ducking=OFF)
    inside = 9.5  # 9.5 .. 12.5 s: well inside the line (8 .. 14 s), past the attack
    reduction = short_term(ducked["music"], inside) - short_term(plain["music"], inside)
    assert reduction == pytest.approx(-duck.depth, abs=1.0)
    assert reduction == pytest.approx(-duck.depth, abs=0.01)  # the gain is flat there: exact
    recovered = 14.0 + duck.release  # the window starts when the release has ended
    assert short_term(ducked["music"], recovered) == pytest.approx(short_term(plain["music"], recovered), abs=1.0)
    assert np.array_equal(ducked["music"][frame_at(recovered, SR):], plain["music"][frame_at(recovered, SR):])
    before = 8.0 - duck.lookahead - 3.0  # the 3 s before the duck starts: untouched
    assert np.array_equal(ducked["music"][:frame_at(before + 3.0, SR)], plain["music"][:frame_at(before + 3.0, SR)])
    assert np.array_equal(ducked["dialogue"], plain["dialogue"])  # the line itself is not ducked


def gain_db_curve(duck: Ducking, lines: list[tuple[float, float]], total: float = 12.0,
                  bus: str = "music") -> np.ndarray:
    """The gain the ducking applies to a constant bed on ``bus``, in dB per frame."""
    placed = [place("bed", "one", 0.0, total, duration=total, bus=bus)]
    placed += [place(f"l{k}", "line", s, e - s, duration=e - s, bus="dialogue") for k, (s, e) in enumerate(lines)]
    sources = {"one": Source(np.full(int(total * SR), 0.25)), "line": Source(np.zeros(10))}
    _, stems = mix(placed, sources, SR, ducking=duck)
    return 20 * np.log10(stems[bus][:, 0] / (0.25 * np.sqrt(0.5)))


def test_duck_shape_lookahead_attack_hold_release():
    duck = Ducking()
    g = gain_db_curve(duck, [(4.0, 6.0)])
    f = lambda t: frame_at(t, SR)  # noqa: E731
    r0, a, r = f(4.0 - duck.lookahead), f(duck.attack) - 0, f(duck.release)
    assert np.allclose(g[:r0 + 1], 0.0, atol=1e-12)  # ramp starts at line start - lookahead
    u = np.arange(a) / a
    assert np.allclose(g[r0:r0 + a], -duck.depth * (0.5 - 0.5 * np.cos(np.pi * u)))  # raised cosine in dB
    # look-ahead: reduction already present before the line starts, and at its start
    assert g[f(4.0) - 1] < -1.0
    assert g[f(4.0)] == pytest.approx(-duck.depth * (0.5 - 0.5 * np.cos(np.pi * 0.1 / 0.15)), abs=1e-3)  # -6.75 dB
    assert np.allclose(g[r0 + a:f(6.0)], -duck.depth)  # hold through the line
    assert np.allclose(g[f(6.0):f(6.0) + r], -duck.depth * (0.5 + 0.5 * np.cos(np.pi * np.arange(r) / r)))
    assert np.allclose(g[f(6.0) + r:], 0.0, atol=1e-12)  # recovered after the release
    # smooth: no step larger than the raised cosine's steepest slope
    assert np.max(np.abs(np.diff(g))) <= duck.depth * np.pi / 2 / min(a, r) + 1e-9


def test_duck_full_depth_at_line_start_when_attack_within_lookahead():
    duck = Ducking(depth=12.0, attack=0.1, lookahead=0.2)
    g = gain_db_curve(duck, [(3.0, 4.0)])
    assert g[frame_at(3.0 - 0.2, SR)] == pytest.approx(0.0, abs=1e-12)
    assert g[frame_at(3.0 - 0.2, SR) + 1] < 0
    assert np.allclose(g[frame_at(3.0 - 0.1, SR):frame_at(4.0, SR)], -12.0)


def test_close_lines_merge_far_lines_recover():
    duck = Ducking()
    # 0.5 s apart: less than lookahead + release, so the duck holds through the pause
    g = gain_db_curve(duck, [(2.0, 3.0), (3.5, 4.5)])
    full = 2.0 - duck.lookahead + duck.attack
    assert np.allclose(g[frame_at(full, SR):frame_at(4.5, SR)], -duck.depth)
    # 2 s apart: recovers fully in between
    g = gain_db_curve(duck, [(2.0, 3.0), (5.0, 6.0)])
    between = g[frame_at(3.0 + duck.release, SR):frame_at(5.0 - duck.lookahead, SR)]
    assert len(between) > 0 and np.allclose(between, 0.0, atol=1e-12)
    # overlapping lines: one duck
    g = gain_db_curve(duck, [(2.0, 4.0), (3.0, 3.5)])
    assert np.allclose(g[frame_at(full, SR):frame_at(4.0, SR)], -duck.depth)
    assert np.allclose(g[frame_at(4.0 + duck.release, SR):], 0.0, atol=1e-12)


def test_ducking_buses_and_switches():
    ambience = gain_db_curve(Ducking(), [(2.0, 3.0)], bus="ambience")
    assert ambience[frame_at(2.5, SR)] == pytest.approx(-9.0)
    sfx = gain_db_curve(Ducking(), [(2.0, 3.0)], bus="sfx")
    assert np.allclose(sfx, 0.0, atol=1e-12)
    assert np.allclose(gain_db_curve(Ducking(enabled=False), [(2.0, 3.0)]), 0.0, atol=1e-12)
    assert gain_db_curve(None, [(2.0, 3.0)])[frame_at(2.5, SR)] == pytest.approx(-9.0)  # None: defaults
    only_sfx = gain_db_curve(Ducking(buses=("sfx",), depth=4.0), [(2.0, 3.0)], bus="sfx")
    assert only_sfx[frame_at(2.5, SR)] == pytest.approx(-4.0)
    # a line at 0 cuts the look-ahead ramp; nothing breaks
    g = gain_db_curve(Ducking(), [(0.0, 1.0)])
    assert g[0] < 0 and np.all(np.isfinite(g))


def test_duck_curve_edges():
    assert np.array_equal(duck_curve([], 10, SR, Ducking()), np.ones(10))
    c = duck_curve([(0, 5)], 10, SR, Ducking(attack=0.0, release=0.0, lookahead=0.0, depth=20.0))
    assert np.allclose(c, [0.1] * 5 + [1.0] * 5)


# ---------------------------------------------------------------------------- scenes

def test_scene_crossfade_keeps_the_bed_level():
    # Two uncorrelated beds crossfaded over 1 s by resolve_scenes: equal power through the window.
    # White noise, so 100 ms windows measure the level steadily (pink would wander by +-2 dB).
    a, b = noise(4.0, 2, seed=21), noise(4.0, 2, seed=22)
    scenes = [Scene("s1", [Event("a", "a", duration=6.0, bus="ambience")]),
              Scene("s2", [Event("b", "b", duration=6.0, bus="ambience")], crossfade=1.0)]
    placed, table = resolve_scenes(scenes, {})
    out, _ = mix(placed, {"a": Source(a), "b": Source(b)}, SR)
    assert out.shape[0] == frame_at(11.0, SR)
    level = lambda t0, t1: db(energy(out[frame_at(t0, SR):frame_at(t1, SR)]) / ((t1 - t0) * SR))  # noqa: E731
    steady = level(2.0, 4.0)
    for t in np.arange(5.0, 6.0, 0.1):  # 100 ms windows through the crossfade
        assert level(t, t + 0.1) == pytest.approx(steady, abs=0.5)
    assert np.all(out[-1] == 0)  # the last scene ends in its anti-click fade


# ---------------------------------------------------------------------------- speed

"""The mastering chain as a whole: modes, filters, fades, loops, dither, and what a change rebuilds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from conftest import Project

from assetbuild.audio import loudness
from assetbuild.audio.master import Settings, master
from assetbuild.export.audiofile import read_loop

SR = 48000


def noise(seconds: float, seed: int = 0, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.standard_normal((int(seconds * SR), channels)), axis=0)  # reddish: steps are small
    x -= np.linspace(x[0], x[-1], len(x))  # ...but its ends do not meet: a plain cut clicks
    x += rng.standard_normal(x.shape) * 0.5
    x[-1] += 40 * np.sign(x[-1, 0] or 1)  # a jump at the end, as a cut mid-note would leave
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def seam_ok(a: np.ndarray) -> bool:
    steps = np.abs(np.diff(a, axis=0)).max(axis=1)
    seam = np.abs(a[0] - a[-1]).max()
    return seam <= np.percentile(steps, 99)


def test_peak_mode_hits_a_sample_peak_target():
    x = noise(1.0, channels=1) * 0.1
    out, info = master(x, SR, Settings(SR, 1, -6.0, -1.0, loudness_mode="peak"))
    assert info["mode"] == "peak"
    assert loudness.sample_peak(out) == pytest.approx(-6.0, abs=0.05)


def test_mode_auto_picks_by_length():
    assert master(noise(1.0), SR, Settings(SR, 2, -20.0, -1.0))[1]["mode"] == "momentary-max"
    assert master(noise(4.0), SR, Settings(SR, 2, -20.0, -1.0))[1]["mode"] == "integrated"


def test_loop_crossfade_makes_a_seamless_loop():
    x = noise(4.0)
    assert not seam_ok(x)
    out, info = master(x, SR, Settings(SR, 2, -23.0, -1.0, loop=True, loop_crossfade=0.5))
    assert len(out) == len(x) - SR // 2
    assert seam_ok(out)
    assert info["loop"] == {"start": 0, "end": len(out) - 1}
    # Also across a resample to another rate.
    out, _ = master(x, 44100, Settings(SR, 2, -23.0, -1.0, loop=True, loop_crossfade=0.5))
    assert seam_ok(out)


def test_highpass_and_dc():
    t = np.arange(2 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 30 * t) + 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.2).astype(np.float32)
    flat, _ = master(x, SR, Settings(SR, 1, -20.0, -1.0, remove_dc=False))
    cut, _ = master(x, SR, Settings(SR, 1, -20.0, -1.0, highpass=120.0))

    def level(a, f):
        spec = np.abs(np.fft.rfft(a[SR // 2:, 0] * np.hanning(len(a) - SR // 2)))
        freqs = np.fft.rfftfreq(len(a) - SR // 2, 1 / SR)
        return spec[np.argmin(np.abs(freqs - f))]

    assert abs(flat[SR // 2:, 0].mean()) > 0.05 and abs(cut[SR // 2:, 0].mean()) < 0.005
    # 30 Hz relative to 1 kHz drops by more than 20 dB with a 120 Hz high-pass.
    before = level(flat, 30) / level(flat, 1000)
    after = level(cut, 30) / level(cut, 1000)
    assert 20 * np.log10(before / after) > 20


def test_fades():
    x = np.full((SR, 1), 0.2, dtype=np.float32) + noise(1.0, channels=1) * 0.1
    out, _ = master(x, SR, Settings(SR, 1, -20.0, -1.0, fade_in=0.1, fade_out=0.2, remove_dc=False))
    assert abs(out[0, 0]) < 1e-6 and abs(out[-1, 0]) < 1e-6
    env = np.abs(out[: SR // 10, 0])
    assert env[: SR // 100].max() < env[-SR // 100:].max()


SFX = """\
[[sfx]]
id = "hit"
prompt = "sword hit"

[[ambience]]
id = "bed"
prompt = "gentle wind"
duration = 4
loop = true
loop_crossfade = 0.5
"""


def test_processing_keys_reprocess_without_generating(tmp_path):
    p = Project(tmp_path, SFX)
    p.build()
    bed = next(r for r in p.pack()["assets"] if r["id"] == "bed")
    assert bed["frames"] == 3.5 * 48000 and bed["loop"] == {"start": 0, "end": bed["frames"] - 1}
    assert read_loop(p.out / bed["file"]) == (0, bed["frames"] - 1)
    audio, _ = sf.read(p.out / bed["file"], dtype="float32", always_2d=True)
    assert seam_ok(audio)

    p.edit('prompt = "sword hit"', 'prompt = "sword hit"\nfade_out = 0.05\ndither = false')
    plan = json.loads(p.run("plan", str(p.manifest), "--json").stdout)
    assert [(i["id"], i["action"], sorted(i["reasons"])) for i in plan["items"]] == [
        ("hit", "process", ["dither changed", "fade_out changed"])]
    assert p.build()["generated"] == 0


def test_dither_is_deterministic_and_optional(tmp_path):
    p = Project(tmp_path, '[[sfx]]\nid = "hit"\nprompt = "sword hit"\n')
    p.build()
    dithered = (p.out / "sfx" / "hit.wav").read_bytes()
    (p.out / "sfx" / "hit.wav").unlink()
    p.run("cache", "gc", str(p.manifest))
    p.build()
    assert (p.out / "sfx" / "hit.wav").read_bytes() == dithered
    p.edit('prompt = "sword hit"', 'prompt = "sword hit"\ndither = false')
    p.build()
    plain = (p.out / "sfx" / "hit.wav").read_bytes()
    assert plain != dithered
    a = sf.read(p.out / "sfx" / "hit.wav", dtype="int16")[0].astype(int)
    p.edit("dither = false", "dither = true")
    p.build()
    b = sf.read(p.out / "sfx" / "hit.wav", dtype="int16")[0].astype(int)
    assert 0 < np.abs(a - b).max() <= 2  # TPDF: at most 1 LSB either way, plus rounding

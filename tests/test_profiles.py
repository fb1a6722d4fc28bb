"""Output formats, profiles and pitch/gain variations: one generated sound, many deliveries."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from conftest import Project

from assetbuild.audio.loudness import momentary_max
from assetbuild.export.audiofile import read_loop, write_audio

GAME = """\
[project]
name = "formats"

[[dialogue]]
id = "hello"
text = "Hello there, traveller."
format = ["wav", "ogg"]

[[ambience]]
id = "rain"
prompt = "steady rain"
duration = 4
loop = true
format = ["wav", "opus", "flac"]

[[sfx]]
id = "hit"
prompt = "sword hit"

[profiles.mobile]
format = "ogg"
loudness = -18.0
sample_rate = 24000

[profiles.mobile.sfx]
channels = 1
loudness = -16.0

[profiles.console]
output = "build/console"
loudness = -24.0
bit_depth = 24
"""


def record(p: Project, aid: str, out=None) -> dict:
    pack = json.loads(((out or p.out) / "assetpack.json").read_text())
    return next(r for r in pack["assets"] if r["id"] == aid)


def test_several_formats_from_one_mastering(tmp_path):
    p = Project(tmp_path, GAME)
    p.build()
    hello = record(p, "hello")
    assert hello["file"] == "dialogue/hello.wav" and hello["format"] == "wav"
    assert hello["files"] == {"wav": "dialogue/hello.wav", "ogg": "dialogue/hello.ogg"}
    wav, sr = sf.read(p.out / "dialogue" / "hello.wav", dtype="float32")
    ogg, sr2 = sf.read(p.out / "dialogue" / "hello.ogg", dtype="float32")
    assert sr == sr2 == 48000 and abs(len(wav) - len(ogg)) < 0.01 * sr
    # The same master: loudness of the lossy copy is within a fraction of a dB.
    assert momentary_max(ogg, sr) == pytest.approx(momentary_max(wav, sr), abs=0.3)
    assert (p.out / "dialogue" / "hello.srt").is_file()

    rain = record(p, "rain")
    assert set(rain["files"]) == {"wav", "opus", "flac"}
    assert read_loop(p.out / rain["file"]) == (rain["loop"]["start"], rain["loop"]["end"])
    assert sf.info(str(p.out / "ambience" / "rain.opus")).subtype == "OPUS"
    assert sf.info(str(p.out / "ambience" / "rain.flac")).frames == rain["frames"]

    # Deleting an extra file restores it from the cache; dropping a format removes its file.
    (p.out / "ambience" / "rain.opus").unlink()
    s = p.build()
    assert s["generated"] == 0 and s["processed"] == 0 and (p.out / "ambience" / "rain.opus").is_file()
    p.edit('format = ["wav", "opus", "flac"]', 'format = ["flac", "wav"]')
    s = p.build()
    assert s["generated"] == 0
    assert not (p.out / "ambience" / "rain.opus").exists()
    assert (p.out / "ambience" / "rain.flac").is_file() and (p.out / "ambience" / "rain.wav").is_file()
    assert record(p, "rain")["file"] == "ambience/rain.flac"
    # Only files we placed are left: nothing stale.
    assert sorted(f.name for f in (p.out / "ambience").iterdir()) == ["rain.flac", "rain.wav"]

    p.run("clean", str(p.manifest))
    assert not any(f.is_file() for f in p.out.rglob("*"))


def test_encoder_settings_reprocess_only_assets_that_use_them(tmp_path):
    p = Project(tmp_path, GAME)
    p.build()
    size = (p.out / "ambience" / "rain.opus").stat().st_size
    p.edit("[[sfx]]", "[defaults]\nopus_bitrate = 32\n\n[[sfx]]")
    plan = json.loads(p.run("plan", str(p.manifest), "--json").stdout)
    assert [(i["id"], i["reasons"]) for i in plan["items"]] == [("rain", ["opus_bitrate changed"])]
    assert p.build()["generated"] == 0
    assert (p.out / "ambience" / "rain.opus").stat().st_size < 0.6 * size


@pytest.mark.parametrize("channels", [1, 2])
def test_opus_bitrate_and_vorbis_quality_are_honoured(tmp_path, channels):
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((48000 * 4, channels)) * 0.1).astype(np.float32)
    for kbps in (48, 96, 160):
        write_audio(tmp_path / "a.opus", audio, 48000, format="opus", opus_bitrate=kbps)
        measured = (tmp_path / "a.opus").stat().st_size * 8 / 4 / 1000
        assert measured == pytest.approx(kbps, rel=0.15)
    sizes = []
    for q in (1, 5, 9):
        write_audio(tmp_path / "a.ogg", audio, 48000, format="ogg", ogg_quality=q)
        sizes.append((tmp_path / "a.ogg").stat().st_size)
    assert sizes[0] < sizes[1] < sizes[2]


def test_profile_processes_without_generating_into_its_own_tree(tmp_path):
    p = Project(tmp_path, GAME)
    first = p.build()
    assert first["generated"] == 3
    default_bytes = {f: f.read_bytes() for f in p.out.rglob("*") if f.is_file()}

    s = p.build("--profile", "mobile")
    assert s["generated"] == 0 and s["processed"] == 3 and s["failed"] == 0
    mobile = tmp_path / "build" / "audio-mobile"
    pack = json.loads((mobile / "assetpack.json").read_text())
    assert pack["project"]["sample_rate"] == 24000
    hit = record(p, "hit", mobile)
    assert hit["file"] == "sfx/hit.ogg" and hit["loudness_target"] == -16.0 and hit["channels"] == 1
    hello = record(p, "hello", mobile)
    assert hello["files"] == {"ogg": "dialogue/hello.ogg"} and hello["loudness_target"] == -18.0
    assert sf.info(str(mobile / "ambience" / "rain.ogg")).samplerate == 24000
    assert (tmp_path / "assetbuild.mobile.lock").is_file()
    # The default tree is untouched, and a second profile build is a no-op.
    assert {f: f.read_bytes() for f in p.out.rglob("*") if f.is_file()} == default_bytes
    again = p.build("--profile", "mobile")
    assert again["generated"] == again["processed"] == 0
    assert p.build("--profile", "mobile", "--locked")["processed"] == 0

    console = p.build("--profile", "console")
    assert console["generated"] == 0
    assert sf.info(str(tmp_path / "build" / "console" / "dialogue" / "hello.wav")).subtype == "PCM_24"
    # gc keeps what every profile uses.
    p.run("cache", "gc", str(p.manifest))
    for name in ("mobile", "console"):
        (tmp_path / "build" / ("audio-mobile" if name == "mobile" else "console") / "sfx").rename(tmp_path / "gone")
        import shutil

        shutil.rmtree(tmp_path / "gone")
        s = p.build("--profile", name)
        assert s["generated"] == s["processed"] == 0


def test_profile_errors(tmp_path):
    p = Project(tmp_path, GAME)
    proc = p.run("build", str(p.manifest), "--profile", "mobil", check=False)
    assert proc.returncode == 2 and "no profile 'mobil'" in proc.stderr and "did you mean 'mobile'" in proc.stderr
    assert "Traceback" not in proc.stderr
    p.edit("[profiles.mobile.sfx]\nchannels = 1", "[profiles.mobile.sfx]\nchannels = 1\nprompt = \"x\"\ntxt = 1")
    proc = p.run("build", str(p.manifest), check=False)
    assert proc.returncode == 2
    assert "[profiles.mobile.sfx]" in proc.stderr and "prompt" in proc.stderr and "txt" in proc.stderr


VARIED = """\
[[sfx]]
id = "step"
prompt = "footstep on gravel"
variations = 4
pitch_variation = 3.0
gain_variation = 2.0
trim = false
"""


def test_pitch_and_gain_variation_transform_one_take(tmp_path):
    p = Project(tmp_path, VARIED)
    s = p.build()
    assert s["generated"] == 1 and s["processed"] == 4 and s["failed"] == 0
    pack = p.pack()
    takes = [r for r in pack["assets"] if r.get("group") == "step"]
    assert [r["id"] for r in takes] == ["step_01", "step_02", "step_03", "step_04"]
    assert pack["groups"] == [{"id": "step", "assets": [r["id"] for r in takes]}]
    pitches = sorted(r["take_transform"]["pitch"] for r in takes)
    gains = sorted(r["take_transform"]["gain"] for r in takes)
    assert pitches == [-3.0, -1.0, 1.0, 3.0] and gains == [-2.0, pytest.approx(-0.667), pytest.approx(0.667), 2.0]
    # Varispeed: higher takes are shorter, by the pitch ratio.
    by_pitch = sorted(takes, key=lambda r: r["take_transform"]["pitch"])
    assert [r["duration"] for r in by_pitch] == sorted((r["duration"] for r in takes), reverse=True)
    ratio = by_pitch[0]["duration"] / by_pitch[-1]["duration"]
    assert ratio == pytest.approx(2 ** (6 / 12), rel=0.002)
    for r in takes:
        assert r["loudness_target"] == pytest.approx(-20.0 + r["take_transform"]["gain"])
        if r["target_met"]:
            assert r["loudness"] == pytest.approx(r["loudness_target"], abs=0.5)
    # Changing the spread re-processes the takes; nothing is generated again.
    p.edit("pitch_variation = 3.0", "pitch_variation = 1.0")
    s = p.build()
    assert s["generated"] == 0 and s["processed"] == 4


def test_variations_without_transform_generate_each_take(tmp_path):
    p = Project(tmp_path, VARIED.replace("pitch_variation = 3.0\ngain_variation = 2.0\n", ""))
    s = p.build()
    assert s["generated"] == 4
    # Turning the transform on reuses take 1's sound for every take.
    p.edit('variations = 4', 'variations = 4\ngain_variation = 1.5')
    s = p.build()
    assert s["generated"] == 0 and s["processed"] == 4
    a = sf.read(p.out / "sfx" / "step_01.wav")[0]
    b = sf.read(p.out / "sfx" / "step_02.wav")[0]
    assert len(a) == len(b)  # gain only: the same sound, at another level

"""Sequences through real builds: timing follows generated lengths, stems and mix, cue sheet,
subtitles at absolute times, caching, manifest errors and `assetbuild preview`."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import srt
from conftest import REPO, Project

SCENE = """\
[project]
name = "scene"

[voices.n]
backend = "espeak"

[[dialogue]]
id = "l1"
voice = "n"
text = "The forest wakes."

[[dialogue]]
id = "l2"
voice = "n"
text = "Something stirs."

[[music]]
id = "theme"
prompt = "calm theme"
duration = 6
loop = true

[[sequence]]
id = "cut"
loudness = -30.0
true_peak = 0.0
bit_depth = 32

[[sequence.events]]
asset = "theme"
at = 0.0
duration = 14.0

[[sequence.events]]
asset = "l1"
at = 1.25

[[sequence.events]]
asset = "l2"
after = "l1"
gap = 0.5

[[sequence.events]]
after = "l2"
gap = 0.25
sfx = { id = "shimmer", prompt = "magic shimmer", duration = 1.0 }
"""


def _seq(p):
    return next(s for s in p.pack()["sequences"] if s["id"] == "cut")


def _cue(seq, name):
    return next(c for c in seq["cues"] if c["event"] == name)


def test_after_follows_generated_lengths_and_only_the_edit_is_rebuilt(tmp_path):
    p = Project(tmp_path, SCENE)
    s = p.build()
    assert (s["failed"], s["sequences"], s["mixed"]) == (0, 1, 1)
    seq = _seq(p)
    assets = {r["id"]: r for r in p.pack()["assets"]}
    l1, l2, fx = _cue(seq, "l1"), _cue(seq, "l2"), _cue(seq, "shimmer")
    assert l1["start"] == 1.25 and abs(l1["end"] - (1.25 + assets["l1"]["duration"])) < 1e-5
    assert abs(l2["start"] - (l1["end"] + 0.5)) < 1e-5 and abs(fx["start"] - (l2["end"] + 0.25)) < 1e-5
    assert "shimmer" in assets  # the inline entry is an asset of its own

    assert p.build()["mixed"] == 0  # no-op
    p.edit("The forest wakes.", "The old forest wakes slowly, one leaf at a time.")
    s = p.build()
    assert (s["generated"], s["processed"], s["mixed"]) == (1, 1, 1)
    grown = {r["id"]: r for r in p.pack()["assets"]}["l1"]["duration"] - assets["l1"]["duration"]
    assert grown > 1.0
    new = _seq(p)
    assert abs(_cue(new, "l1")["start"] - 1.25) < 1e-9  # placed by `at`: does not move
    for name in ("l2", "shimmer"):  # placed after it: move by the change in its length
        assert abs(_cue(new, name)["start"] - (_cue(seq, name)["start"] + grown)) < 1e-5
    assert _cue(new, "theme") == _cue(seq, "theme")


def test_stems_sum_to_the_mix_and_subtitles_are_absolute(tmp_path):
    p = Project(tmp_path, SCENE)
    p.build()
    seq = _seq(p)
    mix, sr = sf.read(p.out / seq["file"], dtype="float64")
    assert sr == 48000 and mix.shape == (seq["frames"], 2) and len(mix) == round(14.0 * sr)
    assert set(seq["stems"]) == {"dialogue", "music", "sfx"}
    total = sum(sf.read(p.out / path, dtype="float64")[0] for path in seq["stems"].values())
    # Quiet target and a 0 dBTP ceiling: the limiter had nothing to do, so the float32 files agree.
    assert seq["true_peak"] < -0.5
    assert np.max(np.abs(total - mix)) < 1e-6

    # An event placed at t starts at frame round(t * sr) in its stem.
    dialogue = sf.read(p.out / seq["stems"]["dialogue"], dtype="float64")[0]
    first = int(np.argmax(np.abs(dialogue).max(axis=1) > 0))
    l1 = {r["id"]: r for r in p.pack()["assets"]}["l1"]
    lead = int(np.argmax(np.abs(sf.read(p.out / l1["file"])[0]) > 0))
    assert first == round(1.25 * sr) + lead

    report = (p.out / "report.html").read_text()
    assert '<section id="sequences">' in report and 'src="sequences/cut.wav"' in report
    assert "<td>1.250</td>" in report  # l1's row in the cue sheet

    cues = list(srt.parse((p.out / seq["subtitles"]["srt"]).read_text()))
    assert [c.content.replace("\n", " ") for c in cues] == ["The forest wakes.", "Something stirs."]
    words = l1["words"]
    assert abs(cues[0].start.total_seconds() - (1.25 + words[0]["start"])) < 0.002
    assert abs(cues[1].start.total_seconds() - (_cue(seq, "l2")["start"] + {
        r["id"]: r for r in p.pack()["assets"]}["l2"]["words"][0]["start"])) < 0.002


def test_sequence_errors_name_the_events(tmp_path):
    p = Project(tmp_path, SCENE + """
[[sequence]]
id = "broken"
[[sequence.events]]
asset = "l1"
after = "l2"
[[sequence.events]]
asset = "l2"
with = "l1"
[[sequence.events]]
asset = "theme"
after = "intor"

[[sequence]]
id = "missing"
[[sequence.events]]
asset = "them"
""")
    proc = p.run("build", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert 'sequence "broken": cycle: l1 -> l2 -> l1' in proc.stderr
    assert "sequence \"broken\": 'theme': after 'intor'" in proc.stderr
    assert "sequence \"missing\": places 'them', which is not an asset of this manifest (did you mean 'theme'?)" \
        in proc.stderr


def test_preview_renders_one_sequence_aside_and_prints_its_timeline(tmp_path):
    p = Project(tmp_path, SCENE.replace('[[music]]\nid = "theme"', '[[sfx]]\nid = "other"\nprompt = "coin"\n\n'
                                                                   '[[music]]\nid = "theme"'))
    proc = p.run("preview", "cut")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("cut: 14.000 s")
    rows = {line.split()[3]: line.split() for line in lines[1:] if len(line.split()) >= 6}
    assert rows["l1"][:2] == ["1.250", "-"] and rows["l1"][4:] == ["dialogue", "l1"]
    assert abs(float(rows["l2"][0]) - (float(rows["l1"][2]) + 0.5)) < 0.0015  # after l1's end, plus the gap
    preview = tmp_path / ".assetbuild" / "preview" / "cut"
    assert (preview / "sequences" / "cut.wav").is_file() and not (preview / "sfx" / "other.wav").exists()
    assert not p.out.exists()  # the real output is untouched
    s = p.build()  # ... and the real build reuses what the preview generated
    assert s["generated"] == 1  # only "other", which the sequence does not place
    proc = p.run("preview", "cutt", check=False)
    assert proc.returncode == 2 and "no sequence 'cutt' (did you mean 'cut'?)" in proc.stderr


def test_removed_sequence_files_go_and_the_forest_example_has_a_cutscene(tmp_path, forest_out):
    p = Project(tmp_path, SCENE)
    p.build()
    assert (p.out / "sequences" / "cut.wav").is_file()
    text = p.manifest.read_text()
    p.manifest.write_text(text[:text.index("[[sequence]]")])
    s = p.build()
    assert s["sequences"] == 0 and not list((p.out / "sequences").glob("*"))
    assert "sequences" not in p.pack()

    doc = json.loads((forest_out / "assetpack.json").read_text())
    (cut,) = doc["sequences"]
    assert cut["id"] == "forest_cutscene" and cut["target_met"]
    assert {c["bus"] for c in cut["cues"]} == {"dialogue", "music", "ambience", "sfx"}
    assert (forest_out / cut["file"]).is_file() and all((forest_out / f).is_file() for f in cut["stems"].values())
    assert "forest_cutscene" in (REPO / "examples" / "forest" / "assetbuild.toml").read_text()


def test_scenes_are_laid_end_to_end_with_a_crossfade_and_a_transition(tmp_path):
    p = Project(tmp_path, SCENE.split("[[sequence]]")[0] + """
[[sfx]]
id = "whoosh"
prompt = "whoosh"
duration = 1.0

[[sequence]]
id = "acts"

[[sequence.scene]]
name = "one"
[[sequence.scene.events]]
asset = "theme"
duration = 4.0
[[sequence.scene.events]]
asset = "l1"
at = 0.5

[[sequence.scene]]
name = "two"
crossfade = 1.0
transition = "whoosh"
[[sequence.scene.events]]
asset = "l2"
at = 1.5
""")
    s = p.build()
    assert s["failed"] == 0 and s["mixed"] == 1
    seq = next(x for x in p.pack()["sequences"] if x["id"] == "acts")
    one, two = seq["scenes"]
    assert (one["name"], one["start"], one["end"]) == ("one", 0.0, 4.0)
    assert two["start"] == 3.0  # the previous scene's end minus the crossfade
    l2 = next(c for c in seq["cues"] if c["event"] == "l2")
    assert abs(l2["start"] - 4.5) < 1e-9
    whoosh = next(c for c in seq["cues"] if c["asset"] == "whoosh")
    assert whoosh["bus"] == "sfx" and abs((whoosh["start"] + whoosh["end"]) / 2 - 3.5) < 1e-3  # centred


def test_a_sequence_kept_from_the_last_build_reads_as_it_did(tmp_path):
    """A rebuild that leaves a sequence alone keeps its record (read back from the state file,
    which sorts keys) byte for byte in assetpack.json."""
    p = Project(tmp_path, SCENE + '\n[[sfx]]\nid = "blip"\nprompt = "ui blip"\n')
    p.build()
    before = (p.out / "assetpack.json").read_text()
    p.edit('prompt = "ui blip"', 'prompt = "ui blip"\nloudness = -18.0')  # not in the sequence
    s = p.build()
    assert (s["processed"], s["mixed"]) == (1, 0)
    after = (p.out / "assetpack.json").read_text()
    seq_part = before[before.index('"sequences"'):]
    assert after[after.index('"sequences"'):] == seq_part

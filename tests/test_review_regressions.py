"""Regressions found in review: the no-op fast path across code changes, metadata loss after
the fast path, stems dropped from a sequence, engine name clashes, damaged packs, bad tables
merged with includes."""

from __future__ import annotations

import json
import shutil
import zipfile

from conftest import SMALL, Project


def test_keys_from_the_last_build_are_not_trusted_across_code_changes(tmp_path, monkeypatch):
    from assetbuild.manifest import load, model
    from assetbuild.pipeline import keys
    from assetbuild.pipeline.run import plan_build

    p = Project(tmp_path)
    p.build()
    assert all(i.action == "fresh" for i in plan_build(load(p.manifest)).items)
    # A new assetbuild whose built-in sfx fade-in differs: the keys must be computed again.
    monkeypatch.setitem(model.BUILTIN_DEFAULTS, "sfx", dict(model.BUILTIN_DEFAULTS["sfx"], fade_in=0.01))
    monkeypatch.setattr(keys, "code_digest", lambda: "another version")
    coins = [i for i in plan_build(load(p.manifest)).items if i.asset.kind == "sfx"]
    assert coins and all(i.action == "process" and i.reasons == ["fade_in changed"] for i in coins)


def test_lost_cache_and_metadata_after_a_fast_no_op(tmp_path):
    p = Project(tmp_path)
    p.build()
    p.build()  # a no-op: the next plan takes its keys from this state
    shutil.rmtree(tmp_path / ".assetbuild" / "cache")
    (p.out / "assetpack.json").unlink()
    s = p.build()
    assert s["failed"] == 0 and s["generated"] == 5
    assert len(p.pack()["assets"]) == 5


def test_dropped_stems_are_removed(tmp_path):
    text = SMALL + '\n[[sequence]]\nid = "scene"\n[[sequence.events]]\nasset = "wind"\n' \
                   '[[sequence.events]]\nasset = "line_01"\nat = 0.5\n'
    p = Project(tmp_path, text)
    p.build()
    assert (p.out / "sequences" / "scene.ambience.wav").is_file()
    p.edit('id = "scene"', 'id = "scene"\nstems = false')
    p.build()
    assert sorted(f.name for f in (p.out / "sequences").iterdir()) == ["scene.srt", "scene.vtt", "scene.wav"]


def test_engine_name_clash_is_one_failure_not_a_crash(tmp_path):
    text = SMALL.replace('name = "small"', 'name = "small"\n\n[export]\nengines = ["wwise", "unreal"]') + \
        '\n[[sfx]]\nid = "coin"\nprompt = "coin pickup, bright"\n'
    p = Project(tmp_path, text)
    proc = p.run("build", "--json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    s = json.loads(proc.stdout)
    assert [f["id"] for f in s["failures"]] == ["wwise export"] and s["failures"][0]["stage"] == "export"
    assert (p.out / "unreal" / "AssetbuildAudio.csv").is_file() and (p.out / "report.html").is_file()
    assert (p.out / "sfx" / "coin.wav").is_file()
    proc = p.run("export", "-e", "wwise", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "SFX_coin" in proc.stderr


def test_verify_reports_damaged_metadata_without_a_traceback(tmp_path):
    p = Project(tmp_path)
    p.build()
    (p.out / "assetpack.json").write_text("{bad")
    proc = p.run("verify", str(p.out))
    assert proc.returncode == 1 and "assetpack.json: not a valid assetpack.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    p.build()
    p.run("pack")
    (good,) = (tmp_path / "dist").glob("*.zip")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = b"\xff\xfe" if info.filename.endswith("SHA256SUMS") else zin.read(info)
            zout.writestr(info, data)
    proc = p.run("verify", str(bad))
    assert proc.returncode == 1 and "SHA256SUMS: not UTF-8 text" in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_main_table_merged_with_an_include_is_a_message(tmp_path):
    p = Project(tmp_path, 'include = ["more.toml"]\nlexicon = "oops"\n\n[[sfx]]\nid = "a"\nprompt = "coin"\n')
    (tmp_path / "more.toml").write_text('voices = 3\n\n[lexicon]\nXyloth = "zy-loth"\n')
    proc = p.run("plan", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "more.toml: 'voices' expected a table of voices" in proc.stderr

"""`[export] engines` in the manifest: build writes them, keeps them current, and a no-op stays a no-op."""

from __future__ import annotations

import json

from conftest import SMALL, Project


def test_build_writes_configured_engines_and_keeps_them_current(tmp_path):
    p = Project(tmp_path, SMALL.replace('name = "small"', 'name = "small"\n\n[export]\nengines = ["unreal", "wwise"]'))
    p.build()
    csv_path = p.out / "unreal" / "AssetbuildAudio.csv"
    assert csv_path.is_file() and (p.out / "wwise" / "assetbuild_import.tsv").is_file()
    assert not (p.out / "unity").exists()

    before = csv_path.stat().st_mtime_ns
    s = p.build()
    assert (s["generated"], s["processed"]) == (0, 0) and csv_path.stat().st_mtime_ns == before

    # A deleted export file is written again by the next build, even with nothing to rebuild.
    csv_path.unlink()
    p.build()
    assert csv_path.is_file()

    # Editing a line updates the exports; the engine's row follows the new text.
    p.edit("Welcome to the forest.", "Welcome back, traveller.")
    p.build()
    assert "Welcome back, traveller." in csv_path.read_text()

    # Taking an engine out of [export] removes its folder; adding one writes it.
    p.edit('engines = ["unreal", "wwise"]', 'engines = ["fmod"]')
    p.build()
    assert not (p.out / "unreal").exists() and not (p.out / "wwise").exists()
    assert (p.out / "fmod" / "assetbuild_events.csv").is_file()

    proc = p.run("clean")
    assert proc.returncode == 0 and not (p.out / "fmod").exists()


def test_export_command_errors_are_one_line(tmp_path):
    p = Project(tmp_path)
    proc = p.run("export", "-e", "unreal", check=False)
    assert proc.returncode == 2 and "run `assetbuild build` first" in proc.stderr and "Traceback" not in proc.stderr
    p.build()
    proc = p.run("export", check=False)
    assert proc.returncode == 2 and "no engine given" in proc.stderr
    proc = p.run("export", "-e", "unrel", check=False)
    assert proc.returncode == 2 and "unknown engine 'unrel' (did you mean 'unreal'?)" in proc.stderr
    proc = p.run("export", "-e", "unity")
    assert proc.returncode == 0 and (p.out / "unity" / "import_settings.json").is_file()
    settings = json.loads((p.out / "unity" / "import_settings.json").read_text())
    assert {e["path"] for e in settings["entries"]} == {r["file"] for r in p.pack()["assets"]}


def test_manifest_rejects_unknown_engines_and_bad_prefixes(tmp_path):
    p = Project(tmp_path, SMALL + '\n[export]\nengines = ["unity", "godot"]\n\n[export.prefixes]\nsfx = "S F X"\n')
    proc = p.run("plan", check=False)
    assert proc.returncode == 2
    assert "[export]: 'engines' expected one of \"unreal\", \"unity\", \"wwise\", \"fmod\", got \"godot\"" in proc.stderr
    assert "[export.prefixes]: 'sfx' expected letters, digits and '_'" in proc.stderr

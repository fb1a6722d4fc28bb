"""Split manifests: `include` merges entries, voices and lexicon from other files; problems name
the file they come from; edits to an included file rebuild only what changed."""

from __future__ import annotations

import json

from conftest import Project

MAIN = """\
include = ["chapters/*.toml", "npc/guard.toml"]

[project]
name = "split"

[voices.hero]
backend = "espeak"

[[dialogue]]
id = "main_01"
voice = "hero"
text = "Hello there."
"""


def _project(tmp_path, main=MAIN):
    p = Project(tmp_path, main)
    (tmp_path / "chapters").mkdir()
    (tmp_path / "npc").mkdir()
    (tmp_path / "chapters" / "one.toml").write_text(
        '[[dialogue]]\nid = "one_01"\nvoice = "guard"\ntext = "Chapter one begins."\n')
    (tmp_path / "chapters" / "two.toml").write_text(
        'include = ["../npc/guard.toml"]\n\n[[sfx]]\nid = "two_fx"\nprompt = "coin pickup"\n')
    (tmp_path / "npc" / "guard.toml").write_text(
        '[voices.guard]\nbackend = "espeak"\nvoice = "en-gb"\n\n[lexicon]\nXyloth = "zy-loth"\n\n'
        '[[dialogue]]\nid = "guard_01"\nvoice = "guard"\ntext = "Halt, Xyloth."\n')
    return p


def test_included_files_build_and_an_edit_rebuilds_only_its_entry(tmp_path):
    p = _project(tmp_path)
    s = p.build()
    assert s["failed"] == 0 and s["assets"] == 4
    ids = sorted(r["id"] for r in p.pack()["assets"])
    assert ids == ["guard_01", "main_01", "one_01", "two_fx"]
    assert p.build()["generated"] == 0  # no-op

    guard = tmp_path / "npc" / "guard.toml"
    guard.write_text(guard.read_text().replace("Halt, Xyloth.", "Stop right there."))
    s = p.build()
    assert (s["generated"], s["processed"]) == (1, 1)

    # A new file matching a glob is picked up.
    (tmp_path / "chapters" / "three.toml").write_text('[[music]]\nid = "three_theme"\nprompt = "calm theme"\n'
                                                      'duration = 3\n')
    plan = json.loads(p.run("plan", "--json").stdout)
    assert [(i["id"], i["action"]) for i in plan["items"]] == [("three_theme", "generate")]


def test_problems_name_the_included_file(tmp_path):
    p = _project(tmp_path)
    (tmp_path / "chapters" / "bad.toml").write_text(
        '[project]\nname = "x"\n\n[[dialog]]\nid = "a"\n\n[[dialogue]]\nid = "one_01"\nvoice = "hero"\n'
        'text = "Again."\n\n[[sfx]]\nid = "fx2"\nprompt = "coin"\nloudnes = -20\n')
    proc = p.run("build", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    err = proc.stderr
    assert "chapters/bad.toml: [project] belongs in the main manifest" in err
    assert "chapters/bad.toml: 'dialog' unknown top-level key (did you mean 'dialogue'?)" in err
    assert "chapters/bad.toml: sfx \"fx2\": 'loudnes' unknown key (did you mean 'loudness'?)" in err
    # bad.toml sorts before one.toml, so one.toml's line is the duplicate; both files are named.
    assert ("chapters/one.toml: dialogue \"one_01\": 'id' duplicate id 'one_01' "
            "(also used by dialogue \"one_01\" in chapters/bad.toml;" in err)


def test_cycles_missing_files_and_paths_outside_the_project(tmp_path):
    project = tmp_path / "game"
    project.mkdir()
    p = _project(project)
    (tmp_path / "shared.toml").write_text('[[sfx]]\nid = "shared_fx"\nprompt = "coin"\n')
    (project / "chapters" / "loop.toml").write_text('include = ["../assetbuild.toml", "missing.toml", '
                                                    '"../../shared.toml", "none/*.toml"]\n')
    proc = p.run("plan", check=False)
    assert proc.returncode == 2
    assert "chapters/loop.toml: 'include' forms a cycle: assetbuild.toml -> chapters/loop.toml -> " \
           "assetbuild.toml" in proc.stderr
    assert "'missing.toml': no such file" in proc.stderr
    assert "outside the project (allow it with [project] include_outside_project = true)" in proc.stderr

    (project / "chapters" / "loop.toml").write_text('include = ["../../shared.toml", "none/*.toml"]\n')
    p.edit('name = "split"', 'name = "split"\ninclude_outside_project = true')
    proc = p.run("plan", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "'none/*.toml' matches no files" in proc.stderr  # a warning, not an error
    assert "shared_fx" in proc.stdout


def test_duplicate_voice_across_files(tmp_path):
    p = _project(tmp_path)
    (tmp_path / "chapters" / "voices.toml").write_text('[voices.hero]\nbackend = "espeak"\n')
    proc = p.run("plan", check=False)
    assert proc.returncode == 2
    assert "chapters/voices.toml: [voices.hero]: is also defined in the main manifest" in proc.stderr

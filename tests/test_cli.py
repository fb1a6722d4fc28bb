"""The smaller commands and the backend registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import Project, plugin_site


def test_init_writes_a_manifest_that_builds(tmp_path):
    p = Project(tmp_path, "")
    p.manifest.unlink()
    proc = p.run("init")
    assert proc.returncode == 0 and p.manifest.exists()
    assert (tmp_path / ".assetbuild" / "assetbuild.schema.json").exists()
    assert p.run("init", check=False).returncode == 2  # never overwrites silently
    s = p.build()
    assert s["failed"] == 0 and s["assets"] == 5


def test_plan_text_and_totals(project):
    out = project.run("plan").stdout
    assert "generate  dialogue/line_01: new entry" in out
    assert "5 assets: 5 to generate" in out and "characters of speech" in out
    project.build()
    assert "0 to generate, 0 to re-process" in project.run("plan").stdout


def test_clean_and_gc(project):
    project.build()
    cache = project.root / ".assetbuild" / "cache"
    entries = len(list(cache.glob("process/*/*.json")))
    assert entries == 5
    project.edit("Welcome to the forest.", "Welcome home.")
    project.build()
    assert len(list(cache.glob("process/*/*.json"))) == 6
    proc = project.run("cache", "gc")
    assert proc.returncode == 0 and "removed 2 cache entries" in proc.stdout  # old generate + process
    assert len(list(cache.glob("process/*/*.json"))) == 5
    assert project.build()["generated"] == 0  # everything still referenced is still there

    proc = project.run("clean")
    assert proc.returncode == 0
    assert not list(project.out.rglob("*.wav")) and not (project.out / "assetpack.json").exists()
    s = project.build()
    assert (s["generated"], s["processed"]) == (0, 0)  # restored from cache
    assert len(list(project.out.rglob("*.wav"))) == 5


def test_copy_mode_gives_independent_files(project):
    project.build("--copy")
    out = project.out / "dialogue" / "line_01.wav"
    assert os.stat(out).st_nlink == 1 and os.access(out, os.W_OK)


def test_hardlinked_outputs_are_read_only_cache_files(project):
    project.build()
    out = project.out / "dialogue" / "line_01.wav"
    assert os.stat(out).st_nlink == 2 and not (os.stat(out).st_mode & 0o222)


def test_quiet_and_plain_output(project):
    proc = project.run("build", "-q")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    project.edit("Welcome to the forest.", "Welcome home.")
    proc = project.run("build")
    assert "generated dialogue/line_01.wav" in proc.stderr
    assert "5 assets ready: 1 generated, 4 reused from cache" in proc.stderr


def test_backends_lists_builtins(project):
    rows = json.loads(project.run("backends", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["espeak"]["kinds"] == ["dialogue"] and by_name["espeak"]["available"]
    assert by_name["procedural"]["kinds"] == ["ambience", "music", "sfx"]


def test_third_party_backend_via_entry_point(tmp_path):
    """A backend registered under the `assetbuild.backends` entry-point group is found and used."""
    env = plugin_site(tmp_path, "toybackend", """
        import numpy as np
        from assetbuild.backends.base import Result
        class Toy:
            name = "toy"; kinds = frozenset({"sfx"}); max_batch = 4; parallel = True; settings = ()
            def availability(self): return None
            def fingerprint(self, request): return {"backend": "toy", "version": "1"}
            def load(self): pass
            def unload(self): pass
            def generate(self, requests):
                t = np.arange(4800) / 48000
                return [Result((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48000, {"generator": "sine"})
                        for r in requests]
    """, {"toy": "toybackend:Toy"})
    p = Project(tmp_path, '[[sfx]]\nid = "beep"\nprompt = "beep"\nbackend = "toy"\n')
    proc = p.run("backends", env=env)
    assert "toy" in proc.stdout and "available" in proc.stdout
    proc = p.run("build", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["generated"] == 1
    assert p.pack()["assets"][0]["generator"] == "sine"


def test_python_dash_m_and_version():
    proc = subprocess.run([sys.executable, "-m", "assetbuild", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "assetbuild" in proc.stdout


def test_heavy_backends_run_one_model_at_a_time(tmp_path):
    """Non-parallel backends: grouped per backend, loaded once, unloaded before the next loads."""
    log = tmp_path / "events.log"
    env = plugin_site(tmp_path, "heavy", f"""
        import numpy as np
        from assetbuild.backends.base import Result
        LOG = {str(log)!r}
        def note(line):
            with open(LOG, "a") as f:
                f.write(line + "\\n")
        class A:
            name = "big_a"; kinds = frozenset({{"sfx"}}); max_batch = 2; parallel = False; settings = ()
            def availability(self): return None
            def fingerprint(self, request): return {{"backend": self.name, "model": "m"}}
            def load(self): note("load " + self.name)
            def unload(self): note("unload " + self.name)
            def generate(self, requests):
                note(f"generate {{self.name}} {{len(requests)}}")
                t = np.arange(4800) / 48000
                return [Result((0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 48000) for r in requests]
        class B(A):
            name = "big_b"
    """, {"big_a": "heavy:A", "big_b": "heavy:B"})
    entries = "".join(f'[[sfx]]\nid = "{b}_{i}"\nprompt = "x"\nbackend = "big_{b}"\n' for b in "ab" for i in range(3))
    p = Project(tmp_path, entries)
    proc = p.run("build", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["generated"] == 6
    assert log.read_text().split("\n")[:-1] == [
        "load big_a", "generate big_a 2", "generate big_a 1", "unload big_a",
        "load big_b", "generate big_b 2", "generate big_b 1", "unload big_b"]


def test_unmatched_prompt_still_renders_and_says_so(tmp_path):
    p = Project(tmp_path, '[[ambience]]\nid = "odd"\nprompt = "zxqv plorb"\nduration = 2\n')
    proc = p.run("build", str(p.manifest))
    assert proc.returncode == 0, proc.stderr
    assert "warning   odd: no generator matched" in proc.stderr
    asset = p.pack()["assets"][0]
    assert asset["generator"] and asset["warnings"][0].startswith("no generator matched")

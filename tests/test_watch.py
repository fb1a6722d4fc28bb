"""`assetbuild watch`, driven for real: a subprocess on a temp project, edited while it runs.

Every wait is bounded and returns as soon as what it waits for arrives.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, SMALL, Project

from assetbuild.watch import Targets, _targets, glob_match, input_files

START = 90  # first build: workers start, every asset is generated
STEP = 30  # one rebuild


class Watcher:
    """`assetbuild watch` in a subprocess (own process group); its output lines in queues."""

    def __init__(self, project: Project, *args: str, as_json: bool = True):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        cmd = [sys.executable, "-m", "assetbuild", "watch", str(project.manifest), *(["--json"] if as_json else []),
               "-j", "2", *args]
        self.proc = subprocess.Popen(cmd, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, start_new_session=True)
        self.out: queue.Queue[str | None] = queue.Queue()
        self.err: queue.Queue[str | None] = queue.Queue()
        self.err_lines: list[str] = []
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=_pump, args=(stream, q), daemon=True).start()

    def line(self, timeout: float = STEP) -> dict:
        """The next JSON line."""
        try:
            text = self.out.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout} s; stderr:\n{self.stderr()}") from None
        assert text is not None, f"watch exited ({self.proc.poll()}); stderr:\n{self.stderr()}"
        return json.loads(text)

    def no_line(self, within: float) -> None:
        try:
            text = self.out.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected line: {text}")

    def err_until(self, needle: str, timeout: float = STEP) -> str:
        """stderr lines up to and including the first one containing ``needle``."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                text = self.err.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {needle!r} on stderr within {timeout} s:\n" + "".join(seen)) from None
            assert text is not None, f"watch exited; stderr:\n{''.join(seen)}"
            seen.append(text)
            self.err_lines.append(text)
            if needle in text:
                return "".join(seen)

    def stderr(self) -> str:
        while True:
            try:
                text = self.err.get_nowait()
            except queue.Empty:
                break
            if text is not None:
                self.err_lines.append(text)
        return "".join(self.err_lines)

    def stop(self, sig: int = signal.SIGINT, group: bool = True, timeout: float = 10) -> tuple[int, float]:
        start = time.monotonic()
        if group:
            os.killpg(self.proc.pid, sig)  # what Ctrl-C does: the whole foreground group
        else:
            os.kill(self.proc.pid, sig)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - start

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


def _pump(stream, q: queue.Queue) -> None:
    for text in stream:
        q.put(text)
    q.put(None)


@pytest.fixture
def watching():
    started: list[Watcher] = []

    def start(project: Project, *args: str, as_json: bool = True) -> Watcher:
        w = Watcher(project, *args, as_json=as_json)
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill()


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every output, the lockfile and state: content hash and mtime."""
    files = [p for p in (root / "build").rglob("*") if p.is_file()] + [root / "assetbuild.lock"]
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in files}


def temp_files(root: Path) -> list[Path]:
    left = [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    tmp = root / ".assetbuild" / "cache" / "tmp"
    return left + (list(tmp.iterdir()) if tmp.exists() else [])


def save_atomically(path: Path, text: str) -> None:
    """What editors do: write a temp file (and a backup), rename it over the original."""
    swap = path.with_name(f".{path.name}.swp")
    swap.write_text("swap")
    backup = path.with_name(path.name + "~")
    backup.write_bytes(path.read_bytes())
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    backup.unlink()
    swap.unlink()


def test_edit_rebuilds_exactly_that_line_then_errors_keep_output(tmp_path, watching):
    p = Project(tmp_path)
    w = watching(p)
    first = w.line(START)
    assert first["ok"] and first["trigger"] == [] and first["generated"] == 5 and first["failed"] == 0
    before = snapshot(tmp_path)

    # One line's text: that line alone is generated, every other file stays as it was.
    p.edit("Follow the lanterns.", "Follow the blue lanterns.")
    s = w.line()
    assert s["ok"] and s["trigger"] == ["assetbuild.toml"]
    assert s["generated_ids"] == ["line_02"] and s["changed"] == ["line_02"]
    assert (s["generated"], s["processed"], s["reused"], s["failed"]) == (1, 1, 4, 0)
    after = snapshot(tmp_path)
    changed = {f for f in after if after[f] != before.get(f)}
    assert {f for f in changed if f.endswith(".wav")} == {"build/audio/dialogue/line_02.wav"}
    assert not any("line_01" in f or "wind" in f or "coin" in f for f in changed)
    assert next(a for a in p.pack()["assets"] if a["id"] == "line_02")["text"] == "Follow the blue lanterns."

    # A TOML syntax error, saved the way editors save: one error line, outputs untouched.
    good = p.manifest.read_text()
    before = snapshot(tmp_path)
    save_atomically(p.manifest, good.replace('id = "wind"', 'id = "wind'))
    s = w.line()
    assert s["ok"] is False and s["trigger"] == ["assetbuild.toml"]
    assert any("assetbuild.toml" in e and "TOML" in e for e in s["errors"])
    w.no_line(0.5)  # the save dance gave one rebuild
    # A validation error: reported too.
    p.manifest.write_text(good.replace('prompt = "gentle wind"', 'prompt = "gentle wind"\nloudnes = -20'))
    s = w.line()
    assert s["ok"] is False and any("loudnes" in e and "loudness" in e for e in s["errors"])
    assert snapshot(tmp_path) == before

    # Fixed (with an edit of its own): rebuilt.
    p.manifest.write_text(good.replace("Welcome to the forest.", "Welcome back to the forest."))
    s = w.line()
    assert s["ok"] and s["generated_ids"] == ["line_01"] and s["failed"] == 0

    code, took = w.stop()
    assert code == 0 and took < 5
    assert "Traceback" not in w.stderr()
    assert temp_files(tmp_path) == []


def test_new_include_files_are_picked_up(tmp_path, watching):
    # The glob's folder does not exist yet: creating it, then a file in it, must be noticed.
    p = Project(tmp_path, 'include = ["chapters/**/*.toml"]\n' + SMALL)
    w = watching(p)
    first = w.line(START)
    assert first["ok"] and first["generated"] == 5
    assert any("matches no files" in x for x in first["warnings"])

    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "one.toml").write_text('[[dialogue]]\nid = "ch1_01"\nvoice = "guide"\ntext = "Chapter one."\n')
    s = w.line()
    if s["generated_ids"] == [] and s["ok"]:  # the folder's creation came first: the file is next
        s = w.line()
    assert s["ok"] and s["generated_ids"] == ["ch1_01"], s
    assert (p.out / "dialogue" / "ch1_01.wav").is_file()

    # A second file, in a new sub-folder (the glob is recursive).
    (chapters / "act2").mkdir()
    (chapters / "act2" / "two.toml").write_text('[[sfx]]\nid = "gong"\nprompt = "gong"\n')
    s = w.line()
    while s["ok"] and not s["generated_ids"]:
        s = w.line()
    assert s["generated_ids"] == ["gong"], s

    # An included file edited, then deleted: rebuilt, then its asset removed.
    (chapters / "one.toml").write_text('[[dialogue]]\nid = "ch1_01"\nvoice = "guide"\ntext = "Chapter 1."\n')
    assert w.line()["generated_ids"] == ["ch1_01"]
    (chapters / "one.toml").unlink()
    s = w.line()
    assert s["removed_ids"] == ["ch1_01"] and not (p.out / "dialogue" / "ch1_01.wav").exists()

    # A file the glob does not match, and editor leftovers, are not reasons to rebuild.
    (chapters / "notes.txt").write_text("todo")
    (chapters / ".one.toml.swp").write_text("x")
    w.no_line(0.5)
    assert w.stop()[0] == 0


def test_interrupt_during_a_rebuild_leaves_nothing_half_done(tmp_path, watching):
    p = Project(tmp_path)
    w = watching(p)
    assert w.line(START)["ok"]
    before = snapshot(tmp_path)
    pack = p.pack()
    # A long bed: the rebuild is still running when Ctrl-C comes, in the middle of writing a
    # large file into the cache's temp folder.
    with p.manifest.open("a") as f:
        f.write('\n[[ambience]]\nid = "storm"\nprompt = "heavy rain with thunder"\nduration = 300\n')
    lock = tmp_path / ".assetbuild" / "build.lock"
    cache_tmp = tmp_path / ".assetbuild" / "cache" / "tmp"
    deadline = time.monotonic() + STEP
    while not _locked(lock):  # the rebuild holds the project's lock while it runs
        assert time.monotonic() < deadline, w.stderr()
        time.sleep(0.005)
    while not (cache_tmp.is_dir() and any(cache_tmp.iterdir())):
        assert time.monotonic() < deadline and _locked(lock), w.stderr()
        time.sleep(0.001)
    code, took = w.stop(signal.SIGINT)
    assert code == 0 and took < 5, w.stderr()
    err = w.stderr()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert temp_files(tmp_path) == []
    assert snapshot(tmp_path) == before and p.pack() == pack  # nothing half-finished claimed
    assert not _locked(lock)


def _locked(path: Path) -> bool:
    if not path.exists():
        return False
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def test_human_output_and_sigterm(tmp_path, watching):
    p = Project(tmp_path)
    w = watching(p, as_json=False)
    w.err_until("watching")
    w.err_until("assets ready", START)
    p.edit("Welcome to the forest.", "Welcome home.")
    text = w.err_until("assets ready")
    assert "assetbuild.toml changed: generated line_01" in text and "5 of 5 assets ready" in text
    p.manifest.write_text("[project\n")
    text = w.err_until("error:")
    assert "1 problem" in text and "last good output is unchanged" in text
    code, took = w.stop(signal.SIGTERM, group=False)
    assert code == 0 and took < 5
    err = w.stderr()
    assert "stopped watching" in err and "Traceback" not in err
    assert w.proc.stdout.read() == ""  # human output is on stderr, as for `build`


def test_profile(tmp_path, watching):
    p = Project(tmp_path, SMALL.replace("[voices.guide]", '[profiles.mobile]\noutput = "build/mobile"\n'
                                        'sample_rate = 24000\n\n[voices.guide]'))
    w = watching(p, "--profile", "mobile")
    first = w.line(START)
    assert first["ok"] and first["profile"] == "mobile" and first["output"] == str(tmp_path / "build" / "mobile")
    p.edit("Follow the lanterns.", "Follow the moths.")
    s = w.line()
    assert s["generated_ids"] == ["line_02"] and s["profile"] == "mobile"
    assert (tmp_path / "assetbuild.mobile.lock").is_file() and not (tmp_path / "build" / "audio").exists()
    assert w.stop()[0] == 0


def test_missing_manifest_is_a_usage_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "assetbuild", "watch", str(tmp_path / "nope.toml")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "no such manifest" in proc.stderr and "Traceback" not in proc.stderr


# -- what counts as a change (no subprocess) ------------------------------------------------------

def test_glob_match_agrees_with_glob(tmp_path):
    import glob

    for rel in ["a.toml", "ch/b.toml", "ch/x/c.toml", "ch/.hidden.toml", "ch/.h/d.toml", "ch/e.txt", "ch/f.toml~"]:
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("")
    for pattern in ["*.toml", "ch/*.toml", "ch/**/*.toml", "**/*.toml", "ch/*", "ch/?.toml", "ch/[bc].toml",
                    "ch/*/c.toml"]:
        full = str(tmp_path / pattern)
        expected = {os.path.normpath(m) for m in glob.glob(full, recursive=True) if os.path.isfile(m)}
        got = {str(f) for f in tmp_path.rglob("*") if f.is_file() and glob_match(full, str(f))}
        assert got == expected, pattern


def test_relevant_paths(tmp_path):
    root = str(tmp_path)
    t = _targets({f"{root}/assetbuild.toml", f"{root}/voices/preset.json"}, [f"{root}/chapters/**/*.toml"],
                 [f"{root}/build/audio", f"{root}/.assetbuild"], extra_ignored=[f"{root}/assetbuild.lock"])
    assert isinstance(t, Targets)
    assert t.relevant(f"{root}/assetbuild.toml") and t.relevant(f"{root}/voices/preset.json")
    assert t.relevant(f"{root}/chapters/one.toml") and t.relevant(f"{root}/chapters/a/b/two.toml")
    assert t.relevant(f"{root}/chapters", is_directory=True)  # the glob's folder appears
    assert t.relevant(f"{root}/chapters/a", is_directory=True)
    for path in ["assetbuild.lock", "assetbuild.toml~", ".assetbuild.toml.swp", "4913", "chapters/one.toml~",
                 "chapters/.one.toml.swp", "chapters/x.txt", "build/audio/assetpack.json", ".assetbuild/state.json"]:
        assert not t.relevant(f"{root}/{path}"), path
    assert not t.relevant(f"{root}/build", is_directory=True)
    # chapters/ does not exist: its parent is watched (not recursively); the project folder too.
    assert t.watches == {root: False, f"{root}/voices": False}
    (tmp_path / "chapters").mkdir()
    t = _targets({f"{root}/assetbuild.toml"}, [f"{root}/chapters/**/*.toml", f"{root}/chapters/x/*.toml"], [])
    assert t.watches == {root: False, f"{root}/chapters": True}


def test_input_files_are_the_values_naming_files(tmp_path):
    from assetbuild.manifest import load

    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "guard.json").write_text("{}")
    (tmp_path / "ref.wav").write_bytes(b"")
    p = Project(tmp_path, SMALL)
    m = load(p.manifest)
    assert input_files(m) == set()
    # No built-in backend takes files: pretend one does, through values the loader accepted.
    object.__setattr__(m.assets[0], "settings", {**m.assets[0].settings, "preset": "voices/guard.json"})
    m.voices["guide"] = {**m.voices["guide"], "reference": ["ref.wav", "missing.wav", "https://x.org/a.wav"]}
    assert input_files(m) == {tmp_path / "voices" / "guard.json", tmp_path / "ref.wav"}

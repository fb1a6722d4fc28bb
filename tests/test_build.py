"""End-to-end behaviour of `assetbuild build`: caching, lockfile, failures, kills, determinism."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, Project


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_first_build_writes_every_asset(project):
    s = project.build()
    assert s["failed"] == 0 and s["failures"] == []
    assert s["assets"] == 5 and s["generated"] == 5 and s["processed"] == 5
    pack = project.pack()
    assert pack["schema_version"] == 1
    ids = [a["id"] for a in pack["assets"]]
    assert ids == ["line_01", "line_02", "wind", "coin_01", "coin_02"]
    for a in pack["assets"]:
        path = project.out / a["file"]
        data, sr = sf.read(path, always_2d=True)
        assert sr == 48000 == a["sample_rate"]
        assert data.shape[1] == a["channels"]
        assert abs(len(data) / sr - a["duration"]) < 1e-3
        assert np.abs(data).max() > 0.01  # real audio, not silence
        assert a["sha256"] == sha(path)
        assert a["true_peak"] <= a["true_peak_ceiling"] + 0.1
        for key in ("id", "kind", "file", "loudness", "loop", "backend", "model", "seed"):
            assert key in a
    line = pack["assets"][0]
    assert line["text"] == "Welcome to the forest." and line["speaker"] == "guide" and line["words"]
    wind = pack["assets"][2]
    assert wind["loop"] == {"start": 0, "end": wind["frames"] - 1}
    assert {g["id"]: g["assets"] for g in pack["groups"]} == {"coin": ["coin_01", "coin_02"]}
    lock = json.loads((project.root / "assetbuild.lock").read_text())
    assert sorted(lock["assets"]) == sorted(ids)


def test_incremental_rebuilds(project):
    project.build()
    before = {p.name: sha(p) for p in project.out.rglob("*.wav")}

    s = project.build()
    assert (s["generated"], s["processed"], s["reused"]) == (0, 0, 5)

    project.edit("Follow the lanterns.", "Follow the blue lanterns.")
    plan = json.loads(project.run("plan", "--json").stdout)
    assert [(i["id"], i["action"], i["reasons"]) for i in plan["items"]] == [
        ("line_02", "generate", ["text changed"])]
    s = project.build()
    assert (s["generated"], s["processed"]) == (1, 1)
    after = {p.name: sha(p) for p in project.out.rglob("*.wav")}
    assert [n for n in before if before[n] != after[n]] == ["line_02.wav"]

    project.edit('prompt = "gentle wind"', 'prompt = "gentle wind"\nloudness = -30.0')
    plan = json.loads(project.run("plan", "--json").stdout)
    assert plan["items"][0]["action"] == "process" and plan["items"][0]["reasons"] == ["loudness changed"]
    s = project.build()
    assert (s["generated"], s["processed"]) == (0, 1)
    assert next(a for a in project.pack()["assets"] if a["id"] == "wind")["loudness_target"] == -30.0

    text = project.manifest.read_text()
    project.manifest.write_text(text[:text.index("[[sfx]]")])
    s = project.build()
    assert s["removed"] == 2 and s["generated"] == 0
    assert not (project.out / "sfx" / "coin_01.wav").exists()
    assert [a["id"] for a in project.pack()["assets"]] == ["line_01", "line_02", "wind"]


def test_deleted_output_is_restored_from_cache(project):
    project.build()
    (project.out / "dialogue" / "line_01.wav").unlink()
    s = project.build()
    assert (s["generated"], s["processed"]) == (0, 0)
    assert (project.out / "dialogue" / "line_01.wav").exists()


def test_corrupt_cache_entry_is_rebuilt_not_exported(project):
    project.build()
    cache = project.root / ".assetbuild" / "cache"
    target = project.out / "sfx" / "coin_01.wav"
    blob = cache / "objects" / sha(target)[:2] / sha(target)
    os.chmod(blob, 0o644)
    target.unlink()
    blob.write_bytes(b"garbage")  # same inode as nothing now; the blob is corrupt
    s = project.build()
    assert s["failed"] == 0 and s["processed"] == 1
    data, _ = sf.read(target)
    assert np.abs(data).max() > 0.01
    assert next(a for a in project.pack()["assets"] if a["id"] == "coin_01")["sha256"] == sha(target)


def test_locked(project):
    proc = project.run("build", str(project.manifest), "--locked")
    assert proc.returncode == 1 and "would generate (not in the lockfile)" in proc.stderr
    assert not project.out.exists()
    project.build()
    assert project.build("--locked")["generated"] == 0
    # A cold cache (a fresh CI runner) is fine: the locked keys are built again, to the same bytes.
    lock = (project.root / "assetbuild.lock").read_text()
    shutil.rmtree(project.root / ".assetbuild")
    shutil.rmtree(project.out)
    assert project.build("--locked")["generated"] == 5
    assert (project.root / "assetbuild.lock").read_text() == lock
    project.edit("Welcome to the forest.", "Welcome back.")
    proc = project.run("build", str(project.manifest), "--locked")
    assert proc.returncode == 1 and "line_01" in proc.stderr and "line_02" not in proc.stderr


def test_failing_entry_does_not_stop_others(project):
    project.build()
    old = sha(project.out / "dialogue" / "line_01.wav")
    project.edit('[voices.guide]', '[voices.broken]\nvoice = "xx-nope"\n\n[voices.guide]')
    project.edit('id = "line_01"\nvoice = "guide"', 'id = "line_01"\nvoice = "broken"')
    project.edit('prompt = "gentle wind"', 'prompt = "strong wind"')
    s = project.build(expect=1)
    assert s["failed"] == 1 and s["failures"][0]["id"] == "line_01"
    assert "xx-nope" in s["failures"][0]["error"]
    assert s["generated"] == 1  # the wind was still rebuilt
    assert sha(project.out / "dialogue" / "line_01.wav") == old  # previous output kept
    assert any(a["id"] == "line_01" for a in project.pack()["assets"])


def test_sigkill_midway_then_resume(tmp_path):
    beds = "".join(f'[[ambience]]\nid = "bed_{i:02d}"\nprompt = "heavy rain with thunder"\nduration = 40\n'
                   for i in range(8))
    p = Project(tmp_path, '[project]\nname = "k"\n' + beds)
    proc = subprocess.Popen([sys.executable, "-m", "assetbuild", "build", str(p.manifest), "-q", "-j", "2"],
                            cwd=tmp_path, start_new_session=True)
    cache = tmp_path / ".assetbuild" / "cache" / "generate"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(cache.glob("*/*.json"))) < 2:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(cache.glob("*/*.json")))
    assert 2 <= done_before < 8, "kill came too late to test resuming"
    s = p.build()
    assert s["failed"] == 0 and s["generated"] <= 8 - done_before
    for a in p.pack()["assets"]:
        data, sr = sf.read(p.out / a["file"])
        assert len(data) == 40 * sr and a["sha256"] == sha(p.out / a["file"])
    leftovers = list(tmp_path.rglob("*.tmp"))
    cache_tmp = tmp_path / ".assetbuild" / "cache" / "tmp"
    leftovers += list(cache_tmp.iterdir()) if cache_tmp.exists() else []
    assert leftovers == []


def test_byte_identical_from_scratch(tmp_path):
    outputs = []
    for name in ("a", "b"):
        root = tmp_path / name
        root.mkdir()
        p = Project(root)
        p.build()
        outputs.append({str(f.relative_to(p.out)): sha(f) for f in sorted(p.out.rglob("*")) if f.is_file()})
    assert outputs[0] == outputs[1]


# Records every attempt to import a heavy library, in every process of the build (main and
# workers), whether or not the library is installed here.
IMPORT_SPY = """
import os, sys
HEAVY = {"torch", "transformers", "audiocraft", "elevenlabs", "tensorflow", "jax"}
class _Spy:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            with open(os.environ["ASSETBUILD_IMPORT_LOG"], "a") as f:
                f.write(name + "\\n")
        return None
sys.meta_path.insert(0, _Spy())
"""


def test_core_never_imports_ml_libraries(project, tmp_path_factory):
    spy = tmp_path_factory.mktemp("spy")
    (spy / "sitecustomize.py").write_text(IMPORT_SPY)
    log = spy / "imports.log"
    env = {"PYTHONPATH": str(spy), "ASSETBUILD_IMPORT_LOG": str(log)}
    assert project.run("build", str(project.manifest), "-q", env=env).returncode == 0
    assert project.run("--help", env=env).returncode == 0
    assert project.run("backends", env=env).returncode == 0
    assert not log.exists(), "heavy imports attempted: " + log.read_text()
    # the spy itself works: an attempted import is recorded (whether or not torch is installed)
    subprocess.run([sys.executable, "-c", "import importlib\ntry: importlib.import_module('torch')\nexcept ImportError: pass"],
                   env=dict(os.environ, **env), timeout=60)
    assert log.read_text().split()[0] == "torch"
    proc = subprocess.run([sys.executable, "-c", "import sys\nfrom assetbuild.cli import main\n"
                           "try: main(['--help'])\nexcept SystemExit: pass\n"
                           "assert 'numpy' not in sys.modules, 'numpy imported by --help'"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr


NO_NETWORK = """
import socket
_connect = socket.socket.connect
def _guard(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
        raise OSError("assetbuild test: network access attempted: %r" % (address,))
    return _connect(self, address)
socket.socket.connect = _guard
"""


def test_example_builds_offline(tmp_path):
    import shutil

    shutil.copytree(REPO / "examples" / "forest", tmp_path / "forest")
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK)  # imported by every process, workers too
    p = Project.__new__(Project)
    p.root, p.manifest, p.out = tmp_path / "forest", tmp_path / "forest" / "assetbuild.toml", \
        tmp_path / "forest" / "build" / "audio"
    proc = p.run("build", str(p.manifest), "--json", env={"PYTHONPATH": str(guard)})
    assert proc.returncode == 0 and "network access attempted" not in proc.stderr, proc.stderr
    s = json.loads(proc.stdout)
    assert s["failed"] == 0
    kinds = {a["kind"] for a in p.pack()["assets"]}
    assert kinds == {"dialogue", "ambience", "music", "sfx"}
    for a in p.pack()["assets"]:
        data, _ = sf.read(p.out / a["file"])
        assert np.abs(data).max() > 0.01, a["id"]


def test_edited_lockfile_is_noticed(project):
    """The no-op shortcut reads keys from the state file only while the lockfile is unchanged."""
    project.build()
    lock_path = project.root / "assetbuild.lock"
    lock = json.loads(lock_path.read_text())
    lock["assets"]["wind"]["process"] = "0" * 64  # as if an older lockfile was checked out
    lock_path.write_text(json.dumps(lock, indent=1, sort_keys=True))
    proc = project.run("build", str(project.manifest), "--locked")
    assert proc.returncode == 1 and "wind" in proc.stderr and "line_01" not in proc.stderr
    s = project.build()
    assert (s["generated"], s["processed"]) == (0, 0)
    assert json.loads(lock_path.read_text())["assets"]["wind"]["process"] != "0" * 64
    assert project.build("--locked")["generated"] == 0


@pytest.mark.parametrize("group", [True, False], ids=["ctrl-c", "kill-int-main"])
def test_interrupt_stops_promptly_and_cleanly(tmp_path, group):
    # Beds long enough that waiting for in-flight jobs would take far longer than allowed.
    beds = "".join(f'[[ambience]]\nid = "bed_{i}"\nprompt = "heavy rain"\nduration = 600\n' for i in range(4))
    p = Project(tmp_path, beds)
    proc = subprocess.Popen([sys.executable, "-m", "assetbuild", "build", str(p.manifest), "-j", "2"], cwd=tmp_path,
                            start_new_session=True, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # workers are busy rendering
    if group:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    else:
        os.kill(proc.pid, signal.SIGINT)  # a supervisor stopping just the build
    start = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and time.monotonic() - start < 5
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "interrupted" in err
    assert not list(tmp_path.rglob("*.tmp"))
    assert not (tmp_path / "build" / "audio" / "assetpack.json").exists()  # nothing half-finished claimed

"""The Ray executor (docs/scale.md): a build on a Ray cluster equals a local one byte for byte;
heavy models stay loaded in one actor per (logical) GPU; a killed actor is restarted and its
batch retried. The clusters are real Ray on this machine: a Ray the build starts, and a
two-node `ray.cluster_utils.Cluster` with two logical GPUs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import ray.cluster_utils
from conftest import SMALL, Project, plugin_site

HEAVY = """
import os, time
import numpy as np
from assetbuild.backends.base import BaseBackend, Result

LOG = os.environ["HEAVY_LOG"]

def note(line):
    with open(LOG, "a") as f:
        f.write(f"{line} {os.getpid()}\\n")

class Heavy(BaseBackend):
    name = "heavy"; kinds = frozenset({"sfx"}); max_batch = 2; parallel = False; gpus = 1.0
    deterministic = True
    slow = True  # the first batch of each process takes HEAVY_SECONDS (a window to kill it in)
    def fingerprint(self, request): return {"backend": self.name, "version": 1}
    def load(self): note(f"load {self.name}")
    def generate(self, requests):
        note(f"generate {len(requests)} {self.name}")
        if Heavy.slow:
            Heavy.slow = False
            time.sleep(float(os.environ.get("HEAVY_SECONDS", "0")))
        out = []
        for r in requests:
            t = np.arange(4800) / 48000
            out.append(Result((0.2 * np.sin(2 * np.pi * (200 + r.seed % 400) * t)).astype(np.float32), 48000))
        return out

class Other(Heavy):
    name = "other"
"""

HEAVY_MANIFEST = '[project]\nname = "heavy"\n\n' + "".join(f'[[sfx]]\nid = "hum_{i:02d}"\nprompt = "hum {i}"\nbackend = "heavy"\n\n' for i in range(12))


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "report.html"}


def _project(root: Path, text: str) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    return Project(root, text)


def _ray_home(root: Path) -> dict[str, str]:
    """Ray's processes write under HOME (an auth token) and, without a cluster config there, ask
    cloud metadata servers which cloud they are on: give them a home of their own."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")
    # Every node on loopback: Ray then never takes the network interface's address (which the
    # suite's network guard refuses) for a node or for the address it connects to.
    return {"HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "ASSETBUILD_RAY_SCRATCH": str(root / "scratch")}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two nodes, two logical GPUs on the head; the heavy plugin on every worker's path."""
    root = tmp_path_factory.mktemp("ray")
    env = {**_ray_home(root), **plugin_site(root, "heavyplugin", HEAVY, {"heavy": "heavyplugin:Heavy",
                                                                         "other": "heavyplugin:Other"}),
           "HEAVY_LOG": str(root / "heavy.log")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    c = ray.cluster_utils.Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "num_gpus": 2, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    c.wait_for_nodes()
    try:
        yield c, env
    finally:
        c.shutdown()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _log(env: dict[str, str]) -> list[list[str]]:
    path = Path(env["HEAVY_LOG"])
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_a_build_on_a_ray_of_its_own_equals_a_local_build(tmp_path):
    env = _ray_home(tmp_path)
    here = _project(tmp_path / "local", SMALL)
    here.build()
    p = _project(tmp_path / "ray", SMALL)
    proc = p.run("build", "--json", "--executor", "ray", env=env)
    s = json.loads(proc.stdout)
    assert proc.returncode == 0 and s["failed"] == 0 and s["generated"] == s["assets"]
    assert proc.stderr == ""  # Ray's own chatter stays out of the build's output
    assert _tree(p.out) == _tree(here.out)
    assert (p.root / "assetbuild.lock").read_bytes() == (here.root / "assetbuild.lock").read_bytes()


def test_a_two_node_cluster_build_equals_a_local_build(tmp_path, cluster):
    c, env = cluster
    here = _project(tmp_path / "local", SMALL)
    here.build()
    p = _project(tmp_path / "ray", SMALL.replace('name = "small"', 'name = "small"\n\n[build]\nexecutor = "ray"'))
    s = json.loads(p.run("build", "--json", "--ray-address", c.address, env=env).stdout)
    assert s["failed"] == 0 and _tree(p.out) == _tree(here.out)


def test_heavy_models_load_once_per_gpu_and_stay_loaded(tmp_path, cluster):
    c, env = cluster
    Path(env["HEAVY_LOG"]).unlink(missing_ok=True)
    p = _project(tmp_path / "game", HEAVY_MANIFEST)
    s = json.loads(p.run("build", "--json", "--executor", "ray", "--ray-address", c.address, env=env).stdout)
    assert s["failed"] == 0 and s["generated"] == 12
    log = _log(env)
    loads = [pid for what, *rest, pid in log if what == "load"]
    batches = [(int(rest[0]), pid) for what, *rest, pid in log if what == "generate"]
    assert len(loads) == 2 and len(set(loads)) == 2  # one actor per logical GPU, each loaded once
    assert sum(n for n, _ in batches) == 12 and {pid for _, pid in batches} == set(loads)


def test_a_killed_actor_is_restarted_and_its_batch_retried(tmp_path, cluster):
    c, env = cluster
    Path(env["HEAVY_LOG"]).unlink(missing_ok=True)
    p = _project(tmp_path / "game", HEAVY_MANIFEST)
    killed: list[int] = []

    def kill_first_batch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for what, *_, pid in _log(env):
                if what == "generate":
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                    return
            time.sleep(0.05)

    t = threading.Thread(target=kill_first_batch)
    t.start()
    proc = p.run("build", "--json", "--executor", "ray", "--ray-address", c.address,
                 env={**env, "HEAVY_SECONDS": "5.0"})
    t.join()
    s = json.loads(proc.stdout)
    assert killed and s["failed"] == 0 and s["generated"] == 12, proc.stderr
    loads = [pid for what, *_, pid in _log(env) if what == "load"]
    assert len(loads) == 3 and str(killed[0]) in loads  # the dead one was started again, once
    assert len(set(loads)) == 3
    assert _tree(p.out) == _tree(_built_locally(tmp_path, env))


def _built_locally(tmp_path: Path, env: dict[str, str]) -> Path:
    q = _project(tmp_path / "local", HEAVY_MANIFEST)
    assert q.run("build", "--json", env=env).returncode == 0
    return q.out


def test_with_a_writable_remote_generated_audio_does_not_pass_through_the_driver(tmp_path, cluster):
    c, env = cluster
    shared = tmp_path / "shared"
    p = _project(tmp_path / "game", HEAVY_MANIFEST)
    s = json.loads(p.run("build", "--json", "--ray-address", c.address, "--executor", "ray",
                         "--remote-cache", f"file://{shared}", "--remote-write", env=env).stdout)
    assert s["failed"] == 0 and s["generated"] == 12
    local = p.root / ".assetbuild" / "cache"
    assert not list((local / "generate").rglob("*.json"))  # the actors uploaded it; the driver never had it
    assert len(list((local / "process").rglob("*.json"))) == 12  # the processed files came back to place
    stages = [json.loads(f.read_text())["stage"] for f in (shared / "ac").rglob("*") if f.is_file()]
    assert stages.count("generate") == 12 and stages.count("process") == 12
    assert _tree(p.out) == _tree(_built_locally(tmp_path, env))


def test_two_heavy_backends_take_turns_on_the_gpus(tmp_path, cluster):
    """Each would fill both GPUs with its actors: the second waits for the first to finish and
    free them, instead of both holding some and waiting for the rest for ever."""
    c, env = cluster
    Path(env["HEAVY_LOG"]).unlink(missing_ok=True)
    text = HEAVY_MANIFEST + "".join(f'[[sfx]]\nid = "buzz_{i}"\nprompt = "buzz {i}"\nbackend = "other"\n\n'
                                    for i in range(6))
    p = _project(tmp_path / "game", text)
    proc = p.run("build", "--json", "--executor", "ray", "--ray-address", c.address, env=env, check=False)
    s = json.loads(proc.stdout)
    assert s["failed"] == 0 and s["generated"] == 18
    log = _log(env)
    names = [rest[-1] for what, *rest, _ in log if what in ("load", "generate")]
    first = names[0]
    switch = next(i for i, n in enumerate(names) if n != first)
    assert set(names[switch:]) == {names[switch]}  # one backend's work, then the other's
    assert [what for what, *rest in log if what == "load"].count("load") == 4  # two actors each

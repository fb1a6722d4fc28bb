"""The Ray executor's scaling with a heavy model, beside the local executor, in one run.

    python benchmarks/ray_scaling.py [--items 400] [--gpus 1 2 4] [--load 1.0] [--per-item 0.2]

A fake heavy backend (``parallel = False``, ``gpus = 1``) that takes ``--load`` seconds to load
and ``--per-item`` seconds per item (sleeping, as a GPU-bound model leaves the CPU free)
generates ``--items`` short effects. Each run is a whole `assetbuild build` in a fresh project:
with the local executor (one heavy lane), and with `--executor ray` on a Ray of 2 CPUs and N
logical GPUs (one actor per GPU). Prints seconds, speed-up against 1 GPU (target at least
0.8 x N) and against the local executor. Results go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PLUGIN = """
import os, time
import numpy as np
from assetbuild.backends.base import BaseBackend, Result

class Slow(BaseBackend):
    name = "slow"; kinds = frozenset({"sfx"}); max_batch = 8; parallel = False; gpus = 1.0; deterministic = True
    def fingerprint(self, request): return {"backend": "slow", "version": 1}
    def load(self): time.sleep(float(os.environ["SLOW_LOAD"]))
    def generate(self, requests):
        time.sleep(float(os.environ["SLOW_PER_ITEM"]) * len(requests))
        t = np.arange(2400) / 48000
        return [Result((0.2 * np.sin(2 * np.pi * (200 + r.seed % 500) * t)).astype(np.float32), 48000)
                for r in requests]
"""


def site(root: Path) -> Path:
    dist = root / "slowplugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: slowplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[assetbuild.backends]\nslow = slowplugin:Slow\n")
    (root / "slowplugin.py").write_text(textwrap.dedent(PLUGIN))
    return root


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manifest(n: int) -> str:
    return '[project]\nname = "scale"\n\n' + "".join(
        f'[[sfx]]\nid = "hit_{i:04d}"\nprompt = "hit"\nbackend = "slow"\nseed = {i}\n\n' for i in range(n))


def build(root: Path, n: int, env: dict[str, str], *args: str) -> float:
    project = root / f"p{time.monotonic_ns()}"
    project.mkdir()
    (project / "assetbuild.toml").write_text(manifest(n))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "assetbuild", "build", "--json", *args], cwd=project, env=env,
                          capture_output=True, text=True)
    took = time.perf_counter() - start
    summary = json.loads(proc.stdout)
    assert proc.returncode == 0 and summary["generated"] == n, proc.stderr
    shutil.rmtree(project)
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--load", type=float, default=1.0)
    ap.add_argument("--per-item", type=float, default=0.2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="assetbuild-ray-bench-"))
    home = work / "home"
    home.mkdir()
    (home / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")  # no cloud probing
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site(work / "site")),
                                                                    os.environ.get("PYTHONPATH")])),
           "SLOW_LOAD": str(args.load), "SLOW_PER_ITEM": str(args.per_item), "HOME": str(home),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    result: dict[str, object] = {"items": args.items, "load_s": args.load, "per_item_s": args.per_item}
    try:
        result["local_s"] = round(build(work, args.items, env), 1)
        for gpus in args.gpus:
            port = free_port()
            head = subprocess.run(["ray", "start", "--head", "--num-cpus", "2", "--num-gpus", str(gpus),
                                   "--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--port",
                                   str(port), "--disable-usage-stats"], env=env, capture_output=True, text=True)
            if head.returncode != 0:
                raise SystemExit(head.stdout + head.stderr)
            address = f"127.0.0.1:{port}"
            try:
                result[f"ray_{gpus}_gpus_s"] = round(build(work, args.items, env, "--executor", "ray",
                                                           "--ray-address", address), 1)
            finally:
                subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True)
        one = result.get("ray_1_gpus_s")
        for gpus in args.gpus:
            took = result[f"ray_{gpus}_gpus_s"]
            assert isinstance(took, float)
            if isinstance(one, float):
                result[f"speedup_{gpus}_vs_1"] = round(one / took, 2)
            result[f"speedup_{gpus}_vs_local"] = round(float(result["local_s"]) / took, 2)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""No-op rebuild of a manifest whose lines use a neural backend (``mms``), against the same
manifest on eSpeak, and the first build's model load and generation time.

    python benchmarks/neural_noop.py [--lines 200] [--dir /tmp/assetbuild-neural-bench]

No weights can be downloaded here, so the model is a tiny randomly-initialised VITS of the real
class (the shape the tests use): generation times say nothing about real MMS weights, but the
no-op path (fingerprints, model identity, device choice, licences) is the real one. A no-op
rebuild must not import torch (about 3 s on the 2-core machine). Results go in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORDS = "the old forest lantern traveller road night river stone gate guard king moon fire".split()


def tiny_vits(folder: Path) -> None:
    # The tests' tiny model of the real class (tests/test_tts_hf.py), built the same way.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_tts_hf import _vits

    _vits(folder, 0)


def manifest_text(lines: int, voice: str) -> str:
    out = ['[project]\nname = "bench"\n', voice]
    for i in range(lines):
        words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(4))
        out.append(f'[[dialogue]]\nid = "line_{i:04d}"\nvoice = "narrator"\ntext = "Line {i}, {words}."\n')
    return "\n".join(out)


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--dir", default="/tmp/assetbuild-neural-bench")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    root = Path(args.dir)
    model = root / "tiny-mms"
    if not model.exists():
        tiny_vits(model)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    voices = {"mms": f'[voices.narrator]\nbackend = "mms"\nmodel = "{model}"\n',
              "espeak": '[voices.narrator]\nbackend = "espeak"\n'}
    for name, voice in voices.items():
        project = root / name
        project.mkdir(parents=True, exist_ok=True)
        manifest = project / "assetbuild.toml"
        manifest.write_text(manifest_text(args.lines, voice))
        build = [sys.executable, "-m", "assetbuild", "build", str(manifest), "--json", "-q"]
        first = timed(build, project, env)
        timed(build, project, env)  # warm-up: bytecode cache
        runs = [timed(build, project, env) for _ in range(args.runs)]
        print(f"{name}: {args.lines} lines, first build {first:.1f} s, no-op median {statistics.median(runs):.2f} s "
              f"({', '.join(f'{r:.2f}' for r in runs)})")


if __name__ == "__main__":
    main()

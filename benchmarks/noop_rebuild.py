"""No-op rebuild of a 10,000-entry manifest vs. parsing and validating it.

    python benchmarks/noop_rebuild.py [--entries 10000] [--dir /tmp/assetbuild-bench]

Writes a generated manifest (mostly short dialogue lines, plus sound effects), builds it once
for real (minutes), then times, each as the median of several runs in a fresh process:

- parse+validate: `python -c "assetbuild.manifest.load(...)"`;
- no-op rebuild: `assetbuild build --json -q` with nothing to do.

Target (issue 2): no-op rebuild under 1 s on the 2-core machine and under 3x parse+validate.
Results go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORDS = "the old forest lantern traveller road night river stone gate guard king moon fire".split()


def manifest_text(n: int) -> str:
    lines = ['[project]\nname = "bench"\n\n[voices.guard]\nbackend = "espeak"\nvoice = "en-us"\n']
    for i in range(n):
        if i % 10 == 9:
            lines.append(f'[[sfx]]\nid = "blip_{i:05d}"\nprompt = "ui blip"\nduration = 0.1\n')
        else:
            words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(4))
            lines.append(f'[[dialogue]]\nid = "line_{i:05d}"\nvoice = "guard"\ntext = "Line {i}: {words}."\n')
    return "\n".join(lines)


# As a user runs it: with Python's bytecode cache (some sandboxes set PYTHONDONTWRITEBYTECODE,
# which makes every start compile the modules again).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], cwd: Path, runs: int) -> tuple[float, list[float], str]:
    subprocess.run(cmd, cwd=cwd, capture_output=True, env=ENV)  # warm: writes the bytecode cache
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=ENV)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        out = proc.stdout
    return statistics.median(times), times, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/assetbuild-bench"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    manifest = args.dir / "assetbuild.toml"
    text = manifest_text(args.entries)
    if not manifest.exists() or manifest.read_text() != text:
        manifest.write_text(text)

    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "assetbuild", "build", str(manifest), "--json", "-q"],
                          cwd=args.dir, capture_output=True, text=True)
    first = time.perf_counter() - start
    print(f"first build: {first:.1f} s: {proc.stdout.strip()[:200]}", file=sys.stderr)

    parse_cmd = [sys.executable, "-c", f"from assetbuild.manifest import load; load({str(manifest)!r})"]
    parse, parse_runs, _ = timed(parse_cmd, args.dir, args.runs)
    noop_cmd = [sys.executable, "-m", "assetbuild", "build", str(manifest), "--json", "-q"]
    noop, noop_runs, out = timed(noop_cmd, args.dir, args.runs)
    summary = json.loads(out)
    assert summary["generated"] == 0 and summary["processed"] == 0, summary

    result = {
        "entries": args.entries,
        "manifest_bytes": len(text.encode()),
        "first_build_s": round(first, 1),
        "parse_validate_s": round(parse, 3),
        "noop_rebuild_s": round(noop, 3),
        "ratio": round(noop / parse, 2),
        "parse_runs": [round(t, 3) for t in parse_runs],
        "noop_runs": [round(t, 3) for t in noop_runs],
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

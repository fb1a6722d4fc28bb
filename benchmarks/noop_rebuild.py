"""No-op rebuild of a 10,000-entry manifest vs. parsing and validating it.

    python benchmarks/noop_rebuild.py [--entries 10000] [--dir /tmp/assetbuild-bench]
                                      [--peer-source DIR]

Writes a generated manifest (mostly short dialogue lines, plus sound effects), builds it once
for real (minutes), then times, each as the median of several runs in a fresh process:

- parse+validate: `python -c "assetbuild.manifest.load(...)"`;
- no-op rebuild: `assetbuild build --json -q` with nothing to do.

Target (issue 2): no-op rebuild under 1 s on the 2-core machine and under 3x parse+validate.
Results go in docs/performance.md.

``--peer-source DIR``: also time another assetbuild source tree (a checkout of an earlier
commit, say ``git worktree add /tmp/old HEAD~1``) on its own copy of the same project, the two
no-ops alternating run by run so both see the same machine.
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


def timed(cmd: list[str], cwd: Path, runs: int, env: dict[str, str] | None = None) -> tuple[float, list[float], str]:
    env = env or ENV
    subprocess.run(cmd, cwd=cwd, capture_output=True, env=env)  # warm: writes the bytecode cache
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        out = proc.stdout
    return statistics.median(times), times, out


def first_build(manifest: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "assetbuild", "build", str(manifest), "--json", "-q"],
                          cwd=manifest.parent, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, proc.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/assetbuild-bench"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--peer-source", type=Path, help="another assetbuild source tree to time beside this one")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    manifest = args.dir / "assetbuild.toml"
    text = manifest_text(args.entries)
    if not manifest.exists() or manifest.read_text() != text:
        manifest.write_text(text)

    first, out = first_build(manifest, ENV)
    print(f"first build: {first:.1f} s: {out[:200]}", file=sys.stderr)
    peer_env, peer_manifest = None, None
    if args.peer_source:
        peer_env = dict(ENV, PYTHONPATH=os.pathsep.join(filter(None, [str(args.peer_source.resolve()),
                                                                       ENV.get("PYTHONPATH")])))
        peer_dir = args.dir.with_name(args.dir.name + "-peer")
        peer_dir.mkdir(parents=True, exist_ok=True)
        peer_manifest = peer_dir / "assetbuild.toml"
        if not peer_manifest.exists() or peer_manifest.read_text() != text:
            peer_manifest.write_text(text)
        peer_first, out = first_build(peer_manifest, peer_env)
        print(f"peer first build: {peer_first:.1f} s: {out[:200]}", file=sys.stderr)

    parse_cmd = [sys.executable, "-c", f"from assetbuild.manifest import load; load({str(manifest)!r})"]
    parse, parse_runs, _ = timed(parse_cmd, args.dir, args.runs)
    noop_cmd = [sys.executable, "-m", "assetbuild", "build", str(manifest), "--json", "-q"]
    if peer_manifest is not None and peer_env is not None:
        peer_cmd = [sys.executable, "-m", "assetbuild", "build", str(peer_manifest), "--json", "-q"]
        noop_runs, peer_runs = [], []
        for _ in range(args.runs):  # alternating, so that both see the same machine
            noop_runs += timed(noop_cmd, args.dir, 1)[1]
            peer_runs += timed(peer_cmd, peer_manifest.parent, 1, peer_env)[1]
        noop, out = statistics.median(noop_runs), timed(noop_cmd, args.dir, 1)[2]
    else:
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
    if peer_manifest is not None:
        result.update(peer_source=str(args.peer_source), peer_noop_rebuild_s=round(statistics.median(peer_runs), 3),
                      peer_noop_runs=[round(t, 3) for t in peer_runs])
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

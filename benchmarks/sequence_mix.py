"""Mixing speed of a sequence: a 3-minute, 48 kHz stereo timeline with 50 events.

    python benchmarks/sequence_mix.py

Two looped beds (music, ambience) for the whole length, 24 dialogue lines (ducking the beds)
and 24 short effects, mixed by ``audio.mix.mix`` into stems and the pre-limiter mix. Prints the
best of three runs after a warm-up (the first run touches ~700 MB of fresh memory). Results go
in docs/performance.md.
"""

from __future__ import annotations

import time

import numpy as np

from assetbuild.audio.cleanup import loop_crossfade
from assetbuild.audio.mix import Source, mix
from assetbuild.timeline import Event, Placed

SR = 48000


def noise(seconds: float, channels: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((int(seconds * SR), channels)) * 0.1
    return a[:, 0] if channels == 1 else a


def place(name, asset, start, length, **kw) -> Placed:
    return Placed(Event(name, asset, at=start, **kw), start, start + length)


def main() -> None:
    rng = np.random.default_rng(0)
    sources = {"music": Source(loop_crossfade(noise(8.0, 2, 1), SR, 0.5)),
               "amb": Source(loop_crossfade(noise(6.0, 2, 2), SR, 0.5)),
               "line": Source(noise(4.0, 1, 3)), "sfx": Source(noise(0.8, 2, 4))}
    placed = [place("music", "music", 0.0, 180.0, duration=180.0, bus="music", fade_in=2.0, fade_out=5.0),
              place("amb", "amb", 0.0, 180.0, duration=180.0, bus="ambience", pan=-0.2)]
    placed += [place(f"line{k}", "line", 7.0 * k + 1.0, 4.0, bus="dialogue") for k in range(24)]
    placed += [place(f"sfx{k}", "sfx", float(rng.uniform(0, 179)), 0.8, gain=-3.0,
                     pan=float(rng.uniform(-1, 1))) for k in range(24)]
    mix(placed, sources, SR)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        mix(placed, sources, SR)
        best = min(best, time.perf_counter() - t0)
    print(f"3 min stereo, 50 events: {best:.2f} s ({180 / best:.0f}x realtime)")


if __name__ == "__main__":
    main()

"""`assetbuild serve` under load on loopback: synthesis latency, throughput, time to first audio.

    python benchmarks/server_load.py [--requests 200] [--clients 8] [--streams 20] [--lines 20]
                                     [--jobs 0] [--dir /tmp/assetbuild-serve-bench]

Writes a project of ``--lines`` dialogue lines (embedded `espeak` backend), starts
`assetbuild serve` on it (a fresh cache, a free loopback port, ``-j`` workers; 0: the server's
default) and waits for ``/health``. After a warm-up (one request per client, texts not used
again) and ``--single`` requests from one client (latency without contention), three
measurements:

1. **generated**: ``--requests`` `POST /tts/synthesize` requests with distinct texts (so each
   is a real synthesis, nothing from the cache), WAV, sent by ``--clients`` concurrent clients
   (asyncio + httpx, one connection each), each client sending its next request as soon as the
   last one is answered;
2. **cached**: the same requests again (now cache hits: ``X-Cache: hit``);
3. **stream**: ``--streams`` WebSocket `/tts/stream` sessions one after another (PCM 24 kHz),
   each timed from sending its first text chunk (a complete sentence and the start of the
   next) to receiving the first audio message; distinct texts, so nothing is cached.

Latency is per request, from sending it to having the whole response (client side). Any
non-200 answer, transport error, or stream error message counts as an error. Prints JSON.
Results go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
WORDS = ("the old forest lantern traveller road night river stone gate guard king moon fire bridge "
         "tower bell morning winter harbour").split()


def manifest_text(lines: int) -> str:
    parts = ['[project]\nname = "servebench"\n\n[voices.guard]\nbackend = "espeak"\nvoice = "en-us"\n']
    for i in range(lines):
        text = f"Line {i}: " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(6)) + "."
        parts.append(f'[[dialogue]]\nid = "line_{i:03d}"\nvoice = "guard"\ntext = "{text}"\n')
    return "\n".join(parts)


def sentence(tag: str, i: int) -> str:
    """A distinct line of about 8 words (a second or two of speech)."""
    words = " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(6))
    return f"{tag} {i}: {words}."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else [values[0]] * 99
    return {"p50": round(q[49], 4), "p95": round(q[94], 4), "max": round(max(values), 4),
            "mean": round(statistics.fmean(values), 4)}


async def load(url: str, bodies: list[dict], clients: int) -> dict:
    """``bodies`` through ``clients`` concurrent clients; latency per request, and the totals."""
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    processing: list[float] = []
    statuses: dict[str, int] = {}
    cache: dict[str, int] = {}
    errors: list[str] = []

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120.0) as http:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                begun = time.perf_counter()
                try:
                    r = await http.post("/tts/synthesize", json=body)
                    await r.aread()
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - begun)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                if r.status_code != 200 or r.content[:4] != b"RIFF":
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                    continue
                cache[r.headers["x-cache"]] = cache.get(r.headers["x-cache"], 0) + 1
                processing.append(float(r.headers["x-processing-time"]))

    begun = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - begun
    return {"requests": len(bodies), "clients": clients, "errors": len(errors), "error_samples": errors[:5],
            "statuses": statuses, "cache": cache, "seconds": round(wall, 3),
            "throughput_rps": round(len(bodies) / wall, 2), "latency_s": percentiles(latencies),
            "server_processing_s": percentiles(processing)}


async def streams(url: str, n: int, rate: int) -> dict:
    ws_url = url.replace("http://", "ws://", 1) + "/tts/stream"
    ttfa: list[float] = []
    connect_ttfa: list[float] = []
    first_audio_s: list[float] = []
    totals: list[float] = []
    errors: list[str] = []
    for i in range(n):
        first_text = sentence("Stream", i) + " And then"  # the first sentence is complete: spoken at once
        rest = [" the " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(5)) + ".", ""]
        try:
            opened = time.perf_counter()
            async with connect(ws_url, open_timeout=60) as ws:
                await ws.send(json.dumps({"text": " ", "voice": "guard", "output_format": f"pcm_{rate}"}))
                sent = time.perf_counter()
                await ws.send(json.dumps({"text": first_text}))
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if "error" in message or message.get("isFinal"):
                        raise RuntimeError(f"no audio first: {message}")
                    if message.get("audio"):
                        break
                now = time.perf_counter()
                ttfa.append(now - sent)
                connect_ttfa.append(now - opened)
                first_audio_s.append(len(message["audio"]) * 3 / 4 / 2 / rate)  # base64 -> s16 mono
                for chunk in rest:
                    await ws.send(json.dumps({"text": chunk}))
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if "error" in message:
                        raise RuntimeError(f"stream error: {message}")
                    if message.get("isFinal"):
                        break
                totals.append(time.perf_counter() - sent)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    return {"streams": n, "errors": len(errors), "error_samples": errors[:5], "output_format": f"pcm_{rate}",
            "first_audio_from_first_text_s": percentiles(ttfa),
            "first_audio_from_connect_s": percentiles(connect_ttfa),
            "first_message_audio_s": percentiles(first_audio_s),
            "whole_stream_from_first_text_s": percentiles(totals)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--single", type=int, default=20, help="requests from one client, for the latency alone")
    ap.add_argument("--lines", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=0, help="server worker processes (0: its default)")
    ap.add_argument("--rate", type=int, default=24000, help="stream output sample rate")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/assetbuild-serve-bench"))
    args = ap.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    manifest = args.dir / "assetbuild.toml"
    manifest.write_text(manifest_text(args.lines))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.pop("ASSETBUILD_TOKEN", None)
    cmd = [sys.executable, "-m", "assetbuild", "serve", str(manifest), "--port", str(port),
           "--cache-dir", str(args.dir / "cache")] + (["-j", str(args.jobs)] if args.jobs else [])
    log = open(args.dir / "serve.log", "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        started = time.perf_counter()
        while True:
            if server.poll() is not None:
                sys.exit(f"the server exited ({server.returncode}); see {args.dir / 'serve.log'}")
            try:
                health = httpx.get(url + "/health", timeout=5).json()
                break
            except httpx.TransportError:
                if time.perf_counter() - started > 120:
                    sys.exit("the server did not start in 120 s")
                time.sleep(0.1)
        startup = time.perf_counter() - started

        warm = [{"text": sentence("Warm", i), "voice": "guard"} for i in range(args.clients)]
        bodies = [{"text": sentence("Request", i), "voice": "guard"} for i in range(args.requests)]
        alone = [{"text": sentence("Alone", i), "voice": "guard"} for i in range(args.single)]
        assert len({b["text"] for b in bodies}) == len(bodies)

        async def run() -> dict:
            warmup = await load(url, warm, args.clients)
            single = await load(url, alone, 1)
            generated = await load(url, bodies, args.clients)
            cached = await load(url, bodies, args.clients)
            stream = await streams(url, args.streams, args.rate)
            return {"warmup": {k: warmup[k] for k in ("requests", "errors", "seconds")},
                    "single_client": single, "generated": generated, "cached": cached, "stream": stream}

        results = asyncio.run(run())
        after = httpx.get(url + "/health", timeout=10).json()
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    out = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                       "python": platform.python_version(), "system": platform.platform(),
                       "load_average": [round(x, 2) for x in os.getloadavg()]},
           "server": {"workers": health["workers"], "startup_s": round(startup, 2),
                      "health_after": after["status"], "queue_depth_after": after["queue_depth"]},
           **results}
    print(json.dumps(out, indent=2))
    failed = results["generated"]["errors"] + results["cached"]["errors"] + results["stream"]["errors"]
    sys.exit(1 if failed or after["status"] != "ok" else 0)


if __name__ == "__main__":
    main()

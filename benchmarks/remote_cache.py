"""The remote cache on loopback S3 (moto's server), beside a local-only no-op of the same project.

    python benchmarks/remote_cache.py [--assets 1000] [--keys 10000] [--runs 3]

Measures, in one run:

- deciding hits: `Remote.which` (one listing per key prefix, in parallel) for ``--assets`` and
  ``--keys`` keys, beside asking one key at a time (a HEAD each, what a naive client does);
- `assetbuild plan` in a fresh checkout that finds every asset in the remote cache;
- `assetbuild build` in a fresh checkout fetching every asset (``--assets`` short effects);
- `assetbuild build` with nothing to do (a local no-op) of the same project.

Needs the test extra (moto, s3fs). Results go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assetbuild.pipeline.remote import Remote, RemoteSpec  # noqa: E402

AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_EC2_METADATA_DISABLED": "true"}


def manifest(n: int) -> str:
    return '[project]\nname = "bench"\n\n' + "".join(
        f'[[sfx]]\nid = "blip_{i:05d}"\nprompt = "ui blip"\nduration = 0.1\nseed = {i}\n\n' for i in range(n))


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "assetbuild", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return took, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    import fsspec
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(AWS)
    env = {**os.environ, **AWS, "AWS_ENDPOINT_URL": endpoint}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    fs = fsspec.filesystem("s3", endpoint_url=endpoint)
    fs.mkdir("bench")
    url = "s3://bench/cache"
    work = Path(tempfile.mkdtemp(prefix="assetbuild-remote-bench-"))
    result: dict[str, object] = {"assets": args.assets, "keys": args.keys}
    try:
        # A remote with --keys entries (synthetic: only their names matter for deciding hits).
        spec = RemoteSpec(url, {"endpoint_url": endpoint}, write=True)
        remote = Remote(spec)
        keys = [hashlib.sha256(f"k{i}".encode()).hexdigest() for i in range(args.keys)]
        remote.map(lambda k: fs.pipe_file(f"bench/cache/ac/{k[:2]}/{k}", b"{}"), keys)
        for n in (args.assets, args.keys):
            times = []
            for _ in range(args.runs):
                fresh = Remote(RemoteSpec(url, {"endpoint_url": endpoint}))
                start = time.perf_counter()
                assert len(fresh.which(keys[:n])) == n
                times.append(time.perf_counter() - start)
                fresh.close()
            result[f"decide_{n}_s"] = round(statistics.median(times), 3)
        start = time.perf_counter()
        assert sum(fs.exists(f"bench/cache/ac/{k[:2]}/{k}") for k in keys[:args.assets]) == args.assets
        result[f"head_per_key_{args.assets}_s"] = round(time.perf_counter() - start, 3)
        remote.close()

        # A real project: CI builds and uploads; a fresh checkout plans and fetches it all.
        ci = work / "ci"
        ci.mkdir()
        (ci / "assetbuild.toml").write_text(manifest(args.assets))
        took, out = run(["build", "--json", "--remote-cache", url, "--remote-write"], ci, env)
        result["first_build_and_upload_s"] = round(took, 1)
        plans, fetches, noops = [], [], []
        for n in range(args.runs):
            laptop = work / f"laptop{n}"
            laptop.mkdir()
            (laptop / "assetbuild.toml").write_text(manifest(args.assets))
            took, out = run(["plan", "--json", "--remote-cache", url], laptop, env)
            assert json.loads(out)["totals"]["fetch"] == args.assets
            plans.append(took)
            took, out = run(["build", "--json", "--remote-cache", url], laptop, env)
            s = json.loads(out)
            assert (s["generated"], s["fetched"]) == (0, args.assets), s
            fetches.append(took)
            result["fetched_bytes"] = s["fetched_bytes"]
            took, _ = run(["build", "--json", "--remote-cache", url], ci, env)  # local no-op, same run
            noops.append(took)
            shutil.rmtree(laptop)
        result.update(plan_fetch_all_s=round(statistics.median(plans), 3),
                      build_fetch_all_s=round(statistics.median(fetches), 3),
                      local_noop_s=round(statistics.median(noops), 3),
                      plan_runs=[round(t, 3) for t in plans], fetch_runs=[round(t, 3) for t in fetches],
                      noop_runs=[round(t, 3) for t in noops])
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

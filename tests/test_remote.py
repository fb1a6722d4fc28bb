"""The team's remote cache (docs/scale.md): S3 through moto's server on loopback, a shared
folder through file://; two checkouts of one project share what the first built."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from pathlib import Path

import fsspec
import pytest
from conftest import SMALL, Project, plugin_site
from moto.server import ThreadedMotoServer

from assetbuild.manifest import load
from assetbuild.pipeline.cache import Cache
from assetbuild.pipeline.remote import Remote, RemoteSpec
from assetbuild.pipeline.run import Options, build

# Credentials the tests give the S3 client: the secret must never be written anywhere.
SECRET = "s3cr3t-" + hashlib.sha256(b"assetbuild remote test").hexdigest()[:16]
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_EC2_METADATA_DISABLED": "true"}


@contextlib.contextmanager
def s3_server():
    """An S3 endpoint on loopback, with the test credentials in the environment meanwhile:
    yields (its URL, a function that stops it early)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in AWS}
    os.environ.update(AWS)
    stopped: list[bool] = []

    def stop() -> None:
        if not stopped:
            server.stop()
            stopped.append(True)

    try:
        yield f"http://{host}:{port}", stop
    finally:
        stop()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def moto():
    """An S3 endpoint on loopback; yields its URL. Each test gets its own bucket."""
    with s3_server() as (url, _):
        yield url


_buckets = iter(range(10_000))


@pytest.fixture
def bucket(moto):
    name = f"team-{next(_buckets)}"
    fsspec.filesystem("s3", endpoint_url=moto, skip_instance_cache=True).mkdir(name)
    return f"s3://{name}/audio-cache"


def _env(moto: str) -> dict[str, str]:
    return {**AWS, "AWS_ENDPOINT_URL": moto}


def _project(root: Path, text: str = SMALL) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    return Project(root, text)


def _build(p: Project, *args: str, env: dict[str, str] | None = None) -> dict:
    proc = p.run("build", "--json", *args, env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def _checkouts(tmp_path: Path, text: str = SMALL) -> tuple[Project, Project]:
    return _project(tmp_path / "laptop", text), _project(tmp_path / "ci", text)


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "report.html"}


def test_a_second_checkout_fetches_everything_the_first_uploaded(tmp_path, moto, bucket):
    ci, laptop = _checkouts(tmp_path)
    env = _env(moto)
    first = json.loads(ci.run("build", "--json", "--remote-cache", bucket, "--remote-write", env=env).stdout)
    assert first["generated"] > 0 and first["uploaded"] >= 2 * first["assets"] - 1 and first["warnings"] == []

    plan = json.loads(laptop.run("plan", "--json", "--remote-cache", bucket, env=env).stdout)
    assert {i["action"] for i in plan["items"]} == {"fetch"}
    assert plan["totals"]["fetch"] == first["assets"] and plan["totals"]["fetch_bytes"] > 10_000
    assert plan["totals"]["avoided_characters"] == len("Welcome to the forest.") + len("Follow the lanterns.")
    text = laptop.run("plan", "--remote-cache", bucket, env=env).stdout
    assert "fetch     dialogue/line_01: new entry, in the remote cache" in text
    assert f"from the remote cache: {first['assets']} to fetch" in text

    second = json.loads(laptop.run("build", "--json", "--remote-cache", bucket, env=env).stdout)
    assert (second["generated"], second["processed"], second["fetched"]) == (0, 0, first["assets"])
    assert second["fetched_bytes"] > 10_000 and second["uploaded"] == 0  # read only by default
    assert _tree(laptop.out) == _tree(ci.out)
    assert (laptop.root / "assetbuild.lock").read_bytes() == (ci.root / "assetbuild.lock").read_bytes()
    assert laptop.build()["reused"] == first["assets"]  # and now it is all local: a no-op


def test_a_shared_folder_and_the_manifests_cache_table(tmp_path):
    remote = tmp_path / "shared"
    text = f'[cache]\nremote = "file://{remote}"\nremote_write = true\n\n' + SMALL
    a, b = _checkouts(tmp_path, text)
    assert a.build()["uploaded"] > 0
    assert not any(p.name.endswith(".tmp") for p in remote.rglob("*"))
    (b.root / "assetbuild.toml").write_text(text.replace("remote_write = true", "remote_write = false"))
    s = b.build()
    assert (s["generated"], s["fetched"]) == (0, s["assets"])
    assert b.build("--no-remote")["fetched"] == 0  # fresh: nothing to fetch, and no remote asked


def test_a_changed_setting_fetches_the_generated_audio_and_processes_it(tmp_path):
    remote = f"file://{tmp_path / 'shared'}"
    a, b = _checkouts(tmp_path)
    a.build("--remote-cache", remote, "--remote-write")
    b.edit('text = "Welcome to the forest."', 'text = "Welcome to the forest."\nloudness = -18.0')
    a.edit('text = "Welcome to the forest."', 'text = "Welcome to the forest."\nloudness = -18.0')
    plan = json.loads(b.run("plan", "--json", "--remote-cache", remote).stdout)
    line = next(i for i in plan["items"] if i["id"] == "line_01")
    assert line["action"] == "process" and "generated audio in the remote cache" in line["reasons"]
    s = b.build("--remote-cache", remote)
    assert s["generated"] == 0 and s["processed"] == 1 and s["fetched"] == s["assets"]
    a.build("--remote-cache", remote)
    assert _tree(a.out) == _tree(b.out)


def _remote_entries(remote: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in (remote / "ac").rglob("*") if p.is_file()}


def _flip(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return bytes(data)


def _a_line_broken_on_the_remote(tmp_path: Path) -> tuple[Project, Project, Path, dict, dict, bytes]:
    """Two checkouts; the first filled a shared folder, where a dialogue line's processed file
    then lost a bit. Returns (first, second, folder, remote entries, the line's entry, bad bytes)."""
    shared = tmp_path / "shared"
    a, b = _checkouts(tmp_path)
    a.build("--remote-cache", f"file://{shared}", "--remote-write")
    entries = _remote_entries(shared)
    line = next(e for e in entries.values() if e["stage"] == "process" and e["record"].get("text"))
    return a, b, shared, entries, line, _flip(shared / "cas" / line["file"][:2] / line["file"])


def test_a_corrupt_or_missing_remote_blob_is_a_miss_never_an_output(tmp_path):
    a, b, shared, entries, line, bad = _a_line_broken_on_the_remote(tmp_path)
    proc = b.run("build", "--json", "--remote-cache", f"file://{shared}")
    s = json.loads(proc.stdout)
    # Processed again here from its generated audio, which the remote has intact.
    assert (s["failed"], s["generated"], s["processed"], s["fetched"]) == (0, 0, 1, s["assets"])
    assert any("does not match its sha256" in w for w in s["warnings"])
    assert "warning: remote cache blob" in proc.stderr
    assert _tree(b.out) == _tree(a.out)  # the right file, never the corrupt one
    assert all(p.read_bytes() != bad for p in b.out.rglob("*.wav"))

    # Its generated audio gone too, and another entry truncated: made here, the rest fetched.
    locked = json.loads((a.root / "assetbuild.lock").read_text())["assets"]
    g_key = next(e["generate"] for e in locked.values() if e["process"] == line["key"])
    generated = entries[g_key]
    (shared / "cas" / generated["audio"][:2] / generated["audio"]).unlink()
    other = next(k for k, e in entries.items() if e["stage"] == "process" and e["key"] != line["key"])
    path = shared / "ac" / other[:2] / other
    path.write_bytes(path.read_bytes()[:40])
    c = _project(tmp_path / "third")
    s = c.build("--remote-cache", f"file://{shared}")
    assert s["failed"] == 0 and s["generated"] >= 1
    assert any("corrupt" in w for w in s["warnings"]) and any("which is not there" in w for w in s["warnings"])
    assert _tree(c.out) == _tree(a.out)


def test_an_unreachable_remote_builds_locally_with_one_warning(tmp_path):
    p = Project(tmp_path)
    proc = p.run("build", "--json", "--remote-cache", "s3://nowhere/cache",
                 env={**AWS, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})  # nothing listens on port 9
    s = json.loads(proc.stdout)
    assert proc.returncode == 0 and s["failed"] == 0 and s["generated"] == s["assets"]
    assert len(s["warnings"]) == 1 and "cannot be reached" in s["warnings"][0]
    assert proc.stderr.count("warning: remote cache") == 1

    p2 = _project(tmp_path / "strict")
    proc = p2.run("build", "--remote-cache", "s3://nowhere/cache", "--require-remote", check=False,
                  env={**AWS, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: remote cache s3://nowhere/cache cannot be reached")
    proc = p2.run("build", "--require-remote", check=False)
    assert proc.returncode == 2 and "--require-remote: no remote cache is set" in proc.stderr


def test_a_remote_that_goes_away_mid_build_ends_in_a_complete_local_build(tmp_path):
    with s3_server() as (endpoint, stop):
        fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True).mkdir("gone")
        spec = RemoteSpec("s3://gone/c", {"endpoint_url": endpoint}, write=True)
        first = _project(tmp_path / "first")
        build(load(first.manifest), Options(remote=spec))
        second = _project(tmp_path / "second", SMALL.replace("Follow the lanterns.", "Follow the lights."))

        def on_event(kind, data):
            if kind == "plan":  # the remote was consulted; now it goes away
                stop()

        result = build(load(second.manifest), Options(remote=spec), on_event)
    s = result.summary()
    assert s["failed"] == 0 and s["generated"] + s["fetched"] >= s["assets"] - 1
    assert len([w for w in s["warnings"] if "cannot be reached" in w]) == 1
    assert (second.out / "dialogue" / "line_02.wav").is_file()


def test_two_writers_racing_on_one_key_leave_one_consistent_entry(tmp_path, moto, bucket):
    cache = Cache(tmp_path / "cache")
    sha = cache.put_bytes(b"generated audio")
    entries = []
    for n in range(2):  # two machines made the same key with different metadata
        c = Cache(tmp_path / f"cache{n}")
        c.put_bytes(b"generated audio")
        c.put_entry("generate", "ab" * 32, {"audio": sha, "sample_rate": 48000, "meta": {"who": n}, "blobs": [sha]})
        entries.append(c)
    remotes = [Remote(RemoteSpec(bucket, {"endpoint_url": moto}, write=True)) for _ in range(2)]
    barrier = threading.Barrier(2)

    def push(n):
        barrier.wait()
        remotes[n].push("generate", "ab" * 32, entries[n])

    threads = [threading.Thread(target=push, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.uploaded for r in remotes) == 1  # one won; the other adopted its entry
    reader = Remote(RemoteSpec(bucket, {"endpoint_url": moto}))
    got = Cache(tmp_path / "reader")
    assert reader.fetch("ab" * 32, got) == "generate"
    assert got.get_entry("generate", "ab" * 32)["meta"]["who"] in (0, 1)
    assert got.verified_blob(sha) is not None
    for r in [*remotes, reader]:
        r.close()


def test_credentials_never_reach_a_file_or_the_output(tmp_path, moto, bucket):
    p = Project(tmp_path)
    proc = p.run("build", "--json", "--remote-cache", bucket, "--remote-write", env=_env(moto))
    plan = p.run("plan", "--json", "--remote-cache", bucket, env=_env(moto))
    assert SECRET not in proc.stdout + proc.stderr + plan.stdout + plan.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    remote = fsspec.filesystem("s3", endpoint_url=moto, skip_instance_cache=True)
    for key in remote.find(bucket.removeprefix("s3://")):
        assert SECRET.encode() not in remote.cat_file(key), key

    p.edit("[project]", '[cache.options]\nsecret = "hunter2"\n\n[project]')
    proc = p.run("build", check=False)
    assert proc.returncode == 2 and "'secret' is a credential: set it in the environment" in proc.stderr
    p.edit('[cache.options]\nsecret = "hunter2"\n\n', '[cache]\nremote = "s3://me:pw@bucket/x"\n\n')
    proc = p.run("build", check=False)
    assert proc.returncode == 2 and "has a user or password in it" in proc.stderr and "pw@" not in proc.stderr
    for options, key in (('client_kwargs = { aws_secret_access_key = "x" }', "client_kwargs.aws_secret_access_key"),
                         ('headers = { Authorization = "Bearer x" }', "headers.Authorization"),
                         ('endpoint_url = "https://me:pw@minio.lan"', "endpoint_url")):
        p.manifest.write_text(f"[cache.options]\n{options}\n\n" + SMALL)
        proc = p.run("plan", check=False)
        assert proc.returncode == 2 and f"'{key}' is a credential" in proc.stderr, proc.stderr
    p.manifest.write_text(SMALL)
    proc = p.run("build", "--remote-cache", "https://cdn.lan/cache?sig=abc", check=False)
    assert proc.returncode == 2 and "has a query in it" in proc.stderr


def test_cache_push_pull_and_gc_of_the_remote(tmp_path, moto, bucket):
    env = _env(moto)
    a, b = _checkouts(tmp_path)
    a.build()  # local only
    out = a.run("cache", "push", "--remote-cache", bucket, env=env)
    assert out.returncode == 0 and "pushed" in out.stdout and "0 already there" in out.stdout
    assert "already there" in a.run("cache", "push", "--remote-cache", bucket, env=env).stdout
    (b.root / "assetbuild.lock").write_bytes((a.root / "assetbuild.lock").read_bytes())
    out = b.run("cache", "pull", "--remote-cache", bucket, env=env)
    assert out.returncode == 0 and "pulled" in out.stdout and "0 are in neither cache" in out.stdout
    s = b.build()  # offline from here: everything is local
    assert (s["generated"], s["processed"]) == (0, 0)

    a.edit('prompt = "coin pickup"', 'prompt = "coin pickup, bright"')  # old coin takes: unreferenced
    _build(a, "--remote-cache", bucket, "--remote-write", env=env)
    dry = a.run("cache", "gc", "--remote", "--remote-cache", bucket, "--older-than", "0s", env=env)
    assert dry.returncode == 0 and "would remove" in dry.stdout and "run with --yes" in dry.stdout
    fs = fsspec.filesystem("s3", endpoint_url=moto, skip_instance_cache=True)
    before = len(fs.find(bucket.removeprefix("s3://")))
    assert a.run("cache", "gc", "--remote", "--remote-cache", bucket, "--older-than", "30d", "--yes",
                 env=env).stdout.startswith("removed 0 entries and 0 blobs")  # nothing that old
    done = a.run("cache", "gc", "--remote", "--remote-cache", bucket, "--older-than", "0s", "--yes", env=env)
    assert done.stdout.startswith("removed ") and len(fs.find(bucket.removeprefix("s3://"))) < before
    c = _project(tmp_path / "after-gc", a.manifest.read_text())
    s = _build(c, "--remote-cache", bucket, env=env)
    assert (s["generated"], s["fetched"]) == (0, s["assets"])  # what the lockfile names survived
    bad = a.run("cache", "gc", "--remote", "--remote-cache", bucket, "--lock", str(tmp_path / "nope.lock"),
                check=False, env=env)
    assert bad.returncode == 2 and "no such lockfile" in bad.stderr


def test_max_characters_counts_only_what_the_remote_does_not_have(tmp_path):
    """A paid service's lines that the team cache has are not billed again, and do not count
    against --max-characters."""
    from test_models import MANIFEST, PLUGIN

    env = plugin_site(tmp_path, "paidplugin", PLUGIN, {"paid": "paidplugin:Paid"})
    env["BATCH_LOG"] = str(tmp_path / "batches.log")
    remote = f"file://{tmp_path / 'shared'}"
    a, b = _checkouts(tmp_path, MANIFEST.format(batch=""))
    first = json.loads(a.run("build", "--json", "--remote-cache", remote, "--remote-write", env=env).stdout)
    assert first["billed_characters"] > 0
    refused = b.run("build", "--max-characters", "0", check=False, env=env)
    assert refused.returncode == 2 and "--max-characters 0: this build would bill" in refused.stderr
    proc = b.run("build", "--json", "--remote-cache", remote, "--max-characters", "0", env=env)
    s = json.loads(proc.stdout)
    assert proc.returncode == 0 and s["billed_characters"] == 0 and s["fetched"] == s["assets"]


TAKES = """
import numpy as np
from assetbuild.backends.base import BaseBackend, Result

class Take(BaseBackend):
    # Like a neural model on a GPU or a web service: every run is a new take.
    name = "take"; kinds = frozenset({"sfx"}); max_batch = 4; parallel = True; deterministic = False
    def fingerprint(self, request): return {"backend": self.name, "version": 1}
    def generate(self, requests):
        rng = np.random.default_rng()  # not seeded: not reproducible
        return [Result((0.2 * rng.standard_normal(4800)).astype(np.float32), 48000) for r in requests]

class Liar(Take):
    # Says it reproduces its takes, and does not.
    name = "liar"; deterministic = True
"""

LOCKED = """\
[[sfx]]
id = "roar"
prompt = "a roar"
backend = "take"

[[sfx]]
id = "boom"
prompt = "a boom"
backend = "liar"

[[sfx]]
id = "coin"
prompt = "coin pickup"
"""


def test_locked_takes_are_never_replaced_by_new_ones(tmp_path):
    env = plugin_site(tmp_path, "takes", TAKES, {"take": "takes:Take", "liar": "takes:Liar"})
    laptop = _project(tmp_path / "laptop", LOCKED)
    _build(laptop, env=env)
    ci = _project(tmp_path / "ci", LOCKED)  # a fresh checkout with the committed lockfile, no caches
    (ci.root / "assetbuild.lock").write_bytes((laptop.root / "assetbuild.lock").read_bytes())
    proc = ci.run("build", "--json", "--locked", env=env, check=False)
    s = json.loads(proc.stdout)
    assert proc.returncode == 1 and s["failed"] == 2
    errors = {f["id"]: f["error"] for f in s["failures"]}
    assert errors["roar"] == ("locked take not in any cache: pull it (`assetbuild cache pull`) or rebuild "
                              "without --locked")
    assert errors["boom"].startswith("made again, it differs from the locked take (sha256 ")
    assert s["generated"] == 2  # boom (made, then refused) and coin; never roar
    assert not (ci.out / "sfx" / "roar.wav").exists() and not (ci.out / "sfx" / "boom.wav").exists()
    assert (ci.out / "sfx" / "coin.wav").read_bytes() == (laptop.out / "sfx" / "coin.wav").read_bytes()
    assert (ci.root / "assetbuild.lock").read_bytes() == (laptop.root / "assetbuild.lock").read_bytes()

    # With the takes in a cache (a teammate's remote, or pulled), --locked builds them.
    shared = f"file://{tmp_path / 'shared'}"
    laptop.run("cache", "push", "--remote-cache", shared, env=env)
    s = _build(ci, "--locked", "--remote-cache", shared, env=env)
    assert s["failed"] == 0 and s["generated"] == 0 and s["fetched"] == 2
    for name in ("roar", "boom", "coin"):
        assert (ci.out / "sfx" / f"{name}.wav").read_bytes() == (laptop.out / "sfx" / f"{name}.wav").read_bytes()


def test_an_http_server_of_the_cache_folder_is_a_read_only_remote(tmp_path):
    import functools
    import http.server

    shared = tmp_path / "shared"
    a, b = _checkouts(tmp_path)
    a.build("--remote-cache", f"file://{shared}", "--remote-write")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        s = b.build("--remote-cache", url)
        assert (s["generated"], s["fetched"]) == (0, s["assets"]) and _tree(b.out) == _tree(a.out)
        proc = b.run("build", "--remote-cache", url, "--remote-write", check=False)
        assert proc.returncode == 2 and "an http(s) cache is read-only" in proc.stderr
    finally:
        server.shutdown()


@pytest.mark.parametrize("where", ["s3", "file"])
def test_deciding_many_hits_lists_instead_of_asking_each(tmp_path, moto, bucket, where):
    url = bucket if where == "s3" else f"file://{tmp_path / 'shared'}"
    options = {"endpoint_url": moto} if where == "s3" else {}
    writer = Remote(RemoteSpec(url, options, write=True))
    cache = Cache(tmp_path / "cache")
    sha = cache.put_bytes(b"x")
    keys = [hashlib.sha256(f"key {i}".encode()).hexdigest() for i in range(120)]
    for key in keys[:100]:
        cache.put_entry("generate", key, {"audio": sha, "sample_rate": 1, "meta": {}, "blobs": [sha]})
    writer.map(lambda k: writer.push("generate", k, cache), keys[:100])
    reader = Remote(RemoteSpec(url, options))
    calls = []
    listing = reader._listing
    reader._listing = lambda prefix: calls.append(prefix) or listing(prefix)
    assert reader.which(keys) == set(keys[:100])
    assert 0 < len(calls) <= (16 if where == "s3" else 256)
    for r in (writer, reader):
        r.close()


# -- what goes wrong with a remote, and what the build does about it ----------------------------------

def _writer(url: str, options: dict | None = None, **kw) -> Remote:
    return Remote(RemoteSpec(url, options or {}, write=True, **kw))


def test_a_failed_upload_stops_uploading_but_not_reading(tmp_path):
    shared = tmp_path / "shared"
    a = _project(tmp_path / "a")
    a.build("--remote-cache", f"file://{shared}", "--remote-write")
    remote = _writer(f"file://{shared}")
    cache = Cache(tmp_path / "cache")
    sha = cache.put_bytes(b"new audio")
    cache.put_entry("generate", "cd" * 32, {"audio": sha, "sample_rate": 1, "meta": {}, "blobs": [sha]})

    def denied(*args, **kwargs):
        raise PermissionError("Access Denied")

    remote._create = denied  # e.g. read-only credentials with --remote-write
    remote.submit_push("generate", "cd" * 32, cache)
    remote.finish()
    assert remote.write_down == "Access Denied" and remote.down is None
    assert any("nothing more is uploaded" in w for w in remote.warnings)
    locked = json.loads((a.root / "assetbuild.lock").read_text())["assets"]
    key = next(iter(locked.values()))["process"]
    assert remote.which([key]) == {key} and remote.fetch(key, Cache(tmp_path / "other")) == "process"
    remote.close()


def test_a_conditional_write_that_races_another_is_an_existing_entry(tmp_path):
    remote = _writer(f"file://{tmp_path / 'shared'}")
    remote.local = False  # as on an object store

    class Busy:
        protocol = ("s3",)

        def pipe_file(self, path, data, mode="overwrite"):
            import errno as e

            raise OSError(e.EBUSY, "ConditionalRequestConflict")

    remote.fs = Busy()
    assert remote._create("bucket/ac/ab/key", b"{}") is False
    remote.close()


def test_gc_removes_nothing_when_an_entry_to_keep_cannot_be_read(tmp_path):
    shared = tmp_path / "shared"
    a = _project(tmp_path / "a")
    a.build("--remote-cache", f"file://{shared}", "--remote-write")
    before = sorted(p for p in shared.rglob("*") if p.is_file())
    entry = next(p for p in (shared / "ac").rglob("*") if p.is_file())
    entry.write_bytes(entry.read_bytes()[:50])  # a kept entry that no longer reads
    proc = a.run("cache", "gc", "--remote", "--remote-cache", f"file://{shared}", "--older-than", "0s", "--yes",
                 check=False)
    assert proc.returncode == 1 and "could not be read; nothing was removed" in proc.stderr
    assert sorted(p for p in shared.rglob("*") if p.is_file()) == before


def test_a_broken_remote_blob_is_repaired_by_the_next_writer(tmp_path):
    _, b, shared, _, line, _ = _a_line_broken_on_the_remote(tmp_path)
    s = b.build("--remote-cache", f"file://{shared}", "--remote-write")
    assert s["processed"] == 1 and any("does not match its sha256" in w for w in s["warnings"])
    blob = shared / "cas" / line["file"][:2] / line["file"]
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == line["file"]  # repaired
    c = _project(tmp_path / "third")
    s = c.build("--remote-cache", f"file://{shared}")
    assert (s["generated"], s["processed"], s["fetched"], s["warnings"]) == (0, 0, s["assets"], [])


def test_processing_from_fetched_audio_fills_the_remote_too(tmp_path):
    shared = tmp_path / "shared"
    a, b = _checkouts(tmp_path)
    a.build("--remote-cache", f"file://{shared}", "--remote-write")
    before = len(_remote_entries(shared))
    b.edit('text = "Welcome to the forest."', 'text = "Welcome to the forest."\nloudness = -18.0')
    s = b.build("--remote-cache", f"file://{shared}", "--remote-write")
    assert (s["generated"], s["processed"], s["uploaded"]) == (0, 1, 1)
    assert len(_remote_entries(shared)) == before + 1


RACE = """
import os, subprocess, sys
import numpy as np
from assetbuild.backends.base import BaseBackend, Result

class Take(BaseBackend):
    name = "take"; kinds = frozenset({"sfx"}); max_batch = 4; parallel = True
    def fingerprint(self, request): return {"backend": self.name, "version": 1}
    def generate(self, requests):
        race = os.environ.pop("RACE_DIR", None)
        if race:  # another machine builds the same asset meanwhile, and uploads first
            env = dict(os.environ)
            subprocess.run([sys.executable, "-m", "assetbuild", "build", "--remote-write"], cwd=race, env=env,
                           check=True, capture_output=True)
        rng = np.random.default_rng()
        return [Result((0.2 * rng.standard_normal(4800)).astype(np.float32), 48000) for r in requests]
"""


def test_a_writer_that_loses_a_race_adopts_the_take_that_won(tmp_path):
    shared = f"file://{tmp_path / 'shared'}"
    env = plugin_site(tmp_path, "race", RACE, {"take": "race:Take"})
    text = f'[cache]\nremote = "{shared}"\n\n[[sfx]]\nid = "roar"\nprompt = "a roar"\nbackend = "take"\n'
    winner, loser = _checkouts(tmp_path, text)
    s = _build(loser, "--remote-write", env={**env, "RACE_DIR": str(winner.root)})
    assert any("another machine put a different take in the remote cache first" in w for w in s["warnings"])
    assert (loser.out / "sfx" / "roar.wav").read_bytes() == (winner.out / "sfx" / "roar.wav").read_bytes()
    locked = [json.loads((p.root / "assetbuild.lock").read_text())["assets"]["roar"]["sha256"]
              for p in (winner, loser)]
    assert locked[0] == locked[1]


def test_require_remote_stops_the_build_when_the_remote_goes_away(tmp_path):
    from assetbuild.errors import AssetbuildError

    with s3_server() as (endpoint, stop):
        fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True).mkdir("strict")
        first = _project(tmp_path / "first")
        build(load(first.manifest), Options(remote=RemoteSpec("s3://strict/c", {"endpoint_url": endpoint},
                                                                write=True)))
        second = _project(tmp_path / "second")
        spec = RemoteSpec("s3://strict/c", {"endpoint_url": endpoint}, require=True)
        with pytest.raises(AssetbuildError) as caught:
            build(load(second.manifest), Options(remote=spec), lambda kind, data: stop() if kind == "plan" else None)
    assert caught.value.exit_code == 2 and "cannot be reached" in caught.value.message
    assert not (second.out / "dialogue").exists() or not any((second.out / "dialogue").iterdir())


def test_a_locked_take_whose_cached_copy_is_broken_is_not_made_again(tmp_path):
    env = plugin_site(tmp_path, "takes", TAKES, {"take": "takes:Take", "liar": "takes:Liar"})
    shared = tmp_path / "shared"
    laptop = _project(tmp_path / "laptop", LOCKED)
    _build(laptop, "--remote-cache", f"file://{shared}", "--remote-write", env=env)
    roar = json.loads((laptop.root / "assetbuild.lock").read_text())["assets"]["roar"]
    entry = json.loads((shared / "ac" / roar["process"][:2] / roar["process"]).read_text())
    _flip(shared / "cas" / entry["file"][:2] / entry["file"])
    generated = json.loads((shared / "ac" / roar["generate"][:2] / roar["generate"]).read_text())
    (shared / "cas" / generated["audio"][:2] / generated["audio"]).unlink()
    ci = _project(tmp_path / "ci", LOCKED)
    (ci.root / "assetbuild.lock").write_bytes((laptop.root / "assetbuild.lock").read_bytes())
    proc = ci.run("build", "--json", "--locked", "--remote-cache", f"file://{shared}", env=env, check=False)
    s = json.loads(proc.stdout)
    assert proc.returncode == 1 and s["generated"] == 0  # the fall-back would have made a new take
    assert {f["id"]: f["error"] for f in s["failures"]} == {"roar": ("locked take not in any cache: pull it "
                                                                      "(`assetbuild cache pull`) or rebuild "
                                                                      "without --locked")}

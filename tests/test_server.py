"""`assetbuild serve` (docs/server.md): the real server (uvicorn on a free loopback port) driven
over HTTP with httpx. Every wait is bounded."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf
import uvicorn
from conftest import LOCALISED, SMALL, Project

from assetbuild.server import create_app
from assetbuild.server.limits import Limits

START_TIMEOUT = 60.0
BUILD_TIMEOUT = 180.0


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # a free port, held until uvicorn takes the socket over
    return sock


class Served:
    """create_app(...) under a real uvicorn in a background thread."""

    def __init__(self, manifest: Path, token: str | None = None, **kwargs):
        self.app = create_app(manifest, token=token, **kwargs)
        self.sock = _socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=120.0)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            assert self.thread.is_alive(), "server thread died"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(90)
        assert not self.thread.is_alive(), "server did not stop"

    def synth(self, **body) -> httpx.Response:
        return self.client.post("/tts/synthesize", json=body)

    def build(self) -> dict:
        r = self.client.post("/build")
        assert r.status_code == 202, r.text
        return self.wait_build()

    def wait_build(self) -> dict:
        deadline = time.monotonic() + BUILD_TIMEOUT
        while True:
            state = self.client.get("/build").json()
            if state["status"] != "running":
                return state
            assert time.monotonic() < deadline, "build did not finish"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    project = Project(root, SMALL)
    with Served(project.manifest, limits=Limits(max_text_chars=300, max_body_bytes=4096, workers=2)) as s:
        s.project = project
        yield s


@pytest.fixture(scope="module")
def built(served):
    state = served.build()
    assert state["status"] == "finished", state
    return served


# -- health, backends, schema ---------------------------------------------------------------

def test_health_backends_and_openapi(served):
    h = served.client.get("/health")
    assert h.status_code == 200
    body = h.json()
    assert body["status"] == "ok" and body["queue_depth"] == 0 and body["uptime"] >= 0
    assert body["workers"] == 2 and isinstance(body["backends_loaded"], list)
    cli = subprocess.run([sys.executable, "-m", "assetbuild", "backends", "--json"], capture_output=True,
                         text=True, timeout=120, check=True)
    assert served.client.get("/backends").json() == json.loads(cli.stdout)
    cli = subprocess.run([sys.executable, "-m", "assetbuild", "models", "--json"], capture_output=True,
                         text=True, timeout=120, check=True)
    models = served.client.get("/models").json()
    assert models == json.loads(cli.stdout) and any(m["name"] == "musicgen-small" for m in models)
    schema = served.client.get("/openapi.json").json()
    for path in ("/health", "/backends", "/models", "/tts/synthesize", "/tts/batch", "/tts/batch/{job_id}",
                 "/tts/batch/{job_id}/results", "/assets", "/assets/{asset_id}", "/build", "/report"):
        assert path in schema["paths"], path


# -- synthesis --------------------------------------------------------------------------------

def test_synthesize_binary_and_json(served):
    r = served.synth(text="The gate opens at dawn.", voice="guide")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav" and r.content[:4] == b"RIFF"
    audio, sr = sf.read(io.BytesIO(r.content))
    assert sr == int(r.headers["x-sample-rate"]) == 48000
    assert abs(len(audio) / sr - float(r.headers["x-duration"])) < 1e-3
    assert float(r.headers["x-processing-time"]) > 0
    assert float(r.headers["x-real-time-factor"]) == pytest.approx(
        float(r.headers["x-processing-time"]) / float(r.headers["x-duration"]), rel=0.01, abs=1e-3)
    words = json.loads(r.headers["x-alignment"])
    assert [w["text"] for w in words] == ["The", "gate", "opens", "at", "dawn"]
    assert all(0 <= a["start"] <= a["end"] <= b["start"] for a, b in zip(words, words[1:]))

    j = served.synth(text="The gate opens at dawn.", voice="guide", response="json")
    assert j.status_code == 200 and j.headers["content-type"] == "application/json"
    body = j.json()
    assert base64.b64decode(body["audio"]) == r.content
    assert body["cache"] == "hit" and body["words"] == words and body["timing"] == "measured"
    assert body["sample_rate"] == 48000 and body["channels"] == 1 and body["backend"] == "espeak"


def test_identical_request_is_served_from_cache(served):
    first = served.synth(text="Nobody has said this line before.", voice="guide", format="ogg")
    second = served.synth(text="Nobody has said this line before.", voice="guide", format="ogg")
    assert first.status_code == second.status_code == 200
    assert first.headers["x-cache"] == "generated" and second.headers["x-cache"] == "hit"
    assert second.content == first.content and first.content[:4] == b"OggS"
    assert float(second.headers["x-processing-time"]) * 3 < float(first.headers["x-processing-time"])
    # Another format of the same line reuses the generated audio.
    third = served.synth(text="Nobody has said this line before.", voice="guide", format="wav")
    assert third.headers["x-cache"] == "processed"


def test_pcm_is_the_wav_without_its_header(served):
    wav = served.synth(text="Raw samples, please.", voice="guide")
    pcm = served.synth(text="Raw samples, please.", voice="guide", format="pcm")
    assert pcm.status_code == 200 and pcm.headers["content-type"] == "application/octet-stream"
    assert pcm.headers["x-sample-format"] == "s16le"
    samples, _ = sf.read(io.BytesIO(wav.content), dtype="int16")
    assert pcm.content == samples.astype("<i2").tobytes()


def test_word_timings_match_a_manifest_build(served, tmp_path):
    text = "Keep the lantern lit until the morning bell."
    r = served.synth(text=text, voice="guide", response="json")
    assert r.status_code == 200, r.text
    words = r.json()["words"]
    # The same line built through a manifest of its own (its own cache: generated again).
    other = Project(tmp_path, '[voices.guide]\nbackend = "espeak"\nvoice = "en-us"\n\n'
                              f'[[dialogue]]\nid = "lantern"\nvoice = "guide"\ntext = "{text}"\n')
    other.build()
    built_words = other.pack()["assets"][0]["words"]
    assert [w["text"] for w in words] == [w["text"] for w in built_words] and len(words) == 8
    for a, b in zip(words, built_words):
        assert abs(a["start"] - b["start"]) <= 0.010 and abs(a["end"] - b["end"]) <= 0.010, (a, b)


def test_speed_emotion_and_settings(served):
    base = served.synth(text="Steady as she goes.", voice="guide", response="json").json()
    fast = served.synth(text="Steady as she goes.", voice="guide", speed=1.5, response="json").json()
    assert fast["duration"] < base["duration"] * 0.85
    inline = served.synth(text="Steady as she goes.", backend="espeak", settings={"voice": "en-us", "pitch": 70},
                          emotion="calm", response="json")
    assert inline.status_code == 200 and inline.json()["cache"] == "generated"


def test_batch_with_progress_and_results(served):
    items = [{"text": f"Batch line number {i}.", "voice": "guide"} for i in range(6)]
    items.append({"text": "Not spoken.", "voice": "guide", "settings": {"voice": "en-us+nosuchvariant"}})
    items.append({"text": "Nor this.", "voice": "nobody"})
    r = served.client.post("/tts/batch", json={"items": items})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["total"] == 8 and job["status"] in ("running", "finished")
    seen = []
    deadline = time.monotonic() + BUILD_TIMEOUT
    while True:
        state = served.client.get(f"/tts/batch/{job['id']}").json()
        seen.append(state["completed"])
        if state["status"] == "finished":
            break
        assert time.monotonic() < deadline, "batch did not finish"
        time.sleep(0.02)
    assert seen == sorted(seen) and seen[-1] == 8 and state["failed"] == 2
    results = served.client.get(f"/tts/batch/{job['id']}/results").json()
    assert [i["index"] for i in results["items"]] == list(range(8))
    assert [i["status"] for i in results["items"]] == [200] * 6 + [502, 422]
    one = served.synth(text="Batch line number 3.", voice="guide")
    assert one.headers["x-cache"] == "hit"
    assert base64.b64decode(results["items"][3]["audio"]) == one.content
    assert results["items"][3]["words"] == json.loads(one.headers["x-alignment"])
    assert results["items"][7]["detail"][0]["loc"] == ["body", "voice"]
    assert served.client.get("/tts/batch/nope").status_code == 404
    assert served.client.post("/tts/batch", json={"items": []}).status_code == 422
    long = served.client.post("/tts/batch", json={"items": [{"text": "x" * 301}]})
    assert long.status_code == 413 and long.json()["detail"][0]["loc"] == ["body", "items", 0, "text"]


# -- what the build made -------------------------------------------------------------------------

def test_a_built_line_is_served_from_the_cache(built):
    pack = built.client.get("/assets").json()
    line = next(a for a in pack["assets"] if a["id"] == "line_02")
    r = built.synth(text="Follow the lanterns.", voice="guide", emotion="whisper")
    assert r.status_code == 200 and r.headers["x-cache"] == "hit"
    assert r.content == (built.project.out / line["file"]).read_bytes()
    assert json.loads(r.headers["x-alignment"]) == line["words"]


def test_assets_and_range_requests(built):
    pack = built.client.get("/assets")
    assert pack.status_code == 200
    assert pack.json() == json.loads((built.project.out / "assetpack.json").read_text())
    record = next(a for a in pack.json()["assets"] if a["id"] == "wind")
    data = (built.project.out / record["file"]).read_bytes()
    full = built.client.get("/assets/wind")
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes"
    part = built.client.get("/assets/wind", headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1123/{len(data)}"
    assert part.content == data[100:1124]
    tail = built.client.get("/assets/wind", headers={"Range": "bytes=-64"})
    assert tail.status_code == 206 and tail.content == data[-64:]
    bad = built.client.get("/assets/wind", headers={"Range": f"bytes={len(data) + 10}-"})
    assert bad.status_code == 416
    assert built.client.get("/assets/no_such_asset").status_code == 404
    assert built.client.get("/assets/coin_02").status_code == 200


def test_report_and_its_files(built):
    r = built.client.get("/report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'src="/files/dialogue/line_01.wav"' in r.text
    f = built.client.get("/files/dialogue/line_01.wav")
    assert f.status_code == 200 and f.content == (built.project.out / "dialogue" / "line_01.wav").read_bytes()


def test_localised_lines(tmp_path):
    project = Project(tmp_path, LOCALISED)
    with Served(project.manifest, limits=Limits(workers=2)) as s:
        assert s.build()["status"] == "finished"
        fr = s.synth(text="Vous pouvez passer.", voice="guard", locale="fr")
        assert fr.status_code == 200 and fr.headers["x-cache"] == "hit", fr.text
        path = project.out / "dialogue" / "fr" / "pass.wav"
        assert fr.content == path.read_bytes()
        assert s.client.get("/assets/fr/pass").content == path.read_bytes()
        assert s.client.get("/assets/pass", params={"locale": "fr"}).content == path.read_bytes()
        assert s.client.get("/assets/pass").content == (project.out / "dialogue" / "en" / "pass.wav").read_bytes()
        # Without a locale: the project's first one (en), again the built line.
        en = s.synth(text="You may pass.", voice="guard")
        assert en.headers["x-cache"] == "hit"
        # A locale the project does not build is still spoken.
        de = s.synth(text="Du darfst passieren.", voice="guard", locale="de", response="json")
        assert de.status_code == 200 and de.json()["locale"] == "de"


def test_build_runs_one_at_a_time(tmp_path):
    project = Project(tmp_path, SMALL.replace("duration = 3", "duration = 20"))
    with Served(project.manifest, limits=Limits(workers=2)) as s:
        assert s.client.get("/assets").status_code == 404
        first = s.client.post("/build")
        assert first.status_code == 202 and first.json()["status"] == "running"
        second = s.client.post("/build")
        assert second.status_code == 409, second.text
        assert second.json()["build"]["id"] == first.json()["id"]
        state = s.wait_build()
        assert state["status"] == "finished", state
        assert state["summary"]["generated"] == 5 and state["progress"] == {"total": 5, "done": 5, "failed": 0}
        assert s.client.get("/assets").status_code == 200
        # Nothing changed: the next build does nothing, and is allowed now.
        again = s.build()
        assert again["status"] == "finished" and again["summary"]["generated"] == 0


# -- limits and errors --------------------------------------------------------------------------

def test_too_large_is_413(served):
    r = served.synth(text="word " * 100)  # 500 characters, over the 300 allowed
    assert r.status_code == 413 and r.json()["detail"][0]["loc"] == ["body", "text"]
    r = served.client.post("/tts/synthesize", content=b'{"text": "' + b"a" * 5000 + b'"}',
                           headers={"content-type": "application/json"})
    assert r.status_code == 413
    # A chunked body (no Content-Length) is cut off once it goes over.
    chunks = (b'{"text": "' + b"a" * 1000 if i == 0 else b"a" * 1000 for i in range(8))
    r = served.client.post("/tts/synthesize", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert served.client.get("/health").status_code == 200


@pytest.mark.parametrize("body, loc", [
    ({"voice": "guide"}, ["body", "text"]),
    ({"text": ""}, ["body", "text"]),
    ({"text": "Hi.", "colour": "red"}, ["body", "colour"]),
    ({"text": "Hi.", "emotion": "smug"}, ["body", "emotion"]),
    ({"text": "Hi.", "format": "mp3"}, ["body", "format"]),
    ({"text": "Hi.", "voice": "nobody"}, ["body", "voice"]),
    ({"text": "Hi.", "backend": "nope"}, ["body", "backend"]),
    ({"text": "Hi.", "backend": "procedural"}, ["body", "backend"]),
    ({"text": "Hi.", "voice": "guide", "settings": {"rate": 5}}, ["body", "settings", "rate"]),
    ({"text": "Hi.", "voice": "guide", "settings": {"tempo": 1}}, ["body", "settings", "tempo"]),
    ({"text": "Hi.", "format": "opus", "sample_rate": 44100}, ["body", "format"]),
    ({"text": "Hi.", "voice": "guide", "speed": 3.9}, ["body", "speed"]),
    ({"text": "Hi.", "locale": "not a locale"}, ["body", "locale"]),
    ({"text": "Hi.", "locale": "xq"}, ["body", "locale"]),  # a language eSpeak does not speak
    ({"text": "Hi.", "voice": "guide", "settings": {"voice": "zz-qq"}}, ["body", "settings", "voice"]),
    ({"text": "Hi.", "voice": "guide", "backend": "procedural"}, ["body", "backend"]),
])
def test_invalid_fields_are_422(served, body, loc):
    r = served.client.post("/tts/synthesize", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc, r.text


def test_backend_failure_is_502_and_the_server_goes_on(served):
    r = served.synth(text="This will not be spoken.", voice="guide", settings={"voice": "en-us+nosuchvariant"})
    assert r.status_code == 502, r.text
    assert r.json()["backend"] == "espeak" and "nosuchvariant" in r.json()["cause"]
    assert served.client.get("/health").json()["status"] == "ok"
    assert served.synth(text="But this will.", voice="guide").status_code == 200


def test_timeout_is_504(tmp_path):
    project = Project(tmp_path, SMALL)
    with Served(project.manifest, limits=Limits(timeout=0.0, workers=1)) as s:
        r = s.synth(text="Too slow for a zero-second limit.")
        assert r.status_code == 504 and "longer than" in r.json()["detail"]
        assert s.client.get("/health").status_code == 200


# -- auth ------------------------------------------------------------------------------------

def test_token_is_required_when_set(tmp_path):
    project = Project(tmp_path, SMALL)
    with Served(project.manifest, token="s3cret", limits=Limits(workers=1)) as s:
        assert s.client.get("/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            for method, path in (("GET", "/health"), ("GET", "/openapi.json"), ("POST", "/tts/synthesize"),
                                 ("POST", "/build"), ("GET", "/assets")):
                r = httpx.request(method, s.url + path, headers=headers, timeout=30)
                assert r.status_code == 401, (method, path, headers)
                assert r.headers["www-authenticate"].startswith("Bearer")


def _cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if k != "ASSETBUILD_TOKEN"}
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "assetbuild", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env, **kwargs)


def test_cli_refuses_a_public_bind_without_token(tmp_path):
    project = Project(tmp_path, SMALL)
    for host in ("0.0.0.0", "::", "example.org"):
        proc = _cli("serve", str(project.manifest), "--host", host, "--port", "0")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, (host, out, err)
        assert "--token" in err and "Traceback" not in err


def test_cli_names_the_extra_when_fastapi_is_missing(tmp_path):
    project = Project(tmp_path, SMALL)
    code = ("import sys; sys.modules['fastapi'] = None; sys.argv = ['assetbuild', 'serve', sys.argv[1]]; "
            "from assetbuild.cli import run; run()")
    proc = subprocess.run([sys.executable, "-c", code, str(project.manifest)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and 'pip install "assetbuild[server]"' in proc.stderr, proc.stderr


def test_cli_serves_with_a_token(tmp_path):
    project = Project(tmp_path, SMALL)
    sock = _socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = _cli("serve", str(project.manifest), "--port", str(port), "-j", "1", "--max-text", "40",
                env={"ASSETBUILD_TOKEN": "tok"})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                r = httpx.get(url + "/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert r.status_code == 401
        ok = httpx.post(url + "/tts/synthesize", json={"text": "Hello there.", "voice": "guide"},
                        headers={"Authorization": "Bearer tok"}, timeout=60)
        assert ok.status_code == 200 and ok.content[:4] == b"RIFF"
        long = httpx.post(url + "/tts/synthesize", json={"text": "Hello there. " * 4, "voice": "guide"},
                          headers={"Authorization": "Bearer tok"}, timeout=60)
        assert long.status_code == 413, long.text  # --max-text 40
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err

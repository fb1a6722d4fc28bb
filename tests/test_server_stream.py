"""`assetbuild serve` WebSockets (docs/server.md): `/tts/stream` and `/events` on the real server
(uvicorn on a free loopback port, as in test_server.py) with the `websockets` client, and the
queue limit (429). Every wait is bounded."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time

import pytest
from conftest import SMALL, Project
from test_server import BUILD_TIMEOUT, Served
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from assetbuild.server.events import EventHub
from assetbuild.server.limits import Limits
from assetbuild.server.stream import char_times, split_ready

WAIT = 60.0  # seconds any one message may take

SENTENCES = ["The gate opens at dawn.", "Keep the lantern lit until the morning bell.",
             "Nobody crosses the bridge after dark!"]
TEXT = " ".join(SENTENCES)
# Sent in pieces that cut words and sentences anywhere; the first sentence is complete (its
# end followed by a space) after the second chunk.
CHUNKS = ["The gate opens ", "at dawn. Keep the", " lantern lit until the mor", "ning bell. Nobody crosses ",
          "the bridge after dark!"]


def normal(text: str) -> str:
    """Whitespace normalisation for comparing `chars` with the text sent: runs of whitespace
    are one space, none at either end (the stream drops the opening " " and the text's own
    leading and trailing whitespace; between pieces it keeps the whitespace that was sent)."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served_stream")
    project = Project(root, SMALL)
    with Served(project.manifest, limits=Limits(workers=2)) as s:
        s.project = project
        yield s


def ws_url(served, path: str) -> str:
    return served.url.replace("http://", "ws://", 1) + path


async def recv(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def rest(ws) -> list[dict]:
    """Messages until {"isFinal": true} (included), then the server's close."""
    out = []
    while True:
        message = await recv(ws)
        out.append(message)
        if message.get("isFinal"):
            break
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), WAIT)
    assert ws.close_code == 1000
    return out


def stream(served, text_chunks: list[str], **first) -> list[dict]:
    async def main() -> list[dict]:
        async with connect(ws_url(served, "/tts/stream")) as ws:
            await ws.send(json.dumps({"text": " ", "voice": "guide", **first}))
            for chunk in text_chunks:
                await ws.send(json.dumps(chunk if isinstance(chunk, dict) else {"text": chunk}))
            await ws.send(json.dumps({"text": ""}))
            return await rest(ws)

    return asyncio.run(main())


def alignment(messages: list[dict]) -> tuple[str, list[int], list[int]]:
    chars, starts, durations = [], [], []
    for m in messages:
        if "alignment" in m:
            chars += m["alignment"]["chars"]
            starts += m["alignment"]["char_start_times_ms"]
            durations += m["alignment"]["char_durations_ms"]
    return "".join(chars), starts, durations


def pcm(messages: list[dict]) -> bytes:
    return b"".join(base64.b64decode(m["audio"]) for m in messages if "audio" in m)


# -- the stream ---------------------------------------------------------------------------------

def test_stream_is_incremental_with_alignment_matching_a_build(served, tmp_path):
    rate = 16000

    async def main() -> tuple[list[dict], float]:
        async with connect(ws_url(served, "/tts/stream")) as ws:
            await ws.send(json.dumps({"text": " ", "voice": "guide", "output_format": f"pcm_{rate}"}))
            for chunk in CHUNKS[:2]:
                await ws.send(json.dumps({"text": chunk}))
            sent = time.monotonic()
            first = await recv(ws)  # before the rest of the text, let alone the close, is sent
            latency = time.monotonic() - sent
            assert first.get("audio") and first["isFinal"] is False, first
            for chunk in CHUNKS[2:]:
                await ws.send(json.dumps({"text": chunk}))
            await ws.send(json.dumps({"text": ""}))
            return [first, *await rest(ws)], latency

    messages, latency = asyncio.run(main())
    assert messages[-1] == {"isFinal": True}
    assert all(m["isFinal"] is False and "error" not in m for m in messages[:-1])
    assert latency < WAIT
    chars, starts, durations = alignment(messages)
    assert normal(chars) == normal("".join(CHUNKS)) == TEXT
    assert chars == TEXT  # here (single spaces, nothing around): exactly the text
    assert len(starts) == len(durations) == len(chars)
    assert all(d >= 0 for d in durations)
    assert all(a <= b for a, b in zip(starts, starts[1:])), "character times go backwards"
    assert all(s + d <= n for s, d, n in zip(starts, durations, starts[1:])), "characters overlap"

    # The same sentences built through a manifest (one line each, own project and cache).
    entries = "".join(f'\n[[dialogue]]\nid = "s{i}"\nvoice = "guide"\ntext = "{s}"\n' for i, s in enumerate(SENTENCES))
    other = Project(tmp_path, '[voices.guide]\nbackend = "espeak"\nvoice = "en-us"\n' + entries)
    other.build()
    records = {a["id"]: a for a in other.pack()["assets"]}
    audio = pcm(messages)
    total = len(audio) / 2 / rate
    built = [records[f"s{i}"] for i in range(len(SENTENCES))]
    assert total == pytest.approx(sum(r["duration"] for r in built), abs=len(built) / rate)
    assert starts[-1] + durations[-1] <= total * 1000 + 1
    offset, position = 0.0, 0
    for sentence, record in zip(SENTENCES, built):
        assert chars[position:position + len(sentence)] == sentence
        assert [w["text"] for w in record["words"]] == [w.strip(".!") for w in sentence.split()]
        for w in record["words"]:
            got = starts[position + w["span"][0]]
            want = (offset + w["start"]) * 1000
            assert abs(got - want) <= 10, (sentence, w, got, want)
        offset += round(record["duration"] * rate) / rate  # the sentence's audio, as sent
        position += len(sentence) + 1


@pytest.mark.parametrize("rate", [16000, 22050, 24000, 44100, 48000])
def test_pcm_rate_is_honoured(served, rate):
    line = "Raw samples at any rate."
    reference = served.synth(text=line, voice="guide", response="json").json()
    messages = stream(served, [line], output_format=f"pcm_{rate}")
    audio = pcm(messages)
    assert len(audio) % 2 == 0
    assert len(audio) / 2 / rate == pytest.approx(reference["duration"], abs=1 / rate)
    chars, starts, durations = alignment(messages)
    assert chars == line and starts[-1] + durations[-1] <= reference["duration"] * 1000 + 1
    # Audio comes in chunks of at most a second.
    assert all(len(base64.b64decode(m["audio"])) <= 2 * rate for m in messages if "audio" in m)
    # Word starts as /tts/synthesize reports them (the same cache entry).
    for w in reference["words"]:
        assert abs(starts[w["span"][0]] - w["start"] * 1000) <= 1


def test_output_format_by_query_and_default_rate(served):
    async def main(path: str) -> list[dict]:
        async with connect(ws_url(served, path)) as ws:
            await ws.send(json.dumps({"text": " ", "voice": "guide"}))
            await ws.send(json.dumps({"text": "Short one.", "flush": True}))
            await ws.send(json.dumps({"text": ""}))
            return await rest(ws)

    duration = served.synth(text="Short one.", voice="guide", response="json").json()["duration"]
    by_query = pcm(asyncio.run(main("/tts/stream?output_format=pcm_22050")))
    assert len(by_query) / 2 / 22050 == pytest.approx(duration, abs=1 / 22050)
    default = pcm(asyncio.run(main("/tts/stream")))  # the project's rate (48 kHz)
    assert len(default) / 2 / 48000 == pytest.approx(duration, abs=1 / 48000)


def test_flush_speaks_an_unfinished_sentence(served):
    async def main() -> tuple[dict, list[dict]]:
        async with connect(ws_url(served, "/tts/stream")) as ws:
            await ws.send(json.dumps({"text": " ", "voice": "guide", "voice_settings": {"speed": 1.2,
                                                                                         "stability": 0.5}}))
            await ws.send(json.dumps({"text": "Wait for it", "flush": True}))
            first = await recv(ws)  # no sentence end, no close: the flush made it
            await ws.send(json.dumps({"text": " and then go."}))
            await ws.send(json.dumps({"text": ""}))
            return first, await rest(ws)

    first, later = asyncio.run(main())
    chars, starts, _ = alignment([first, *later])
    assert first.get("audio") and chars == "Wait for it and then go."
    assert all(a <= b for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("first, loc", [
    ({"text": " ", "voice": "nobody"}, ["voice"]),
    ({"text": " ", "voice": "guide", "output_format": "mp3_44100_128"}, ["output_format"]),
    ({"text": " ", "voice": "guide", "colour": "red"}, ["colour"]),
    ({"text": " ", "voice": "guide", "settings": {"rate": 5}}, ["settings", "rate"]),
    ({"voice": "guide"}, ["text"]),
    ("not json", []),
])
def test_bad_first_message_is_422_and_closed(served, first, loc):
    async def main() -> dict:
        async with connect(ws_url(served, "/tts/stream")) as ws:
            await ws.send(first if isinstance(first, str) else json.dumps(first))
            message = await recv(ws)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT)
            assert ws.close_code == 1008
            return message

    message = asyncio.run(main())
    assert message["code"] == 422 and message["error"], message
    assert message["detail"][0]["loc"] == loc, message


def test_backend_failure_is_502_and_the_stream_goes_on(served):
    messages = stream(served, ["It will not be said. ", "Nor this."],
                      settings={"voice": "en-us+nosuchvariant"})
    errors = [m for m in messages if "error" in m]
    assert len(errors) == 2 and all(e["code"] == 502 and "nosuchvariant" in e["cause"] for e in errors)
    assert messages[-1] == {"isFinal": True}
    assert served.client.get("/health").json()["status"] == "ok"
    good = stream(served, ["But this will."])
    assert alignment(good)[0] == "But this will." and pcm(good)


def test_a_later_bad_message_is_422(served):
    async def main() -> list[dict]:
        async with connect(ws_url(served, "/tts/stream")) as ws:
            await ws.send(json.dumps({"text": " ", "voice": "guide"}))
            await ws.send(json.dumps({"text": "Spoken first. "}))
            await ws.send(json.dumps({"txt": "oops"}))
            out = []
            with pytest.raises(ConnectionClosed):
                while True:
                    out.append(await recv(ws))
            assert ws.close_code == 1008
            return out

    messages = asyncio.run(main())
    assert alignment(messages)[0] == "Spoken first."  # what came before is still answered
    assert messages[-1]["code"] == 422 and [d["loc"] for d in messages[-1]["detail"]] == [["text"], ["txt"]]


# -- events -------------------------------------------------------------------------------------

def test_events_during_a_build(served):
    async def main() -> list[dict]:
        async with connect(ws_url(served, "/events")) as ws:
            hello = await recv(ws)  # subscribed from here on
            assert hello["event"] == "hello" and "status" in hello["build"]
            r = await asyncio.to_thread(served.client.post, "/build")
            assert r.status_code == 202, r.text
            out = []
            deadline = time.monotonic() + BUILD_TIMEOUT
            while not out or out[-1]["event"] != "finished":
                out.append(json.loads(await asyncio.wait_for(ws.recv(), max(1.0, deadline - time.monotonic()))))
            return out

    events = asyncio.run(main())
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished" and "plan" in kinds
    build_id = events[0]["build"]
    assert all(e["build"] == build_id for e in events)
    assets = {e["id"] for e in events if e["event"] == "asset"}
    assert {"line_01", "line_02", "wind"} <= assets, assets
    assert events[-1]["status"] == "finished" and events[-1]["summary"]["generated"] >= 1
    assert served.client.get("/build").json()["id"] == build_id


def test_slow_event_clients_lose_the_oldest():
    hub = EventHub(max_queue=3)

    async def main() -> tuple[list[int], int]:
        client = hub.subscribe()
        thread = threading.Thread(target=lambda: [hub.publish("asset", {"n": i}) for i in range(10)])
        thread.start()
        thread.join(10)
        await asyncio.sleep(0.05)  # the hand-offs run on this loop
        got = []
        while not client.queue.empty():
            got.append(client.queue.get_nowait()["n"])
        hub.unsubscribe(client)
        return got, client.dropped

    got, dropped = asyncio.run(main())
    assert got == [7, 8, 9] and dropped == 7
    hub.publish("asset", {})  # no clients: nothing happens
    assert hub.clients == 0


# -- 429, auth ------------------------------------------------------------------------------------

def test_full_queue_is_429_with_retry_after(tmp_path):
    project = Project(tmp_path, SMALL)
    with Served(project.manifest, limits=Limits(workers=1, max_queued=3)) as s:
        admission = s.app.state.admission
        items = [{"text": f"Queued line {i}.", "voice": "guide"} for i in range(4)]
        r = s.client.post("/tts/batch", json={"items": items})  # 4 > 3: never fits
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, r.text
        assert admission.queued == 0
        assert admission.admit(3)  # the queue is full (as with 3 requests waiting)
        try:
            r = s.synth(text="No room.", voice="guide")
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "full" in r.json()["detail"]
            r = s.client.post("/tts/batch", json={"items": items[:1]})
            assert r.status_code == 429 and r.headers["retry-after"]
        finally:
            admission.release(3)
        job = s.client.post("/tts/batch", json={"items": items[:3]})
        assert job.status_code == 202
        deadline = time.monotonic() + BUILD_TIMEOUT
        while s.client.get(f"/tts/batch/{job.json()['id']}").json()["status"] != "finished":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert admission.queued == 0  # every item gave its place back
        assert s.synth(text="Room again.", voice="guide").status_code == 200
        assert admission.queued == 0


def test_token_is_required_on_websockets(tmp_path):
    project = Project(tmp_path, SMALL)
    with Served(project.manifest, token="s3cret", limits=Limits(workers=1)) as s:
        async def refused(path: str, headers: dict) -> int:
            with pytest.raises(InvalidStatus) as info:
                async with connect(ws_url(s, path), additional_headers=headers):
                    pass
            return info.value.response.status_code

        async def main() -> None:
            for path in ("/tts/stream", "/events"):
                for headers in ({}, {"Authorization": "Bearer wrong"}):
                    assert await refused(path, headers) == 403, (path, headers)
            auth = {"Authorization": "Bearer s3cret"}
            async with connect(ws_url(s, "/events"), additional_headers=auth) as ws:
                assert (await recv(ws))["event"] == "hello"
            async with connect(ws_url(s, "/tts/stream"), additional_headers=auth) as ws:
                await ws.send(json.dumps({"text": " ", "voice": "guide"}))
                await ws.send(json.dumps({"text": "Let me in."}))
                await ws.send(json.dumps({"text": ""}))
                assert alignment(await rest(ws))[0] == "Let me in."

        asyncio.run(main())


# -- the pieces and the character times, without a server -----------------------------------------

def test_split_ready():
    assert split_ready(" The gate") == ([], " The gate")
    assert split_ready(" The gate opens. Keep") == ([(" ", "The gate opens.")], " Keep")
    assert split_ready("Done.") == ([], "Done.")  # the end might be "Done.." or "Done.\""
    assert split_ready("Done.", final=True) == ([("", "Done.")], "")
    assert split_ready("One! Two? Three. ") == ([("", "One!"), (" ", "Two?"), (" ", "Three.")], " ")
    assert split_ready("Wait for it ", final=True) == ([("", "Wait for it")], " ")
    long = "word, " * 30  # an open sentence of 180 characters: cut at its last clause end
    pieces, rest_ = split_ready(long)
    assert len(pieces) == 1 and pieces[0][1].endswith(",") and rest_ == " "
    huge = "word " * 200  # no punctuation at all: between words, at most max_piece
    pieces, rest_ = split_ready(huge, max_piece=100)
    assert pieces and all(len(p) <= 100 for _, p in pieces) and "".join(a + p for a, p in pieces) + rest_ == huge


def test_char_times_follow_the_words():
    words = [{"text": "Hi", "start": 0.1, "end": 0.3, "span": [0, 2]},
             {"text": "there", "start": 0.4, "end": 0.9, "span": [3, 8]}]
    chars, starts, ends = char_times(" ", "Hi there.", words, 1.0)
    assert "".join(chars) == " Hi there."
    assert starts[0] == 0.0 and ends[0] == pytest.approx(0.1)  # the lead: before the first word
    assert starts[1] == pytest.approx(0.1) and starts[2] == pytest.approx(0.2)  # "Hi" over 0.1-0.3
    assert starts[3] == pytest.approx(0.3) and ends[3] == pytest.approx(0.4)  # the space: the gap
    assert starts[4] == pytest.approx(0.4) and ends[8] == pytest.approx(0.9)
    assert starts[9] == pytest.approx(0.9) and ends[9] == pytest.approx(1.0)  # "." to the end
    assert all(a <= b for a, b in zip(starts, starts[1:]))
    # Overlapping or backwards timings never make times go backwards.
    bad = [{"text": "a", "start": 0.5, "end": 0.6, "span": [0, 1]}, {"text": "b", "start": 0.2, "end": 0.3, "span": [2, 3]}]
    _, starts, ends = char_times("", "a b", bad, 0.4)
    assert all(a <= b for a, b in zip(starts, starts[1:])) and all(s <= e for s, e in zip(starts, ends))


# -- serve --watch and the live report ----------------------------------------------------------

def _events_until(ws_path: str, served, stop, timeout: float = BUILD_TIMEOUT) -> list[dict]:
    async def main() -> list[dict]:
        async with connect(ws_url(served, ws_path)) as ws:
            await recv(ws)  # hello
            stop["subscribed"].set()
            out: list[dict] = []
            deadline = time.monotonic() + timeout
            while not out or out[-1]["event"] != "finished":
                out.append(json.loads(await asyncio.wait_for(ws.recv(), max(1.0, deadline - time.monotonic()))))
            return out
    return asyncio.run(main())


def test_serve_watch_builds_at_start_and_on_every_edit(tmp_path):
    project = Project(tmp_path, SMALL)
    with Served(project.manifest, watch=True, limits=Limits(workers=1)) as s:
        deadline = time.monotonic() + BUILD_TIMEOUT
        while s.client.get("/build").json().get("status") != "finished":  # the build at start
            assert time.monotonic() < deadline, s.client.get("/build").json()
            time.sleep(0.1)
        first = s.client.get("/build").json()["id"]
        subscribed = threading.Event()
        got: list[dict] = []
        listener = threading.Thread(target=lambda: got.extend(_events_until("/events", s, {"subscribed": subscribed})))
        listener.start()
        assert subscribed.wait(30)
        project.edit('text = "Follow the lanterns."', 'text = "Follow the blue lanterns."')
        listener.join(BUILD_TIMEOUT)
        kinds = [e["event"] for e in got]
        assert kinds[0] == "started" and kinds[-1] == "finished", kinds
        assert got[0]["build"] == first + 1
        made = [e["id"] for e in got if e["event"] == "asset"]
        assert made == ["line_02"]  # only the edited line
        pack = s.client.get("/assets").json()
        assert any(a["id"] == "line_02" and "blue" in a["text"] for a in pack["assets"])


def test_report_follows_a_build_live_in_chromium(tmp_path):
    """The report page as served carries the live script; in a real browser, build events (as
    /events sends them) show the build's progress and mark each asset. Headless Chromium's
    virtual time does not wait for a WebSocket, so the events are handed to the page's handler."""
    from test_report import CHROMIUM, chromium, console_messages

    assert CHROMIUM is not None, "chromium is a test prerequisite"
    project = Project(tmp_path, SMALL)
    with Served(project.manifest, limits=Limits(workers=1)) as s:
        s.build()
        page = s.client.get("/report").text
    assert 'location.host+"/events"' in page and "assetReportLive" in page
    events = [{"event": "hello", "build": {"status": "running", "progress": {"total": 4, "done": 1, "failed": 0}}},
              {"event": "asset", "id": "line_01", "status": "generated"},
              {"event": "failed", "id": "wind", "error": "boom"}]
    probe = ("<script>addEventListener('load',function(){" + "".join(
        f"window.assetReportLive.on({json.dumps(e)});" for e in events) + "});</script>")
    copy = tmp_path / "live.html"
    copy.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    proc = chromium(copy.as_uri(), tmp_path, "--dump-dom")
    messages = [m for m in console_messages(proc.stderr) if "/events" not in m]  # no server behind file://
    assert messages == [], messages
    dom = proc.stdout
    assert re.search(r'<div id="live" role="status"[^>]*data-state="running">building: 2 of 4, 1 failed', dom), \
        re.findall(r'<div id="live"[^>]*>[^<]*', dom)
    assert re.search(r'id="a-line_01"[^>]*data-live="generated"', dom)
    assert re.search(r'id="a-wind"[^>]*data-live="failed"', dom)

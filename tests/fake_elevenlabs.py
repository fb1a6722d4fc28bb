"""A local fake of the two ElevenLabs endpoints the ``elevenlabs`` backend uses.

``FakeElevenLabs()`` serves on 127.0.0.1 (a free port) from a thread, so the real SDK can be
pointed at it with ``ELEVENLABS_BASE_URL``:

- ``POST /v1/text-to-speech/{voice_id}/with-timestamps?output_format=pcm_N``: 16-bit PCM with a
  tone per character, and character times that are deliberately uneven (see :func:`char_times`);
- ``POST /v1/sound-generation?output_format=pcm_N``: raw PCM, ``duration_seconds`` long.

Every request is recorded (path, query, lower-cased headers, JSON body) in ``requests``;
``max_in_flight`` is the most requests it was serving at once. Failures are scripted with
:meth:`fail` and :meth:`slow`; ``key`` (when set) is the only API key it accepts, and
``concurrency_limit`` answers 429 like the real service when more requests are in flight.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

LEAD = 0.137  # silence before the first character, seconds
TAIL = 0.1  # silence after the last one
DEFAULT_SFX = 2.0  # seconds, when no duration_seconds is asked for


def char_duration(ch: str) -> float:
    """Uneven on purpose: a word's time depends on its letters, not on its length alone."""
    if ch.isspace():
        return 0.06
    if ch in ".,;:!?":
        return 0.15
    if ch.lower() in "aeiouy":
        return 0.11
    return 0.045


def char_times(text: str) -> tuple[list[float], list[float]]:
    starts, ends = [], []
    t = LEAD
    for ch in text:
        starts.append(round(t, 6))
        t += char_duration(ch)
        ends.append(round(t, 6))
    return starts, ends


def speech_pcm(text: str, sr: int) -> bytes:
    starts, ends = char_times(text)
    total = (ends[-1] if ends else LEAD) + TAIL
    out = np.zeros(round(total * sr), dtype=np.float32)
    for ch, s, e in zip(text, starts, ends):
        if ch.isspace() or not ch.isalnum():
            continue
        a, b = round(s * sr), round(e * sr)
        t = np.arange(b - a) / sr
        out[a:b] = 0.3 * np.sin(2 * np.pi * (180 + (ord(ch) % 32) * 20) * t)
    return (out * 32767).astype("<i2").tobytes()


def sfx_pcm(prompt: str, duration: float, sr: int) -> bytes:
    n = round(duration * sr)
    rng = np.random.default_rng(zlib.crc32(prompt.encode()))
    env = np.exp(-np.arange(n) / (0.3 * sr))
    return (rng.uniform(-0.5, 0.5, n) * env * 32767).astype("<i2").tobytes()


def error_body(status: str, message: str) -> dict[str, Any]:
    return {"detail": {"status": status, "message": message}}


@dataclass
class Rule:
    status: int | None = None  # None: answer normally (after ``delay``)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = None  # how many requests it applies to; None: all
    match: str | None = None  # only requests whose text/prompt contains this
    delay: float = 0.0


class FakeElevenLabs:
    def __init__(self, *, key: str | None = None, delay: float = 0.0, concurrency_limit: int | None = None):
        self.key = key
        self.delay = delay  # seconds every request takes (to make requests overlap)
        self.concurrency_limit = concurrency_limit
        self.requests: list[dict[str, Any]] = []
        self.rules: list[Rule] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    # -- control -----------------------------------------------------------------------
    def start(self) -> FakeElevenLabs:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a loop that never started otherwise
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeElevenLabs:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def fail(self, status: int, body: Any = None, *, times: int | None = None, match: str | None = None,
             headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` to the next ``times`` matching requests (all when None)."""
        if body is None:
            body = error_body("error", f"fake failure {status}")
        self.rules.append(Rule(status=status, body=body, headers=headers or {}, times=times, match=match))

    def slow(self, seconds: float, *, times: int | None = None, match: str | None = None) -> None:
        """Wait ``seconds`` before answering the next ``times`` matching requests."""
        self.rules.append(Rule(delay=seconds, times=times, match=match))

    def paths(self, part: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if part in r["path"]]

    # -- serving -------------------------------------------------------------------------
    def _rule(self, body: dict[str, Any]) -> Rule | None:
        what = str(body.get("text") or "")
        with self._lock:
            for rule in self.rules:
                if rule.times == 0 or (rule.match is not None and rule.match not in what):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                return rule
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        raw = h.rfile.read(int(h.headers.get("content-length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode("latin-1")}
        query = dict(parse_qsl(url.query))
        with self._lock:
            self.requests.append({"path": url.path, "query": query, "json": body,
                                  "headers": {k.lower(): v for k, v in h.headers.items()}})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            busy = self.concurrency_limit is not None and self.in_flight > self.concurrency_limit
        try:
            status, payload, headers = self._answer(h, url.path, query, body, busy)
        finally:  # before answering: the client may send its next request as soon as it reads this
            with self._lock:
                self.in_flight -= 1
        try:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            h.send_response(status)
            h.send_header("content-type", "application/octet-stream" if isinstance(payload, bytes)
                          else "application/json")
            h.send_header("content-length", str(len(data)))
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout)

    def _answer(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, str], body: dict[str, Any],
                busy: bool) -> tuple[int, Any, dict[str, str]]:
        if self.key is not None and h.headers.get("xi-api-key") != self.key:
            return 401, error_body("invalid_api_key", "Invalid API key"), {}
        if busy:
            return 429, error_body("too_many_concurrent_requests", "Too many concurrent requests"), {}
        rule = self._rule(body)
        time.sleep(self.delay + (rule.delay if rule else 0.0))
        if rule and rule.status is not None:
            return rule.status, rule.body, rule.headers
        fmt = query.get("output_format", "mp3_44100_128")
        if not fmt.startswith("pcm_"):
            return 422, {"detail": [{"msg": f"the fake only makes pcm, not {fmt}"}]}, {}
        sr = int(fmt[4:])
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["v1", "text-to-speech"] and parts[3] == "with-timestamps":
            text = body.get("text")
            if not parts[2] or not isinstance(text, str) or not text:
                return 422, {"detail": [{"msg": "text and voice_id are required"}]}, {}
            starts, ends = char_times(text)
            alignment = {"characters": list(text), "character_start_times_seconds": starts,
                         "character_end_times_seconds": ends}
            return 200, {"audio_base64": base64.b64encode(speech_pcm(text, sr)).decode(),
                         "alignment": alignment, "normalized_alignment": alignment}, {}
        if parts == ["v1", "sound-generation"]:
            duration = body.get("duration_seconds")
            if duration is not None and not 0.5 <= duration <= 30:
                return 422, {"detail": [{"msg": "duration_seconds must be 0.5-30"}]}, {}
            return 200, sfx_pcm(str(body.get("text")), duration or DEFAULT_SFX, sr), {}
        return 404, {"detail": "Not Found"}, {}

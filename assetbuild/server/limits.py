"""Request limits and the body-size guard.

The body-size guard is plain ASGI middleware: a ``Content-Length`` over the limit is refused
before anything is read, and a chunked body is counted as it arrives and cut off with 413 as
soon as it goes over.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    max_text_chars: int = 5000  # POST /tts/synthesize `text`; longer: 413
    max_body_bytes: int = 256 * 1024  # any request body; larger: 413
    # Seconds one synthesis request may take; longer: 504 (the job still finishes into the cache).
    timeout: float = 120.0
    max_batch_items: int = 100  # POST /tts/batch `items`; more: 413
    workers: int = 0  # worker processes for synthesis and builds (0: min(4, cores))
    max_queued: int = 256  # synthesis jobs admitted and not finished (requests + batch items); more: 429


class Admission:
    """The synthesis queue's bound: jobs (a /tts/synthesize request, a batch item, a /tts/stream
    piece) are admitted before they run and released when done; a request that would take the
    count over ``max_queued`` is refused with 429 and a ``Retry-After`` estimate."""

    def __init__(self, max_queued: int, workers: int):
        self.max_queued, self.workers = max_queued, max(1, workers)
        self._lock = threading.Lock()
        self.queued = 0
        self._typical = 1.0  # seconds per job, a moving average

    def admit(self, n: int = 1, force: bool = False) -> bool:
        """Take ``n`` places; False (nothing taken) when that would go over the bound, unless
        ``force`` (a stream already accepted counts, but is never cut off half-way)."""
        with self._lock:
            if not force and self.queued + n > self.max_queued:
                return False
            self.queued += n
            return True

    def release(self, n: int = 1, seconds: float | None = None) -> None:
        with self._lock:
            self.queued = max(0, self.queued - n)
            if seconds is not None and seconds >= 0:
                self._typical = 0.8 * self._typical + 0.2 * seconds

    def retry_after(self) -> int:
        """Whole seconds until about one worker's share of the queue has drained (at least 1)."""
        with self._lock:
            return max(1, math.ceil(self.queued / self.workers * self._typical))


class BodyTooLarge(HTTPException):
    """Raised while a chunked body is read: an HTTPException, so FastAPI's body parsing passes
    it on (it turns other errors into 400) and the exception middleware answers 413."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"request body larger than {max_bytes} bytes")


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                await _reply(send, 400, "invalid Content-Length header")
                return
            if too_big:
                await _reply(send, 413, f"request body larger than {self.max_bytes} bytes")
                return
        seen = 0
        started = False

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await _reply(send, 413, f"request body larger than {self.max_bytes} bytes")


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

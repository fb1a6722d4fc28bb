"""WebSocket ``/events``: build events, as they happen, to every connected client.

The build runs in a thread of its own and reports through ``build(..., on_event)``;
:meth:`EventHub.publish` may be called from any thread. Each client has a bounded asyncio queue
on the event loop that serves it, filled with ``loop.call_soon_threadsafe``; a client that
reads too slowly loses its oldest events (the next message it gets says how many in
``dropped``), so a stalled client never holds up a build or the other clients.

Messages (JSON objects, ``event`` first):

- ``{"event": "hello", "build": <GET /build state>}`` once, on connecting;
- ``{"event": "started", "build": id, ...}``, ``{"event": "plan", "build": id, ...}`` (what
  the build will do), ``{"event": "asset", "build": id, "id", "kind", "status", "file", ...}``
  per asset made, ``{"event": "failed", "build": id, "id", "error"}`` per asset that failed,
  ``{"event": "finished", "build": id, "status", "seconds", "summary"|"error"}``.

Every message carries ``time`` (Unix seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

MAX_QUEUE = 256  # events kept per client; more: the oldest are dropped


class Client:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_queue: int):
        self.loop = loop
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(max_queue)
        self.dropped = 0

    def put(self, message: dict[str, Any] | None) -> None:
        """On the client's loop: queue ``message``, dropping the oldest one when full."""
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
                self.dropped += 1
        self.queue.put_nowait(message)


class EventHub:
    def __init__(self, max_queue: int = MAX_QUEUE):
        self.max_queue = max_queue
        self._clients: set[Client] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> Client:
        """A new client fed on the running loop (call from a coroutine)."""
        client = Client(asyncio.get_running_loop(), self.max_queue)
        with self._lock:
            self._clients.add(client)
        return client

    def unsubscribe(self, client: Client) -> None:
        with self._lock:
            self._clients.discard(client)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Send ``{"event": event, **data, "time": ...}`` to every client (any thread)."""
        self._send({"event": event, **data, "time": round(time.time(), 3)})

    def close(self) -> None:
        """Tell every client the server is stopping (their handlers close the sockets)."""
        self._send(None)

    def _send(self, message: dict[str, Any] | None) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.loop.call_soon_threadsafe(client.put, message)
            except RuntimeError:  # that loop is closed: the client is gone
                self.unsubscribe(client)


async def serve(websocket: Any, hub: EventHub, state: Callable[[], dict[str, Any]]) -> None:
    """The ``/events`` handler: the hello message, then every event until either side closes."""
    from starlette.websockets import WebSocketDisconnect

    await websocket.accept()
    client = hub.subscribe()
    receiver = asyncio.create_task(_until_closed(websocket))
    try:
        await websocket.send_json({"event": "hello", "build": state()})
        while True:
            getter = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:  # the client went away
                getter.cancel()
                return
            message = getter.result()
            if message is None:  # the server is stopping
                await websocket.close(1001)
                return
            if client.dropped:
                message = {**message, "dropped": client.dropped}
                client.dropped = 0
            await websocket.send_json(message)
    except (WebSocketDisconnect, RuntimeError):  # closed under us
        pass
    finally:
        hub.unsubscribe(client)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _until_closed(websocket: Any) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return

"""Who may talk to the server: anyone on loopback, or, with a token, only bearers of it.

Binding an address other than loopback without a token is refused (``assetbuild serve``
exits 2): a synthesis server that writes into the project must not be open to the network.
With a token, every request (every path, the OpenAPI schema included) needs
``Authorization: Bearer <token>``; anything else gets 401.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

from .limits import Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def bind_problem(host: str, token: str | None) -> str | None:
    """Why binding ``host`` is refused, or None."""
    if token or is_loopback(host):
        return None
    return (f"binding {host} exposes the server beyond this machine: give a token with --token or "
            "ASSETBUILD_TOKEN (clients then send 'Authorization: Bearer <token>'), or bind 127.0.0.1")


class BearerAuth:
    """ASGI middleware: 401 unless the request carries the token (HTTP and WebSocket)."""

    def __init__(self, app: Any, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                given = value
                break
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "missing or wrong bearer token"})
            return
        body = json.dumps({"detail": "missing or wrong bearer token (send 'Authorization: Bearer <token>')"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Bearer realm="assetbuild"')]})
        await send({"type": "http.response.body", "body": body})

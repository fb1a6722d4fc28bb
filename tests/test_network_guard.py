"""The suite runs offline: the guard conftest installs refuses non-loopback connections in
this process and in the processes tests start, and lets loopback through."""

import os
import socket
import subprocess
import sys
import threading

import pytest
from conftest import NET_LOG


def _drop_log_lines(before: str) -> None:
    NET_LOG.write_text(before)  # the attempts below are deliberate


def test_outside_connections_are_refused_and_logged():
    before = NET_LOG.read_text() if NET_LOG.exists() else ""
    try:
        with pytest.raises(OSError, match="blocked in tests"):
            socket.create_connection(("93.184.216.34", 443), timeout=1)
        with pytest.raises(OSError, match="blocked in tests"):
            socket.getaddrinfo("huggingface.co", 443)
        assert "connect 93.184.216.34" in NET_LOG.read_text()
    finally:
        _drop_log_lines(before)


def test_subprocesses_are_guarded_too():
    before = NET_LOG.read_text() if NET_LOG.exists() else ""
    try:
        code = "import socket\ntry:\n socket.create_connection(('1.1.1.1', 80), timeout=1)\nexcept OSError as e:\n print(e)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ)
        assert "blocked in tests" in out.stdout
        assert "connect 1.1.1.1" in NET_LOG.read_text()
    finally:
        _drop_log_lines(before)


def test_loopback_is_allowed_and_hub_is_offline():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    t = threading.Thread(target=lambda: server.accept()[0].close())
    t.start()
    socket.create_connection(server.getsockname(), timeout=5).close()
    t.join(5)
    server.close()
    assert os.environ["HF_HUB_OFFLINE"] == "1"

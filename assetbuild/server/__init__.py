"""`assetbuild serve`: a local synthesis and audition server (docs/server.md).

Needs the ``server`` extra (FastAPI + uvicorn): ``pip install "assetbuild[server]"``. Nothing
here is imported by the rest of the package; ``create_app`` imports FastAPI on first use.

One module per concern: ``app`` (routes), ``auth`` (bearer token, loopback rule), ``limits``
(body size, text length, timeout), ``project`` (the served manifest, reloaded on change),
``adhoc`` (a request -> an Asset, validated like a manifest entry), ``synth`` (generate and
process through the build cache), ``builds`` (one background build at a time), ``info``
(health and backends).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    from .app import create_app as _create

    return _create(*args, **kwargs)

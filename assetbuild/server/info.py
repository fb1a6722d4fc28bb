"""``/health`` and ``/backends``."""

from __future__ import annotations

from typing import Any


def model_rows() -> list[dict[str, Any]]:
    """What ``assetbuild models --json`` prints."""
    from ..models.store import status_rows

    return status_rows()


def backend_rows() -> list[dict[str, Any]]:
    """What ``assetbuild backends --json`` prints."""
    from .. import backends

    return backends.status_rows()

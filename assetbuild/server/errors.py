"""What the server answers with an HTTP status other than 200 (docs/server.md, "Errors").

    ServerError (errors.AssetbuildError)
    ├── RequestProblem      422 (or the status it carries): a request field is wrong; names it
    ├── BackendFailure      502: the backend could not make the audio
    ├── ProcessingFailure   500: mastering or encoding failed
    ├── Timeout             504: the request ran past its limit (its job still finishes into the cache)
    └── BuildBusy           409: a build is already running
"""

from __future__ import annotations

from typing import Any

from ..errors import AssetbuildError


class ServerError(AssetbuildError):
    """An error the server turns into an HTTP status."""

    status: int = 500


class RequestProblem(ServerError):
    """One thing wrong with a request, as FastAPI reports validation errors."""

    def __init__(self, loc: list[str], message: str, status: int = 422):
        super().__init__(message)
        self.loc, self.status = loc, status

    @property
    def message(self) -> str:
        return str(self)

    def detail(self) -> list[dict[str, Any]]:
        return [{"loc": ["body", *self.loc], "msg": str(self), "type": "value_error"}]


class BackendFailure(ServerError):
    """The backend could not make the audio (HTTP 502)."""

    status = 502

    def __init__(self, backend: str, cause: str):
        super().__init__(f"backend '{backend}' failed: {cause}")
        self.backend, self.cause = backend, cause


class ProcessingFailure(ServerError):
    """Mastering or encoding failed (HTTP 500)."""


class Timeout(ServerError):
    """The request ran past its time limit (HTTP 504); its job still finishes into the cache."""

    status = 504


class BuildBusy(ServerError):
    """A build is already running (HTTP 409)."""

    status = 409

    def __init__(self, state: dict[str, Any]):
        super().__init__("a build is already running")
        self.state = state

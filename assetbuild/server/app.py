"""The FastAPI application: routes, middleware and error mapping (docs/server.md)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..export.metadata import REPORT, record_key
from . import adhoc, events, info, live, stream
from .auth import BearerAuth
from .autobuild import AutoBuild
from .batch import Batches
from .builds import BuildRunner
from .errors import BackendFailure, BuildBusy, ProcessingFailure, Timeout
from .limits import Admission, BodyLimit, Limits
from .models import (
    Backend,
    BatchRequest,
    BatchResults,
    BatchStatus,
    BuildState,
    Health,
    Line,
    Model,
    SynthesizeRequest,
    SynthesizeResult,
)
from .project import ServedProject
from .synth import Synthesizer

# Larger alignment headers are left out of binary responses (clients cap header sizes; h11's
# default is 16 KiB for all headers together): ask for response=json to get them.
MAX_ALIGNMENT_HEADER = 8000
SHUTDOWN_WAIT = 60.0  # seconds a running build may take to finish when the server stops


def create_app(manifest_path: str | Path, *, token: str | None = None, limits: Limits | None = None,
               cache_dir: Path | None = None, cors_origins: tuple[str, ...] | list[str] = (),
               watch: bool = False) -> FastAPI:
    """The server for the manifest at ``manifest_path``. Raises UsageError when it does not load.

    ``token``: every request must carry ``Authorization: Bearer <token>``. ``cors_origins``:
    origins allowed to call from a browser (none by default: CORS off). ``watch``: build at
    start and whenever the manifest or its inputs change (``serve --watch``).
    """
    limits = limits or Limits()
    project = ServedProject(manifest_path, cache_dir)
    synth = Synthesizer(project, limits)
    hub = events.EventHub()
    builds = BuildRunner(project, synth.executor, synth.workers, publish=hub.publish)
    admission = Admission(limits.max_queued, synth.workers)
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await asyncio.to_thread(synth.warm)  # workers ready before the first request
        auto = AutoBuild(project, builds) if watch else None
        if auto is not None:
            auto.start()
        try:
            yield
        finally:
            if auto is not None:
                await asyncio.to_thread(auto.close)
            # Let a running build finish (its outputs and the cache are written atomically, so
            # stopping it would corrupt nothing, but it would have to start over).
            await asyncio.to_thread(builds.wait, SHUTDOWN_WAIT)
            hub.close()
            batches.close()
            await asyncio.to_thread(synth.close)

    app = FastAPI(title="assetbuild", version=__version__, lifespan=lifespan,
                  description="Synthesis and audition server for an assetbuild project (docs/server.md).")
    app.state.project, app.state.synth, app.state.builds = project, synth, builds
    app.state.events, app.state.admission = hub, admission

    def output_dir() -> Path:
        return project.current().manifest.output_dir

    @app.get("/health", response_model=Health)
    def health() -> dict[str, Any]:
        return {"status": "degraded" if project.error else "ok", "version": __version__,
                "uptime": round(time.monotonic() - started, 3),
                "queue_depth": synth.active + batches.waiting,
                "build": builds.status()["status"], "backends_loaded": sorted(synth.loaded),
                "workers": synth.workers, "manifest": str(project.path), "manifest_error": project.error}

    @app.get("/backends", response_model=list[Backend])
    def list_backends() -> list[dict[str, Any]]:
        return info.backend_rows()

    @app.get("/models", response_model=list[Model])
    def list_models() -> list[dict[str, Any]]:
        return info.model_rows()

    @app.post("/tts/synthesize", response_model=SynthesizeResult, responses={
        200: {"description": "The audio (response=binary; metadata in X-* headers) or JSON (response=json).",
              "content": {"audio/wav": {}, "audio/ogg": {}, "application/octet-stream": {}}},
        413: {"description": "text or body too long"}, 422: {"description": "invalid field (named in `loc`)"},
        429: {"description": "the synthesis queue is full (see Retry-After)"},
        502: {"description": "the backend failed (the cause is given)"}, 504: {"description": "timed out"}})
    def synthesize(body: SynthesizeRequest) -> Any:
        if (too_long := _text_too_long(body.text, limits, ["body", "text"])) is not None:
            return too_long
        if not admission.admit(1):
            return _queue_full(admission)
        begun = time.perf_counter()
        try:
            status, out, error = _run(synth, body)
        finally:
            admission.release(1, time.perf_counter() - begun)
        if out is None:
            return JSONResponse(error, status)
        meta = out.meta()
        if body.response == "json":
            return JSONResponse({**meta, "audio": base64.b64encode(out.audio).decode("ascii")})
        return Response(out.audio, media_type=out.content_type, headers=_headers(meta))

    def batch_item(line: Line) -> tuple[int, dict[str, Any]]:
        begun = time.perf_counter()
        try:  # admitted with its batch
            status, out, error = _run(synth, line)
        finally:
            admission.release(1, time.perf_counter() - begun)
        if out is None:
            return status, error
        return 200, {**out.meta(), "audio": base64.b64encode(out.audio).decode("ascii")}

    batches = Batches(batch_item, synth.workers)
    app.state.batches = batches

    @app.post("/tts/batch", status_code=202, response_model=BatchStatus, responses={
        413: {"description": "too many items, or an item's text too long"},
        429: {"description": "the synthesis queue has no room for the items (see Retry-After)"}})
    def start_batch(body: BatchRequest) -> Any:
        if len(body.items) > limits.max_batch_items:
            return JSONResponse({"detail": [{"loc": ["body", "items"], "type": "too_long",
                                             "msg": f"has {len(body.items)} items; at most "
                                                    f"{limits.max_batch_items} are accepted"}]}, 413)
        for i, item in enumerate(body.items):
            if (too_long := _text_too_long(item.text, limits, ["body", "items", i, "text"])) is not None:
                return too_long
        if not admission.admit(len(body.items)):
            return _queue_full(admission)
        return batches.submit(body.items).status()

    @app.get("/tts/batch/{job_id}", response_model=BatchStatus, responses={404: {"description": "no such job"}})
    def batch_status(job_id: str) -> dict[str, Any]:
        return _job(batches, job_id).status()

    @app.get("/tts/batch/{job_id}/results", response_model=BatchResults,
             responses={404: {"description": "no such job"}})
    def batch_results(job_id: str) -> dict[str, Any]:
        return _job(batches, job_id).results()

    @app.websocket("/tts/stream")
    async def tts_stream(websocket: WebSocket) -> None:
        """Input streaming with character alignment (docs/server.md, `WebSocket /tts/stream`)."""
        await stream.serve(websocket, synth, admission, limits)

    @app.websocket("/events")
    async def build_events(websocket: WebSocket) -> None:
        """Build events as JSON messages (docs/server.md, `WebSocket /events`)."""
        await events.serve(websocket, hub, builds.status)

    @app.get("/assets", responses={404: {"description": "not built yet"}})
    def assets() -> Response:
        return Response(_pack_path(output_dir()).read_bytes(), media_type="application/json")

    @app.get("/assets/{asset_id:path}", responses={
        200: {"description": "The asset's file (HTTP range requests supported).", "content": {"audio/*": {}}},
        404: {"description": "no such asset, or not built yet"}})
    def asset_file(asset_id: str, locale: str | None = Query(None)) -> FileResponse:
        out = output_dir()
        doc = json.loads(_pack_path(out).read_bytes())
        records = [r for r in [*doc.get("assets", []), *doc.get("sequences", [])] if isinstance(r, dict)]
        wanted = f"{locale}/{asset_id}" if locale else asset_id
        match = next((r for r in records if "id" in r and record_key(r) == wanted), None)
        if match is None and not locale:  # a localised line by its bare id: the first locale's
            match = next((r for r in records if r.get("id") == asset_id), None)
        if match is None or not isinstance(match.get("file"), str):
            raise HTTPException(404, f"no asset '{wanted}' in {out / 'assetpack.json'}")
        path = (out / match["file"]).resolve()
        if not path.is_relative_to(out.resolve()) or not path.is_file():
            raise HTTPException(404, f"the file of '{wanted}' is missing; POST /build")
        return FileResponse(path, filename=path.name, content_disposition_type="inline")

    @app.post("/build", status_code=202, response_model=BuildState,
              responses={409: {"description": "a build is already running"}})
    def start_build() -> Any:
        try:
            return builds.start()
        except BuildBusy as exc:
            return JSONResponse({"detail": "a build is already running", "build": exc.state}, 409)

    @app.get("/build", response_model=BuildState)
    def build_status() -> dict[str, Any]:
        return builds.status()

    @app.get("/report", response_class=HTMLResponse, responses={404: {"description": "not built yet"}})
    def report() -> HTMLResponse:
        path = output_dir() / REPORT
        if not path.is_file():
            raise HTTPException(404, "no report yet; POST /build")
        # Its players name files relative to the output folder, which is served under /files/.
        html = path.read_text(encoding="utf-8").replace(_PLAYER, _PLAYER + "/files/")
        return HTMLResponse(html.replace("</body>", live.SCRIPT + "</body>", 1))

    app.mount("/files", StaticFiles(directory=project.current().manifest.output_dir, check_dir=False), name="files")

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    if token:
        app.add_middleware(BearerAuth, token=token)
    if cors_origins:  # outermost, so that preflight requests (which carry no token) are answered
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Range"],
                           expose_headers=list(_HEADER_NAMES.values()))
    return app


_PLAYER = '<audio controls preload="none" src="'

_HEADER_NAMES = {"duration": "X-Duration", "sample_rate": "X-Sample-Rate", "channels": "X-Channels",
                 "sample_format": "X-Sample-Format", "processing_time": "X-Processing-Time",
                 "real_time_factor": "X-Real-Time-Factor", "cache": "X-Cache", "key": "X-Asset-Key",
                 "backend": "X-Backend", "loudness": "X-Loudness", "timing": "X-Timing", "words": "X-Alignment"}


def _headers(meta: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, name in _HEADER_NAMES.items():
        value = meta.get(key)
        if value is None:
            continue
        if key == "words":
            text = json.dumps(value, separators=(",", ":"))  # ASCII: non-ASCII text is escaped
            if len(text) > MAX_ALIGNMENT_HEADER:
                out["X-Alignment-Omitted"] = "too large for a header; ask for response=json"
                continue
            value = text
        out[name] = str(value)
    return out


def _run(synth: Synthesizer, body: Line) -> tuple[int, Any, dict[str, Any]]:
    """(status, outcome or None, error body) for one line: the error mapping of docs/server.md."""
    line = adhoc.Line(**body.model_dump(exclude={"response"}))
    try:
        return 200, synth.synthesize(line), {}
    except adhoc.RequestProblem as p:
        return p.status, None, {"detail": p.detail()}
    except BackendFailure as exc:
        return 502, None, {"detail": str(exc), "backend": exc.backend, "cause": exc.cause}
    except Timeout as exc:
        return 504, None, {"detail": str(exc)}
    except ProcessingFailure as exc:
        return 500, None, {"detail": f"processing failed: {exc}"}


def _text_too_long(text: str, limits: Limits, loc: list[Any]) -> JSONResponse | None:
    if len(text) <= limits.max_text_chars:
        return None
    return JSONResponse({"detail": [{"loc": loc, "type": "too_long", "msg": f"is {len(text)} characters; at most "
                                     f"{limits.max_text_chars} are accepted"}]}, 413)


def _queue_full(admission: Admission) -> JSONResponse:
    wait = admission.retry_after()
    return JSONResponse({"detail": f"the synthesis queue is full ({admission.max_queued} jobs); retry in about "
                                   f"{wait} s"}, 429, headers={"Retry-After": str(wait)})


def _job(batches: Batches, job_id: str) -> Any:
    job = batches.get(job_id)
    if job is None:
        raise HTTPException(404, f"no batch job '{job_id}' (jobs are kept in memory, the last 100 finished)")
    return job


def _pack_path(out: Path) -> Path:
    path = out / "assetpack.json"
    if not path.is_file():
        raise HTTPException(404, f"{path} not found; POST /build first")
    return path

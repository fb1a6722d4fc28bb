"""``POST /build``: an incremental build of the served manifest in a background thread.

One at a time: while one runs, another request is refused (409). Its events (started, plan,
asset, failed, finished) go to ``publish(event, data)`` (the ``/events`` WebSocket) from the
build's thread. The build is the ordinary
``pipeline.run.build`` (lockfile, cache, outputs, assetpack.json, report.html), run in the
server's warm worker pool. The manifest is reloaded first, so the build is of what is on disk;
a manifest that does not load fails the build and the previous outputs stay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from ..pipeline.executor import Executor
from .errors import BuildBusy
from .project import ServedProject


class BuildRunner:
    def __init__(self, project: ServedProject, executor: Executor, workers: int,
                 publish: Callable[[str, dict[str, Any]], None] | None = None):
        self.project, self.executor, self.workers = project, executor, workers
        self.publish = publish or (lambda event, data: None)
        self._busy = threading.Lock()
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._count = 0
        self._state: dict[str, Any] = {"id": 0, "status": "idle"}

    @property
    def running(self) -> bool:
        return self._busy.locked()

    def status(self) -> dict[str, Any]:
        with self._state_lock:
            return dict(self._state, progress=dict(self._state.get("progress") or {}))

    def start(self) -> dict[str, Any]:
        if not self._busy.acquire(blocking=False):
            raise BuildBusy(self.status())
        try:
            with self._state_lock:
                self._count += 1
                self._state = {"id": self._count, "status": "running", "started": time.time(),
                               "progress": {"total": None, "done": 0, "failed": 0}}
                build_id, started = self._count, self._state["started"]
            self._publish("started", {"build": build_id, "started": started})
            self._thread = threading.Thread(target=self._run, name="assetbuild-build", daemon=True)
            self._thread.start()
        except BaseException:
            self._busy.release()
            raise
        return self.status()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running build (at shutdown); True when none is left running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def _run(self) -> None:
        from ..pipeline.run import Options, build

        try:
            snap = self.project.reload()
            if self.project.error:
                raise UsageError(self.project.error)
            # The server's executor: heavy models stay loaded for the next request or build.
            options = Options(cache_dir=self.project.cache_dir, jobs=self.workers, executor=self.executor)
            result = build(snap.manifest, options, self._event)
            if result.failures:
                self._finish("failed", summary=result.summary())
            else:
                self._finish("finished", summary=result.summary())
        except UsageError as exc:  # the manifest does not load, or another build holds the project
            self._finish("error", error=str(exc))
        except Exception as exc:  # never let the thread die silently
            self._finish("error", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._busy.release()

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        with self._state_lock:
            progress = self._state.setdefault("progress", {})
            if kind == "plan":
                progress["total"] = data.get("entries", 0) - data.get("fresh", 0)
            elif kind == "asset":
                progress["done"] = progress.get("done", 0) + 1
            elif kind == "failed":
                progress["failed"] = progress.get("failed", 0) + 1
            build_id = self._state.get("id")
        if kind in ("plan", "asset", "failed"):  # the build's own "finish": see _finish
            self._publish(kind, {"build": build_id, **data})

    def _finish(self, status: str, **extra: Any) -> None:
        with self._state_lock:
            self._state.update(status=status, finished=time.time(),
                               seconds=round(time.time() - self._state.get("started", time.time()), 3), **extra)
            event = {"build": self._state.get("id"), "status": status, "seconds": self._state["seconds"], **extra}
        self._publish("finished", event)

    def _publish(self, event: str, data: dict[str, Any]) -> None:
        try:
            self.publish(event, data)
        except Exception:  # a listener must never break the build
            pass

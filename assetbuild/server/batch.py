"""``POST /tts/batch``: many lines as one job, with progress and results.

Jobs live in memory (the last :data:`KEEP` of them); their items run on a few threads, each
through ``Synthesizer.synthesize`` like a single request, so they share its cache and pool and
one failing item does not stop the others.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

KEEP = 100  # finished jobs kept for their results


@dataclass
class Job:
    id: str
    total: int
    created: float = field(default_factory=time.time)
    items: list[dict[str, Any] | None] = field(default_factory=list)
    started: int = 0
    completed: int = 0
    failed: int = 0
    finished: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"id": self.id, "status": "finished" if self.completed == self.total else "running",
                    "total": self.total, "completed": self.completed, "failed": self.failed,
                    "created": self.created,
                    "seconds": round(self.finished - self.created, 3) if self.finished else None}

    def results(self) -> dict[str, Any]:
        out = self.status()
        with self.lock:
            out["items"] = [item if item is not None else {"index": i, "status": "pending"}
                            for i, item in enumerate(self.items)]
        return out


class Batches:
    def __init__(self, run_item: Callable[[Any], tuple[int, dict[str, Any]]], threads: int):
        """``run_item(line) -> (HTTP status, JSON body)``, as /tts/synthesize would answer."""
        self.run_item = run_item
        self._executor = ThreadPoolExecutor(max(1, threads), thread_name_prefix="assetbuild-batch")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, lines: list[Any]) -> Job:
        job = Job(uuid.uuid4().hex, len(lines), items=[None] * len(lines))
        with self._lock:
            self._jobs[job.id] = job
            finished = [j for j in self._jobs.values() if j.finished is not None]
            for old in finished[:max(0, len(finished) - KEEP)]:
                del self._jobs[old.id]
        for i, line in enumerate(lines):
            self._executor.submit(self._one, job, i, line)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    @property
    def waiting(self) -> int:
        """Items not yet started (those running count in the synthesizer's queue depth)."""
        with self._lock:
            return sum(j.total - j.started for j in self._jobs.values())

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _one(self, job: Job, index: int, line: Any) -> None:
        with job.lock:
            job.started += 1
        try:
            status, body = self.run_item(line)
        except Exception as exc:  # never leave an item pending
            status, body = 500, {"detail": f"{type(exc).__name__}: {exc}"}
        with job.lock:
            job.items[index] = {"index": index, "status": status, **body}
            job.completed += 1
            job.failed += status != 200
            if job.completed == job.total:
                job.finished = time.time()

"""Where stage jobs run: the one place that owns worker processes and loaded heavy models.

:class:`Executor` is the interface the realise path submits to; :class:`LocalExecutor` runs
on this machine: a process pool for processing and for backends that declare
``parallel = True`` (cheap CPU models such as the embedded ones), and one *heavy lane* for the
others: a single thread of this process that keeps one heavy model resident at a time (load,
run its batches, unload before another loads). ``build``, ``watch`` and ``serve`` all use it;
``serve`` shares one between its builds and its requests, so they share the heavy lane too.
A cluster executor (Ray) is another implementation of the same interface.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from .. import backends
from ..records import Processed
from . import worker
from .outcome import Failure
from .worker import GenerateJob, ProcessJob

T = TypeVar("T")


class Executor(Protocol):
    """Runs stage jobs somewhere and hands back futures.

    A job reads its inputs from and writes its results to the cache at ``cache_root``, so a
    job that dies loses only itself. Futures of ``generate`` hold one failure or None per job.
    """

    @property
    def workers(self) -> int:
        """How many jobs run at once (the realise path sizes parallel batches by it)."""
        ...

    def generate(self, cache_root: str, backend: str, jobs: list[GenerateJob],
                 urgent: bool = False) -> Future[list[Failure | None]]:
        """Generate ``jobs`` with ``backend``, in its lane: the pool, or the heavy lane.
        ``urgent`` (a server request): before the jobs already queued, where the lane allows."""
        ...

    def process(self, cache_root: str, job: ProcessJob) -> Future[Processed]:
        """Master and encode one generated sound."""
        ...

    def release(self) -> None:
        """Unload any resident heavy model (frees its memory; the next job loads it again)."""
        ...

    def shutdown(self, kill: bool = False) -> None:
        """Stop: wait for running jobs, or with ``kill`` terminate them (Ctrl-C). Releases models."""
        ...


class HeavyLane:
    """One thread for heavy models, with the resident model as state behind a lock: however
    many callers submit (a build and server requests at once), one model is loaded at a time.

    Jobs run one batch at a time, urgent ones first: a server request waits for the batch under
    way, not for every batch a build has queued. Among jobs of equal urgency, first come first
    served.
    """

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Future[Any] | None, tuple[Any, ...]]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()  # the resident model
        self._resident: str | None = None
        self._state = threading.Lock()  # the thread and whether the lane is shut down
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def resident(self) -> str | None:
        with self._lock:
            return self._resident

    def submit(self, cache_root: str, name: str, jobs: list[GenerateJob],
               urgent: bool = False) -> Future[list[Failure | None]]:
        future: Future[list[Failure | None]] = Future()
        with self._state:
            if self._closed:
                raise RuntimeError("the heavy lane is shut down")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="assetbuild-heavy", daemon=True)
                self._thread.start()
            self._queue.put((0 if urgent else 1, next(self._order), future, (cache_root, name, jobs)))
        return future

    def _loop(self) -> None:
        while True:
            _, _, future, args = self._queue.get()
            if future is None:  # shut down
                return
            if not future.set_running_or_notify_cancel():  # cancelled while queued
                continue
            try:
                future.set_result(self._run(*args))
            except BaseException as exc:  # the caller sees it; the lane goes on
                future.set_exception(exc)

    def _run(self, cache_root: str, name: str, jobs: list[GenerateJob]) -> list[Failure | None]:
        with self._lock:
            if self._resident not in (None, name):
                self._unload()
            backend = backends.create(name)
            if self._resident is None:
                try:
                    backend.load()
                except Exception as exc:  # e.g. missing model files: every job of the batch fails alike
                    return worker.load_failures(name, exc, jobs)
                self._resident = name
            return worker.generate_with(backend, cache_root, jobs)

    def release(self) -> None:
        with self._lock:
            self._unload()

    def _unload(self) -> None:
        if self._resident is not None:
            name, self._resident = self._resident, None
            backends.create(name).unload()

    def shutdown(self) -> None:
        """Cancel the queued jobs, wait for the one under way, unload the model."""
        with self._state:
            self._closed, thread = True, self._thread
        while True:
            try:
                _, _, future, _ = self._queue.get_nowait()
            except queue.Empty:
                break
            if future is not None:
                future.cancel()
        if thread is not None:
            self._queue.put((-1, next(self._order), None, ()))
            thread.join()
        self.release()


class LocalExecutor:
    """A process pool and a heavy lane on this machine.

    The pool starts on first use (a build that only places cached files needs no workers) and
    a broken one (a worker was killed) is replaced on the next submit. ``warm``: parallel
    backends every worker loads when it starts, for long-lived executors (``watch``, ``serve``)
    whose first job must not pay for imports.
    """

    def __init__(self, workers: int = 0, warm: list[str] | None = None):
        self._workers = max(1, workers or os.cpu_count() or 1)
        self._warm = list(warm) if warm is not None else None
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._closed = False
        self.heavy = HeavyLane()

    @property
    def workers(self) -> int:
        return self._workers

    def generate(self, cache_root: str, backend: str, jobs: list[GenerateJob],
                 urgent: bool = False) -> Future[list[Failure | None]]:
        if backends.get(backend).parallel:
            return self._submit(worker.generate_batch, cache_root, backend, jobs)
        return self.heavy.submit(cache_root, backend, jobs, urgent)

    def process(self, cache_root: str, job: ProcessJob) -> Future[Processed]:
        return self._submit(worker.process, cache_root, job)

    def start(self) -> list[Future[None]]:
        """Start every worker now (each imports the audio chain and loads the warm backends);
        the futures are done when they are ready."""
        return [self._submit(_noop) for _ in range(self._workers)]

    def release(self) -> None:
        self.heavy.release()

    def shutdown(self, kill: bool = False) -> None:
        with self._pool_lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            if kill:  # Ctrl-C: finished jobs are cached; running ones leave only temp files
                _terminate(pool)
            pool.shutdown(wait=True, cancel_futures=True)
        self.heavy.shutdown()

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        for attempt in (1, 2):
            with self._pool_lock:
                if self._closed:  # a caller that outlived its owner must not start workers nobody stops
                    raise RuntimeError("the executor is shut down")
                if self._pool is None:
                    self._pool = self._new_pool()
                pool = self._pool
            try:
                return pool.submit(fn, *args)
            except BrokenProcessPool:  # a worker died: its jobs failed; start a fresh pool
                with self._pool_lock:
                    if self._pool is pool:
                        self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _new_pool(self) -> ProcessPoolExecutor:
        # forkserver/spawn: never fork this (possibly multi-threaded) process directly.
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        if self._warm is None:
            return ProcessPoolExecutor(self._workers, context, initializer=_ignore_sigint)
        return ProcessPoolExecutor(self._workers, context, initializer=_warm_worker, initargs=(self._warm,))


class Lazy:
    """An executor made when the first job needs it (starting a Ray cluster costs seconds: a
    build that only fetches and places from caches should not pay them)."""

    def __init__(self, make: Callable[[], Executor], workers: int):
        self._make, self._workers = make, workers
        self._real: Executor | None = None
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        return self._real.workers if self._real is not None else self._workers

    def _get(self) -> Executor:
        with self._lock:
            if self._real is None:
                self._real = self._make()
            return self._real

    def generate(self, cache_root: str, backend: str, jobs: list[GenerateJob],
                 urgent: bool = False) -> Future[list[Failure | None]]:
        return self._get().generate(cache_root, backend, jobs, urgent)

    def process(self, cache_root: str, job: ProcessJob) -> Future[Processed]:
        return self._get().process(cache_root, job)

    def release(self) -> None:
        if self._real is not None:
            self._real.release()

    def shutdown(self, kill: bool = False) -> None:
        if self._real is not None:
            self._real.shutdown(kill)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Terminate a pool's workers (idle ones, or an interrupted build's)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        terminate()
        return
    # Before 3.14 there is no public way to stop a pool's running jobs; this is the only place
    # that reaches into the pool.
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()


def _noop() -> None:
    """Submitted once per worker to start a pool's workers ahead of the first job."""


def _ignore_sigint() -> None:
    # Ctrl-C reaches every process of the terminal's group; the main process handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _warm_worker(backend_names: list[str]) -> None:
    """Initializer of a long-lived pool: ignore Ctrl-C (like a build's workers), import the
    audio chain and load the parallel backends named, before the first job needs them."""
    _ignore_sigint()
    try:
        from ..audio import cleanup, master  # noqa: F401
        from ..export import audiofile, lipsync, subtitles  # noqa: F401
        from ..speech import alignment, script  # noqa: F401

        for name in backend_names:
            try:
                worker.loaded(name)
            except Exception:  # reported by the build when a job needs it
                pass
    except Exception:  # a failed warm-up only costs the first job its imports
        pass

"""The Ray executor: the pipeline's jobs on a Ray cluster (extra ``[ray]``, docs/scale.md).

A second implementation of :class:`~.executor.Executor`. Heavy backends (``parallel = False``)
run in long-lived actors that keep their model loaded across batches: one actor per GPU the
backend's ``gpus`` asks for (so one load per model per GPU), or one CPU actor when the cluster
has no GPU for it. An API backend runs in one actor, so its own concurrency limit holds for
the whole cluster. Parallel backends and processing run as CPU tasks. Batches go to the next
idle actor; an actor or task whose process dies is restarted and its batch retried (Ray's
``max_restarts`` / ``max_retries``), and finished work is kept.

Jobs on other machines cannot see the driver's cache folder. What they need and make travels
as a :class:`Bundle` (cache entries with their blobs) through Ray's object store; with a remote
cache this machine may write to, a generate actor uploads its results there instead, so the
raw generated audio never passes through the driver, and the process task fetches it from
there. Every worker keeps a scratch cache on its node.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from .. import backends
from ..errors import UsageError, first_line
from ..records import Processed
from . import worker
from .cache import Cache
from .outcome import Failure
from .remote import Remote, RemoteSpec
from .worker import GenerateJob, ProcessJob

T = TypeVar("T")
RETRIES = 2  # a dead actor is restarted, a dead task re-run, this many times


@dataclass
class Bundle:
    """Cache entries and the blobs they name, to carry between machines."""

    entries: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (stage, key, body)
    blobs: dict[str, bytes] = field(default_factory=dict)


def bundle_of(cache: Cache, stage: str, keys: list[str]) -> Bundle | None:
    """The entries ``keys`` of ``stage`` with their blobs; None when one is not in ``cache``."""
    out = Bundle()
    for key in keys:
        entry = cache.get_entry(stage, key)
        if entry is None:
            return None
        for sha in entry.get("blobs", []):
            blob = cache.verified_blob(sha)
            if blob is None:
                return None
            out.blobs[sha] = blob.read_bytes()
        out.entries.append((stage, key, {k: v for k, v in entry.items() if k not in ("key", "checksum")}))
    return out


def unpack(cache: Cache, bundle: Bundle) -> None:
    for data in bundle.blobs.values():
        cache.put_bytes(data)  # named by its content: a blob that changed on the way is a new name
    for stage, key, body in bundle.entries:
        cache.put_entry(stage, key, body)


def scratch() -> Cache:
    """This node's scratch cache (shared by the workers of one node; writes are atomic)."""
    return Cache(os.environ.get("ASSETBUILD_RAY_SCRATCH") or os.path.join(tempfile.gettempdir(),
                                                                          "assetbuild-ray-cache"))


# -- what runs on the cluster -----------------------------------------------------------------

def _generate_task(name: str, jobs: list[GenerateJob], write: RemoteSpec | None) -> tuple[
        list[Failure | None], Bundle | None]:
    cache = scratch()
    failures = worker.generate_batch(str(cache.root), name, jobs)
    return failures, _results(cache, jobs, failures, write)


def _process_task(inputs: Bundle | None, read: RemoteSpec | None, write: RemoteSpec | None,
                  job: ProcessJob) -> tuple[Processed, Bundle | None]:
    cache = scratch()
    if inputs is not None:
        unpack(cache, inputs)
    elif not cache.has_entry("generate", job.generate_key) and read is not None:
        Remote(read).fetch(job.generate_key, cache)  # a miss: process raises CacheMiss
    processed = worker.process(str(cache.root), job)
    if write is not None:
        try:
            Remote(write).push("process", job.process_key, cache)
        except Exception:  # an upload is never a failed job: the driver has the bundle
            pass
    return processed, bundle_of(cache, "process", [job.process_key])


class ModelActor:
    """One loaded heavy backend on one GPU (or the CPU), kept across batches."""

    def __init__(self, name: str, write: RemoteSpec | None):
        self.name, self.write = name, write
        self.backend = backends.create(name)
        self.loaded = False

    def generate(self, jobs: list[GenerateJob]) -> tuple[list[Failure | None], Bundle | None]:
        cache = scratch()
        if not self.loaded:
            try:
                self.backend.load()
            except Exception as exc:  # e.g. missing model files: every job of the batch fails alike
                return worker.load_failures(self.name, exc, jobs), None
            self.loaded = True
        failures = worker.generate_with(self.backend, str(cache.root), jobs)
        return failures, _results(cache, jobs, failures, self.write)

    def pid(self) -> int:
        return os.getpid()


def _results(cache: Cache, jobs: list[GenerateJob], failures: list[Failure | None],
             write: RemoteSpec | None) -> Bundle | None:
    """What a generate job hands back: nothing but its failures when it could upload its
    results to the remote cache, else the results themselves."""
    done = [j.key for j, f in zip(jobs, failures, strict=True) if f is None]
    if write is not None:
        try:
            remote = Remote(write)
            if all(remote.push("generate", key, cache) for key in done) and not remote.down:
                return None
        except Exception:  # the upload failed: the results go back to the driver instead
            pass
    return bundle_of(cache, "generate", done)


# -- the driver's side ------------------------------------------------------------------------

class RayExecutor:
    """Jobs on a Ray cluster: ``address`` ("auto", "ray://host:port", "host:port"), or a Ray
    started for this build on this machine with ``workers`` CPUs. ``remote``: the team's remote
    cache; with write access the generate actors upload there."""

    def __init__(self, address: str | None = None, workers: int = 0, remote: RemoteSpec | None = None):
        try:
            import ray
        except ImportError:
            raise UsageError('--executor ray needs its extra: pip install "assetbuild[ray]"') from None
        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}  # we report, not Ray
            try:
                if address:
                    ray.init(address=address, **quiet)
                else:  # a Ray of our own for this build, on loopback, telling nobody about it
                    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                    ray.init(num_cpus=workers or None, include_dashboard=False, _node_ip_address="127.0.0.1",
                             **quiet)
            except Exception as exc:  # a wrong address, a cluster that is down or of another Ray version
                where = f"the Ray cluster at {address}" if address else "a Ray on this machine"
                raise UsageError(f"--executor ray: cannot start or reach {where}: {first_line(exc)}") from None
            self._owned = True
        resources = ray.cluster_resources()
        self._workers = max(1, int(resources.get("CPU", 1)))
        self._read = remote
        self._write = remote if remote is not None and remote.write else None
        self._lanes: dict[str, _Lane] = {}
        self._active: str | None = None  # the heavy backend whose actors hold the GPUs now
        self._parked: deque[tuple[str, list[GenerateJob], bool, Future[Any]]] = deque()  # the others' batches
        self._lock = threading.Lock()
        # Ray calls back from its own event-loop thread, which must not wait on Ray: what a
        # finished batch sets off (the next batch, a new actor, the next backend) runs here.
        self._control = ThreadPoolExecutor(1, thread_name_prefix="assetbuild-ray")
        options = {"max_retries": RETRIES}
        self._generate = ray.remote(_generate_task).options(num_cpus=1, **options)
        self._process = ray.remote(_process_task).options(num_cpus=1, **options)

    @property
    def workers(self) -> int:
        return self._workers

    def generate(self, cache_root: str, backend: str, jobs: list[GenerateJob],
                 urgent: bool = False) -> Future[list[Failure | None]]:
        cache = Cache(cache_root)

        def take(result: tuple[list[Failure | None], Bundle | None]) -> list[Failure | None]:
            failures, bundle = result
            if bundle is not None:
                unpack(cache, bundle)
            return failures

        if backends.get(backend).parallel:
            return _chain(self._generate.remote(backend, jobs, self._write).future(), take)
        return _chain(self._heavy(backend, jobs, urgent), take)

    def process(self, cache_root: str, job: ProcessJob) -> Future[Processed]:
        cache = Cache(cache_root)
        inputs = bundle_of(cache, "generate", [job.generate_key])  # None: on the remote (or nowhere)

        def take(result: tuple[Processed, Bundle | None]) -> Processed:
            processed, bundle = result
            if bundle is not None:
                unpack(cache, bundle)
            return processed

        return _chain(self._process.remote(inputs, self._read, self._write, job).future(), take)

    def actors(self, backend: str) -> list[Any]:
        """The actors serving ``backend`` now (for tests and diagnostics)."""
        with self._lock:
            lane = self._lanes.get(backend)
            return list(lane.actors) if lane else []

    def release(self) -> None:
        """Stop the model actors (their GPU memory is freed); the next batch starts new ones."""
        with self._lock:
            lanes, self._lanes, self._active = self._lanes, {}, None
            parked, self._parked = self._parked, deque()
        for _, _, _, future in parked:
            future.cancel()
        for lane in lanes.values():
            lane.stop()

    def shutdown(self, kill: bool = False) -> None:
        self.release()
        self._control.shutdown(wait=True)
        if self._owned:
            self._ray.shutdown()

    # -- heavy models, one backend's actors at a time ------------------------------------------
    def _heavy(self, backend: str, jobs: list[GenerateJob], urgent: bool) -> Future[Any]:
        """One heavy backend holds the cluster's GPUs at a time (as one model at a time holds
        a machine's): batches for another wait until its batches are done and its actors gone.
        Two backends sharing the GPUs could each hold some and wait for the rest for ever."""
        future: Future[Any] = Future()
        with self._lock:
            if self._active not in (None, backend):
                self._parked.append((backend, jobs, urgent, future))
                return future
            lane = self._start(backend)
        lane.submit(jobs, urgent, future)
        return future

    def _start(self, backend: str) -> _Lane:
        """The lane for ``backend`` (under the lock), started with its actors if need be."""
        self._active = backend
        lane = self._lanes.get(backend)
        if lane is None:
            gpus = float(backends.get(backend).gpus)
            count = _fitting(self._ray.nodes(), gpus)
            # Without a GPU for it, one actor on the CPU that reserves none: processing tasks
            # must always find a CPU (a model that would not fit is the backend's to report).
            per = gpus if count else 0.0
            actor = self._ray.remote(ModelActor).options(num_gpus=per, num_cpus=0, max_restarts=RETRIES,
                                                         max_task_retries=RETRIES)
            lane = self._lanes[backend] = _Lane(lambda: actor.remote(backend, self._write), max(count, 1),
                                                self._idle, self._control.submit)
        return lane

    def _idle(self, lane: _Lane) -> None:
        """A lane has nothing queued or running: free its GPUs for the next backend waiting."""
        with self._lock:
            if not self._parked or self._lanes.get(str(self._active)) is not lane or not lane.drained:
                return
            del self._lanes[str(self._active)]
            backend = self._parked[0][0]
            batches = [item for item in self._parked if item[0] == backend]
            self._parked = deque(item for item in self._parked if item[0] != backend)
            nxt = self._start(backend)
        lane.stop()
        for _, jobs, urgent, future in batches:
            nxt.submit(jobs, urgent, future)


def _fitting(nodes: list[dict[str, Any]], gpus: float) -> int:
    """How many instances of ``gpus`` GPUs fit on the cluster's live nodes, node by node."""
    if gpus <= 0:
        return 0
    return sum(int(float(n.get("Resources", {}).get("GPU", 0.0)) // gpus + 1e-9) for n in nodes if n.get("Alive"))


class _Lane:
    """Batches for one heavy backend, each to the next idle actor (urgent ones first). An actor
    that is gone for good (its restarts used up) is replaced, a bounded number of times, and
    its batch sent again."""

    def __init__(self, new_actor: Callable[[], Any], count: int, on_idle: Callable[[_Lane], None],
                 later: Callable[..., Any]):
        self._new_actor, self._on_idle, self._later = new_actor, on_idle, later
        self.actors = [new_actor() for _ in range(count)]
        self._idle = deque(self.actors)
        self._queue: list[tuple[int, int, list[GenerateJob], Future[Any], int]] = []
        self._order = itertools.count()
        self._running = 0
        self._replacements = RETRIES * count
        self._lock = threading.Lock()

    @property
    def drained(self) -> bool:
        with self._lock:
            return not self._queue and not self._running

    def submit(self, jobs: list[GenerateJob], urgent: bool, future: Future[Any], tries: int = 0) -> None:
        with self._lock:
            heapq.heappush(self._queue, (0 if urgent else 1, next(self._order), jobs, future, tries))
        self._dispatch()

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if not self._idle or not self._queue:
                    return
                actor = self._idle.popleft()
                priority, _, jobs, future, tries = heapq.heappop(self._queue)
                self._running += 1
            if not future.running() and not future.set_running_or_notify_cancel():  # cancelled while queued
                with self._lock:
                    self._idle.appendleft(actor)
                    self._running -= 1
                continue
            ref = actor.generate.remote(jobs)
            step = partial(self._finished, actor, jobs, future, tries, priority == 0)
            ref.future().add_done_callback(lambda done, step=step: self._later(step, done))

    def _finished(self, actor: Any, jobs: list[GenerateJob], future: Future[Any], tries: int, urgent: bool,
                  done: Future[Any]) -> None:
        from ray.exceptions import RayActorError

        error = done.exception()
        with self._lock:
            self._running -= 1
            if isinstance(error, RayActorError):  # gone for good: a new one, if we may
                self.actors.remove(actor)
                if self._replacements > 0:
                    self._replacements -= 1
                    fresh = self._new_actor()
                    self.actors.append(fresh)
                    self._idle.append(fresh)
                retry = tries < RETRIES and bool(self.actors)
            else:
                self._idle.append(actor)
                retry = False
        if retry:
            self.submit(jobs, urgent, future, tries + 1)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(done.result())
        self._dispatch()
        if self.drained:
            self._on_idle(self)

    def stop(self) -> None:
        import ray

        with self._lock:
            queued, self._queue = self._queue, []
            actors = list(self.actors)
        for _, _, _, future, _ in queued:
            future.cancel()
        for actor in actors:
            ray.kill(actor)


def _chain(source: Future[Any], then: Callable[[Any], T]) -> Future[T]:
    """A future of ``then(result)`` once ``source`` is done (its exception, if it fails)."""
    out: Future[T] = Future()

    def done(f: Future[Any]) -> None:
        if not out.set_running_or_notify_cancel():
            return
        try:
            out.set_result(then(f.result()))
        except BaseException as exc:  # the job's own (CacheMiss, a backend error) or the cluster's
            out.set_exception(_cause(exc))

    source.add_done_callback(done)
    return out


def _cause(exc: BaseException) -> BaseException:
    """The exception a Ray job raised, rather than Ray's wrapper around it."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


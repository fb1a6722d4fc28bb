"""The one realise path: planned items + the cache + an executor -> outcomes.

Builds, ``watch`` and the server all turn planned items into outcomes here. An item planned
to *place* is read from the cache (every blob verified); one planned to *process* is mastered
from its cached generated audio; one planned to *generate* is generated, then processed.
Whatever is found corrupt on the way falls back a stage (a corrupt processed file is processed
again, corrupt generated audio is generated again, once), and every failure becomes an
:class:`~.outcome.Outcome` with a typed :class:`~.outcome.Failure`: one asset never stops the
others. The plan is not changed; what an item came to is in its outcome.

Generate jobs are batched per backend and model: across the workers for parallel backends,
and in full batches of similar length for heavy ones (a batch generates to its longest item).
"""

from __future__ import annotations

import dataclasses
import math
import queue
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from .. import backends
from ..errors import CacheMiss, first_line
from ..records import Processed
from . import keys
from .cache import Cache
from .executor import Executor
from .outcome import Action, Failure, Outcome, Status, Step
from .plan import Item
from .remote import Remote, RemoteUnavailable
from .worker import GenerateJob, process_job_for


def realise(items: list[Item], cache: Cache, executor: Executor, sample_rate: int,
            deadline: float | None = None, urgent: bool = False, remote: Remote | None = None,
            may_generate: Callable[[Item], str | None] | None = None) -> Generator[Outcome, None, None]:
    """Realise ``items`` (none of them fresh), yielding one outcome per item as each finishes.

    ``deadline`` (a ``time.monotonic()`` value): past it, raise TimeoutError and leave the jobs
    under way to finish into the cache. ``urgent``: someone is waiting (a server request), so
    its heavy batches go before those a build queued. ``remote``: the remote cache, for items
    the plan found there (fetched into ``cache`` first; a miss falls back to making them).
    ``may_generate``: asked before an item the plan did not mean to generate is generated
    after all (a fall-back); a reason it may not (``--locked``, ``--max-characters``) fails it.
    Closing the iterator early (or Ctrl-C) cancels the jobs not yet started.
    """
    return _Realiser(cache, executor, sample_rate, urgent, remote, may_generate).run(items, deadline)


class _Realiser:
    def __init__(self, cache: Cache, executor: Executor, sample_rate: int, urgent: bool, remote: Remote | None,
                 may_generate: Callable[[Item], str | None] | None):
        self.cache, self.executor, self.sample_rate, self.urgent = cache, executor, sample_rate, urgent
        self.remote, self.may_generate = remote, may_generate
        self.planned: dict[str, Action] = {}
        self.fetching: dict[Future[Any], str] = {}  # a fetch under way -> the stage it fetches
        self.fetched: set[str] = set()
        self.root = str(cache.root)
        self.pending: dict[Future[Any], tuple[Step, list[Item]]] = {}
        # Finished futures arrive here (O(1) per job, however many are pending).
        self.done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self.stage: dict[str, Action] = {}  # what runs for each item now
        self.generated: set[str] = set()
        self.regenerated: set[str] = set()
        self.waiting: dict[str, list[Item]] = {}  # generate key -> items waiting for it (leader first)
        self.ready: deque[Outcome] = deque()

    def run(self, items: list[Item], deadline: float | None) -> Generator[Outcome, None, None]:
        timed_out = False
        try:
            self.stage = {i.id: i.action for i in items}
            self.planned = dict(self.stage)
            for item in items:
                if item.action == Action.FETCH:
                    self.submit_fetch(item, "process")
                elif item.action == Action.PROCESS and item.fetch_generated:
                    self.submit_fetch(item, "generate")
                elif item.action == Action.PROCESS:
                    self.submit_process(item)
            self.submit_generate([i for i in items if i.action == Action.GENERATE and not i.heavy])
            self.submit_generate([i for i in items if i.action == Action.GENERATE and i.heavy])
            for item in items:  # while the workers run
                if item.action == Action.PLACE:
                    self.place(item)
            yield from self.flush()
            while self.pending:
                wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if wait <= 0:
                    timed_out = True
                    raise TimeoutError("the jobs under way did not finish in time")
                try:  # a timed get, because an untimed one cannot be interrupted by Ctrl-C
                    future = self.done.get(timeout=wait)
                except queue.Empty:
                    continue
                self.complete(future)
                yield from self.flush()
        finally:
            if not timed_out:  # Ctrl-C, or the caller stopped early: drop the jobs not yet started
                for future in list(self.pending):
                    future.cancel()

    def flush(self) -> Iterator[Outcome]:
        while self.ready:
            yield self.ready.popleft()

    # -- stages ----------------------------------------------------------------------------
    def submit_generate(self, items: list[Item]) -> None:
        groups: dict[tuple[str, bytes], list[Item]] = {}
        for item in items:
            refusal = None
            if self.planned.get(item.id) != Action.GENERATE and self.may_generate is not None:
                refusal = self.may_generate(item)
            if refusal:
                self.fail(item, Failure(item.id, Step.GENERATE, refusal))
                continue
            self.stage[item.id] = Action.GENERATE
            # Takes made by pitch/gain variation share one generated sound: generate it once.
            if item.generate_key in self.waiting:
                self.waiting[item.generate_key].append(item)
                continue
            self.waiting[item.generate_key] = [item]
            # A batch shares one model and one set of settings (a voice preset, sampling).
            r = item.request
            model = keys.canonical([item.generate_inputs.get("backend version"), r.kind, r.locale, r.emotion,
                                    r.settings])
            groups.setdefault((item.asset.backend, model), []).append(item)
        for (name, _), group in sorted(groups.items()):
            cls = backends.get(name)
            # Parallel backends: spread a group over the workers; heavy ones: full batches of
            # similar length, since a batch generates to its longest item.
            if not cls.parallel:
                size = min(cls.max_batch, group[0].request.settings.get("batch_size") or cls.max_batch)
                group = sorted(group, key=_expected_length)
            else:
                size = max(1, min(cls.max_batch, math.ceil(len(group) / self.executor.workers)))
            for start in range(0, len(group), size):
                batch = group[start:start + size]
                jobs = [GenerateJob(i.generate_key, i.request) for i in batch]
                self.track(self.executor.generate(self.root, name, jobs, urgent=self.urgent), Step.GENERATE, batch)

    def submit_fetch(self, item: Item, stage: str) -> None:
        if self.remote is None or self.remote.down:
            self.fall_back(item, stage)
            return
        key = item.process_key if stage == "process" else item.generate_key
        future = self.remote.submit_fetch(key, self.cache)
        self.fetching[future] = stage
        self.track(future, Step.FETCH, [item])

    def fall_back(self, item: Item, stage: str) -> None:
        """What was to come from the remote did not: make it here."""
        if stage == "process" and self.cache.has_entry("generate", item.generate_key):
            self.stage[item.id] = Action.PROCESS
            self.submit_process(item)
        elif stage == "process" and self.remote is not None and not self.remote.down:
            self.submit_fetch(item, "generate")  # its generated audio may be there still
        else:
            self.submit_generate([item])

    def submit_process(self, item: Item) -> None:
        job = process_job_for(item.asset, item.generate_key, item.process_key, self.sample_rate)
        self.track(self.executor.process(self.root, job), Step.PROCESS, [item])

    def track(self, future: Future[Any], step: Step, items: list[Item]) -> None:
        self.pending[future] = (step, items)
        future.add_done_callback(self.done.put)

    def complete(self, future: Future[Any]) -> None:
        step, items = self.pending.pop(future)
        if step == Step.FETCH:
            stage, item = self.fetching.pop(future), items[0]
            try:
                got = future.result()
            except RemoteUnavailable:  # --require-remote: the build stops, nothing is made here
                raise
            except Exception:  # something unforeseen in the download: make it here
                got = None
            if got != stage:
                self.fall_back(item, stage)
                return
            self.fetched.add(item.id)
            if stage == "process":
                self.stage[item.id] = Action.FETCH
                self.place(item)
            else:
                self.stage[item.id] = Action.PROCESS
                self.submit_process(item)
            return
        if step == Step.GENERATE:
            try:
                failures = future.result()
            except Exception as exc:  # the worker died (e.g. killed): fail the batch, keep going
                failures = [Failure(i.id, Step.GENERATE, f"worker failed: {first_line(exc)}", crash=True)
                            for i in items]
            for leader, failure in zip(items, failures, strict=True):
                for item in self.waiting.pop(leader.generate_key, [leader]):
                    if failure is not None:
                        self.fail(item, dataclasses.replace(failure, id=item.id))
                        continue
                    if item is leader:
                        self.generated.add(item.id)
                    else:
                        self.stage[item.id] = Action.PROCESS
                    self.submit_process(item)
            return
        item = items[0]
        try:
            processed = future.result()
        except CacheMiss:
            self.regenerate(item)
            return
        except BrokenProcessPool as exc:  # the worker died, not the asset's fault
            self.fail(item, Failure(item.id, Step.PROCESS, f"worker failed: {first_line(exc)}", crash=True))
            return
        except Exception as exc:
            self.fail(item, Failure(item.id, Step.PROCESS, first_line(exc)))
            return
        generated = self.stage[item.id] == Action.GENERATE
        self.finish(item, processed, Status.GENERATED if generated else Status.PROCESSED)

    def place(self, item: Item) -> None:
        entry = self.cache.get_entry("process", item.process_key)
        blob = self.cache.verified_blob(entry["file"]) if entry else None
        if entry is None or blob is None:  # corrupt or vanished: never export it, rebuild instead
            self.rebuild(item)
            return
        status = Status.FETCHED if self.stage[item.id] == Action.FETCH else Status.PLACED
        self.finish(item, Processed.from_json(entry["record"]), status, blob)

    def rebuild(self, item: Item) -> None:
        if self.stage[item.id] in (Action.PLACE, Action.FETCH) and self.cache.has_entry("generate", item.generate_key):
            self.stage[item.id] = Action.PROCESS
            self.submit_process(item)
        else:
            self.regenerate(item)

    def regenerate(self, item: Item) -> None:
        if item.id in self.regenerated:  # once only: the fresh entry is unreadable too
            self.fail(item, Failure(item.id, Step.PROCESS, "generated audio could not be read back from the cache"))
            return
        self.regenerated.add(item.id)
        self.submit_generate([item])

    def finish(self, item: Item, processed: Processed, status: Status, blob: Path | None = None) -> None:
        files = {"main": blob or self.cache.blob_path(processed.sha256)}
        for name, sha in processed.sidecars.items():
            side = self.cache.verified_blob(sha)
            if side is None:  # a sidecar file is corrupt or gone
                self.rebuild(item)
                return
            files[name] = side
        self.ready.append(Outcome(item.id, status, processed, files, generated=item.id in self.generated,
                                  fetched=item.id in self.fetched))

    def fail(self, item: Item, failure: Failure) -> None:
        self.ready.append(Outcome(item.id, Status.FAILED, failure=failure, generated=item.id in self.generated,
                                  fetched=item.id in self.fetched))


def _expected_length(item: Item) -> float:
    """Seconds an item will take: its duration, or for a line about 14 characters a second."""
    r = item.request
    return r.duration if r.duration is not None else len(r.text or r.prompt or "") / 14.0

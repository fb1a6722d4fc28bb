"""Synthesis through the build's own cache and stages.

A request becomes an Asset (``adhoc``), gets the generate and process keys a build would give
it, and runs the same two stage functions a build runs (``worker.generate_batch`` and
``worker.process``) in a warm worker pool. So a line the build already made (same text, voice,
settings and processing) is served straight from the cache, and a line synthesised here is
reused by the next build.

A request without ``seed`` whose line matches a dialogue line of the served manifest in
everything that shapes the generated audio takes that line's seed, so its cache keys are the
build's; any other request gets the seed a manifest entry with id ``request`` would get.
"""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import time
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Any

from .. import backends
from ..errors import first_line
from ..manifest.model import Asset
from ..pipeline import keys
from ..pipeline.cache import Cache
from ..pipeline.executor import LocalExecutor
from ..pipeline.outcome import Status, Step
from ..pipeline.plan import item_for, request_for
from ..pipeline.realise import realise
from ..records import Processed
from . import adhoc
from .errors import BackendFailure, ProcessingFailure, Timeout
from .limits import Limits
from .project import ServedProject, Snapshot

CONTENT_TYPES = {"wav": "audio/wav", "ogg": "audio/ogg", "opus": "audio/ogg; codecs=opus",
                 "pcm": "application/octet-stream"}
# An outcome's status as the response's `cache` field names it.
CACHE_STATUS = {Status.PLACED: "hit", Status.PROCESSED: "processed", Status.GENERATED: "generated"}


@dataclass
class Outcome:
    audio: bytes
    format: str
    content_type: str
    record: Processed  # the process stage's measurements (duration, loudness, words, ...)
    asset: Asset
    cache: str  # hit (served from the cache) | processed (generated audio reused) | generated
    key: str  # process key
    seconds: float

    @property
    def real_time_factor(self) -> float:
        duration = self.record.duration or 0.0
        return round(self.seconds / duration, 4) if duration else 0.0

    def meta(self) -> dict[str, Any]:
        r = self.record
        out = {
            "format": self.format, "content_type": self.content_type,
            "duration": r.duration, "sample_rate": r.sample_rate, "channels": r.channels,
            "processing_time": round(self.seconds, 4), "real_time_factor": self.real_time_factor,
            "cache": self.cache, "key": self.key, "backend": self.asset.backend, "voice": self.asset.voice,
            "locale": self.asset.locale, "loudness": r.loudness, "true_peak": r.true_peak,
            "text": r.text, "words": r.words or [], "timing": r.timing,
        }
        if self.format == "pcm":
            out["sample_format"] = "s16le"
        return out


class Synthesizer:
    """Requests through the realise path, on the server's one executor (shared with its builds,
    so a request and a build share the worker pool and the heavy lane)."""

    def __init__(self, project: ServedProject, limits: Limits):
        self.project, self.limits = project, limits
        self.workers = limits.workers or max(1, min(4, os.cpu_count() or 1))
        self.executor = LocalExecutor(self.workers, warm=self._parallel_backends())
        self._count_lock = threading.Lock()
        self.active = 0  # requests being synthesised now (the queue depth)
        self.loaded: set[str] = set()  # backends that have generated in this server

    def warm(self, timeout: float = 120.0) -> None:
        """Start the workers and wait until they are ready (at server start-up)."""
        from ..audio import master  # noqa: F401  (the process settings; numpy and scipy with it)

        wait(self.executor.start(), timeout=timeout)

    def _parallel_backends(self) -> list[str]:
        names = {a.backend for a in self.project.current().manifest.assets if a.kind == "dialogue"}
        out = []
        for name in names | {"espeak"}:
            try:
                if backends.get(name).parallel:
                    out.append(name)
            except Exception:  # an unknown backend: the manifest check reports it
                pass
        return sorted(out)

    def close(self) -> None:
        """Stop the workers and free the heavy models (and their GPU memory)."""
        self.executor.shutdown()

    # -- one request -----------------------------------------------------------------------
    def synthesize(self, line: adhoc.Line) -> Outcome:
        with self._count_lock:
            self.active += 1
        try:
            return self._synthesize(line)
        finally:
            with self._count_lock:
                self.active -= 1

    def _synthesize(self, line: adhoc.Line) -> Outcome:
        start = time.perf_counter()
        snap = self.project.current()
        asset, manifest = adhoc.resolve(snap, line)
        backend = backends.create(asset.backend)
        request = request_for(asset, base_dir=str(manifest.root))
        fingerprint = backend.fingerprint(request)
        if line.seed is None:
            seed = manifest_seed(snap, asset, fingerprint)
            if seed is not None and seed != asset.seed:
                asset = dataclasses.replace(asset, seed=seed)
                request = request_for(asset, base_dir=str(manifest.root))
        cache = Cache(snap.cache_root)
        item = item_for(asset, request, fingerprint, manifest.sample_rate, cache)
        deadline = time.monotonic() + self.limits.timeout
        try:  # urgent: someone waits, so this goes before the heavy batches a build queued
            outcome = next(realise([item], cache, self.executor, manifest.sample_rate, deadline, urgent=True))
        except TimeoutError:
            raise Timeout(f"synthesis took longer than {self.limits.timeout:g} s; it goes on in the background "
                          "and the same request will be served from the cache once it is done") from None
        except Exception as exc:  # the executor refused the job (shutting down), a damaged cache entry
            raise ProcessingFailure(first_line(exc)) from None
        failure = outcome.failure
        if failure is not None:
            if failure.field:  # e.g. a locale the backend cannot speak: the request's fault
                raise adhoc.RequestProblem(failure.field.split("."), f"backend '{asset.backend}': {failure.error}")
            if failure.crash:
                raise ProcessingFailure("a worker process died: " + failure.error.removeprefix("worker failed: "))
            if failure.stage == Step.GENERATE:
                raise BackendFailure(asset.backend, failure.error)
            raise ProcessingFailure(failure.error)
        assert outcome.processed is not None
        if outcome.status == Status.GENERATED:
            self.loaded.add(asset.backend)
        data = outcome.files["main"].read_bytes()
        if line.format == "pcm":
            data = _pcm(data)
        return Outcome(data, line.format, CONTENT_TYPES[line.format], outcome.processed, asset,
                       CACHE_STATUS[outcome.status], item.process_key, time.perf_counter() - start)


def manifest_seed(snap: Snapshot, asset: Asset, fingerprint: dict[str, Any]) -> int | None:
    """The seed of the served manifest's dialogue line that generates the same audio as
    ``asset`` but for the seed, if there is one."""
    with snap.seeds_lock:
        if snap.seeds is None:
            seeds: dict[str, int] = {}
            prints: dict[tuple[str, str | None, bytes], dict[str, Any]] = {}
            for a in snap.manifest.assets:
                if a.kind != "dialogue":
                    continue
                memo = (a.backend, a.fallback_from or a.locale, keys.canonical(a.settings))
                try:
                    if memo not in prints:
                        request = request_for(a, base_dir=str(snap.manifest.root))
                        prints[memo] = backends.create(a.backend).fingerprint(request)
                except Exception:
                    continue
                seeds.setdefault(_unseeded(a, prints[memo]), a.seed)
            snap.seeds = seeds
        return snap.seeds.get(_unseeded(asset, fingerprint))


def _unseeded(asset: Asset, fingerprint: dict[str, Any]) -> str:
    inputs = keys.generate_inputs(asset, fingerprint)
    inputs.pop("seed", None)
    return keys.digest(inputs)


def _pcm(wav: bytes) -> bytes:
    """The samples of a 16-bit wav as raw little-endian PCM (interleaved)."""
    import soundfile as sf

    audio, _ = sf.read(io.BytesIO(wav), dtype="int16", always_2d=False)
    return audio.astype("<i2").tobytes()

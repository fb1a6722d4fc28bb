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

import concurrent.futures as cf
import dataclasses
import io
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from .. import backends
from ..build import keys
from ..build.cache import Cache
from ..build.plan import request_for
from ..build.run import _heavy_batch, _unload_all, new_pool
from ..build.worker import CacheMiss, FieldError, generate_batch, process_job_for
from ..build.worker import process as process_job
from ..manifest.model import Asset
from . import adhoc
from .limits import Limits
from .project import ServedProject, Snapshot

CONTENT_TYPES = {"wav": "audio/wav", "ogg": "audio/ogg", "opus": "audio/ogg; codecs=opus",
                 "pcm": "application/octet-stream"}


class BackendFailure(Exception):
    """The backend could not make the audio (HTTP 502)."""

    def __init__(self, backend: str, cause: str):
        super().__init__(f"backend '{backend}' failed: {cause}")
        self.backend, self.cause = backend, cause


class ProcessingFailure(Exception):
    """Mastering or encoding failed (HTTP 500)."""


class Timeout(Exception):
    """The request ran past its time limit (HTTP 504); its job still finishes into the cache."""


@dataclass
class Outcome:
    audio: bytes
    format: str
    content_type: str
    record: dict[str, Any]  # the process stage's metadata (duration, loudness, words, ...)
    asset: Asset
    cache: str  # hit (served from the cache) | processed (generated audio reused) | generated
    key: str  # process key
    seconds: float

    @property
    def real_time_factor(self) -> float:
        duration = self.record.get("duration") or 0.0
        return round(self.seconds / duration, 4) if duration else 0.0

    def meta(self) -> dict[str, Any]:
        r = self.record
        out = {
            "format": self.format, "content_type": self.content_type,
            "duration": r["duration"], "sample_rate": r["sample_rate"], "channels": r["channels"],
            "processing_time": round(self.seconds, 4), "real_time_factor": self.real_time_factor,
            "cache": self.cache, "key": self.key, "backend": self.asset.backend, "voice": self.asset.voice,
            "locale": self.asset.locale, "loudness": r.get("loudness"), "true_peak": r.get("true_peak"),
            "text": r.get("text"), "words": r.get("words") or [], "timing": r.get("timing"),
        }
        if self.format == "pcm":
            out["sample_format"] = "s16le"
        return out


class Synthesizer:
    def __init__(self, project: ServedProject, limits: Limits):
        self.project, self.limits = project, limits
        import os

        self.workers = limits.workers or max(1, min(4, os.cpu_count() or 1))
        self._pool: Any = None
        self._warming: list[Future] = []
        self._pool_lock = threading.Lock()
        self._heavy = ThreadPoolExecutor(1, thread_name_prefix="assetbuild-heavy")
        self._count_lock = threading.Lock()
        self.active = 0  # requests being synthesised now (the queue depth)
        self.loaded: set[str] = set()  # backends that have generated in this server

    # -- the worker pool -------------------------------------------------------------------
    def pool(self) -> Any:
        """The warm process pool (a broken one is replaced)."""
        with self._pool_lock:
            if self._pool is None or getattr(self._pool, "_broken", False):
                old, self._pool = self._pool, None
                if old is not None:
                    old.shutdown(wait=False, cancel_futures=True)
                from ..build.run import noop_job, warm_worker  # the pool initializer `watch` uses

                self._pool = new_pool(self.workers, initializer=warm_worker,
                                      initargs=(self._parallel_backends(),))
                # Start every worker now (each imports the audio chain and loads the backends).
                self._warming = [self._pool.submit(noop_job) for _ in range(self.workers)]
            return self._pool

    def warm(self, timeout: float = 120.0) -> None:
        """Start the pool and wait until its workers are ready (at server start-up)."""
        self.pool()
        from ..audio import master  # noqa: F401  (the process settings; numpy and scipy with it)

        cf.wait(self._warming, timeout=timeout)

    def _parallel_backends(self) -> list[str]:
        names = {a.backend for a in self.project.current().manifest.assets if a.kind == "dialogue"}
        out = []
        for name in names | {"espeak"}:
            try:
                if backends.get(name).parallel:
                    out.append(name)
            except Exception:
                pass
        return sorted(out)

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
        self._heavy.shutdown(wait=False, cancel_futures=True)
        _unload_all()  # free the heavy models (and their GPU memory)

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
        deadline = start + self.limits.timeout
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
        g_key = keys.digest(keys.generate_inputs(asset, fingerprint))
        p_key = keys.digest(keys.process_inputs(asset, g_key, manifest.sample_rate))
        cache = Cache(snap.cache_root)
        status = "hit"
        record, blob = _cached(cache, p_key)
        for attempt in (1, 2):
            if blob is not None:
                break
            if not cache.has_entry("generate", g_key) or attempt == 2:
                self._generate(cache, asset, g_key, request, deadline)
                status = "generated"
            elif status == "hit":
                status = "processed"
            job = process_job_for(asset, g_key, p_key, manifest.sample_rate)
            try:
                record = self._wait(lambda: self.pool().submit(process_job, str(cache.root), job), deadline)
            except CacheMiss:  # the generated entry is corrupt or gone: generate once more
                if attempt == 2:
                    raise ProcessingFailure("generated audio could not be read back from the cache") from None
                continue
            blob = cache.verified_blob(record["sha256"])
            if blob is None:
                raise ProcessingFailure("the processed file could not be read back from the cache")
        assert record is not None and blob is not None
        data = blob.read_bytes()
        if line.format == "pcm":
            data = _pcm(data)
        return Outcome(data, line.format, CONTENT_TYPES[line.format], record, asset, status, p_key,
                       time.perf_counter() - start)

    def _generate(self, cache: Cache, asset: Asset, g_key: str, request: Any, deadline: float) -> None:
        name = asset.backend
        jobs = [(g_key, request)]
        if backends.get(name).parallel:
            submit = lambda: self.pool().submit(generate_batch, str(cache.root), name, jobs)  # noqa: E731
        else:  # a heavy model: loaded once in this process, one job at a time, one model resident
            submit = lambda: self._heavy.submit(_heavy_batch, str(cache.root), name, jobs)  # noqa: E731
        outcomes = self._wait(submit, deadline)
        error = outcomes[0][1] if outcomes else "no result"
        if isinstance(error, FieldError):  # e.g. a locale the backend cannot speak: the request's fault
            raise adhoc.RequestProblem(error.field.split("."), f"backend '{name}': {error}")
        if error:
            raise BackendFailure(name, error)
        self.loaded.add(name)

    def _wait(self, submit: Any, deadline: float) -> Any:
        try:
            future: Future = submit()
            return future.result(timeout=max(0.0, deadline - time.perf_counter()))
        except cf.TimeoutError:
            raise Timeout(f"synthesis took longer than {self.limits.timeout:g} s; it goes on in the background "
                          "and the same request will be served from the cache once it is done") from None
        except BrokenProcessPool as exc:  # a worker died (the next request gets a fresh pool)
            raise ProcessingFailure(f"a worker process died: {exc}") from None
        except (CacheMiss, BackendFailure, Timeout, ProcessingFailure):
            raise
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise ProcessingFailure(text[0] if text else type(exc).__name__) from None


def manifest_seed(snap: Snapshot, asset: Asset, fingerprint: dict[str, Any]) -> int | None:
    """The seed of the served manifest's dialogue line that generates the same audio as
    ``asset`` but for the seed, if there is one."""
    with snap.seeds_lock:
        if snap.seeds is None:
            seeds: dict[str, int] = {}
            prints: dict[tuple[str, bytes], dict[str, Any]] = {}
            for a in snap.manifest.assets:
                if a.kind != "dialogue":
                    continue
                memo = (a.backend, a.fallback_from or a.locale, keys.canonical(a.settings))
                try:
                    if memo not in prints:
                        prints[memo] = backends.create(a.backend).fingerprint(request_for(a, base_dir=str(snap.manifest.root)))
                except Exception:
                    continue
                seeds.setdefault(_unseeded(a, prints[memo]), a.seed)
            snap.seeds = seeds
        return snap.seeds.get(_unseeded(asset, fingerprint))


def _unseeded(asset: Asset, fingerprint: dict[str, Any]) -> str:
    inputs = keys.generate_inputs(asset, fingerprint)
    inputs.pop("seed", None)
    return keys.digest(inputs)


def _cached(cache: Cache, p_key: str) -> tuple[dict[str, Any] | None, Any]:
    entry = cache.get_entry("process", p_key)
    if entry is None:
        return None, None
    blob = cache.verified_blob(entry["file"])
    return (entry["record"], blob) if blob is not None else (None, None)


def _pcm(wav: bytes) -> bytes:
    """The samples of a 16-bit wav as raw little-endian PCM (interleaved)."""
    import soundfile as sf

    audio, _ = sf.read(io.BytesIO(wav), dtype="int16", always_2d=False)
    return audio.astype("<i2").tobytes()

"""Stage functions run in worker processes (or in the main process for heavy models).

They read inputs from and write results to the cache only, so a killed build loses at most
the jobs that were running, and whatever finished is reused by the next build.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import backends
from ..errors import CacheMiss, InvalidRequest, first_line
from ..records import Processed, word_entry
from .cache import Cache
from .outcome import Failure, Step

if TYPE_CHECKING:
    from ..audio.master import Settings
    from ..backends.base import Backend, Request
    from ..manifest.model import Asset


@dataclass(frozen=True)
class GenerateJob:
    key: str  # the generate key its result is stored under
    request: Request


@dataclass(frozen=True)
class ProcessJob:
    asset_id: str
    kind: str
    generate_key: str
    process_key: str
    formats: tuple[str, ...]  # the first is the main file; each other one becomes a sidecar
    bit_depth: int
    settings: Settings
    text: str | None = None  # dialogue: the line as written, for subtitles when the backend gave none
    ssml: bool = False
    dither: bool = True
    ogg_quality: float = 5.0
    opus_bitrate: int | None = None
    transform: dict[str, float] | None = None  # a take made by pitch/gain variation (for metadata)


def process_job_for(asset: Asset, generate_key: str, process_key: str, sample_rate: int) -> ProcessJob:
    """The process-stage job for an asset, as a build submits it."""
    from ..audio.master import Settings

    v = asset.values
    transform = ({"pitch": asset.pitch_shift, "gain": asset.gain_offset}
                 if asset.pitch_shift or asset.gain_offset else None)
    settings = Settings.of(sample_rate, {**v, "loudness": v["loudness"] + asset.gain_offset,
                                         "pitch": asset.pitch_shift})
    return ProcessJob(asset.id, asset.kind, generate_key, process_key, tuple(v["format"]), v["bit_depth"], settings,
                      text=v.get("text"), ssml=bool(v.get("ssml", False)), dither=bool(v.get("dither", True)),
                      ogg_quality=v.get("ogg_quality", 5.0), opus_bitrate=v.get("opus_bitrate"), transform=transform)


# Backends loaded in this worker process (each process has its own instances).
_loaded: set[str] = set()


def loaded(backend_name: str) -> Backend:
    """The backend, loaded in this worker process on first use."""
    backend = backends.create(backend_name)
    if backend_name not in _loaded:
        backend.load()
        _loaded.add(backend_name)
    return backend


def generate_batch(cache_root: str, backend_name: str, jobs: list[GenerateJob]) -> list[Failure | None]:
    """In a worker process: generate ``jobs`` with one backend, loading it on first use."""
    try:
        backend = loaded(backend_name)
    except Exception as exc:  # e.g. missing model files: every job of the batch fails alike
        return load_failures(backend_name, exc, jobs)
    return generate_with(backend, cache_root, jobs)


def load_failures(backend_name: str, exc: BaseException, jobs: list[GenerateJob]) -> list[Failure | None]:
    error = f"cannot load backend '{backend_name}': {first_line(exc)}"
    return [Failure(j.request.id, Step.GENERATE, error) for j in jobs]


def generate_with(backend: Backend, cache_root: str, jobs: list[GenerateJob]) -> list[Failure | None]:
    """Generate ``jobs`` with a loaded backend and store each result under its key.

    Returns a failure or None per job, in order. A failing batch is retried one job at a time
    so one bad entry does not fail its neighbours.
    """
    cache = Cache(cache_root)
    try:
        results = backend.generate([j.request for j in jobs])
        if len(results) != len(jobs):
            raise RuntimeError(f"backend '{backend.name}' returned {len(results)} results for {len(jobs)} requests")
    except Exception as exc:
        if len(jobs) == 1:
            field = exc.field if isinstance(exc, InvalidRequest) else None
            return [Failure(jobs[0].request.id, Step.GENERATE, first_line(exc), field)]
        out: list[Failure | None] = []
        for job in jobs:
            out.extend(generate_with(backend, cache_root, [job]))
        return out
    out = []
    for job, result in zip(jobs, results, strict=True):
        try:
            store_generated(cache, job.key, result)
            out.append(None)
        except Exception as exc:
            out.append(Failure(job.request.id, Step.GENERATE, first_line(exc)))
    return out


def unload(backend_name: str) -> None:
    if backend_name in _loaded:
        backends.create(backend_name).unload()
        _loaded.discard(backend_name)


def store_generated(cache: Cache, key: str, result: backends.Result) -> None:
    import numpy as np

    audio = np.asarray(result.audio, dtype=np.float32)
    if audio.ndim not in (1, 2) or audio.size == 0:
        raise ValueError(f"backend returned no audio (shape {audio.shape})")
    if not np.isfinite(audio).all():
        raise ValueError("backend returned audio with NaN or infinite samples")
    buf = io.BytesIO()
    np.save(buf, audio, allow_pickle=False)
    sha = cache.put_bytes(buf.getvalue())
    cache.put_entry("generate", key, {"audio": sha, "sample_rate": int(result.sample_rate),
                                      "meta": result.meta, "blobs": [sha]})


def load_generated(cache: Cache, key: str) -> tuple[Any, int, dict[str, Any]]:
    import numpy as np

    entry = cache.get_entry("generate", key)
    blob = cache.verified_blob(entry["audio"]) if entry else None
    if entry is None or blob is None:
        raise CacheMiss(key)
    return np.load(blob, allow_pickle=False), entry["sample_rate"], entry.get("meta", {})


def process(cache_root: str, job: ProcessJob) -> Processed:
    """Master and encode one generated asset; store the file (and, for dialogue, its subtitle
    and lip-sync files); return its metadata."""
    from ..audio.master import master
    from ..export.audiofile import write_audio
    from ..fsutil import file_sha256

    cache = Cache(cache_root)
    audio, sr, meta = load_generated(cache, job.generate_key)
    s = job.settings
    mastered, info = master(audio, sr, s)
    loop = info["loop"]
    dithered = None
    shas = {}
    for fmt in job.formats:  # one mastering, encoded once per format
        out = mastered
        if job.dither and fmt in ("wav", "flac") and job.bit_depth < 32:
            from ..audio.cleanup import tpdf_dither

            if dithered is None:
                dithered = tpdf_dither(mastered, job.bit_depth)  # seed 0: same input, same bytes
            out = dithered
        tmp = cache.temp_file("." + fmt)
        write_audio(tmp, out, s.sample_rate, format=fmt, bit_depth=job.bit_depth,
                    loop=(loop["start"], loop["end"]) if loop and fmt == "wav" else None,
                    ogg_quality=job.ogg_quality, opus_bitrate=job.opus_bitrate)
        shas[fmt] = file_sha256(tmp)
        cache.put_file(tmp)
    sha = shas[job.formats[0]]
    sidecars = {fmt: h for fmt, h in shas.items() if fmt != job.formats[0]}
    speech: dict[str, Any] = {}
    if job.kind == "dialogue":
        files, speech = _speech_files(job, meta, info["offset"], mastered, s.sample_rate)
        sidecars.update({name: cache.put_bytes(text.encode("utf-8")) for name, text in files.items()})
    record = Processed(
        duration=round(len(mastered) / s.sample_rate, 6), frames=len(mastered), sample_rate=s.sample_rate,
        channels=s.channels, loudness=round2(info["loudness"]), loudness_mode=info["mode"],
        loudness_target=s.loudness, gain_db=round2(info["gain_db"]), true_peak=round2(info["true_peak"]),
        true_peak_ceiling=s.true_peak, target_met=bool(info["target_met"]), loop=loop,
        trimmed_start=round(info["offset"], 6), sha256=sha, model=meta.get("model"), take_transform=job.transform,
        generator=meta.get("generator"), notes=meta.get("notes"), warnings=meta.get("warnings"),
        sidecars=sidecars, **speech)
    cache.put_entry("process", job.process_key, {"file": sha, "record": record.to_json(),
                                                 "blobs": [sha, *sidecars.values()]})
    return record


def _speech_files(job: ProcessJob, meta: dict[str, Any], offset: float, audio: Any,
                  sr: int) -> tuple[dict[str, str], dict[str, Any]]:
    """The subtitle and lip-sync files of a line, and its text, words and timing (moved onto
    the final file)."""
    import json

    from ..audio.cleanup import active_range
    from ..export import lipsync, subtitles
    from ..speech import alignment
    from ..speech.script import display_text

    duration = len(audio) / sr
    display = meta["text"] if "text" in meta else display_text(job.text or "", ssml=job.ssml)
    words, phonemes = alignment.shift(meta.get("words") or [], meta.get("phonemes") or [], offset, duration)
    timing = meta.get("timing", "measured")
    if not meta.get("words"):
        start, end = active_range(audio, sr)
        words = alignment.estimate(display, start / sr, end / sr, duration)
        timing = "estimated"
    cues = subtitles.cues(display, words, duration)
    files = {"srt": subtitles.render_srt(cues), "vtt": subtitles.render_vtt(cues)}
    if phonemes:
        files["rhubarb"] = json.dumps(lipsync.rhubarb(phonemes, duration), indent=1) + "\n"
        files["visemes"] = json.dumps(lipsync.visemes(phonemes, duration), indent=1) + "\n"
    return files, {"text": display, "words": [word_entry(w) for w in words], "timing": timing}


def round2(x: float | None) -> float | None:
    """A measurement for the metadata: 2 decimals, None for missing or non-finite values."""
    return None if x is None or x != x or abs(x) == float("inf") else round(float(x), 2)

"""Stage functions run in worker processes (or in the main process for heavy models).

They read inputs from and write results to the cache only, so a killed build loses at most
the jobs that were running, and whatever finished is reused by the next build.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from .. import backends
from ..backends.base import InvalidRequest, Request
from .cache import Cache


class CacheMiss(Exception):
    """An input entry is missing or corrupt: the earlier stage must run again."""


@dataclass(frozen=True)
class ProcessJob:
    asset_id: str
    kind: str
    generate_key: str
    process_key: str
    formats: tuple[str, ...]  # the first is the main file; each other one becomes a sidecar
    bit_depth: int
    settings: Any  # audio.master.Settings
    text: str | None = None  # dialogue: the line as written, for subtitles when the backend gave none
    ssml: bool = False
    dither: bool = True
    ogg_quality: float = 5.0
    opus_bitrate: int | None = None
    transform: dict[str, float] | None = None  # a take made by pitch/gain variation (for metadata)


def process_job_for(asset: Any, generate_key: str, process_key: str, sample_rate: int) -> ProcessJob:
    """The process-stage job for an asset (``manifest.model.Asset``), as a build submits it."""
    from ..audio.master import Settings

    v = asset.values
    transform = ({"pitch": asset.pitch_shift, "gain": asset.gain_offset}
                 if asset.pitch_shift or asset.gain_offset else None)
    settings = Settings.of(sample_rate, {**v, "loudness": v["loudness"] + asset.gain_offset,
                                         "pitch": asset.pitch_shift})
    return ProcessJob(asset.id, asset.kind, generate_key, process_key, tuple(v["format"]), v["bit_depth"], settings,
                      text=v.get("text"), ssml=bool(v.get("ssml", False)), dither=bool(v.get("dither", True)),
                      ogg_quality=v.get("ogg_quality", 5.0), opus_bitrate=v.get("opus_bitrate"), transform=transform)


_loaded: set[str] = set()


def generate_batch(cache_root: str, backend_name: str, jobs: list[tuple[str, Request]]) -> list[tuple[str, str | None]]:
    """Generate ``jobs`` (generate key, request) with one backend; store each result.

    Returns (asset id, error or None) per job. A failing batch is retried one job at a time
    so one bad entry does not fail its neighbours.
    """
    backend = backends.create(backend_name)
    if backend_name not in _loaded:
        try:
            backend.load()
        except Exception as exc:  # e.g. missing model files: every job of the batch fails alike
            return [(r.id, f"cannot load backend '{backend_name}': {_message(exc)}") for _, r in jobs]
        _loaded.add(backend_name)
    cache = Cache(cache_root)
    try:
        results = backend.generate([r for _, r in jobs])
        if len(results) != len(jobs):
            raise RuntimeError(f"backend '{backend_name}' returned {len(results)} results for {len(jobs)} requests")
    except Exception as exc:
        if len(jobs) == 1:
            return [(jobs[0][1].id, _error(exc))]
        out: list[tuple[str, str | None]] = []
        for job in jobs:
            out.extend(generate_batch(cache_root, backend_name, [job]))
        return out
    out = []
    for (key, request), result in zip(jobs, results):
        try:
            store_generated(cache, key, result)
            out.append((request.id, None))
        except Exception as exc:
            out.append((request.id, _message(exc)))
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
    if blob is None:
        raise CacheMiss(key)
    return np.load(blob, allow_pickle=False), entry["sample_rate"], entry.get("meta", {})


def process(cache_root: str, job: ProcessJob) -> dict[str, Any]:
    """Master and encode one generated asset; store the file (and, for dialogue, its subtitle
    and lip-sync files); return its metadata."""
    from ..audio.master import master
    from ..export.audiofile import write_audio
    from .cache import file_sha256

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
    record = {
        "duration": round(len(mastered) / s.sample_rate, 6),
        "frames": len(mastered),
        "sample_rate": s.sample_rate,
        "channels": s.channels,
        "loudness": round2(info["loudness"]),
        "loudness_mode": info["mode"],
        "loudness_target": s.loudness,
        "gain_db": round2(info["gain_db"]),
        "true_peak": round2(info["true_peak"]),
        "true_peak_ceiling": s.true_peak,
        "target_met": bool(info["target_met"]),
        "loop": loop,
        "trimmed_start": round(info["offset"], 6),
        "sha256": sha,
        "model": meta.get("model"),
    }
    if job.transform:
        record["take_transform"] = job.transform
    for key in ("generator", "notes", "warnings"):
        if key in meta:
            record[key] = meta[key]
    # Files placed beside the main one: the other formats, and a dialogue line's text files.
    record["sidecars"] = {fmt: h for fmt, h in shas.items() if fmt != job.formats[0]}
    if job.kind == "dialogue":
        files = _speech_files(job, meta, info["offset"], mastered, s.sample_rate, record)
        record["sidecars"].update({name: cache.put_bytes(text.encode("utf-8")) for name, text in files.items()})
    blobs = [sha, *record["sidecars"].values()]
    cache.put_entry("process", job.process_key, {"file": sha, "record": record, "blobs": blobs})
    return record


def _speech_files(job: ProcessJob, meta: dict[str, Any], offset: float, audio: Any, sr: int,
                  record: dict[str, Any]) -> dict[str, str]:
    """Word timings moved onto the final file, and the subtitle and lip-sync files from them."""
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
    record.update({"text": display, "words": words, "timing": timing})
    cues = subtitles.cues(display, words, duration)
    files = {"srt": subtitles.render_srt(cues), "vtt": subtitles.render_vtt(cues)}
    if phonemes:
        files["rhubarb"] = json.dumps(lipsync.rhubarb(phonemes, duration), indent=1) + "\n"
        files["visemes"] = json.dumps(lipsync.visemes(phonemes, duration), indent=1) + "\n"
    return files


def round2(x: float | None) -> float | None:
    """A measurement for the metadata: 2 decimals, None for missing or non-finite values."""
    return None if x is None or x != x or abs(x) == float("inf") else round(float(x), 2)


class FieldError(str):
    """An error message from :class:`InvalidRequest`, carrying the request field it names
    (a plain string to the build; the server answers 422 with the field)."""

    field: str = ""


def _error(exc: BaseException) -> str:
    text = _message(exc)
    if isinstance(exc, InvalidRequest):
        text = FieldError(text)
        text.field = exc.field
    return text


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__

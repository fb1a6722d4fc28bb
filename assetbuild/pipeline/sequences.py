"""The sequence stage: mix built assets on a timeline into ``sequences/<id>.wav`` and stems.

Runs after every asset is placed. A sequence's key is a hash of its own settings and the
sha256 of every file it places, so editing one line re-mixes the sequences using that line and
nothing else; an unchanged sequence whose files are still in place is reused as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .. import timeline
from ..errors import AssetbuildError, first_line
from ..fsutil import atomic_write, atomic_write_text, signatures, unchanged
from ..manifest.model import Manifest
from ..manifest.sequence import Sequence, events_of
from ..records import PackEntry, ordered
from .state import Mixed
from .worker import round2

SEQUENCE_VERSION = 1
FOLDER = "sequences"
# The keys of a sequence's assetpack record in the order render() makes them: a record kept from
# the last build comes back from the state file with sorted keys, and must read as it did.
_RECORD = ("id", "file", "stems", "subtitles", "duration", "frames", "sample_rate", "channels", "loudness",
           "loudness_target", "gain_db", "true_peak", "true_peak_ceiling", "target_met", "cues", "scenes")
_CUE = ("event", "asset", "bus", "start", "end")
_SCENE = ("name", "start", "end")


class SequenceFailed(AssetbuildError):
    """A sequence could not be mixed (it keeps its previous files and record)."""


def kept(record: dict[str, Any]) -> dict[str, Any]:
    """A sequence record from the last build, in the order a fresh one has its keys."""
    out = ordered(record, _RECORD)
    if isinstance(out.get("cues"), list):
        out["cues"] = [ordered(c, _CUE) if isinstance(c, dict) else c for c in out["cues"]]
    if isinstance(out.get("scenes"), list):
        out["scenes"] = [ordered(s, _SCENE) if isinstance(s, dict) else s for s in out["scenes"]]
    return out


def files_of(seq_id: str, buses: list[str]) -> dict[str, str]:
    base = f"{FOLDER}/{seq_id}"
    return {"mix": f"{base}.wav", **{f"stem:{b}": f"{base}.{b}.wav" for b in buses},
            "srt": f"{base}.srt", "vtt": f"{base}.vtt"}


def sequence_key(manifest: Manifest, seq: Sequence, inputs: dict[str, str]) -> str:
    doc = {"version": SEQUENCE_VERSION, "sample_rate": manifest.sample_rate, "values": seq.values,
           "events": seq.events, "scenes": seq.scenes, "inputs": inputs}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def build_all(manifest: Manifest, entries: dict[str, PackEntry], previous: dict[str, Mixed],
              fail: Callable[[str, str], None]) -> tuple[list[dict[str, Any]], dict[str, Mixed]]:
    """Mix every sequence that changed. ``entries``: the assets by asset id; ``previous``: the
    sequences as the last build mixed them; ``fail(id, message)`` reports a failed sequence (it
    keeps its previous files and record). Returns (records for assetpack.json, new state)."""
    out_dir = manifest.output_dir
    first = manifest.locales[0] if manifest.locales else None
    source = {a.name: a for a in manifest.assets if a.locale in (None, first)}
    kinds = {name: a.kind for name, a in source.items()}
    out_records: list[dict[str, Any]] = []
    state: dict[str, Mixed] = {}
    for seq in manifest.sequences:
        names = seq.asset_ids()
        found = {n: entries.get(source[n].id) for n in names}
        missing = sorted(n for n, e in found.items() if e is None or not e.sha256)
        old = previous.get(seq.id)
        if missing:
            fail(seq.id, f"places {', '.join(missing)}, which did not build")
            if old:
                out_records.append(kept(old.record))
                state[seq.id] = old
            continue
        recs = {n: e for n, e in found.items() if e is not None}
        key = sequence_key(manifest, seq, {n: recs[n].sha256 for n in names})
        if old and old.key == key and unchanged(out_dir, old.files):
            out_records.append(kept(old.record))
            state[seq.id] = old
            continue
        try:
            record = render(manifest, seq, recs, kinds)
        except (SequenceFailed, timeline.TimelineError, OSError, ValueError) as exc:
            fail(seq.id, first_line(exc))
            if old:
                out_records.append(kept(old.record))
                state[seq.id] = old
            continue
        written = [record["file"], *record["stems"].values(), *record["subtitles"].values()]
        for rel in set(old.files if old else ()) - set(written):  # e.g. a bus it no longer uses
            (out_dir / rel).unlink(missing_ok=True)
        state[seq.id] = Mixed(key, record, signatures(out_dir, written))
        out_records.append(record)
    for seq_id, old in previous.items():  # sequences no longer in the manifest
        if seq_id not in state and seq_id not in {s.id for s in manifest.sequences}:
            for rel in old.files:
                (out_dir / rel).unlink(missing_ok=True)
    return out_records, state


def render(manifest: Manifest, seq: Sequence, recs: dict[str, PackEntry],
           kinds: dict[str, str]) -> dict[str, Any]:
    """Resolve, mix, master and write one sequence; returns its assetpack.json record."""
    import soundfile as sf

    from ..audio.cleanup import tpdf_dither
    from ..audio.convert import normalize
    from ..audio.mix import Ducking, Source, mix
    from ..export import subtitles
    from ..export.audiofile import write_audio

    out_dir, sr = manifest.output_dir, manifest.sample_rate
    sources = {}
    for name, rec in recs.items():
        audio, file_sr = sf.read(out_dir / rec.file, dtype="float32", always_2d=True)
        if file_sr != sr:
            raise SequenceFailed(f"{rec.file} is {file_sr} Hz, the project is {sr} Hz")
        loop = rec.processed.loop
        sources[name] = Source(audio, (loop["start"], loop["end"]) if loop else None)
    durations = {n: len(s.audio) / sr for n, s in sources.items()}
    events, scenes = events_of(seq, kinds)
    if scenes:
        placed, scene_spans = timeline.resolve_scenes(scenes, durations)
    else:
        placed, scene_spans = timeline.resolve(events, durations), []
    v = seq.values
    ducking = Ducking(depth=v["duck_depth"], attack=v["duck_attack"], release=v["duck_release"],
                      lookahead=v["duck_lookahead"], buses=tuple(v["duck_buses"]), enabled=v["duck"])
    pre, stems = mix(placed, sources, sr, bus_gains=v["buses"], ducking=ducking, channels=2)
    mastered, info = normalize(pre.astype(np.float32), sr, v["loudness"], v["true_peak"], mode="auto")
    gain = 10.0 ** (info["gain_db"] / 20.0)

    files = files_of(seq.id, sorted(stems) if v["stems"] else [])
    out = mastered if v["bit_depth"] == 32 else tpdf_dither(mastered, v["bit_depth"])
    atomic_write(out_dir / files["mix"], partial(write_audio, audio=out, sr=sr, format="wav",
                                                 bit_depth=v["bit_depth"]))
    for bus, stem in stems.items() if v["stems"] else []:
        # 32-bit float, at the mix's pre-limiter gain: the stems sum to the mix before its limiter.
        atomic_write(out_dir / files[f"stem:{bus}"], partial(write_audio, audio=(stem * gain).astype(np.float32),
                                                             sr=sr, format="wav", bit_depth=32))
    cues = []
    for p in placed:
        found = recs.get(p.event.asset)
        line = found.processed if found is not None and kinds.get(p.event.asset) == "dialogue" else None
        if line is None or not line.words:
            continue
        words = [dict(w, start=w["start"] + p.start, end=w["end"] + p.start) for w in line.words
                 if w["start"] < p.end - p.start]
        cues += subtitles.cues(line.text or "", words, p.end)
    cues.sort(key=lambda c: c.start)
    atomic_write_text(out_dir / files["srt"], subtitles.render_srt(cues))
    atomic_write_text(out_dir / files["vtt"], subtitles.render_vtt(cues))

    return {
        "id": seq.id,
        "file": files["mix"],
        "stems": {k.split(":", 1)[1]: rel for k, rel in files.items() if k.startswith("stem:")},
        "subtitles": {"srt": files["srt"], "vtt": files["vtt"]},
        "duration": round(len(mastered) / sr, 6),
        "frames": len(mastered),
        "sample_rate": sr,
        "channels": 2,
        "loudness": round2(info["loudness"]),
        "loudness_target": v["loudness"],
        "gain_db": round2(info["gain_db"]),
        "true_peak": round2(info["true_peak"]),
        "true_peak_ceiling": v["true_peak"],
        "target_met": bool(info["target_met"]),
        "cues": [{"event": p.event.name, "asset": p.event.asset, "bus": p.event.bus,
                  "start": round(p.start, 6), "end": round(p.end, 6)} for p in placed],
        "scenes": [{"name": s["name"], "start": round(s["start"], 6), "end": round(s["end"], 6)}
                   for s in scene_spans],
    }


def timeline_text(record: dict[str, Any]) -> str:
    """A sequence's timeline as text, for ``assetbuild preview``."""
    rows = [f"{record['id']}: {record['duration']:.3f} s, {record['loudness']} LUFS "
            f"(target {record['loudness_target']}), true peak {record['true_peak']} dBTP"]
    for s in record.get("scenes", []):
        rows.append(f"  scene {s['name']:<20} {s['start']:9.3f} - {s['end']:9.3f}")
    width = max([len(c["event"]) for c in record["cues"]] + [5])
    for c in sorted(record["cues"], key=lambda c: (c["start"], c["event"])):
        rows.append(f"  {c['start']:9.3f} - {c['end']:9.3f}  {c['event']:<{width}}  {c['bus']:<8} {c['asset']}")
    return "\n".join(rows) + "\n"

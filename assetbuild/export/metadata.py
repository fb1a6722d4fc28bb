"""``assetpack.json``: the schema-versioned description of every built asset.

Engines and middleware importers read this file; fields are documented in docs/metadata.md.
"""

from __future__ import annotations

import json
from typing import Any

from ..manifest.model import EXTENSIONS, Asset, Manifest

SCHEMA_VERSION = 1
REPORT = "report.html"  # the build report, beside assetpack.json (export/report.py)

# Files written beside an asset's main file, by name in the process record's "sidecars": a
# dialogue line's subtitles and lip-sync, and the asset in its other formats.
SIDECARS = {"srt": ".srt", "vtt": ".vtt", "rhubarb": ".rhubarb.json", "visemes": ".visemes.json", **EXTENSIONS}


def sidecar_file(file: str, name: str) -> str:
    """``dialogue/intro.wav`` -> ``dialogue/intro.srt`` (for name "srt")."""
    return file.rpartition(".")[0] + SIDECARS[name]


def asset_record(asset: Asset, file: str, built: dict[str, Any]) -> dict[str, Any]:
    """Merge the manifest's view of an asset with what the process stage measured."""
    v = asset.values
    formats = v["format"]
    record: dict[str, Any] = {
        "id": asset.name,
        "kind": asset.kind,
        "file": file,
        "format": formats[0],
        "bit_depth": v["bit_depth"] if formats[0] in ("wav", "flac") else None,
        "backend": asset.backend,
        "seed": asset.seed,
    }
    # For a failed asset, ``built`` is its previous record: its own file and format win, so the
    # metadata keeps pointing at the output that is still there.
    record.update(built)
    sidecars = record.pop("sidecars", None)
    if sidecars is not None:  # fresh from the process stage; else ``built`` already has the paths
        record["files"] = {fmt: file if i == 0 else sidecar_file(file, fmt) for i, fmt in enumerate(formats)}
        record["subtitles"] = {n: sidecar_file(file, n) for n in ("srt", "vtt") if n in sidecars}
        record["lipsync"] = {n: sidecar_file(file, n) for n in ("rhubarb", "visemes") if n in sidecars} or None
    if asset.take is not None:
        record["group"] = asset.entry_id
        record["take"] = asset.take
    if asset.kind == "dialogue":
        from ..speech.script import display_text

        record.setdefault("text", display_text(v["text"], ssml=bool(v.get("ssml"))))
        if v.get("ssml"):
            record["ssml"] = v["text"]
        record["locale"] = asset.locale
        if asset.fallback_from:
            record["fallback_from"] = asset.fallback_from
        record["speaker"] = v.get("speaker")
        record["voice"] = asset.voice
        record["emotion"] = v.get("emotion")
        record.setdefault("words", [])
    else:
        record["prompt"] = v["prompt"]
    return record


def sidecar_names(record: dict[str, Any]) -> list[str]:
    """Names of the files an asset has beside its main file, from either kind of record: one
    fresh from the process stage (``sidecars``) or one read back from assetpack.json (paths)."""
    if record.get("sidecars") is not None:
        return list(record["sidecars"])
    names = [*(record.get("subtitles") or {}), *(record.get("lipsync") or {})]
    return names + [fmt for fmt, path in (record.get("files") or {}).items() if path != record.get("file")]


def record_key(record: dict[str, Any]) -> str:
    """The build's key for a record: its id, prefixed by ``<locale>/`` for localised dialogue."""
    return f"{record['locale']}/{record['id']}" if record.get("locale") else record["id"]


def dump_assetpack(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def assetpack_doc(manifest: Manifest, records: list[dict[str, Any]],
                  sequences: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The assetpack.json document (records sorted by kind, id and locale; groups; sequences)."""
    order = {"dialogue": 0, "ambience": 1, "music": 2, "sfx": 3}
    assets = sorted(records, key=lambda r: (order[r["kind"]], r["id"], r.get("locale") or ""))
    groups: dict[str, list[str]] = {}
    for r in assets:
        if "group" in r:
            groups.setdefault(r["group"], []).append(r["id"])
    doc = {
        "schema_version": SCHEMA_VERSION,
        "project": {"name": manifest.name, "version": manifest.version, "sample_rate": manifest.sample_rate,
                    "locales": manifest.locales},
        "assets": assets,
        "groups": [{"id": g, "assets": ids} for g, ids in sorted(groups.items())],
    }
    if sequences:
        doc["sequences"] = sorted(sequences, key=lambda r: r["id"])
    return doc

"""``assetpack.json``: the schema-versioned description of every built asset.

Engines and middleware importers read this file; fields are documented in docs/metadata.md.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..manifest.model import Asset, Manifest, sidecar_file
from ..records import PackEntry, Processed

SCHEMA_VERSION = 1
PACK = "assetpack.json"
REPORT = "report.html"  # the build report, beside assetpack.json (export/report.py)

_KIND_ORDER = {"dialogue": 0, "ambience": 1, "music": 2, "sfx": 3}


def pack_entry(asset: Asset, built: Processed | PackEntry, licence: dict[str, Any] | None) -> PackEntry:
    """The manifest's view of an asset with what the process stage measured.

    ``built`` is fresh from the process stage (or the cache), or the asset's entry in the last
    assetpack.json: for an asset that is up to date, or one that failed this time and keeps
    its previous output. Such an entry keeps describing the file that is still there (its file,
    format, backend and seed win); the manifest's metadata (speaker, voice, ...) is refreshed.
    """
    v = asset.values
    if isinstance(built, Processed):
        formats = v["format"]
        file = asset.file
        entry = PackEntry(
            id=asset.name, kind=asset.kind, file=file, format=formats[0],
            bit_depth=v["bit_depth"] if formats[0] in ("wav", "flac") else None,
            backend=asset.backend, seed=asset.seed, processed=built,
            files={fmt: file if i == 0 else sidecar_file(file, fmt) for i, fmt in enumerate(formats)},
            subtitles={n: sidecar_file(file, n) for n in ("srt", "vtt") if n in built.sidecars},
            lipsync={n: sidecar_file(file, n) for n in ("rhubarb", "visemes") if n in built.sidecars} or None)
    else:
        entry = built
    processed = entry.processed
    if asset.kind == "dialogue" and processed.text is None:
        from ..speech.script import display_text

        processed = dataclasses.replace(processed, text=display_text(v["text"], ssml=bool(v.get("ssml"))))
    changes: dict[str, Any] = {"processed": processed, "licence": licence}
    if asset.take is not None:
        changes.update(group=asset.entry_id, take=asset.take)
    if asset.kind == "dialogue":
        changes.update(locale=asset.locale, speaker=v.get("speaker"), voice=asset.voice, emotion=v.get("emotion"))
        if v.get("ssml"):
            changes["ssml"] = v["text"]
        if asset.fallback_from:
            changes["fallback_from"] = asset.fallback_from
    else:
        changes["prompt"] = v["prompt"]
    return dataclasses.replace(entry, **changes)


def record_key(record: dict[str, Any]) -> str:
    """The build's key for an entry of assetpack.json as read (an asset's or a sequence's): its
    id, prefixed by ``<locale>/`` for localised dialogue (as PackEntry.key)."""
    return f"{record['locale']}/{record['id']}" if record.get("locale") else record["id"]


def dump_assetpack(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def read_entries(doc: dict[str, Any]) -> dict[str, PackEntry]:
    """The asset entries of an assetpack.json document, by build key (see PackEntry.key)."""
    out = {}
    for r in doc.get("assets", []):
        if isinstance(r, dict) and "id" in r:
            try:
                entry = PackEntry.from_json(r)
            except TypeError:  # written by another version: rebuilt from the cache instead
                continue
            out[entry.key] = entry
    return out


def assetpack_doc(manifest: Manifest, entries: list[PackEntry],
                  sequences: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The assetpack.json document (entries sorted by kind, id and locale; groups; sequences)."""
    ordered = sorted(entries, key=lambda e: (_KIND_ORDER[e.kind], e.id, e.locale or ""))
    groups: dict[str, list[str]] = {}
    for e in ordered:
        if e.group is not None:
            groups.setdefault(e.group, []).append(e.id)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "project": {"name": manifest.name, "version": manifest.version, "sample_rate": manifest.sample_rate,
                    "locales": manifest.locales},
        "assets": [e.to_json() for e in ordered],
        "groups": [{"id": g, "assets": ids} for g, ids in sorted(groups.items())],
    }
    if sequences:
        doc["sequences"] = sorted(sequences, key=lambda r: r["id"])
    return doc

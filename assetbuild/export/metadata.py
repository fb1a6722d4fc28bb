"""``assetpack.json``: the schema-versioned description of every built asset.

Engines and middleware importers read this file; fields are documented in docs/metadata.md.
"""

from __future__ import annotations

import json
from typing import Any

from ..manifest.model import Asset, Manifest

SCHEMA_VERSION = 1


def asset_record(asset: Asset, file: str, built: dict[str, Any]) -> dict[str, Any]:
    """Merge the manifest's view of an asset with what the process stage measured."""
    v = asset.values
    record: dict[str, Any] = {
        "id": asset.id,
        "kind": asset.kind,
        "file": file,
        "format": v["format"],
        "bit_depth": v["bit_depth"] if v["format"] in ("wav", "flac") else None,
        "backend": asset.backend,
        "seed": asset.seed,
    }
    # For a failed asset, ``built`` is its previous record: its own file and format win, so the
    # metadata keeps pointing at the output that is still there.
    record.update(built)
    if asset.take is not None:
        record["group"] = asset.entry_id
        record["take"] = asset.take
    if asset.kind == "dialogue":
        record["text"] = v["text"]
        record["speaker"] = v.get("speaker")
        record["voice"] = asset.voice
        record["emotion"] = v.get("emotion")
        record.setdefault("words", [])
    else:
        record["prompt"] = v["prompt"]
    return record


def render_assetpack(manifest: Manifest, records: list[dict[str, Any]]) -> str:
    order = {"dialogue": 0, "ambience": 1, "music": 2, "sfx": 3}
    assets = sorted(records, key=lambda r: (order[r["kind"]], r["id"]))
    groups: dict[str, list[str]] = {}
    for r in assets:
        if "group" in r:
            groups.setdefault(r["group"], []).append(r["id"])
    doc = {
        "schema_version": SCHEMA_VERSION,
        "project": {"name": manifest.name, "version": manifest.version, "sample_rate": manifest.sample_rate},
        "assets": assets,
        "groups": [{"id": g, "assets": ids} for g, ids in sorted(groups.items())],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"

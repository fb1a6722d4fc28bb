"""Unreal Engine 5 export: a DataTable (CSV and JSON) describing every sound, and an editor script.

Files, relative to ``<output>/unreal/``:

* ``AssetbuildAudio.csv``: a DataTable CSV, one row per asset. The first column (header ``---``)
  is the row name: the asset name (``VO_halt``), plus ``_<locale>`` for a line in a locale other
  than the source one (``VO_halt_fr``). ``Subtitles`` is a ``TArray<FSubtitleCue>`` in Unreal's
  text-export syntax: ``((Text=NSLOCTEXT("", "", "Halt!"),Time=0.000000),...)``.
* ``AssetbuildAudio.json``: the same rows for Unreal's JSON DataTable import (``Name`` field).
* ``import_assetpack.py``: imports the sounds as SoundWaves (looping, subtitles) and, given a
  row struct, the CSV as a DataTable.

Asset paths: ``/Game/Audio/<project>/<Kind>/<name>.<name>``; a non-source-locale line goes where
Unreal's asset localisation looks for it, ``/Game/L10N/<locale>/Audio/<project>/Dialogue/<name>``,
under the same name as the source line, so the engine swaps it in for that culture.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from ...errors import UsageError
from . import KIND_FOLDERS, Pack, script

CSV_NAME = "AssetbuildAudio.csv"
JSON_NAME = "AssetbuildAudio.json"
SCRIPT_NAME = "import_assetpack.py"
COLUMNS = ("---", "File", "Asset", "Kind", "Speaker", "Text", "Locale", "Duration", "Loop",
           "LoopStart", "LoopEnd", "Subtitles", "Group")
CONTENT_ROOT = "/Game/Audio"
_KIND_ORDER = {kind: i for i, kind in enumerate(KIND_FOLDERS)}
# Characters Unreal refuses in a long package name (INVALID_LONGPACKAGE_CHARACTERS) and more.
_UNSAFE_PATH = re.compile(r"[^A-Za-z0-9_-]")


def folder_name(project: str) -> str:
    """The project name made safe as an Unreal content folder."""
    return _UNSAFE_PATH.sub("_", project).strip("_") or "Project"


def row_name(pack: Pack, record: dict[str, Any]) -> str:
    name = pack.asset_name(record)
    return name if pack.is_source(record) else f"{name}_{record['locale']}"


def asset_path(pack: Pack, record: dict[str, Any]) -> str:
    """The object path the import script creates, ``/Game/Audio/<project>/<Kind>/<name>.<name>``."""
    name = pack.asset_name(record)
    package = f"{CONTENT_ROOT}/{folder_name(pack.name)}/{KIND_FOLDERS[record['kind']]}/{name}"
    if not pack.is_source(record):
        # Unreal's asset localisation: /Game/X is replaced by /Game/L10N/<culture>/X.
        package = f"/Game/L10N/{record['locale']}{package[len('/Game'):]}"
    return f"{package}.{name}"


def source_file(record: dict[str, Any]) -> str:
    """The file Unreal imports: the WAV when the asset has one (it carries the loop points)."""
    return (record.get("files") or {}).get("wav") or record["file"]


def subtitle_cues(pack: Pack, record: dict[str, Any]) -> list[dict[str, Any]]:
    # A SoundWave cue has one text; Unreal wraps it to the screen, so the .srt's line break
    # becomes a space rather than a hard "\n" that would fight that wrapping.
    return [{"Text": " ".join(cue.lines), "Time": round(float(cue.start), 6)} for cue in pack.cues(record)]


def _quote(text: str) -> str:
    """A string literal as FParse::QuotedString reads it (backslash escapes, no raw newlines)."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def subtitles_text(cues: list[dict[str, Any]]) -> str:
    """``TArray<FSubtitleCue>`` as Unreal exports it to text; ``()`` for none."""
    items = (f'(Text=NSLOCTEXT("", "", {_quote(c["Text"])}),Time={c["Time"]:.6f})' for c in cues)
    return "(" + ",".join(items) + ")"


def rows(pack: Pack) -> list[dict[str, Any]]:
    """One row per asset, in pack order (kind, id, locale), with typed values (the JSON rows)."""
    records = sorted(pack.assets, key=lambda r: (_KIND_ORDER.get(r["kind"], len(_KIND_ORDER)), r["id"],
                                                 r.get("locale") or ""))
    out: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for record in records:
        name = row_name(pack, record)
        if name in seen:
            raise UsageError(f"unreal export: {record['file']} and {seen[name]} both make the row "
                             f"name {name!r}; rename one of the ids")
        seen[name] = record["file"]
        loop = record.get("loop")
        out.append({
            "Name": name,
            "File": source_file(record),
            "Asset": asset_path(pack, record),
            "Kind": record["kind"],
            "Speaker": record.get("speaker") or "",
            "Text": record.get("text") or "",
            "Locale": record.get("locale") or "",
            "Duration": round(float(record["duration"]), 6),
            "Loop": bool(loop),
            "LoopStart": int(loop["start"]) if loop else 0,
            "LoopEnd": int(loop["end"]) if loop else 0,
            "Subtitles": subtitle_cues(pack, record),
            "Group": record.get("group") or "",
        })
    return out


def _csv(table: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in table:
        writer.writerow([
            row["Name"], row["File"], row["Asset"], row["Kind"], row["Speaker"], row["Text"],
            row["Locale"], f"{row['Duration']:.6f}", "True" if row["Loop"] else "False",
            row["LoopStart"], row["LoopEnd"], subtitles_text(row["Subtitles"]), row["Group"],
        ])
    return buf.getvalue()


def render(pack: Pack) -> dict[str, str]:
    table = rows(pack)
    return {
        CSV_NAME: _csv(table),
        JSON_NAME: json.dumps(table, indent=1, ensure_ascii=False) + "\n",
        SCRIPT_NAME: script("unreal_import.py"),
    }

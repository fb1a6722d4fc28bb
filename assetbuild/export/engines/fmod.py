"""FMOD Studio export: an events CSV, the dialogue audio-table lists, and a Studio script.

Files, relative to ``<output>/fmod/``:

* ``assetbuild_events.csv``: one row per FMOD event the script creates (see ``EVENT_COLUMNS``):

  - ``event``: ``event:/<project>/<Kind>/<name>`` (``event:/forest/SFX/SFX_magic_shimmer``); a
    round-robin group is one event named after the group (``SFX_coin_pickup``).
  - ``kind``: dialogue, ambience, music or sfx.
  - ``instrument``: ``single`` (one file), ``multi`` (the takes of a group, in a multi
    instrument's playlist) or ``programmer`` (the dialogue event that plays audio-table keys).
  - ``files``: the audio files, relative to the pack root, ``;``-separated (several for a group).
  - ``loop``, ``loop_start``, ``loop_end``: ``true``/``false`` and the loop in seconds (the
    ``smpl`` loop: start frame / rate, (end frame + 1) / rate); the script makes the instrument
    loop and puts a timeline loop region over ``loop_start``-``loop_end``.
  - ``duration`` (seconds; a group's longest take), ``group`` (the group id of takes), ``bus``
    (``bus:/<Kind>``: used when the FMOD project has such a bus), ``bank`` (the project name:
    the bank new events are assigned to), ``notes`` (the event's notes: text or prompt).

  Per-line dialogue events exist only in a project without locales; a localised project's
  lines are played through audio tables, and every project with dialogue gets the
  programmer-instrument event ``event:/<project>/Dialogue/Dialogue Line``.
* ``assetbuild_audio_table.csv``: every dialogue file, one row per line and locale: ``key`` (the
  line id, the key the game passes to the programmer instrument), ``locale``, ``file`` (relative
  to the pack root), ``source_dir`` (the audio table's source directory, relative to the pack
  root: ``dialogue`` or ``dialogue/<locale>``), ``duration``, ``speaker``, ``text``.
* ``assetbuild_audio_table_keys.txt`` (no locales) or ``assetbuild_audio_table_keys_<locale>.txt``:
  an audio table key file for each source directory, ``key,file`` per line (file relative to the
  source directory), so a key names one file even when lines are delivered in several formats.
* ``import_assetpack.js``: the FMOD Studio script (``scripts/fmod_import.js``), menu item
  ``Scripts > assetbuild > Import assetpack``; it reads ``assetbuild_events.csv`` and creates or
  updates the events (an existing event with the same path is reused).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from ...errors import UsageError
from . import KIND_FOLDERS, Pack, script

EVENTS_NAME = "assetbuild_events.csv"
TABLE_NAME = "assetbuild_audio_table.csv"
SCRIPT_NAME = "import_assetpack.js"
SHIPPED_SCRIPT = "fmod_import.js"
EVENT_COLUMNS = ("event", "kind", "instrument", "files", "loop", "loop_start", "loop_end",
                 "duration", "group", "bus", "bank", "notes")
TABLE_COLUMNS = ("key", "locale", "file", "source_dir", "duration", "speaker", "text")
PROGRAMMER_EVENT = "Dialogue Line"
FILE_SEPARATOR = ";"
# Formats FMOD Studio imports, best first: lossless sources, then the compressed ones.
_FMOD_FORMATS = ("wav", "flac", "aiff", "aif", "ogg", "mp3")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def folder_name(project: str) -> str:
    """The project name made safe as an FMOD folder, bank and asset folder name."""
    return _UNSAFE_NAME.sub("_", project).strip("_") or "assetbuild"


def keys_file(locale: str | None) -> str:
    return f"assetbuild_audio_table_keys_{locale}.txt" if locale else "assetbuild_audio_table_keys.txt"


def source_file(record: dict[str, Any]) -> str:
    """The file FMOD imports: a lossless one when the asset was delivered in several formats."""
    files = record.get("files") or {}
    for fmt in _FMOD_FORMATS:
        if files.get(fmt):
            return files[fmt]
    return record["file"]


def event_path(pack: Pack, kind: str, name: str) -> str:
    return f"event:/{folder_name(pack.name)}/{KIND_FOLDERS[kind]}/{name}"


def _seconds(value: float) -> str:
    return f"{float(value):.6f}"


def _notes(record: dict[str, Any]) -> str:
    if record["kind"] == "dialogue":
        text, speaker = record.get("text") or "", record.get("speaker") or ""
        return f"{speaker}: {text}" if speaker and text else text or speaker
    return record.get("prompt") or ""


def _loop(record: dict[str, Any]) -> tuple[bool, float, float]:
    loop = record.get("loop")
    if not loop:
        return False, 0.0, 0.0
    rate = float(record.get("sample_rate") or 48000)
    return True, int(loop["start"]) / rate, (int(loop["end"]) + 1) / rate


def _event_row(pack: Pack, kind: str, name: str, instrument: str, records: list[dict[str, Any]],
               notes: str, group: str = "") -> dict[str, str]:
    loops = [_loop(r) for r in records]
    duration = max((float(r["duration"]) for r in records), default=0.0)
    looping = bool(loops) and all(flag for flag, _, _ in loops)
    if looping and len(records) == 1:
        start, end = loops[0][1], loops[0][2]
    else:  # a looping group: the whole of the longest take
        start, end = 0.0, duration if looping else 0.0
    return {
        "event": event_path(pack, kind, name),
        "kind": kind,
        "instrument": instrument,
        "files": FILE_SEPARATOR.join(source_file(r) for r in records),
        "loop": "true" if looping else "false",
        "loop_start": _seconds(start),
        "loop_end": _seconds(end),
        "duration": _seconds(duration),
        "group": group,
        "bus": f"bus:/{KIND_FOLDERS[kind]}",
        "bank": folder_name(pack.name),
        "notes": notes,
    }


def event_rows(pack: Pack) -> list[dict[str, str]]:
    """The events, in pack order (a group where its first take is)."""
    rows: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in pack.assets:
        if record.get("group"):
            groups.setdefault(record["group"], []).append(record)

    def add(row: dict[str, str], what: str) -> None:
        key = row["event"].lower()  # FMOD looks event paths up case-insensitively
        if key in seen:
            raise UsageError(f"fmod export: {what} and {seen[key]} both make the event "
                             f"{row['event']}; rename one of the ids")
        seen[key] = what
        rows.append(row)

    dialogue = [r for r in pack.assets if r["kind"] == "dialogue"]
    done: set[str] = set()
    for record in pack.assets:
        kind = record["kind"]
        if kind == "dialogue" and pack.locales:
            continue  # localised lines are played from audio tables
        group = record.get("group")
        if group:
            if group in done:
                continue
            done.add(group)
            takes = sorted(groups[group], key=lambda r: (int(r.get("take") or 0), r["id"]))
            name = pack.asset_name({"kind": kind, "id": group})
            notes = f"assetbuild round-robin group {group} ({len(takes)} takes)"
            if _notes(takes[0]):
                notes += f": {_notes(takes[0])}"
            add(_event_row(pack, kind, name, "multi", takes, notes, group), f"group {group!r}")
        else:
            add(_event_row(pack, kind, pack.asset_name(record), "single", [record], _notes(record)),
                record["file"])
    if dialogue:
        row = _event_row(pack, "dialogue", PROGRAMMER_EVENT, "programmer", dialogue,
                         "Plays the audio-table line whose key (the line id) the game passes to "
                         "the programmer instrument callback")
        row.update(files="", loop="false", loop_start=_seconds(0), loop_end=_seconds(0))
        add(row, "the dialogue programmer event")
    return rows


def _source_dir(record: dict[str, Any]) -> str:
    """The folder of a line's file: the source directory of its (locale's) audio table."""
    folder, _, _ = source_file(record).rpartition("/")
    return folder


def table_rows(pack: Pack) -> list[dict[str, str]]:
    rows = []
    for record in pack.assets:
        if record["kind"] != "dialogue":
            continue
        rows.append({
            "key": record["id"],
            "locale": record.get("locale") or "",
            "file": source_file(record),
            "source_dir": _source_dir(record),
            "duration": _seconds(record["duration"]),
            "speaker": record.get("speaker") or "",
            "text": record.get("text") or "",
        })
    return rows


def key_files(rows: list[dict[str, str]]) -> dict[str, str]:
    """One key file per audio-table source directory (per locale)."""
    by_locale: dict[str, list[str]] = {}
    for row in rows:
        name = row["file"][len(row["source_dir"]) + 1:] if row["source_dir"] else row["file"]
        by_locale.setdefault(row["locale"], []).append(f"{row['key']},{name}")
    return {keys_file(locale or None): "\n".join(lines) + "\n" for locale, lines in by_locale.items()}


def _csv(columns: tuple[str, ...], rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def render(pack: Pack) -> dict[str, str]:
    files = {
        EVENTS_NAME: _csv(EVENT_COLUMNS, event_rows(pack)),
        SCRIPT_NAME: script(SHIPPED_SCRIPT),
    }
    table = table_rows(pack)
    if table:
        files[TABLE_NAME] = _csv(TABLE_COLUMNS, table)
        files.update(key_files(table))
    return files

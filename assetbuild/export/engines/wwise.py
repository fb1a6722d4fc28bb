"""Wwise export: tab-delimited import files (Audio File Importer, WAAPI importTabDelimited).

Files, relative to ``<output>/wwise/``:

* ``assetbuild_import.tsv``: ambience, music and sfx as Sound SFX objects, the takes of a
  round-robin group as the children of one Random Container. Import it with the language
  ``SFX``.
* ``assetbuild_voice.tsv`` (a project without locales) or ``assetbuild_voice_<locale>.tsv``
  (one per locale, the source locale included): dialogue as Sound Voice objects. Wwise takes one
  language per import (the Audio File Importer's language, or WAAPI's ``importLanguage``), so
  each language is its own file; every locale's file names the same Object Paths, so the second
  and later imports add that language's source to the objects the first one created.
* ``README.txt``: the import order and the Wwise language to pick for each file.

Layout of every ``.tsv``: UTF-8 without a byte-order mark, one header row, tab-separated, no
quoting (Wwise's importer splits on every tab and line break, quoted or not, so tabs and line
breaks inside a value become spaces). Columns (see ``COLUMNS``):

* ``Audio File``: the WAV, relative to the ``.tsv`` (``..\\sfx\\coin_01.wav``); Wwise reads a
  relative path from the tab-delimited file's folder. Empty on a container row.
* ``Object Path``: ``\\Actor-Mixer Hierarchy\\Default Work Unit\\<project>\\<Kind>\\<name>``,
  a take as ``...\\<Kind>\\<Random Container><group name>\\<name>``.
* ``Object Type``: ``Sound SFX``, ``Sound Voice`` or ``Random Container``.
* ``Event``: ``\\Events\\Default Work Unit\\<project>\\Play_<name>`` (a Play action on the row's
  object): one per asset, one per group (on the container, not on its takes); only in the SFX
  file and the first voice file, so that importing a second language adds no second action.
* ``Notes``: the object's notes: a dialogue line's speaker and source text, a prompt otherwise.
* ``Audio Source Notes``: a dialogue line's text in that file's language (on the audio source).
* ``@IsLoopingEnabled``: ``True`` for a looping asset (the WAV carries the loop points in its
  ``smpl`` chunk too); empty otherwise, which leaves the property as it is.

Wwise imports WAV only: an asset delivered without a ``wav`` file is left out (README says so).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

from ...errors import UsageError
from . import KIND_FOLDERS, Pack

IMPORT_NAME = "assetbuild_import.tsv"
README_NAME = "README.txt"
COLUMNS = ("Audio File", "Object Path", "Object Type", "Event", "Notes", "Audio Source Notes",
           "@IsLoopingEnabled")
HIERARCHY_ROOT = "\\Actor-Mixer Hierarchy\\Default Work Unit"
EVENTS_ROOT = "\\Events\\Default Work Unit"
SOUND_SFX = "Sound SFX"
SOUND_VOICE = "Sound Voice"
RANDOM_CONTAINER = "Random Container"
LOOP_ON = "True"
# Characters kept in a Wwise object name made from the project name.
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")
_BREAKS = re.compile(r"[\t\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")  # what splits a line

# Wwise's default language names for common locale codes (a project may rename or lack them).
WWISE_LANGUAGES = {
    "ar": "Arabic", "bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English(US)", "en-us": "English(US)", "en-gb": "English(UK)",
    "en-au": "English(Australia)", "en-in": "English(India)", "es": "Spanish(Spain)",
    "es-es": "Spanish(Spain)", "es-mx": "Spanish(Mexico)", "es-419": "Spanish(Mexico)",
    "es-us": "Spanish(US)", "fi": "Finnish", "fr": "French(France)", "fr-fr": "French(France)",
    "fr-ca": "French(Canada)", "he": "Hebrew", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "no": "Norwegian",
    "nb": "Norwegian", "pl": "Polish", "pt": "Portuguese(Portugal)",
    "pt-pt": "Portuguese(Portugal)", "pt-br": "Portuguese(Brazil)", "ro": "Romanian",
    "ru": "Russian", "sl": "Slovenian", "sv": "Swedish", "th": "Thai", "tr": "Turkish",
    "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese(PRC)", "zh-cn": "Chinese(PRC)",
    "zh-hans": "Chinese(PRC)", "zh-tw": "Chinese(Taiwan)", "zh-hant": "Chinese(Taiwan)",
    "zh-hk": "Chinese(HK)",
}


def folder_name(project: str) -> str:
    """The project name made safe as a Wwise object name."""
    return _UNSAFE_NAME.sub("_", project).strip("_") or "assetbuild"


def voice_file(locale: str | None) -> str:
    """The voice ``.tsv`` for one locale (``None``: a project without locales)."""
    return f"assetbuild_voice_{locale}.tsv" if locale else "assetbuild_voice.tsv"


def wwise_language(locale: str | None) -> str | None:
    """Wwise's default language name for a locale code, if it has an obvious one."""
    return WWISE_LANGUAGES.get(locale.lower()) if locale else None


def audio_file(record: dict[str, Any]) -> str | None:
    """The WAV of an asset (relative to the pack root), or None when it was not delivered as WAV."""
    wav = (record.get("files") or {}).get("wav")
    if wav:
        return wav
    return record["file"] if str(record["file"]).lower().endswith(".wav") else None


def tsv_path(rel: str) -> str:
    """A pack-root-relative file as the ``.tsv`` names it: relative to ``wwise/``, backslashes."""
    return "..\\" + rel.replace("/", "\\")


def group_name(pack: Pack, record: dict[str, Any]) -> str:
    """The Random Container of a take: the kind prefix + the group id (``SFX_coin_pickup``)."""
    return pack.asset_name({"kind": record["kind"], "id": record["group"]})


def object_path(pack: Pack, record: dict[str, Any]) -> str:
    base = f"{HIERARCHY_ROOT}\\{folder_name(pack.name)}\\{KIND_FOLDERS[record['kind']]}"
    if record.get("group"):
        base += f"\\<{RANDOM_CONTAINER}>{group_name(pack, record)}"
    return f"{base}\\{pack.asset_name(record)}"


def container_path(pack: Pack, record: dict[str, Any]) -> str:
    base = f"{HIERARCHY_ROOT}\\{folder_name(pack.name)}\\{KIND_FOLDERS[record['kind']]}"
    return f"{base}\\{group_name(pack, record)}"


def event_path(pack: Pack, name: str) -> str:
    return f"{EVENTS_ROOT}\\{folder_name(pack.name)}\\Play_{name}"


def _clean(text: Any) -> str:
    """A value on one physical line: tabs and line breaks become single spaces."""
    return _BREAKS.sub(" ", str(text or "")).strip()


def _notes(record: dict[str, Any]) -> str:
    if record["kind"] == "dialogue":
        text = _clean(record.get("text"))
        speaker = _clean(record.get("speaker"))
        return f"{speaker}: {text}" if speaker and text else text or speaker
    return _clean(record.get("prompt"))


def _row(audio: str = "", path: str = "", kind: str = "", event: str = "", notes: str = "",
         source_notes: str = "", loop: str = "") -> list[str]:
    return [audio, path, kind, event, notes, source_notes, loop]


class _Table:
    """The rows of one ``.tsv``; refuses two rows for one object, or two for one event (in any
    of the tables sharing ``events``)."""

    def __init__(self, name: str, language: str, events: dict[str, str]):
        self.name = name
        self.language = language  # what the README tells the user to pick
        self.rows: list[list[str]] = []
        self._paths: dict[str, str] = {}
        self._events = events

    def add(self, row: list[str], what: str) -> None:
        path, event = row[1], row[3]
        key = re.sub(r"<[^<>]*>", "", path).lower()  # Wwise paths ignore the type prefix and case
        if key in self._paths:
            raise UsageError(f"wwise export: {what} and {self._paths[key]} both make the object "
                             f"{path}; rename one of the ids")
        self._paths[key] = what
        if event:
            if event.lower() in self._events:
                raise UsageError(f"wwise export: {what} and {self._events[event.lower()]} both make "
                                 f"the event {event}; rename one of the ids")
            self._events[event.lower()] = what
        self.rows.append(row)

    def text(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None,
                            escapechar=None, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(self.rows)
        return buf.getvalue()


def _add_assets(pack: Pack, table: _Table, records: Iterable[dict[str, Any]], object_type: str,
                first: bool, skipped: list[str]) -> None:
    """Rows for ``records``; ``first``: the file that creates the objects (events, notes)."""
    containers: set[str] = set()
    for record in records:
        wav = audio_file(record)
        if wav is None:
            skipped.append(record["file"])
            continue
        voice = record["kind"] == "dialogue"
        if record.get("group") and record["group"] not in containers:
            containers.add(record["group"])
            name = group_name(pack, record)
            table.add(_row(path=container_path(pack, record), kind=RANDOM_CONTAINER,
                           event=event_path(pack, name) if first else "",
                           notes=f"assetbuild round-robin group {record['group']}" if first else ""),
                      f"group {record['group']!r}")
        event = "" if record.get("group") or not first else event_path(pack, pack.asset_name(record))
        table.add(_row(
            audio=tsv_path(wav),
            path=object_path(pack, record),
            kind=object_type,
            event=event,
            notes=_notes(record) if first else "",
            source_notes=_clean(record.get("text")) if voice else "",
            loop=LOOP_ON if record.get("loop") else "",
        ), record["file"])


def tables(pack: Pack) -> tuple[list[_Table], list[str]]:
    """The ``.tsv`` tables in import order (SFX first, then the source language), and the files
    left out because they are not WAV."""
    skipped: list[str] = []
    events: dict[str, str] = {}
    sfx = _Table(IMPORT_NAME, "SFX", events)
    _add_assets(pack, sfx, (r for r in pack.assets if r["kind"] != "dialogue"), SOUND_SFX, True, skipped)
    out = [sfx]
    dialogue = [r for r in pack.assets if r["kind"] == "dialogue"]
    locales: list[str | None] = list(pack.locales)
    if any(not r.get("locale") for r in dialogue):
        locales.append(None)
    for locale in locales:
        records = [r for r in dialogue if (r.get("locale") or None) == locale]
        if not records:
            continue
        table = _Table(voice_file(locale), _language_hint(locale), events)
        _add_assets(pack, table, records, SOUND_VOICE, first=len(out) == 1, skipped=skipped)
        out.append(table)
    return out, skipped


def _language_hint(locale: str | None) -> str:
    if locale is None:
        return "your project's reference language (for example English(US))"
    known = wwise_language(locale)
    if known:
        return f"{known} (locale {locale}; use your project's name for it if it differs)"
    return f"the Wwise language for locale {locale}"


def _readme(pack: Pack, files: list[_Table], skipped: list[str]) -> str:
    lines = [
        f"Wwise import for the assetbuild pack {pack.name!r} (version {pack.version}).",
        "",
        "Import these files in this order: in the Audio File Importer (Project > Import Audio",
        "Files...), use its tab-delimited import and set the language shown; or call WAAPI",
        "ak.wwise.core.audio.importTabDelimited with {importFile: <absolute path of the file>,",
        "importLanguage: <the language shown>, importOperation: \"useExisting\"}.",
        "Audio File paths are relative to this folder: keep the pack's folders together.",
        "",
    ]
    for n, table in enumerate(files, 1):
        lines.append(f"{n}. {table.name}: {len(table.rows)} rows, language {table.language}")
    lines += [
        "",
        "Re-importing with importOperation useExisting updates the objects in place.",
        "Wwise 2025.1 and later call the Actor-Mixer Hierarchy \"Containers\": replace",
        "\\Actor-Mixer Hierarchy\\ with \\Containers\\ in the Object Path column there.",
    ]
    if skipped:
        lines += ["", "Not included (Wwise imports WAV; build these assets with format \"wav\"):"]
        lines += [f"  {f}" for f in skipped]
    return "\n".join(lines) + "\n"


def render(pack: Pack) -> dict[str, str]:
    files, skipped = tables(pack)
    out = {table.name: table.text() for table in files}
    out[README_NAME] = _readme(pack, files, skipped)
    return out

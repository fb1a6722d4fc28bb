"""Unity export: import settings per clip, dialogue data and a Localization string table.

The pack is copied into a Unity project's ``Assets/`` folder as a whole. The files written here
(under ``<output>/unity/``) are:

``Editor/AssetbuildAudioImporter.cs``
    An ``AssetPostprocessor``. When Unity imports an audio file it looks upward from the file for the
    folder holding ``assetpack.json`` (the pack root), reads ``unity/import_settings.json`` there
    and applies the entry for the file's path relative to that root. All decisions are taken here,
    in Python (:func:`import_settings`), so the C# only copies values.
``import_settings.json``
    ``{"version", "pack", "entries": [{"path", "loadType", "compressionFormat", ...}]}``: one entry
    per file Unity can import (wav, ogg, flac, aif, mp3; not opus), keyed by its pack-relative path.
``Runtime/AssetbuildDialogue.cs`` and ``dialogue.json``
    A ``ScriptableObject`` filled from ``dialogue.json`` with ``JsonUtility`` (``Load(TextAsset)``),
    with lookup by line id and locale, word timings and subtitle cues.
``Localization/AssetbuildStrings.csv``
    A string table in the layout the Localization package's CSV importer reads with its default
    column mapping: ``Key,Id,<LocaleIdentifier>...``, where a locale column is named as Unity names
    it (``English(en)``, ``French(fr)``). ``Id`` is left empty so the importer matches rows by key
    and assigns ids to new keys itself (a made-up id could clash with an existing entry's).

Every JSON file is an object whose lists are arrays of objects, with no ``null`` values, because
``JsonUtility`` reads nothing else.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from . import Pack, script

#: Clips longer than this (seconds) stream from disk, whatever their kind; music always streams.
STREAM_OVER = 10.0
#: Sound effects shorter than this (seconds) are decompressed on load, encoded as ADPCM.
SHORT_SFX = 2.0
#: Vorbis quality (Unity's 0-1 slider) per kind.
VORBIS_QUALITY = {"music": 0.8, "ambience": 0.7, "dialogue": 0.7, "sfx": 0.7}
#: File formats the Unity editor imports as AudioClips (FLAC since Unity 6; opus not at all).
UNITY_FORMATS = ("wav", "ogg", "flac", "aif", "aiff", "mp3")
#: The Localization column for an unlocalised pack.
DEFAULT_LOCALE = "en"

SETTINGS_VERSION = 1
DIALOGUE_VERSION = 1

# English names as .NET's CultureInfo.EnglishName gives them, which is what Unity's Localization
# package puts in a CSV column header: "<EnglishName>(<code>)". Codes with a script or region, or
# not listed here, are less certain (the name depends on the editor's culture data); see
# docs/engines.md for renaming a column.
_LANGUAGES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech",
    "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish",
    "fr": "French", "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hi": "Hindi",
    "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian", "is": "Icelandic", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "ms": "Malay",
    "nb": "Norwegian Bokmål", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian",
    "sv": "Swedish", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese",
    "zh": "Chinese",
}
_REGIONS = {
    "419": "Latin America", "AR": "Argentina", "AT": "Austria", "AU": "Australia", "BE": "Belgium",
    "BR": "Brazil", "CA": "Canada", "CH": "Switzerland", "CN": "China", "DE": "Germany",
    "ES": "Spain", "FR": "France", "GB": "United Kingdom", "IE": "Ireland", "IN": "India",
    "IT": "Italy", "JP": "Japan", "MX": "Mexico", "NL": "Netherlands", "NZ": "New Zealand",
    "PL": "Poland", "PT": "Portugal", "RU": "Russia", "SE": "Sweden", "TW": "Taiwan",
    "US": "United States",
}
_SCRIPTS = {"Hans": "Simplified", "Hant": "Traditional", "Latn": "Latin", "Cyrl": "Cyrillic"}


def render(pack: Pack) -> dict[str, str]:
    """The Unity files, relative to ``<output>/unity/``."""
    return {
        "Editor/AssetbuildAudioImporter.cs": script("AssetbuildAudioImporter.cs"),
        "Runtime/AssetbuildDialogue.cs": script("AssetbuildDialogue.cs"),
        "import_settings.json": _dump(settings_doc(pack)),
        "dialogue.json": _dump(dialogue_doc(pack)),
        "Localization/AssetbuildStrings.csv": strings_csv(pack),
    }


# --- import settings ----------------------------------------------------------------------------

def import_settings(record: dict[str, Any]) -> dict[str, Any]:
    """Unity import settings for one asset (the values of ``AudioImporterSampleSettings``).

    * music, and any clip longer than :data:`STREAM_OVER`: ``Streaming``, Vorbis, not preloaded,
      loaded in the background;
    * sound effects shorter than :data:`SHORT_SFX`: ``DecompressOnLoad``, ADPCM, preloaded (cheap
      to decode, played often and at once; ADPCM is about 3.5:1 and stays small as PCM);
    * everything else: ``CompressedInMemory``, Vorbis, preloaded.

    PCM is never chosen. ``forceToMono`` stays off: a mono file is already imported as mono, and
    Unity's downmix would normalise the clip, undoing the build's loudness mastering (ask for mono
    with the manifest's ``channels`` instead). The sample rate is preserved, as the build set it.
    """
    kind = record["kind"]
    duration = float(record.get("duration") or 0.0)
    if kind == "music" or duration > STREAM_OVER:
        load, codec, preload, background = "Streaming", "Vorbis", False, True
    elif kind == "sfx" and duration < SHORT_SFX:
        load, codec, preload, background = "DecompressOnLoad", "ADPCM", True, False
    else:
        load, codec, preload, background = "CompressedInMemory", "Vorbis", True, False
    return {
        "loadType": load,
        "compressionFormat": codec,
        "quality": VORBIS_QUALITY.get(kind, 0.7) if codec == "Vorbis" else 1.0,
        "sampleRateSetting": "PreserveSampleRate",
        "forceToMono": False,
        "preloadAudioData": preload,
        "loadInBackground": background,
    }


def unity_files(record: dict[str, Any]) -> list[str]:
    """The asset's files Unity can import, the main file first."""
    files = dict(record.get("files") or {})
    if not files and record.get("file"):
        files = {str(record.get("format") or ""): record["file"]}
    paths = [p for p in files.values() if _extension(p) in UNITY_FORMATS]
    main = record.get("file")
    if main in paths:
        paths.remove(main)
        paths.insert(0, main)
    return paths


def settings_doc(pack: Pack) -> dict[str, Any]:
    entries = []
    for record in pack.assets:
        settings = import_settings(record)
        for path in unity_files(record):
            entries.append({
                "path": path,
                "id": record["id"],
                "name": pack.asset_name(record),
                "kind": record["kind"],
                "locale": record.get("locale") or "",
                "group": record.get("group") or "",
                "take": int(record.get("take") or 0),
                "duration": float(record.get("duration") or 0.0),
                "channels": int(record.get("channels") or 0),
                "sampleRate": int(record.get("sample_rate") or 0),
                **_loop(record),
                **settings,
            })
    return {
        "version": SETTINGS_VERSION,
        "pack": pack.name,
        "packVersion": pack.version,
        "streamOver": STREAM_OVER,
        "shortSfx": SHORT_SFX,
        "entries": entries,
    }


# --- dialogue -----------------------------------------------------------------------------------

def dialogue_doc(pack: Pack) -> dict[str, Any]:
    lines = []
    for record in pack.assets:
        if record["kind"] != "dialogue":
            continue
        files = unity_files(record)
        subtitles = record.get("subtitles") or {}
        lipsync = record.get("lipsync") or {}
        lines.append({
            "id": record["id"],
            "name": pack.asset_name(record),
            "locale": record.get("locale") or "",
            "fallbackFrom": record.get("fallback_from") or "",
            "speaker": record.get("speaker") or "",
            "text": record.get("text") or "",
            "clip": files[0] if files else record.get("file") or "",
            "duration": float(record.get("duration") or 0.0),
            **_loop(record),
            "words": [{"text": w["text"], "start": float(w["start"]), "end": float(w["end"])}
                      for w in record.get("words") or []],
            "cues": [{"start": c.start, "end": c.end, "text": "\n".join(c.lines)}
                     for c in pack.cues(record)],
            "srt": subtitles.get("srt") or "",
            "vtt": subtitles.get("vtt") or "",
            "rhubarb": lipsync.get("rhubarb") or "",
            "visemes": lipsync.get("visemes") or "",
        })
    return {
        "version": DIALOGUE_VERSION,
        "pack": pack.name,
        "packVersion": pack.version,
        "sourceLocale": pack.locales[0] if pack.locales else "",
        "locales": list(pack.locales),
        "lines": lines,
    }


# --- Localization string table ------------------------------------------------------------------

def locale_column(code: str) -> str:
    """The CSV header Unity's Localization package gives a locale: ``English(en)``.

    That is ``LocaleIdentifier.ToString()``, ``CultureInfo.EnglishName + "(" + code + ")"``; a
    code whose name we do not know is written bare, to be mapped by hand (see docs/engines.md).
    """
    parts = code.replace("_", "-").split("-")
    language = _LANGUAGES.get(parts[0].lower())
    if language is None:
        return code
    details = []
    for part in parts[1:]:
        name = _SCRIPTS.get(part.title()) if len(part) == 4 else _REGIONS.get(part.upper())
        if name is None:
            return code
        details.append(name)
    name = f"{language} ({', '.join(details)})" if details else language
    return f"{name}({code})"


def csv_locales(pack: Pack) -> list[str]:
    """The locales the string table has a column for: the pack's, or one for an unlocalised pack."""
    return list(pack.locales) or [DEFAULT_LOCALE]


def strings_csv(pack: Pack) -> str:
    locales = csv_locales(pack)
    texts: dict[str, dict[str, str]] = {}
    for record in pack.assets:
        if record["kind"] == "dialogue":
            locale = record.get("locale") or locales[0]
            texts.setdefault(record["id"], {})[locale] = record.get("text") or ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Key", "Id", *(locale_column(code) for code in locales)])
    for key, by_locale in texts.items():
        writer.writerow([key, "", *(by_locale.get(code, "") for code in locales)])
    return out.getvalue()


# --- helpers ------------------------------------------------------------------------------------

def _loop(record: dict[str, Any]) -> dict[str, Any]:
    loop = record.get("loop")
    if not loop:
        return {"loop": False, "loopStart": 0, "loopEnd": 0}
    return {"loop": True, "loopStart": int(loop["start"]), "loopEnd": int(loop["end"])}


def _extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"

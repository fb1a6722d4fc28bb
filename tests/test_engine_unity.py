"""The Unity export: import settings per clip, dialogue data, the Localization string table, and
the shipped C# scripts (compiled with mcs against stub UnityEngine/UnityEditor declarations)."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from assetbuild.export.engines import Pack, load_pack, render, script, unity, write

STUBS = Path(__file__).resolve().parent / "unity_stubs" / "UnityStubs.cs"
FILES = {
    "Editor/AssetbuildAudioImporter.cs",
    "Runtime/AssetbuildDialogue.cs",
    "import_settings.json",
    "dialogue.json",
    "Localization/AssetbuildStrings.csv",
}
# Enum member names in Unity's API (UnityEngine.AudioClipLoadType, UnityEngine.AudioCompressionFormat,
# UnityEditor.AudioSampleRateSetting): the C# parses the strings with Enum.TryParse.
LOAD_TYPES = {"DecompressOnLoad", "CompressedInMemory", "Streaming"}
COMPRESSION = {"PCM", "Vorbis", "ADPCM", "MP3", "VAG", "HEVAG", "XMA", "AAC", "GCADPCM", "ATRAC9"}
SAMPLE_RATE = {"PreserveSampleRate", "OptimizeSampleRate", "OverrideSampleRate"}


@pytest.fixture(scope="module", params=["forest", "localised"])
def out(request) -> Path:
    return request.getfixturevalue("forest_out" if request.param == "forest" else "localised_out")


@pytest.fixture(scope="module")
def files(out) -> dict[str, str]:
    return render("unity", load_pack(out))


def _pack(doc: dict) -> Pack:
    return Pack(Path("/nonexistent"), doc)


def _settings(files: dict[str, str]) -> dict[str, dict]:
    doc = json.loads(files["import_settings.json"])
    return {entry["path"]: entry for entry in doc["entries"]}


def _rows(files: dict[str, str]) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(files["Localization/AssetbuildStrings.csv"], newline=""))
    return list(reader.fieldnames or []), list(reader)


# --- files --------------------------------------------------------------------------------------

def test_renders_the_unity_files(files):
    assert set(files) == FILES
    assert files["Editor/AssetbuildAudioImporter.cs"] == script("AssetbuildAudioImporter.cs")
    assert files["Runtime/AssetbuildDialogue.cs"] == script("AssetbuildDialogue.cs")
    assert "OnPreprocessAudio" in files["Editor/AssetbuildAudioImporter.cs"]
    assert "UnityEditor" not in files["Runtime/AssetbuildDialogue.cs"]


def test_render_is_deterministic(out, files):
    again = render("unity", load_pack(out))
    assert again == files
    # the same pack document in another folder gives the same files
    doc = json.loads((out / "assetpack.json").read_text(encoding="utf-8"))
    assert unity.render(Pack(Path("/elsewhere"), doc)) == files


def test_write_puts_the_files_under_unity(localised_out, tmp_path):
    root = tmp_path / "pack"
    shutil.copytree(localised_out, root)
    pack = load_pack(root)
    written = write("unity", pack)
    assert {p.relative_to(root / "unity").as_posix() for p in written} == FILES
    first = {p: p.read_bytes() for p in written}
    (root / "unity" / "stale.txt").write_text("old")
    write("unity", load_pack(root))
    assert {p: p.read_bytes() for p in written} == first
    assert not (root / "unity" / "stale.txt").exists()


# --- JsonUtility-friendly JSON ------------------------------------------------------------------

def _jsonutility_friendly(value, where="$"):
    """JsonUtility reads objects, arrays of objects or of scalars, and scalars; never null."""
    assert value is not None, f"{where} is null"
    if isinstance(value, dict):
        for key, item in value.items():
            _jsonutility_friendly(item, f"{where}.{key}")
    elif isinstance(value, list):
        kinds = {type(item) for item in value}
        assert len(kinds) <= 1, f"{where} mixes {kinds}"
        for i, item in enumerate(value):
            assert not isinstance(item, list), f"{where}[{i}] is a nested array"
            _jsonutility_friendly(item, f"{where}[{i}]")


def _cs_fields(source: str, cls: str) -> set[str]:
    """The public fields of a C# class in a shipped script."""
    body = re.search(rf"public class {cls}\b[^{{]*\{{(.*?)\n        \}}", source, re.S)
    assert body, cls
    return set(re.findall(r"^\s*public [\w\[\]]+ (\w+);", body.group(1), re.M))


@pytest.mark.parametrize("name", ["import_settings.json", "dialogue.json"])
def test_json_is_an_object_jsonutility_reads(files, name):
    text = files[name]
    doc = json.loads(text)
    assert isinstance(doc, dict)
    _jsonutility_friendly(doc)
    assert text.endswith("\n")


def test_json_fields_match_the_csharp_classes(files):
    importer = script("AssetbuildAudioImporter.cs")
    settings = json.loads(files["import_settings.json"])
    assert set(settings) == _cs_fields(importer, "Settings")
    for entry in settings["entries"]:
        assert set(entry) == _cs_fields(importer, "Entry")

    runtime = script("AssetbuildDialogue.cs")
    dialogue = json.loads(files["dialogue.json"])
    top = set(re.findall(r"^        public [\w\[\]]+ (\w+);", runtime, re.M))
    assert set(dialogue) == top
    for line in dialogue["lines"]:
        assert set(line) == _cs_fields(runtime, "Line")
        for word in line["words"]:
            assert set(word) == _cs_fields(runtime, "Word")
        for cue in line["cues"]:
            assert set(cue) == _cs_fields(runtime, "Cue")


# --- import settings ----------------------------------------------------------------------------

def _expected(record: dict) -> tuple[str, str]:
    """The rules, restated: (loadType, compressionFormat)."""
    duration = record["duration"]
    if record["kind"] == "music" or duration > 10.0:
        return "Streaming", "Vorbis"
    if record["kind"] == "sfx" and duration < 2.0:
        return "DecompressOnLoad", "ADPCM"
    return "CompressedInMemory", "Vorbis"


def test_every_asset_has_import_settings(out, files):
    pack = load_pack(out)
    settings = _settings(files)
    listed = set()
    for record in pack.assets:
        paths = [p for p in record["files"].values() if p.rsplit(".", 1)[-1] in ("wav", "ogg", "flac")]
        assert record["file"] in paths
        for path in paths:
            entry = settings[path]
            listed.add(path)
            assert (out / path).is_file()
            assert (entry["id"], entry["kind"]) == (record["id"], record["kind"])
            assert entry["name"] == pack.asset_name(record)
            assert entry["locale"] == (record.get("locale") or "")
            assert (entry["loadType"], entry["compressionFormat"]) == _expected(record), path
            streaming = entry["loadType"] == "Streaming"
            assert entry["preloadAudioData"] is not streaming
            assert entry["loadInBackground"] is streaming
            assert entry["forceToMono"] is False
            assert entry["sampleRateSetting"] == "PreserveSampleRate"
            assert 0.0 < entry["quality"] <= 1.0
            assert entry["loop"] is bool(record["loop"])
            if record["loop"]:
                assert (entry["loopStart"], entry["loopEnd"]) == (record["loop"]["start"], record["loop"]["end"])
            assert entry["duration"] == record["duration"]
            assert entry["channels"] == record["channels"]
            assert entry["group"] == (record.get("group") or "")
            assert entry["take"] == (record.get("take") or 0)
    assert listed == set(settings)


def test_settings_use_unity_enum_names_and_never_pcm(files):
    for entry in _settings(files).values():
        assert entry["loadType"] in LOAD_TYPES
        assert entry["compressionFormat"] in COMPRESSION - {"PCM"}
        assert entry["sampleRateSetting"] in SAMPLE_RATE


def test_forest_settings(forest_out):
    settings = _settings(render("unity", load_pack(forest_out)))
    assert settings["ambience/forest_bed.wav"]["loadType"] == "Streaming"  # 20 s loop
    assert settings["ambience/forest_bed.wav"]["loop"] is True
    assert settings["music/forest_theme.wav"]["loadType"] == "Streaming"
    assert settings["music/forest_theme.wav"]["quality"] == 0.8
    for take in ("coin_pickup_01", "footstep_leaves_04", "magic_shimmer"):
        entry = settings[f"sfx/{take}.wav"]
        assert (entry["loadType"], entry["compressionFormat"]) == ("DecompressOnLoad", "ADPCM")
    assert settings["sfx/coin_pickup_02.wav"]["group"] == "coin_pickup"
    assert settings["sfx/coin_pickup_02.wav"]["take"] == 2
    for n in range(1, 5):
        entry = settings[f"dialogue/forest_intro_0{n}.wav"]
        assert (entry["loadType"], entry["compressionFormat"]) == ("CompressedInMemory", "Vorbis")


def test_localised_settings(localised_out):
    settings = _settings(render("unity", load_pack(localised_out)))
    assert settings["ambience/hall.wav"]["loadType"] == "CompressedInMemory"  # a 4 s loop
    assert settings["music/fanfare.wav"]["loadType"] == "Streaming"  # music always streams
    assert settings["dialogue/fr/halt.wav"]["locale"] == "fr"


@pytest.mark.parametrize("kind, duration, load, codec", [
    ("sfx", 0.1, "DecompressOnLoad", "ADPCM"),
    ("sfx", 1.99, "DecompressOnLoad", "ADPCM"),
    ("sfx", 2.0, "CompressedInMemory", "Vorbis"),
    ("sfx", 10.0, "CompressedInMemory", "Vorbis"),
    ("sfx", 10.5, "Streaming", "Vorbis"),
    ("ambience", 1.0, "CompressedInMemory", "Vorbis"),
    ("ambience", 10.0, "CompressedInMemory", "Vorbis"),
    ("ambience", 30.0, "Streaming", "Vorbis"),
    ("dialogue", 0.5, "CompressedInMemory", "Vorbis"),
    ("dialogue", 14.0, "Streaming", "Vorbis"),
    ("music", 1.0, "Streaming", "Vorbis"),
])
def test_import_rules(kind, duration, load, codec):
    settings = unity.import_settings({"kind": kind, "duration": duration})
    assert (settings["loadType"], settings["compressionFormat"]) == (load, codec)
    assert settings["preloadAudioData"] is (load != "Streaming")
    assert settings["loadInBackground"] is (load == "Streaming")


def test_only_files_unity_imports_get_settings():
    record = {"id": "rain", "kind": "ambience", "file": "ambience/rain.opus", "duration": 3.0,
              "files": {"opus": "ambience/rain.opus", "ogg": "ambience/rain.ogg", "flac": "ambience/rain.flac"}}
    assert unity.unity_files(record) == ["ambience/rain.ogg", "ambience/rain.flac"]
    record = {"id": "rain", "kind": "ambience", "file": "ambience/rain.ogg", "duration": 3.0,
              "files": {"wav": "ambience/rain.wav", "ogg": "ambience/rain.ogg"}}
    assert unity.unity_files(record) == ["ambience/rain.ogg", "ambience/rain.wav"]


# --- dialogue -----------------------------------------------------------------------------------

def test_every_dialogue_line_is_in_dialogue_json(out, files):
    pack = load_pack(out)
    doc = json.loads(files["dialogue.json"])
    lines = {(line["id"], line["locale"]): line for line in doc["lines"]}
    records = [r for r in pack.assets if r["kind"] == "dialogue"]
    assert records and len(lines) == len(records) == len(doc["lines"])
    assert doc["locales"] == pack.locales
    assert doc["sourceLocale"] == (pack.locales[0] if pack.locales else "")
    for record in records:
        line = lines[(record["id"], record.get("locale") or "")]
        assert line["text"] == record["text"]
        assert line["speaker"] == (record.get("speaker") or "")
        assert line["clip"] == record["file"]
        assert (out / line["clip"]).is_file()
        assert line["duration"] == record["duration"]
        assert line["name"] == pack.asset_name(record)
        assert [(w["text"], w["start"], w["end"]) for w in line["words"]] == [
            (w["text"], w["start"], w["end"]) for w in record["words"]]
        cues = pack.cues(record)
        assert cues
        assert [(c["start"], c["end"], c["text"]) for c in line["cues"]] == [
            (c.start, c.end, "\n".join(c.lines)) for c in cues]
        assert line["srt"] == record["subtitles"]["srt"]
        assert line["vtt"] == record["subtitles"]["vtt"]


def test_localised_dialogue_has_every_locale(localised_out):
    doc = json.loads(render("unity", load_pack(localised_out))["dialogue.json"])
    assert doc["sourceLocale"] == "en"
    assert {(line["id"], line["locale"]) for line in doc["lines"]} == {
        ("halt", "en"), ("halt", "fr"), ("pass", "en"), ("pass", "fr")}
    fr = next(line for line in doc["lines"] if (line["id"], line["locale"]) == ("pass", "fr"))
    assert fr["text"] == "Vous pouvez passer."
    assert fr["clip"] == "dialogue/fr/pass.wav"


# --- Localization CSV ---------------------------------------------------------------------------

def test_strings_csv_has_every_line_and_locale(out, files):
    pack = load_pack(out)
    header, rows = _rows(files)
    locales = pack.locales or ["en"]
    columns = [unity.locale_column(code) for code in locales]
    assert header == ["Key", "Id", *columns]
    by_key = {row["Key"]: row for row in rows}
    records = [r for r in pack.assets if r["kind"] == "dialogue"]
    assert len(rows) == len(by_key) == len({r["id"] for r in records})
    for record in records:
        row = by_key[record["id"]]
        assert row["Id"] == ""  # Unity assigns ids; rows match existing entries by key
        column = unity.locale_column(record.get("locale") or locales[0])
        assert row[column] == record["text"]


def test_strings_csv_headers(forest_out, localised_out):
    assert _rows(render("unity", load_pack(forest_out)))[0] == ["Key", "Id", "English(en)"]
    assert _rows(render("unity", load_pack(localised_out)))[0] == ["Key", "Id", "English(en)", "French(fr)"]


def test_strings_csv_quotes_awkward_text(localised_out):
    doc = copy.deepcopy(json.loads((localised_out / "assetpack.json").read_text(encoding="utf-8")))
    awkward = 'He said "halt", then\nleft; « ça va » — 100%'
    for record in doc["assets"]:
        if record["kind"] == "dialogue" and record["id"] == "halt" and record["locale"] == "fr":
            record["text"] = awkward
    _, rows = _rows(unity.render(_pack(doc)))
    assert {row["Key"]: row for row in rows}["halt"]["French(fr)"] == awkward


def test_strings_csv_leaves_a_missing_translation_empty(localised_out):
    doc = copy.deepcopy(json.loads((localised_out / "assetpack.json").read_text(encoding="utf-8")))
    doc["assets"] = [r for r in doc["assets"] if not (r["id"] == "pass" and r.get("locale") == "fr")]
    _, rows = _rows(unity.render(_pack(doc)))
    assert {row["Key"]: row for row in rows}["pass"] == {
        "Key": "pass", "Id": "", "English(en)": "You may pass.", "French(fr)": ""}


@pytest.mark.parametrize("code, column", [
    ("en", "English(en)"),
    ("fr", "French(fr)"),
    ("de", "German(de)"),
    ("ja", "Japanese(ja)"),
    ("en-GB", "English (United Kingdom)(en-GB)"),
    ("pt-BR", "Portuguese (Brazil)(pt-BR)"),
    ("es-419", "Spanish (Latin America)(es-419)"),
    ("zh-Hans", "Chinese (Simplified)(zh-Hans)"),
    ("xx", "xx"),
    ("en-ZZ", "en-ZZ"),
])
def test_locale_columns_are_named_as_unity_names_them(code, column):
    assert unity.locale_column(code) == column


# --- C# -----------------------------------------------------------------------------------------

def _mcs(tmp_path: Path, defines: list[str], sources: list[Path]) -> None:
    mcs = shutil.which("mcs")
    if mcs is None:
        pytest.skip("mcs (Debian package mono-mcs) is not installed")
    cmd = [mcs, "-target:library", "-warn:4", f"-out:{tmp_path / 'out.dll'}"]
    if defines:
        cmd.append("-define:" + ";".join(defines))
    proc = subprocess.run([*cmd, *map(str, sources), str(STUBS)], capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "error" not in output.lower(), output
    assert "warning" not in output.lower(), output


@pytest.fixture(scope="module")
def scripts(tmp_path_factory, forest_out) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("unity-scripts")
    paths = {}
    for rel, text in render("unity", load_pack(forest_out)).items():
        if rel.endswith(".cs"):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            paths[rel.split("/")[0]] = path
    return paths


def test_runtime_script_compiles_without_editor_types(tmp_path, scripts):
    _mcs(tmp_path, [], [scripts["Runtime"]])


@pytest.mark.parametrize("defines", [
    ["UNITY_EDITOR"],  # before Unity 2020.2: no import context, preloadAudioData on the importer
    ["UNITY_EDITOR", "UNITY_2020_2_OR_NEWER", "UNITY_2022_2_OR_NEWER"],
], ids=["unity-2019", "unity-2022.2+"])
def test_editor_scripts_compile(tmp_path, scripts, defines):
    _mcs(tmp_path, defines, [scripts["Runtime"], scripts["Editor"]])


# The scripts' logic, run with mono against the stubs: the pack-root search, the settings an entry
# sets on an AudioImporter (enum names parsed as Unity's), and dialogue lookup with fallbacks.

def _cs(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) + "f"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a JSON string (ASCII, \uXXXX escapes) is a valid C# literal


def _new(cls: str, obj: dict, arrays: dict[str, str] | None = None) -> str:
    parts = []
    for key, value in obj.items():
        if isinstance(value, list):
            if arrays and key in arrays:
                items = ", ".join(_new(arrays[key], item) for item in value)
                parts.append(f"{key} = new {arrays[key]}[] {{ {items} }}")
            else:
                parts.append(f"{key} = new string[] {{ {', '.join(map(_cs, value))} }}")
        else:
            parts.append(f"{key} = {_cs(value)}")
    return f"new {cls} {{ {', '.join(parts)} }}"


HARNESS = """
using System;
using System.IO;
using UnityEditor;
using Assetbuild;
using Assetbuild.EditorTools;

public static class Harness
{
    static void Show(string label, object value) { Console.WriteLine(label + "=" + (value == null ? "<null>" : value.ToString())); }

    public static int Main(string[] args)
    {
        Directory.SetCurrentDirectory(args[0]);
        Show("root:deep", AssetbuildAudioImporter.FindPackRoot("Assets/Game/Forest/sfx/takes/coin_01.wav"));
        Show("root:top", AssetbuildAudioImporter.FindPackRoot("Assets/Game/Forest/music.wav"));
        Show("root:none", AssetbuildAudioImporter.FindPackRoot("Assets/Other/x.wav"));
        Show("root:backslash", AssetbuildAudioImporter.FindPackRoot("Assets\\\\Game\\\\Forest\\\\a.wav"));

        AssetbuildAudioImporter.Entry[] entries = ENTRIES;
        foreach (AssetbuildAudioImporter.Entry entry in entries)
        {
            AudioImporter importer = new AudioImporter();
            AudioImporterSampleSettings before = importer.defaultSampleSettings;
            before.sampleRateSetting = AudioSampleRateSetting.OverrideSampleRate;
            importer.defaultSampleSettings = before;
            AssetbuildAudioImporter.Apply(importer, entry);
            AudioImporterSampleSettings s = importer.defaultSampleSettings;
#if UNITY_2022_2_OR_NEWER
            bool preload = s.preloadAudioData;
#else
            bool preload = importer.preloadAudioData;
#endif
            Show("entry:" + entry.path, string.Join(",", new string[] {
                s.loadType.ToString(), s.compressionFormat.ToString(), s.sampleRateSetting.ToString(),
                s.quality.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture),
                preload.ToString(), importer.loadInBackground.ToString(), importer.forceToMono.ToString() }));
        }

        AssetbuildDialogue dialogue = new AssetbuildDialogue();
        DIALOGUE
        foreach (string query in QUERIES)
        {
            string[] q = query.Split('|');
            AssetbuildDialogue.Line line = dialogue.Find(q[0], q[1] == "<null>" ? null : q[1]);
            Show("find:" + query, line == null ? null : line.locale + "|" + line.text);
        }
        foreach (AssetbuildDialogue.Line line in dialogue.lines)
        {
            foreach (AssetbuildDialogue.Cue cue in line.cues)
                Show("cue:" + line.id + "|" + line.locale + "|" + cue.start.ToString("R", System.Globalization.CultureInfo.InvariantCulture), line.CueAt((cue.start + cue.end) / 2) == cue.text);
            Show("gap:" + line.id + "|" + line.locale, line.CueAt(line.duration + 1f) == "");
            Show("word:" + line.id + "|" + line.locale, line.words.Length == 0 || line.WordAt((line.words[0].start + line.words[0].end) / 2) == 0);
            Show("res:" + line.id + "|" + line.locale, line.ResourcesPath("Audio/Pack/"));
        }
        return 0;
    }
}
"""


def _run_harness(tmp_path: Path, scripts: dict[str, Path], files: dict[str, str], defines: list[str],
                 queries: list[str]) -> dict[str, str]:
    mcs, mono = shutil.which("mcs"), shutil.which("mono")
    if mcs is None or mono is None:
        pytest.skip("mcs and mono (Debian packages mono-mcs, mono-runtime) are not installed")
    settings = json.loads(files["import_settings.json"])["entries"]
    settings.append({**settings[0], "path": "bogus.wav", "loadType": "Sometimes", "compressionFormat": "",
                     "quality": 3.0})
    dialogue = json.loads(files["dialogue.json"])
    top = {k: v for k, v in dialogue.items() if k != "lines"}
    code = "\n        ".join(
        f"dialogue.{k} = " + (f"new string[] {{ {', '.join(map(_cs, v))} }};" if isinstance(v, list) else f"{_cs(v)};")
        for k, v in top.items())
    lines = ", ".join(_new("AssetbuildDialogue.Line", line, {"words": "AssetbuildDialogue.Word",
                                                             "cues": "AssetbuildDialogue.Cue"})
                      for line in dialogue["lines"])
    code += f"\n        dialogue.lines = new AssetbuildDialogue.Line[] {{ {lines} }};"
    entries = ", ".join(_new("AssetbuildAudioImporter.Entry", e) for e in settings)
    harness = (HARNESS.replace("ENTRIES", f"new AssetbuildAudioImporter.Entry[] {{ {entries} }}")
               .replace("DIALOGUE", code)
               .replace("QUERIES", "new string[] { " + ", ".join(map(_cs, queries)) + " }"))
    source = tmp_path / "Harness.cs"
    source.write_text(harness, encoding="utf-8")
    exe = tmp_path / "harness.exe"
    cmd = [mcs, "-target:exe", f"-out:{exe}", "-define:" + ";".join(defines),
           str(source), str(scripts["Runtime"]), str(scripts["Editor"]), str(STUBS)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    project = tmp_path / "project"
    (project / "Assets" / "Game" / "Forest" / "sfx" / "takes").mkdir(parents=True)
    (project / "Assets" / "Game" / "Forest" / "assetpack.json").write_text("{}")
    (project / "Assets" / "Other").mkdir(parents=True)
    run = subprocess.run([mono, str(exe), str(project)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return dict(line.split("=", 1) for line in run.stdout.splitlines())


@pytest.mark.parametrize("defines", [
    ["UNITY_EDITOR"],
    ["UNITY_EDITOR", "UNITY_2020_2_OR_NEWER", "UNITY_2022_2_OR_NEWER"],
], ids=["unity-2019", "unity-2022.2+"])
def test_csharp_behaviour(tmp_path, scripts, localised_out, defines):
    files = render("unity", load_pack(localised_out))
    queries = ["halt|fr", "halt|en", "halt|<null>", "halt|", "halt|fr-CA", "halt|de", "pass|FR", "nope|en"]
    shown = _run_harness(tmp_path, scripts, files, defines, queries)

    assert shown["root:deep"] == shown["root:top"] == "Assets/Game/Forest"
    assert shown["root:backslash"] == "Assets/Game/Forest"
    assert shown["root:none"] == "<null>"

    for entry in json.loads(files["import_settings.json"])["entries"]:
        assert shown["entry:" + entry["path"]] == ",".join([
            entry["loadType"], entry["compressionFormat"], entry["sampleRateSetting"], f"{entry['quality']:.2f}",
            str(entry["preloadAudioData"]), str(entry["loadInBackground"]), str(entry["forceToMono"])])
    # unknown names leave the importer's value; quality is clamped to Unity's 0-1
    assert shown["entry:bogus.wav"].split(",")[:4] == ["DecompressOnLoad", "PCM", "PreserveSampleRate", "1.00"]

    halt_en = "en|Halt! Who goes there? State your name, traveller."
    halt_fr = "fr|Halte ! Qui va là ?"
    assert shown["find:halt|fr"] == shown["find:halt|fr-CA"] == halt_fr
    assert shown["find:halt|en"] == shown["find:halt|<null>"] == shown["find:halt|"] == halt_en
    assert shown["find:halt|de"] == halt_en  # a locale the pack lacks: the source locale
    assert shown["find:pass|FR"] == "fr|Vous pouvez passer."
    assert shown["find:nope|en"] == "<null>"
    assert all(v == "True" for k, v in shown.items() if k.split(":")[0] in ("cue", "gap", "word"))
    assert shown["res:pass|fr"] == "Audio/Pack/dialogue/fr/pass"


def test_csharp_dialogue_without_locales(tmp_path, scripts, forest_out):
    files = render("unity", load_pack(forest_out))
    shown = _run_harness(tmp_path, scripts, files, ["UNITY_EDITOR"], ["forest_intro_02|<null>", "forest_intro_02|fr"])
    text = "Lanterns floated between the trees, and the wind whispered names."
    assert shown["find:forest_intro_02|<null>"] == shown["find:forest_intro_02|fr"] == "|" + text

"""The Unreal Engine 5 export: DataTable CSV/JSON rows and the editor import script (run
against a fake ``unreal`` module that records what the script asks of the editor)."""

from __future__ import annotations

import ast
import copy
import csv
import io
import json
import re
import runpy
import shutil
import sys
import types
from pathlib import Path

import pytest

from assetbuild.errors import UsageError
from assetbuild.export.engines import Pack, load_pack, write
from assetbuild.export.engines import unreal as ue

COLUMNS = ["---", "File", "Asset", "Kind", "Speaker", "Text", "Locale", "Duration", "Loop",
           "LoopStart", "LoopEnd", "Subtitles", "Group"]
ROW_STRUCT = "/Script/Castle.AssetbuildAudioRow"

_CUE = re.compile(r'\(Text=NSLOCTEXT\("", "", "((?:[^"\\]|\\.)*)"\),Time=(-?[0-9]+\.[0-9]{6})\)')
_UNESCAPE = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}


def parse_subtitles(text: str) -> list[tuple[str, float]]:
    """Read back ``((Text=NSLOCTEXT(...),Time=...),...)`` the way Unreal's importer does."""
    assert text.startswith("(") and text.endswith(")"), text
    inner = text[1:-1]
    cues, pos = [], 0
    while pos < len(inner):
        if cues:
            assert inner[pos] == ",", inner[pos:]
            pos += 1
        m = _CUE.match(inner, pos)
        assert m, inner[pos:]
        cues.append((re.sub(r"\\(.)", lambda e: _UNESCAPE[e.group(1)], m.group(1)), float(m.group(2))))
        pos = m.end()
    return cues


def expected_row_name(pack: Pack, record: dict) -> str:
    name = pack.asset_name(record)
    return name if pack.is_source(record) else f"{name}_{record['locale']}"


def expected_cues(pack: Pack, record: dict) -> list[tuple[str, float]]:
    return [(" ".join(c.lines), round(c.start, 6)) for c in pack.cues(record)]


@pytest.fixture(params=["forest", "localised"])
def pack(request) -> Pack:
    return load_pack(request.getfixturevalue(f"{request.param}_out"))


# --- render ---------------------------------------------------------------------------------------

def test_csv_and_json_rows_match_assetpack(pack):
    files = ue.render(pack)
    assert set(files) == {"AssetbuildAudio.csv", "AssetbuildAudio.json", "import_assetpack.py"}
    reader = csv.DictReader(io.StringIO(files["AssetbuildAudio.csv"]))
    assert reader.fieldnames == COLUMNS
    csv_rows = list(reader)
    json_rows = json.loads(files["AssetbuildAudio.json"])
    assert len(csv_rows) == len(json_rows) == len(pack.assets)
    by_name = {row["---"]: row for row in csv_rows}
    json_by_name = {row["Name"]: row for row in json_rows}
    assert len(by_name) == len(json_by_name) == len(pack.assets)  # every row name once

    for record in pack.assets:
        name = expected_row_name(pack, record)
        row, jrow = by_name[name], json_by_name[name]
        assert list(jrow) == ["Name"] + COLUMNS[1:]
        assert row["File"] == jrow["File"] == record["file"]
        assert (pack.root / row["File"]).is_file()
        assert row["Kind"] == jrow["Kind"] == record["kind"]
        assert row["Locale"] == jrow["Locale"] == (record.get("locale") or "")
        assert row["Speaker"] == jrow["Speaker"] == (record.get("speaker") or "")
        assert row["Text"] == jrow["Text"] == (record.get("text") or "")
        assert row["Group"] == jrow["Group"] == (record.get("group") or "")
        assert float(row["Duration"]) == pytest.approx(record["duration"], abs=1e-6)
        assert jrow["Duration"] == pytest.approx(record["duration"], abs=1e-6)
        loop = record["loop"]
        assert row["Loop"] == ("True" if loop else "False")
        assert jrow["Loop"] is bool(loop)
        assert (int(row["LoopStart"]), int(row["LoopEnd"])) == ((loop["start"], loop["end"]) if loop else (0, 0))
        assert (jrow["LoopStart"], jrow["LoopEnd"]) == ((loop["start"], loop["end"]) if loop else (0, 0))

        cues = expected_cues(pack, record)
        assert parse_subtitles(row["Subtitles"]) == cues
        assert [(c["Text"], c["Time"]) for c in jrow["Subtitles"]] == cues
        if record["kind"] == "dialogue":
            assert cues and cues[0][0], record["id"]  # every built line has subtitles

        assert row["Asset"] == jrow["Asset"]
        package, obj = row["Asset"].rsplit(".", 1)
        assert obj == pack.asset_name(record) == package.rsplit("/", 1)[1]
        source = f"/Game/Audio/{pack.name}/{ue.KIND_FOLDERS[record['kind']]}/{obj}"
        assert package == (source if pack.is_source(record) else f"/Game/L10N/{record['locale']}" + source[5:])


def test_localised_names_and_paths(localised_out):
    pack = load_pack(localised_out)
    rows = {row["Name"]: row for row in ue.rows(pack)}
    assert rows["VO_halt"]["Asset"] == "/Game/Audio/castle/Dialogue/VO_halt.VO_halt"
    assert rows["VO_halt"]["Locale"] == "en"
    assert rows["VO_halt_fr"]["Asset"] == "/Game/L10N/fr/Audio/castle/Dialogue/VO_halt.VO_halt"
    assert rows["VO_halt_fr"]["File"] == "dialogue/fr/halt.wav"
    assert rows["AMB_hall"]["Loop"] and rows["AMB_hall"]["LoopEnd"] > 0
    assert rows["SFX_door_02"]["Group"] == "door"
    assert rows["MUS_fanfare"]["Subtitles"] == [] and rows["MUS_fanfare"]["Speaker"] == ""
    csv_rows = list(csv.DictReader(io.StringIO(ue.render(pack)["AssetbuildAudio.csv"])))
    assert {r["---"]: r["Subtitles"] for r in csv_rows}["MUS_fanfare"] == "()"


def test_subtitle_text_escaping():
    cues = [{"Text": 'He said "go" \\ now', "Time": 0.0}, {"Text": "a,b (c)", "Time": 1.23}]
    text = ue.subtitles_text(cues)
    assert text == ('((Text=NSLOCTEXT("", "", "He said \\"go\\" \\\\ now"),Time=0.000000),'
                    '(Text=NSLOCTEXT("", "", "a,b (c)"),Time=1.230000))')
    assert parse_subtitles(text) == [('He said "go" \\ now', 0.0), ("a,b (c)", 1.23)]
    # Through the CSV writer and back (quotes doubled inside a quoted cell).
    buf = io.StringIO()
    csv.writer(buf).writerow(["VO_x", text])
    assert next(csv.reader(io.StringIO(buf.getvalue())))[1] == text


def test_prefers_wav_and_sanitises_project_folder(localised_out):
    doc = json.loads((localised_out / "assetpack.json").read_text())
    doc["project"]["name"] = "Castle Siege: Part 2"
    for record in doc["assets"]:
        if record["id"] == "fanfare":
            record["files"] = {"ogg": "music/fanfare.ogg", "wav": "music/fanfare.wav"}
            record["file"] = "music/fanfare.ogg"
    rows = {row["Name"]: row for row in ue.rows(Pack(localised_out, doc))}
    assert rows["MUS_fanfare"]["File"] == "music/fanfare.wav"
    assert rows["MUS_fanfare"]["Asset"] == "/Game/Audio/Castle_Siege__Part_2/Music/MUS_fanfare.MUS_fanfare"


def test_row_name_clash_is_an_error(localised_out):
    doc = json.loads((localised_out / "assetpack.json").read_text())
    clash = copy.deepcopy(next(r for r in doc["assets"] if r["id"] == "pass" and r["locale"] == "en"))
    clash.update(id="halt_fr", file="dialogue/en/halt_fr.wav")
    doc["assets"].append(clash)
    with pytest.raises(UsageError, match="VO_halt_fr"):
        ue.rows(Pack(localised_out, doc))


def test_render_is_deterministic(forest_out, localised_out):
    for out in (forest_out, localised_out):
        assert ue.render(load_pack(out)) == ue.render(load_pack(out))


# --- the editor script, against a fake `unreal` ---------------------------------------------------

class _Obj:
    """An Unreal object or struct: editor properties in a dict."""

    defaults: dict = {}

    def __init__(self, **props):
        self.props = {**copy.deepcopy(self.defaults), **props}

    def set_editor_property(self, name, value):
        self.props[name] = value

    def get_editor_property(self, name):
        return self.props[name]


def fake_unreal(known_structs=()) -> types.ModuleType:
    mod = types.ModuleType("unreal")
    calls = mod.calls = {"imports": [], "saved": [], "log": [], "errors": []}
    mod.assets = {}

    class AssetImportTask(_Obj):
        defaults = {"filename": "", "destination_path": "", "destination_name": "", "automated": False,
                    "replace_existing": False, "save": False, "factory": None, "imported_object_paths": []}

    class CSVImportSettings(_Obj):
        defaults = {"import_row_struct": None, "import_type": None}

    class CSVImportFactory(_Obj):
        defaults = {"automated_import_settings": CSVImportSettings()}

        def get_editor_property(self, name):  # structs come back as copies, as in Unreal
            return copy.deepcopy(super().get_editor_property(name))

    class SoundWave(_Obj):
        defaults = {"looping": False, "subtitles": []}

    class AssetTools:
        def import_asset_tasks(self, tasks):
            calls["imports"].append(list(tasks))
            for task in tasks:
                p = task.props
                path = f"{p['destination_path']}/{p['destination_name']}.{p['destination_name']}"
                if p["factory"] is None:
                    mod.assets.setdefault(path, SoundWave())
                task.set_editor_property("imported_object_paths", [path])

    class EditorAssetLibrary:
        @staticmethod
        def load_asset(path):
            return mod.assets.get(path)

        @staticmethod
        def save_asset(path, only_if_is_dirty=True):
            calls["saved"].append(path)
            return True

    class Text(str):
        pass

    class SubtitleCue:
        def __init__(self, text, time):
            assert isinstance(text, Text)
            self.text, self.time = text, time

    mod.AssetImportTask = AssetImportTask
    mod.CSVImportFactory = CSVImportFactory
    mod.CSVImportType = types.SimpleNamespace(ECSV_DATA_TABLE="ECSV_DATA_TABLE")
    mod.AssetToolsHelpers = types.SimpleNamespace(get_asset_tools=AssetTools)
    mod.EditorAssetLibrary = EditorAssetLibrary
    mod.Text = Text
    mod.SubtitleCue = SubtitleCue
    mod.load_object = lambda outer, path: ("STRUCT", path) if path in known_structs else None
    mod.log = calls["log"].append
    mod.log_warning = calls["errors"].append
    mod.log_error = calls["errors"].append
    return mod


def run_script(root: Path, monkeypatch, *args: str, known_structs=(ROW_STRUCT,),
               env_struct: str | None = None) -> types.ModuleType:
    if env_struct is None:
        monkeypatch.delenv("ASSETBUILD_ROW_STRUCT", raising=False)
    else:
        monkeypatch.setenv("ASSETBUILD_ROW_STRUCT", env_struct)
    mod = fake_unreal(known_structs)
    script = root / "unreal" / "import_assetpack.py"
    monkeypatch.setitem(sys.modules, "unreal", mod)
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    runpy.run_path(str(script), run_name="__main__")
    return mod


@pytest.fixture(params=["forest", "localised"])
def exported(request, tmp_path) -> Pack:
    root = tmp_path / "pack"
    shutil.copytree(request.getfixturevalue(f"{request.param}_out"), root)
    pack = load_pack(root)
    written = write("unreal", pack)
    assert sorted(p.name for p in written) == ["AssetbuildAudio.csv", "AssetbuildAudio.json", "import_assetpack.py"]
    return pack


def test_script_imports_every_sound(exported, monkeypatch):
    pack = exported
    mod = run_script(pack.root, monkeypatch)
    assert mod.calls["errors"] == []
    sound_batches = [b for b in mod.calls["imports"] if b[0].props["factory"] is None]
    assert len(sound_batches) == 1
    tasks = sound_batches[0]
    assert len(tasks) == len(pack.assets)
    by_dest = {}
    for task in tasks:
        p = task.props
        assert p["automated"] is True and p["replace_existing"] is True and p["save"] is True
        assert Path(p["filename"]).is_absolute() and Path(p["filename"]).is_file()
        by_dest[(p["destination_path"], p["destination_name"])] = p["filename"]
    assert len(by_dest) == len(pack.assets)

    for record in pack.assets:
        package, name = ue.asset_path(pack, record).rsplit(".", 1)
        folder, leaf = package.rsplit("/", 1)
        assert leaf == name == pack.asset_name(record)  # no locale suffix on the asset itself
        assert Path(by_dest[(folder, name)]) == (pack.root / record["file"]).resolve()
        wave = mod.assets[f"{package}.{name}"]
        assert wave.props["looping"] is bool(record["loop"]), record["id"]
        if record["kind"] == "dialogue":
            got = [(str(c.text), round(c.time, 6)) for c in wave.props["subtitles"]]
            assert got == expected_cues(pack, record) and got
        else:
            assert wave.props["subtitles"] == []

    assert sorted(mod.calls["saved"]) == sorted(ue.asset_path(pack, r) for r in pack.assets)
    assert sum(w.props["looping"] for w in mod.assets.values()) == sum(bool(r["loop"]) for r in pack.assets)
    assert len(mod.calls["log"]) == 1
    assert f"imported {len(pack.assets)} of {len(pack.assets)}" in mod.calls["log"][0]
    assert "DataTable: skipped" in mod.calls["log"][0]


def test_script_imports_datatable_with_row_struct(exported, monkeypatch):
    pack = exported
    mod = run_script(pack.root, monkeypatch, "--row-struct", ROW_STRUCT)
    assert mod.calls["errors"] == []
    tables = [b for b in mod.calls["imports"] if b[0].props["factory"] is not None]
    assert len(tables) == 1 and len(tables[0]) == 1
    task = tables[0][0].props
    assert Path(task["filename"]) == (pack.root / "unreal" / "AssetbuildAudio.csv").resolve()
    assert task["destination_path"] == f"/Game/Audio/{pack.name}"
    assert task["destination_name"] == "DT_AssetbuildAudio"
    assert task["automated"] and task["replace_existing"] and task["save"]
    settings = task["factory"].props["automated_import_settings"].props
    assert settings["import_row_struct"] == ("STRUCT", ROW_STRUCT)
    assert settings["import_type"] == "ECSV_DATA_TABLE"
    # The sounds are imported before the table that refers to them.
    assert mod.calls["imports"][0][0].props["factory"] is None
    assert f"DataTable: /Game/Audio/{pack.name}/DT_AssetbuildAudio" in mod.calls["log"][0]


def test_script_row_struct_from_environment(localised_out, tmp_path, monkeypatch):
    root = tmp_path / "pack"
    shutil.copytree(localised_out, root)
    write("unreal", load_pack(root))
    mod = run_script(root, monkeypatch, env_struct=ROW_STRUCT)
    tables = [b for b in mod.calls["imports"] if b[0].props["factory"] is not None]
    assert len(tables) == 1
    assert "DataTable: /Game/Audio/castle/DT_AssetbuildAudio" in mod.calls["log"][0]


def test_script_unknown_row_struct_and_missing_file(localised_out, tmp_path, monkeypatch):
    root = tmp_path / "pack"
    shutil.copytree(localised_out, root)
    pack = load_pack(root)
    write("unreal", pack)
    (root / "dialogue" / "fr" / "pass.wav").unlink()
    mod = run_script(root, monkeypatch, "--row-struct", "/Script/Nope.Row", known_structs=())
    assert [b for b in mod.calls["imports"] if b[0].props["factory"] is not None] == []
    assert any("VO_pass_fr" in e for e in mod.calls["errors"])
    assert any("/Script/Nope.Row" in e for e in mod.calls["errors"])
    assert len(mod.calls["imports"][0]) == len(pack.assets) - 1
    assert f"imported {len(pack.assets) - 1} of {len(pack.assets)}" in mod.calls["log"][0]


def test_script_uses_only_unreal_and_stdlib():
    source = ue.script("unreal_import.py")
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    assert names <= {"unreal"} | set(sys.stdlib_module_names), names
    assert "unreal" in names

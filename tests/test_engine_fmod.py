"""The FMOD Studio export: the events CSV, the dialogue audio-table lists, and the Studio script,
run for real with Node against a fake ``studio`` (tests/fmod_harness.js) that records what it
creates."""

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

from assetbuild.errors import UsageError
from assetbuild.export.engines import KIND_FOLDERS, Pack, fmod, load_pack, script, write

EVENT_COLUMNS = ["event", "kind", "instrument", "files", "loop", "loop_start", "loop_end", "duration",
                 "group", "bus", "bank", "notes"]
TABLE_COLUMNS = ["key", "locale", "file", "source_dir", "duration", "speaker", "text"]
HARNESS = Path(__file__).with_name("fmod_harness.js")
MENU = "assetbuild\\Import assetpack"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


@pytest.fixture(params=["forest", "localised"])
def pack(request) -> Pack:
    return load_pack(request.getfixturevalue(f"{request.param}_out"))


def parse(text: str, columns: list[str]) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == columns
    return list(reader)


def events_of(pack: Pack) -> dict[str, dict[str, str]]:
    rows = parse(fmod.render(pack)["assetbuild_events.csv"], EVENT_COLUMNS)
    by_path = {row["event"]: row for row in rows}
    assert len(by_path) == len(rows)
    return by_path


def takes(pack: Pack, group: str) -> list[dict]:
    return sorted((r for r in pack.assets if r.get("group") == group), key=lambda r: r["take"])


# --- render ---------------------------------------------------------------------------------

def test_files(pack):
    files = fmod.render(pack)
    keys = [f"assetbuild_audio_table_keys_{loc}.txt" for loc in pack.locales] or ["assetbuild_audio_table_keys.txt"]
    assert set(files) == {"assetbuild_events.csv", "assetbuild_audio_table.csv", "import_assetpack.js", *keys}
    assert files["import_assetpack.js"] == script("fmod_import.js")


def test_events_cover_every_sound(pack):
    events = events_of(pack)
    project = pack.name
    expected = set()
    for record in pack.assets:
        kind = record["kind"]
        if kind == "dialogue" and pack.locales:
            continue  # localised lines play from the audio table
        group = record.get("group")
        name = pack.asset_name({"kind": kind, "id": group} if group else record)
        path = f"event:/{project}/{KIND_FOLDERS[kind]}/{name}"
        expected.add(path)
        row = events[path]
        members = takes(pack, group) if group else [record]
        assert row["kind"] == kind
        assert row["instrument"] == ("multi" if group else "single")
        assert row["group"] == (group or "")
        assert row["files"].split(";") == [m["file"] for m in members]
        for rel in row["files"].split(";"):
            assert (pack.root / rel).is_file()
        assert float(row["duration"]) == pytest.approx(max(m["duration"] for m in members), abs=1e-6)
        assert row["loop"] == ("true" if record["loop"] else "false")
        if record["loop"] and not group:
            rate = record["sample_rate"]
            assert float(row["loop_start"]) == pytest.approx(record["loop"]["start"] / rate, abs=1e-6)
            assert float(row["loop_end"]) == pytest.approx((record["loop"]["end"] + 1) / rate, abs=1e-6)
        assert row["bus"] == f"bus:/{KIND_FOLDERS[kind]}"
        assert row["bank"] == project
        if kind == "dialogue":
            assert row["notes"] == f"{record['speaker']}: {record['text']}"
    programmer = f"event:/{project}/Dialogue/Dialogue Line"
    assert set(events) == expected | {programmer}
    line = events[programmer]
    assert line["instrument"] == "programmer" and line["files"] == "" and line["loop"] == "false"
    dialogue = [r for r in pack.assets if r["kind"] == "dialogue"]
    assert float(line["duration"]) == pytest.approx(max(r["duration"] for r in dialogue), abs=1e-6)


def test_audio_table_lists_every_line_in_every_locale(pack):
    files = fmod.render(pack)
    rows = parse(files["assetbuild_audio_table.csv"], TABLE_COLUMNS)
    dialogue = [r for r in pack.assets if r["kind"] == "dialogue"]
    assert len(rows) == len(dialogue)
    for record, row in zip(dialogue, rows):
        assert row["key"] == record["id"]
        assert row["locale"] == (record.get("locale") or "")
        assert row["file"] == record["file"] and (pack.root / row["file"]).is_file()
        assert row["source_dir"] == ("dialogue/" + record["locale"] if record.get("locale") else "dialogue")
        assert row["text"] == record["text"] and row["speaker"] == record["speaker"]
    # Key files: "key,file" per line, the file relative to the audio table's source directory.
    for locale in pack.locales or [None]:
        name = f"assetbuild_audio_table_keys_{locale}.txt" if locale else "assetbuild_audio_table_keys.txt"
        lines = files[name].splitlines()
        mine = [r for r in rows if r["locale"] == (locale or "")]
        assert len(lines) == len(mine)
        for line, row in zip(lines, mine):
            key, rel = line.split(",")
            assert key == row["key"]
            assert (pack.root / row["source_dir"] / rel).is_file()
            assert f"{row['source_dir']}/{rel}" == row["file"]


def test_localised_keys_match_across_locales(localised_out):
    files = fmod.render(load_pack(localised_out))
    en = files["assetbuild_audio_table_keys_en.txt"].splitlines()
    fr = files["assetbuild_audio_table_keys_fr.txt"].splitlines()
    assert [l.split(",")[0] for l in en] == [l.split(",")[0] for l in fr] == ["halt", "pass"]
    assert en == ["halt,halt.wav", "pass,pass.wav"]


def test_no_dialogue_no_audio_table(localised_out):
    pack = load_pack(localised_out)
    doc = copy.deepcopy(pack.doc)
    doc["assets"] = [r for r in doc["assets"] if r["kind"] != "dialogue"]
    files = fmod.render(Pack(localised_out, doc))
    assert set(files) == {"assetbuild_events.csv", "import_assetpack.js"}
    assert not any("Dialogue" in row["event"] for row in parse(files["assetbuild_events.csv"], EVENT_COLUMNS))


def test_prefers_lossless_files_and_safe_names(localised_out):
    pack = load_pack(localised_out)
    doc = copy.deepcopy(pack.doc)
    doc["project"]["name"] = "Castle / Keep"
    hall = next(r for r in doc["assets"] if r["id"] == "hall")
    hall["file"], hall["files"] = "ambience/hall.ogg", {"ogg": "ambience/hall.ogg", "wav": "ambience/hall.wav"}
    halt = next(r for r in doc["assets"] if r["id"] == "halt" and r["locale"] == "fr")
    halt["text"] = 'Halte, "toi" !\nQui va là ?'
    files = fmod.render(Pack(localised_out, doc))
    events = {r["event"]: r for r in parse(files["assetbuild_events.csv"], EVENT_COLUMNS)}
    assert events["event:/Castle___Keep/Ambience/AMB_hall"]["files"] == "ambience/hall.wav"
    assert events["event:/Castle___Keep/Ambience/AMB_hall"]["bank"] == "Castle___Keep"
    table = parse(files["assetbuild_audio_table.csv"], TABLE_COLUMNS)
    assert next(r for r in table if r["locale"] == "fr" and r["key"] == "halt")["text"] == halt["text"]


def test_event_clash_is_an_error(forest_out):
    pack = load_pack(forest_out)
    doc = copy.deepcopy(pack.doc)
    clash = copy.deepcopy(next(r for r in doc["assets"] if r["id"] == "magic_shimmer"))
    clash["id"] = "coin_pickup"  # the same event as the coin_pickup group
    doc["assets"].append(clash)
    with pytest.raises(UsageError, match="coin_pickup"):
        fmod.render(Pack(forest_out, doc))


def test_render_is_deterministic(forest_out, localised_out):
    for out in (forest_out, localised_out):
        assert fmod.render(load_pack(out)) == fmod.render(load_pack(out))


def _strip_js(code: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    code = re.sub(r"//[^\n]*", "", code)
    return re.sub(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|/(?:[^/\\\n]|\\.)+/[gimy]*', '""', code)


def test_script_is_plain_es5():
    code = _strip_js(script("fmod_import.js"))
    for pattern in (r"=>", r"`", r"\blet\b", r"\bconst\b", r"\bclass\b", r"\.\.\.", r"\bof\b",
                    r"\bimport\b", r"\bexport\b", r"\basync\b", r"\bawait\b"):
        assert not re.search(pattern, code), pattern


# --- the script, run against the fake FMOD Studio ----------------------------------------------

def run_harness(tmp_path: Path, pack_root: Path, steps: list[dict], buses=("bus:/SFX",), name="plan") -> dict:
    plan = {
        "script": str(pack_root / "fmod" / "import_assetpack.js"),
        "assetsDir": str(tmp_path / "FMODProject" / "Assets"),
        "buses": list(buses),
        "steps": steps,
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    plan_path = tmp_path / f"{name}.json"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    proc = subprocess.run([NODE, str(HARNESS), str(plan_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(params=["forest", "localised"])
def exported(request, tmp_path) -> Path:
    root = tmp_path / "pack"
    shutil.copytree(request.getfixturevalue(f"{request.param}_out"), root)
    write("fmod", load_pack(root))
    return root


@needs_node
def test_node_accepts_the_script(tmp_path):
    path = tmp_path / "import_assetpack.js"
    path.write_text(script("fmod_import.js"), encoding="utf-8")
    proc = subprocess.run([NODE, "--check", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@needs_node
def test_script_creates_one_event_per_row(exported, tmp_path):
    pack = load_pack(exported)
    rows = events_of(pack)
    state = run_harness(tmp_path, exported, [{"via": "menu", "menu": MENU, "location": str(exported)}])
    assert state["menu"] == [MENU]
    assert "events created" in state["messages"][-1] and "failed" not in state["messages"][-1]
    events = {e["path"]: e for e in state["events"]}
    assert set(events) == set(rows)
    assert state["banks"] == [pack.name]
    assert state["orphanSounds"] == 0
    sources = {a["assetPath"]: a for a in state["assets"]}

    for path, row in rows.items():
        event = events[path]
        assert event["banks"] == [pack.name]
        assert event["bus"] == ("bus:/SFX" if row["kind"] == "sfx" else None)  # only buses that exist
        assert event["note"] == row["notes"]
        assert [t["name"] for t in event["tracks"]] == ["assetbuild"]
        [instrument] = event["tracks"][0]["instruments"]
        expected_type = {"single": "SingleSound", "multi": "MultiSound", "programmer": "ProgrammerSound"}
        assert instrument["type"] == expected_type[row["instrument"]]
        assert instrument["start"] == 0
        assert instrument["length"] == pytest.approx(float(row["duration"]), abs=1e-3)
        assert instrument["looping"] == (row["loop"] == "true")
        files = row["files"].split(";") if row["files"] else []
        wanted = [f"{pack.name}/{rel}" for rel in files]
        if row["instrument"] == "single":
            assert instrument["audio"] == wanted[0]
        elif row["instrument"] == "multi":
            assert instrument["playlist"] == wanted
        else:
            assert instrument["isAsync"] is True
        for asset_path, rel in zip(wanted, files):
            asset = sources[asset_path]
            assert Path(asset["source"]) == exported / rel
            assert Path(asset["file"]).read_bytes() == (exported / rel).read_bytes()
        if row["loop"] == "true":
            [region] = event["regions"]
            assert region["loopMode"] == 1
            assert region["position"] == pytest.approx(float(row["loop_start"]), abs=1e-6)
            assert region["length"] == pytest.approx(float(row["loop_end"]) - float(row["loop_start"]), abs=1e-6)
        else:
            assert event["regions"] == []
    folders = {path.rsplit("/", 1)[0] for path in rows}
    assert set(state["folders"]) == folders | {f"event:/{pack.name}"}
    assert len(state["assets"]) == sum(len(r["files"].split(";")) for r in rows.values() if r["files"])


@needs_node
def test_running_twice_updates_instead_of_duplicating(exported, tmp_path):
    steps = [
        {"via": "menu", "menu": MENU, "location": str(exported / "fmod")},
        {"via": "global", "location": str(exported / "fmod" / "assetbuild_events.csv")},
        {"via": "load"},  # Scripts > Reload: the menu item is not added twice
        {"via": "require", "location": str(exported)},
    ]
    state = run_harness(tmp_path, exported, steps)
    once = run_harness(tmp_path / "once", exported, steps[:1], name="once")
    assert state["menu"] == [MENU]
    assert state["events"] == once["events"]
    assert state["folders"] == once["folders"] and state["banks"] == once["banks"]
    assert [a["assetPath"] for a in state["assets"]] == [a["assetPath"] for a in once["assets"]]
    second, third = state["reports"][1]["report"], state["reports"][3]["report"]
    rows = events_of(load_pack(exported))
    for report in (second, third):
        assert report["created"] == [] and sorted(report["updated"]) == sorted(rows)
        assert report["imported"] == 0 and report["folders"] == 0 and report["banks"] == 0
        assert report["warnings"] == []
    assert state["reports"][3]["exports"] == ["importPack", "normalisePath", "parseCsv"]
    assert state["prompts"][0]["defaultText"] == ""


@needs_node
def test_rerun_follows_a_changed_pack(forest_out, tmp_path):
    root = tmp_path / "pack"
    shutil.copytree(forest_out, root)
    write("fmod", load_pack(root))
    csv_path = root / "fmod" / "assetbuild_events.csv"
    shimmer = root / "sfx" / "magic_shimmer.wav"

    # The pack changes between two imports: new audio for a sound, a take leaves its group, a
    # loop stops looping, a group becomes a single sound.
    new_shimmer = tmp_path / "magic_shimmer.wav"
    new_shimmer.write_bytes(shimmer.read_bytes() + b"\0\0")
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    for row in rows:
        if row["group"] == "coin_pickup":
            row["files"] = ";".join(row["files"].split(";")[:2])
        if row["event"].endswith("/MUS_forest_theme"):
            row["loop"] = "false"
        if row["group"] == "footstep_leaves":
            row["instrument"], row["files"] = "single", row["files"].split(";")[0]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EVENT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    new_csv = tmp_path / "events.csv"
    new_csv.write_text(buf.getvalue(), encoding="utf-8")

    first = run_harness(tmp_path / "first", root, [{"via": "global", "location": str(root)}], name="first")
    state = run_harness(tmp_path, root, [
        {"via": "global", "location": str(root)},
        {"via": "replace", "files": {str(shimmer): str(new_shimmer), str(csv_path): str(new_csv)}},
        {"via": "global", "location": str(root)},
    ])
    events = {e["path"]: e for e in state["events"]}
    assert len(events) == len(first["events"])
    coin = events["event:/forest/SFX/SFX_coin_pickup"]["tracks"][0]["instruments"]
    assert [i["type"] for i in coin] == ["MultiSound"]
    assert coin[0]["playlist"] == ["forest/sfx/coin_pickup_01.wav", "forest/sfx/coin_pickup_02.wav"]
    music = events["event:/forest/Music/MUS_forest_theme"]
    assert music["regions"] == [] and music["tracks"][0]["instruments"][0]["looping"] is False
    steps = events["event:/forest/SFX/SFX_footstep_leaves"]["tracks"][0]["instruments"]
    assert [i["type"] for i in steps] == ["SingleSound"]
    assert steps[0]["audio"] == "forest/sfx/footstep_leaves_01.wav"
    refreshed = next(a for a in state["assets"] if a["assetPath"] == "forest/sfx/magic_shimmer.wav")
    assert Path(refreshed["file"]).read_bytes() == new_shimmer.read_bytes()
    report = state["reports"][2]["report"]
    assert report["created"] == [] and report["imported"] == 0 and report["warnings"] == []
    assert state["orphanSounds"] == 0

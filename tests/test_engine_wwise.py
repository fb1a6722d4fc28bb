"""The Wwise export: tab-delimited import files (one for SFX, one per voice language) that
Wwise's Audio File Importer and WAAPI ``ak.wwise.core.audio.importTabDelimited`` read."""

from __future__ import annotations

import copy
import csv
import io
import shutil
from pathlib import Path, PureWindowsPath

import pytest

from assetbuild.errors import UsageError
from assetbuild.export.engines import KIND_FOLDERS, Pack, load_pack, write, wwise

COLUMNS = ["Audio File", "Object Path", "Object Type", "Event", "Notes", "Audio Source Notes",
           "@IsLoopingEnabled"]
ROOT = "\\Actor-Mixer Hierarchy\\Default Work Unit"
EVENTS = "\\Events\\Default Work Unit"


@pytest.fixture(params=["forest", "localised"])
def pack(request) -> Pack:
    return load_pack(request.getfixturevalue(f"{request.param}_out"))


def parse(text: str) -> list[dict[str, str]]:
    """Read a .tsv the way Wwise does: split on tabs, no quoting."""
    assert not text.startswith("\ufeff")
    assert text.endswith("\n")
    for line in text.splitlines():  # one physical line per row, every row with every column
        assert line.count("\t") == len(COLUMNS) - 1, line
    reader = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    assert reader.fieldnames == COLUMNS
    rows = list(reader)
    assert all(None not in row and all(v is not None for v in row.values()) for row in rows)
    return rows


def voice_files(pack: Pack) -> list[str]:
    return [f"assetbuild_voice_{loc}.tsv" for loc in pack.locales] or ["assetbuild_voice.tsv"]


def expected_file(pack: Pack, record: dict) -> str:
    if record["kind"] != "dialogue":
        return "assetbuild_import.tsv"
    return f"assetbuild_voice_{record['locale']}.tsv" if record.get("locale") else "assetbuild_voice.tsv"


def resolve(root: Path, audio_file: str) -> Path:
    """A tsv's Audio File (relative to <output>/wwise/, backslashes) as a path on this machine."""
    parts = PureWindowsPath(audio_file).parts
    assert parts[0] == ".."
    return root.joinpath(*parts[1:])


# --- render ---------------------------------------------------------------------------------

def test_files_and_header(pack):
    files = wwise.render(pack)
    assert set(files) == {"assetbuild_import.tsv", "README.txt", *voice_files(pack)}
    for name, text in files.items():
        if name.endswith(".tsv"):
            parse(text)


def test_every_asset_is_a_row(pack):
    files = wwise.render(pack)
    rows = {name: parse(text) for name, text in files.items() if name.endswith(".tsv")}
    project = pack.name
    covered = set()
    for record in pack.assets:
        name = expected_file(pack, record)
        asset = pack.asset_name(record)
        matches = [r for r in rows[name] if r["Object Path"].endswith("\\" + asset)]
        assert len(matches) == 1, (record["file"], name)
        row = matches[0]
        covered.add((name, row["Object Path"]))

        kind_folder = f"{ROOT}\\{project}\\{KIND_FOLDERS[record['kind']]}"
        if record.get("group"):
            container = pack.asset_name({"kind": record["kind"], "id": record["group"]})
            assert row["Object Path"] == f"{kind_folder}\\<Random Container>{container}\\{asset}"
        else:
            assert row["Object Path"] == f"{kind_folder}\\{asset}"
        assert row["Object Type"] == ("Sound Voice" if record["kind"] == "dialogue" else "Sound SFX")
        assert row["@IsLoopingEnabled"] == ("True" if record["loop"] else "")

        # The audio file: relative to the .tsv, and it is the asset's file.
        assert row["Audio File"] == "..\\" + record["file"].replace("/", "\\")
        assert resolve(pack.root, row["Audio File"]).is_file()

        # One Play event per asset (per group for takes), only where the object is created.
        first = record["kind"] != "dialogue" or pack.is_source(record)
        if record.get("group") or not first:
            assert row["Event"] == ""
        else:
            assert row["Event"] == f"{EVENTS}\\{project}\\Play_{asset}"

        if record["kind"] == "dialogue":
            assert row["Audio Source Notes"] == record["text"]
            if first:
                assert row["Notes"] == f"{record['speaker']}: {record['text']}"
            else:
                assert row["Notes"] == ""  # the object's notes stay in the source language
        else:
            assert row["Notes"] == record["prompt"]

    # Every other row is a group's Random Container, with the group's one event.
    groups = {(expected_file(pack, r), r["kind"], r["group"]) for r in pack.assets if r.get("group")}
    extra = [(name, r) for name, table in rows.items() for r in table if (name, r["Object Path"]) not in covered]
    assert len(extra) == len(groups) == len(pack.groups)
    for name, row in extra:
        assert row["Object Type"] == "Random Container"
        assert row["Audio File"] == "" and row["@IsLoopingEnabled"] == ""
        container = row["Object Path"].rsplit("\\", 1)[1]
        assert row["Event"] == f"{EVENTS}\\{project}\\Play_{container}"
        takes = [r for r in rows[name] if f"\\<Random Container>{container}\\" in r["Object Path"]]
        group = next(g for g in pack.groups for r in pack.assets
                     if r.get("group") == g["id"] and pack.asset_name({"kind": r["kind"], "id": g["id"]}) == container)
        assert len(takes) == len(group["assets"])
        # The container comes before its takes (Wwise creates objects in row order).
        assert rows[name].index(row) < min(rows[name].index(t) for t in takes)


def test_events_are_unique_and_one_per_sound(pack):
    files = wwise.render(pack)
    events = [r["Event"] for name, text in files.items() if name.endswith(".tsv")
              for r in parse(text) if r["Event"]]
    assert len(events) == len(set(events))
    sounds = [r for r in pack.assets if not r.get("group") and pack.is_source(r)]
    assert len(events) == len(sounds) + len(pack.groups)


def test_localised_voice_files(localised_out):
    pack = load_pack(localised_out)
    files = wwise.render(pack)
    en, fr = parse(files["assetbuild_voice_en.tsv"]), parse(files["assetbuild_voice_fr.tsv"])
    # Every locale names the same objects: a later import adds its language to them.
    assert [r["Object Path"] for r in en] == [r["Object Path"] for r in fr]
    assert [r["Audio File"] for r in fr] == ["..\\dialogue\\fr\\halt.wav", "..\\dialogue\\fr\\pass.wav"]
    assert all(r["Event"] for r in en) and not any(r["Event"] for r in fr)
    assert fr[0]["Audio Source Notes"] == "Halte ! Qui va là ?"
    readme = files["README.txt"]
    order = [readme.index(n) for n in ("assetbuild_import.tsv", "assetbuild_voice_en.tsv", "assetbuild_voice_fr.tsv")]
    assert order == sorted(order)
    assert "language SFX" in readme
    assert "English(US)" in readme and "French(France)" in readme
    assert "importTabDelimited" in readme and "useExisting" in readme
    assert "Not included" not in readme


def test_unlocalised_voice_file(forest_out):
    files = wwise.render(load_pack(forest_out))
    rows = parse(files["assetbuild_voice.tsv"])
    assert len(rows) == 4 and all(r["Object Type"] == "Sound Voice" for r in rows)
    assert "reference language" in files["README.txt"]
    sfx = parse(files["assetbuild_import.tsv"])
    assert not any(r["Object Type"] == "Sound Voice" for r in sfx)


def test_text_is_kept_on_one_line_and_project_name_is_safe(forest_out):
    pack = load_pack(forest_out)
    doc = copy.deepcopy(pack.doc)
    doc["project"]["name"] = "My Game: Part\\2"
    line = next(r for r in doc["assets"] if r["kind"] == "dialogue")
    line["text"] = "First line,\n\tsecond \"quoted\" line"
    line["speaker"] = "Old\tOwl"
    files = wwise.render(Pack(forest_out, doc))
    rows = parse(files["assetbuild_voice.tsv"])
    row = next(r for r in rows if r["Object Path"].endswith("\\VO_" + line["id"]))
    assert row["Audio Source Notes"] == 'First line, second "quoted" line'
    assert row["Notes"] == 'Old Owl: First line, second "quoted" line'
    assert row["Object Path"] == f"{ROOT}\\My_Game__Part_2\\Dialogue\\VO_{line['id']}"
    assert row["Event"] == f"{EVENTS}\\My_Game__Part_2\\Play_VO_{line['id']}"


def test_only_wav_is_imported(localised_out):
    pack = load_pack(localised_out)
    doc = copy.deepcopy(pack.doc)
    music = next(r for r in doc["assets"] if r["kind"] == "music")
    music["file"], music["files"] = "music/fanfare.ogg", {"ogg": "music/fanfare.ogg"}
    door = next(r for r in doc["assets"] if r["id"] == "door_01")
    door["file"], door["files"] = "sfx/door_01.ogg", {"ogg": "sfx/door_01.ogg", "wav": "sfx/door_01.wav"}
    files = wwise.render(Pack(localised_out, doc))
    rows = parse(files["assetbuild_import.tsv"])
    assert not any("MUS_fanfare" in r["Object Path"] for r in rows)
    assert next(r for r in rows if r["Object Path"].endswith("\\SFX_door_01"))["Audio File"] == "..\\sfx\\door_01.wav"
    assert "Not included" in files["README.txt"] and "music/fanfare.ogg" in files["README.txt"]


def test_name_clash_is_an_error(forest_out):
    pack = load_pack(forest_out)
    doc = copy.deepcopy(pack.doc)
    clash = copy.deepcopy(next(r for r in doc["assets"] if r["id"] == "magic_shimmer"))
    clash["id"] = "coin_pickup"  # the same name as the coin_pickup group's container
    doc["assets"].append(clash)
    with pytest.raises(UsageError, match="coin_pickup"):
        wwise.render(Pack(forest_out, doc))


def test_render_is_deterministic_and_written(forest_out, localised_out, tmp_path):
    for out in (forest_out, localised_out):
        assert wwise.render(load_pack(out)) == wwise.render(load_pack(out))
    root = tmp_path / "pack"
    shutil.copytree(localised_out, root)
    written = write("wwise", load_pack(root))
    assert sorted(p.name for p in written) == sorted(wwise.render(load_pack(root)))
    for path in written:
        assert path.parent == root / "wwise"
        if path.suffix == ".tsv":
            for row in parse(path.read_text(encoding="utf-8")):
                if row["Audio File"]:
                    assert resolve(root, row["Audio File"]).is_file()

"""Acceptance: the forest example built, exported for every engine and packed; every asset is in
every engine's files with its loop and subtitle data, read back from the zip."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import pytest
import srt
from conftest import REPO, Project

ENGINES = ["unreal", "unity", "wwise", "fmod"]


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("forest-pack")
    p = Project(root, (REPO / "examples" / "forest" / "assetbuild.toml").read_text())
    p.build()
    proc = p.run("export", *[a for e in ENGINES for a in ("--engine", e)])
    assert proc.returncode == 0, proc.stderr
    assert p.run("pack").returncode == 0
    (zip_path,) = (root / "dist").glob("*.zip")
    z = zipfile.ZipFile(zip_path)
    top = zip_path.name.removesuffix(".zip")

    def read(rel: str) -> str:
        return z.read(f"{top}/{rel}").decode("utf-8")

    return p, read, json.loads(read("assetpack.json")), {n.split("/", 1)[1] for n in z.namelist()}


def _cues(read, record):
    return [(round(c.start.total_seconds(), 3), c.content.replace("\n", " "))
            for c in srt.parse(read(record["subtitles"]["srt"]))]


def same_cues(found, srt_cues):
    """Same texts, same times to the millisecond: SRT floors a cue's start (a cue covers the
    speech), the engine files round it."""
    return [t for _, t in found] == [t for _, t in srt_cues] and all(
        abs(a - b) <= 0.0011 for (a, _), (b, _) in zip(found, srt_cues))


def test_the_zip_holds_the_tree_every_engine_and_sums(packed):
    p, read, doc, names = packed
    assert {"assetpack.json", "SHA256SUMS"} <= names
    for engine in ENGINES:
        assert any(n.startswith(f"{engine}/") for n in names), engine
    for r in doc["assets"]:
        assert r["file"] in names and all(path in names for path in (r.get("subtitles") or {}).values())
    assert p.run("verify", str(next((p.root / "dist").glob("*.zip")))).returncode == 0


def test_unreal_rows_have_loops_and_subtitle_cues(packed):
    _, read, doc, _ = packed
    rows = {r["---"]: r for r in csv.DictReader(io.StringIO(read("unreal/AssetbuildAudio.csv")))}
    assert len(rows) == len(doc["assets"])
    for rec in doc["assets"]:
        row = rows[rec["kind"].replace("dialogue", "VO").replace("ambience", "AMB").replace("music", "MUS")
                   .replace("sfx", "SFX") + "_" + rec["id"]]
        assert row["File"] == rec["file"]
        loop = rec["loop"] or {"start": 0, "end": 0}
        assert (row["Loop"], int(row["LoopStart"]), int(row["LoopEnd"])) == (
            str(bool(rec["loop"])), loop["start"], loop["end"])
        if rec["kind"] == "dialogue":
            found = [(round(float(t), 3), text) for text, t in
                     re.findall(r'Text=NSLOCTEXT\("", "", "((?:[^"\\]|\\.)*)"\),Time=([0-9.]+)', row["Subtitles"])]
            assert found and same_cues(found, _cues(read, rec))


def test_unity_settings_and_dialogue_carry_loops_and_cues(packed):
    _, read, doc, _ = packed
    settings = {e["path"]: e for e in json.loads(read("unity/import_settings.json"))["entries"]}
    lines = {line["id"]: line for line in json.loads(read("unity/dialogue.json"))["lines"]}
    strings = {r["Key"]: r for r in csv.DictReader(io.StringIO(read("unity/Localization/AssetbuildStrings.csv")))}
    for rec in doc["assets"]:
        entry = settings[rec["file"]]
        assert entry["loop"] == bool(rec["loop"])
        if rec["loop"]:
            assert (entry["loopStart"], entry["loopEnd"]) == (rec["loop"]["start"], rec["loop"]["end"])
        if rec["kind"] == "dialogue":
            cues = [(round(c["start"], 3), c["text"].replace("\n", " ")) for c in lines[rec["id"]]["cues"]]
            assert same_cues(cues, _cues(read, rec))
            assert rec["text"] in strings[rec["id"]].values()


def test_wwise_rows_cover_every_asset_with_loops_and_voice(packed):
    _, read, doc, names = packed
    rows = [r for n in sorted(names) if n.startswith("wwise/") and n.endswith(".tsv")
            for r in csv.DictReader(io.StringIO(read(n)), delimiter="\t")]
    by_file = {r["Audio File"].replace("\\", "/").removeprefix("../"): r for r in rows if r["Audio File"]}
    for rec in doc["assets"]:
        row = by_file[rec["file"]]
        assert (row["@IsLoopingEnabled"] == "True") == bool(rec["loop"]), rec["id"]
        assert row["Object Type"] == ("Sound Voice" if rec["kind"] == "dialogue" else "Sound SFX")
        if rec["kind"] == "dialogue":
            assert row["Audio Source Notes"] == rec["text"]
    for group in doc["groups"]:  # one Random Container and one event per round-robin group
        containers = [r for r in rows if r["Object Type"] == "Random Container" and r["Object Path"].endswith(
            "_" + group["id"])]
        assert len(containers) == 1 and containers[0]["Event"]


def test_fmod_events_cover_every_asset_with_loops(packed):
    _, read, doc, _ = packed
    events = list(csv.DictReader(io.StringIO(read("fmod/assetbuild_events.csv"))))
    by_file = {f: e for e in events for f in e["files"].split(";")}
    for rec in doc["assets"]:
        event = by_file[rec["file"]]
        assert (event["loop"] == "true") == bool(rec["loop"]), rec["id"]
        if rec["loop"]:
            sr = rec["sample_rate"]
            assert float(event["loop_start"]) == pytest.approx(rec["loop"]["start"] / sr, abs=1e-5)
            assert float(event["loop_end"]) == pytest.approx((rec["loop"]["end"] + 1) / sr, abs=1e-5)
    table = {r["key"]: r for r in csv.DictReader(io.StringIO(read("fmod/assetbuild_audio_table.csv")))}
    assert {r["id"] for r in doc["assets"] if r["kind"] == "dialogue"} == set(table)
    assert len({e["event"] for e in events}) == len(events)

"""Lip-sync tracks (Rhubarb mouth cues, Oculus visemes) from phoneme timings."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from conftest import REPO

from assetbuild.backends.base import Request
from assetbuild.backends.espeak import EspeakBackend
from assetbuild.export import lipsync
from assetbuild.export.lipsync import (
    RHUBARB_SHAPES,
    VISEMES,
    is_known,
    lookup,
    mapping_table,
    normalise,
    rhubarb,
    visemes,
)

SCHEMAS = REPO / "docs" / "schemas"
DOC = REPO / "docs" / "lipsync.md"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"lipsync-{name}.schema.json").read_text(encoding="utf-8"))


def ph(*items) -> list[dict]:
    """ph(("b", 0.1, 0.2), ...) -> phoneme dicts."""
    return [{"symbol": s, "start": a, "end": b} for s, a, b in items]


def check(track: dict, kind: str, duration: float) -> list[dict]:
    """Every promise of the layout; returns the cues."""
    key, places, allowed = {"rhubarb": ("mouthCues", 2, RHUBARB_SHAPES),
                            "visemes": ("visemes", 3, VISEMES)}[kind]
    jsonschema.validate(track, schema(kind))
    cues = track[key]
    total = track["metadata"]["duration"]
    assert total == round(duration, places)
    if total == 0:
        assert cues == []
        return cues
    assert cues[0]["start"] == 0
    assert cues[-1]["end"] == total
    for a, b in zip(cues, cues[1:]):
        assert a["end"] == b["start"], (a, b)  # contiguous
        assert a["value"] != b["value"], (a, b)  # merged
    for c in cues:
        assert c["end"] > c["start"]
        assert c["value"] in allowed
        for t in (c["start"], c["end"]):
            assert t == round(t, places)
    return cues


def both(phonemes, duration):
    return (check(rhubarb(phonemes, duration), "rhubarb", duration),
            check(visemes(phonemes, duration), "visemes", duration))


def spans(cues) -> list[tuple[float, float, str]]:
    return [(c["start"], c["end"], c["value"]) for c in cues]


# -- constants and the table ------------------------------------------------------------------

def test_constants():
    assert RHUBARB_SHAPES == ("A", "B", "C", "D", "E", "F", "X")
    assert VISEMES == ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E",
                       "I", "O", "U")
    assert schema("rhubarb")["properties"]["mouthCues"]["items"]["properties"]["value"]["enum"] == \
        list(RHUBARB_SHAPES)
    assert schema("visemes")["properties"]["visemes"]["items"]["properties"]["value"]["enum"] == \
        list(VISEMES)
    for name in ("rhubarb", "visemes"):
        jsonschema.Draft202012Validator.check_schema(schema(name))


def test_table_values_are_valid():
    rows = mapping_table()
    assert len(rows) == len({r[0] for r in rows}) == len(lipsync.RHUBARB_MAP) == len(lipsync.VISEME_MAP)
    for symbol, r, v in rows:
        assert normalise(symbol) == symbol, symbol  # table keys are normalised forms
        assert is_known(symbol)
        assert lookup(symbol) == (r, v)
        if r == "(next)":
            assert v == "(next)"
            continue
        assert set(r.split(">")) <= set(RHUBARB_SHAPES) - {"X"}, symbol
        assert set(v.split(">")) <= set(VISEMES) - {"sil"}, symbol


@pytest.mark.parametrize("symbol,rhubarb_shape,viseme", [
    ("p", "A", "PP"), ("b", "A", "PP"), ("m", "A", "PP"), ("f", "A", "FF"), ("v", "A", "FF"),
    ("T", "B", "TH"), ("D", "B", "TH"), ("t", "B", "DD"), ("d", "B", "DD"), ("k", "B", "kk"),
    ("g", "B", "kk"), ("tS", "B", "CH"), ("dZ", "B", "CH"), ("S", "B", "CH"), ("Z", "B", "CH"),
    ("s", "B", "SS"), ("z", "B", "SS"), ("n", "B", "nn"), ("l", "C", "nn"), ("r", "B", "RR"),
    ("w", "F", "U"), ("A:", "D", "aa"), ("'E", "C", "E"), ("i:", "B", "I"), ("'O:", "E", "O"),
    ("u:", "F", "U"), ("3:", "E", "RR"), ("'aI", "D>B", "aa>I"), ("'oU", "E>F", "O>U"),
])
def test_mapping(symbol, rhubarb_shape, viseme):
    assert lookup(symbol) == (rhubarb_shape, viseme)


@pytest.mark.parametrize("symbol,expected", [
    ("'oU", "oU"), (",i@3", "i@"), ("@2", "@"), ("I2#", "I"), ("n^", "n"), ("tS;", "tS"),
    ("'u-:", "u"), ("E~", "E"), ("r`", "r"), ("t_s\\", "ts\\"), ("k_h", "k"), ("ph", "p"),
    ("tS;h", "tS"), ("**", "*"), ("?0", "0"), ("'a01", "a"), ("_:", "_"), ("", ""), ("'", ""),
    (None, ""),
])
def test_normalise(symbol, expected):
    assert normalise(symbol) == expected


def test_known_and_unknown_symbols():
    # composites split into table symbols are known, with a glide
    assert is_known("ai") and lookup("ai") == ("C>B", "aa>I")
    assert is_known("'Wy") and lookup("Wy") == ("E>F", "O>U")
    assert is_known("_") and lookup("_!") == ("X", "sil")
    # unknown: the longest known start decides, else vowel-like -> open, otherwise consonant
    assert not is_known("k!") and lookup("k!") == ("B", "kk")
    assert not is_known("4") and lookup("4") == ("C", "aa")
    assert not is_known("$") and lookup("$") == ("B", "DD")
    assert not is_known("ɐ") and lookup("ɐ") == ("B", "DD")  # non-ASCII: not vowel-like here
    # no symbol, or marks only: like h, the mouth keeps its neighbours' shape
    assert not is_known("!!") and lookup("!!") == ("(next)", "(next)")
    assert not is_known("") and lookup("'") == ("(next)", "(next)")
    r, v = both(ph(("'a", 0.0, 0.2), ("'", 0.2, 0.3), ("", 0.3, 0.4), ("m", 0.4, 0.5)), 0.5)
    assert spans(r) == [(0, 0.2, "C"), (0.2, 0.5, "A")]
    assert spans(v) == [(0, 0.2, "aa"), (0.2, 0.5, "PP")]


# -- timelines --------------------------------------------------------------------------------

def test_empty_phonemes_give_one_rest_cue():
    r, v = both([], 1.234)
    assert spans(r) == [(0, 1.23, "X")]
    assert spans(v) == [(0, 1.234, "sil")]
    assert rhubarb([], 2)["metadata"] == {"duration": 2}
    assert visemes([], 2)["metadata"] == {"duration": 2, "set": "oculus-15"}


def test_zero_duration():
    for d in (0, 0.0, -1, float("nan"), None):
        assert rhubarb(ph(("b", 0, 0.1)), d) == {"metadata": {"duration": 0}, "mouthCues": []}
        assert visemes(ph(("b", 0, 0.1)), d)["visemes"] == []
    check(rhubarb([], 0), "rhubarb", 0)
    # shorter than one rounding step: nothing in the Rhubarb track, one tick of visemes
    assert rhubarb(ph(("a", 0, 0.004)), 0.004)["mouthCues"] == []
    assert spans(visemes(ph(("a", 0, 0.004)), 0.004)["visemes"]) == [(0, 0.004, "aa")]


def test_contiguous_merged_track():
    phonemes = ph(("m", 0.1, 0.18), ("b", 0.18, 0.25), ("'V", 0.25, 0.4), ("n", 0.4, 0.45),
                  ("d", 0.45, 0.5), ("s", 0.5, 0.6))
    r, v = both(phonemes, 0.8)
    assert spans(r) == [(0, 0.1, "X"), (0.1, 0.25, "A"), (0.25, 0.4, "C"), (0.4, 0.6, "B"),
                        (0.6, 0.8, "X")]
    assert spans(v) == [(0, 0.1, "sil"), (0.1, 0.25, "PP"), (0.25, 0.4, "aa"), (0.4, 0.45, "nn"),
                        (0.45, 0.5, "DD"), (0.5, 0.6, "SS"), (0.6, 0.8, "sil")]


def test_gaps_become_rest_only_when_long_enough():
    phonemes = ph(("a", 0.01, 0.2), ("t", 0.22, 0.3), ("a", 0.35, 0.5), ("u", 0.5, 0.78))
    r, v = both(phonemes, 0.8)
    # 0.01 lead-in and 0.02 gap belong to a phoneme; 0.05 gap is rest; 0.02 tail belongs to "u"
    assert spans(r) == [(0, 0.22, "C"), (0.22, 0.3, "B"), (0.3, 0.35, "X"), (0.35, 0.5, "C"),
                        (0.5, 0.8, "F")]
    assert spans(v) == [(0, 0.22, "aa"), (0.22, 0.3, "DD"), (0.3, 0.35, "sil"), (0.35, 0.5, "aa"),
                        (0.5, 0.8, "U")]
    # exactly the threshold is a pause; leading and trailing silence too
    r, v = both(ph(("a", 0.1, 0.2), ("a", 0.23, 0.3)), 0.5)
    assert [c["value"] for c in r] == ["X", "C", "X", "C", "X"]
    assert [c["value"] for c in v] == ["sil", "aa", "sil", "aa", "sil"]


def test_pause_symbols_are_rest():
    r, v = both(ph(("a", 0, 0.2), ("_:", 0.2, 0.4), ("a", 0.4, 0.6)), 0.6)
    assert spans(r) == [(0, 0.2, "C"), (0.2, 0.4, "X"), (0.4, 0.6, "C")]
    assert spans(v) == [(0, 0.2, "aa"), (0.2, 0.4, "sil"), (0.4, 0.6, "aa")]


def test_rounding_keeps_contiguity():
    phonemes = ph(("h", 0.0137, 0.0663), ("@", 0.0663, 0.1234), ("l", 0.1234, 0.1781),
                  ("'oU", 0.1781, 0.4166), ("w", 0.4449, 0.4981), ("'3:", 0.4981, 0.6517),
                  ("l", 0.6517, 0.7004), ("d", 0.7004, 0.7555))
    r, v = both(phonemes, 0.9123)
    assert r[-1]["end"] == 0.91 and v[-1]["end"] == 0.912
    # "@ l" share C; 'oU glides E>F at 60 %; the 0.028 s gap before "w" is no pause
    assert spans(r) == [(0, 0.18, "C"), (0.18, 0.32, "E"), (0.32, 0.5, "F"), (0.5, 0.65, "E"),
                        (0.65, 0.7, "C"), (0.7, 0.76, "B"), (0.76, 0.91, "X")]
    assert spans(v) == [(0, 0.123, "E"), (0.123, 0.178, "nn"), (0.178, 0.321, "O"),
                        (0.321, 0.498, "U"), (0.498, 0.652, "RR"), (0.652, 0.7, "nn"),
                        (0.7, 0.756, "DD"), (0.756, 0.912, "sil")]


def test_diphthong_glide_60_40():
    r, v = both(ph(("'aI", 0.0, 0.5)), 0.5)
    assert spans(r) == [(0, 0.3, "D"), (0.3, 0.5, "B")]
    assert spans(v) == [(0, 0.3, "aa"), (0.3, 0.5, "I")]


def test_h_takes_its_neighbours_shape():
    r, v = both(ph(("h", 0.0, 0.1), ("'u:", 0.1, 0.3)), 0.3)
    assert spans(r) == [(0, 0.3, "F")] and spans(v) == [(0, 0.3, "U")]
    r, v = both(ph(("'a", 0.0, 0.2), ("h", 0.2, 0.3)), 0.3)  # at the end: the one before
    assert spans(r) == [(0, 0.3, "C")] and spans(v) == [(0, 0.3, "aa")]
    r, v = both(ph(("m", 0.0, 0.1), ("h", 0.2, 0.3)), 0.4)  # alone (after a pause): open
    assert spans(r) == [(0, 0.1, "A"), (0.1, 0.2, "X"), (0.2, 0.3, "C"), (0.3, 0.4, "X")]
    assert spans(v)[2] == (0.2, 0.3, "aa")


def test_short_bilabial_is_never_lost():
    # 3 ms "p" between vowels: both ends round to 0.20 -> it keeps 0.01 s
    phonemes = ph(("a", 0.0, 0.201), ("p", 0.201, 0.204), ("a", 0.204, 0.5))
    r, _ = both(phonemes, 0.5)
    assert spans(r) == [(0, 0.2, "C"), (0.2, 0.21, "A"), (0.21, 0.5, "C")]
    # centre before the rounded boundary: the tick comes from the left
    r, _ = both(ph(("a", 0.0, 0.196), ("m", 0.196, 0.199), ("a", 0.199, 0.5)), 0.5)
    assert spans(r) == [(0, 0.19, "C"), (0.19, 0.2, "A"), (0.2, 0.5, "C")]
    # visemes at 3 decimals: 0.3 ms
    _, v = both(ph(("a", 0.0, 0.2001), ("b", 0.2001, 0.2004), ("a", 0.2004, 0.5)), 0.5)
    assert spans(v) == [(0, 0.2, "aa"), (0.2, 0.201, "PP"), (0.201, 0.5, "aa")]
    # two short bilabials in a row, then a long one: each is kept
    r, _ = both(ph(("a", 0, 0.101), ("p", 0.101, 0.103), ("i", 0.103, 0.104), ("b", 0.104, 0.105),
                   ("a", 0.105, 0.3)), 0.3)
    assert [c["value"] for c in r] == ["C", "A", "C"] and r[1]["end"] - r[1]["start"] >= 0.01
    # a short non-bilabial that rounds away is dropped and its neighbours merge
    r, _ = both(ph(("a", 0.0, 0.201), ("t", 0.201, 0.204), ("a", 0.204, 0.5)), 0.5)
    assert spans(r) == [(0, 0.5, "C")]


def test_bilabial_at_the_very_edges():
    r, v = both(ph(("p", 0.0, 0.003), ("a", 0.003, 0.1)), 0.1)
    assert spans(r) == [(0, 0.01, "A"), (0.01, 0.1, "C")]
    r, v = both(ph(("a", 0.0, 0.097), ("m", 0.097, 0.1)), 0.1)
    assert spans(r) == [(0, 0.09, "C"), (0.09, 0.1, "A")]


def test_robust_to_messy_input():
    messy = [{"symbol": "b", "start": 0.3, "end": 0.4},  # out of order
             {"symbol": "'a", "start": 0.1, "end": 0.35},  # overlaps the next one
             {"symbol": "z", "start": 0.5, "end": 0.5},  # zero length
             {"symbol": "k", "start": 0.9, "end": 1.5},  # past the end
             {"symbol": None, "start": 0.6, "end": 0.7},  # no symbol, no neighbour: open
             {"symbol": "s"},  # no times
             {"symbol": "s", "start": "x", "end": 1},
             "junk",
             {"symbol": "$?", "start": -1, "end": 0.05}]  # unknown, before 0
    r, v = both(messy, 1.0)
    assert spans(r) == [(0, 0.05, "B"), (0.05, 0.1, "X"), (0.1, 0.35, "C"), (0.35, 0.4, "A"),
                        (0.4, 0.6, "X"), (0.6, 0.7, "C"), (0.7, 0.9, "X"), (0.9, 1.0, "B")]
    assert [c["value"] for c in v] == ["DD", "sil", "aa", "PP", "sil", "aa", "sil", "kk"]


def test_pure_and_deterministic():
    phonemes = ph(("b", 0.1, 0.2), ("'0", 0.2, 0.3))
    copy = json.loads(json.dumps(phonemes))
    assert rhubarb(phonemes, 0.5) == rhubarb(phonemes, 0.5)
    assert visemes(phonemes, 0.5) == visemes(phonemes, 0.5)
    assert phonemes == copy  # input untouched
    assert json.loads(json.dumps(rhubarb(phonemes, 0.5))) == rhubarb(phonemes, 0.5)


# -- docs -------------------------------------------------------------------------------------

def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_doc_mapping_table_is_current():
    text = doc_text()
    m = re.search(r"<!-- mapping:start -->\n(.*?)<!-- mapping:end -->", text, flags=re.S)
    assert m, "docs/lipsync.md lacks the mapping markers"
    assert m.group(1) == lipsync.render_mapping_markdown(), \
        "regenerate the table with assetbuild.export.lipsync.render_mapping_markdown()"
    rows = []
    for line in m.group(1).splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        symbol = cells[0].strip("`").strip().replace("\\|", "|")
        rows.append((symbol, cells[1], cells[2]))
    assert rows == mapping_table()


def test_doc_examples_are_real_output():
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", doc_text(), flags=re.S)]
    phonemes, r, v = blocks[:3]
    duration = r["metadata"]["duration"]
    assert rhubarb(phonemes, duration) == r
    assert visemes(phonemes, duration) == v
    jsonschema.validate(r, schema("rhubarb"))
    jsonschema.validate(v, schema("visemes"))


def test_doc_names_files_and_schemas():
    text = doc_text()
    for name in ("docs/schemas/lipsync-rhubarb.schema.json", "docs/schemas/lipsync-visemes.schema.json",
                 "<id>.rhubarb.json", "<id>.visemes.json", f"{lipsync.GAP_REST} s"):
        assert name in text, name
    for target in re.findall(r"\]\((schemas/[^)]+)\)", text):
        assert (DOC.parent / target).is_file(), target


# -- real eSpeak phonemes ---------------------------------------------------------------------

backend = EspeakBackend()  # a core dependency: if it cannot run, these tests must fail, not skip


def speak(text: str, voice: str = "en-us"):
    backend.load()
    r = backend.generate([Request(id="x", kind="dialogue", seed=1, text=text,
                                  settings={"voice": voice})])[0]
    return r.meta["phonemes"], len(r.audio) / r.sample_rate


def bilabial(symbol: str) -> bool:
    """p, b, m with any stress or length marks (independent of the module's normalisation)."""
    return re.sub(r"^[',%=]+", "", symbol).rstrip(":#;0123456789") in ("p", "b", "m")


@pytest.mark.parametrize("text", ["Bob", "map", "umbrella", "Bob bought a map and an umbrella."])
def test_espeak_bilabials_close_the_mouth(text):
    phonemes, duration = speak(text)
    assert any(bilabial(p["symbol"]) for p in phonemes), phonemes
    r, v = both(phonemes, duration)
    # runs of adjacent bilabials ("m b" in umbrella, "b b" in "Bob bought") share one cue
    runs, run_of = [], {}
    for i, p in enumerate(phonemes):
        if not bilabial(p["symbol"]):
            continue
        prev = phonemes[i - 1] if i else None
        if prev is not None and bilabial(prev["symbol"]) and p["start"] - prev["end"] < 0.03:
            runs[-1][1] = p["end"]
        else:
            runs.append([p["start"], p["end"]])
        run_of[i] = runs[-1]
    for i, run in run_of.items():
        p = phonemes[i]
        for cues, closed in ((r, "A"), (v, "PP")):
            hits = [c for c in cues if c["value"] == closed and c["start"] < p["end"] and c["end"] > p["start"]]
            assert len(hits) == 1, (text, p, closed, cues)
            cue = hits[0]
            assert abs(cue["start"] - run[0]) <= 0.04, (text, p, cue)
            assert cue["end"] <= run[1] + 0.04, (text, p, cue)
            if run[0] == p["start"]:  # the first of its run: the cue starts with it
                assert abs(cue["start"] - p["start"]) <= 0.04, (text, p, cue)
    for p in phonemes:
        assert is_known(p["symbol"]), p


def test_espeak_sentence_tracks():
    phonemes, duration = speak("Bob bought a map and an umbrella.")
    r, v = both(phonemes, duration)
    assert {c["value"] for c in r} >= {"A", "B", "C", "D", "E", "X"}
    assert {c["value"] for c in v} >= {"PP", "aa", "O", "DD", "nn", "RR", "E", "sil"}


@pytest.mark.parametrize("voice,text,closed", [
    ("fr", "bonjour", True), ("de", "Guten Morgen", True), ("es", "mañana", True),
    ("it", "buongiorno", True), ("pt", "obrigado", True), ("ru", "доброе утро", True),
    ("en-gb", "thought, measure, church, judge, sing, yes, cure, air, near, boy, now",
     False),
])
def test_other_languages_map_without_fallback(voice, text, closed):
    phonemes, duration = speak(text, voice)
    assert phonemes
    unknown = [p["symbol"] for p in phonemes if not is_known(p["symbol"])]
    assert unknown == [], (voice, unknown)
    r, v = both(phonemes, duration)
    if closed:  # each has a b or m: the mouth closes
        assert "A" in [c["value"] for c in r] and "PP" in [c["value"] for c in v]

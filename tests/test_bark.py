"""The bark backend on a tiny randomly-initialised BarkModel built here (no downloads).

The tiny model keeps Bark's real vocabulary sizes (129600 / 12096 / 1056) so the stock special
token ids hold, with one-layer sub-models, short generation windows and a small EnCodec.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import Project

from assetbuild.backends.bark import BarkBackend, display, sub_seed, with_emotion
from assetbuild.backends.base import Request

# Tiny sub-models are much faster on one thread (the test machines have 2 busy cores).
SUBPROCESS_ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WORDS = ("hello there the forest is dark follow lanterns welcome to we leave at dawn bring rope and bread "
         "nobody speaks until river night cold [ ] laughs sighs gasps clears throat music . , ! ? ' -").split()


def make_tiny_bark(path, seed: int = 0) -> None:
    from transformers import (
        BarkCoarseConfig,
        BarkConfig,
        BarkFineConfig,
        BarkModel,
        BarkProcessor,
        BarkSemanticConfig,
        BertTokenizer,
        EncodecConfig,
        GenerationConfig,
    )
    from transformers.models.bark.generation_configuration_bark import BarkGenerationConfig

    torch.manual_seed(seed)
    # A large init spread makes the random logits far from uniform, so inputs visibly matter.
    sub = dict(hidden_size=16, num_layers=1, num_heads=2, block_size=512, initializer_range=2.0)
    config = BarkConfig(
        semantic_config=BarkSemanticConfig(input_vocab_size=129600, output_vocab_size=10048, **sub).to_dict(),
        coarse_acoustics_config=BarkCoarseConfig(input_vocab_size=12096, output_vocab_size=12096, **sub).to_dict(),
        fine_acoustics_config=BarkFineConfig(input_vocab_size=1056, output_vocab_size=1056, n_codes_total=8,
                                             n_codes_given=1, **sub).to_dict(),
        codec_config=EncodecConfig(num_filters=4, hidden_size=16, num_lstm_layers=1, codebook_size=1024).to_dict())
    model = BarkModel(config)
    for name, buf in model.codec_model.named_buffers():  # zero codebooks would decode every code alike
        if name.endswith(("embed", "embed_avg")):
            buf.normal_()
    # Short windows keep generation fast. BarkGenerationConfig cannot be saved as is in 5.23
    # (no early_stopping): a plain GenerationConfig with its fields can.
    gen = BarkGenerationConfig(
        semantic_config={"max_new_tokens": 12, "max_input_semantic_length": 64},
        coarse_acoustics_config={"max_coarse_input_length": 64, "max_coarse_history": 60, "sliding_window_len": 24},
        fine_acoustics_config={"max_fine_input_length": 64, "max_fine_history_length": 32})
    model.generation_config = GenerationConfig(**gen.to_dict())
    model.save_pretrained(path)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate([*specials, *WORDS])})
    BarkProcessor(tokenizer=tokenizer).save_pretrained(path)
    # One built-in preset, laid out like suno's repos.
    rng = np.random.default_rng(seed)
    entry = {}
    (path / "speaker_embeddings" / "v2").mkdir(parents=True)
    for key, arr in history_arrays(rng).items():
        rel = f"speaker_embeddings/v2/en_speaker_0_{key}.npy"
        np.save(path / rel, arr)
        entry[key] = rel
    (path / "speaker_embeddings_path.json").write_text(json.dumps({"repo_or_path": ".", "v2/en_speaker_0": entry}))
    (path / "README.md").write_text("---\nlicense: mit\n---\n# tiny bark\n")


def history_arrays(rng) -> dict[str, np.ndarray]:
    return {"semantic_prompt": rng.integers(0, 10000, 20), "coarse_prompt": rng.integers(0, 1024, (2, 30)),
            "fine_prompt": rng.integers(0, 1024, (8, 30))}


@pytest.fixture(scope="session")
def tiny_bark(tmp_path_factory):
    path = tmp_path_factory.mktemp("bark") / "tiny-bark"
    make_tiny_bark(path)
    return path


@pytest.fixture(scope="session")
def voice_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("voices") / "narrator.npz"
    np.savez(path, **history_arrays(np.random.default_rng(7)))
    return path


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backend():
    b = BarkBackend()
    yield b
    b.unload()


def req(model, text="hello there", seed=1, id="line", emotion=None, base_dir="", **settings) -> Request:
    return Request(id=id, kind="dialogue", seed=seed, text=text, emotion=emotion, base_dir=base_dir,
                   settings={"model": str(model), **settings})


# -- the backend, directly ------------------------------------------------------------------

def test_audio_shape_rate_and_meta(backend, tiny_bark):
    (r,) = backend.generate([req(tiny_bark, "[laughs] Hello there, the forest is dark! \u266a")])
    assert r.sample_rate == 24000
    assert r.audio.dtype == np.float32 and r.audio.ndim == 1
    # 12 semantic tokens at 49.9 Hz -> 18 coarse frames at 75 Hz, 320 samples each
    assert len(r.audio) == 18 * 320
    assert np.abs(r.audio).max() <= 1.0 and np.abs(r.audio).std() > 1e-4
    assert r.meta["text"] == "Hello there, the forest is dark!"  # cues are not subtitles
    assert "words" not in r.meta  # Bark has no timings: the build estimates them
    assert r.meta["generator"].startswith("Bark (") and "transformers 5" in r.meta["generator"]
    assert "1 chunk (max_chunk_seconds 13)" in r.meta["notes"]


def test_unknown_words_warn(backend, tiny_bark):
    (r,) = backend.generate([req(tiny_bark, "Zebra quokka")])
    assert r.meta["warnings"] == ["the model's tokenizer knows none of the words of this line"]


def test_seed_reproducible_and_matters(backend, tiny_bark):
    a = backend.generate([req(tiny_bark, seed=3)])[0].audio
    b = backend.generate([req(tiny_bark, seed=3)])[0].audio
    c = backend.generate([req(tiny_bark, seed=4)])[0].audio
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batched_equals_unbatched(backend, tiny_bark, voice_npz):
    long = "We leave at dawn. Bring rope and bread. Nobody speaks until the river."
    for settings in ({}, {"preset": str(voice_npz)}):
        batch = [req(tiny_bark, "hello there", seed=1, id="a", **settings),
                 req(tiny_bark, long, seed=2, id="b", max_chunk_seconds=2, **settings),
                 req(tiny_bark, "follow the lanterns", seed=3, id="c", **settings)]
        together = backend.generate(batch)
        assert "chunks" in together[1].meta["notes"][0] and together[1].meta["notes"][0] != "1 chunk"
        for r, alone in zip(together, (backend.generate([x])[0] for x in batch)):
            assert np.array_equal(r.audio, alone.audio), settings
        # the same line in a different batch, in a different place
        again = backend.generate([batch[2], req(tiny_bark, "night", seed=9, id="d", **settings), batch[0]])
        assert np.array_equal(again[0].audio, together[2].audio)
        assert np.array_equal(again[2].audio, together[0].audio)


def test_long_line_is_chunked_and_joined(backend, tiny_bark):
    long = "We leave at dawn. Bring rope, and bread. Nobody speaks until the river, the night is cold."
    one = backend.generate([req(tiny_bark, long, seed=5)])[0]
    split = backend.generate([req(tiny_bark, long, seed=5, max_chunk_seconds=2)])[0]
    n = int(split.meta["notes"][0].split()[0])
    assert n >= 3 and split.meta["notes"][0] == f"{n} chunks (max_chunk_seconds 2)"
    # n chunks of 18 frames, 0.25 s between them
    assert len(split.audio) == n * 18 * 320 + (n - 1) * 6000
    end = 18 * 320  # the first chunk fades out to silence, then the pause
    assert split.audio[end - 1] == 0 and not split.audio[end:end + 6000].any() and split.audio[end + 6000] == 0
    assert np.abs(split.audio[end - 400:end - 240]).max() > 0  # before the 10 ms fade: audio
    assert len(one.audio) == 18 * 320
    assert split.meta["text"] == long


def test_presets_builtin_and_file(backend, tiny_bark, voice_npz):
    plain = backend.generate([req(tiny_bark, seed=1)])[0].audio
    builtin = backend.generate([req(tiny_bark, seed=1, preset="v2/en_speaker_0")])[0]
    from_file = backend.generate([req(tiny_bark, seed=1, preset=str(voice_npz))])[0]
    assert not np.array_equal(plain, builtin.audio) and not np.array_equal(plain, from_file.audio)
    assert not np.array_equal(builtin.audio, from_file.audio)
    assert "preset v2/en_speaker_0" in builtin.meta["notes"]
    # a relative path is read from the manifest's folder
    rel = backend.generate([req(tiny_bark, seed=1, preset="narrator.npz", base_dir=str(voice_npz.parent))])[0]
    assert np.array_equal(rel.audio, from_file.audio)
    with pytest.raises(ValueError, match=r"unknown Bark preset 'v2/xx_speaker_9'.*1 presets \(v2/en_speaker_0\)"):
        backend.generate([req(tiny_bark, preset="v2/xx_speaker_9")])


def test_preset_file_errors(backend, tiny_bark, tmp_path):
    with pytest.raises(ValueError, match=r"Bark preset file gone\.npz not found"):
        backend.generate([req(tiny_bark, preset="gone.npz", base_dir=str(tmp_path))])
    np.savez(tmp_path / "half.npz", semantic_prompt=np.arange(5), coarse_prompt=np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"half\.npz is not a Bark history prompt: no 'fine_prompt'"):
        backend.generate([req(tiny_bark, preset="./half.npz", base_dir=str(tmp_path))])
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz is not a readable \.npz file"):
        backend.generate([req(tiny_bark, preset="junk.npz", base_dir=str(tmp_path))])


def test_fingerprint_model_and_preset_identity(backend, tiny_bark, voice_npz, tmp_path):
    fp = backend.fingerprint(req(tiny_bark))
    assert fp["backend"] == "bark" and len(fp["model"]["weights"]) == 64
    assert fp["versions"]["transformers"] == "5.23.0"
    other = tmp_path / "other-bark"
    shutil.copytree(tiny_bark, other)
    from safetensors.torch import load_file, save_file

    weights = load_file(other / "model.safetensors")
    name = next(k for k in weights if k.startswith("semantic."))
    weights[name] = weights[name] + 0.5
    save_file(weights, other / "model.safetensors", metadata={"format": "pt"})
    assert backend.fingerprint(req(other))["model"] != fp["model"]

    voice = tmp_path / "v.npz"
    shutil.copy(voice_npz, voice)
    a = backend.fingerprint(req(tiny_bark, preset="v.npz", base_dir=str(tmp_path)))
    np.savez(voice, **history_arrays(np.random.default_rng(99)))
    b = backend.fingerprint(req(tiny_bark, preset="v.npz", base_dir=str(tmp_path)))
    assert len(a["preset_sha256"]) == 64 and a["preset_sha256"] != b["preset_sha256"]
    assert backend.fingerprint(req(tiny_bark, preset="nope.npz"))["preset_sha256"] == "missing"
    assert "preset_sha256" not in backend.fingerprint(req(tiny_bark, preset="v2/en_speaker_0"))


def test_unload_drops_model_and_reloads(tiny_bark):
    b = BarkBackend()
    first = b.generate([req(tiny_bark, seed=8)])[0].audio
    assert b._model is not None
    b.unload()
    assert b._model is None
    assert np.array_equal(b.generate([req(tiny_bark, seed=8)])[0].audio, first)
    assert b._model is not None
    b.unload()


def test_emotion_cue_and_display():
    assert with_emotion("Well then.", "happy") == "[laughs] Well then."
    assert with_emotion("Well then.", "sad") == "[sighs] Well then."
    assert with_emotion("Oh!", "surprised") == "[gasps] Oh!"
    assert with_emotion("[sighs] Fine.", "happy") == "[sighs] Fine."  # the line's own cue wins
    assert with_emotion("Halt.", "angry") == "Halt." and with_emotion("Halt.", None) == "Halt."
    assert display("[clears throat] Well [laughs], I \u2014 I DID it [sighs].") == "Well, I \u2014 I DID it."
    assert display("\u266a la la la \u266a [MAN] Hi") == "la la la Hi"
    assert sub_seed(1, 0, "fine") == sub_seed(1, 0, "fine") != sub_seed(1, 1, "fine")


def test_emotion_changes_audio_not_subtitle(backend, tiny_bark):
    neutral, happy = backend.generate([req(tiny_bark, "Hello there.", seed=2)])[0], \
        backend.generate([req(tiny_bark, "Hello there.", seed=2, emotion="happy")])[0]
    assert not np.array_equal(neutral.audio, happy.audio)
    assert happy.meta["text"] == neutral.meta["text"] == "Hello there."
    assert "emotion happy: [laughs]" in happy.meta["notes"]


def test_licence_and_availability(backend, tiny_bark):
    assert backend.availability() is None
    assert backend.licence(req(tiny_bark)) == {"name": "mit", "commercial": True, "model": str(tiny_bark)}
    r = Request(id="x", kind="dialogue", seed=1, text="hi")  # the default model, bark-small
    assert backend.model_ref(r) == "bark-small"
    assert backend.licence(r)["name"] == "mit"


def test_import_is_light():
    code = ("import sys, assetbuild.backends.bark\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- a real build ----------------------------------------------------------------------------

def test_build_end_to_end(tmp_path, tiny_bark, voice_npz):
    shutil.copy(voice_npz, tmp_path / "narrator.npz")
    manifest = textwrap.dedent(f"""\
        [project]
        name = "barky"

        [voices.narrator]
        backend = "bark"
        model = "{tiny_bark}"
        preset = "narrator.npz"

        [voices.guide]
        backend = "bark"
        model = "{tiny_bark}"
        max_chunk_seconds = 2

        [voices.missing]
        backend = "bark"

        [[dialogue]]
        id = "laugh"
        voice = "narrator"
        text = "[laughs] Hello there, welcome to the forest!"

        [[dialogue]]
        id = "long"
        voice = "guide"
        emotion = "sad"
        text = "We leave at dawn. Bring rope, and bread. Nobody speaks until the river."

        [[dialogue]]
        id = "nomodel"
        voice = "missing"
        text = "Hello there."
        """)
    p = Project(tmp_path, manifest)
    hf_home = tmp_path / "hf-empty"
    env = {**SUBPROCESS_ENV, "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub")}
    proc = p.run("build", str(p.manifest), "--json", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    summary = json.loads(proc.stdout)
    assert [f["id"] for f in summary["failures"]] == ["nomodel"]
    assert "assetbuild models pull bark-small" in summary["failures"][0]["error"]

    assets = {a["id"]: a for a in p.pack()["assets"]}
    for aid in ("laugh", "long"):
        a = assets[aid]
        assert (p.out / a["file"]).is_file()
        assert a["backend"] == "bark" and a["sample_rate"] == 48000
        assert 0.1 < a["duration"] < 10
        assert a["timing"] == "estimated" and a["words"]
        assert a["generator"].startswith("Bark (")
    laugh = assets["laugh"]
    assert laugh["text"] == "Hello there, welcome to the forest!"
    assert laugh["words"][0]["text"] == "Hello"
    srt = (p.out / laugh["subtitles"]["srt"]).read_text()
    assert "Hello there" in srt and "laughs" not in srt
    assert "preset narrator.npz" in laugh["notes"]
    long = assets["long"]
    assert long["text"].startswith("We leave at dawn.")  # the sad cue is not shown
    assert long["notes"][0].endswith("chunks (max_chunk_seconds 2)") and long["duration"] > 1.0
    assert "emotion sad: [sighs]" in long["notes"]

"""The musicgen (transformers and AudioCraft) and audiogen backends, on tiny random models of the
real classes built here (no downloads): lengths, seeds, batching, long beds, loops, loading."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, Project

from assetbuild.backends.audiogen import AudioGenBackend
from assetbuild.backends.base import BackendUnavailable, Request
from assetbuild.backends.musicgen import MusicGenBackend

WORDS = ["happy", "sad", "tune", "drums", "rain", "calm", "epic", "piano", "wind", "door", "a", "the"]


# -- tiny models ------------------------------------------------------------------------------
def build_transformers_musicgen(out, seed=0):
    """MusicGen of the real transformers classes: T5 text encoder, 32 kHz EnCodec (640 hop, 50 Hz,
    4 codebooks of 64), one decoder layer; tokenizer built from a word list."""
    import torch
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
        T5Tokenizer,
    )

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("\u2581" + w, -float(i + 1)) for i, w in enumerate(WORDS)]
    vocab += [(c, -20.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    tok = T5Tokenizer(vocab=vocab, extra_ids=0)
    text = T5Config(vocab_size=len(tok), d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    codec = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4, upsampling_ratios=[8, 5, 4, 4],
                          codebook_size=64, codebook_dim=16, hidden_size=16, num_residual_layers=1,
                          num_lstm_layers=1, use_causal_conv=False, normalize=False, chunk_length_s=None,
                          overlap=None)
    decoder = MusicgenDecoderConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    ffn_dim=32, num_codebooks=4, max_position_embeddings=2048, pad_token_id=64,
                                    bos_token_id=64, decoder_start_token_id=64)
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(MusicgenConfig(text_encoder=text.to_dict(),
                                                            audio_encoder=codec.to_dict(),
                                                            decoder=decoder.to_dict()))
    with torch.no_grad():  # codebooks start as zeros: every code would decode the same
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    g = model.generation_config
    g.decoder_start_token_id = g.pad_token_id = 64
    g.do_sample, g.guidance_scale, g.max_length = True, 3.0, 1500
    model.save_pretrained(out)
    MusicgenProcessor(feature_extractor=EncodecFeatureExtractor(feature_size=1, sampling_rate=32000),
                      tokenizer=tok).save_pretrained(out)
    return out


def build_audiocraft(out, sample_rate, ratios, segment, seed=0, pickled_config=False):
    """An AudioCraft model in its export layout (state_dict.bin + compression_state_dict.bin),
    from AudioCraft's own builders: SEANet + RVQ (random codebooks), a one-layer LM and a
    lookup-table text conditioner (the T5 one only loads hub checkpoints). Exports hold the
    config as YAML text; ``pickled_config`` stores the OmegaConf object instead, as some
    released checkpoints do, which torch's weights-only loader must be allowed to read."""
    import torch
    from omegaconf import OmegaConf

    from assetbuild.backends import _audiocraft

    _audiocraft.import_audiocraft()
    import audiocraft
    from audiocraft.models import builders

    cfg = OmegaConf.create({
        "device": "cpu", "dtype": "float32", "compression_model": "encodec",
        "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": sample_rate, "channels": 1,
                    "causal": False, "renormalize": False},
        "seanet": {"dimension": 16, "channels": 1, "causal": False, "n_filters": 4, "n_residual_layers": 1,
                   "ratios": ratios, "activation": "ELU", "activation_params": {"alpha": 1.0},
                   "norm": "weight_norm", "norm_params": {}, "kernel_size": 7, "last_kernel_size": 7,
                   "residual_kernel_size": 3, "dilation_base": 2, "pad_mode": "constant", "true_skip": True,
                   "compress": 2, "lstm": 1, "disable_norm_outer_blocks": 0, "encoder": {},
                   "decoder": {"trim_right_ratio": 1.0}},
        "rvq": {"n_q": 4, "q_dropout": False, "bins": 32, "decay": 0.99, "kmeans_init": False, "kmeans_iters": 1,
                "threshold_ema_dead_code": 2},
        "lm_model": "transformer_lm",
        "transformer_lm": {"n_q": 4, "card": 32, "dim": 16, "num_heads": 2, "num_layers": 1, "hidden_scale": 2,
                           "causal": True, "norm_first": True, "bias_proj": False, "past_context": None,
                           "positional_embedding": "sin"},
        "codebooks_pattern": {"modeling": "delay", "delay": {"delays": [0, 1, 2, 3]}},
        "attribute_dropout": {}, "classifier_free_guidance": {"training_dropout": 0.0, "inference_coef": 3.0},
        "fuser": {"cross_attention_pos_emb": False, "cross_attention_pos_emb_scale": 1, "sum": [], "prepend": [],
                  "cross": ["description"], "input_interpolate": []},
        "conditioners": {"description": {"model": "lut", "lut": {"n_bins": 64, "dim": 16, "tokenizer": "noop"}}},
        "dataset": {"segment_duration": segment},  # MusicGen needs > 18 (its default extend stride)
    })
    torch.manual_seed(seed)
    os.makedirs(out, exist_ok=True)
    for model, name in ((builders.get_lm_model(cfg), "state_dict.bin"),
                        (builders.get_compression_model(cfg), "compression_state_dict.bin")):
        torch.save({"best_state": model.state_dict(), "xp.cfg": cfg if pickled_config else OmegaConf.to_yaml(cfg),
                    "version": audiocraft.__version__, "exported": True}, os.path.join(out, name))
    return out


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "transformers": build_transformers_musicgen(str(root / "musicgen-hf")),
        "audiocraft": build_audiocraft(str(root / "musicgen-ac"), 32000, [8, 5, 4, 4], 30),
        "audiogen": build_audiocraft(str(root / "audiogen"), 16000, [8, 5, 4, 2], 10, pickled_config=True),
    }


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    # Bit-for-bit claims (batched == unbatched) are made on the CPU; GPU kernels may round
    # differently with the batch size.
    monkeypatch.setenv("ASSETBUILD_DEVICE", "cpu")


def music(model, seed=1, duration=1.0, prompt="happy tune", loop=False, **settings):
    return Request(id=f"m{seed}", kind="music", seed=seed, prompt=prompt, duration=duration, loop=loop,
                   settings={"model": model, "top_k": 20, **settings})


def bed(model, seed=1, duration=1.0, prompt="calm rain", kind="ambience", loop=False, **settings):
    return Request(id=f"a{seed}", kind=kind, seed=seed, prompt=prompt, duration=duration, loop=loop,
                   settings={"model": model, "top_k": 20, **settings})


def same(a, b):
    return a.shape == b.shape and np.array_equal(a, b)


def smooth_at(audio, sr, times):
    """No step at ``times`` larger than the largest step anywhere else in the file."""
    steps = np.abs(np.diff(audio))
    for t in times:
        n = int(round(t * sr))
        near = steps[max(0, n - 64):n + 64]
        assert near.max() <= steps.max() and near.max() < 0.5


# -- musicgen, transformers -------------------------------------------------------------------
def test_transformers_length_rate_and_seeds(models):
    be = MusicGenBackend()
    m = models["transformers"]
    a, b, c = (be.generate([music(m, seed=s, duration=0.77)])[0] for s in (5, 5, 6))
    assert a.sample_rate == 32000 and a.audio.dtype == np.float32 and a.audio.shape == (round(0.77 * 32000),)
    assert np.abs(a.audio).max() <= 1.0 and np.abs(a.audio).max() > 1e-3
    assert same(a.audio, b.audio)
    assert not np.allclose(a.audio, c.audio)
    assert a.meta["generator"] == "musicgen (transformers)" and a.meta["model"] == m
    unguided = be.generate([music(m, seed=5, duration=0.77, guidance=1.0)])[0]
    assert not np.allclose(a.audio, unguided.audio)  # guidance reaches the sampler


def test_transformers_batched_equals_unbatched(models):
    be = MusicGenBackend()
    m = models["transformers"]
    reqs = [music(m, seed=1, duration=1.0, prompt="happy tune"),
            music(m, seed=2, duration=0.5, prompt="sad drums piano"),
            music(m, seed=3, duration=1.3, prompt="calm"),
            music(m, seed=4, duration=0.9, prompt="epic", guidance=1.0),  # its own sampling group
            music(m, seed=5, duration=2.6, prompt="the tune", window=1.5, overlap=0.4)]
    batched = be.generate(reqs)
    for r, res in zip(reqs, batched):
        alone = be.generate([r])[0]
        assert same(res.audio, alone.audio), r
        assert len(res.audio) == round(r.duration * 32000)


def test_transformers_long_bed_continues_its_prompt(models, monkeypatch):
    import torch

    from assetbuild.backends import musicgen

    calls = []
    real = musicgen._generate

    def spy(model, text, prompt, frames, seeds, k, o):
        out = real(model, text, prompt, frames, seeds, k, o)
        calls.append((prompt, out))
        return out

    monkeypatch.setattr(musicgen, "_generate", spy)
    be = MusicGenBackend()
    res = be.generate([music(models["transformers"], seed=9, duration=5.0, window=2.0, overlap=0.5)])[0]
    assert res.audio.shape == (5 * 32000,)
    # 250 frames: 100 in the first window, then 75 new per window after a 25-frame prompt
    assert len(calls) == 3 and calls[0][0] is None
    kept = calls[0][1][0, :, :100]
    for prompt, out in calls[1:]:
        prompt = prompt.reshape(4, 25)
        assert (prompt == kept[:, -25:]).all()  # prompted with the last 0.5 s of codes so far
        assert (out[0, :, :25] == prompt).all()  # the output continues from that prompt
        kept = torch.cat([kept, out[0, :, 25:100]], dim=-1)
    smooth_at(res.audio, 32000, [2.0, 3.5])
    assert any("windows" in n for n in res.meta["notes"])
    # the first window is the same audio a short bed with that seed starts with
    short = be.generate([music(models["transformers"], seed=9, duration=1.0, window=2.0, overlap=0.5)])[0]
    np.testing.assert_allclose(res.audio[:16000], short.audio[:16000], atol=1e-5)


def test_transformers_loop_is_exact_and_seamless(models):
    be = MusicGenBackend()
    res = be.generate([music(models["transformers"], seed=3, duration=1.2, loop=True)])[0]
    a = res.audio
    assert a.shape == (round(1.2 * 32000),)
    assert abs(a[0] - a[-1]) <= np.abs(np.diff(a)).max()  # wrapping is an ordinary step
    assert any("loop" in n for n in res.meta["notes"])


def test_unload_and_reload(models):
    be = MusicGenBackend()
    r = music(models["transformers"], seed=2, duration=0.4)
    first = be.generate([r])[0]
    assert be._model is not None
    be.unload()
    assert be._model is None
    again = be.generate([r])[0]
    assert be._model is not None and same(first.audio, again.audio)


def test_switching_implementation_reloads(models):
    be = MusicGenBackend()
    hf = be.generate([music(models["transformers"], duration=0.3)])[0]
    ac = be.generate([music(models["audiocraft"], duration=0.3, implementation="audiocraft")])[0]
    assert be._model.implementation == "audiocraft"
    assert hf.meta["generator"] == "musicgen (transformers)" and ac.meta["generator"] == "musicgen (audiocraft)"


def test_fingerprint_and_licence(models, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(models["transformers"], folder)
    (folder / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n")
    be = MusicGenBackend()
    r = music(str(folder))
    fp = be.fingerprint(r)
    assert fp["backend"] == "musicgen" and fp["implementation"] == "transformers"
    assert len(fp["model"]["weights"]) == 64
    assert be.fingerprint(music(str(folder), implementation="audiocraft"))["implementation"] == "audiocraft"
    build_transformers_musicgen(str(folder), seed=1)  # other weights
    assert be.fingerprint(r)["model"]["weights"] != fp["model"]["weights"]
    assert be.licence(r) == {"name": "cc-by-nc-4.0", "commercial": False, "model": str(folder)}
    assert be.licence(music("musicgen-small"))["name"] == "cc-by-nc-4.0"
    assert AudioGenBackend().licence(bed("audiogen-medium"))["commercial"] is False


def test_bad_settings_and_missing_models(models, tmp_path):
    be = MusicGenBackend()
    with pytest.raises(ValueError, match="overlap"):
        be.generate([music(models["transformers"], window=2.0, overlap=2.0)])
    with pytest.raises(BackendUnavailable, match="no AudioCraft weights"):
        be.generate([music(models["transformers"], implementation="audiocraft")])
    with pytest.raises(BackendUnavailable, match="does not exist"):
        be.generate([music(str(tmp_path / "nowhere"))])


# -- musicgen, AudioCraft ---------------------------------------------------------------------
def test_audiocraft_musicgen_length_seeds_batches(models):
    be = MusicGenBackend()
    m = models["audiocraft"]
    reqs = [music(m, seed=s, duration=d, implementation="audiocraft") for s, d in ((1, 0.77), (2, 1.2), (1, 0.77))]
    batch = be.generate(reqs)
    assert [len(r.audio) for r in batch] == [round(0.77 * 32000), round(1.2 * 32000), round(0.77 * 32000)]
    assert batch[0].sample_rate == 32000 and batch[0].audio.dtype == np.float32
    assert same(batch[0].audio, batch[2].audio)
    assert not np.allclose(batch[0].audio[:1000], batch[1].audio[:1000])
    for r, res in zip(reqs, batch):
        assert same(be.generate([r])[0].audio, res.audio)
    assert np.abs(batch[0].audio).max() > 1e-3


def test_audiocraft_long_bed_continues_its_prompt(models, monkeypatch):
    be = MusicGenBackend()
    r = music(models["audiocraft"], seed=4, duration=4.3, window=2.0, overlap=0.5, implementation="audiocraft")
    model = be.model_for(r).model
    calls = []
    real = model.lm.generate

    def spy(prompt, conditions, **kw):
        out = real(prompt, conditions, **kw)
        calls.append((prompt, out))
        return out

    monkeypatch.setattr(model.lm, "generate", spy)
    res = be.generate([r])[0]
    assert res.audio.shape == (round(4.3 * 32000),)
    assert len(calls) == 3 and calls[0][0] is None
    for (_, before), (prompt, out) in zip(calls, calls[1:]):
        assert prompt.shape[-1] == 25 and (prompt == before[..., -25:]).all()
        assert (out[..., :25] == prompt).all()
    smooth_at(res.audio, 32000, [2.0, 3.5])


def test_no_torchaudio_needed(models):
    from assetbuild.backends import _audiocraft

    res = AudioGenBackend().generate([bed(models["audiogen"], duration=0.5)])[0]
    assert len(res.audio) == 8000
    assert importlib.util.find_spec("torchaudio") is None and "torchaudio" not in sys.modules
    import audiocraft.data.audio_utils as au  # audiocraft kept its placeholder: it fails clearly if used

    with pytest.raises(RuntimeError, match="needs torchaudio"):
        au.torchaudio.transforms.Loudness(16000)
    assert _audiocraft.import_audiocraft() is sys.modules["audiocraft.models"]


# -- audiogen ---------------------------------------------------------------------------------
def test_audiogen_lengths_seeds_and_long_bed(models):
    be = AudioGenBackend()
    m = models["audiogen"]
    sfx = be.generate([bed(m, seed=3, duration=None, kind="sfx", prompt="door")])[0]
    assert sfx.sample_rate == 16000 and sfx.audio.shape == (3 * 16000,)  # an sfx without duration: 3 s
    a, b, c = be.generate([bed(m, seed=7, duration=0.9), bed(m, seed=7, duration=0.9), bed(m, seed=8, duration=0.9)])
    assert same(a.audio, b.audio) and not np.allclose(a.audio, c.audio)
    long = be.generate([bed(m, seed=7, duration=4.5, window=2.0, overlap=0.5)])[0]
    assert long.audio.shape == (round(4.5 * 16000),)
    smooth_at(long.audio, 16000, [2.0, 3.5])
    loop = be.generate([bed(m, seed=7, duration=1.5, loop=True)])[0]
    assert loop.audio.shape == (24000,) and abs(loop.audio[0] - loop.audio[-1]) <= np.abs(np.diff(loop.audio)).max()
    assert be.fingerprint(bed(m))["implementation"] == "audiocraft"
    be.unload()
    assert be._model is None


def test_missing_dependency_is_named(models):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["omegaconf"] = None  # as if not installed
        from assetbuild.backends.audiogen import AudioGenBackend
        from assetbuild.backends.base import BackendUnavailable, Request
        r = Request(id="x", kind="sfx", seed=1, prompt="door", duration=0.5,
                    settings={{"model": {models["audiogen"]!r}}})
        try:
            AudioGenBackend().generate([r])
        except BackendUnavailable as exc:
            print("UNAVAILABLE", exc)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"), timeout=120)
    assert "UNAVAILABLE" in proc.stdout, proc.stdout + proc.stderr
    assert "'omegaconf'" in proc.stdout and "audiocraft" in proc.stdout and "docs/backends.md" in proc.stdout


# -- through the CLI --------------------------------------------------------------------------
def test_build_end_to_end(models, tmp_path):
    project = Project(tmp_path, textwrap.dedent(f"""\
        [project]
        name = "tiny"

        [defaults.music]
        backend = "musicgen"
        model = "{models['transformers']}"
        top_k = 20

        [[music]]
        id = "theme"
        prompt = "epic drums"
        duration = 1.5

        [[music]]
        id = "theme_long"
        prompt = "calm piano"
        duration = 2.5
        window = 1.0
        overlap = 0.3
        loop = true

        [[music]]
        id = "theme_ac"
        prompt = "happy tune"
        duration = 1.2
        implementation = "audiocraft"
        model = "{models['audiocraft']}"

        [[ambience]]
        id = "rain"
        backend = "audiogen"
        model = "{models['audiogen']}"
        prompt = "calm rain"
        duration = 2.5
        window = 1.5
        overlap = 0.5
        loop = true

        [[sfx]]
        id = "door"
        backend = "audiogen"
        model = "{models['audiogen']}"
        prompt = "door"
        duration = 0.6

        [[music]]
        id = "absent"
        prompt = "happy tune"
        duration = 1
        model = "musicgen-medium"

        [[ambience]]
        id = "no_encoder"
        backend = "audiogen"
        model = "audiogen-medium"
        prompt = "wind"
        duration = 1
        """))
    # audiogen-medium "pulled" into the hub cache, but not the T5 text encoder it needs
    hub = tmp_path / "hf" / "hub" / "models--facebook--audiogen-medium"
    (hub / "refs").mkdir(parents=True)
    (hub / "refs" / "main").write_text("0" * 40)
    shutil.copytree(models["audiogen"], hub / "snapshots" / ("0" * 40))
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "ASSETBUILD_DEVICE": "cpu"}
    proc = project.run("build", str(project.manifest), "--json", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # Only the build's own lines: no library warnings or progress bars.
    assert all(line.startswith("failed ") for line in proc.stderr.splitlines()), proc.stderr
    summary = json.loads(proc.stdout)
    failures = json.dumps(summary["failures"])
    assert summary["failed"] == 2 and "absent" in failures and "no_encoder" in failures, failures
    assert "assetbuild models pull musicgen-medium" in failures
    assert "assetbuild models pull t5-large" in failures
    pack = project.pack()
    got = {a["id"]: a for a in pack["assets"]}
    want = {"theme": 1.5, "theme_long": 2.5, "theme_ac": 1.2, "rain": 2.5, "door": 0.6}
    assert set(got) == set(want)
    for name, seconds in want.items():
        a = got[name]
        data, sr = sf.read(project.out / a["file"], always_2d=True)
        assert sr == a["sample_rate"] == 48000 and abs(len(data) / sr - a["duration"]) < 1e-3
        if name != "door":  # sfx are trimmed of silence
            assert abs(a["duration"] - seconds) < 2e-3, (name, a["duration"])
        assert np.abs(data).max() > 0.01
    assert got["theme"]["generator"] == "musicgen (transformers)"
    assert got["theme_ac"]["generator"] == "musicgen (audiocraft)"
    assert got["rain"]["generator"] == "audiogen (audiocraft)" and got["rain"]["loop"] is not None
    assert got["theme"]["licence"]["commercial"] is False
    # a second build reuses everything that built
    again = json.loads(project.run("build", str(project.manifest), "--json", env=env).stdout)
    assert again["generated"] == 0 and again["failed"] == 2

"""Model management and the build features behind the neural backends: the model catalog and
store (`assetbuild models`, no downloads), licences in assetpack.json and `build --commercial`,
billed characters and `--max-characters`, neighbouring-line context, and batches bucketed by
duration with `batch_size`. Backends here are small plugins; the real ones have their own tests."""

from __future__ import annotations

import json
import os

import pytest
from conftest import Project, plugin_site

from assetbuild.backends.base import BackendUnavailable
from assetbuild.models import catalog, store

PLUGIN = """
import json, os
import numpy as np
from assetbuild.backends.base import Request, Result
from assetbuild.fields import Field, Stage

class Paid:
    name = "paid"
    kinds = frozenset({"dialogue"})
    max_batch = 4
    parallel = False
    billed = True
    uses_context = True
    settings = (Field("batch_size", "int", "batch", minimum=1, stage=Stage.META),)

    def availability(self): return None
    def fingerprint(self, request): return {"backend": "paid", "version": 1}
    def licence(self, request): return {"name": "cc-by-nc-4.0", "commercial": False}
    def load(self): pass
    def unload(self): pass

    def generate(self, requests):
        with open(os.environ["BATCH_LOG"], "a") as f:
            f.write(json.dumps([r.id for r in requests]) + "\\n")
        out = []
        for r in requests:
            n = int(0.2 * 16000) + 40 * len(r.text)
            t = np.arange(n) / 16000
            out.append(Result(audio=(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sample_rate=16000,
                              meta={"notes": [json.dumps(r.context, sort_keys=True)]}))
        return out
"""

MANIFEST = """\
[project]
name = "paid"

[voices.narrator]
backend = "paid"
{batch}

[voices.guide]
backend = "espeak"

[[dialogue]]
id = "a"
voice = "narrator"
text = "A very long first line of narration that goes on and on for a while."

[[dialogue]]
id = "b"
voice = "narrator"
text = "Short."

[[dialogue]]
id = "g"
voice = "guide"
text = "Hello."

[[dialogue]]
id = "c"
voice = "narrator"
text = "A medium length line here."

[[dialogue]]
id = "d"
voice = "narrator"
text = "Tiny."
"""


@pytest.fixture
def paid(tmp_path):
    env = plugin_site(tmp_path, "paidplugin", PLUGIN, {"paid": "paidplugin:Paid"})
    env["BATCH_LOG"] = str(tmp_path / "batches.log")
    (tmp_path / "proj").mkdir()
    p = Project(tmp_path / "proj", MANIFEST.format(batch=""))
    return p, env


def _run(p, env, *args):
    return p.run("build", str(p.manifest), "--json", *args, env=env, check=False)


def test_licences_are_recorded_and_commercial_refuses_naming_entries(paid):
    p, env = paid
    proc = _run(p, env, "--commercial")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--commercial: 4 assets" in proc.stderr and "a (cc-by-nc-4.0)" in proc.stderr
    assert "g (" not in proc.stderr  # eSpeak output is unrestricted
    assert not (p.out / "assetpack.json").exists()  # nothing was built
    assert _run(p, env).returncode == 0
    records = {r["id"]: r for r in p.pack()["assets"]}
    assert records["a"]["licence"] == {"name": "cc-by-nc-4.0", "commercial": False}
    assert records["g"]["licence"]["commercial"] is True


def test_billed_characters_in_plan_summary_and_max_characters(paid):
    p, env = paid
    billed = sum(len(t) for t in ["A very long first line of narration that goes on and on for a while.", "Short.",
                                  "A medium length line here.", "Tiny."])
    plan = json.loads(p.run("plan", str(p.manifest), "--json", env=env).stdout)
    assert plan["totals"]["billed_characters"] == billed
    assert plan["totals"]["characters"] == billed + len("Hello.")
    human = p.run("plan", str(p.manifest), env=env).stdout
    assert f"{billed} characters will be billed" in human
    proc = _run(p, env, "--max-characters", str(billed - 1))
    assert proc.returncode == 2 and f"would bill {billed} characters" in proc.stderr
    proc = _run(p, env, "--max-characters", str(billed))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["billed_characters"] == billed
    # a no-op rebuild bills nothing and is not refused
    again = _run(p, env, "--max-characters", "0")
    assert again.returncode == 0 and json.loads(again.stdout)["billed_characters"] == 0


def test_neighbouring_lines_of_a_voice_are_passed_as_context(paid):
    p, env = paid
    assert _run(p, env).returncode == 0
    ctx = {r["id"]: json.loads(r["notes"][0]) for r in p.pack()["assets"] if r["backend"] == "paid"}
    assert ctx["a"] == {"next_text": "Short."}
    assert ctx["b"] == {"previous_text": "A very long first line of narration that goes on and on for a while.",
                        "next_text": "A medium length line here."}  # the espeak line between is another voice
    assert ctx["d"] == {"previous_text": "A medium length line here."}
    # Editing a neighbour regenerates the lines that use it as context, not the others.
    p.edit('text = "Short."', 'text = "Brief."')
    summary = json.loads(_run(p, env).stdout)
    assert summary["generated"] == 3  # b itself, a (next) and c (previous)


def test_heavy_batches_group_similar_lengths_and_honour_batch_size(paid):
    p, env = paid
    assert _run(p, env).returncode == 0
    log = env["BATCH_LOG"]
    batches = [json.loads(line) for line in open(log)]
    assert batches == [["d", "b", "c", "a"]]  # one batch (max_batch 4), shortest first
    os.remove(log)
    p.manifest.write_text(MANIFEST.format(batch="batch_size = 2").replace("Tiny.", "Tiny!"))
    p.edit("Short.", "Short!")
    p.edit("A medium length line here.", "A medium length line here!")
    p.edit("on and on for a while.", "on and on for a while!")
    assert _run(p, env).returncode == 0
    batches = [json.loads(line) for line in open(log)]
    assert batches == [["d", "b"], ["c", "a"]]  # batch_size splits the bucket; it is not a key input


def test_models_lists_catalog_with_licences_and_presence(tmp_path):
    hub = tmp_path / "hub"
    snap = hub / "models--suno--bark-small" / "snapshots" / ("ab" * 20)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (hub / "models--suno--bark-small" / "refs").mkdir()
    (hub / "models--suno--bark-small" / "refs" / "main").write_text("ab" * 20)
    p = Project(tmp_path, "")
    rows = {r["name"]: r for r in json.loads(p.run("models", "--json", env={"HF_HUB_CACHE": str(hub)}).stdout)}
    assert rows["musicgen-small"]["licence"] == "cc-by-nc-4.0" and rows["musicgen-small"]["commercial"] is False
    assert rows["musicgen-small"]["present"] == {"transformers": False, "audiocraft": False}
    assert rows["bark-small"]["licence"] == "mit" and rows["bark-small"]["present"] == {"transformers": True}
    assert rows["audiogen-medium"]["requires"] == ["t5-large"]
    text = p.run("models", env={"HF_HUB_CACHE": str(hub)}).stdout
    assert "bark-small" in text and "(non-commercial)" in text and "transformers: present" in text


def test_located_hub_model_identity_is_its_revision(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    repo = hub / "models--facebook--mms-tts-eng"
    (repo / "snapshots" / ("cd" * 20)).mkdir(parents=True)
    (repo / "snapshots" / ("cd" * 20) / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("cd" * 20)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    located = store.locate("mms-tts-eng")
    assert located.identity == {"model": "facebook/mms-tts-eng", "revision": "cd" * 20}
    assert store.licence(located) == {"name": "cc-by-nc-4.0", "commercial": False, "model": "mms-tts-eng"}


def test_missing_models_are_never_downloaded_by_a_build(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("ASSETBUILD_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(BackendUnavailable, match=r"`assetbuild models pull musicgen-small` \(about 2.4 GB\)"):
        store.locate("musicgen-small")
    with pytest.raises(BackendUnavailable, match="has no audiocraft weights"):
        store.locate("bark", "audiocraft")


def test_models_pull_errors_are_one_line(tmp_path):
    p = Project(tmp_path, "")
    proc = p.run("models", "pull", "musicgen-smal", check=False)
    assert proc.returncode == 2 and "Did you mean 'musicgen-small'?" in proc.stderr
    # Offline (as the whole suite is): a clear failure, no traceback, no connection attempted.
    proc = p.run("models", "pull", "mms-tts-eng", env={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: could not download mms-tts-eng: the Hugging Face Hub cannot be reached")
    assert "Traceback" not in proc.stderr


def test_local_model_folder_identity_is_a_content_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    model = tmp_path / "models" / "voice"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights-1")
    (model / "README.md").write_text("---\nlicense: apache-2.0\ntags: [tts]\n---\n# my voice\n")
    first = store.locate("./models/voice", base_dir=str(tmp_path))
    assert first.path == model.resolve() and set(first.identity) == {"weights"}
    assert store.licence(first)["name"] == "apache-2.0" and store.licence(first)["commercial"] is True
    assert (tmp_path / "xdg" / "assetbuild" / "weights.json").is_file()  # file hashes remembered
    assert store.locate(str(model)).identity == first.identity  # same folder, however it is named
    (model / "model.safetensors").write_bytes(b"weights-2")
    assert store.locate(str(model)).identity != first.identity
    (model / "README.md").write_text("# no card\n")
    assert store.licence(store.locate(str(model)))["commercial"] is False  # unknown is never cleared
    with pytest.raises(BackendUnavailable, match="does not exist"):
        store.locate("./models/nope", base_dir=str(tmp_path))


def test_catalog_licences():
    assert not catalog.KNOWN["musicgen-melody"].commercial
    assert not catalog.KNOWN["audiogen-medium"].commercial
    assert catalog.KNOWN["bark"].commercial and catalog.KNOWN["speecht5-tts"].commercial
    assert catalog.find("facebook/musicgen-small") is catalog.KNOWN["musicgen-small"]


def test_device_option_is_validated(tmp_path):
    p = Project(tmp_path, "")
    proc = p.run("build", "--device", "tpu", check=False)
    assert proc.returncode == 2 and "'tpu' is not one of" in proc.stderr


def test_device_choice(monkeypatch):
    import torch

    from assetbuild.backends import neural

    monkeypatch.setenv("ASSETBUILD_DEVICE", "cpu")
    assert neural.pick_device() == neural.planned_device() == "cpu"
    monkeypatch.setenv("ASSETBUILD_DEVICE", "auto")
    auto = neural.pick_device()
    assert auto == ("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")
    assert neural.planned_device() == auto  # the cache key names the device that will run
    if not torch.cuda.is_available():
        monkeypatch.setenv("ASSETBUILD_DEVICE", "cuda")
        with pytest.raises(BackendUnavailable, match="--device cuda: no CUDA device on this machine"):
            neural.pick_device()
    with pytest.raises(BackendUnavailable, match="unknown device 'tpu'"):
        neural.pick_device("tpu")


def test_pull_and_allow_download_fetch_from_the_hub(tmp_path):
    """Against a local stand-in for the hub (HF_ENDPOINT): a build never downloads unless
    asked; `models pull` and `build --allow-download` fetch the model, which then builds."""
    from fake_hub import COMMIT, FakeHub
    from test_tts_hf import _vits

    tiny = tmp_path / "tiny-mms"
    _vits(tiny, 0)
    (tiny / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n")
    manifest = """\
[project]
name = "hub"

[voices.narrator]
backend = "mms"

[[dialogue]]
id = "intro"
voice = "narrator"
text = "Welcome to the old forest."
"""
    with FakeHub({"facebook/mms-tts-eng": tiny}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
               "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "ASSETBUILD_DEVICE": "cpu",
               "XDG_CACHE_HOME": str(tmp_path / "xdg")}
        (tmp_path / "a").mkdir()
        p = Project(tmp_path / "a", manifest)
        proc = p.run("build", str(p.manifest), "--json", env=env)
        assert proc.returncode == 1 and hub.requests == []  # not asked: nothing fetched
        assert "assetbuild models pull mms-tts-eng" in json.loads(proc.stdout)["failures"][0]["error"]
        proc = p.run("build", str(p.manifest), "--json", "--allow-download", env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["generated"] == 1
        assert any(r.endswith("/model.safetensors") for r in hub.requests)
        record = p.pack()["assets"][0]
        assert record["licence"] == {"name": "cc-by-nc-4.0", "commercial": False, "model": "mms-tts-eng"}
        # `models pull` into another cache, with a progress bar; then the model is present.
        env2 = dict(env, HF_HOME=str(tmp_path / "hf2"), HF_HUB_CACHE=str(tmp_path / "hf2" / "hub"))
        proc = p.run("models", "pull", "mms-tts-eng", env=env2)
        assert proc.returncode == 0, proc.stderr
        assert "100%" in proc.stderr and COMMIT in proc.stderr  # progress, then the snapshot folder
        rows = {r["name"]: r for r in json.loads(p.run("models", "--json", env=env2).stdout)}
        assert rows["mms-tts-eng"]["present"] == {"transformers": True}


def test_backends_say_what_to_install(monkeypatch):
    from assetbuild import backends
    from assetbuild.backends import neural

    monkeypatch.setattr(neural, "missing_packages", lambda *names: [n for n in names if n in ("torch", "omegaconf")])
    rows = {r["name"]: r for r in backends.status_rows()}
    for name in ("bark", "mms", "speecht5", "musicgen"):
        assert not rows[name]["available"]
        assert rows[name]["reason"] == 'needs torch: pip install "assetbuild[hf]" -c constraints.txt', rows[name]
    assert "omegaconf" in rows["audiogen"]["reason"] and 'pip install "assetbuild[audiocraft]"' in rows["audiogen"]["reason"]
    assert rows["espeak"]["available"] and rows["procedural"]["available"]

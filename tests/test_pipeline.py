"""The pipeline core, in process: planning decisions, the realise path (cache hit, process only,
generate, the CacheMiss fallbacks, failures) and the executor (one heavy model resident at a
time, also when a server request and a build overlap).

The fake backends here are heavy (``parallel = False``), so they run in the executor's heavy
lane in this process, where ``backends.register`` made them known; processing runs in the real
worker pool.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from assetbuild import backends
from assetbuild.backends.base import BaseBackend, Request, Result
from assetbuild.errors import CacheMiss
from assetbuild.manifest import load
from assetbuild.pipeline.cache import Cache
from assetbuild.pipeline.executor import LocalExecutor
from assetbuild.pipeline.outcome import Action, Status, Step
from assetbuild.pipeline.plan import complete
from assetbuild.pipeline.realise import realise
from assetbuild.pipeline.run import Options, build, plan_build

SR = 16000


class Tone(BaseBackend):
    """A heavy sfx backend that notes what it does in a shared log."""

    name = "tone"
    kinds = frozenset({"sfx", "dialogue"})
    max_batch = 4
    parallel = False
    log: list[str] = []
    resident: set[str] = set()  # loaded models of every Tone backend, across instances
    most_resident = 0
    delay = 0.0
    lock = threading.Lock()
    loaded_event = threading.Event()
    fail_on: set[str] = set()  # prompts or texts whose request fails

    def fingerprint(self, request: Request) -> dict:
        return {"backend": self.name, "version": 1}

    def licence(self, request: Request) -> dict:
        return {"name": "test", "commercial": True}

    def load(self) -> None:
        with Tone.lock:
            Tone.resident.add(self.name)
            Tone.most_resident = max(Tone.most_resident, len(Tone.resident))
            Tone.log.append(f"load {self.name}")
        Tone.loaded_event.set()

    def unload(self) -> None:
        with Tone.lock:
            Tone.resident.discard(self.name)
            Tone.log.append(f"unload {self.name}")

    def generate(self, requests: list[Request]) -> list[Result]:
        with Tone.lock:
            Tone.log.append(f"generate {self.name} {len(requests)}")
        time.sleep(Tone.delay)
        out = []
        for r in requests:
            if (r.prompt or r.text) in Tone.fail_on:
                raise RuntimeError(f"cannot make {r.prompt or r.text!r}")
            t = np.arange(int(0.3 * SR)) / SR
            out.append(Result((0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), SR, {"generator": self.name}))
        return out


class Chime(Tone):
    name = "chime"


@pytest.fixture(autouse=True)
def fakes():
    backends.register("tone", Tone)
    backends.register("chime", Chime)
    Tone.log.clear()
    Tone.resident.clear()
    Tone.most_resident = 0
    Tone.delay = 0.0
    Tone.fail_on = set()
    Tone.loaded_event.clear()
    yield
    for name in ("tone", "chime"):
        backends._registered.pop(name, None)
        backends._instances.pop(name, None)
    backends.get.cache_clear()


MANIFEST = """\
[project]
name = "core"
sample_rate = 16000

[voices.narrator]
backend = "chime"

[[sfx]]
id = "beep"
prompt = "beep"
backend = "tone"

[[sfx]]
id = "boop"
prompt = "boop"
backend = "tone"

[[sfx]]
id = "clank"
prompt = "clank"
backend = "tone"
variations = 2
pitch_variation = 2
"""


def manifest(tmp_path: Path, text: str = MANIFEST):
    path = tmp_path / "assetbuild.toml"
    path.write_text(text)
    return load(path)


@pytest.fixture
def executor():
    ex = LocalExecutor(2)
    yield ex
    ex.shutdown()


def run(tmp_path: Path, executor, text: str = MANIFEST):
    return build(manifest(tmp_path, text), Options(executor=executor))


# -- planning ----------------------------------------------------------------------------------

def test_plan_decides_the_first_stage_without_a_cache_entry(tmp_path, executor):
    m = manifest(tmp_path)
    assert {i.id: i.action for i in plan_build(m).items} == dict.fromkeys(
        ["beep", "boop", "clank_01", "clank_02"], Action.GENERATE)
    run(tmp_path, executor)
    assert {i.action for i in plan_build(manifest(tmp_path)).items} == {Action.FRESH}

    (m.output_dir / "sfx" / "beep.wav").unlink()  # output gone: placed from the cache
    m2 = manifest(tmp_path, MANIFEST.replace('prompt = "boop"', 'prompt = "boop"\nloudness = -18.0'))
    plan = {i.id: i for i in plan_build(m2).items}
    assert plan["beep"].action == Action.PLACE and plan["beep"].reasons == ["output missing or changed on disk"]
    assert plan["boop"].action == Action.PROCESS and plan["boop"].reasons == ["loudness changed"]
    m3 = manifest(tmp_path, MANIFEST.replace('prompt = "clank"', 'prompt = "clonk"'))
    plan = {i.id: i for i in plan_build(m3).items}
    assert plan["clank_01"].action == Action.GENERATE and plan["clank_01"].reasons == ["prompt changed"]
    assert plan["beep"].action == Action.PLACE  # unchanged entries: still their own action


def test_plan_reuses_the_last_builds_keys_for_the_same_manifest_bytes(tmp_path, executor):
    run(tmp_path, executor)
    items = plan_build(manifest(tmp_path)).items
    # Fresh from the remembered keys: their inputs were never hashed again.
    assert all(i.action == Action.FRESH and i.generate_inputs == {} for i in items)
    full = complete(items[0], 16000)
    assert full.generate_inputs["prompt"] == "beep"


def test_recover_takes_lost_metadata_from_the_cache(tmp_path, executor):
    run(tmp_path, executor)
    pack = tmp_path / "build" / "audio" / "assetpack.json"
    before = pack.read_text()
    pack.unlink()
    result = run(tmp_path, executor)
    assert result.generated == 0 and result.processed == 0
    assert pack.read_text() == before  # byte for byte, though read back from the cache's sorted entries


def test_assets_restored_from_the_cache_are_described_byte_for_byte(tmp_path, executor):
    # Takes with a pitch/gain transform, and lines whose word timings are estimated.
    text = MANIFEST + '\n[[dialogue]]\nid = "hello"\nvoice = "narrator"\ntext = "Hello, my friend."\n'
    run(tmp_path, executor, text)
    out = tmp_path / "build" / "audio"
    before = (out / "assetpack.json").read_bytes()
    assert b'"timing": "estimated"' in before
    for wav in [*(out / "sfx").glob("*.wav"), *(out / "dialogue").glob("*.wav")]:
        wav.unlink()
    (out / "assetpack.json").unlink()
    result = run(tmp_path, executor, text)
    assert result.processed == 0 and (out / "assetpack.json").read_bytes() == before


# -- realise -----------------------------------------------------------------------------------

def _items(tmp_path):
    m = manifest(tmp_path)
    plan = plan_build(m)
    return m, plan, Cache(tmp_path / ".assetbuild" / "cache")


def test_realise_generates_processes_and_places(tmp_path, executor):
    m, plan, cache = _items(tmp_path)
    outcomes = {o.id: o for o in realise(plan.work, cache, executor, m.sample_rate)}
    assert {o.status for o in outcomes.values()} == {Status.GENERATED, Status.PROCESSED}
    # The two takes of "clank" share one generated sound: generated once, processed twice.
    assert outcomes["clank_01"].status == Status.GENERATED and outcomes["clank_02"].status == Status.PROCESSED
    assert [line for line in Tone.log if line.startswith("generate")] == ["generate tone 3"]
    for o in outcomes.values():
        assert o.ok and o.files["main"].is_file() and o.processed.sha256 == o.files["main"].name

    again = {o.id: o for o in realise(plan_build(m).work, cache, executor, m.sample_rate)}
    assert {o.status for o in again.values()} == {Status.PLACED}  # nothing was placed in the output
    assert again["beep"].processed == outcomes["beep"].processed


def test_realise_processes_only_what_needs_it(tmp_path, executor):
    m, plan, cache = _items(tmp_path)
    list(realise(plan.work, cache, executor, m.sample_rate))
    m2 = manifest(tmp_path, MANIFEST.replace("sample_rate = 16000", "sample_rate = 16000\n\n[defaults]\nloudness = -16.0"))
    plan2 = plan_build(m2)
    assert {i.action for i in plan2.work} == {Action.PROCESS}
    Tone.log.clear()
    outcomes = list(realise(plan2.work, cache, executor, m2.sample_rate))
    assert {o.status for o in outcomes} == {Status.PROCESSED} and not any(o.generated for o in outcomes)
    assert Tone.log == []  # no model loaded


def test_corrupt_cache_entries_fall_back_a_stage(tmp_path, executor):
    m, plan, cache = _items(tmp_path)
    first = {o.id: o for o in realise(plan.work, cache, executor, m.sample_rate)}
    item = next(i for i in plan_build(m).work if i.id == "beep")
    # The processed file is corrupt: processed again from the generated audio.
    blob = first["beep"].files["main"]
    blob.chmod(0o644)
    blob.write_bytes(b"not audio")
    (outcome,) = realise([item], cache, executor, m.sample_rate)
    assert outcome.status == Status.PROCESSED and outcome.files["main"].read_bytes()[:4] == b"RIFF"
    # The generated audio is corrupt too: generated again (once), then processed.
    entry = cache.get_entry("generate", item.generate_key)
    audio = cache.blob_path(entry["audio"])
    audio.chmod(0o644)
    audio.write_bytes(b"garbage")
    cache.entry_path("process", item.process_key).unlink()
    (outcome,) = realise([item], cache, executor, m.sample_rate)
    assert outcome.status == Status.GENERATED and outcome.generated


class _Unreadable:
    """An executor whose process jobs never find their generated audio (as a cache that loses
    what it is given would)."""

    def __init__(self, inner):
        self.inner, self.workers = inner, inner.workers

    def generate(self, cache_root, backend, jobs, urgent=False):
        return self.inner.generate(cache_root, backend, jobs, urgent)

    def process(self, cache_root, job):
        future: Future = Future()
        future.set_exception(CacheMiss(job.generate_key))
        return future

    def release(self):
        self.inner.release()

    def shutdown(self, kill=False):
        pass


def test_cache_miss_twice_is_a_failure_not_a_loop(tmp_path, executor):
    m, plan, cache = _items(tmp_path)
    item = next(i for i in plan.work if i.id == "beep")
    (outcome,) = realise([item], cache, _Unreadable(executor), m.sample_rate)
    assert outcome.status == Status.FAILED and outcome.failure.stage == Step.PROCESS
    assert outcome.failure.error == "generated audio could not be read back from the cache"
    # Generated as planned, then once more; the second miss is a failure.
    assert [line for line in Tone.log if line.startswith("generate")] == ["generate tone 1", "generate tone 1"]


def test_one_failing_request_fails_alone(tmp_path, executor):
    Tone.fail_on = {"boop"}
    m, plan, cache = _items(tmp_path)
    outcomes = {o.id: o for o in realise(plan.work, cache, executor, m.sample_rate)}
    failure = outcomes["boop"].failure
    assert failure is not None and failure.stage == Step.GENERATE and failure.error == "cannot make 'boop'"
    assert failure.to_json() == {"id": "boop", "error": "cannot make 'boop'"}  # as build --json lists it
    assert all(outcomes[i].ok for i in ("beep", "clank_01", "clank_02"))
    # The batch failed as a whole, then each job was retried alone.
    assert [line for line in Tone.log if line.startswith("generate")] == [
        "generate tone 3", "generate tone 1", "generate tone 1", "generate tone 1"]


def test_a_build_reports_failures_and_keeps_the_plan_as_planned(tmp_path, executor):
    Tone.fail_on = {"boop"}
    m = manifest(tmp_path)
    result = build(m, Options(executor=executor))
    assert [f.to_json() for f in result.failures] == [{"id": "boop", "error": "cannot make 'boop'"}]
    assert {i.action for i in result.plan.items} == {Action.GENERATE}  # outcomes, not a rewritten plan
    # The takes of "clank" share one generated sound: clank_02 was only processed.
    assert result.generated == 2 and result.summary()["reused"] == 1


def test_the_realise_path_stops_at_its_deadline_and_leaves_the_job_running(tmp_path, executor):
    Tone.delay = 0.5
    m, plan, cache = _items(tmp_path)
    item = next(i for i in plan.work if i.id == "beep")
    with pytest.raises(TimeoutError):
        list(realise([item], cache, executor, m.sample_rate, deadline=time.monotonic() + 0.1))
    deadline = time.monotonic() + 30
    while not cache.has_entry("generate", item.generate_key):  # it finished into the cache anyway
        assert time.monotonic() < deadline
        time.sleep(0.05)


# -- the executor ------------------------------------------------------------------------------

def test_heavy_lane_keeps_one_model_resident(tmp_path, executor):
    text = MANIFEST + "".join(f'\n[[dialogue]]\nid = "line_{i}"\nvoice = "narrator"\ntext = "Line {i}."\n'
                              for i in range(3))
    run(tmp_path, executor, text)
    assert Tone.most_resident == 1
    assert Tone.log == ["load chime", "generate chime 3", "unload chime", "load tone", "generate tone 3"]
    assert Tone.resident  # a shared executor keeps the last model loaded ...
    executor.release()
    assert not Tone.resident  # ... until its owner releases it


def test_a_build_of_its_own_unloads_at_the_end(tmp_path):
    result = build(manifest(tmp_path), Options(jobs=1))
    assert result.generated == 3 and not result.failures
    assert Tone.log[-1] == "unload tone" and not Tone.resident


def test_a_server_request_and_a_build_share_one_heavy_model_at_a_time(tmp_path):
    """`serve`: a request for one heavy voice while a build generates with another heavy model.
    They share the server's executor, so the request waits for the lane instead of loading its
    model beside the build's."""
    from assetbuild.server import adhoc
    from assetbuild.server.limits import Limits
    from assetbuild.server.project import ServedProject
    from assetbuild.server.synth import Synthesizer

    path = tmp_path / "assetbuild.toml"
    path.write_text(MANIFEST + "".join(f'\n[[sfx]]\nid = "hum_{i}"\nprompt = "hum {i}"\nbackend = "tone"\n'
                                       for i in range(8)))
    synth = Synthesizer(ServedProject(path), Limits(workers=1, timeout=60))
    Tone.delay = 0.3
    try:
        done: dict[str, object] = {}
        builder = threading.Thread(target=lambda: done.setdefault(
            "build", build(load(path), Options(executor=synth.executor))))
        builder.start()
        assert Tone.loaded_event.wait(30)  # the build's model is loaded and generating
        out = synth.synthesize(adhoc.Line(text="Hello there.", voice="narrator"))
        builder.join(60)
        assert out.cache == "generated" and out.record.duration > 0
        assert not done["build"].failures  # type: ignore[union-attr]
        assert Tone.most_resident == 1, Tone.log
        assert "load chime" in Tone.log and Tone.log.index("load chime") > Tone.log.index("load tone")
        # The request went before the batches the build had queued: it waited for one batch.
        batches = [i for i, line in enumerate(Tone.log) if line.startswith("generate tone")]
        assert len(batches) == 3 and batches[0] < Tone.log.index("generate chime 1") < batches[-1], Tone.log
    finally:
        synth.close()
    assert not Tone.resident


def test_a_restored_build_is_described_as_the_one_that_made_it(tmp_path):
    """Dialogue (words, subtitles), a loop and takes, through the CLI: deleting the output and
    building again restores everything from the cache, and assetpack.json comes out the same."""
    from conftest import Project

    p = Project(tmp_path)
    p.build()
    before = (p.out / "assetpack.json").read_bytes()
    import shutil

    shutil.rmtree(p.out)
    summary = p.build()
    assert summary["generated"] == 0 and summary["processed"] == 0
    assert (p.out / "assetpack.json").read_bytes() == before


def test_the_registry_gives_plugins_the_protocols_defaults():
    from assetbuild.backends.base import Backend
    from assetbuild.errors import BackendUnavailable

    class Minimal:  # what a plugin must have; no base class
        name = "minimal"
        kinds = frozenset({"sfx"})

        def fingerprint(self, request):
            return {"backend": "minimal", "version": 3}

        def generate(self, requests):
            return []

    class Declared(Backend):  # derives from the protocol itself: its stubs are not implementations
        name = "declared"
        kinds = frozenset({"sfx"})

        def fingerprint(self, request):
            return {"backend": "declared"}

        def generate(self, requests):
            return []

    for cls in (Minimal, Declared):
        b = backends.with_defaults(cls)()
        assert isinstance(b, cls) and b.billed is False and b.uses_context is False
        assert b.max_batch == 1 and b.parallel is False and b.settings == () and b.availability() is None
        assert b.licence(Request("x", "sfx", 1)) == {"name": "unknown", "commercial": False}
        assert b.fingerprint(Request("x", "sfx", 1))["backend"] == cls.name

    class Forgetful(BaseBackend):
        name = "forgetful"
        kinds = frozenset({"sfx"})

    with pytest.raises(BackendUnavailable, match="needs a fingerprint"):
        Forgetful().fingerprint(Request("x", "sfx", 1))

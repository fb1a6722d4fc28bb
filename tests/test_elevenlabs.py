"""The elevenlabs backend, through the real SDK against a local fake of the API (no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fake_elevenlabs import LEAD, TAIL, FakeElevenLabs, char_times, error_body

import assetbuild.backends.elevenlabs as el
from assetbuild.backends import BackendUnavailable, Request
from assetbuild.fields import Stage

KEY = "sk-test-SECRET-1234"
VOICE = "JBFqnCBsd6RMkjVDRZzb"


@pytest.fixture
def fake(monkeypatch):
    server = FakeElevenLabs(key=KEY).start()
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    monkeypatch.setenv("ELEVENLABS_BASE_URL", server.url)
    monkeypatch.setattr(el, "BASE_DELAY", 0.01)
    yield server
    server.stop()


@pytest.fixture
def backend():
    return el.ElevenLabsBackend()


def line(text: str = "Hello there brave traveller", id: str = "line_01", **kw) -> Request:
    settings = {"voice_id": VOICE, **kw.pop("settings", {})}
    return Request(id=id, kind="dialogue", seed=kw.pop("seed", 1234), text=text, settings=settings, **kw)


def sfx(prompt: str = "heavy wooden door slams shut", **kw) -> Request:
    return Request(id=kw.pop("id", "door"), kind="sfx", seed=7, prompt=prompt, settings=kw.pop("settings", {}), **kw)


def tts(fake: FakeElevenLabs) -> list[dict]:
    return fake.paths("/with-timestamps")


# -- availability, protocol ---------------------------------------------------------------

def test_protocol_attributes():
    cls = el.ElevenLabsBackend
    assert cls.name == "elevenlabs" and cls.kinds == frozenset({"dialogue", "sfx"})
    assert cls.parallel is False and cls.max_batch == 16 and cls.billed is True and cls.uses_context is True
    fields = {f.name: f for f in cls.settings}
    assert fields["concurrency"].stage == Stage.META and fields["timeout"].stage == Stage.META
    assert fields["model_id"].default == "eleven_multilingual_v2" and fields["sample_rate"].default == 24000
    assert fields["sample_rate"].choices == (16000, 22050, 24000, 44100)
    from assetbuild import backends
    assert backends.get("elevenlabs") is cls


def test_availability(monkeypatch, backend):
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    assert backend.availability() is None
    monkeypatch.delenv("ELEVENLABS_API_KEY")
    reason = backend.availability()
    assert "ELEVENLABS_API_KEY" in reason and "\n" not in reason
    with pytest.raises(BackendUnavailable, match="ELEVENLABS_API_KEY"):
        backend.load()
    with pytest.raises(BackendUnavailable, match="ELEVENLABS_API_KEY"):
        backend.generate([line()])
    monkeypatch.setattr(el, "missing_packages", lambda *names: list(names))  # as if not installed
    assert 'pip install "assetbuild[elevenlabs]"' in backend.availability()


def test_import_is_light():
    code = "import sys, assetbuild.backends.elevenlabs; print([m for m in ('elevenlabs', 'httpx') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_fingerprint_and_licence(monkeypatch, backend):
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    monkeypatch.setenv("ELEVENLABS_BASE_URL", "http://127.0.0.1:9")
    fp = backend.fingerprint(line(settings={"model_id": "eleven_flash_v2_5", "sample_rate": 16000}))
    assert fp["backend"] == "elevenlabs" and fp["model_id"] == "eleven_flash_v2_5"
    assert fp["output_format"] == "pcm_16000" and fp["sdk"] == "2.78.0"
    assert backend.fingerprint(sfx())["model_id"] == "eleven_text_to_sound_v2"
    assert KEY not in json.dumps(fp) and "127.0.0.1" not in json.dumps(fp)
    lic = backend.licence(line())
    assert lic["commercial"] is True and lic["url"].startswith("https://elevenlabs.io/")


# -- dialogue ------------------------------------------------------------------------------

def test_dialogue_audio_and_measured_word_timings(fake, backend):
    text = "Hello there, brave traveller."
    [res] = backend.generate([line(text)])
    assert res.sample_rate == 24000 and res.audio.dtype == np.float32 and res.audio.ndim == 1
    starts, ends = char_times(text)
    assert len(res.audio) == round((ends[-1] + TAIL) * 24000)
    assert 0.05 < np.abs(res.audio).max() <= 1.0
    assert res.meta["timing"] == "measured" and res.meta["text"] == text
    assert res.meta["generator"] == "ElevenLabs eleven_multilingual_v2"
    assert res.meta["model"] == "eleven_multilingual_v2"
    words = res.meta["words"]
    assert [w["text"] for w in words] == ["Hello", "there", "brave", "traveller"]
    pos = 0
    for w in words:  # each word spans its own letters' times from the fake (a trailing comma may add)
        first = text.index(w["text"], pos)
        last = first + len(w["text"]) - 1
        pos = last + 1
        assert w["span"] == [first, last + 1]
        assert w["start"] == pytest.approx(starts[first], abs=1e-3)
        assert ends[last] - 1e-3 <= w["end"] <= ends[min(last + 1, len(text) - 1)] + 1e-3
    # Not an even spread: the first word starts after the fake's lead-in, and words of the same
    # length take different times.
    assert words[0]["start"] == pytest.approx(LEAD, abs=1e-3)
    hello, brave = words[0], words[2]
    assert abs((hello["end"] - hello["start"]) - (brave["end"] - brave["start"])) < 0.02  # 2 vowels each
    there = words[1]
    assert there["end"] - there["start"] > (hello["end"] - hello["start"]) + 0.05  # 2 vowels + comma


def test_request_body_and_headers(fake, backend):
    req = line("Take the ferry.", seed=2**40 + 5, context={"previous_text": "The bridge is out.",
                                                              "next_text": "Hurry [pause] now."})
    backend.generate([req])
    [r] = tts(fake)
    assert r["path"] == f"/v1/text-to-speech/{VOICE}/with-timestamps"
    assert r["query"] == {"output_format": "pcm_24000"}
    assert r["headers"]["xi-api-key"] == KEY
    body = r["json"]
    assert body["text"] == "Take the ferry."
    assert body["model_id"] == "eleven_multilingual_v2"
    assert body["seed"] == 5  # folded into the API's 32-bit range
    assert body["voice_settings"] == {"stability": 0.5, "similarity_boost": 0.75, "style": 0.0,
                                      "use_speaker_boost": True, "speed": 1.0}
    assert body["previous_text"] == "The bridge is out."
    assert body["next_text"] == "Hurry now."  # as plain text
    assert "language_code" not in body


def test_user_settings_are_sent(fake, backend):
    settings = {"stability": 0.3, "similarity_boost": 0.9, "style": 0.2, "use_speaker_boost": False, "speed": 1.1,
                "model_id": "eleven_flash_v2_5", "sample_rate": 16000}
    [res] = backend.generate([line(settings=settings)])
    [r] = tts(fake)
    assert r["query"]["output_format"] == "pcm_16000" and res.sample_rate == 16000
    assert r["json"]["model_id"] == "eleven_flash_v2_5"
    assert r["json"]["voice_settings"] == {"stability": 0.3, "similarity_boost": 0.9, "style": 0.2,
                                           "use_speaker_boost": False, "speed": 1.1}
    assert "previous_text" not in r["json"] and "next_text" not in r["json"]


def test_language_code(fake, backend):
    backend.generate([line(locale="fr")])  # eleven_multilingual_v2 detects the language itself
    backend.generate([line(locale="pt-BR", settings={"model_id": "eleven_flash_v2_5"})])
    backend.generate([line(locale="fr", settings={"language_code": "de"})])
    assert [r["json"].get("language_code") for r in tts(fake)] == [None, "pt", "de"]


def test_emotion_adjusts_voice_settings(fake, backend):
    base = {"stability": 0.5, "style": 0.2, "speed": 1.0}
    for emotion in (None, "excited", "sad", "calm"):
        backend.generate([line(emotion=emotion, settings=base)])
    sent = [r["json"]["voice_settings"] for r in tts(fake)]
    plain, excited, sad, calm = sent
    assert plain["stability"] == 0.5 and plain["style"] == 0.2
    assert excited["stability"] < plain["stability"] and excited["style"] > plain["style"]
    assert excited["speed"] > 1.0 and sad["speed"] < 1.0
    assert sad["stability"] > plain["stability"] and calm["stability"] > plain["stability"]
    assert excited == pytest.approx({**plain, "stability": 0.25, "style": 0.65, "speed": 1.08})
    # adjusted from the user's values and clamped to the settings' ranges
    backend.generate([line(emotion="calm", settings={"stability": 0.95, "speed": 0.72, "style": 0.0})])
    vs = tts(fake)[-1]["json"]["voice_settings"]
    assert vs["stability"] == 1.0 and vs["speed"] == 0.7 and vs["style"] == 0.0


def test_pause_marker_splits_and_inserts_silence(fake, backend):
    [res] = backend.generate([line("Wait. [pause 1s] Go now!")])
    first, second = tts(fake)
    assert first["json"]["text"] == "Wait." and second["json"]["text"] == "Go now!"
    assert first["json"]["next_text"] == "Go now!" and second["json"]["previous_text"] == "Wait."
    words = res.meta["words"]
    assert [w["text"] for w in words] == ["Wait", "Go", "now"]
    piece1 = char_times("Wait.")[1][-1] + TAIL
    assert words[1]["start"] == pytest.approx(piece1 + 1.0 + LEAD, abs=2e-3)


def test_long_line_is_sent_in_pieces(fake, backend, monkeypatch):
    monkeypatch.setattr(el, "MAX_CHARS", 30)
    text = "We leave at dawn. Bring rope and bread. Nobody looks back."
    [res] = backend.generate([line(text)])
    sent = [r["json"]["text"] for r in tts(fake)]
    assert sent == ["We leave at dawn.", "Bring rope and bread.", "Nobody looks back."]
    assert tts(fake)[1]["json"]["previous_text"] == "We leave at dawn."
    words = res.meta["words"]
    assert " ".join(w["text"] for w in words) == "We leave at dawn Bring rope and bread Nobody looks back"
    assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:]))


def test_lexicon_respelling_is_spoken_written_word_shown(fake, backend):
    [res] = backend.generate([line("Beware of Xyloth tonight", lexicon={"Xyloth": {"say": "Zy loth"}})])
    assert tts(fake)[0]["json"]["text"] == "Beware of Zy loth tonight"
    assert [w["text"] for w in res.meta["words"]] == ["Beware", "of", "Xyloth", "tonight"]


def test_ssml_sends_text_with_warning(fake, backend):
    [res] = backend.generate([line('<speak>Hello <emphasis>there</emphasis>.</speak>', ssml=True)])
    assert tts(fake)[0]["json"]["text"] == "Hello there."
    assert res.meta["text"] == "Hello there." and res.meta["warnings"]


def test_missing_voice_id(fake, backend):
    req = Request(id="l", kind="dialogue", seed=1, text="Hi.", settings={})
    with pytest.raises(ValueError, match="voice_id"):
        backend.generate([req])
    assert fake.requests == []


def test_batch_results_in_order(fake, backend):
    texts = [f"Line number {w}" for w in ("one", "two", "three", "four", "five")]
    fake.delay = 0.05
    results = backend.generate([line(t, id=f"l{i}") for i, t in enumerate(texts)])
    assert [r.meta["text"] for r in results] == texts
    assert [len(r.audio) for r in results] == [round((char_times(t)[1][-1] + TAIL) * 24000) for t in texts]


# -- concurrency ---------------------------------------------------------------------------

def test_concurrency_default_is_two(fake, backend):
    fake.delay = 0.2
    fake.concurrency_limit = 2  # like the free tier: a third request in flight would get 429
    backend.generate([line(f"Line {i}", id=f"l{i}") for i in range(6)])
    assert fake.max_in_flight == 2
    assert len(fake.requests) == 6  # no 429s, so no retries


def test_concurrency_setting(fake, backend):
    fake.delay = 0.2
    backend.generate([line(f"Line {i}", id=f"l{i}", settings={"concurrency": 3}) for i in range(6)])
    assert fake.max_in_flight == 3


def test_concurrency_one(fake, backend):
    fake.delay = 0.05
    backend.generate([line(f"Line {i}", id=f"l{i}", settings={"concurrency": 1}) for i in range(3)] + [sfx()])
    assert fake.max_in_flight == 1


# -- failures ------------------------------------------------------------------------------

def test_429_then_success(fake, backend):
    fake.fail(429, error_body("too_many_concurrent_requests", "slow down"), times=2)
    [res] = backend.generate([line()])
    assert len(fake.requests) == 3 and res.meta["timing"] == "measured"


def test_retry_after_is_honoured(fake, backend):
    fake.fail(429, error_body("system_busy", "busy"), times=1, headers={"Retry-After": "0.4"})
    t0 = time.monotonic()
    backend.generate([line()])
    assert time.monotonic() - t0 >= 0.4 and len(fake.requests) == 2


def test_server_error_persisting(fake, backend):
    fake.fail(500, error_body("internal", "the fake broke"))
    with pytest.raises(el.ElevenLabsError) as info:
        backend.generate([line()])
    msg = str(info.value)
    assert len(fake.requests) == el.ATTEMPTS == 4
    assert "4 times" in msg and "500" in msg and "the fake broke" in msg
    assert "\n" not in msg and KEY not in msg


def test_503_then_success(fake, backend):
    fake.fail(503, "Service Unavailable", times=1)
    backend.generate([sfx()])
    assert len(fake.requests) == 2


def test_bad_key_fails_at_once(fake, backend, monkeypatch):
    fake.key = "sk-the-right-one"
    with pytest.raises(el.ElevenLabsError) as info:
        backend.generate([line()])
    msg = str(info.value)
    assert len(fake.requests) == 1
    assert "rejected the API key (401)" in msg and "ELEVENLABS_API_KEY" in msg and KEY not in msg
    # the same key again: refused without another request
    with pytest.raises(el.ElevenLabsError, match="ELEVENLABS_API_KEY"):
        backend.generate([line(), sfx()])
    assert len(fake.requests) == 1
    monkeypatch.setenv("ELEVENLABS_API_KEY", "sk-the-right-one")
    backend.generate([line()])
    assert len(fake.requests) == 2


def test_bad_key_in_a_batch_stops_the_rest(fake, backend):
    fake.key = "sk-the-right-one"
    with pytest.raises(el.ElevenLabsError, match="401"):
        backend.generate([line(id=f"l{i}") for i in range(8)])
    assert len(fake.requests) <= 2  # at most the requests already in flight


@pytest.mark.parametrize("status", [401, 403])
def test_quota_exceeded(fake, backend, status):
    fake.fail(status, error_body("quota_exceeded", "This request exceeds your quota of 10000. You have 12 "
                                 "credits remaining, while 29 credits are required for this request."))
    with pytest.raises(el.ElevenLabsError) as info:
        backend.generate([line()])
    msg = str(info.value)
    assert msg.startswith("ElevenLabs quota exceeded: This request exceeds your quota")
    assert len(fake.requests) == 1 and KEY not in msg


def test_forbidden(fake, backend):
    fake.fail(403, error_body("missing_permissions", "The API key is missing the permission text_to_speech"))
    with pytest.raises(el.ElevenLabsError) as info:
        backend.generate([line()])
    assert "403" in str(info.value) and "missing the permission" in str(info.value)
    assert len(fake.requests) == 1


def test_validation_error_is_not_retried(fake, backend):
    fake.fail(422, {"detail": [{"loc": ["body", "text"], "msg": "text too long"}]})
    with pytest.raises(el.ElevenLabsError, match=r"\(422\): text too long"):
        backend.generate([line()])
    assert len(fake.requests) == 1


def test_server_message_never_echoes_key(fake, backend):
    fake.fail(400, error_body("bad", f"what is {KEY}?"))
    with pytest.raises(el.ElevenLabsError) as info:
        backend.generate([line()])
    assert KEY not in str(info.value) and "***" in str(info.value)


def test_slow_response_times_out_then_retries(fake, backend):
    fake.slow(1.5, times=1)
    [res] = backend.generate([line(settings={"timeout": 0.3})])
    assert len(fake.requests) == 2 and res.meta["timing"] == "measured"


def test_slow_response_persisting_fails_clearly(fake, backend):
    fake.slow(1.0)
    with pytest.raises(el.ElevenLabsError) as info:
        backend.generate([sfx(settings={"timeout": 0.2})])
    msg = str(info.value)
    assert "no answer within 0.2 s" in msg and "4 times" in msg
    assert len(fake.requests) == 4


def test_cannot_connect(monkeypatch, backend):
    fake = FakeElevenLabs()
    url = fake.url
    fake.stop()  # nothing listens there now
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    monkeypatch.setenv("ELEVENLABS_BASE_URL", url)
    monkeypatch.setattr(el, "BASE_DELAY", 0.01)
    with pytest.raises(el.ElevenLabsError, match="cannot connect"):
        backend.generate([line()])


def test_failed_batch_keeps_the_lines_that_succeeded(fake, backend):
    """The build retries a failed batch one line at a time: the good lines are not paid twice."""
    fake.fail(500, match="broken")
    reqs = [line("First good line", id="a"), line("A broken line", id="b"), line("Second good line", id="c")]
    with pytest.raises(el.ElevenLabsError):
        backend.generate(reqs)
    n = len(fake.requests)
    assert n == 2 + el.ATTEMPTS
    [a] = backend.generate([reqs[0]])
    [c] = backend.generate([reqs[2]])
    assert len(fake.requests) == n
    assert a.meta["text"] == "First good line" and c.meta["text"] == "Second good line"
    with pytest.raises(el.ElevenLabsError):
        backend.generate([reqs[1]])
    backend.generate([reqs[0]])  # handed out once: a new build asks again
    assert len(fake.requests) == n + el.ATTEMPTS + 1


# -- sound effects -------------------------------------------------------------------------

def test_sfx_duration_honoured(fake, backend):
    [res] = backend.generate([sfx(duration=1.5, settings={"prompt_influence": 0.6})])
    [r] = fake.paths("/v1/sound-generation")
    assert r["json"]["duration_seconds"] == 1.5 and r["json"]["text"] == "heavy wooden door slams shut"
    assert r["json"]["model_id"] == "eleven_text_to_sound_v2" and r["json"]["prompt_influence"] == 0.6
    assert "loop" not in r["json"] and r["query"] == {"output_format": "pcm_24000"}
    assert r["headers"]["xi-api-key"] == KEY
    assert res.sample_rate == 24000 and len(res.audio) == 36000 and res.audio.dtype == np.float32
    assert res.meta["generator"] == "ElevenLabs eleven_text_to_sound_v2"


def test_sfx_natural_length_loop_and_short(fake, backend):
    a, b = backend.generate([sfx(id="a"), sfx(id="b", duration=0.2, loop=True, settings={"sample_rate": 22050})])
    # Sent concurrently: tell them apart by what they ask, not by arrival.
    first, second = sorted(fake.paths("/v1/sound-generation"), key=lambda r: "loop" in r["json"])
    assert "duration_seconds" not in first["json"]
    assert second["json"]["duration_seconds"] == 0.5 and second["json"]["loop"] is True  # the service's minimum
    assert len(b.audio) == round(0.2 * 22050) and b.sample_rate == 22050  # cut to what was asked


def test_sfx_too_long(fake, backend):
    with pytest.raises(ValueError, match=r"0\.5-30 s"):
        backend.generate([sfx(duration=45)])
    assert fake.requests == []


# -- a real build ----------------------------------------------------------------------------

MANIFEST = """\
[project]
name = "ferry"

[voices.narrator]
backend = "elevenlabs"
voice_id = "{voice}"
concurrency = 2
timeout = 20

[[dialogue]]
id = "intro_01"
voice = "narrator"
text = "Welcome back, traveller."

[[dialogue]]
id = "intro_02"
voice = "narrator"
text = "The bridge is out. Take the ferry."
emotion = "calm"

[[sfx]]
id = "door"
backend = "elevenlabs"
prompt = "heavy wooden door slams shut"
duration = 1.2
"""


def _build(root: Path, env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVENLABS_", "ASSETBUILD_"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "assetbuild", "build", str(root / "assetbuild.toml"), *args],
                          cwd=root, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def server():
    with FakeElevenLabs(key=KEY) as s:
        yield s


def test_build_end_to_end(tmp_path, server):
    (tmp_path / "assetbuild.toml").write_text(MANIFEST.format(voice=VOICE))
    env = {"ELEVENLABS_API_KEY": KEY, "ELEVENLABS_BASE_URL": server.url}
    proc = _build(tmp_path, env, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    out = tmp_path / "build" / "audio"
    pack = json.loads((out / "assetpack.json").read_text())
    records = {r["id"]: r for r in pack["assets"]}
    assert set(records) == {"intro_01", "intro_02", "door"}
    for r in records.values():
        assert (out / r["file"]).stat().st_size > 1000
    assert records["door"]["model"] == "eleven_text_to_sound_v2"
    for aid in ("intro_01", "intro_02"):
        r = records[aid]
        assert r["timing"] == "measured" and r["model"] == "eleven_multilingual_v2"
        assert r["generator"] == "ElevenLabs eleven_multilingual_v2"
        text = r["text"]
        starts, ends = char_times(text)
        words = r["words"]
        assert [w["text"] for w in words] == [t.strip(".,") for t in text.split()]
        # the fake's uneven timings survive mastering (trimming only shifts them)
        gaps = [b["start"] - a["start"] for a, b in zip(words, words[1:])]
        firsts = [text.index(w["text"]) for w in words]
        expected = [starts[j] - starts[i] for i, j in zip(firsts, firsts[1:])]
        assert gaps == pytest.approx(expected, abs=0.01)

    speech = sorted(tts(server), key=lambda r: r["json"]["text"])
    assert [r["json"]["text"] for r in speech] == ["The bridge is out. Take the ferry.", "Welcome back, traveller."]
    second, first = speech
    assert second["json"]["previous_text"] == "Welcome back, traveller."
    assert first["json"]["next_text"] == "The bridge is out. Take the ferry."
    assert "previous_text" not in first["json"]
    assert second["json"]["voice_settings"]["stability"] > first["json"]["voice_settings"]["stability"]  # calm
    [door] = server.paths("/v1/sound-generation")
    assert door["json"]["duration_seconds"] == 1.2
    assert all(r["headers"]["xi-api-key"] == KEY for r in server.requests)

    # The key is nowhere in the project: outputs, cache, lockfile, state, metadata, logs.
    needle = KEY.encode()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10
    leaks = [str(p) for p in files if needle in p.read_bytes()]
    assert leaks == []
    assert KEY not in proc.stdout + proc.stderr

    # A second build reuses the cache: nothing is asked (or billed) again.
    n = len(server.requests)
    proc = _build(tmp_path, env, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(server.requests) == n


def test_build_meta_settings_do_not_regenerate(tmp_path, server):
    (tmp_path / "assetbuild.toml").write_text(MANIFEST.format(voice=VOICE))
    env = {"ELEVENLABS_API_KEY": KEY, "ELEVENLABS_BASE_URL": server.url}
    assert _build(tmp_path, env, "--json").returncode == 0
    n = len(server.requests)
    manifest = tmp_path / "assetbuild.toml"
    manifest.write_text(manifest.read_text().replace("concurrency = 2", "concurrency = 1")
                        .replace("timeout = 20", "timeout = 30"))
    proc = _build(tmp_path, env, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(server.requests) == n


def test_build_without_key_fails_clearly(tmp_path, server):
    (tmp_path / "assetbuild.toml").write_text(MANIFEST.format(voice=VOICE))
    proc = _build(tmp_path, {"ELEVENLABS_BASE_URL": server.url})
    assert proc.returncode != 0
    assert "ELEVENLABS_API_KEY" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert server.requests == []


def test_build_with_rejected_key_fails_clearly(tmp_path, server):
    (tmp_path / "assetbuild.toml").write_text(MANIFEST.format(voice=VOICE))
    proc = _build(tmp_path, {"ELEVENLABS_API_KEY": "sk-wrong-key-5678", "ELEVENLABS_BASE_URL": server.url})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "rejected the API key (401)" in out and "Traceback" not in out and "sk-wrong-key-5678" not in out
    # the batch fails, the build retries each line once, and the known-bad key stops those early
    assert len(server.requests) <= 3


def test_manifest_rejects_bad_settings(tmp_path):
    bad = MANIFEST.format(voice=VOICE).replace("concurrency = 2", "concurrency = 0\nsample_rate = 48000")
    (tmp_path / "assetbuild.toml").write_text(bad)
    proc = _build(tmp_path, {})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "concurrency" in out and "sample_rate" in out and "Traceback" not in out

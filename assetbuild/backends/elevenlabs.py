"""The ``elevenlabs`` backend: dialogue and sound effects from the ElevenLabs API.

Dialogue goes through ``text_to_speech.convert_with_timestamps`` (raw PCM plus per-character
timing, turned into word timings with :func:`assetbuild.speech.alignment.spoken_from_characters`);
sound effects through ``text_to_sound_effects.convert``. Both are billed by ElevenLabs.

The API key is read from ``ELEVENLABS_API_KEY`` when a request is made and nowhere else: it
never enters settings, cache keys, metadata or messages. ``ELEVENLABS_BASE_URL`` points the
SDK at another server (a proxy, or the tests' fake).

The SDK's own retries are turned off; :data:`ATTEMPTS` tries with exponential backoff cover
429, 5xx, timeouts and connection errors. A rejected key or an exhausted quota fails at once.

Importing this module is cheap: the SDK and numpy are imported by ``load``/``generate``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import AssetbuildError
from ..fields import Field, Stage
from .base import BackendUnavailable, BaseBackend, Request, Result
from .neural import missing_packages, versions

if TYPE_CHECKING:
    from ..speech.alignment import Part

INSTALL_HINT = 'pip install "assetbuild[elevenlabs]"'
KEY_ENV = "ELEVENLABS_API_KEY"
URL_ENV = "ELEVENLABS_BASE_URL"

ATTEMPTS = 4  # tries per request for retryable failures
BASE_DELAY = 1.0  # seconds before the first retry; doubled each time, with jitter
MAX_DELAY = 30.0  # cap on one wait, Retry-After included
SEED_RANGE = 2**32  # the API takes seeds 0..4294967295
SFX_MIN, SFX_MAX = 0.5, 30.0  # sound-generation limits, seconds
# A line is sent in pieces split at sentences past this many characters: long requests are the
# ones that time out, and every model takes this much.
MAX_CHARS = 2500

DEFAULT_MODEL = "eleven_multilingual_v2"
DEFAULT_SFX_MODEL = "eleven_text_to_sound_v2"
# Models that detect the language themselves and do not take ``language_code``: the line's
# locale is not sent to them (an explicit ``language_code`` still is).
NO_LANGUAGE_CODE = frozenset({"eleven_multilingual_v2", "eleven_multilingual_v1", "eleven_monolingual_v1"})

# Delivery per emotion, applied on top of the voice's settings and clamped to their ranges:
# stability and style are offsets (less stability = more expressive, more style = more of the
# voice's exaggeration), speed a multiplier.
EMOTION_SETTINGS: dict[str, dict[str, float]] = {
    "neutral": {"stability": 0.00, "style": 0.00, "speed": 1.00},
    "happy": {"stability": -0.10, "style": 0.25, "speed": 1.03},
    "excited": {"stability": -0.25, "style": 0.45, "speed": 1.08},
    "sad": {"stability": 0.15, "style": 0.15, "speed": 0.90},
    "angry": {"stability": -0.25, "style": 0.50, "speed": 1.05},
    "fearful": {"stability": -0.20, "style": 0.35, "speed": 1.06},
    "surprised": {"stability": -0.20, "style": 0.40, "speed": 1.04},
    "calm": {"stability": 0.20, "style": -0.10, "speed": 0.95},
    "whisper": {"stability": 0.10, "style": 0.20, "speed": 0.92},
}

_SETTINGS = (
    Field("voice_id", "str", "ElevenLabs voice ID (from your voices or the voice library). Required for dialogue.",
          min_length=1),
    Field("model_id", "str", "Text-to-speech model, e.g. eleven_multilingual_v2, eleven_flash_v2_5, eleven_v3",
          default=DEFAULT_MODEL, min_length=1),
    Field("stability", "float", "Voice stability, 0-1: lower is more expressive and varied", default=0.5,
          minimum=0, maximum=1),
    Field("similarity_boost", "float", "How closely to match the original voice, 0-1", default=0.75,
          minimum=0, maximum=1),
    Field("style", "float", "Style exaggeration, 0-1", default=0.0, minimum=0, maximum=1),
    Field("use_speaker_boost", "bool", "Boost similarity to the original speaker", default=True),
    Field("speed", "float", "Speaking speed, 0.7-1.2", default=1.0, minimum=0.7, maximum=1.2),
    Field("language_code", "str", "ISO 639-1 language to enforce. Default: the line's locale, for models "
          "that take one (not eleven_multilingual_v2)", min_length=2),
    Field("sample_rate", "int", "Rate of the PCM ElevenLabs returns (44100 needs a Pro plan)", default=24000,
          choices=(16000, 22050, 24000, 44100)),
    Field("sfx_model_id", "str", "Sound-effects model", default=DEFAULT_SFX_MODEL, min_length=1),
    Field("prompt_influence", "float", "Sound effects: how closely to follow the prompt, 0-1 (ElevenLabs' "
          "default 0.3)", minimum=0, maximum=1),
    Field("concurrency", "int", "Requests in flight at once (your plan's limit: 2 on the free tier)", default=2,
          minimum=1, maximum=64, stage=Stage.META),
    Field("timeout", "float", "Seconds to wait for one response before retrying", default=60.0, minimum=0,
          exclusive_minimum=True, maximum=600, stage=Stage.META),
)
_BY_NAME = {f.name: f for f in _SETTINGS}


class ElevenLabsError(AssetbuildError, RuntimeError):
    """The service refused or failed a request; the message is one line, without the key."""


def _setting(request: Request, name: str) -> Any:
    value = (request.settings or {}).get(name)
    return _BY_NAME[name].default if value is None else value


def _clamp(name: str, value: float) -> float:
    return round(_BY_NAME[name].clamp(float(value)), 3)


def voice_settings(request: Request) -> dict[str, Any]:
    """The ``voice_settings`` sent for ``request``: the settings (or their defaults, always sent so
    the result does not depend on the voice's settings stored at ElevenLabs), then the emotion."""
    values = {name: float(_setting(request, name)) for name in ("stability", "similarity_boost", "style", "speed")}
    if request.emotion:
        try:
            adj = EMOTION_SETTINGS[request.emotion]
        except KeyError:
            raise ValueError(f"unknown emotion '{request.emotion}' (expected one of "
                             + ", ".join(EMOTION_SETTINGS) + ")") from None
        values["stability"] += adj["stability"]
        values["style"] += adj["style"]
        values["speed"] *= adj["speed"]
    out: dict[str, Any] = {name: _clamp(name, v) for name, v in values.items()}
    out["use_speaker_boost"] = bool(_setting(request, "use_speaker_boost"))
    return out


def language_code(request: Request, model_id: str) -> str | None:
    explicit = (request.settings or {}).get("language_code")
    if explicit:
        return str(explicit)
    if request.locale and model_id not in NO_LANGUAGE_CODE:
        return request.locale.replace("_", "-").split("-")[0].lower()
    return None


def output_format(request: Request) -> str:
    return f"pcm_{int(_setting(request, 'sample_rate'))}"


def _key() -> str:
    return os.environ.get(KEY_ENV, "").strip()


def _no_key() -> str:
    return f"{KEY_ENV} is not set (create a key at https://elevenlabs.io/app/settings/api-keys and export it)"


class ElevenLabsBackend(BaseBackend):
    name: ClassVar[str] = "elevenlabs"
    kinds: ClassVar[frozenset[str]] = frozenset({"dialogue", "sfx"})
    max_batch: ClassVar[int] = 16
    parallel: ClassVar[bool] = False  # network-bound: one thread in the main process, own pool
    settings: ClassVar[tuple[Field, ...]] = _SETTINGS
    billed: ClassVar[bool] = True
    uses_context: ClassVar[bool] = True
    VERSION: ClassVar[str] = "1"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: Any = None
        self._client_for: tuple[str, str | None] | None = None  # (key digest, base URL)
        self._rejected: str | None = None  # digest of a key the service refused: fail fast
        # Results of a batch that failed, kept so the build's one-by-one retry of that batch
        # does not pay for the lines that did succeed.
        self._kept: dict[str, Result] = {}

    # -- protocol ----------------------------------------------------------------------
    def availability(self) -> str | None:
        # From the package metadata: looking the module up would go through the import system.
        if missing_packages("elevenlabs"):
            return f"the ElevenLabs SDK is not installed ({INSTALL_HINT})"
        if not _key():
            return _no_key()
        return None

    def fingerprint(self, request: Request) -> dict[str, Any]:
        model = _setting(request, "sfx_model_id" if request.kind == "sfx" else "model_id")
        return {"backend": self.name, "version": self.VERSION, "sdk": versions("elevenlabs")["elevenlabs"],
                "model_id": model, "output_format": output_format(request)}

    def licence(self, request: Request) -> dict[str, Any]:
        return {"name": "ElevenLabs Terms of Service", "commercial": True, "url": "https://elevenlabs.io/terms-of-use"}

    def load(self) -> None:
        reason = self.availability()
        if reason:
            raise BackendUnavailable(reason)
        import elevenlabs.client  # noqa: F401 - fail here, not mid-batch

    def unload(self) -> None:
        with self._lock:
            self._client = self._client_for = None
            self._kept.clear()

    def generate(self, requests: list[Request]) -> list[Result]:
        for r in requests:
            if r.kind not in self.kinds:
                raise ValueError(f"the elevenlabs backend makes dialogue and sfx, not {r.kind}")
        client = self._connect()
        results: list[Result | None] = [self._kept.pop(_memo_key(r), None) for r in requests]
        todo = [i for i, res in enumerate(results) if res is None]
        errors: list[BaseException] = []
        if todo:
            workers = min(len(todo), min(int(_setting(requests[i], "concurrency")) for i in todo))
            with ThreadPoolExecutor(max(1, workers), thread_name_prefix="elevenlabs") as pool:
                futures = {i: pool.submit(self._one, client, requests[i]) for i in todo}
                for i, future in futures.items():
                    try:
                        results[i] = future.result()
                    except Exception as exc:
                        errors.append(exc)
        if errors:
            if len(requests) > 1:
                self._kept.update({_memo_key(r): res for r, res in zip(requests, results) if res is not None})
            raise errors[0]
        return [r for r in results if r is not None]  # every one is set: no errors

    # -- requests ----------------------------------------------------------------------
    def _connect(self) -> Any:
        key = _key()
        if not key:
            raise BackendUnavailable(_no_key())
        digest = hashlib.sha256(key.encode()).hexdigest()
        if digest == self._rejected:
            raise ElevenLabsError(_key_message(401, ""))
        url = os.environ.get(URL_ENV, "").strip() or None
        with self._lock:
            if self._client is None or self._client_for != (digest, url):
                from elevenlabs.client import ElevenLabs

                self._client = ElevenLabs(api_key=key, base_url=url) if url else ElevenLabs(api_key=key)
                self._client_for = (digest, url)
            return self._client

    def _one(self, client: Any, request: Request) -> Result:
        if self._rejected and self._client_for and self._client_for[0] == self._rejected:
            raise ElevenLabsError(_key_message(401, ""))  # another line of the batch found the key bad
        return self._sfx(client, request) if request.kind == "sfx" else self._speak(client, request)

    def _options(self, request: Request) -> dict[str, Any]:
        return {"max_retries": 0, "timeout_in_seconds": float(_setting(request, "timeout"))}

    def _speak(self, client: Any, req: Request) -> Result:
        import numpy as np

        from ..speech.alignment import join, spoken_from_characters
        from ..speech.script import plain_script

        voice_id = str((req.settings or {}).get("voice_id") or "").strip()
        if not voice_id:
            raise ValueError(f"{req.id}: no ElevenLabs voice: set voice_id in the voice table")
        # ElevenLabs reads SSML tags other than <break>/<phoneme> out loud: send the text only.
        script, warnings = plain_script(req, "elevenlabs", MAX_CHARS)
        model = str(_setting(req, "model_id"))
        sr = int(_setting(req, "sample_rate"))
        from elevenlabs.types import VoiceSettings

        settings = VoiceSettings(**voice_settings(req))
        lang = language_code(req, model)
        context = req.context
        pieces = script.pieces
        parts: list[Part] = []
        for i, piece in enumerate(pieces):
            # Continuity: the rest of the line when it is split, else the neighbouring lines.
            before = " ".join(p.spoken for p in pieces[:i]) or _plain(context.get("previous_text"))
            after = " ".join(p.spoken for p in pieces[i + 1:]) or _plain(context.get("next_text"))
            kwargs: dict[str, Any] = dict(text=piece.spoken, model_id=model, voice_settings=settings,
                                          seed=req.seed % SEED_RANGE, output_format=f"pcm_{sr}",
                                          request_options=self._options(req))
            if before:
                kwargs["previous_text"] = before
            if after:
                kwargs["next_text"] = after
            if lang:
                kwargs["language_code"] = lang
            resp = self._call("the speech request", req,
                              partial(client.text_to_speech.convert_with_timestamps, voice_id, **kwargs))
            audio = _pcm(base64.b64decode(resp.audio_base_64 or ""), req.id)
            al = resp.alignment or resp.normalized_alignment
            words = None
            if al and al.characters:
                words = spoken_from_characters(piece.spoken, al.characters, al.character_start_times_seconds,
                                               al.character_end_times_seconds, range(len(piece.spoken) + 1))
            parts.append((audio, words, []))
        audio, words, _ = join(script, parts, sr)
        meta: dict[str, Any] = {"text": script.display, "generator": f"ElevenLabs {model}", "model": model,
                                "voice": voice_id}
        if words is not None:
            meta.update(words=words, timing="measured")
        if warnings:
            meta["warnings"] = warnings
        return Result(audio=np.asarray(audio, dtype=np.float32), sample_rate=sr, meta=meta)

    def _sfx(self, client: Any, req: Request) -> Result:
        if not req.prompt or not req.prompt.strip():
            raise ValueError(f"{req.id}: no prompt for the sound effect")
        duration = req.duration
        if duration is not None and duration > SFX_MAX:
            raise ValueError(f"{req.id}: ElevenLabs sound effects are {SFX_MIN:g}-{SFX_MAX:g} s long; "
                             f"duration {duration:g} s is too long (shorten it, or use another backend)")
        sr = int(_setting(req, "sample_rate"))
        model = str(_setting(req, "sfx_model_id"))
        kwargs: dict[str, Any] = dict(text=req.prompt, model_id=model, output_format=f"pcm_{sr}",
                                      request_options=self._options(req))
        if duration is not None:
            kwargs["duration_seconds"] = round(max(duration, SFX_MIN), 3)
        if req.loop:
            kwargs["loop"] = True
        influence = (req.settings or {}).get("prompt_influence")
        if influence is not None:
            kwargs["prompt_influence"] = float(influence)
        data = self._call("the sound-effect request", req,
                          lambda: b"".join(client.text_to_sound_effects.convert(**kwargs)))
        audio = _pcm(data, req.id)
        if duration is not None and duration < SFX_MIN:  # the service makes 0.5 s at least
            audio = audio[:max(1, round(duration * sr))]
        return Result(audio=audio, sample_rate=sr, meta={"generator": f"ElevenLabs {model}", "model": model})

    def _call(self, what: str, req: Request, fn: Callable[[], Any]) -> Any:
        """``fn()`` with retries on 429, 5xx, timeouts and connection errors."""
        import httpx
        from elevenlabs.core.api_error import ApiError

        last = ""
        for attempt in range(ATTEMPTS):
            wait = None
            try:
                return fn()
            except ApiError as exc:
                status = exc.status_code or 0
                code, message = _detail(exc.body)
                message = _redact(message)
                if code == "quota_exceeded" or (status in (401, 402, 403) and "quota" in message.lower()):
                    raise ElevenLabsError(f"ElevenLabs quota exceeded: {message or 'no credits left'}") from None
                if status == 401:
                    self._rejected = self._client_for[0] if self._client_for else None
                    raise ElevenLabsError(_key_message(status, message)) from None
                if status == 403:
                    raise ElevenLabsError(f"ElevenLabs refused {what} (403): {message or 'forbidden'} "
                                          f"(check {KEY_ENV} and your plan)") from None
                if not (status == 429 or status >= 500 or status in (408, 409)):
                    raise ElevenLabsError(f"ElevenLabs refused {what} ({status}): {message or 'no details'}") from None
                last = f"{status}" + (f" {message}" if message else "")
                wait = _retry_after(exc.headers)
            except httpx.TimeoutException:
                last = f"no answer within {float(_setting(req, 'timeout')):g} s (raise `timeout`?)"
            except httpx.TransportError as exc:
                last = f"cannot connect: {_redact(str(exc)) or type(exc).__name__}"
            if attempt + 1 < ATTEMPTS:
                time.sleep(wait if wait is not None else _backoff(attempt))
        raise ElevenLabsError(f"ElevenLabs: {what} failed {ATTEMPTS} times: {last}")


# -- helpers ---------------------------------------------------------------------------

def _pcm(data: bytes, asset_id: str) -> Any:
    import numpy as np

    data = data[:len(data) - len(data) % 2]
    if not data:
        raise ElevenLabsError(f"{asset_id}: ElevenLabs returned no audio")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768.0)


def _plain(text: str | None) -> str:
    """A neighbouring line as plain text (it may be SSML or hold pause markers)."""
    if not text:
        return ""
    from ..speech.script import display_text

    try:
        return display_text(text, ssml=text.lstrip().startswith("<"))
    except ValueError:
        return text


def _detail(body: Any) -> tuple[str, str]:
    """(status code word, message) from an error body: {"detail": {"status", "message"}},
    {"detail": "..."} or {"detail": [{"msg": ...}]} (validation errors)."""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        return str(detail.get("status") or ""), str(detail.get("message") or detail.get("msg") or "")
    if isinstance(detail, list):
        msgs = [str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail]
        return "", "; ".join(msgs)
    return "", "" if detail is None else str(detail)[:300]


def _redact(text: str) -> str:
    key = _key()
    text = " ".join(str(text).split())  # one line
    return text.replace(key, "***") if key else text


def _key_message(status: int, message: str) -> str:
    return f"ElevenLabs rejected the API key ({status}): check {KEY_ENV}" + (f" ({message})" if message else "")


def _retry_after(headers: Any) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            try:
                return min(max(float(value), 0.0), MAX_DELAY)
            except (TypeError, ValueError):
                return None  # an HTTP date: use the backoff
    return None


def _backoff(attempt: int) -> float:
    return min(BASE_DELAY * 2**attempt, MAX_DELAY) * random.uniform(0.5, 1.5)


def _memo_key(r: Request) -> str:
    return json.dumps({**dataclasses.asdict(r), "base_dir": None}, sort_keys=True, default=str)

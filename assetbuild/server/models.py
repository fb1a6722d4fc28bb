"""Request and response bodies (they make the OpenAPI schema at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..manifest.model import EMOTIONS, SAMPLE_RATES

Emotion = Literal[EMOTIONS]  # type: ignore[valid-type]
SampleRate = Literal[SAMPLE_RATES]  # type: ignore[valid-type]


class Line(BaseModel):
    """One line to speak. Values layer over the served manifest's [defaults] and voice exactly as
    a `[[dialogue]]` entry's would."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"text": "Follow the lanterns.", "voice": "guide", "emotion": "whisper", "format": "ogg"}]})

    text: str = Field(min_length=1, description="The line to speak (`[pause]` markers work as in the manifest).")
    voice: str | None = Field(None, description="A [voices.NAME] of the served manifest.")
    backend: str | None = Field(None, description="Backend of an inline voice (with `settings`), e.g. espeak.")
    settings: dict[str, Any] | None = Field(None, description="Backend settings (as in a [voices.*] table), over "
                                            "`voice`'s own when both are given.")
    emotion: Emotion | None = None
    locale: str | None = Field(None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
                               description="Language of the line; default: the project's first locale.")
    speed: float | None = Field(None, ge=0.25, le=4.0, description="Speaking-rate multiplier (the backend's "
                                "`speed` setting, or its `rate` scaled).")
    format: Literal["wav", "ogg", "opus", "pcm"] = Field("wav", description="pcm: raw 16-bit little-endian samples.")
    sample_rate: SampleRate | None = Field(None, description="Default: the project's sample rate.")
    loudness: float | None = Field(None, ge=-70, le=0, description="Loudness target in LUFS.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class SynthesizeRequest(Line):
    response: Literal["binary", "json"] = Field("binary", description="binary: the audio, metadata in X-* headers; "
                                                "json: the metadata with the audio in base64.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Line] = Field(min_length=1, description="Lines to speak, each as for /tts/synthesize.")


class BatchStatus(BaseModel):
    id: str
    status: Literal["running", "finished"]
    total: int
    completed: int = Field(description="Items done, failed ones included.")
    failed: int
    created: float
    seconds: float | None = None


class BatchResults(BatchStatus):
    items: list[dict[str, Any]] = Field(description="Per item, in order: the JSON /tts/synthesize answers "
                                        "(with `index` and `status` 200), or `{index, status, detail}` for a "
                                        "failed one, or `{index, status: \"pending\"}`.")


class Word(BaseModel):
    text: str
    start: float
    end: float
    span: list[int]


class SynthesizeResult(BaseModel):
    audio: str = Field(description="The audio, base64.")
    format: str
    content_type: str
    duration: float
    sample_rate: int
    channels: int
    sample_format: str | None = None
    processing_time: float = Field(description="Seconds the server spent on the request.")
    real_time_factor: float = Field(description="processing_time / duration.")
    cache: Literal["hit", "processed", "generated"]
    key: str = Field(description="The process-stage cache key.")
    backend: str
    voice: str | None
    locale: str | None
    loudness: float | None
    true_peak: float | None
    text: str | None
    words: list[Word]
    timing: str | None


class BuildState(BaseModel):
    id: int
    status: Literal["idle", "running", "finished", "failed", "error"]
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    progress: dict[str, Any] = {}
    summary: dict[str, Any] | None = None
    error: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    uptime: float
    queue_depth: int
    build: str
    backends_loaded: list[str]
    workers: int
    manifest: str
    manifest_error: str | None


class Backend(BaseModel):
    name: str
    kinds: list[str]
    available: bool
    reason: str | None


class Model(BaseModel):
    """One row of `assetbuild models --json`."""

    name: str
    repo: str
    backend: str
    size: int
    size_text: str
    licence: str
    commercial: bool
    present: dict[str, bool]
    requires: list[str]
    note: str

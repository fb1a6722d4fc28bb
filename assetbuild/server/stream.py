"""WebSocket ``/tts/stream``: input streaming with character alignment, in the shape of
ElevenLabs' ``stream-input`` API (docs/server.md).

The client sends ``{"text": " ", ...options}`` first, then ``{"text": "...", "flush": bool}``
chunks, and ``{"text": ""}`` to close. Text is buffered and cut into pieces as it arrives (see
:func:`split_ready`): each complete sentence (a long one at a clause end) is synthesised at
once, through the same ad-hoc asset, cache and worker pool as ``POST /tts/synthesize``, while
more text comes in; ``flush`` and the close synthesise what is left. Pieces are synthesised
concurrently (a few at a time) and sent in order.

Each piece is answered by one or more messages ``{"audio": base64 16-bit little-endian PCM
at the chosen rate, "alignment": {"chars", "char_start_times_ms", "char_durations_ms"},
"isFinal": false}`` (audio in chunks of at most :data:`CHUNK_SECONDS`; each chunk carries the
characters that start in it), and the stream ends with ``{"isFinal": true}`` and a normal
close. Character times come from the piece's real word timings (the process stage's record
``words``, as a build records them), see :func:`char_times`, offset by the audio already sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import math
import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import adhoc
from .limits import Admission, Limits

OUTPUT_FORMATS = {f"pcm_{rate}": rate for rate in (16000, 22050, 24000, 44100, 48000)}
CHUNK_SECONDS = 1.0  # audio per message at most
CLAUSE_AFTER = 120  # an open sentence this long is cut at its last clause end
MAX_PIECE = 400  # characters per piece at most (cut at a clause end, else between words)
IDLE_TIMEOUT = 20.0  # seconds without a message before the stream is closed as if {"text": ""} came
MAX_IDLE_TIMEOUT = 180.0

_SENTENCE = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\u00bb]*(?=\s)")
_CLAUSE = re.compile(r"[,;:\u2014\u2013\u3001\uff0c]+(?=\s)")
_SPACE = re.compile(r"\s+")


class VoiceSettings(BaseModel):
    """ElevenLabs' ``voice_settings``: ``speed`` is the request's speed; the others tune
    ElevenLabs' own models and are accepted (so clients port over) but change nothing here."""

    model_config = ConfigDict(extra="forbid")

    speed: float | None = Field(None, ge=0.25, le=4.0)
    stability: float | None = None
    similarity_boost: float | None = None
    style: float | None = None
    use_speaker_boost: bool | None = None


class StreamStart(BaseModel):
    """The first message: the voice and output options, and (usually) ``" "``."""

    model_config = ConfigDict(extra="forbid")

    text: str
    flush: bool = False
    voice: str | None = None
    backend: str | None = None
    settings: dict[str, Any] | None = None
    emotion: str | None = None
    locale: str | None = Field(None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    speed: float | None = Field(None, ge=0.25, le=4.0)
    loudness: float | None = Field(None, ge=-70, le=0)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    voice_settings: VoiceSettings | None = None
    output_format: Literal[tuple(OUTPUT_FORMATS)] | None = None  # type: ignore[valid-type]
    generation_config: dict[str, Any] | None = None  # ElevenLabs' chunk schedule: accepted, unused
    try_trigger_generation: bool | None = None  # accepted, unused


class StreamText(BaseModel):
    """Every later message."""

    model_config = ConfigDict(extra="forbid")

    text: str
    flush: bool = False
    try_trigger_generation: bool | None = None
    generation_config: dict[str, Any] | None = None


# -- cutting the text into pieces ---------------------------------------------------------------

def split_ready(text: str, final: bool = False, max_piece: int = MAX_PIECE) -> tuple[list[tuple[str, str]], str]:
    """The pieces ready to synthesise at the start of ``text``, as (whitespace before, piece),
    and the rest (kept for more text). ``final``: the text is complete (flush or close).

    A piece ends at a sentence end followed by whitespace; a sentence still open after
    :data:`CLAUSE_AFTER` characters at its last clause end; anything longer than
    ``max_piece`` between words (or, one word that long, anywhere).
    """
    out: list[tuple[str, str]] = []
    while True:
        body = len(text) - len(text.lstrip())
        if body == len(text):
            return out, text
        cut = _cut(text, body, final, max_piece)
        if cut is None:
            return out, text
        out.append((text[:body], text[body:cut]))
        text = text[cut:]


def _cut(text: str, body: int, final: bool, max_piece: int) -> int | None:
    n, limit = len(text), body + max_piece
    m = _SENTENCE.search(text, body)
    if m and m.end() <= limit:
        return m.end()
    if final and n <= limit:
        return len(text.rstrip())
    if not final and n - body < CLAUSE_AFTER:
        return None
    clauses = [c.end() for c in _CLAUSE.finditer(text, body) if c.end() <= limit]
    if clauses:
        return clauses[-1]
    if not final and n <= limit:
        return None
    spaces = [s.start() for s in _SPACE.finditer(text, body) if body < s.start() <= limit]
    return spaces[-1] if spaces else limit


# -- character times --------------------------------------------------------------------------

def char_times(lead: str, display: str, words: list[dict[str, Any]],
               duration: float) -> tuple[list[str], list[float], list[float]]:
    """(chars, start, end) in seconds for ``lead + display`` over a piece of ``duration``.

    Each word's characters (its ``span`` in ``display``) share the word's time evenly; the
    characters between two words (spaces, punctuation) share the gap between them, those
    before the first word the time from 0 to its start, those after the last word the time
    from its end to ``duration``. Times never go backwards.
    """
    chars = list(lead + display)
    shift = len(lead)
    starts = [0.0] * len(chars)
    ends = [0.0] * len(chars)
    pos, t = 0, 0.0

    def spread(a: int, b: int, t0: float, t1: float) -> None:
        t1 = max(t0, t1)
        for k, i in enumerate(range(a, b)):
            starts[i] = t0 + (t1 - t0) * k / (b - a)
            ends[i] = t0 + (t1 - t0) * (k + 1) / (b - a)

    for w in sorted(words, key=lambda w: (w["span"][0], w["start"])):
        s, e = (int(x) + shift for x in w["span"])
        s, e = max(s, pos), min(max(e, s), len(chars))
        start = max(float(w["start"]), t)
        end = max(float(w["end"]), start)
        if s < pos or s > len(chars):
            continue
        spread(pos, s, t, start)
        spread(s, e, start, end)
        pos, t = max(pos, e), end
    spread(pos, len(chars), t, max(duration, t))
    return chars, starts, ends


def _messages(chars: list[str], starts: list[float], ends: list[float], samples: Any, rate: int,
              offset: int) -> list[dict[str, Any]]:
    """The messages for one piece: its audio in chunks, each with the characters starting in
    it; times in whole ms from the start of the stream (``offset`` samples already sent)."""
    n = len(samples)
    chunk = max(1, int(CHUNK_SECONDS * rate))
    count = max(1, math.ceil(n / chunk))
    base = offset / rate
    groups: list[list[int]] = [[] for _ in range(count)]
    for i, s in enumerate(starts):
        groups[min(count - 1, int(s * rate) // chunk)].append(i)
    out = []
    for j, members in enumerate(groups):
        begin = [round((base + starts[i]) * 1000) for i in members]
        finish = [round((base + ends[i]) * 1000) for i in members]
        audio = samples[j * chunk:(j + 1) * chunk].astype("<i2").tobytes()
        out.append({"audio": base64.b64encode(audio).decode("ascii"),
                    "alignment": {"chars": [chars[i] for i in members], "char_start_times_ms": begin,
                                  "char_durations_ms": [f - b for b, f in zip(begin, finish)]},
                    "isFinal": False})
    return out


# -- the connection -----------------------------------------------------------------------------

class _Closed(Exception):
    pass


@dataclasses.dataclass
class _Piece:
    lead: str
    task: asyncio.Task


async def serve(websocket: Any, synth: Any, admission: Admission, limits: Limits) -> None:
    """The ``/tts/stream`` handler."""
    await websocket.accept()
    query = websocket.query_params
    try:
        idle = min(MAX_IDLE_TIMEOUT, max(1.0, float(query.get("inactivity_timeout") or IDLE_TIMEOUT)))
    except ValueError:
        await _refuse(websocket, 422, "inactivity_timeout must be a number of seconds",
                      [{"loc": ["query", "inactivity_timeout"], "msg": "not a number", "type": "value_error"}])
        return
    try:
        raw = await asyncio.wait_for(_receive(websocket, limits), idle)
        first = StreamStart.model_validate(json.loads(raw))
    except _Closed:
        return
    except TimeoutError:
        await _refuse(websocket, 408, f"no first message within {idle:g} s")
        return
    except (ValueError, ValidationError) as exc:
        await _refuse(websocket, 422, "invalid first message", _detail(exc))
        return
    except _TooLarge as exc:
        await _refuse(websocket, 413, str(exc))
        return
    fmt = first.output_format or query.get("output_format")
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        await _refuse(websocket, 422, f"output_format must be one of {', '.join(OUTPUT_FORMATS)}",
                      [{"loc": ["output_format"], "msg": f"unknown output format {fmt!r}", "type": "literal_error"}])
        return
    speed = first.speed if first.speed is not None else (first.voice_settings.speed if first.voice_settings else None)
    line = adhoc.Line(text="probe", voice=first.voice, backend=first.backend, settings=first.settings,
                      emotion=first.emotion, locale=first.locale, speed=speed, format="pcm",
                      loudness=first.loudness, seed=first.seed)
    try:  # the options checked as /tts/synthesize checks them, before any text comes
        _, manifest = await asyncio.to_thread(adhoc.resolve, synth.project.current(), line)
    except adhoc.RequestProblem as p:
        await _refuse(websocket, p.status, "invalid first message", [dict(d, loc=p.loc) for d in p.detail()])
        return
    rate = OUTPUT_FORMATS[fmt] if fmt else manifest.sample_rate
    session = _Session(websocket, synth, admission, limits, line, rate, max(2, synth.workers))
    await session.run(first, idle)


class _TooLarge(Exception):
    pass


class _Session:
    def __init__(self, websocket: Any, synth: Any, admission: Admission, limits: Limits, line: adhoc.Line,
                 rate: int, parallel: int):
        self.ws, self.synth, self.admission, self.limits = websocket, synth, admission, limits
        self.line, self.rate = line, rate
        self.max_piece = min(MAX_PIECE, limits.max_text_chars)
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()
        self.slots = asyncio.Semaphore(parallel)
        self.tasks: list[asyncio.Task] = []
        self.started = False
        self.sent = 0  # samples sent so far

    async def run(self, first: StreamStart, idle: float) -> None:
        sender = asyncio.create_task(self._send_all())
        buffer = ""
        try:
            message: StreamStart | StreamText = first
            while True:
                text = message.text
                closing = text == "" and message is not first
                buffer += text
                pieces, buffer = split_ready(buffer, final=closing or message.flush, max_piece=self.max_piece)
                await self._submit(pieces)
                if closing:
                    break
                try:
                    raw = await asyncio.wait_for(_receive(self.ws, self.limits), idle)
                    message = StreamText.model_validate(json.loads(raw))
                except TimeoutError:  # as if the client had closed the input
                    message = StreamText(text="")
                except (ValueError, ValidationError) as exc:
                    await self.outbox.put(("error", _error(422, "invalid message", _detail(exc))))
                    break
                except _TooLarge as exc:
                    await self.outbox.put(("error", _error(413, str(exc))))
                    break
            await self.outbox.put(None)
            await sender
        except (_Closed, asyncio.CancelledError):
            pass  # the client went away: stop (running syntheses finish into the cache)
        except Exception as exc:  # sending failed: the connection is gone (anything else is logged)
            from starlette.websockets import WebSocketDisconnect

            if not isinstance(exc, WebSocketDisconnect):
                logging.getLogger("assetbuild.server").warning("/tts/stream: %s", exc, exc_info=True)
                with contextlib.suppress(Exception):
                    await self.ws.close(1011)
        finally:
            sender.cancel()
            for task in self.tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await sender

    async def _submit(self, pieces: list[tuple[str, str]]) -> None:
        for lead, text in pieces:
            if not self.started:
                lead, self.started = "", True  # the opening " " is not part of the text
            await self.slots.acquire()
            task = asyncio.create_task(asyncio.to_thread(self._synthesize, text))
            task.add_done_callback(lambda _: self.slots.release())
            self.tasks.append(task)
            await self.outbox.put(_Piece(lead, task))

    def _synthesize(self, text: str) -> tuple[dict[str, Any], Any] | dict[str, Any]:
        """(record, samples at the output rate), or an error message (in a worker thread)."""
        from .errors import BackendFailure, ProcessingFailure, Timeout

        self.admission.admit(1, force=True)
        start = time.perf_counter()
        try:
            out = self.synth.synthesize(dataclasses.replace(self.line, text=text))
        except adhoc.RequestProblem as p:
            return _error(p.status, "invalid text", p.detail(), piece=text)
        except BackendFailure as exc:
            return _error(502, str(exc), backend=exc.backend, cause=exc.cause, piece=text)
        except Timeout as exc:
            return _error(504, str(exc), piece=text)
        except ProcessingFailure as exc:
            return _error(500, f"processing failed: {exc}", piece=text)
        except Exception as exc:  # never end the stream on one piece
            return _error(500, f"{type(exc).__name__}: {exc}", piece=text)
        finally:
            self.admission.release(1, time.perf_counter() - start)
        return out.record, _resampled(out.audio, out.record.sample_rate, out.record.channels,
                                      self.rate)

    async def _send_all(self) -> None:
        while True:
            item = await self.outbox.get()
            if item is None:
                await self.ws.send_json({"isFinal": True})
                await self.ws.close(1000)
                return
            if isinstance(item, tuple):  # a bad message: say so and close
                await self.ws.send_json(item[1])
                await self.ws.close(1008)
                return
            result = await item.task
            if isinstance(result, dict):
                await self.ws.send_json(result)
                continue
            record, samples = result
            duration = len(samples) / self.rate
            chars, starts, ends = char_times(item.lead, record.text or "", record.words or [],
                                             duration)
            for message in _messages(chars, starts, ends, samples, self.rate, self.sent):
                await self.ws.send_json(message)
            self.sent += len(samples)


def _resampled(pcm: bytes, rate: int, channels: int, to: int) -> Any:
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels)
    if rate == to or len(samples) == 0:
        return samples
    import soxr

    return soxr.resample(samples, rate, to)


async def _receive(websocket: Any, limits: Limits) -> str:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise _Closed()
    data = message.get("text")
    if data is None:
        data = (message.get("bytes") or b"").decode("utf-8", "replace")
    if len(data) > limits.max_body_bytes:
        raise _TooLarge(f"message larger than {limits.max_body_bytes} bytes")
    return data


def _error(code: int, text: str, detail: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"error": text, "code": code}
    if detail:
        out["detail"] = detail
    out.update(extra)
    return out


def _detail(exc: Exception) -> list[dict[str, Any]]:
    if isinstance(exc, ValidationError):
        return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return [{"loc": [], "msg": f"not a JSON object: {exc}", "type": "json_invalid"}]


async def _refuse(websocket: Any, code: int, text: str, detail: list[dict[str, Any]] | None = None) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_json(_error(code, text, detail))
        await websocket.close(1008)

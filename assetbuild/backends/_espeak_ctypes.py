"""ctypes binding for the part of eSpeak NG's ``speak_lib.h`` the espeak backend uses.

The shared library and its data come from the ``espeakng-loader`` wheel; no system eSpeak
and no ``espeak`` binary is involved. Importing this module loads nothing: the library is
opened by :meth:`Engine.open`.

eSpeak keeps one global state per process (one callback, one voice, one set of parameters),
so there is one :class:`Engine` per process and every call into it is serialised by
``LOCK``.

Determinism: eSpeak NG does not give the same samples twice for the same text within one
process (internal state carries over from one synthesis to the next, and neither
re-initialising nor seeding resets it), while a fresh process always reproduces the first
synthesis exactly. :meth:`Engine.synth_forked` exploits that: the process that opened the
engine never synthesises itself; each line is spoken by a forked child, whose state is a
copy of the pristine parent's, and comes back through a pipe. That costs about 10 ms a line.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import threading
import warnings
from typing import Any

from ..errors import AssetbuildError

# Python 3.12+ warns on fork() in a multi-threaded process. The child here only calls into
# eSpeak, writes to a pipe and _exit()s, which is safe.
warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning,
                        module=r"assetbuild\.backends\._espeak_ctypes")

# espeak_AUDIO_OUTPUT
AUDIO_OUTPUT_PLAYBACK, AUDIO_OUTPUT_RETRIEVAL, AUDIO_OUTPUT_SYNCHRONOUS, AUDIO_OUTPUT_SYNCH_PLAYBACK = 0, 1, 2, 3
# espeak_POSITION_TYPE
POS_CHARACTER, POS_WORD, POS_SENTENCE = 1, 2, 3
# espeak_Initialize options
espeakINITIALIZE_PHONEME_EVENTS = 0x0001
espeakINITIALIZE_PHONEME_IPA = 0x0002
espeakINITIALIZE_DONT_EXIT = 0x8000
# espeak_Synth flags
espeakCHARS_AUTO, espeakCHARS_UTF8 = 0, 1
espeakSSML = 0x10
espeakPHONEMES = 0x100  # [[...]] in the text is phoneme input
# espeak_PARAMETER
espeakRATE, espeakVOLUME, espeakPITCH, espeakRANGE = 1, 2, 3, 4
# espeak_ERROR
EE_OK, EE_INTERNAL_ERROR, EE_BUFFER_FULL, EE_NOT_FOUND = 0, -1, 1, 2
# espeak_EVENT_TYPE
(EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_SENTENCE, EVENT_MARK, EVENT_PLAY, EVENT_END,
 EVENT_MSG_TERMINATED, EVENT_PHONEME, EVENT_SAMPLERATE) = range(9)


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in characters of the input
        ("length", ctypes.c_int),  # in characters
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample offset from the start of the synthesis
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))

LOCK = threading.RLock()


class VoiceError(AssetbuildError, ValueError):
    """The requested voice does not exist."""


class SynthError(AssetbuildError, RuntimeError):
    """eSpeak failed to speak a line."""


# One event as sent back: (type, text_position, length, sample, phoneme symbol or None).
Event = tuple[int, int, int, int, "str | None"]


class Engine:
    """The process-wide eSpeak NG instance (see the module docstring)."""

    def __init__(self) -> None:
        self.lib: Any = None
        self.sample_rate = 0
        self.version = ""
        self._chunks: list[bytes] = []
        self._events: list[Event] = []
        self._callback = _CALLBACK(self._on_synth)  # kept alive as long as the engine

    # -- set-up ------------------------------------------------------------------------
    def open(self, lib_path: str, data_path: str) -> None:
        lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
        lib.espeak_GetCurrentVoice.argtypes = []
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_Terminate.argtypes = []
        lib.espeak_Terminate.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p

        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
                                     espeakINITIALIZE_DONT_EXIT | espeakINITIALIZE_PHONEME_EVENTS)
        if rate <= 0:
            raise SynthError(f"eSpeak NG failed to initialise (data folder {data_path})")
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib
        self.sample_rate = rate
        self.version = (lib.espeak_Info(None) or b"").decode("utf-8", "replace")

    def close(self) -> None:
        if self.lib is not None:
            try:
                self.lib.espeak_Terminate()
            finally:
                self.lib = None

    # -- synthesis ---------------------------------------------------------------------
    def _on_synth(self, wav, numsamples, events):  # called by eSpeak, same thread
        if wav and numsamples > 0:
            self._chunks.append(ctypes.string_at(wav, numsamples * 2))
        if events:
            i = 0
            while True:
                ev = events[i]
                if ev.type == EVENT_LIST_TERMINATED:
                    break
                if ev.type == EVENT_PHONEME:
                    symbol = ev.id.string.split(b"\0", 1)[0].decode("utf-8", "replace")
                    self._events.append((ev.type, ev.text_position, ev.length, ev.sample, symbol))
                elif ev.type in (EVENT_WORD, EVENT_SENTENCE, EVENT_END):
                    self._events.append((ev.type, ev.text_position, ev.length, ev.sample, None))
                i += 1
        return 0

    def _set_voice(self, voice: str) -> None:
        """Select ``voice`` ("en-us", "en-gb+f3") as the eSpeak NG command line does:
        by voice file name first, else by language."""
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode("utf-8")) == EE_OK:
            return
        base, _, variant = voice.partition("+")
        if base:
            sel = _Voice()
            sel.languages = base.encode("utf-8")
            if lib.espeak_SetVoiceByProperties(ctypes.byref(sel)) == EE_OK:
                current = lib.espeak_GetCurrentVoice()
                ident = current.contents.identifier if current else None
                if not variant:
                    return
                if ident and lib.espeak_SetVoiceByName(ident + b"+" + variant.encode("utf-8")) == EE_OK:
                    return
        raise VoiceError(f"unknown eSpeak voice '{voice}' (try en-us, en-gb, fr, de, es, ...)")

    def synth(self, text: str, voice: str, rate: int, pitch: int, range_: int,
              seed: int = 0, flags: int = 0) -> tuple[bytes, list[Event]]:
        """Speak ``text`` in this process: (16-bit mono samples, events)."""
        lib = self.lib
        if lib is None:
            raise SynthError("eSpeak NG is not loaded")
        # eSpeak seeds its random state from the clock when it initialises; noise sources
        # (whisper, breath) draw from it. Seeding here, per line, makes them reproducible.
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        _libc_srand(seed)
        self._set_voice(voice)
        for param, value in ((espeakRATE, rate), (espeakPITCH, pitch), (espeakRANGE, range_)):
            if lib.espeak_SetParameter(param, int(value), 0) != EE_OK:
                raise SynthError(f"eSpeak rejected parameter {param}={value}")
        data = text.replace("\0", " ").encode("utf-8")
        self._chunks, self._events = [], []
        try:
            err = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8 | flags, None, None)
            if err != EE_OK:
                raise SynthError(f"espeak_Synth failed (error {err})")
            lib.espeak_Synchronize()
            return b"".join(self._chunks), self._events
        finally:
            self._chunks, self._events = [], []

    def synth_forked(self, text: str, voice: str, rate: int, pitch: int, range_: int,
                     seed: int = 0, flags: int = 0) -> tuple[bytes, list[Event]]:
        """Speak ``text`` in a forked child of this (never-synthesising) process.

        Gives byte-identical output for identical input, whatever was spoken before.
        """
        if self.lib is None:
            raise SynthError("eSpeak NG is not loaded")
        r, w = os.pipe()
        try:
            pid = os.fork()
        except BaseException:
            os.close(r)
            os.close(w)
            raise
        if pid == 0:  # child: never returns
            code = 1
            try:
                os.close(r)
                try:
                    payload: tuple = ("ok", self.synth(text, voice, rate, pitch, range_, seed, flags))
                except BaseException as exc:
                    payload = ("error", isinstance(exc, VoiceError), f"{type(exc).__name__}: {exc}"
                               if not isinstance(exc, (VoiceError, SynthError)) else str(exc))
                view = memoryview(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
                while view:
                    view = view[os.write(w, view):]
                code = 0
            finally:
                os._exit(code)
        # parent: read everything before waiting, or a large result would block the child
        os.close(w)
        parts: list[bytes] = []
        try:
            while True:
                chunk = os.read(r, 1 << 20)
                if not chunk:
                    break
                parts.append(chunk)
        except BaseException:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            os.waitpid(pid, 0)
            raise
        finally:
            os.close(r)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        try:
            payload = pickle.loads(b"".join(parts))
        except Exception:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            raise SynthError(f"eSpeak synthesis process {how} without a result") from None
        if payload[0] == "error":
            raise (VoiceError if payload[1] else SynthError)(payload[2])
        return payload[1]


_engine: Engine | None = None


def _libc_srand(seed: int) -> None:
    try:
        libc = ctypes.CDLL(None) if os.name != "nt" else ctypes.cdll.msvcrt
        libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
    except (OSError, AttributeError):  # no libc to seed: noise voices stay unseeded
        pass


def engine(lib_path: str, data_path: str) -> Engine:
    """The opened process-wide engine (opened on first use). Call with ``LOCK`` held."""
    global _engine
    if _engine is None or _engine.lib is None:
        eng = Engine()
        eng.open(lib_path, data_path)
        _engine = eng
    return _engine


def close() -> None:
    global _engine
    with LOCK:
        if _engine is not None:
            _engine.close()
            _engine = None

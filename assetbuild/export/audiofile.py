"""Write mastered audio to engine-ready files: WAV (with loop points), FLAC, Ogg Vorbis, Ogg Opus.

Output is byte-deterministic: the same audio and settings give the same file bytes. libsndfile
is not, on its own, in two places, both patched here after it writes:

* Ogg (Vorbis and Opus): every write picks a random Ogg stream serial number (seeded from the
  clock), which also changes every page's CRC. The encoded audio itself is deterministic. The
  serial is replaced with one derived from the file's content and the page CRCs are recomputed.
* WAV FLOAT: the ``PEAK`` chunk carries a wall-clock timestamp; it is zeroed.

Loop points for WAV go in a RIFF ``smpl`` chunk (one forward loop, end frame inclusive) plus a
``cue `` chunk with one cue point at the loop start, appended after libsndfile's chunks.
:func:`read_loop` and :func:`riff_chunks` read them back (libsndfile reads them too, but
python-soundfile has no API for them).
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import soundfile as sf

from ..manifest.model import EXTENSIONS, OPUS_RATES

__all__ = ["EXTENSIONS", "FORMATS", "OPUS_RATES", "read_loop", "riff_chunks", "write_audio"]

#: format -> (libsndfile major format, {bit_depth: subtype}); lossy formats ignore bit_depth.
FORMATS: dict[str, tuple[str, dict[int, str] | str]] = {
    "wav": ("WAV", {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}),
    "flac": ("FLAC", {16: "PCM_16", 24: "PCM_24"}),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
}

_SMPL_HEADER = struct.Struct("<9I")  # manufacturer .. sampler data size
_SMPL_LOOP = struct.Struct("<6I")  # cue id, type, start, end (inclusive), fraction, play count
_CUE_POINT = struct.Struct("<2I4s3I")  # id, position, chunk id, chunk start, block start, offset
_CUE_ID = 1
_MIDI_UNITY_NOTE = 60


def _subtype(format: str, bit_depth: int) -> tuple[str, str]:
    if format not in FORMATS:
        raise ValueError(f"unknown audio format {format!r}; expected one of {', '.join(FORMATS)}")
    major, subtypes = FORMATS[format]
    if isinstance(subtypes, str):
        return major, subtypes
    if bit_depth not in subtypes:
        depths = ", ".join(str(d) for d in subtypes)
        raise ValueError(f"{format} cannot be written at {bit_depth} bits; expected one of {depths}")
    return major, subtypes[bit_depth]


def write_audio(path: str | os.PathLike, audio: np.ndarray, sr: int, format: str = "wav",
                bit_depth: int = 16, loop: tuple[int, int] | None = None, ogg_quality: float = 5.0,
                opus_bitrate: int | None = None) -> None:
    """Write ``audio`` (float, ``(frames,)`` or ``(frames, channels)``, in [-1, 1]) to ``path``.

    ``format`` is ``wav`` (``bit_depth`` 16, 24 or 32 = float), ``flac`` (16 or 24), ``ogg``
    (Vorbis, ``ogg_quality`` 0-10 as oggenc's -q) or ``opus`` (only at 8, 12, 16, 24 or 48 kHz;
    ``opus_bitrate`` in kbps, default 64 per channel). ``loop=(start, end)`` with an inclusive
    end frame adds ``smpl`` and ``cue `` chunks (WAV only). Writes ``path`` exactly as given; no
    temp file or rename is done here.
    """
    major, subtype = _subtype(format, bit_depth)
    sr = int(sr)
    if format == "opus" and sr not in OPUS_RATES:
        rates = ", ".join(f"{r // 1000}" for r in OPUS_RATES)
        raise ValueError(f"Opus cannot be written at {sr} Hz; use one of {rates} kHz "
                         f"(resample first, or choose another format)")
    a = np.asarray(audio)
    if a.ndim not in (1, 2) or a.shape[0] == 0:
        raise ValueError(f"audio must be non-empty, shaped (frames,) or (frames, channels), got {a.shape}")
    frames = a.shape[0]
    if loop is not None:
        if format != "wav":
            raise ValueError(f"loop points can only be written to wav, not {format}")
        start, end = (int(v) for v in loop)
        if not 0 <= start <= end < frames:
            raise ValueError(f"loop {loop} is outside the audio's {frames} frames (end is inclusive)")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if subtype.startswith("PCM"):
        a = np.clip(a, -1.0, 1.0)  # libsndfile would wrap, not clip, out-of-range samples
    channels = 1 if a.ndim == 1 else a.shape[1]
    level = None
    if format == "ogg":
        level = _vorbis_level(ogg_quality)
    elif format == "opus":
        level = _opus_level(opus_bitrate or 64 * channels, channels)
    sf.write(os.fspath(path), a, sr, format=major, subtype=subtype, compression_level=level)

    if major == "OGG":
        _rewrite(path, _fix_ogg_serial)
    elif major == "WAV" and (subtype == "FLOAT" or loop is not None):
        _rewrite(path, lambda data: _patch_wav(data, sr, loop))


def _vorbis_level(quality: float) -> float:
    # libsndfile encodes Vorbis at quality (1 - level), on libvorbis' 0..1 scale (oggenc's -q / 10).
    return min(1.0, max(0.0, 1.0 - quality / 10.0))


def _opus_level(kbps: float, channels: int) -> float:
    # libsndfile sets the Opus bitrate from the level linearly: level 0 is 256 kbps per channel,
    # level 1 is 6 kbps per channel (measured with libsndfile 1.2.2: see docs/loudness.md).
    per_channel = kbps / max(1, channels)
    return min(1.0, max(0.0, (256.0 - per_channel) / 250.0))


def _rewrite(path: str | os.PathLike, fix) -> None:
    with open(path, "rb") as f:
        data = f.read()
    fixed = fix(data)
    if fixed != data:
        with open(path, "wb") as f:
            f.write(fixed)


# --- WAV ------------------------------------------------------------------------------------

def riff_chunks(data: bytes | str | os.PathLike) -> list[tuple[str, int, int]]:
    """The top-level chunks of a RIFF/WAVE file (bytes or a path): ``[(id, data offset, size)]``.

    Stops at the first chunk header or body that does not fit in the file or in the RIFF size;
    returns ``[]`` for anything that is not RIFF/WAVE.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        with open(data, "rb") as f:
            data = f.read()
    data = bytes(data)
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return []
    end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    chunks = []
    pos = 12
    while pos + 8 <= end:
        cid, size = struct.unpack_from("<4sI", data, pos)
        if pos + 8 + size > end:
            break
        chunks.append((cid.decode("latin-1"), pos + 8, size))
        pos += 8 + size + (size & 1)
    return chunks


def read_loop(path: str | os.PathLike) -> tuple[int, int] | None:
    """The first loop of a WAV file's ``smpl`` chunk as ``(start, end_inclusive)`` frames, or
    ``None`` when there is no loop (or the file is not a WAV)."""
    with open(path, "rb") as f:
        data = f.read()
    for cid, offset, size in riff_chunks(data):
        if cid != "smpl" or size < _SMPL_HEADER.size:
            continue
        loops = _SMPL_HEADER.unpack_from(data, offset)[7]
        if loops < 1 or size < _SMPL_HEADER.size + _SMPL_LOOP.size:
            return None
        _cue, _type, start, end, _fraction, _count = _SMPL_LOOP.unpack_from(data, offset + _SMPL_HEADER.size)
        return start, end
    return None


def _chunk(cid: bytes, body: bytes) -> bytes:
    return struct.pack("<4sI", cid, len(body)) + body + (b"\0" if len(body) & 1 else b"")


def _loop_chunks(sr: int, start: int, end: int) -> bytes:
    smpl = _SMPL_HEADER.pack(
        0, 0,  # manufacturer, product
        round(1e9 / sr),  # sample period in nanoseconds
        _MIDI_UNITY_NOTE, 0,  # MIDI unity note, pitch fraction
        0, 0,  # SMPTE format, SMPTE offset
        1, 0,  # loop count, sampler data size
    ) + _SMPL_LOOP.pack(_CUE_ID, 0, start, end, 0, 0)  # forward loop, infinite play count
    cue = struct.pack("<I", 1) + _CUE_POINT.pack(_CUE_ID, start, b"data", 0, 0, start)
    return _chunk(b"smpl", smpl) + _chunk(b"cue ", cue)


def _patch_wav(data: bytes, sr: int, loop: tuple[int, int] | None) -> bytes:
    out = bytearray(data)
    chunks = riff_chunks(data)
    if not chunks:
        raise ValueError("libsndfile did not write a RIFF/WAVE file")
    for cid, offset, size in chunks:
        if cid == "PEAK" and size >= 8:
            out[offset + 4:offset + 8] = b"\0\0\0\0"  # timestamp (version, timestamp, peaks...)
    if loop is not None:
        _, last_offset, last_size = chunks[-1]
        del out[last_offset + last_size + (last_size & 1):]  # anything after the last whole chunk
        if last_size & 1 and len(out) < last_offset + last_size + 1:
            out += b"\0"
        out += _loop_chunks(sr, *loop)
    struct.pack_into("<I", out, 4, len(out) - 8)
    return bytes(out)


# --- Ogg ------------------------------------------------------------------------------------

_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04c11db7, MSB first, no init or final xor), via zlib's
    reflected CRC-32 on bit-reversed bytes."""
    raw = zlib.crc32(page.translate(_BITREV), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{raw:032b}"[::-1], 2)


def _ogg_pages(data: bytes) -> list[tuple[int, int]] | None:
    """``[(offset, length)]`` of every page, or ``None`` unless ``data`` is exactly a sequence of
    whole Ogg pages of one logical stream."""
    pages = []
    pos = 0
    serial = None
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS" or pos + 27 > len(data):
            return None
        page_serial = data[pos + 14:pos + 18]
        if serial is not None and page_serial != serial:
            return None
        serial = page_serial
        segments = data[pos + 26]
        header = 27 + segments
        if pos + header > len(data):
            return None
        length = header + sum(data[pos + 27:pos + header])
        if pos + length > len(data):
            return None
        pages.append((pos, length))
        pos += length
    return pages or None


def _fix_ogg_serial(data: bytes) -> bytes:
    """Replace libsndfile's random stream serial with one derived from the content."""
    pages = _ogg_pages(data)
    if pages is None:
        return data  # not a layout we understand: leave it alone
    out = bytearray(data)
    for offset, _ in pages:
        out[offset + 14:offset + 18] = b"\0\0\0\0"
        out[offset + 22:offset + 26] = b"\0\0\0\0"
    serial = struct.pack("<I", zlib.crc32(out))
    for offset, length in pages:
        out[offset + 14:offset + 18] = serial
        struct.pack_into("<I", out, offset + 22, _ogg_crc(bytes(out[offset:offset + length])))
    return bytes(out)

"""Writing audio files: formats and bit depths, WAV loop chunks, RIFF sizes, deterministic bytes."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
import soundfile as sf

from assetbuild.export.audiofile import EXTENSIONS, read_loop, riff_chunks, write_audio

SR = 48000


def audio(frames: int = 9601, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / SR
    x = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None] + 0.05 * rng.standard_normal((frames, channels))
    return x.astype(np.float32)


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def walk_riff(data: bytes) -> list[tuple[bytes, bytes]]:
    """An independent full RIFF walk for the tests: every chunk as (id, body)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    chunks, pos = [], 12
    while pos < len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8:pos + 8 + size]
        assert len(body) == size, f"chunk {cid!r} runs past the end of the file"
        chunks.append((cid, body))
        pos += 8 + size + (size & 1)
    assert pos == len(data)
    return chunks


@pytest.mark.parametrize("format,bit_depth,subtype", [
    ("wav", 16, "PCM_16"), ("wav", 24, "PCM_24"), ("wav", 32, "FLOAT"),
    ("flac", 16, "PCM_16"), ("flac", 24, "PCM_24"),
    ("ogg", 16, "VORBIS"), ("opus", 16, "OPUS"),
])
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip(tmp_path, format, bit_depth, subtype, channels):
    x = audio(channels=channels)
    path = tmp_path / f"a{EXTENSIONS[format]}"
    write_audio(path, x if channels > 1 else x[:, 0], SR, format=format, bit_depth=bit_depth)
    info = sf.info(path)
    assert info.subtype == subtype and info.samplerate == SR and info.channels == channels
    assert info.format == {"wav": "WAV", "flac": "FLAC"}.get(format, "OGG")
    data, sr = sf.read(path, always_2d=True, dtype="float32")
    assert sr == SR and data.shape[1] == channels
    if format in ("wav", "flac"):
        assert data.shape[0] == len(x)
        tolerance = {16: 2.0 ** -15, 24: 2.0 ** -23, 32: 0.0}[bit_depth]
        np.testing.assert_allclose(data, x[:, :channels], atol=tolerance * 1.01)
    else:  # lossy: length within a frame, and still the same signal
        assert abs(data.shape[0] - len(x)) <= 960
        n = min(len(data), len(x))
        corr = np.corrcoef(data[:n, 0], x[:n, 0])[0, 1]
        assert corr > 0.9


def test_pcm_clips_instead_of_wrapping(tmp_path):
    x = np.array([0.0, 1.5, -1.5, 0.5], np.float32)
    write_audio(tmp_path / "c.wav", x, SR, bit_depth=16)
    data, _ = sf.read(tmp_path / "c.wav")
    assert data[1] > 0.99 and data[2] < -0.99


@pytest.mark.parametrize("bit_depth", [16, 24, 32])
@pytest.mark.parametrize("frames", [9601, 9600])  # odd and even data sizes (24-bit mono: odd)
def test_loop_chunks(tmp_path, bit_depth, frames):
    x = audio(frames, channels=1)[:, 0]
    path = tmp_path / "loop.wav"
    write_audio(path, x, SR, format="wav", bit_depth=bit_depth, loop=(0, frames - 1))
    assert read_loop(path) == (0, frames - 1)
    data = path.read_bytes()
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    chunks = dict(walk_riff(data))
    assert [c for c, _ in walk_riff(data)][-2:] == [b"smpl", b"cue "]
    smpl = chunks[b"smpl"]
    assert len(smpl) == 36 + 24
    (manufacturer, product, period, unity, fraction, smpte_format, smpte_offset, loops,
     sampler_data) = struct.unpack_from("<9I", smpl, 0)
    assert period == round(1e9 / SR) and unity == 60 and loops == 1 and sampler_data == 0
    cue_id, kind, start, end, loop_fraction, play_count = struct.unpack_from("<6I", smpl, 36)
    assert (kind, start, end, play_count) == (0, 0, frames - 1, 0)
    cue = chunks[b"cue "]
    assert struct.unpack_from("<I", cue, 0)[0] == 1
    point_id, position, chunk_id, chunk_start, block_start, offset = struct.unpack_from("<2I4s3I", cue, 4)
    assert point_id == cue_id and chunk_id == b"data" and position == offset == 0
    # riff_chunks agrees with the independent walk.
    assert [c for c, _, _ in riff_chunks(data)] == [c.decode() for c, _ in walk_riff(data)]
    # libsndfile still reads the audio.
    back, sr = sf.read(path, dtype="float32")
    assert sr == SR and len(back) == frames


def test_loop_in_the_middle(tmp_path):
    path = tmp_path / "mid.wav"
    write_audio(path, audio(), SR, loop=(100, 5000))
    assert read_loop(path) == (100, 5000)
    cue = dict(walk_riff(path.read_bytes()))[b"cue "]
    assert struct.unpack_from("<2I4s3I", cue, 4)[5] == 100


def test_read_loop_without_loop(tmp_path):
    write_audio(tmp_path / "plain.wav", audio(), SR)
    write_audio(tmp_path / "a.flac", audio(), SR, format="flac")
    assert read_loop(tmp_path / "plain.wav") is None
    assert read_loop(tmp_path / "a.flac") is None
    data = (tmp_path / "plain.wav").read_bytes()
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    assert [c for c, _ in walk_riff(data)] == [b"fmt ", b"data"]


def test_riff_walk_survives_truncated_files(tmp_path):
    path = tmp_path / "t.wav"
    write_audio(path, audio(), SR, loop=(0, 100))
    data = path.read_bytes()
    for cut in (0, 11, 12, 30, len(data) - 30, len(data) - 1):
        (tmp_path / "cut.wav").write_bytes(data[:cut])
        chunks = riff_chunks(data[:cut])
        assert all(offset + size <= cut for _, offset, size in chunks)
        read_loop(tmp_path / "cut.wav")  # no exception


@pytest.mark.parametrize("format,bit_depth", [
    ("wav", 16), ("wav", 24), ("wav", 32), ("flac", 16), ("flac", 24), ("ogg", 16), ("opus", 16),
])
def test_output_is_deterministic(tmp_path, format, bit_depth):
    x = audio()
    loop = (0, len(x) - 1) if format == "wav" else None
    paths = [tmp_path / f"{i}{EXTENSIONS[format]}" for i in range(2)]
    for path in paths:
        write_audio(path, x, SR, format=format, bit_depth=bit_depth, loop=loop)
    assert sha(paths[0]) == sha(paths[1])


def test_ogg_pages_stay_valid(tmp_path):
    """The serial-number rewrite keeps every page's CRC valid (decoders check it)."""
    from assetbuild.export.audiofile import _ogg_crc, _ogg_pages

    for format in ("ogg", "opus"):
        path = tmp_path / f"v{EXTENSIONS[format]}"
        write_audio(path, audio(), SR, format=format)
        data = path.read_bytes()
        pages = _ogg_pages(data)
        assert pages and len({data[o + 14:o + 18] for o, _ in pages}) == 1
        for offset, length in pages:
            page = bytearray(data[offset:offset + length])
            crc = struct.unpack_from("<I", page, 22)[0]
            page[22:26] = b"\0\0\0\0"
            assert _ogg_crc(bytes(page)) == crc


def test_opus_rates(tmp_path):
    with pytest.raises(ValueError, match=r"Opus.*44100"):
        write_audio(tmp_path / "a.opus", audio(), 44100, format="opus")
    write_audio(tmp_path / "b.opus", audio(), 24000, format="opus")
    assert sf.info(tmp_path / "b.opus").samplerate == 24000


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="mp3"):
        write_audio(tmp_path / "a.mp3", audio(), SR, format="mp3")
    with pytest.raises(ValueError, match="flac"):
        write_audio(tmp_path / "a.flac", audio(), SR, format="flac", bit_depth=32)
    with pytest.raises(ValueError, match="loop"):
        write_audio(tmp_path / "a.flac", audio(), SR, format="flac", loop=(0, 10))
    with pytest.raises(ValueError, match="loop"):
        write_audio(tmp_path / "a.wav", audio(100), SR, loop=(0, 100))  # end is inclusive


def test_extensions():
    assert EXTENSIONS == {"wav": ".wav", "flac": ".flac", "ogg": ".ogg", "opus": ".opus"}

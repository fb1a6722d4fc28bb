"""``assetbuild pack`` and ``verify``: a deterministic zip of a built output tree.

The zip holds one folder, ``<name>-<version>/``, with the output tree (audio, sidecars,
assetpack.json, engine folders) and ``SHA256SUMS`` in ``sha256sum`` format. Entries are
sorted and carry a fixed timestamp and permissions, so the same tree gives the same bytes.
The standard library's zipfile is enough for this; only the entry metadata is pinned here.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .metadata import REPORT

SUMS = "SHA256SUMS"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_CHUNK = 1 << 20


@dataclass
class Report:
    """What ``verify`` found: problems are one line each, naming the file."""

    files: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# The build report describes one build on one machine (what was generated or reused there), so
# it is not part of what a pack delivers; with it, the same tree could give different zips.
LEFT_OUT = {REPORT}


def tree_files(root: Path) -> list[str]:
    """Files of an output tree, relative with '/' separators, sorted; hidden files (temp files,
    editor droppings) and the build report are left out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(root)
        out += [(rel / f).as_posix() for f in filenames if not f.startswith(".") and f != SUMS]
    return sorted(f for f in out if f not in LEFT_OUT)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def listed_files(doc: dict[str, Any]) -> dict[str, str | None]:
    """Every file assetpack.json names: path -> its sha256 when recorded (main files), else None."""
    out: dict[str, str | None] = {}
    for r in doc.get("assets", []):
        for path in [*(r.get("files") or {}).values(), *(r.get("subtitles") or {}).values(),
                     *(r.get("lipsync") or {}).values()]:
            out.setdefault(path, None)
        if r.get("file"):
            out[r["file"]] = r.get("sha256")
    for seq in doc.get("sequences", []):
        for path in [seq["file"], *seq.get("stems", {}).values(), *seq.get("subtitles", {}).values()]:
            out.setdefault(path, None)
    return out


def render_sums(sums: dict[str, str]) -> str:
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(sums.items()))


def parse_sums(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, path = line.partition("  ")
            out[path.lstrip("*")] = digest.strip()
    return out


def check(doc: dict[str, Any], sums: dict[str, str]) -> list[str]:
    """Problems between assetpack.json and the files present (by their sums)."""
    problems = []
    for path, digest in sorted(listed_files(doc).items()):
        if path not in sums:
            problems.append(f"{path}: missing (listed in assetpack.json)")
        elif digest and sums[path] != digest:
            problems.append(f"{path}: differs from the sha256 in assetpack.json")
    return problems


def make(root: Path, dest: Path) -> tuple[Path, int]:
    """Zip the output tree ``root`` into ``dest`` (a .zip path); returns (path, files packed).

    Raises ValueError when the tree does not match its assetpack.json (a file missing or changed)."""
    doc = json.loads((root / "assetpack.json").read_text(encoding="utf-8"))
    files = tree_files(root)
    sums = {f: _sha256_file(root / f) for f in files}
    problems = check(doc, sums)
    if problems:
        raise ValueError("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    top = dest.name.removesuffix(".zip")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as z:
            for rel in sorted([*files, SUMS]):
                if rel == SUMS:
                    z.writestr(_entry(f"{top}/{SUMS}"), render_sums(sums))
                    continue
                with open(root / rel, "rb") as src, z.open(_entry(f"{top}/{rel}"), "w") as out:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest, len(files)


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so the permissions below are read
    info.external_attr = 0o644 << 16
    return info


def verify(path: Path) -> Report:
    """Check a pack from ``make``: every file matches SHA256SUMS, nothing is missing or extra, and
    every file assetpack.json lists is there with its recorded sha256. ``path`` may also be an
    output folder, checked against its assetpack.json alone."""
    if path.is_dir():
        return _verify(_dir_reader(path), tree_files(path), sums_required=False)
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            tops = {PurePosixPath(n).parts[0] for n in names if "/" in n}
            if len(tops) != 1 or any("/" not in n for n in names):
                return Report(problems=[f"{path.name}: expected everything in one top folder"])
            top = tops.pop()

            def read(rel: str) -> Iterable[bytes]:
                with z.open(f"{top}/{rel}") as f:
                    while chunk := f.read(_CHUNK):
                        yield chunk

            return _verify(read, [n.split("/", 1)[1] for n in names], sums_required=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        return Report(problems=[f"{path.name}: not a readable zip ({exc})"])


def _dir_reader(root: Path):
    def read(rel: str) -> Iterable[bytes]:
        with open(root / rel, "rb") as f:
            while chunk := f.read(_CHUNK):
                yield chunk
    return read


def _verify(read, present: list[str], sums_required: bool) -> Report:
    report = Report()
    actual: dict[str, str] = {}
    for rel in sorted(set(present) - {SUMS}):
        h = hashlib.sha256()
        for chunk in read(rel):
            h.update(chunk)
        actual[rel] = h.hexdigest()
    report.files = len(actual)
    if SUMS in present:
        try:
            sums = parse_sums(b"".join(read(SUMS)).decode("utf-8"))
        except UnicodeDecodeError:
            report.problems.append(f"{SUMS}: not UTF-8 text")
            return report
        for rel, digest in sorted(sums.items()):
            if rel not in actual:
                report.problems.append(f"{rel}: missing (listed in {SUMS})")
            elif actual[rel] != digest:
                report.problems.append(f"{rel}: changed (sha256 differs from {SUMS})")
        report.problems += [f"{rel}: not listed in {SUMS}" for rel in sorted(set(actual) - set(sums))]
    elif sums_required:
        report.problems.append(f"{SUMS}: missing")
    if "assetpack.json" not in actual:
        report.problems.append("assetpack.json: missing")
        return report
    try:
        doc = json.loads(b"".join(read("assetpack.json")).decode("utf-8"))
        listed = check(doc, actual)
    except (ValueError, TypeError, AttributeError, KeyError):  # not JSON, or not the shape we write
        report.problems.append("assetpack.json: not a valid assetpack.json")
        return report
    named = {p.split(":", 1)[0] for p in report.problems}
    report.problems += [p for p in listed if p.split(":", 1)[0] not in named]
    return report

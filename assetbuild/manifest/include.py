"""Split manifests: ``include = ["chapters/*.toml", ...]`` merges other files into the main one.

Included files hold entries, voices and lexicon words (and may include further files); the
project-wide tables stay in the main manifest. Paths and globs are relative to the including
file, must stay inside the project (the main manifest's folder) unless ``[project]
include_outside_project = true``, and may not form a cycle. Every entry remembers the file it
came from, so problems name that file.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Problem, did_you_mean
from .model import KINDS

ENTRY_TABLES = KINDS + ("sequence",)
INCLUDED_TABLES = ("include", "voices", "lexicon") + ENTRY_TABLES
_MAGIC = set("*?[")


@dataclass
class Entry:
    value: Any  # the entry's table as written
    file: str  # the file it came from, as shown in messages
    index: int  # its position among the file's entries of that kind, from 1


@dataclass
class Sources:
    raw: dict[str, Any]  # the main manifest's tables, without `include` and the entry arrays
    entries: dict[str, list[Entry]] = field(default_factory=dict)
    voice_files: dict[str, str] = field(default_factory=dict)  # voice name -> file it came from
    files: list[Path] = field(default_factory=list)  # every manifest file read, the main one first
    patterns: list[str] = field(default_factory=list)  # absolute include globs (new files may match)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    digest: str = ""  # sha256 over every file's path and bytes


def read(path: Path, shown: str, raw: dict[str, Any], data: bytes) -> Sources:
    """Merge the main manifest (already parsed as ``raw`` from ``data``) with what it includes."""
    root = path.parent
    project = raw["project"] if isinstance(raw.get("project"), dict) else {}
    outside_ok = project.get("include_outside_project") is True
    main = {k: v for k, v in raw.items() if k != "include" and k not in ENTRY_TABLES}
    src = Sources(raw=main, entries={k: [] for k in ENTRY_TABLES}, files=[path])
    digest = hashlib.sha256()
    seen: set[Path] = {path}

    def visit(file: Path, file_shown: str, table: dict[str, Any], data: bytes, stack: list[Path]) -> None:
        digest.update(os.fsencode(os.path.relpath(file, root)) + b"\0" + data + b"\0")
        for kind in ENTRY_TABLES:
            items = table.get(kind, [])
            if not isinstance(items, list):
                src.problems.append(Problem(file_shown, "", f"expected an array of tables ([[{kind}]]), "
                                            f"got {type(items).__name__}", kind))
                continue
            src.entries[kind] += [Entry(e, file_shown, i) for i, e in enumerate(items, 1)]
        if file != path:
            _merge_included(src, table, file_shown)
        for inc_path, inc_shown in _resolve(src, file, file_shown, table.get("include", []), root, outside_ok):
            if inc_path in stack:
                chain = " -> ".join(os.path.relpath(p, root) for p in [*stack, inc_path])
                src.problems.append(Problem(file_shown, "", f"forms a cycle: {chain}", "include"))
                continue
            if inc_path in seen:  # reached twice through different files: merged once
                continue
            seen.add(inc_path)
            src.files.append(inc_path)
            try:
                inc_data = inc_path.read_bytes()
                inc_table = tomllib.loads(inc_data.decode("utf-8"))
            except OSError as exc:
                src.problems.append(Problem(inc_shown, "", f"cannot read: {exc.strerror}"))
                continue
            except UnicodeDecodeError:
                src.problems.append(Problem(inc_shown, "", "is not UTF-8 text"))
                continue
            except tomllib.TOMLDecodeError as exc:
                src.problems.append(Problem(inc_shown, "", f"TOML syntax error: {exc}"))
                continue
            visit(inc_path, inc_shown, inc_table, inc_data, [*stack, inc_path])

    visit(path, shown, raw, data, [path])
    src.digest = digest.hexdigest()
    return src


def _merge_included(src: Sources, table: dict[str, Any], shown: str) -> None:
    for key in table:
        if key in ("project", "defaults", "profiles", "export"):
            src.problems.append(Problem(shown, "", f"[{key}] belongs in the main manifest; an included file "
                                        "holds entries, [voices] and [lexicon]"))
        elif key not in INCLUDED_TABLES:
            src.problems.append(Problem(shown, "", "unknown top-level key" + did_you_mean(key, INCLUDED_TABLES), key))
    voices = table.get("voices", {})
    if not isinstance(voices, dict):
        src.problems.append(Problem(shown, "", "expected a table of voices ([voices.NAME])", "voices"))
    elif isinstance(src.raw.setdefault("voices", {}), dict):  # a bad main table is reported by the validator
        mine = src.raw["voices"]
        for name, voice in voices.items():
            if name in mine:
                other = src.voice_files.get(name, "the main manifest")
                src.problems.append(Problem(shown, f"[voices.{name}]", f"is also defined in {other}"))
                continue
            mine[name] = voice
            src.voice_files[name] = shown
    lexicon = table.get("lexicon", {})
    if not isinstance(lexicon, dict):
        src.problems.append(Problem(shown, "", "expected a table of words ([lexicon])", "lexicon"))
    elif isinstance(src.raw.setdefault("lexicon", {}), dict):
        mine = src.raw["lexicon"]
        for word, entry in lexicon.items():
            if word in mine and mine[word] != entry:
                src.problems.append(Problem(shown, "[lexicon]", "is already defined differently", word))
            mine[word] = entry


def _resolve(src: Sources, file: Path, shown: str, value: Any, root: Path,
             outside_ok: bool) -> list[tuple[Path, str]]:
    """The files an ``include`` array names, in order (each glob's matches sorted)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        src.problems.append(Problem(shown, "", 'expected an array of paths or globs, e.g. ["chapters/*.toml"]',
                                    "include"))
        return []
    base = file.parent
    shown_base = Path(shown).parent
    out = []
    for pattern in value:
        full = os.path.normpath(base / pattern)
        if _MAGIC & set(pattern):
            src.patterns.append(full)
            matches = sorted(Path(m) for m in glob.glob(full, recursive=True) if os.path.isfile(m))
            if not matches:
                src.warnings.append(Problem(shown, "", f"'{pattern}' matches no files", "include"))
        else:
            matches = [Path(full)]
            if not matches[0].is_file():
                src.problems.append(Problem(shown, "", f"'{pattern}': no such file", "include"))
                continue
        for m in matches:
            resolved = m.resolve()
            if not outside_ok and not resolved.is_relative_to(root):
                src.problems.append(Problem(shown, "", f"'{pattern}' reaches {resolved}, outside the project "
                                            "(allow it with [project] include_outside_project = true)", "include"))
                continue
            out.append((resolved, str(shown_base / os.path.relpath(m, base))))
    return out

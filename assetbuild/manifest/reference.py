"""Generated parts of the manifest reference: the key tables in docs/manifest.md and the JSON Schema.

Regenerate both after changing the field tables::

    python -m assetbuild.manifest.reference --write

``tests/test_docs.py`` fails when either is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..fields import Field
from .model import (
    BUILD_FIELDS,
    BUILTIN_DEFAULTS,
    CACHE_FIELDS,
    COMMON_FIELDS,
    DEFAULT_PREFIXES,
    EXPORT_FIELDS,
    KIND_FIELDS,
    KINDS,
    PROFILE_FIELDS,
    PROJECT_FIELDS,
    VOICE_FIELDS,
)

BEGIN, END = "<!-- BEGIN GENERATED: python -m assetbuild.manifest.reference --write -->", "<!-- END GENERATED -->"
_TYPES = {"strs": "str or strlist", "text": "str or table"}
STAGE_NOTE = {"generate": "regenerates", "process": "re-processes", "meta": "metadata only"}


def _range(f: Field) -> str:
    if f.choices is not None:
        return ", ".join(f"`{c}`" for c in f.choices)
    parts = []
    if f.minimum is not None:
        parts.append(f"{'>' if f.exclusive_minimum else '>='} {f.minimum:g}")
    if f.maximum is not None:
        parts.append(f"<= {f.maximum:g}")
    return ", ".join(parts)


def _table(fields: tuple[Field, ...] | list[Field], defaults: dict | None = None) -> str:
    rows = ["| key | type | allowed | default | on change | description |", "|---|---|---|---|---|---|"]
    for f in fields:
        default = (defaults or {}).get(f.name, f.default)
        value = str(default).lower() if isinstance(default, bool) else default
        shown = "required" if f.required else ("" if default is None else f"`{value}`")
        rows.append(f"| `{f.name}` | {_TYPES.get(f.type, f.type)} | {_range(f)} | {shown} | {STAGE_NOTE[f.stage]} "
                    f"| {f.doc} |")
    return "\n".join(rows)


def render() -> str:
    from .. import backends  # the built-in backends' settings are part of the reference

    out = [BEGIN, "", "### `[project]`", "", _table(PROJECT_FIELDS), "",
           "### Keys of every entry", "", "Built-in defaults per kind:", "",
           "| kind | backend | loudness | channels | duration | trim | highpass | fade_in | fade_out |",
           "|---|---|---|---|---|---|---|---|---|"]
    for kind in KINDS:
        d = BUILTIN_DEFAULTS[kind]
        out.append(f"| {kind} | `{d['backend']}` | {d['loudness']:g} | {d['channels']} | "
                   f"{d.get('duration', 'natural length') if kind != 'dialogue' else 'length of the speech'} | "
                   f"{str(d['trim']).lower()} | {d['highpass']:g} | {d['fade_in']:g} | {d['fade_out']:g} |")
    out += ["", _table(COMMON_FIELDS), ""]
    for kind in KINDS:
        out += [f"### `[[{kind}]]`", "", _table(KIND_FIELDS[kind]), ""]
    out += ["### `[profiles.NAME]`", "",
            "A profile is another delivery of the same generated audio (`assetbuild build --profile NAME`). "
            "Besides the keys below it may set any key marked *re-processes* above, for every kind, or for "
            "one kind in `[profiles.NAME.KIND]`; its values win over the entries' own.", "",
            _table(PROFILE_FIELDS), ""]
    from .sequence import EVENT_FIELDS, SCENE_FIELDS, SEQUENCE_FIELDS

    out += ["### `[[sequence]]`", "", "A timeline mixed from built assets ([sequences.md](sequences.md)). "
            "`buses = { music = -4.0 }` sets bus gains in dB (dialogue, music, sfx, ambience; default 0).", "",
            _table(SEQUENCE_FIELDS), "", "`[[sequence.events]]`, each placing one asset (or an inline entry, "
            "`sfx = { id = \"...\", prompt = \"...\" }`, of any kind):", "", _table(EVENT_FIELDS), "",
            "`[[sequence.scene]]` blocks (instead of `events`), each with its own `[[sequence.scene.events]]`:", "",
            _table(SCENE_FIELDS), ""]
    out += ["### `[export]`", "", "Engine exports (see [engines.md](engines.md)).", "", _table(EXPORT_FIELDS), "",
            "`[export.prefixes]` sets the engine-side name of each kind's assets (prefix + id); defaults: "
            + ", ".join(f"`{k} = \"{v}\"`" for k, v in DEFAULT_PREFIXES.items()) + ".", ""]
    out += ["### `[cache]`", "", "A remote cache the team shares (see [scale.md](scale.md)).", "",
            _table(CACHE_FIELDS), "",
            "`[cache.options]` passes storage options to the remote's filesystem (for S3-compatible stores "
            "`endpoint_url`, `client_kwargs`, ...). Credentials are refused there: they come from the "
            "environment, profiles or instance roles.", ""]
    out += ["### `[build]`", "", "Where the jobs run (see [scale.md](scale.md)).", "", _table(BUILD_FIELDS), ""]
    out += ["### `[voices.NAME]` and backend settings", "",
            "A voice table holds `backend` plus that backend's settings. The same settings may also be "
            "set on a single entry, or in `[defaults]`, to override the voice.", "", _table(VOICE_FIELDS), ""]
    for name in backends.BUILTIN:
        cls = backends.get(name)
        if cls.settings:
            out += [f"Settings of `{name}` ({', '.join(sorted(cls.kinds))}):", "", _table(cls.settings), ""]
    out.append(END)
    return "\n".join(out)


def render_emotions() -> str:
    from ..backends.espeak import EMOTION_DELIVERY

    rows = [BEGIN, "", "| emotion | rate | pitch | range | variant |", "|---|---|---|---|---|"]
    for name, d in EMOTION_DELIVERY.items():
        rng = "voice's own" if d["range"] is None else str(d["range"])
        pitch = f"{d['pitch']:+d}" if d["pitch"] else "0"
        rows.append(f"| `{name}` | x{d['rate']:.2f} | {pitch} | {rng} | {d['variant'] or ''} |")
    return "\n".join(rows + ["", END])


def splice(doc: str, section=render) -> str:
    """``doc`` with the generated section replaced by the current one."""
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + section() + tail


def main(argv: list[str]) -> int:
    from .schema import render as render_schema

    root = Path(__file__).resolve().parents[2]
    targets = {root / "docs" / "manifest.md": lambda text: splice(text),
               root / "docs" / "backends.md": lambda text: splice(text, render_emotions),
               root / "manifests" / "assetbuild.schema.json": lambda text: render_schema()}
    stale = []
    for path, make in targets.items():
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        new = make(old)
        if new != old:
            stale.append(path)
            if "--write" in argv:
                path.write_text(new, encoding="utf-8")
    for path in stale:
        print(("updated " if "--write" in argv else "out of date: ") + str(path))
    return 1 if stale and "--write" not in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""JSON Schema of the manifest, generated from the same field tables the validator uses.

Published as ``manifests/assetbuild.schema.json`` for TOML editors (Taplo / Even Better TOML);
``tests/test_schema.py`` keeps the file in sync with this code.
"""

from __future__ import annotations

import json
from typing import Any

from ..fields import Field
from .model import (
    BUILD_FIELDS,
    CACHE_FIELDS,
    DEFAULT_PREFIXES,
    EXPORT_FIELDS,
    ID_PATTERN,
    KINDS,
    PREFIX_PATTERN,
    PROFILE_FIELDS,
    PROFILE_NAME,
    PROJECT_FIELDS,
    RESERVED_NAMES,
    SECRET_OPTIONS,
    VOICE_FIELDS,
    entry_fields,
    profile_fields,
)

SCHEMA_ID = "https://assetbuild.dev/schema/assetbuild.schema.json"


def _props(fields: list[Field] | tuple[Field, ...]) -> dict[str, Any]:
    return {f.name: f.json_schema() for f in fields}


def _settings(kinds: tuple[str, ...]) -> dict[str, list[tuple[str, Field]]]:
    """Setting name -> (backend, field) for each built-in backend of ``kinds`` that declares it."""
    from .. import backends  # the settings the built-in backends declare

    out: dict[str, list[tuple[str, Field]]] = {}
    for name in backends.BUILTIN:  # only built-ins: the published file must not depend on plugins
        cls = backends.get(name)
        if cls.kinds & set(kinds):
            for f in cls.settings:
                out.setdefault(f.name, []).append((name, f))
    return out


def _setting_props(kinds: tuple[str, ...]) -> dict[str, Any]:
    """Backend settings as schema properties. Backends that share a name with different meanings
    (eSpeak's ``rate`` in words per minute, Piper's as a speed factor) get ``anyOf``: the schema
    cannot know the backend, the validator does."""
    props: dict[str, Any] = {}
    for key, owners in _settings(kinds).items():
        shapes: list[dict[str, Any]] = []
        docs: list[str] = []
        for backend, f in owners:
            shape = {k: v for k, v in f.json_schema().items() if k not in ("description", "default")}
            if shape not in shapes:
                shapes.append(shape)
            docs.append(f"{backend}: {f.doc}")
        if len(owners) == 1:
            props[key] = owners[0][1].json_schema()
        elif len(shapes) == 1:
            props[key] = {**shapes[0], "description": " | ".join(docs)}
        else:
            props[key] = {"anyOf": shapes, "description": " | ".join(docs)}
    return props


def build_schema() -> dict[str, Any]:
    from .. import backends

    kinds_defs: dict[str, Any] = {}
    for kind in KINDS:
        # Entry keys come last so they win over a backend setting of the same name (`voice`).
        fields = list(entry_fields(kind).values())
        props = _setting_props((kind,)) | _props(fields)
        props["id"]["pattern"] = "^" + ID_PATTERN.pattern + "$"
        props["id"]["not"] = {"enum": sorted(RESERVED_NAMES)}
        props["backend"]["enum"] = sorted(backends.BUILTIN)
        kinds_defs[kind] = {
            "type": "object",
            "additionalProperties": False,
            "required": [f.name for f in fields if f.required],
            "properties": props,
        }
    defaults_props: dict[str, Any] = {}
    for kind in KINDS:
        defaults_props.update({k: v for k, v in kinds_defs[kind]["properties"].items() if k != "id"})
    kind_defaults = {
        kind: {"type": "object", "additionalProperties": False,
               "properties": {k: v for k, v in kinds_defs[kind]["properties"].items() if k != "id"}}
        for kind in KINDS
    }
    voice_settings = _setting_props(("dialogue",))
    voice = {
        "type": "object",
        "additionalProperties": False,
        "properties": _props(list(VOICE_FIELDS)) | voice_settings | {
            "locales": {"type": "object", "description": "The voice's settings per locale.",
                        "additionalProperties": {"type": "object", "additionalProperties": False,
                                                 "properties": voice_settings}}},
    }
    lexicon_entry = {"anyOf": [
        {"type": "string", "minLength": 1, "description": "Respelling to speak instead of the word."},
        {"type": "object", "additionalProperties": False, "minProperties": 1,
         "properties": {"say": {"type": "string", "minLength": 1, "description": "Respelling."},
                        "phonemes": {"type": "string", "minLength": 1,
                                     "description": "Phonemes in the backend's notation (eSpeak: its mnemonics)."}}},
    ]}
    profile = {
        "type": "object", "additionalProperties": False,
        "properties": _props(PROFILE_FIELDS) | _props(list(profile_fields().values())) | {
            kind: {"type": "object", "additionalProperties": False,
                   "properties": _props(list(profile_fields(kind).values()))} for kind in KINDS},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "assetbuild manifest",
        "description": "Game audio assets for `assetbuild build`. See docs/manifest.md.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "project": {"type": "object", "additionalProperties": False, "properties": _props(PROJECT_FIELDS)},
            "defaults": {"type": "object", "additionalProperties": False,
                         "properties": defaults_props | kind_defaults},
            "voices": {"type": "object", "additionalProperties": voice},
            "lexicon": {"type": "object", "description": "Pronunciations: word -> respelling or phonemes.",
                        "additionalProperties": lexicon_entry},
            "profiles": {"type": "object", "description": "Delivery variants: `assetbuild build --profile NAME`.",
                         "propertyNames": {"pattern": "^" + PROFILE_NAME.pattern + "$"},
                         "additionalProperties": profile},
            "include": {"description": "Other manifest files to merge (paths or globs, relative to this file).",
                        "anyOf": [{"type": "string", "minLength": 1},
                                  {"type": "array", "items": {"type": "string", "minLength": 1}}]},
            "sequence": {"type": "array", "items": {"$ref": "#/$defs/sequence"}},
            "export": {"type": "object", "additionalProperties": False, "properties": _props(EXPORT_FIELDS) | {
                "prefixes": {"type": "object", "additionalProperties": False,
                             "description": "Engine-side name prefix per kind (name = prefix + id).",
                             "properties": {k: {"type": "string", "pattern": "^" + PREFIX_PATTERN.pattern + "$",
                                                "default": v} for k, v in DEFAULT_PREFIXES.items()}}}},
            "build": {"type": "object", "additionalProperties": False, "properties": _props(BUILD_FIELDS)},
            "cache": {"type": "object", "additionalProperties": False, "properties": _props(CACHE_FIELDS) | {
                "options": {"type": "object", "description": "Storage options for the remote's filesystem "
                            "(fsspec), e.g. endpoint_url; never credentials.",
                            "propertyNames": {"not": {"enum": sorted(SECRET_OPTIONS)}}}}},
            **{kind: {"type": "array", "items": {"$ref": f"#/$defs/{kind}"}} for kind in KINDS},
        },
        "$defs": kinds_defs | {"sequence": _sequence_schema(kinds_defs)},
    }


def _sequence_schema(kinds_defs: dict[str, Any]) -> dict[str, Any]:
    from .sequence import BUSES, EVENT_FIELDS, SCENE_FIELDS, SEQUENCE_FIELDS

    event = {"type": "object", "additionalProperties": False,
             "properties": _props(EVENT_FIELDS) | {k: {"$ref": f"#/$defs/{k}"} for k in KINDS}}
    events = {"type": "array", "items": event}
    scene = {"type": "object", "additionalProperties": False, "required": ["name"],
             "properties": _props(SCENE_FIELDS) | {"events": events}}
    return {"type": "object", "additionalProperties": False, "required": ["id"],
            "properties": _props(SEQUENCE_FIELDS) | {
                "buses": {"type": "object", "additionalProperties": False, "description": "Bus gains in dB.",
                          "properties": {b: {"type": "number"} for b in BUSES}},
                "events": events, "scene": {"type": "array", "items": scene}}}


def render() -> str:
    return json.dumps(build_schema(), indent=2, sort_keys=False) + "\n"

"""Declarative description of manifest keys and backend settings.

One table of :class:`Field` objects drives the validator, the published JSON Schema, the
manifest reference and which cache stage a key belongs to, so they cannot drift apart. It sits
below both the manifest package (which validates keys) and the backends (which declare their
settings), so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    """The stage whose result a key changes, and so the cache key it is part of."""

    GENERATE = "generate"  # the generated audio: regenerate
    PROCESS = "process"  # only mastering and encoding: re-process the generated audio
    META = "meta"  # only the metadata (assetpack.json): nothing runs again


@dataclass(frozen=True)
class Field:
    name: str
    # "str" | "int" | "float" | "bool" | "strlist" | "text" (a string, or a table by locale)
    # | "strs" (a string or an array of strings, normalised to a list; choices apply to each)
    type: str
    doc: str
    required: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[Any, ...] | None = None
    min_length: int | None = None
    stage: Stage = Stage.GENERATE

    def check(self, value: Any) -> tuple[Any, str | None]:
        """Return (normalised value, problem or None)."""
        t = self.type
        if t == "bool":
            if not isinstance(value, bool):
                return value, f"expected true or false, got {_describe(value)}"
        elif t == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return value, f"expected an integer, got {_describe(value)}"
        elif t == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return value, f"expected a number, got {_describe(value)}"
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                return value, "expected a finite number"
        elif t == "str":
            if not isinstance(value, str):
                return value, f"expected a string, got {_describe(value)}"
            if self.min_length and len(value.strip()) < self.min_length:
                return value, "must not be empty"
        elif t == "strlist":
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                return value, f"expected an array of non-empty strings, got {_describe(value)}"
            if len(set(value)) != len(value):
                return value, "has duplicates"
        elif t == "strs":
            items = [value] if isinstance(value, str) else value
            empty_ok = self.min_length == 0  # e.g. `engines = []`: none
            if not isinstance(items, list) or not (items or empty_ok) or not all(isinstance(v, str) for v in items):
                return value, f"expected a string or an array of strings, got {_describe(value)}"
            if len(set(items)) != len(items):
                return value, "has duplicates"
            if self.choices is not None:
                bad = [v for v in items if v not in self.choices]
                if bad:
                    return value, ("expected one of " + ", ".join(_show(c) for c in self.choices)
                                   + f", got {_show(bad[0])}")
            return list(items), None
        elif t == "text":
            if isinstance(value, dict):
                bad = [k for k, v in value.items() if not isinstance(v, str) or not v.strip()]
                if bad:
                    return value, f"expected a non-empty string for locale '{bad[0]}'"
                if not value:
                    return value, "must not be empty"
            elif not isinstance(value, str):
                return value, f"expected a string or a table of strings by locale, got {_describe(value)}"
            elif self.min_length and len(value.strip()) < self.min_length:
                return value, "must not be empty"
        if self.choices is not None and value not in self.choices:
            return value, "expected one of " + ", ".join(_show(c) for c in self.choices) + f", got {_show(value)}"
        if self.minimum is not None:
            if self.exclusive_minimum and not value > self.minimum:
                return value, f"must be greater than {_num(self.minimum)}, got {_num(value)}"
            if not self.exclusive_minimum and value < self.minimum:
                return value, f"must be at least {_num(self.minimum)}, got {_num(value)}"
        if self.maximum is not None and value > self.maximum:
            return value, f"must be at most {_num(self.maximum)}, got {_num(value)}"
        return value, None

    def clamp(self, value: float) -> float:
        """``value`` moved into this field's range (a backend scaling a setting, e.g. by emotion)."""
        if self.minimum is not None:
            value = max(value, self.minimum)
        if self.maximum is not None:
            value = min(value, self.maximum)
        return value

    def json_schema(self) -> dict[str, Any]:
        js: dict[str, Any] = {"description": self.doc}
        if self.type == "strlist":
            js["type"] = "array"
            js["items"] = {"type": "string", "minLength": 1}
            js["uniqueItems"] = True
        elif self.type == "strs":
            item = {"type": "string", **({"enum": list(self.choices)} if self.choices else {})}
            js["anyOf"] = [item, {"type": "array", "items": item, "minItems": 0 if self.min_length == 0 else 1,
                                  "uniqueItems": True}]
        elif self.type == "text":
            js["anyOf"] = [{"type": "string", "minLength": self.min_length or 0},
                           {"type": "object", "minProperties": 1,
                            "additionalProperties": {"type": "string", "minLength": 1}}]
        else:
            js["type"] = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}[self.type]
        if self.choices is not None and self.type != "strs":
            js["enum"] = list(self.choices)
        if self.minimum is not None:
            js["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            js["maximum"] = self.maximum
        if self.min_length and self.type == "str":
            js["minLength"] = self.min_length
        if self.default is not None:
            js["default"] = self.default
        return js


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _show(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else _num(v)


def _describe(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
             list: "an array", dict: "a table"}
    for typ, name in names.items():
        if type(value) is typ:
            return f"{name} ({value!r})" if typ in (str, int, float, bool) else name
    return type(value).__name__

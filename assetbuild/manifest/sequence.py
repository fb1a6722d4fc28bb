"""``[[sequence]]``: timelines that place built assets and are mixed into one file.

A sequence lists ``[[sequence.events]]`` (or ``[[sequence.scene]]`` blocks laid end to end,
each with its own events). An event places an asset by id, or an inline entry of any kind
(``sfx = { id = "shimmer", prompt = "magic shimmer" }``) that becomes an asset of its own.
Event times are resolved at build time from the generated durations (build/timeline.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import timeline
from ..fields import Field, Stage
from .model import KINDS, id_problem

BUSES = ("dialogue", "music", "sfx", "ambience")

SEQUENCE_FIELDS = (
    Field("id", "str", "Unique name of the sequence; its files are sequences/<id>.wav and its stems.",
          required=True, min_length=1, stage=Stage.PROCESS),
    Field("loudness", "float", "Loudness target of the mix, LUFS integrated.", default=-20.0, minimum=-70,
          maximum=0, stage=Stage.PROCESS),
    Field("true_peak", "float", "True-peak ceiling of the mix, dBTP.", default=-1.0, minimum=-20, maximum=0,
          stage=Stage.PROCESS),
    Field("bit_depth", "int", "Bits per sample of the mix and stems (WAV).", default=24, choices=(16, 24, 32),
          stage=Stage.PROCESS),
    Field("stems", "bool", "Also write one file per bus (sequences/<id>.<bus>.wav).", default=True,
          stage=Stage.PROCESS),
    Field("duck", "bool", "Lower music and ambience while dialogue plays.", default=True, stage=Stage.PROCESS),
    Field("duck_depth", "float", "How far ducked buses go down under dialogue, dB.", default=9.0, minimum=0,
          maximum=60, stage=Stage.PROCESS),
    Field("duck_attack", "float", "Seconds to reach the full duck.", default=0.15, minimum=0, maximum=5,
          stage=Stage.PROCESS),
    Field("duck_release", "float", "Seconds to recover after a line.", default=0.6, minimum=0, maximum=10,
          stage=Stage.PROCESS),
    Field("duck_lookahead", "float", "Seconds before a line that the duck starts.", default=0.1, minimum=0,
          maximum=5, stage=Stage.PROCESS),
    Field("duck_buses", "strs", "Buses ducked under dialogue.", default=["music", "ambience"],
          choices=("music", "sfx", "ambience"), min_length=0, stage=Stage.PROCESS),
)

EVENT_FIELDS = (
    Field("asset", "str", "Id of the asset to place (or give an inline entry: `sfx = { id = ..., ... }`).",
          min_length=1, stage=Stage.PROCESS),
    Field("name", "str", "Name other events refer to. Default: the asset id.", min_length=1, stage=Stage.PROCESS),
    Field("at", "float", "Start time in seconds from the start of the sequence (or scene).", minimum=0,
          stage=Stage.PROCESS),
    Field("after", "str", "Start at the actual end of this event (its generated length) plus `gap`.",
          min_length=1, stage=Stage.PROCESS),
    Field("gap", "float", "Seconds after the `after` event's end (negative overlaps).", default=0.0,
          stage=Stage.PROCESS),
    Field("with", "str", "Start together with this event, plus `offset`.", min_length=1, stage=Stage.PROCESS),
    Field("offset", "float", "Seconds after the `with` event's start.", default=0.0, stage=Stage.PROCESS),
    Field("duration", "float", "Length on the timeline: trims the asset, or loops it (at its loop points).",
          minimum=0, exclusive_minimum=True, stage=Stage.PROCESS),
    Field("gain", "float", "Gain in dB.", default=0.0, minimum=-96, maximum=24, stage=Stage.PROCESS),
    Field("pan", "float", "Pan, -1 (left) .. 1 (right).", default=0.0, minimum=-1, maximum=1, stage=Stage.PROCESS),
    Field("fade_in", "float", "Fade-in seconds.", default=0.0, minimum=0, stage=Stage.PROCESS),
    Field("fade_out", "float", "Fade-out seconds.", default=0.0, minimum=0, stage=Stage.PROCESS),
    Field("bus", "str", "Mix bus. Default: from the asset's kind.", choices=BUSES, stage=Stage.PROCESS),
)

SCENE_FIELDS = (
    Field("name", "str", "Name of the scene (for the timeline and cue sheet).", required=True, min_length=1,
          stage=Stage.PROCESS),
    Field("duration", "float", "Scene length. Default: the end of its last event.", minimum=0,
          exclusive_minimum=True, stage=Stage.PROCESS),
    Field("crossfade", "float", "Seconds this scene overlaps the previous one, crossfading.", default=0.0,
          minimum=0, stage=Stage.PROCESS),
    Field("transition", "str", "Id of a sound placed at the boundary with the previous scene.", min_length=1,
          stage=Stage.PROCESS),
)


@dataclass
class Sequence:
    id: str
    where: str  # 'sequence "intro"', for messages
    file: str  # the manifest file it is in
    values: dict[str, Any]  # SEQUENCE_FIELDS values, defaults applied, plus "buses": {bus: dB}
    events: list[dict[str, Any]] = field(default_factory=list)  # validated events (flat form)
    scenes: list[dict[str, Any]] = field(default_factory=list)  # validated scenes, each with "events"

    def all_events(self) -> list[dict[str, Any]]:
        return self.events + [e for s in self.scenes for e in s["events"]]

    def asset_ids(self) -> list[str]:
        ids = [e["asset"] for e in self.all_events()]
        ids += [s["transition"] for s in self.scenes if s.get("transition")]
        return list(dict.fromkeys(ids))


def parse(v: Any, entry: Any, index: int) -> tuple[Sequence | None, list[tuple[str, dict[str, Any]]]]:
    """Validate one ``[[sequence]]`` table with the manifest validator ``v``.

    Returns the sequence (None when it has problems) and its inline entries as (kind, table),
    for the validator to turn into assets like any other entry."""
    where = f"sequence #{index}"
    if not isinstance(entry, dict):
        v.problem(where, f"expected a table, got {type(entry).__name__}")
        return None, []
    before = len(v.problems)
    if isinstance(entry.get("id"), str):
        where = f'sequence "{entry["id"]}"'
    values = {f.name: f.default for f in SEQUENCE_FIELDS if f.default is not None}
    values.update(v.check_fields(entry, {f.name: f for f in SEQUENCE_FIELDS}, where,
                                 skip=("events", "scene", "buses")))
    if "id" not in entry:
        v.problem(where, 'is required: a unique name such as "intro_cutscene"', "id")
    elif isinstance(entry["id"], str) and (issue := id_problem(entry["id"])):
        v.problem(where, issue, "id")
    values["buses"] = _buses(v, entry.get("buses", {}), where)
    inline: list[tuple[str, dict[str, Any]]] = []
    events = _events(v, entry.get("events", []), where, inline)
    scenes = []
    for i, scene in enumerate(_tables(v, entry.get("scene", []), where, "scene"), 1):
        swhere = f"{where} scene #{i}"
        svalues = {f.name: f.default for f in SCENE_FIELDS if f.default is not None}
        svalues.update(v.check_fields(scene, {f.name: f for f in SCENE_FIELDS}, swhere, skip=("events",)))
        if "name" not in scene:
            v.problem(swhere, "is required", "name")
        svalues["events"] = _events(v, scene.get("events", []), swhere, inline)
        scenes.append(svalues)
    if events and scenes:
        v.problem(where, "has both [[sequence.events]] and [[sequence.scene]]; use one form")
    elif not events and not scenes:
        v.problem(where, "has no events: add [[sequence.events]] (or [[sequence.scene]] blocks)")
    names = [e["name"] for e in events + [e for s in scenes for e in s["events"]]]
    for name in sorted({n for n in names if names.count(n) > 1}):
        v.problem(where, f"two events are named '{name}'; give one a `name`", "events")
    if len(v.problems) > before:
        return None, inline
    return Sequence(entry["id"], where, v.file, values, events, scenes), inline


def _tables(v: Any, value: Any, where: str, key: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        v.problem(where, f"expected an array of tables ([[sequence.{key}]])", key)
        return []
    return value


def _buses(v: Any, table: Any, where: str) -> dict[str, float]:
    out = dict.fromkeys(BUSES, 0.0)
    if not isinstance(table, dict):
        v.problem(where, "expected a table of dB gains by bus, e.g. { music = -4.0 }", "buses")
        return out
    for bus, gain in table.items():
        if bus not in BUSES:
            v.problem(where, f"unknown bus '{bus}' (buses: {', '.join(BUSES)})", "buses")
        elif isinstance(gain, bool) or not isinstance(gain, (int, float)):
            v.problem(where, f"expected a gain in dB for bus '{bus}'", "buses")
        else:
            out[bus] = float(gain)
    return out


def _events(v: Any, value: Any, where: str, inline: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    fields = {f.name: f for f in EVENT_FIELDS}
    out = []
    for i, event in enumerate(_tables(v, value, where, "events"), 1):
        ewhere = f"{where} event #{i}"
        kinds = [k for k in KINDS if k in event]
        values = {f.name: f.default for f in EVENT_FIELDS if f.default is not None}
        values.update(v.check_fields(event, fields, ewhere, skip=KINDS))
        if len(kinds) > 1 or (kinds and "asset" in event):
            v.problem(ewhere, "places one asset: give `asset` or one inline entry")
            continue
        if kinds:
            table = event[kinds[0]]
            if not isinstance(table, dict) or not isinstance(table.get("id"), str):
                v.problem(ewhere, f'expected an inline entry with an id, e.g. {kinds[0]} = {{ id = "...", ... }}',
                          kinds[0])
                continue
            inline.append((kinds[0], table))
            values["asset"] = table["id"]
            values["inline_kind"] = kinds[0]
        elif "asset" not in values:
            v.problem(ewhere, "is required: the id of the asset to place (or an inline entry)", "asset")
            continue
        timing = [k for k in ("at", "after", "with") if k in event]
        if len(timing) > 1:
            v.problem(ewhere, f"has {' and '.join(timing)}; give one of at, after, with")
            continue
        values.setdefault("name", values["asset"])
        out.append(values)
    return out


def events_of(seq: Sequence, kinds: dict[str, str]) -> tuple[list[timeline.Event], list[timeline.Scene]]:
    """The timeline events of a validated sequence (``kinds``: asset name -> kind, for the bus)."""
    def event(e: dict[str, Any]) -> timeline.Event:
        return timeline.Event(name=e["name"], asset=e["asset"], at=e.get("at"), after=e.get("after"),
                              gap=e["gap"], with_=e.get("with"), offset=e["offset"], duration=e.get("duration"),
                              gain=e["gain"], pan=e["pan"], fade_in=e["fade_in"], fade_out=e["fade_out"],
                              bus=e.get("bus") or kinds.get(e["asset"], "sfx"))
    scenes = [timeline.Scene(s["name"], [event(e) for e in s["events"]], s.get("duration"), s["crossfade"],
                             s.get("transition")) for s in seq.scenes]
    return [event(e) for e in seq.events], scenes


def check(seq: Sequence, kinds: dict[str, str]) -> list[str]:
    """Problems that do not depend on generated lengths: unknown references, cycles."""
    events, scenes = events_of(seq, kinds)
    long = dict.fromkeys(kinds, 1000000.0)  # any lengths: references and cycles do not depend on them
    problems = []
    for evs in [events] + [s.events for s in scenes]:
        try:
            timeline.resolve(evs, long)
        except timeline.TimelineError as exc:
            problems += exc.problems
    return problems


def preview_manifest(manifest: Any, seq_id: str) -> Any:
    """The manifest cut down to one sequence and the assets it places, building into a scratch
    folder (``.assetbuild/preview/<id>/``) that shares the cache with real builds."""
    from dataclasses import replace

    seq = next(s for s in manifest.sequences if s.id == seq_id)
    source = (manifest.locales or [None])[0]
    wanted = set(seq.asset_ids())
    assets = [a for a in manifest.assets if a.name in wanted and a.locale in (None, source)]
    return replace(manifest, assets=assets, sequences=[seq], engines=[], preview=seq_id,
                   output_dir=manifest.root / ".assetbuild" / "preview" / seq_id)

"""Sequence timelines: when each placed asset starts and ends.

A sequence places already-built assets as *events*. An event starts at an absolute time
(``at``), at the end of another event plus a gap (``after``/``gap``), or at the start of another
event plus an offset (``with_``/``offset``). :func:`resolve` turns the references into absolute
times, using the assets' real (generated) durations, so lengthening a line moves everything
that follows it. :func:`resolve_scenes` lays several such timelines end to end.

Every problem is collected before raising, so one :class:`TimelineError` lists them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import AssetbuildError, did_you_mean

__all__ = ["BUSES", "Event", "Placed", "Scene", "TimelineError", "resolve", "resolve_scenes"]

#: The buses an event can play on.
BUSES = ("dialogue", "music", "sfx", "ambience")
#: Starts this far below zero are float noise (``a - b + b``), not negative starts.
_EPSILON_S = 1e-9


@dataclass(frozen=True)
class Event:
    """One asset placed on a timeline. Set at most one of ``at``, ``after`` and ``with_``
    (none of them: ``at = 0``)."""

    name: str  # unique within the sequence
    asset: str  # id of the asset it places
    at: float | None = None  # absolute start, seconds
    after: str | None = None  # start at the actual end of event `after` ...
    gap: float = 0.0  # ... plus gap (negative: overlap)
    with_: str | None = None  # start at the start of event `with_` ...
    offset: float = 0.0  # ... plus offset
    duration: float | None = None  # length on the timeline (trim or loop); None = the asset's length
    gain: float = 0.0  # dB
    pan: float = 0.0  # -1 left .. +1 right
    fade_in: float = 0.0  # seconds
    fade_out: float = 0.0  # seconds
    bus: str = "sfx"  # one of BUSES


@dataclass(frozen=True)
class Placed:
    """An event with its resolved times in seconds: ``end = start + length``."""

    event: Event
    start: float
    end: float


@dataclass(frozen=True)
class Scene:
    """A named group of events whose times are relative to the scene's start.

    ``duration`` is the scene's length (None: the end of its last event); ``crossfade`` is
    its overlap with the previous scene; ``transition`` the asset id of a sound placed on the
    boundary with the previous scene. See :func:`resolve_scenes`.
    """

    name: str
    events: list[Event]
    duration: float | None = None
    crossfade: float = 0.0
    transition: str | None = None


class TimelineError(AssetbuildError, ValueError):
    """The timeline cannot be resolved; ``problems`` lists every problem, each naming the
    events (and scenes) involved."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _num(x: float) -> str:
    return f"{x:g}"


def _check(ev: Event, names: list[str], durations: dict[str, float], problems: list[str]) -> float | None:
    """Report ``ev``'s own problems; returns its length, or None when it is unknown."""
    n = f"'{ev.name}'"
    anchors = [k for k, v in (("at", ev.at), ("after", ev.after), ("with", ev.with_)) if v is not None]
    if len(anchors) > 1:
        problems.append(f"{n}: give only one of 'at', 'after' and 'with' (got {' and '.join(anchors)})")
    if ev.gap and ev.after is None:
        problems.append(f"{n}: 'gap' only applies with 'after'")
    if ev.offset and ev.with_ is None:
        problems.append(f"{n}: 'offset' only applies with 'with'")
    for field, ref in (("after", ev.after), ("with", ev.with_)):
        if ref is not None and ref not in names:
            problems.append(f"{n}: {field} '{ref}' — no such event{did_you_mean(ref, names)}")
    for field, value in (("at", ev.at), ("gap", ev.gap), ("offset", ev.offset), ("duration", ev.duration),
                         ("gain", ev.gain), ("pan", ev.pan), ("fade_in", ev.fade_in), ("fade_out", ev.fade_out)):
        if value is not None and not math.isfinite(value):
            problems.append(f"{n}: '{field}' must be a finite number, got {value}")
    if ev.duration is not None and not ev.duration > 0:
        problems.append(f"{n}: 'duration' must be > 0, got {_num(ev.duration)}")
    if ev.fade_in < 0 or ev.fade_out < 0:
        problems.append(f"{n}: fades must be >= 0, got fade_in {_num(ev.fade_in)}, fade_out {_num(ev.fade_out)}")
    if not -1.0 <= ev.pan <= 1.0:
        problems.append(f"{n}: 'pan' must be within -1 .. 1, got {_num(ev.pan)}")
    if ev.bus not in BUSES:
        problems.append(f"{n}: unknown bus '{ev.bus}'{did_you_mean(ev.bus, BUSES)}; "
                        f"expected one of {', '.join(BUSES)}")
    if ev.duration is not None:
        return ev.duration
    if ev.asset not in durations:
        problems.append(f"{n}: no duration known for asset '{ev.asset}'")
        return None
    return float(durations[ev.asset])


def resolve(events: list[Event], durations: dict[str, float]) -> list[Placed]:
    """Absolute start and end times of ``events``, in the input order.

    ``durations`` maps asset ids to their real lengths in seconds; an event's length is its
    ``duration`` when set, else its asset's. ``after`` starts at the referenced event's end
    (its start plus its length) plus ``gap``; ``with_`` at its start plus ``offset``. Raises
    :class:`TimelineError` listing duplicate names, unknown references (with a suggestion),
    cycles (``cycle: a -> b -> a``), starts before zero and invalid fields.
    """
    problems: list[str] = []
    by_name: dict[str, Event] = {}
    for ev in events:
        if ev.name in by_name:
            problems.append(f"'{ev.name}': duplicate event name")
        else:
            by_name[ev.name] = ev
    names = list(by_name)
    lengths = {ev.name: _check(ev, names, durations, problems) for ev in by_name.values()}

    # Each event references at most one other, so following references from any event either
    # ends at an absolute one, at a broken one, or runs into a cycle: no general graph search.
    starts: dict[str, float] = {}
    broken: set[str] = set()  # cannot be placed; the cause is reported once, at its source
    for name in names:
        path: list[str] = []
        cur = name
        while cur not in starts and cur not in broken:
            if cur in path:
                cycle = path[path.index(cur):]
                first = min(range(len(cycle)), key=lambda i: names.index(cycle[i]))
                cycle = cycle[first:] + cycle[:first]
                problems.append("cycle: " + " -> ".join(cycle + [cycle[0]]))
                broken.update(cycle)
                break
            ev = by_name[cur]
            ref = ev.after if ev.after is not None else ev.with_
            if ref is None:
                starts[cur] = float(ev.at) if ev.at is not None else 0.0
                break
            if ref not in by_name:
                broken.add(cur)
                break
            path.append(cur)
            cur = ref
        for dep in reversed(path):  # each one's reference is now placed or broken
            ev = by_name[dep]
            if dep in broken:
                continue
            if ev.after is not None:
                ref_len = lengths[ev.after]
                if ev.after in broken or ref_len is None:
                    broken.add(dep)
                else:
                    starts[dep] = starts[ev.after] + ref_len + ev.gap
            elif ev.with_ in broken:
                broken.add(dep)
            elif ev.with_ is not None:
                starts[dep] = starts[ev.with_] + ev.offset

    for name in names:
        s = starts.get(name)
        if s is not None and s < -_EPSILON_S:
            ev = by_name[name]
            how = (f" ({_num(ev.gap)} s after the end of '{ev.after}')" if ev.after is not None else
                   f" ({_num(ev.offset)} s from the start of '{ev.with_}')" if ev.with_ is not None else "")
            problems.append(f"'{name}': starts at {s:.3f} s{how}, before the start of the timeline")
    if problems:
        raise TimelineError(problems)
    placed = []
    for ev in events:
        s, length = max(starts[ev.name], 0.0), lengths[ev.name]
        assert length is not None  # else a problem above
        placed.append(Placed(ev, s, s + length))
    return placed


def resolve_scenes(scenes: list[Scene], durations: dict[str, float]) -> tuple[list[Placed], list[dict]]:
    """Lay ``scenes`` end to end; returns the placed events (absolute times) and one
    ``{"name", "start", "end"}`` dict per scene.

    * Each scene's events are resolved with :func:`resolve` relative to the scene start (their
      references stay within the scene). Event names must be unique across all scenes.
    * A scene's length is its ``duration``, else the end of its last event. Its content ends
      there: events running past an explicit ``duration`` are cut at the scene end (their
      ``duration`` shortened; the mixer adds its short anti-click fade), and an event starting
      at or after the end is an error.
    * Scene ``k`` starts at the end of scene ``k-1`` minus its ``crossfade`` (the first starts at
      0 and cannot have a crossfade). In the overlap window ``[start_k, end_{k-1}]``:
      outgoing events still playing in it get a fade-out over their part of the window (so the
      ones lasting to the scene end fade out over the whole crossfade, ending at the scene
      end), and incoming events starting in it get a fade-in over the rest of the window (the
      ones starting at the boundary: the whole crossfade). Longer own fades are kept. With the
      sine fade curves this is an equal-power crossfade for events that span the window.
    * ``transition`` places that asset on the ``sfx`` bus *centred* on the boundary (the middle
      of the crossfade window; with no crossfade, the cut): a whoosh or swell peaks where the
      scenes change. It is named ``"<scene>/transition"`` and must not start before 0.
    """
    problems: list[str] = []
    seen: dict[str, str] = {}
    for sc in scenes:
        for ev in sc.events:
            if ev.name in seen and seen[ev.name] != sc.name:
                problems.append(f"'{ev.name}': event name used in scenes '{seen[ev.name]}' and '{sc.name}'")
            seen.setdefault(ev.name, sc.name)
    for sc in scenes:
        if sc.transition is not None and f"{sc.name}/transition" in seen:
            problems.append(f"scene '{sc.name}': event name '{sc.name}/transition' is reserved for its transition")
    scene_names = [sc.name for sc in scenes]
    for name in {n for n in scene_names if scene_names.count(n) > 1}:
        problems.append(f"scene '{name}': duplicate scene name")

    laid: list[tuple[Scene, list[Placed], float]] = []  # scene, events relative to it, its length
    for i, sc in enumerate(scenes):
        where = f"scene '{sc.name}'"
        try:
            rel = resolve(sc.events, durations)
        except TimelineError as err:
            problems.extend(f"{where}: {p}" for p in err.problems)
            rel = []
        if sc.duration is not None:
            length = sc.duration
            if not (math.isfinite(length) and length > 0):
                problems.append(f"{where}: 'duration' must be > 0, got {_num(length)}")
                rel = []
            cut = []
            for p in rel:
                if p.start >= length:
                    problems.append(f"{where}: '{p.event.name}' starts at {p.start:.3f} s, "
                                    f"at or after the scene end ({_num(length)} s)")
                elif p.end > length:
                    p = Placed(replace(p.event, duration=length - p.start), p.start, length)
                cut.append(p)
            rel = cut
        else:
            length = max((p.end for p in rel), default=0.0)
            if not sc.events:
                problems.append(f"{where}: no events and no 'duration'")
        if not (math.isfinite(sc.crossfade) and sc.crossfade >= 0):
            problems.append(f"{where}: 'crossfade' must be >= 0, got {_num(sc.crossfade)}")
        elif i == 0 and sc.crossfade > 0:
            problems.append(f"{where}: 'crossfade' needs a previous scene")
        elif i > 0 and sc.crossfade > min(length, laid[-1][2]):
            problems.append(f"{where}: 'crossfade' {_num(sc.crossfade)} s is longer than this scene "
                            f"({length:.3f} s) or the previous one ({laid[-1][2]:.3f} s)")
        if sc.transition is not None:
            if i == 0:
                problems.append(f"{where}: 'transition' needs a previous scene")
            elif sc.transition not in durations:
                problems.append(f"{where}: no duration known for transition asset '{sc.transition}'")
        laid.append((sc, rel, length))
    if problems:
        raise TimelineError(problems)

    placed: list[Placed] = []
    table: list[dict] = []
    prev_end = 0.0
    prev_first = 0  # index in `placed` of the previous scene's first event (after its transition)
    for i, (sc, rel, length) in enumerate(laid):
        start = prev_end - sc.crossfade if i else 0.0
        xf_lo, xf_hi = start, prev_end  # the overlap window (empty without a crossfade)
        if i and sc.crossfade > 0:
            for j in range(prev_first, len(placed)):
                p = placed[j]
                if p.end > xf_lo:
                    fade = p.end - max(p.start, xf_lo)
                    placed[j] = Placed(replace(p.event, fade_out=max(p.event.fade_out, fade)), p.start, p.end)
        if i and sc.transition is not None:
            t_len = float(durations[sc.transition])
            t_start = 0.5 * (xf_lo + xf_hi) - 0.5 * t_len
            if t_start < -_EPSILON_S:
                problems.append(f"scene '{sc.name}': transition '{sc.transition}' ({t_len:.3f} s, centred on the "
                                f"boundary at {0.5 * (xf_lo + xf_hi):.3f} s) would start before 0")
            t_start = max(t_start, 0.0)
            ev = Event(f"{sc.name}/transition", sc.transition, at=t_start)
            placed.append(Placed(ev, t_start, t_start + t_len))
        first = len(placed)  # the transition belongs to the boundary: the next crossfade leaves it alone
        for p in rel:
            ev = p.event
            a, b = start + p.start, start + p.end
            if i and sc.crossfade > 0 and a < xf_hi:
                ev = replace(ev, fade_in=max(ev.fade_in, min(b, xf_hi) - a))
            placed.append(Placed(ev, a, b))
        table.append({"name": sc.name, "start": start, "end": start + length})
        prev_end, prev_first = start + length, first
    if problems:
        raise TimelineError(problems)
    return placed, table

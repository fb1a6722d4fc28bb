"""Sequence timelines: resolving at/after/with references and laying out scenes."""

from __future__ import annotations

import pytest

from assetbuild.timeline import Event, Placed, Scene, TimelineError, resolve, resolve_scenes

DUR = {"intro": 2.0, "reply": 1.5, "door": 0.4, "music": 30.0, "wind": 10.0, "whoosh": 1.0, "outro": 3.0}


def times(placed: list[Placed]) -> dict[str, tuple[float, float]]:
    return {p.event.name: (p.start, p.end) for p in placed}


def problems(events: list[Event], durations: dict[str, float] = DUR) -> list[str]:
    with pytest.raises(TimelineError) as err:
        resolve(events, durations)
    assert str(err.value) == "\n".join(err.value.problems)
    return err.value.problems


# ---------------------------------------------------------------------------- resolution

def test_at_after_with_gap_offset():
    events = [
        Event("intro", "intro", at=1.0, bus="dialogue"),
        Event("reply", "reply", after="intro", gap=0.25, bus="dialogue"),
        Event("door", "door", with_="reply", offset=0.5),
        Event("overlap", "door", after="reply", gap=-0.3),
        Event("music", "music", bus="music"),  # no anchor: at 0
        Event("early", "door", with_="intro", offset=-0.5),
    ]
    t = times(resolve(events, DUR))
    assert t["intro"] == pytest.approx((1.0, 3.0))
    assert t["reply"] == pytest.approx((3.25, 4.75))
    assert t["door"] == pytest.approx((3.75, 4.15))
    assert t["overlap"] == pytest.approx((4.45, 4.85))
    assert t["music"] == pytest.approx((0.0, 30.0))
    assert t["early"] == pytest.approx((0.5, 0.9))


def test_output_keeps_input_order_with_forward_references():
    events = [Event("b", "door", after="a"), Event("c", "door", with_="b", offset=1.0), Event("a", "intro", at=0.5)]
    placed = resolve(events, DUR)
    assert [p.event for p in placed] == events
    assert times(placed) == pytest.approx({"b": (2.5, 2.9), "c": (3.5, 3.9), "a": (0.5, 2.5)})


def test_duration_overrides_asset_length_and_after_uses_it():
    events = [Event("m", "music", duration=4.0, bus="music"), Event("x", "door", after="m"),
              Event("long", "door", duration=5.0)]
    t = times(resolve(events, DUR))
    assert t["m"] == pytest.approx((0.0, 4.0))
    assert t["x"] == pytest.approx((4.0, 4.4))
    assert t["long"] == pytest.approx((0.0, 5.0))


def test_duration_only_needed_when_event_has_no_own_duration():
    t = times(resolve([Event("x", "not_built_yet", duration=2.0)], {}))
    assert t["x"] == (0.0, 2.0)
    assert problems([Event("x", "not_built_yet")], {}) == ["'x': no duration known for asset 'not_built_yet'"]


def test_after_follows_generated_durations():
    events = [
        Event("intro", "intro", at=0.5, bus="dialogue"),
        Event("reply", "reply", after="intro", gap=0.2, bus="dialogue"),
        Event("door", "door", with_="reply", offset=0.3),
        Event("outro", "outro", after="door", gap=1.0, bus="dialogue"),
        Event("wind", "wind", at=0.0, bus="ambience"),
        Event("music", "music", with_="wind", offset=2.0, bus="music"),
        Event("sting", "whoosh", with_="intro", offset=0.1),  # depends on intro's start only
    ]
    before = times(resolve(events, DUR))
    after = times(resolve(events, {**DUR, "intro": DUR["intro"] + 0.7}))
    for name in ("reply", "door", "outro"):  # everything after intro's end moves with it
        assert after[name][0] == pytest.approx(before[name][0] + 0.7)
        assert after[name][1] == pytest.approx(before[name][1] + 0.7)
    for name in ("wind", "music", "sting"):  # independent of intro's end: unchanged
        assert after[name] == before[name]
    assert after["intro"][0] == before["intro"][0]
    assert after["intro"][1] == pytest.approx(before["intro"][1] + 0.7)


# ---------------------------------------------------------------------------- errors

def test_unknown_reference_is_named_with_suggestion():
    events = [Event("intro", "intro"), Event("reply", "reply", after="intor"),
              Event("door", "door", with_="zzz"), Event("later", "door", after="reply")]
    assert problems(events) == ["'reply': after 'intor' — no such event (did you mean 'intro'?)",
                                "'door': with 'zzz' — no such event"]  # 'later' is not blamed


def test_cycle_is_named():
    events = [Event("intro", "intro", after="reply"), Event("reply", "reply", with_="intro")]
    assert problems(events) == ["cycle: intro -> reply -> intro"]


def test_longer_cycles_self_reference_and_dependents():
    events = [
        Event("x", "door", at=1.0),
        Event("tail", "door", after="c"),  # hangs off the cycle: not reported itself
        Event("c", "door", after="a"),
        Event("a", "door", with_="b"),
        Event("b", "door", after="c", gap=0.5),
        Event("me", "door", after="me"),
    ]
    assert problems(events) == ["cycle: c -> a -> b -> c", "cycle: me -> me"]


def test_all_problems_reported_together():
    events = [Event("a", "door", at=1.0, after="b"), Event("b", "door", gap=1.0), Event("c", "door", offset=2.0),
              Event("d", "door", duration=0.0), Event("e", "door", pan=1.5), Event("f", "door", bus="musc"),
              Event("g", "door", fade_in=-1.0), Event("a", "reply")]
    got = problems(events)
    assert got == [
        "'a': duplicate event name",
        "'a': give only one of 'at', 'after' and 'with' (got at and after)",
        "'b': 'gap' only applies with 'after'",
        "'c': 'offset' only applies with 'with'",
        "'d': 'duration' must be > 0, got 0",
        "'e': 'pan' must be within -1 .. 1, got 1.5",
        "'f': unknown bus 'musc' (did you mean 'music'?); expected one of dialogue, music, sfx, ambience",
        "'g': fades must be >= 0, got fade_in -1, fade_out 0",
    ]


def test_negative_start_rejected():
    got = problems([Event("intro", "intro", at=0.5), Event("early", "door", with_="intro", offset=-1.0)])
    assert got == ["'early': starts at -0.500 s (-1 s from the start of 'intro'), before the start of the timeline"]
    got = problems([Event("a", "door", at=-0.1)])
    assert got == ["'a': starts at -0.100 s, before the start of the timeline"]
    got = problems([Event("a", "door"), Event("b", "door", after="a", gap=-1.0)])
    assert got == ["'b': starts at -0.600 s (-1 s after the end of 'a'), before the start of the timeline"]


def test_float_noise_is_not_a_negative_start():
    placed = resolve([Event("a", "door", at=0.1), Event("b", "door", with_="a", offset=-0.1)], DUR)
    assert placed[1].start == 0.0


# ---------------------------------------------------------------------------- scenes

def scene_events(placed: list[Placed]) -> dict[str, Placed]:
    return {p.event.name: p for p in placed}


def test_scenes_end_to_end():
    scenes = [
        Scene("s1", [Event("intro", "intro", at=0.5, bus="dialogue"), Event("reply", "reply", after="intro")]),
        Scene("s2", [Event("door", "door"), Event("outro", "outro", after="door", gap=0.1)], duration=5.0),
        Scene("s3", [Event("wind", "wind", bus="ambience")]),
    ]
    placed, table = resolve_scenes(scenes, DUR)
    assert table == [{"name": "s1", "start": 0.0, "end": pytest.approx(4.0)},
                     {"name": "s2", "start": pytest.approx(4.0), "end": pytest.approx(9.0)},
                     {"name": "s3", "start": pytest.approx(9.0), "end": pytest.approx(19.0)}]
    t = times(placed)
    assert t["intro"] == pytest.approx((0.5, 2.5))
    assert t["reply"] == pytest.approx((2.5, 4.0))
    assert t["door"] == pytest.approx((4.0, 4.4))
    assert t["outro"] == pytest.approx((4.5, 7.5))
    assert t["wind"] == pytest.approx((9.0, 19.0))
    assert [p.event.name for p in placed] == ["intro", "reply", "door", "outro", "wind"]
    # no crossfade: fades untouched
    assert all(p.event.fade_in == 0 and p.event.fade_out == 0 for p in placed)


def test_scene_lengths_follow_generated_durations():
    scenes = [Scene("s1", [Event("intro", "intro"), Event("reply", "reply", after="intro")]),
              Scene("s2", [Event("door", "door")])]
    a, _ = resolve_scenes(scenes, DUR)
    b, _ = resolve_scenes(scenes, {**DUR, "reply": DUR["reply"] + 0.7})
    assert times(b)["door"][0] == pytest.approx(times(a)["door"][0] + 0.7)
    assert times(b)["intro"] == times(a)["intro"]


def test_scene_duration_cuts_events_running_past_it():
    scenes = [Scene("s1", [Event("m", "music", bus="music"), Event("d", "door", at=1.0)], duration=6.0),
              Scene("s2", [Event("o", "outro")])]
    placed, table = resolve_scenes(scenes, DUR)
    ev = scene_events(placed)
    assert (ev["m"].start, ev["m"].end) == (0.0, 6.0)
    assert ev["m"].event.duration == pytest.approx(6.0)
    assert ev["d"].event.duration is None  # inside the scene: untouched
    assert ev["o"].start == pytest.approx(6.0)
    with pytest.raises(TimelineError) as err:
        resolve_scenes([Scene("s1", [Event("d", "door", at=7.0)], duration=6.0)], DUR)
    assert err.value.problems == ["scene 's1': 'd' starts at 7.000 s, at or after the scene end (6 s)"]


def test_scene_crossfade():
    scenes = [
        Scene("s1", [Event("m1", "music", bus="music", duration=8.0),
                     Event("line", "intro", at=1.0, bus="dialogue"),  # ends long before the boundary
                     Event("late", "door", at=7.4, fade_out=0.05),  # ends inside the window
                     Event("longfade", "wind", at=0.0, duration=8.0, fade_out=3.0)]),  # own fade is longer
        Scene("s2", [Event("m2", "music", bus="music", duration=6.0),
                     Event("mid", "door", at=0.5),  # starts inside the window
                     Event("after_xf", "door", at=2.0)], crossfade=1.0),
    ]
    placed, table = resolve_scenes(scenes, DUR)
    assert table[0] == {"name": "s1", "start": 0.0, "end": pytest.approx(8.0)}
    assert table[1] == {"name": "s2", "start": pytest.approx(7.0), "end": pytest.approx(13.0)}
    ev = scene_events(placed)
    # outgoing: fade-out ending at the scene end, over the crossfade
    assert ev["m1"].event.fade_out == pytest.approx(1.0) and ev["m1"].end == pytest.approx(8.0)
    assert ev["line"].event.fade_out == 0.0
    assert ev["late"].event.fade_out == pytest.approx(0.4)  # its part of the window: 7.4 .. 7.8
    assert ev["longfade"].event.fade_out == pytest.approx(3.0)
    # incoming: fade-in over the rest of the window
    assert ev["m2"].start == pytest.approx(7.0) and ev["m2"].event.fade_in == pytest.approx(1.0)
    assert ev["mid"].start == pytest.approx(7.5) and ev["mid"].event.fade_in == pytest.approx(0.4)  # 7.5 .. 7.9
    assert ev["after_xf"].start == pytest.approx(9.0) and ev["after_xf"].event.fade_in == 0.0


def test_scene_transition_centred_on_boundary():
    scenes = [Scene("s1", [Event("intro", "intro")]),
              Scene("s2", [Event("reply", "reply")], transition="whoosh"),
              Scene("s3", [Event("outro", "outro")], crossfade=1.0, transition="whoosh")]
    placed, table = resolve_scenes(scenes, DUR)
    ev = scene_events(placed)
    assert [p.event.name for p in placed] == ["intro", "s2/transition", "reply", "s3/transition", "outro"]
    # s1 ends at 2.0: the 1 s whoosh runs 1.5 .. 2.5
    assert (ev["s2/transition"].start, ev["s2/transition"].end) == pytest.approx((1.5, 2.5))
    assert ev["s2/transition"].event.bus == "sfx" and ev["s2/transition"].event.asset == "whoosh"
    # s2 ends at 3.5, s3 starts at 2.5: centred on the window's middle, 3.0
    assert table[2]["start"] == pytest.approx(2.5)
    assert (ev["s3/transition"].start, ev["s3/transition"].end) == pytest.approx((2.5, 3.5))
    assert ev["s3/transition"].event.fade_in == 0 and ev["s2/transition"].event.fade_out == 0


def test_scene_problems():
    scenes = [
        Scene("a", [Event("x", "door"), Event("y", "door", after="x_")], crossfade=0.5, transition="whoosh"),
        Scene("b", [Event("x", "door")]),
        Scene("c", [Event("z", "door")], crossfade=2.0),
        Scene("d", [], transition="nope"),
        Scene("b", [Event("w", "door")]),
    ]
    with pytest.raises(TimelineError) as err:
        resolve_scenes(scenes, DUR)
    assert err.value.problems == [
        "'x': event name used in scenes 'a' and 'b'",
        "scene 'b': duplicate scene name",
        "scene 'a': 'y': after 'x_' — no such event (did you mean 'x'?)",
        "scene 'a': 'crossfade' needs a previous scene",
        "scene 'a': 'transition' needs a previous scene",
        "scene 'c': 'crossfade' 2 s is longer than this scene (0.400 s) or the previous one (0.400 s)",
        "scene 'd': no events and no 'duration'",
        "scene 'd': no duration known for transition asset 'nope'",
    ]


def test_scene_transition_name_reserved_and_not_before_zero():
    with pytest.raises(TimelineError) as err:
        resolve_scenes([Scene("s1", [Event("door", "door")]), Scene("s2", [Event("s2/transition", "door")],
                                                                         transition="whoosh")], DUR)
    assert err.value.problems == ["scene 's2': event name 's2/transition' is reserved for its transition"]
    with pytest.raises(TimelineError) as err:
        resolve_scenes([Scene("s1", [Event("door", "door")]), Scene("s2", [Event("x", "intro")],
                                                                         transition="whoosh")], DUR)
    assert err.value.problems == ["scene 's2': transition 'whoosh' (1.000 s, centred on the boundary at "
                                  "0.400 s) would start before 0"]


def test_empty_scene_with_duration_is_a_pause():
    scenes = [Scene("s1", [Event("a", "door")]), Scene("pause", [], duration=2.0), Scene("s3", [Event("b", "door")])]
    placed, table = resolve_scenes(scenes, DUR)
    assert times(placed)["b"] == pytest.approx((2.4, 2.8))
    assert table[1] == {"name": "pause", "start": pytest.approx(0.4), "end": pytest.approx(2.4)}

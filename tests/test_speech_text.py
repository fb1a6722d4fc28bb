"""The text side of speech: pause markers, lexicon, SSML, long lines, and the alignment model."""

from __future__ import annotations

import re

import numpy as np
import pytest

from assetbuild.speech import alignment
from assetbuild.speech.script import ScriptError, check_ssml, display_text, matching_entries, prepare


def spoken_words_for(script):
    """Pretend a backend said each whitespace token of each piece in 0.1 s, back to back."""
    parts = []
    for piece in script.pieces:
        words = []
        t = 0.0
        for m in re.finditer(r"\S+", piece.spoken):
            words.append({"pos": m.start(), "start": t, "end": t + 0.1})
            t += 0.1
        parts.append((np.zeros(int(t * 1000), dtype=np.float32), words, []))
    return parts


def test_pause_markers_split_and_vanish_from_display():
    s = prepare("Wait. [pause] Go now! [pause 300ms] Run [pause 1.5s] away.")
    assert s.display == "Wait. Go now! Run away."
    assert [p.spoken for p in s.pieces] == ["Wait.", "Go now!", "Run", "away."]
    assert [p.pause_after for p in s.pieces] == [0.5, 0.3, 1.5, 0.0]
    audio, words, _ = alignment.join(s, spoken_words_for(s), 1000)
    assert [w["text"] for w in words] == ["Wait", "Go", "now", "Run", "away"]
    # "Go" starts after "Wait" (0.1 s) and the 0.5 s pause.
    assert words[1]["start"] == pytest.approx(0.6)
    assert len(audio) == round((0.1 + 0.5 + 0.2 + 0.3 + 0.1 + 1.5 + 0.1) * 1000)


def test_lexicon_respelling_is_spoken_not_shown():
    lex = {"Xyloth": {"say": "zy loth"}, "GUI": {"say": "gooey"}}
    s = prepare("Xyloth opened the gui, then xyloth left.", lexicon=lex)
    assert s.display == "Xyloth opened the gui, then xyloth left."
    assert s.pieces[0].spoken == "zy loth opened the gooey, then zy loth left."
    _, words, _ = alignment.join(s, spoken_words_for(s), 1000)
    assert [w["text"] for w in words] == ["Xyloth", "opened", "the", "gui", "then", "xyloth", "left"]
    # The respelling's two spoken words become the one written word, timed over both.
    assert (words[0]["start"], words[0]["end"]) == (0.0, 0.2)
    # Whole words only, any case; entries a line does not use are not in its key.
    assert matching_entries("Xylothian GUI", lex) == {"GUI": {"say": "gooey"}}
    assert matching_entries("nothing here", lex) == {}


def test_lexicon_phonemes_use_backend_notation():
    lex = {"Bob": {"phonemes": "b0b", "say": "bobb"}}
    assert prepare("Hi Bob.", lexicon=lex, phonemes=lambda p: f"[[{p}]]").pieces[0].spoken == "Hi [[b0b]]."
    assert prepare("Hi Bob.", lexicon=lex).pieces[0].spoken == "Hi bobb."  # no phoneme input: say


def test_ssml_display_and_map():
    text = '<speak>Hello <break time="500ms"/> my &amp; <prosody rate="slow">Bob</prosody> friend.</speak>'
    s = prepare(text, ssml=True, lexicon={"Bob": {"say": "Bobby <3"}})
    assert s.display == "Hello my & Bob friend."
    piece = s.pieces[0]
    assert "Bobby &lt;3" in piece.spoken  # respellings are escaped inside SSML
    i = piece.spoken.index("friend")
    assert s.display[piece.to_display[i]:].startswith("friend")
    i = piece.spoken.index("&amp;")
    assert s.display[piece.to_display[i]] == "&"
    assert display_text("Hi<break/>there", ssml=True) == "Hithere"
    assert display_text("Wait [pause] here") == "Wait here"


@pytest.mark.parametrize("bad", ["<speak>Hello", "<speak><b>x</speak>", "<speak>a</speak><speak>b</speak>",
                                 "<speak>   </speak>"])
def test_bad_ssml(bad):
    assert check_ssml(bad)
    with pytest.raises(ScriptError):
        prepare(bad, ssml=True)


def test_ssml_fragment_is_wrapped_in_speak():
    assert check_ssml("<voice>hi</voice>") is None
    assert prepare("Hi <break/> there", ssml=True).pieces[0].spoken == "<speak>Hi <break/> there</speak>"


def test_long_lines_split_at_sentences_then_clauses():
    text = ("The gate opens at dawn. Bring the lantern, the rope, and the map; we leave at six. "
            "Nobody follows us.")
    s = prepare(text, max_chars=40)
    assert all(len(p.spoken) <= 40 for p in s.pieces)
    # Sentences first; the 82-character one at clauses, packed greedily.
    assert [p.spoken for p in s.pieces] == [
        "The gate opens at dawn.", "Bring the lantern, the rope,", "and the map; we leave at six.",
        "Nobody follows us."]
    assert [p.pause_after for p in s.pieces] == [0.25, 0.25, 0.25, 0.0]
    assert s.display == text
    _, words, _ = alignment.join(s, spoken_words_for(s), 1000)
    assert " ".join(w["text"] for w in words) == "The gate opens at dawn Bring the lantern the rope and the map we " \
        "leave at six Nobody follows us"
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)


def test_characters_to_words():
    text = "Hi there, Bob."
    chars = list(text)
    starts = [i * 0.05 for i in range(len(chars))]
    ends = [s + 0.05 for s in starts]
    spoken = alignment.spoken_from_characters(text, chars, starts, ends, list(range(len(text) + 1)))
    words = alignment.project(text, spoken, 1.0)
    assert [(w["text"], w["start"], w["end"]) for w in words] == [
        ("Hi", 0.0, 0.1), ("there", 0.15, 0.45), ("Bob", 0.5, 0.7)]
    # A service that normalised the text ("Bob" -> "Bobby") still maps by sequence matching.
    said = list("Hi there, Bobby.")
    spoken = alignment.spoken_from_characters(text, said, [i * 0.05 for i in range(len(said))],
                                              [i * 0.05 + 0.05 for i in range(len(said))], list(range(len(text) + 1)))
    words = alignment.project(text, spoken, 1.0)
    assert [w["text"] for w in words] == ["Hi", "there", "Bob"] and words[2]["end"] == pytest.approx(0.8)


def test_estimate_spreads_over_speech():
    words = alignment.estimate("One, two three. Four!", 0.2, 2.2, 2.5)
    assert [w["text"] for w in words] == ["One", "two", "three", "Four"]
    assert words[0]["start"] == 0.2 and words[-1]["end"] == pytest.approx(2.2)
    assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:]))
    # The pause after a sentence end is longer than after a comma.
    assert words[3]["start"] - words[2]["end"] > words[1]["start"] - words[0]["end"] > 0


def test_shift_moves_and_clamps():
    words = [{"text": "a", "start": 0.1, "end": 0.3, "span": [0, 1]},
             {"text": "b", "start": 0.3, "end": 0.9, "span": [2, 3]}]
    moved, phon = alignment.shift(words, [{"symbol": "a", "start": 0.1, "end": 0.2}], 0.05, 0.8)
    assert [(w["start"], w["end"]) for w in moved] == [(0.05, 0.25), (0.25, 0.8)]
    assert phon == [{"symbol": "a", "start": 0.05, "end": 0.15}]

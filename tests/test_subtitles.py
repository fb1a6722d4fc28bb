"""Subtitle cues from text and word timings, and their SRT / WebVTT rendering (checked with the
independent ``srt`` and ``webvtt-py`` parsers)."""

from __future__ import annotations

import html
import io
import re

import pytest
import srt
import webvtt

from assetbuild.export.subtitles import Cue, cues, render_srt, render_vtt

WORD_RE = re.compile(r"\w+(?:['’]\w+)*")  # edge punctuation is not part of a word, as in alignment

PARAGRAPH = (
    "The old lighthouse stood on the cliff for a hundred years. Every night, the keeper climbed "
    "the spiral stairs, trimmed the wick, polished the great lens, and watched the ships pass "
    "safely through the narrow strait below. Then the storms came. One winter, a wave as tall as "
    "a church tore the door from its hinges and flooded the lower rooms with cold black water. "
    "Nobody lives there now. Only the gulls remember the light."
)
COMMAS = "When the night falls, and the lanterns dim, and the river sings its quiet song, we will walk home together."
LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosisxxxxx"  # 50 characters
SPANISH = "¿Dónde está la biblioteca? ¡Allí, junto al río!"
FRENCH = "« Bonjour », dit-il. « Où est la gare ? » demanda-t-elle."

TEXTS = {
    "short": "Hello, world.",
    "paragraph": PARAGRAPH,
    "commas": COMMAS,
    "long_word": f"They call it {LONG_WORD}, a word longer than any subtitle line can hold.",
    "spanish": SPANISH,
    "french": FRENCH,
    "quotes": '"Tom & Jerry," she said, "are back <again> --> soon."',
    "single": "Yes.",
}


def make_words(text: str, start: float = 0.5, length: float = 0.3, space: float = 0.05,
               sentence_pause: float = 0.6) -> tuple[list[dict], float]:
    """Evenly spaced words, with a longer pause after a word followed by . ! ? (or 。！？);
    returns (words, file duration)."""
    words, t = [], start
    for m in WORD_RE.finditer(text):
        words.append({"text": m.group(), "start": t, "end": t + length, "span": [m.start(), m.end()]})
        after = text[m.end():].lstrip()
        t += length + (sentence_pause if after[:1] in (".", "!", "?", "。", "！", "？") else space)
    return words, t + 0.5


def collapse(s: str) -> str:
    return " ".join(s.split())


def cue_text(c: Cue, sep: str = " ") -> str:
    return sep.join(c.lines)


def check(text: str, words: list[dict], duration: float, result: list[Cue], *, max_chars: int = 42,
          max_lines: int = 2, long_words: tuple[str, ...] = (), word_re: re.Pattern = WORD_RE, sep: str = " "):
    """The invariants every result must have."""
    assert result
    for c in result:
        assert 1 <= len(c.lines) <= max_lines, c
        for line in c.lines:
            assert line and line == line.strip()
            assert len(line) <= max_chars or line in long_words, (line, len(line))
        assert c.end > c.start
    for a, b in zip(result, result[1:]):
        assert a.end <= b.start, (a, b)
    assert result[0].start <= words[0]["start"]
    assert result[-1].end >= words[-1]["end"]
    assert result[-1].end <= duration
    # The source text, whitespace collapsed, punctuation and all.
    assert sep.join(cue_text(c, sep) for c in result) == (collapse(text) if sep == " " else text)
    # Each cue covers its own words (the words are the tokens of its text, in order).
    i = 0
    for c in result:
        n = len(word_re.findall(cue_text(c, sep)))
        assert n >= 1
        mine = words[i:i + n]
        assert [w["text"] for w in mine] == word_re.findall(cue_text(c, sep))
        assert c.start <= mine[0]["start"] and c.end >= mine[-1]["end"]
        i += n
    assert i == len(words)


def check_formats(result: list[Cue]):
    """SRT and WebVTT parse back to the same cues (times to the millisecond)."""
    subs = list(srt.parse(render_srt(result)))
    assert len(subs) == len(result)
    for k, (sub, c) in enumerate(zip(subs, result), 1):
        assert sub.index == k
        assert sub.content == "\n".join(c.lines)
        assert abs(sub.start.total_seconds() - c.start) < 0.001
        assert abs(sub.end.total_seconds() - c.end) < 0.001
        assert sub.end > sub.start
    for a, b in zip(subs, subs[1:]):
        assert a.end <= b.start

    vtt = webvtt.from_buffer(io.StringIO(render_vtt(result)))
    assert len(vtt.captions) == len(result)
    prev_end = 0
    for cap, c in zip(vtt.captions, result):
        assert html.unescape(cap.text) == "\n".join(c.lines)
        start, end = cap.start_time.in_milliseconds(), cap.end_time.in_milliseconds()
        assert abs(start / 1000 - c.start) < 0.001 and abs(end / 1000 - c.end) < 0.001
        assert prev_end <= start < end
        prev_end = end


def split_into_sentences(result: list[Cue], sentences: list[str]) -> list[list[Cue]]:
    """The cues grouped by sentence; fails if a cue spans a sentence end."""
    groups, k = [], 0
    for s in sentences:
        group, shown = [], ""
        while shown != s:
            assert k < len(result) and len(shown) < len(s), f"a cue crosses the end of {s!r}"
            group.append(result[k])
            shown = " ".join(cue_text(c) for c in group)
            k += 1
        groups.append(group)
    assert k == len(result)
    return groups


# --- cues ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TEXTS))
def test_invariants_and_formats(name):
    text = TEXTS[name]
    words, duration = make_words(text)
    result = cues(text, words, duration)
    check(text, words, duration, result, long_words=(LONG_WORD + ",",))
    check_formats(result)


@pytest.mark.parametrize("max_chars,max_lines", [(20, 1), (16, 2), (30, 3), (12, 2)])
def test_other_limits(max_chars, max_lines):
    for name in ("paragraph", "commas", "spanish", "french"):
        text = TEXTS[name]
        words, duration = make_words(text)
        result = cues(text, words, duration, max_chars=max_chars, max_lines=max_lines)
        # Units that never split: spaced guillemets with their word, hyphen-glued words.
        unbreakable = ("« Bonjour »,", "demanda-t-elle.")
        check(text, words, duration, result, max_chars=max_chars, max_lines=max_lines, long_words=unbreakable)
        check_formats(result)


def test_short_line():
    words, duration = make_words("Hello, world.")
    (c,) = cues("Hello, world.", words, duration)
    assert c.lines == ("Hello, world.",)
    assert c.start == 0.5  # the first word's start
    assert c.end == pytest.approx(0.5 + 0.7)  # the speech (0.65 s) held to min_duration


def test_whitespace_collapsed_and_outer_punctuation_kept():
    text = '  (Hello,\n\t  "world")...  '
    words, duration = make_words(text)
    (c,) = cues(text, words, duration)
    assert c.lines == ('(Hello, "world")...',)


def test_unspoken_text_outside_the_words_is_not_shown():
    text = "[sighs] Fine. Whatever."
    words, duration = make_words(text)
    words = words[1:]  # the aligner has no word for the stage direction
    assert " ".join(cue_text(c) for c in cues(text, words, duration)) == "Fine. Whatever."


def test_paragraph_breaks_at_sentence_ends():
    words, duration = make_words(PARAGRAPH)
    result = cues(PARAGRAPH, words, duration)
    sentences = re.split(r"(?<=[.!?])\s+", PARAGRAPH)
    assert len(sentences) == 6
    groups = split_into_sentences(result, sentences)
    for s, group in zip(sentences, groups):
        if len(s) <= 42:
            assert len(group) == 1 and len(group[0].lines) == 1, group
        elif len(s) > 84:
            assert len(group) >= 2
    # The long second sentence (133 chars, many commas) is cut only at commas.
    for c in groups[1][:-1]:
        assert cue_text(c).endswith(","), groups[1]


def test_sentence_end_inside_a_cue_with_lowercase_continuation():
    text = '"Stop!" she said. "Why?"'
    words, duration = make_words(text)
    result = cues(text, words, duration)
    assert [cue_text(c) for c in result] == ['"Stop!" she said.', '"Why?"']


def test_abbreviation_is_not_a_sentence_end():
    text = "Mr. Smith went home. He slept."
    words, duration = make_words(text)
    result = cues(text, words, duration)
    assert [cue_text(c) for c in result] == ["Mr. Smith went home.", "He slept."]


def test_commas_split_at_clauses_balanced():
    words, duration = make_words(COMMAS)
    result = cues(COMMAS, words, duration)
    check(COMMAS, words, duration, result)
    # 107 chars need two cues; of the clause splits that fit, the most balanced.
    assert [cue_text(c) for c in result] == [
        "When the night falls, and the lanterns dim,",
        "and the river sings its quiet song, we will walk home together.",
    ]
    lengths = [len(cue_text(c)) for c in result]
    # Independent check: no other clause split into two cues that fit is more balanced.
    clauses = [m.end() for m in re.finditer(r",", COMMAS)]
    options = [abs(len(COMMAS[:p].strip()) - len(COMMAS[p:].strip())) for p in clauses
               if len(COMMAS[:p].strip()) <= 84 and len(COMMAS[p:].strip()) <= 84]
    assert abs(lengths[0] - lengths[1]) == min(options)


def test_clause_split_preferred_over_mid_clause_split():
    text = "We searched the old mill and the flooded cellar, but the key was never found anywhere in the whole village."
    words, duration = make_words(text)
    result = cues(text, words, duration)
    check(text, words, duration, result)
    assert [cue_text(c) for c in result] == [
        "We searched the old mill and the flooded cellar,",
        "but the key was never found anywhere in the whole village.",
    ]
    # Without the comma the split falls between words, and is balanced: no word boundary gives
    # two halves closer in length.
    plain = text.replace(",", "")
    words, duration = make_words(plain)
    result = cues(plain, words, duration)
    check(plain, words, duration, result)
    assert len(result) == 2
    first, second = (cue_text(c) for c in result)
    assert first != "We searched the old mill and the flooded cellar"  # the balanced break is elsewhere
    spaces = [m.start() for m in re.finditer(" ", plain)]
    best = min(abs(len(plain[:p]) - len(plain[p + 1:])) for p in spaces)
    assert abs(len(first) - len(second)) == best


def test_lines_are_balanced_bottom_heavy():
    text = "The quick brown fox jumps over the lazy dog by the river"
    words, duration = make_words(text)
    (c,) = cues(text, words, duration)
    assert len(c.lines) == 2
    spaces = [m.start() for m in re.finditer(" ", text)]
    best = min(abs(len(text[:p]) - len(text[p + 1:])) for p in spaces)
    top, bottom = (len(line) for line in c.lines)
    assert abs(top - bottom) == best
    assert c.lines == ("The quick brown fox jumps", "over the lazy dog by the river")


def test_long_word_gets_its_own_line():
    text = f"They call it {LONG_WORD}, a word longer than any subtitle line can hold."
    words, duration = make_words(text)
    result = cues(text, words, duration)
    check(text, words, duration, result, long_words=(LONG_WORD + ",",))
    lines = [line for c in result for line in c.lines]
    assert LONG_WORD + "," in lines  # whole, uncut, alone on its line
    (word_alone,) = cues(LONG_WORD, *make_words(LONG_WORD))
    assert word_alone.lines == (LONG_WORD,)


def test_spanish_sentences():
    words, duration = make_words(SPANISH)
    result = cues(SPANISH, words, duration)
    assert [c.lines for c in result] == [("¿Dónde está la biblioteca?",), ("¡Allí, junto al río!",)]
    # With a short pause the two short sentences share a cue, one sentence per line.
    words, duration = make_words(SPANISH, sentence_pause=0.1)
    result = cues(SPANISH, words, duration)
    assert [c.lines for c in result] == [("¿Dónde está la biblioteca?", "¡Allí, junto al río!")]
    check_formats(result)


def test_merged_cue_breaks_lines_at_the_sentence_end():
    text = "I'm here. Come with me now, quickly, please."
    words, duration = make_words(text, sentence_pause=0.2)
    result = cues(text, words, duration)
    # The most balanced break would be "I'm here. Come with me / now, quickly, please."
    assert [c.lines for c in result] == [("I'm here.", "Come with me now, quickly, please.")]
    words, duration = make_words(text, sentence_pause=0.6)  # a real pause: separate cues
    assert [c.lines for c in cues(text, words, duration)] == [("I'm here.",), ("Come with me now, quickly, please.",)]


def test_only_short_sentences_merge():
    text = "Stop. We have to turn back before the bridge collapses under us."
    words, duration = make_words(text, sentence_pause=0.1)
    assert len(cues(text, words, duration)) == 2  # the second sentence is longer than a line


def test_french_guillemets_stay_with_their_words():
    words, duration = make_words(FRENCH)
    result = cues(FRENCH, words, duration)
    assert [cue_text(c) for c in result] == ["« Bonjour », dit-il.", "« Où est la gare ? » demanda-t-elle."]
    for max_chars in (8, 10, 12, 16):
        result = cues(FRENCH, words, duration, max_chars=max_chars)
        check(FRENCH, words, duration, result, max_chars=max_chars, long_words=("« Bonjour »,", "demanda-t-elle."))
        for c in result:
            for line in c.lines:
                assert line[0] not in "»,?.!-" and line[-1] != "«", (max_chars, c.lines)
        assert "dit-il." in [w for c in result for line in c.lines for w in line.split()]


def test_no_break_space_is_not_a_line_break():
    text = "Il\u00a0a dit\u00a0: « Entrez\u00a0! »"
    words, duration = make_words(text)
    result = cues(text, words, duration, max_chars=8)
    lines = [line for c in result for line in c.lines]
    assert "Entrez\u00a0!" in " ".join(lines)
    assert all(not line.startswith(("!", ":")) for line in lines)


def test_cjk_breaks_without_spaces():
    text = "今日は晴れです。明日は雨でしょう。"
    char_re = re.compile(r"\w")
    words = []
    t = 0.5
    for m in char_re.finditer(text):
        words.append({"text": m.group(), "start": t, "end": t + 0.2, "span": [m.start(), m.end()]})
        t += 0.25 + (0.6 if text[m.end():m.end() + 1] == "。" else 0)
    result = cues(text, words, t + 1, max_chars=6)
    check(text, words, t + 1, result, max_chars=6, word_re=char_re, sep="")
    assert ["".join(c.lines) for c in result] == ["今日は晴れです。", "明日は雨でしょう。"]
    check_formats(result)


def test_single_word():
    words, duration = make_words("Yes.")
    (c,) = cues("Yes.", words, duration)
    assert c.lines == ("Yes.",) and c.start == 0.5 and c.end == pytest.approx(1.2)
    # Not held past the end of the file.
    (c,) = cues("Yes.", words, 0.9)
    assert c.end == pytest.approx(0.9)


def test_zero_duration_words():
    text = "Hi there."
    words = [{"text": "Hi", "start": 1.0, "end": 1.0, "span": [0, 2]},
             {"text": "there", "start": 1.0, "end": 1.0, "span": [3, 8]}]
    (c,) = cues(text, words, 1.0, min_duration=0.0)  # at the very end of the file
    assert c.start < c.end <= 1.0
    assert c.end - c.start == pytest.approx(0.001)
    check_formats([c])
    (c,) = cues(text, words, 5.0, min_duration=0.0)
    assert c.start == 1.0 and c.end == pytest.approx(1.001)
    # Two zero-length cues at the same instant (too long to merge) still do not overlap.
    text = "Hi. Bye."
    words = [{"text": "Hi", "start": 1.0, "end": 1.0, "span": [0, 2]},
             {"text": "Bye", "start": 1.0, "end": 1.0, "span": [4, 7]}]
    result = cues(text, words, 5.0, min_duration=0.0, max_chars=4, max_lines=1)
    assert [c.lines for c in result] == [("Hi.",), ("Bye.",)]
    assert result[0].start == 1.0 and result[0].end == pytest.approx(1.001)
    assert result[1].start == result[0].end and result[1].end == pytest.approx(1.002)
    check_formats(result)
    # Merged when they fit together: no pause between them.
    assert [c.lines for c in cues(text, words, 5.0)] == [("Hi. Bye.",)]


def test_min_duration_stops_at_next_cue_minus_gap():
    text = "Go. Now."
    words = [{"text": "Go", "start": 0.5, "end": 0.7, "span": [0, 2]},
             {"text": "Now", "start": 1.5, "end": 1.7, "span": [4, 7]}]
    first, second = cues(text, words, 2.5, min_duration=2.0, gap=0.1)
    assert first.lines == ("Go.",) and second.lines == ("Now.",)
    assert first.end == pytest.approx(1.4)  # next start 1.5 minus the gap
    assert second.start == 1.5 and second.end == pytest.approx(2.5)  # the end of the file
    # A pause shorter than the gap: no extension, but the speech is not cut either.
    words[1].update(start=0.75, end=1.0)
    first, second = cues(text, words, 2.5, min_duration=2.0, gap=0.1, max_chars=4, max_lines=1)
    assert first.end == pytest.approx(0.7) and second.start == 0.75
    # A short pause and short sentences: one cue.
    (both,) = cues(text, words, 2.5, min_duration=2.0, gap=0.1)
    assert both.lines == ("Go. Now.",) and both.start == 0.5 and both.end == pytest.approx(2.5)


def test_empty():
    assert cues("", [], 1.0) == []
    assert cues("Hello.", [], 1.0) == []
    assert render_srt([]) == ""
    assert render_vtt([]) == "WEBVTT\n"


def test_bad_input():
    with pytest.raises(ValueError):
        cues("Hello world", [{"text": "world", "start": 0, "end": 1, "span": [6, 11]},
                             {"text": "Hello", "start": 1, "end": 2, "span": [0, 5]}], 2.0)
    with pytest.raises(ValueError):
        cues("Hi", [{"text": "Hi", "start": 0, "end": 1, "span": [0, 9]}], 2.0)
    with pytest.raises(ValueError):
        cues("Hi", [{"text": "Hi", "start": 0, "end": 1, "span": [0, 2]}], 2.0, max_chars=0)


# --- rendering ----------------------------------------------------------------------------------

def test_srt_exact():
    out = render_srt([Cue(0.5, 1.25, ("Hello,", "world.")), Cue(3661.0, 3662.0005, ("Bye.",))])
    assert out == (
        "1\n00:00:00,500 --> 00:00:01,250\nHello,\nworld.\n\n"
        "2\n01:01:01,000 --> 01:01:02,001\nBye.\n"
    )


def test_vtt_exact_and_escaped():
    out = render_vtt([Cue(0.5, 1.25, ("Tom & Jerry <3", "a --> b"))])
    assert out == "WEBVTT\n\n00:00:00.500 --> 00:00:01.250\nTom &amp; Jerry &lt;3\na --&gt; b\n"
    assert out.count("-->") == 1
    # SRT leaves the text alone.
    assert "Tom & Jerry <3\na --> b\n" in render_srt([Cue(0.5, 1.25, ("Tom & Jerry <3", "a --> b"))])


def test_rounding_keeps_cues_apart_and_non_empty():
    result = [Cue(0.0, 1.0004, ("a",)), Cue(1.0004, 1.0006, ("b",)), Cue(1.0006, 1.0007, ("c",))]
    subs = list(srt.parse(render_srt(result)))
    assert len(subs) == 3
    for a, b in zip(subs, subs[1:]):
        assert a.end <= b.start
    assert all(s.end > s.start for s in subs)
    assert subs[0].start.total_seconds() == 0.0 and subs[0].end.total_seconds() == pytest.approx(1.001)
    caps = webvtt.from_buffer(io.StringIO(render_vtt(result))).captions
    ms = [(c.start_time.in_milliseconds(), c.end_time.in_milliseconds()) for c in caps]
    assert ms == [(0, 1001), (1001, 1002), (1002, 1003)]

"""IPA phonemes, as eSpeak NG writes them in IPA mode (what Piper voices are trained on), grouped
into sounds and named by eSpeak's ASCII mnemonics, so lip-sync (:mod:`assetbuild.export.lipsync`,
which reads the mnemonics eSpeak reports in its phoneme events) maps them the same way.

Piper speaks one Unicode code point per phoneme id: ``t ʃ`` for "ch", ``a ɪ`` for "my", a length
mark ``ː`` after its vowel, stress marks ``ˈ ˌ`` before a syllable. :func:`group` joins code points
into sounds: a base symbol with its modifiers (length, aspiration, palatalisation, r-colouring,
combining marks), affricates and the diphthongs the lip-sync table glides through.
"""

from __future__ import annotations

import unicodedata

STRESS = frozenset("ˈˌ")
# Modifiers that belong to the symbol before them.
_MODIFIERS = frozenset("ːˑʲʰʷˤ˞̃")

# Two-symbol sounds, joined before anything else is looked up.
_PAIRS: dict[str, str] = {
    "tʃ": "tS", "dʒ": "dZ", "ts": "ts", "dz": "dz", "tɕ": "ts\\", "dʑ": "dz\\", "pf": "pF",
    "aɪ": "aI", "aʊ": "aU", "eɪ": "eI", "ɔɪ": "OI", "ɔʏ": "OY", "oʊ": "oU", "əʊ": "@U",
    "ɛə": "e@", "ɪə": "i@", "ʊə": "U@",
}

# One IPA symbol -> eSpeak mnemonic (the symbols the lip-sync table knows).
_SINGLE: dict[str, str] = {
    # lips
    "p": "p", "b": "b", "m": "m", "ɱ": "M", "ɸ": "p\\", "β": "B", "f": "f", "v": "v", "ʋ": "v", "w": "w",
    "ʍ": "w", "ɥ": "w",
    # teeth and tongue tip
    "θ": "T", "ð": "D", "t": "t", "d": "d", "ʈ": "t", "ɖ": "d", "n": "n", "ɳ": "n", "l": "l", "ɫ": "l",
    "ɭ": "l", "ʎ": "L", "ɬ": "K", "s": "s", "z": "z", "r": "r", "ɹ": "r\\", "ɻ": "r", "ɽ": "r", "ɾ": "*",
    "ʁ": "R", "ʀ": "R",
    # postalveolar and palatal
    "ʃ": "S", "ʒ": "Z", "ʂ": "S", "ʐ": "Z", "ɕ": "s\\", "ʑ": "z\\", "ɧ": "sx", "ç": "C", "j": "j",
    "ʝ": "j", "ɲ": "n", "ɟ": "J", "c": "c",
    # back of the mouth
    "k": "k", "g": "g", "ɡ": "g", "q": "q", "ɢ": "g", "ŋ": "N", "ɴ": "N\\", "x": "x", "χ": "X", "ɣ": "Q",
    "ɰ": "w", "h": "h", "ħ": "H", "ɦ": "H", "ʔ": "?", "ʕ": "?",
    # vowels
    "i": "i", "ɪ": "I", "ᵻ": "I", "ɨ": "i", "e": "e", "ɛ": "E", "æ": "a", "a": "a", "ɐ": "&", "ɑ": "A",
    "ɒ": "0", "ʌ": "V", "ə": "@", "ɘ": "@", "ɚ": "3", "ɜ": "3", "ɝ": "3", "ɞ": "3", "ɔ": "O", "o": "o",
    "ʊ": "U", "u": "u", "ʉ": "u", "ɯ": "u", "ɤ": "o", "y": "y", "ʏ": "Y", "ø": "Y", "œ": "W", "ɶ": "W",
    "ɵ": "8",
}


def is_sound(symbol: str) -> bool:
    """A code point that is spoken (not a stress mark, space, or punctuation Piper keeps as a pause)."""
    if not symbol or symbol.isspace() or symbol in STRESS:
        return False
    cat = unicodedata.category(symbol[0])
    return not cat.startswith(("P", "Z", "S"))


def mnemonic(sound: str) -> str:
    """eSpeak's mnemonic for one grouped sound, modifiers dropped (``oʊ`` -> ``oU``, ``ɑː`` -> ``A``);
    the IPA itself when there is none (lip-sync then treats it as an unknown vowel or consonant)."""
    base = "".join(c for c in sound if c not in _MODIFIERS and unicodedata.category(c) != "Mn")
    if base in _PAIRS:
        return _PAIRS[base]
    if base in _SINGLE:
        return _SINGLE[base]
    return base or sound


def group(symbols: list[str]) -> list[tuple[int, int]]:
    """Spans ``(first, last + 1)`` of ``symbols`` (one code point each) that make one sound.

    Stress marks, spaces and punctuation are in no span. A modifier joins the sound before it;
    a pair in the affricate and diphthong table is one sound.
    """
    spans: list[tuple[int, int]] = []
    i, n = 0, len(symbols)
    while i < n:
        s = symbols[i]
        if s and (s in _MODIFIERS or unicodedata.category(s[0]) == "Mn"):
            if spans and spans[-1][1] == i:  # attached to the sound just before
                spans[-1] = (spans[-1][0], i + 1)
            i += 1
            continue
        if not is_sound(s):
            i += 1
            continue
        j = i + 1
        if j < n and s + symbols[j] in _PAIRS:
            j += 1
        spans.append((i, j))
        i = j
    return spans

"""Prompt words -> a recipe: which generators to run, in which variant, shaped how.

Pure Python (no numpy), so it is cheap to import and easy to test.

Words are matched against small tables. Generator words ("rain", "laser") pick layers;
modifier words ("heavy", "distant", "descending") bind to the nearest generator word in the
same clause, preferring the one that follows ("heavy rain with distant thunder": heavy ->
rain, distant -> thunder); a modifier with no generator in its clause applies to every layer
("retro laser, descending"). Clauses are split at punctuation and at "with", "and", ...
"no"/"without" drops the next generator. Some words are weak ("night", "forest"): they only
pick a generator when no other word did, so "rainy night" is rain, while "night" is crickets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

# --------------------------------------------------------------------------- modifiers


@dataclass(frozen=True)
class Mods:
    """How to shape a generator. Neutral values everywhere are 1.0 / 0 / False."""

    level: float = 1.0  # gain in a mix of layers
    intensity: float = 1.0  # density/strength: heavy > 1 > light
    distance: float = 0.0  # 0 close .. 1 far (quieter, duller)
    brightness: float = 1.0  # > 1 brighter, < 1 darker (filter cut-offs)
    speed: float = 1.0  # rate of events and modulation; also shortens effects
    pitch: float = 1.0  # frequency multiplier
    size: float = 1.0  # > 1 bigger: longer, lower, heavier
    sweep: int = 0  # -1 descending, +1 ascending (effects)
    retro: bool = False  # square waves, chiptune
    words: tuple[str, ...] = ()  # modifier words applied, for notes

    def with_word(self, word: str, power: float = 1.0) -> Mods:
        eff = MODIFIERS[word]
        kw: dict[str, Any] = {"words": self.words + (word,)}
        for key, val in eff.items():
            if key in ("sweep", "retro", "distance"):
                kw[key] = val  # set, not accumulate: the last word wins
            else:
                kw[key] = getattr(self, key) * float(val) ** power
        return replace(self, **kw)

    def merged(self, other: Mods) -> Mods:
        m = self
        for w in other.words:
            m = m.with_word(w)
        return m


_SOFTER = {"intensity": 0.6, "level": 0.6, "brightness": 0.75}
_FAR = {"distance": 1.0}
_NEAR = {"distance": 0.0, "level": 1.2, "brightness": 1.15}
_SLOW = {"speed": 0.65}
_FAST = {"speed": 1.5}
_BIG = {"size": 1.6, "pitch": 0.85}
_SMALL = {"size": 0.6, "pitch": 1.2}
_DOWN = {"sweep": -1}
_UP = {"sweep": 1}
_RETRO = {"retro": True}
_BRIGHT = {"brightness": 1.7}
_DARK = {"brightness": 0.55}

MODIFIERS: dict[str, dict[str, Any]] = {
    "heavy": {"intensity": 1.7, "level": 1.2, "size": 1.2},
    "strong": {"intensity": 1.6, "level": 1.2}, "intense": {"intensity": 1.6, "level": 1.2},
    "light": {"intensity": 0.5, "level": 0.75}, "soft": _SOFTER, "gentle": _SOFTER, "quiet": _SOFTER,
    "faint": {"intensity": 0.5, "level": 0.5, "brightness": 0.8}, "subtle": _SOFTER, "calm": _SOFTER,
    "busy": {"intensity": 1.6}, "crowded": {"intensity": 1.6}, "dense": {"intensity": 1.6},
    "sparse": {"intensity": 0.5},
    "occasional": {"intensity": 0.5}, "constant": {"intensity": 1.3},
    "distant": _FAR, "far": _FAR, "faraway": _FAR, "faroff": _FAR, "remote": _FAR, "background": _FAR,
    "muffled": {"distance": 0.7, "brightness": 0.6},
    "close": _NEAR, "near": _NEAR, "nearby": _NEAR, "closeup": _NEAR, "loud": {"level": 1.3, "intensity": 1.3},
    "slow": _SLOW, "slowly": _SLOW, "lazy": _SLOW, "fast": _FAST, "quick": _FAST, "rapid": _FAST,
    "high": {"pitch": 1.5}, "higher": {"pitch": 1.5}, "squeaky": {"pitch": 1.8},
    "low": {"pitch": 0.67}, "lower": {"pitch": 0.67}, "deep": {"pitch": 0.6, "brightness": 0.8},
    "descending": _DOWN, "falling": _DOWN, "downward": _DOWN, "down": _DOWN, "dropping": _DOWN,
    "ascending": _UP, "rising": _UP, "upward": _UP, "up": _UP,
    "retro": _RETRO, "8bit": _RETRO, "16bit": _RETRO, "chiptune": _RETRO, "chip": _RETRO, "arcade": _RETRO,
    "nes": _RETRO, "gameboy": _RETRO, "pixel": _RETRO, "sfxr": _RETRO, "bfxr": _RETRO,
    "bright": _BRIGHT, "crisp": _BRIGHT, "sharp": _BRIGHT, "airy": _BRIGHT,
    "dark": _DARK, "dull": _DARK, "warm": {"brightness": 0.7},
    "small": _SMALL, "little": _SMALL, "tiny": {"size": 0.5, "pitch": 1.35}, "short": {"size": 0.6},
    "big": _BIG, "large": _BIG, "huge": {"size": 2.0, "pitch": 0.75}, "massive": {"size": 2.0, "pitch": 0.75},
    "giant": {"size": 2.0, "pitch": 0.75}, "enormous": {"size": 2.0, "pitch": 0.75}, "long": {"size": 1.6},
}
INTENSIFIERS = {"very": 1.6, "really": 1.6, "extremely": 2.0, "super": 1.6, "slightly": 0.5, "somewhat": 0.6,
                "bit": 0.5}
NEGATIONS = {"no", "not", "without", "minus"}
CLAUSE_WORDS = {"with", "and", "plus", "over", "under", "behind", "in", "on", "then", "but", "while", "without",
                "&"}

# --------------------------------------------------------------------------- generators

# word -> list of (generator, variant, implied modifier words). Weak words are listed apart.
_G = tuple[str, str | None, tuple[str, ...]]


def _one(gen: str, variant: str | None = None, *mods: str) -> list[_G]:
    return [(gen, variant, mods)]


AMBIENCE: dict[str, list[_G]] = {}
SFX: dict[str, list[_G]] = {}
WEAK: dict[str, list[_G]] = {}  # ambience words that only count when nothing stronger matched
WEAK_SFX: dict[str, list[_G]] = {}


def _add(table: dict[str, list[_G]], words: str, entry: list[_G]) -> None:
    for w in words.split():
        table[w] = entry


_add(AMBIENCE, "wind winds windy gust gusts gusty blowing", _one("wind"))
_add(AMBIENCE, "breeze breezy", _one("wind", None, "light"))
_add(AMBIENCE, "gale howling blizzard windstorm", _one("wind", "howl", "strong"))
_add(AMBIENCE, "rain rainy raining rainfall raindrops raindrop shower showers precipitation", _one("rain"))
_add(AMBIENCE, "drizzle drizzling sprinkle", _one("rain", None, "light", "light"))
_add(AMBIENCE, "downpour pouring torrential monsoon deluge", _one("rain", None, "heavy"))
_add(AMBIENCE, "thunder thunderclap thunderclaps thundering lightning", _one("thunder"))
_add(AMBIENCE, "thunderstorm thunderstorms rainstorm", [("rain", None, ()), ("thunder", None, ())])
_add(AMBIENCE, "storm stormy tempest hurricane typhoon",
     [("rain", None, ("heavy",)), ("thunder", None, ()), ("wind", None, ())])
_add(AMBIENCE, "ocean oceans sea seas waves wave surf beach shore shoreline coast coastal tide tides seaside",
     _one("water", "ocean"))
_add(AMBIENCE, "stream streams creek brook babbling water flowing trickle trickling fountain rapids",
     _one("water", "stream"))
_add(AMBIENCE, "river rivers", _one("water", "river"))
_add(AMBIENCE, "waterfall waterfalls cascade", _one("water", "waterfall"))
_add(AMBIENCE, "drip drips dripping droplets leak leaking", _one("water", "drips"))
_add(AMBIENCE, "fire fires campfire fireplace bonfire crackle crackles crackling embers flames flame burning "
     "hearth firepit torch torches", _one("fire"))
_add(AMBIENCE, "birds bird birdsong chirp chirps chirping songbirds songbird tweeting warbling sparrows "
     "robins dawnchorus", _one("birds"))
_add(AMBIENCE, "insects insect crickets cricket bugs katydids katydid", _one("insects", "crickets"))
_add(AMBIENCE, "cicada cicadas", _one("insects", "cicadas"))
_add(AMBIENCE, "room roomtone hum humming electrical electric fridge refrigerator hvac ventilation vent "
     "aircon airconditioning fan office server serverroom machinery transformer fluorescent interior indoor "
     "indoors hallway corridor generator", _one("roomtone"))
_add(AMBIENCE, "drone drones spaceship starship scifi alien void ominous underwater", _one("drone"))
_add(AMBIENCE, "crowd crowds murmur murmuring chatter chattering people tavern inn market marketplace "
     "bazaar restaurant cafe bar pub audience party voices babble walla talking conversation lobby",
     _one("crowd"))

_add(WEAK, "night nighttime evening swamp marsh", _one("insects", "crickets"))
_add(WEAK, "forest woods woodland morning dawn garden park meadow countryside spring",
     [("birds", None, ()), ("wind", None, ("light", "faint"))])
_add(WEAK, "jungle rainforest tropical", [("birds", None, ()), ("insects", "cicadas", ("faint",))])
_add(WEAK, "cave cavern dungeon crypt mine", [("drone", "cave", ("dark",)), ("water", "drips", ())])
_add(WEAK, "space ambient dark eerie atmosphere atmospheric", _one("drone"))
_add(WEAK, "buzz buzzing", _one("roomtone", "buzz"))
_add(WEAK, "city town street", [("crowd", None, ("distant",)), ("roomtone", None, ("distant",))])

_add(SFX, "coin coins pickup pick collect collectible collected gem gems bling loot money cash treasure "
     "ding score", _one("coin"))
_add(SFX, "jump jumping jumps hop hops bounce bouncy boing spring leap", _one("jump"))
_add(SFX, "laser lasers shoot shooting pew zap zapper blaster phaser raygun projectile", _one("laser"))
_add(SFX, "explosion explosions explode exploding boom blast bomb grenade detonation kaboom fireball "
     "dynamite", _one("explosion"))
_add(SFX, "gunshot gunshots gun pistol rifle shotgun gunfire", _one("explosion", "gunshot"))
_add(SFX, "hit hits impact impacts punch punches thud thump smack hurt damage slam knock bump strike kick "
     "slap", _one("hit"))
_add(SFX, "clang clank metal metallic anvil", _one("hit", "metal"))
_add(SFX, "click clicks tick tap button press toggle switch", _one("ui", "click"))
_add(SFX, "blip blips beep beeps bleep hover cursor select navigate notification ping", _one("ui", "blip"))
_add(SFX, "ui menu interface hud", _one("ui"))
_add(SFX, "confirm confirmation accept ok success correct", _one("ui", "confirm"))
_add(SFX, "cancel error deny denied wrong fail failure invalid buzzer", _one("ui", "error"))
_add(SFX, "powerup powerups power upgrade levelup buff boost charge charging", _one("powerup"))
_add(SFX, "powerdown", _one("powerup", None, "descending"))
_add(SFX, "footstep step stomp", _one("footstep"))
_add(SFX, "footsteps steps walk walking run running", _one("footstep", "walk"))
_add(SFX, "whoosh whooshes swoosh swish woosh swing swipe swoop flyby dash", _one("whoosh"))
_add(WEAK_SFX, "sword blade", _one("whoosh"))
_add(SFX, "magic magical shimmer shimmering sparkle sparkles sparkly spell twinkle fairy enchant enchanted "
     "chime chimes glitter heal healing teleport mana", _one("magic"))
_add(WEAK_SFX, "shot beam", _one("laser"))
_add(WEAK_SFX, "burst", _one("explosion", None, "small"))
_add(WEAK_SFX, "item ring", _one("coin"))

# Words in a music prompt that layer an ambience bed under the music ("calm piano with rain").
MUSIC_LAYERS = {"rain", "rainy", "raining", "storm", "stormy", "thunder", "thunderstorm", "wind", "windy",
                "waves", "ocean", "sea", "stream", "river", "creek", "fire", "fireplace", "campfire",
                "crackling", "birds", "birdsong", "crickets", "cicadas"}

# Words generators read directly (surfaces, mains frequency, materials...): understood when present.
DETAIL_WORDS = {"hz", "50hz", "60hz", "50", "60", "mains", "clap", "crack", "boom", "rumble", "rolling", "boots",
                "debris", "rubble", "wood", "wooden", "door", "evil", "curse", "cursed", "sprint", "sprinting", "jog",
                "jogging", "sword", "blade", "bonfire", "candle", "sneak", "sneaking"}

# Surfaces and other variant words generators look at directly.
SURFACES = {"gravel": "gravel", "dirt": "gravel", "sand": "gravel", "snow": "snow", "grass": "grass",
            "leaves": "grass", "wood": "wood", "wooden": "wood", "floorboards": "wood", "metal": "metal",
            "metallic": "metal", "stone": "stone", "concrete": "stone", "tile": "stone", "marble": "stone",
            "water": "water", "puddle": "water", "puddles": "water", "mud": "water"}

# --------------------------------------------------------------------------- music

MOODS = {
    "calm": "calm peaceful relaxing relaxed chill serene tranquil soothing lofi lullaby gentle quiet ambient "
            "meditative soft",
    "happy": "happy cheerful upbeat joyful playful fun sunny uplifting bouncy cheery jolly positive victory",
    "sad": "sad melancholy melancholic sorrow sorrowful somber sombre tragic mournful lonely grief nostalgic "
           "emotional bittersweet",
    "tense": "tense tension suspense suspenseful danger dangerous horror scary creepy ominous stealth anxious "
             "thriller dread chase urgent",
    "epic": "epic heroic battle war cinematic orchestral grand triumphant boss combat action adventure "
            "victorious powerful",
    "mysterious": "mysterious mystery eerie enigmatic dungeon puzzle curious noir strange cave dark",
    "magical": "magical magic fantasy enchanted whimsical fairy dreamy wonder ethereal mystical celestial",
}
MOOD_OF = {w: mood for mood, words in MOODS.items() for w in words.split()}
NOTE_NAMES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


@dataclass
class MusicSpec:
    mood: str = "neutral"
    other_moods: list[str] = field(default_factory=list)
    bpm: float | None = None  # from "NN bpm"
    key: int | None = None  # pitch class of the tonic
    mode: str | None = None  # "major" | "minor"
    drums: bool | None = None
    timbre: str | None = None  # "bell" | "piano" | ...


# --------------------------------------------------------------------------- recipe


@dataclass
class Layer:
    gen: str
    variant: str | None
    mods: Mods
    words: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.gen if not self.variant else f"{self.gen}-{self.variant}"


@dataclass
class Recipe:
    kind: str
    prompt: str
    words: list[str]
    layers: list[Layer]
    mods: Mods  # global modifiers (no generator in their clause)
    unknown: list[str]
    music: MusicSpec | None = None
    notes: list[str] = field(default_factory=list)


STOPWORDS = {"a", "an", "the", "of", "to", "for", "at", "by", "from", "into", "onto", "is", "are", "some",
             "sound", "sounds", "sfx", "effect", "effects", "fx", "noise", "ambience", "ambiance", "bed", "loop",
             "looping", "loopable", "seamless", "audio", "track", "music", "song", "theme", "like", "style",
             "game", "s", "it", "its", "very", "lots", "lot", "many", "few", "tone"}

_HYPHEN = re.compile(r"(?<=[a-z0-9])-(?=[a-z0-9])")
_TOKEN = re.compile(r"[a-z0-9#]+|[,;.!?/&]")
_BPM = re.compile(r"(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute)")
_KEY = re.compile(r"\b([a-g])(#|b|sharp|flat)?[\s-]*(major|minor|maj|min)\b")


def tokenize(prompt: str) -> list[str]:
    text = _HYPHEN.sub("", prompt.lower())  # 8-bit -> 8bit, sci-fi -> scifi, power-up -> powerup
    text = text.replace("room tone", "roomtone").replace("level up", "levelup").replace("air conditioning",
                                                                                       "airconditioning")
    text = text.replace("power up", "powerup").replace("power down", "powerdown").replace("dawn chorus",
                                                                                         "dawnchorus")
    return _TOKEN.findall(text)


def _lookup(word: str, table: dict[str, list[_G]]) -> list[_G] | None:
    if word in table:
        return table[word]
    for suffix in ("s", "es", "ing", "ed", "y"):  # crude stemming for forms not listed
        if word.endswith(suffix) and len(word) > len(suffix) + 2 and word[: -len(suffix)] in table:
            return table[word[: -len(suffix)]]
    return None


_WORDS = {  # kind -> (strong words, weak words)
    # In effects, ambience words only count when no effect word matched: "fire a laser" is a
    # laser, "footsteps in water" footsteps on a wet surface, but "thunder clap" is thunder.
    "sfx": (SFX, {**AMBIENCE, **WEAK, **WEAK_SFX}),
    "music": ({w: AMBIENCE[w] for w in MUSIC_LAYERS if w in AMBIENCE}, {}),
    "ambience": (AMBIENCE, WEAK),
}
_TABLES = {k: (s, w, {**s, **w}) for k, (s, w) in _WORDS.items()}  # kind -> (strong, weak, both)


@lru_cache(maxsize=1024)
def parse(prompt: str | None, kind: str) -> Recipe:
    """Recipe for a prompt (cached: callers must not modify it)."""
    prompt = prompt or ""
    tokens = tokenize(prompt)
    words = [t for t in tokens if t[0].isalnum()]
    strong, _, both = _TABLES.get(kind, _TABLES["ambience"])
    has_strong = any(_lookup(w, strong) for w in words)
    table = strong if has_strong else both

    # Split into clauses; each item: (word, entries or None)
    clauses: list[list[str]] = [[]]
    for tok in tokens:
        if not tok[0].isalnum() or tok in CLAUSE_WORDS:
            if clauses[-1]:
                clauses.append([])
            if tok in NEGATIONS:
                clauses[-1].append(tok)
            continue
        clauses[-1].append(tok)

    layers: dict[str, Layer] = {}
    order: list[str] = []
    global_mods = Mods()
    used: set[str] = set()
    for clause in clauses:
        gens: list[tuple[int, list[str]]] = []  # (position, generators it named)
        negate = False
        for i, w in enumerate(clause):
            if w in NEGATIONS:
                negate = True
                used.add(w)
                continue
            entries = _lookup(w, table)
            if entries is None:
                continue
            used.add(w)
            if negate:
                negate = False
                continue
            keys = []
            for gen, variant, implied in entries:
                # One layer per generator; a specific variant beats none ("storm" then "drizzle").
                if gen not in layers:
                    layers[gen] = Layer(gen, variant, Mods())
                    order.append(gen)
                layer = layers[gen]
                if layer.variant is None and variant is not None:
                    layer.variant = variant
                for mw in implied:
                    layer.mods = layer.mods.with_word(mw)
                layer.words.append(w)
                keys.append(gen)
            gens.append((i, keys))
        # Bind modifiers in this clause.
        for i, w in enumerate(clause):
            if w not in MODIFIERS:
                continue
            used.add(w)
            power = 1.0
            if i > 0 and clause[i - 1] in INTENSIFIERS:
                power = INTENSIFIERS[clause[i - 1]]
                used.add(clause[i - 1])
            after = [keys for pos, keys in gens if pos > i]
            before = [keys for pos, keys in gens if pos < i]
            target = after[0] if after else (before[-1] if before else None)
            if target is None:
                global_mods = global_mods.with_word(w, power)
            else:
                for key in target:
                    if key in layers:
                        layers[key].mods = layers[key].mods.with_word(w, power)

    # Global modifiers apply to every layer (after their own, so "distant" there still counts).
    out_layers = []
    for key in order:
        layer = layers[key]
        for w in global_mods.words:
            layer.mods = layer.mods.with_word(w)
        out_layers.append(layer)

    # Words that name a generator already chosen ("night crickets", "electrical buzz") or a detail
    # a generator reads itself ("footsteps on gravel", "60hz") were understood too.
    present = {layer.gen for layer in out_layers}
    for w in words:
        entries = _lookup(w, both)
        if entries and any(gen in present for gen, _v, _m in entries):
            used.add(w)
        if w in DETAIL_WORDS or w in SURFACES:
            used.add(w)
    music = _music(prompt, words, used) if kind == "music" else None
    unknown = [w for w in words if w not in used and w not in STOPWORDS and w not in CLAUSE_WORDS
               and w not in INTENSIFIERS and not w.isdigit()]
    return Recipe(kind=kind, prompt=prompt, words=words, layers=out_layers, mods=global_mods, unknown=unknown,
                  music=music)


def _music(prompt: str, words: list[str], used: set[str]) -> MusicSpec:
    spec = MusicSpec()
    moods = []
    for w in words:
        mood = MOOD_OF.get(w)
        if mood and mood not in moods:
            moods.append(mood)
            used.add(w)
    if moods:
        spec.mood, spec.other_moods = moods[0], moods[1:]
    text = prompt.lower()
    m = _BPM.search(text)
    if m:
        spec.bpm = float(m.group(1))
        used.update({"bpm", "beats", "per", "minute"})
    m = _KEY.search(_HYPHEN.sub("", text).replace("♯", "#").replace("♭", "b"))
    if m:
        pc = NOTE_NAMES[m.group(1)]
        acc = m.group(2) or ""
        pc += 1 if acc in ("#", "sharp") else -1 if acc in ("b", "flat") else 0
        spec.key = pc % 12
        spec.mode = "major" if m.group(3).startswith("maj") else "minor"
        used.update({m.group(1), acc, m.group(3), "sharp", "flat"} - {""})
    for w in words:
        if w in ("major", "minor") and spec.mode is None:
            spec.mode = w
            used.add(w)
        if w in ("drums", "drum", "percussion", "beat", "beats", "rhythm", "groove"):
            spec.drums = True
            used.add(w)
        if w in ("bell", "bells", "celesta", "glockenspiel", "musicbox", "chimes", "harp"):
            spec.timbre = "bell"
            used.add(w)
        if w in ("piano", "guitar", "pluck", "plucked", "keys", "synth", "pad", "pads", "strings", "arpeggio",
                 "arp", "bass", "box", "instrumental"):
            used.add(w)
    if "no" in words or "without" in words:
        for neg in ("no", "without"):
            if neg in words:
                i = words.index(neg)
                if i + 1 < len(words) and words[i + 1] in ("drums", "drum", "percussion", "beat", "beats"):
                    spec.drums = False
                    used.update({neg, words[i + 1]})
    return spec

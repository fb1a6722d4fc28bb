"""Music bed: a chord progression in a key, voiced with smooth voice leading, played by a pad,
a plucked arpeggio and a bass (plus light percussion for some moods), through a convolution
reverb. Mood words pick mode, progression, tempo range, patterns and colour.

Timing is a 16th-note grid. Notes are rendered once per (instrument, pitch, length) and
reused, which keeps a 30 s bed well under a second. Loops: the bar count is fitted to the
duration (tempo nudged), every part plays throughout, and whatever rings past the end
(releases, reverb) is folded onto the start, which is exactly what playing the loop forever
sounds like, so the seam is continuous.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dsp
from .dsp import SR
from .prompt import Mods, MusicSpec

Chord = tuple[int, str]  # (semitones above the tonic, quality)

QUALITY = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8), "maj7": (0, 4, 7, 11),
           "min7": (0, 3, 7, 10), "dom7": (0, 4, 7, 10), "sus2": (0, 2, 7), "sus4": (0, 5, 7), "add9": (0, 4, 7, 14),
           "min9": (0, 3, 7, 14)}

MAJOR = [[(0, "maj"), (7, "maj"), (9, "min"), (5, "maj")], [(0, "maj"), (9, "min"), (5, "maj"), (7, "maj")],
         [(5, "maj"), (0, "maj"), (7, "maj"), (9, "min")], [(0, "maj"), (5, "maj"), (9, "min"), (7, "maj")]]
MINOR = [[(0, "min"), (8, "maj"), (3, "maj"), (10, "maj")], [(0, "min"), (5, "min"), (8, "maj"), (7, "maj")],
         [(0, "min"), (10, "maj"), (8, "maj"), (10, "maj")], [(0, "min"), (8, "maj"), (5, "min"), (7, "maj")]]
PROGRESSIONS: dict[str, list[list[Chord]]] = {
    "calm": [[(0, "maj7"), (5, "maj7"), (9, "min7"), (7, "sus4")], [(0, "add9"), (9, "min7"), (5, "maj7"), (7, "sus4")],
             [(5, "maj7"), (0, "add9"), (2, "min7"), (7, "sus4")]] + MAJOR[:2],
    "happy": MAJOR,
    "sad": [[(0, "min"), (8, "maj"), (5, "min"), (7, "maj")], [(0, "min7"), (5, "min7"), (8, "maj7"), (7, "sus4")],
            [(8, "maj"), (10, "maj"), (0, "min"), (0, "min")], [(0, "min"), (3, "maj"), (10, "maj"), (5, "min")]],
    "tense": [[(0, "min"), (1, "maj"), (0, "min"), (11, "dim")], [(0, "min"), (8, "maj"), (0, "min"), (7, "maj")],
              [(0, "min"), (3, "aug"), (5, "min"), (7, "maj")]],
    "epic": [[(0, "min"), (8, "maj"), (3, "maj"), (10, "maj")], [(0, "min"), (10, "maj"), (8, "maj"), (10, "maj")],
             [(8, "maj"), (10, "maj"), (0, "min"), (0, "min")], [(0, "min"), (8, "maj"), (10, "maj"), (7, "maj")]],
    "mysterious": [[(0, "min"), (5, "maj"), (0, "min"), (5, "maj")], [(0, "min"), (8, "maj7"), (5, "min"), (1, "maj")],
                   [(0, "min9"), (8, "maj7"), (3, "maj7"), (2, "dim")]],
    "magical": [[(0, "maj"), (2, "maj"), (0, "maj7"), (2, "maj")], [(0, "maj"), (8, "maj"), (5, "maj"), (4, "maj")],
                [(0, "add9"), (9, "min"), (2, "maj"), (5, "maj")]],
    "major": MAJOR,
    "minor": MINOR,
}

# Per mood: mode, tempo range, arpeggio step (16ths per note) and shape, bass pattern, pad
# attack (s), brightness, reverb (seconds, wet ratio), percussion, pluck decay (s).
MOOD: dict[str, dict[str, Any]] = {
    "neutral": dict(mode="major", tempo=(90, 104), arp=2, shape="updown", bass="half", attack=0.4, bright=0.7,
                    reverb=(2.0, 0.3), drums=None, decay=0.45),
    "calm": dict(mode="major", tempo=(70, 84), arp=2, shape="random", bass="whole", attack=1.0, bright=0.5,
                 reverb=(2.8, 0.4), drums=None, decay=0.6),
    "happy": dict(mode="major", tempo=(108, 126), arp=2, shape="alberti", bass="bounce", attack=0.15, bright=0.9,
                  reverb=(1.4, 0.22), drums="shaker", decay=0.3),
    "sad": dict(mode="minor", tempo=(62, 74), arp=2, shape="random", bass="whole", attack=0.9, bright=0.45,
                reverb=(3.0, 0.42), drums=None, decay=0.7),
    "tense": dict(mode="minor", tempo=(92, 110), arp=1, shape="pedal", bass="pulse", attack=0.3, bright=0.55,
                  reverb=(1.8, 0.3), drums="heartbeat", decay=0.2),
    "epic": dict(mode="minor", tempo=(84, 100), arp=1, shape="updown", bass="octaves", attack=0.25, bright=0.8,
                 reverb=(2.6, 0.35), drums="toms", decay=0.25),
    "mysterious": dict(mode="minor", tempo=(70, 86), arp=2, shape="random", bass="whole", attack=1.0, bright=0.5,
                       reverb=(3.5, 0.45), drums=None, decay=0.6),
    "magical": dict(mode="major", tempo=(80, 96), arp=1, shape="up", bass="whole", attack=0.8, bright=0.7,
                    reverb=(3.2, 0.45), drums=None, decay=0.5),
}

ROMAN = {0: "I", 1: "bII", 2: "II", 3: "bIII", 4: "III", 5: "IV", 6: "#IV", 7: "V", 8: "bVI", 9: "VI", 10: "bVII",
         11: "VII"}
NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


def roman(chord: Chord) -> str:
    r = ROMAN[chord[0] % 12]
    q = chord[1]
    if q in ("min", "min7", "min9", "dim"):
        r = r.lower()
    return r + {"dim": "°", "aug": "+", "maj7": "maj7", "min7": "7", "dom7": "7", "sus2": "sus2", "sus4": "sus4",
                "add9": "add9", "min9": "9"}.get(q, "")


def midi_hz(m: float) -> float:
    return 440.0 * 2.0 ** ((m - 69.0) / 12.0)


def voice(chord: Chord, key: int, prev: list[int] | None) -> list[int]:
    """Close voicing of the chord near middle C, choosing the inversion and octave that moves
    least from the previous chord (smooth voice leading)."""
    pcs = [(key + chord[0] + iv) % 12 for iv in QUALITY[chord[1]]]
    cands = []
    for inv in range(len(pcs)):
        rot = pcs[inv:] + pcs[:inv]
        for octave in (4, 5):
            notes, last = [], -1
            for pc in rot:
                n = 12 * octave + pc
                while n <= last:
                    n += 12
                notes.append(n)
                last = n
            if 50 <= notes[0] and notes[-1] <= 76:
                cands.append(notes)
    if prev is None:
        return min(cands, key=lambda v: (abs(np.mean(v) - 62.0), v))
    return min(cands, key=lambda v: (sum(min(abs(a - b) for b in prev) for a in v), v))


# --------------------------------------------------------------------------- instruments

class Instruments:
    """Note renderers with a cache: the same pitch and length is synthesised once."""

    def __init__(self, rng: np.random.Generator, retro: bool, bright: float, bell: bool, decay: float,
                 attack: float):
        self.rng = rng
        self.retro = retro
        self.bright = bright
        self.bell = bell
        self.decay = decay
        self.attack = attack
        self.cache: dict[tuple, np.ndarray] = {}
        self.tables: dict[tuple, np.ndarray] = {}

    def _table(self, kind: str, f: float, cutoff: float) -> np.ndarray:
        key = (kind, round(f, 2), round(cutoff))
        if key not in self.tables:
            k = np.arange(1, max(2, int(16000.0 / f)) + 1, dtype=np.float64)
            if kind == "saw":
                amps = 1.0 / k
            elif kind == "pulse":  # 25% pulse
                amps = np.abs(np.sin(np.pi * k * 0.25)) / k
            elif kind == "square":
                amps = np.where(k % 2 == 1, 1.0 / k, 0.0)
            elif kind == "triangle":
                amps = np.where(k % 2 == 1, 1.0 / k ** 2, 0.0)
            else:  # warm: mostly fundamental
                amps = np.array([1.0, 0.45, 0.22, 0.1, 0.05])[: len(k)]
                k = k[: len(amps)]
            amps = amps / np.sqrt(1.0 + (k * f / cutoff) ** 4)
            tab = dsp.harmonic_table(amps)
            self.tables[key] = tab / (np.max(np.abs(tab)) + 1e-12)
        return self.tables[key]

    def pad(self, midi: int, length: int) -> np.ndarray:
        """Three detuned saws (25% pulses when retro), spread across the stereo field."""
        length = max(1, length)
        key = ("pad", midi, length)
        if key not in self.cache:
            f = midi_hz(midi)
            rel = int(1.2 * SR)
            n = length + rel
            kind = "pulse" if self.retro else "saw"
            tab = self._table(kind, f, 1400.0 * self.bright)
            d = 2.0 ** (7.0 / 1200.0)  # +-7 cents
            c = dsp.table_osc(tab, f, n, 0.0)
            lo = dsp.table_osc(tab, f / d, n, 0.33)
            hi = dsp.table_osc(tab, f * d, n, 0.67)
            env = np.ones(n)
            a = min(length, int(self.attack * SR))
            if a:
                env[:a] = np.sin(0.5 * np.pi * np.arange(a) / a) ** 2
            env[length:] *= np.cos(0.5 * np.pi * np.arange(rel) / rel) ** 2
            self.cache[key] = (np.stack([c + 0.8 * lo + 0.3 * hi, c + 0.3 * lo + 0.8 * hi]) * env).astype(np.float32)
        return self.cache[key]

    def pluck(self, midi: int) -> np.ndarray:
        """Plucked tone: bright attack that darkens as it decays (two tables crossfaded).
        Bell timbre: two-operator FM with a decaying index."""
        key = ("pluck", midi)
        if key not in self.cache:
            f = midi_hz(midi)
            n = int(min(self.decay * 4.0, 1.6) * SR)
            t = np.arange(n) / SR
            amp = np.exp(-t / self.decay) * np.minimum(t / 0.002, 1.0)
            amp[-480:] *= np.linspace(1.0, 0.0, 480)
            if self.bell:
                mod = dsp.sine(f * 3.5, n)
                index = 2.5 * np.exp(-t / 0.15) + 0.3
                ph = dsp.frac(np.arange(n) * (f / SR) + index * mod / dsp.TWO_PI)
                tone = dsp._SINE.take((ph * dsp.TABLE).astype(np.int64) & (dsp.TABLE - 1))
                amp = np.exp(-t / (self.decay * 1.5)) * np.minimum(t / 0.002, 1.0)
                amp[-480:] *= np.linspace(1.0, 0.0, 480)
                self.cache[key] = (tone * amp).astype(np.float32)
            else:
                kind = "square" if self.retro else "saw"
                bright = dsp.table_osc(self._table(kind, f, 4000.0 * self.bright), f, n)
                dark = dsp.table_osc(self._table("warm", f, 2000.0), f, n)
                mix = np.exp(-t / 0.08)
                self.cache[key] = ((bright * mix + dark * (1.0 - mix)) * amp).astype(np.float32)
        return self.cache[key]

    def bass(self, midi: int, length: int) -> np.ndarray:
        length = max(1, length)
        key = ("bass", midi, length)
        if key not in self.cache:
            f = midi_hz(midi)
            rel = int(0.05 * SR)
            n = length + rel
            tab = self._table("triangle" if self.retro else "warm", f, 900.0)
            t = np.arange(n) / SR
            env = (0.75 + 0.25 * np.exp(-t / 0.15)) * np.minimum(t / 0.005, 1.0)
            env[length:] *= np.linspace(1.0, 0.0, rel)
            self.cache[key] = (dsp.table_osc(tab, f, n) * env).astype(np.float32)
        return self.cache[key]

    def drum(self, name: str) -> np.ndarray:
        key = ("drum", name)
        if key not in self.cache:
            rng = self.rng
            if name == "shaker":
                n = int(0.08 * SR)
                t = np.arange(n) / SR
                sig = dsp.highpass(rng.standard_normal(n), 5000.0) * np.exp(-t / 0.015) * np.minimum(t / 0.004, 1)
            elif name == "kick":
                n = int(0.35 * SR)
                t = np.arange(n) / SR
                freq = 45.0 + 70.0 * np.exp(-t / 0.03)
                sig = dsp.wave("sine", freq, n) * np.exp(-t / 0.12)
            elif name == "tom":
                n = int(0.9 * SR)
                t = np.arange(n) / SR
                freq = 55.0 + 40.0 * np.exp(-t / 0.08)
                sig = dsp.wave("sine", freq, n) * np.exp(-t / 0.35) + 0.3 * dsp.lowpass(
                    rng.standard_normal(n), 600.0) * np.exp(-t / 0.05)
            else:  # heartbeat thump
                n = int(0.3 * SR)
                t = np.arange(n) / SR
                sig = dsp.wave("sine", 50.0 + 20.0 * np.exp(-t / 0.02), n) * np.exp(-t / 0.07) \
                    * np.minimum(t / 0.006, 1)
            self.cache[key] = (sig / (np.max(np.abs(sig)) + 1e-12)).astype(np.float32)
        return self.cache[key]


# --------------------------------------------------------------------------- patterns

def arp_pattern(shape: str, step: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(16th position, chord-tone index) for one bar; indices go into a 4-tone list."""
    positions = list(range(0, 16, step))
    if shape == "up":
        seq = [i % 4 for i in range(len(positions))]
    elif shape == "updown":
        cyc = [0, 1, 2, 3, 2, 1]
        seq = [cyc[i % len(cyc)] for i in range(len(positions))]
    elif shape == "alberti":
        cyc = [0, 2, 1, 2]
        seq = [cyc[i % 4] for i in range(len(positions))]
    elif shape == "pedal":
        seq = [0 if i % 2 == 0 else 1 + (i // 2) % 3 for i in range(len(positions))]
    else:  # a fixed random melody shape with a few rests, repeated every bar
        seq = [int(x) for x in rng.integers(0, 4, len(positions))]
        rests = rng.random(len(positions)) < 0.2
        rests[0] = False
        return [(p, s) for p, s, r in zip(positions, seq, rests) if not r]
    return list(zip(positions, seq))


def bass_pattern(style: str) -> list[tuple[int, int, int]]:
    """(16th position, length in 16ths, interval above the root) for one bar."""
    return {
        "whole": [(0, 16, 0)],
        "half": [(0, 8, 0), (8, 8, 7)],
        "bounce": [(0, 3, 0), (4, 3, 0), (8, 3, 7), (12, 2, 12), (14, 2, 7)],
        "pulse": [(i, 1, 0) for i in range(0, 16, 2)],
        "octaves": [(i, 2, 0 if (i // 2) % 2 == 0 else 12) for i in range(0, 16, 2)],
    }[style]


def drum_pattern(style: str, bar: int) -> list[tuple[int, str, float]]:
    if style == "shaker":
        return [(i, "shaker", 0.6 if i % 4 else 0.35) for i in range(0, 16, 2)] + [(0, "kick", 0.8), (8, "kick", 0.6)]
    if style == "toms":
        hits = [(0, "tom", 1.0), (8, "tom", 0.7)]
        if bar % 4 == 3:
            hits += [(12, "tom", 0.8), (14, "tom", 0.9)]
        return hits
    if style == "heartbeat":
        return [(0, "heart", 1.0), (2, "heart", 0.6)]
    return [(0, "kick", 0.8), (8, "kick", 0.6)] + [(i, "shaker", 0.4) for i in range(4, 16, 8)]


# --------------------------------------------------------------------------- render

def render(spec: MusicSpec, mods: Mods, n_out: int, loop: bool, seed: int,
           settings: dict) -> tuple[np.ndarray, list[str]]:
    rng = dsp.rng_for(seed, "music")
    mood = spec.mood if spec.mood in MOOD else "neutral"
    p = dict(MOOD[mood])
    mode = spec.mode or p["mode"]
    if (spec.mode and spec.mode != p["mode"]) or mood == "neutral":
        progs = PROGRESSIONS[mode]
    else:
        progs = PROGRESSIONS[mood]
    prog = progs[int(rng.integers(0, len(progs)))]
    key = spec.key if spec.key is not None else int(rng.integers(0, 12))
    lo, hi = p["tempo"]
    tempo = rng.uniform(lo, hi) * mods.speed
    if settings.get("tempo") is not None:
        tempo = float(settings["tempo"])
    if spec.bpm is not None:
        tempo = spec.bpm
    tempo = float(min(max(tempo, 40.0), 240.0))

    step = SR * 60.0 / tempo / 4.0  # samples per 16th (fractional; onsets are rounded)
    bar_len = 16 * step
    if loop:
        # Whole bars, preferably whole progressions, so the loop point falls on a bar line.
        ideal = n_out / bar_len
        bars = max(len(prog), int(round(ideal / len(prog))) * len(prog))
        if abs(bars / ideal - 1.0) > 0.2:
            bars = max(1, int(round(ideal)))
        step = n_out / (16 * bars)
        tempo = SR * 60.0 / (4 * step)
    else:
        bars = int(np.ceil(n_out / (16 * step)))

    retro = mods.retro
    bright = p["bright"] * min(max(mods.brightness, 0.3), 3.0)
    inst = Instruments(dsp.rng_for(seed, "music", "drums"), retro, bright, spec.timbre == "bell" or mood == "magical",
                       p["decay"], p["attack"])
    drums = p["drums"]
    if spec.drums is True and drums is None:
        drums = "soft"
    if spec.drums is False:
        drums = None

    pat_rng = dsp.rng_for(seed, "music", "patterns")
    arp_a = arp_pattern(p["shape"], p["arp"], pat_rng)
    arp_b = arp_pattern("random" if p["shape"] != "random" else "updown", p["arp"], pat_rng)
    bass_pat = bass_pattern(p["bass"])
    vel_rng = dsp.rng_for(seed, "music", "velocity")
    vel = 1.0 + 0.08 * vel_rng.standard_normal(16 * 8)  # humanise, repeats every 8 bars
    pans = vel_rng.uniform(-0.35, 0.35, 16 * 8)

    tail = int((1.6 + p["reverb"][0]) * SR)
    n = n_out + tail
    # Single-precision buses: plenty for audio, and half the memory on 10-minute beds.
    pad = np.zeros((2, n), dtype=np.float32)
    pluck = np.zeros((2, n), dtype=np.float32)
    bass = np.zeros(n, dtype=np.float32)
    perc = np.zeros(n, dtype=np.float32)
    intro = not loop and bars >= 6
    prev = None
    chords = []
    for b in range(bars):
        chord = prog[b % len(prog)]
        last = not loop and b == bars - 1 and bars >= 3
        if last:
            chord = (0, "min" if mode == "minor" else "maj")
        chords.append(chord)
        v = voice(chord, key, prev)
        prev = v
        def at(s: int, b: int = b) -> int:  # sample onset of 16th ``s`` of this bar
            return int(round((b * 16 + s) * step))

        start = at(0)
        # Pad: the chord for the whole bar (the release overlaps the next chord).
        length = at(16) - start
        for m_ in v:
            dsp.place(pad, start, inst.pad(m_, length), 1.0 / len(v))
        # Bass.
        root = 36 + (key + chord[0]) % 12
        if root > 43:
            root -= 12
        for s, ln, iv in bass_pat if not last else [(0, 16, 0)]:
            dsp.place(bass, at(s), inst.bass(root + iv, at(s + ln) - at(s) - int(0.01 * SR)))
        # Arpeggio: root, third, fifth and the octave (or the 7th/9th) from the octave above
        # middle C, so the chord's identity is always clear whatever the pad voicing is.
        if not (intro and b == 0):
            ivs = QUALITY[chord[1]]
            r = 60 + (key + chord[0]) % 12
            tones = [r + ivs[0], r + ivs[1], r + ivs[2], r + (ivs[3] if len(ivs) > 3 else 12)]
            pattern = arp_a if (b // 4) % 2 == 0 or loop else arp_b
            for s, i in pattern:
                if last and s >= 8:
                    break
                k = (b % 8) * 16 + s
                g = (dsp.pan_gains(pans[k], 2)[:, None] * vel[k] * (1.0 if s % 4 == 0 else 0.75)).astype(np.float32)
                dsp.place(pluck, at(s), inst.pluck(tones[i]) * g)
        if drums and not (intro and b == 0) and not last:
            for s, name, g in drum_pattern(drums, b):
                dsp.place(perc, at(s), inst.drum(name), g * vel[(b % 8) * 16 + s])

    # Balance the parts by RMS, then reverb on pad, pluck and a little of the drums.
    def rms(x: np.ndarray) -> float:
        r = float(np.sqrt(np.mean(np.square(x[..., :n_out], dtype=np.float64))))
        return r if r > 0 else 1.0

    levels = {"pad": 1.0, "pluck": 0.85, "bass": 0.6, "perc": 0.5 if drums != "toms" else 0.75}
    if mood in ("calm", "sad", "mysterious"):
        levels["pluck"] = 0.6
    pad *= levels["pad"] / rms(pad)
    if pluck.any():
        pluck *= levels["pluck"] / rms(pluck)
    bass *= levels["bass"] / rms(bass)
    if perc.any():
        perc *= levels["perc"] / rms(perc)
    # Reverb on pad, pluck and a little of the drums (the bass stays dry and centred).
    seconds, wet_ratio = p["reverb"]
    ir = dsp.reverb_ir(dsp.rng_for(seed, "music", "reverb"), seconds, 2, damping=5000.0 * bright + 2000.0)
    send = pad * np.float32(0.7)
    send += pluck
    send += np.float32(0.3) * perc
    mix = pad
    mix += pluck
    mix += bass
    mix += perc
    del pluck
    wet = dsp.convolve(send, ir)[:, :n]
    del send
    wet *= np.float32(wet_ratio * rms(mix) / rms(wet))
    mix += wet
    del wet
    if loop:
        out = dsp.fold(mix, n_out)
    else:
        out = mix[:, :n_out]
        dsp.fade_edges(out, 0.005, min(3.0, 0.15 * n_out / SR))
    name = f"{NAMES[key]} {'minor' if mode == 'minor' else 'major'}"
    notes = [f"music: {mood}, {name}, {tempo:.0f} bpm, {bars} bars, " + " ".join(roman(c) for c in prog)
             + (f", percussion {drums}" if drums else "") + (", retro" if retro else "")]
    if spec.other_moods:
        notes.append("also asked for " + ", ".join(spec.other_moods) + f"; used {mood}")
    return out, notes

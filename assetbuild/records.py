"""The two records an asset has: what the process stage made, and its entry in assetpack.json.

:class:`Processed` is what the process stage measured and stored (it lives in the cache's
process entry, so a later build can place the asset without running anything). A
:class:`PackEntry` is the asset as ``assetpack.json`` describes it to engines: the manifest's
view of the asset (id, kind, speaker, ...) together with those measurements, and paths where
the processed record has blob hashes.

Both convert to and from the JSON they are stored as, key for key and in the same order, so a
record read back and written again is byte-identical. They sit below the pipeline (which makes
them) and the exports (which read them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

# Keys of a processed record that are written only when set (None: absent).
_OPTIONAL = ("take_transform", "generator", "notes", "warnings")
_SPEECH = ("text", "words", "timing")
# The order of keys in the small tables of a record, as the process stage makes them. Cache
# entries are stored with sorted keys; a record read back is put in this order again, so an
# asset restored from the cache is described byte for byte as one just made.
_ORDER = {"loop": ("start", "end"), "take_transform": ("pitch", "gain")}


def word_entry(word: dict[str, Any]) -> dict[str, Any]:
    """A word timing ({text, start, end, span}) with its keys sorted, as measured timings come
    back from the cache's generate entry: estimated and measured words read alike."""
    return dict(sorted(word.items()))


def ordered(table: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """``table`` with the keys of ``order`` first, in that order (JSON read back with sorted keys
    put back in the order it was made in)."""
    return {**{k: table[k] for k in order if k in table}, **{k: v for k, v in table.items() if k not in order}}


@dataclass(frozen=True)
class Processed:
    """One asset mastered and encoded: its measurements and the blobs of its files."""

    duration: float  # seconds
    frames: int
    sample_rate: int  # Hz
    channels: int
    loudness: float | None  # as loudness_mode measures it (LUFS, or dBFS for "peak")
    loudness_mode: str
    loudness_target: float
    gain_db: float | None
    true_peak: float | None  # dBTP
    true_peak_ceiling: float
    target_met: bool
    loop: dict[str, int] | None  # {"start", "end"} in frames, for loops
    trimmed_start: float  # seconds of leading silence trimmed
    sha256: str  # the main file's blob
    model: str | None = None
    take_transform: dict[str, float] | None = None  # pitch/gain of a take made by variation
    generator: str | None = None
    notes: list[str] | None = None
    warnings: list[str] | None = None
    # Files beside the main one (other formats, subtitles, lip-sync): name -> blob sha256.
    sidecars: dict[str, str] = field(default_factory=dict)
    # Dialogue: the display text, its words ({text, start, end, span}) and how they were timed.
    text: str | None = None
    words: list[dict[str, Any]] | None = None
    timing: str | None = None

    def to_json(self, sidecars: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "sidecars":
                if sidecars:
                    out["sidecars"] = dict(value)
            elif value is not None or f.name not in _OPTIONAL + _SPEECH:
                out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Processed:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key, order in _ORDER.items():
            if isinstance(values.get(key), dict):
                values[key] = ordered(values[key], order)
        if isinstance(values.get("words"), list):
            values["words"] = [word_entry(w) if isinstance(w, dict) else w for w in values["words"]]
        return cls(**values)

    @property
    def sidecar_names(self) -> list[str]:
        return list(self.sidecars)


@dataclass(frozen=True)
class PackEntry:
    """One asset in assetpack.json (docs/metadata.md)."""

    id: str  # as the game sees it: without the <locale>/ prefix
    kind: str
    file: str  # main file, relative to the output folder
    format: str
    bit_depth: int | None
    backend: str
    seed: int
    processed: Processed  # flattened into the entry, without its blob hashes
    files: dict[str, str]  # format -> path
    subtitles: dict[str, str]  # "srt"/"vtt" -> path
    lipsync: dict[str, str] | None  # "rhubarb"/"visemes" -> path
    group: str | None = None  # the entry a take belongs to
    take: int | None = None
    # Dialogue
    ssml: str | None = None  # the SSML source, when the line is SSML
    locale: str | None = None
    fallback_from: str | None = None
    speaker: str | None = None
    voice: str | None = None
    emotion: str | None = None
    # Ambience, music, sfx
    prompt: str | None = None
    licence: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """The build's key for the entry: its id, prefixed by ``<locale>/`` for localised dialogue."""
        return f"{self.locale}/{self.id}" if self.locale else self.id

    @property
    def sha256(self) -> str:
        return self.processed.sha256

    @property
    def sidecar_names(self) -> list[str]:
        """The files beside the main one: subtitles, lip-sync, the other formats."""
        names = [*self.subtitles, *(self.lipsync or {})]
        return names + [fmt for fmt, path in self.files.items() if path != self.file]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "file": self.file, "format": self.format,
                               "bit_depth": self.bit_depth, "backend": self.backend, "seed": self.seed}
        out.update(self.processed.to_json(sidecars=False))
        out.update(files=self.files, subtitles=self.subtitles, lipsync=self.lipsync)
        if self.take is not None:
            out.update(group=self.group, take=self.take)
        if self.kind == "dialogue":
            if self.ssml is not None:
                out["ssml"] = self.ssml
            out["locale"] = self.locale
            if self.fallback_from:
                out["fallback_from"] = self.fallback_from
            out.update(speaker=self.speaker, voice=self.voice, emotion=self.emotion)
            out.setdefault("words", [])
        else:
            out["prompt"] = self.prompt
        out["licence"] = self.licence
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PackEntry:
        known = {f.name for f in fields(cls)} - {"processed"}
        own = {k: v for k, v in data.items() if k in known}
        return cls(processed=Processed.from_json({**data, "sidecars": {}}), **own)

    def with_processed(self, processed: Processed) -> PackEntry:
        return replace(self, processed=processed)

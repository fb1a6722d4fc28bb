"""The manifest format: which keys exist, their types, ranges, defaults and cache stage.

Everything the validator, the JSON Schema (``manifests/assetbuild.schema.json``) and
``docs/manifest.md`` say about the format comes from the tables in this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fields import Field, Stage

KINDS = ("dialogue", "ambience", "music", "sfx")

EMOTIONS = ("neutral", "happy", "excited", "sad", "angry", "fearful", "surprised", "calm", "whisper")

FORMATS = ("wav", "flac", "ogg", "opus")
EXTENSIONS = {"wav": ".wav", "flac": ".flac", "ogg": ".ogg", "opus": ".opus"}
# Files written beside an asset's main file, by name: a dialogue line's subtitles and lip-sync,
# and the asset in its other formats.
SIDECARS = {"srt": ".srt", "vtt": ".vtt", "rhubarb": ".rhubarb.json", "visemes": ".visemes.json", **EXTENSIONS}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the only rates the Opus codec supports

SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)

PROJECT_FIELDS = (
    Field("name", "str", "Project name, used in metadata and pack names. Default: the manifest's folder name.",
          min_length=1, stage=Stage.META),
    Field("version", "str", "Project version, recorded in assetpack.json.", default="0.1.0", stage=Stage.META),
    Field("output", "str", "Output folder, relative to the manifest.", default="build/audio", min_length=1,
          stage=Stage.META),
    Field("sample_rate", "int", "Sample rate of every output file, in Hz.", default=48000,
          choices=SAMPLE_RATES, stage=Stage.PROCESS),
    Field("locales", "strlist", "Languages the dialogue is built in, e.g. [\"en\", \"fr\"]; the first is the "
          "source language. With locales, dialogue goes to dialogue/<locale>/<id>.<ext>.", stage=Stage.META),
    Field("include_outside_project", "bool", "Let `include` reach files outside the manifest's folder.",
          default=False, stage=Stage.META),
    Field("missing_locale", "str", "What a line without text for a locale does: `error`, or `fallback` "
          "(build the source language's line in its place, with a warning).", default="error",
          choices=("error", "fallback"), stage=Stage.META),
)

# Keys every entry kind accepts.
COMMON_FIELDS = (
    Field("id", "str", "Unique asset id (across all kinds); also the file name. "
          "Letters, digits, '_' and '-', starting with a letter or digit, at most 100 characters.",
          required=True, stage=Stage.META),
    Field("backend", "str", "Backend that generates the audio (see `assetbuild backends`).", stage=Stage.GENERATE),
    Field("seed", "int", "Random seed. Default: a stable value derived from the id.",
          minimum=0, maximum=2**32 - 1, stage=Stage.GENERATE),
    Field("loudness", "float", "Loudness target in LUFS, measured as `loudness_mode` says (by default "
          "integrated for clips of 3 s or more, momentary-max for shorter ones).", minimum=-70, maximum=0,
          stage=Stage.PROCESS),
    Field("true_peak", "float", "True-peak ceiling in dBTP.", default=-1.0, minimum=-20, maximum=0,
          stage=Stage.PROCESS),
    Field("format", "strs", "Output file format, or several (`[\"wav\", \"ogg\"]`: one file each from the "
          "same mastered audio; the first is the asset's main `file`).", default="wav", choices=FORMATS,
          stage=Stage.PROCESS),
    Field("bit_depth", "int", "Bits per sample for wav/flac (32 = 32-bit float wav).", default=16,
          choices=(16, 24, 32), stage=Stage.PROCESS),
    Field("ogg_quality", "float", "Ogg Vorbis quality, as oggenc's -q (0 smallest .. 10 best; 5 is about "
          "160 kbps for stereo music).", default=5.0, minimum=0, maximum=10, stage=Stage.PROCESS),
    Field("opus_bitrate", "int", "Ogg Opus target bitrate in kbps for the whole file (variable bitrate). "
          "Default: 64 per channel.", minimum=6, maximum=510, stage=Stage.PROCESS),
    Field("channels", "int", "Output channels: 1 (mono) or 2 (stereo).", choices=(1, 2), stage=Stage.PROCESS),
    Field("loudness_mode", "str", "How loudness is measured: `integrated` (BS.1770-4, gated), "
          "`momentary-max` (max of 400 ms windows, as Wwise does for short sounds), `peak` (sample peak; "
          "`loudness` is then a dBFS peak target) or `auto` (integrated from 3 s, else momentary-max).",
          default="auto", choices=("auto", "integrated", "momentary-max", "peak"), stage=Stage.PROCESS),
    Field("remove_dc", "bool", "Remove DC offset (on loops, by subtracting the mean, which keeps the seam).",
          default=True, stage=Stage.PROCESS),
    Field("highpass", "float", "High-pass cutoff in Hz (2nd-order Butterworth; circular on loops); 0 is off.",
          minimum=0, maximum=2000, stage=Stage.PROCESS),
    Field("fade_in", "float", "Fade-in length in seconds (not on loops).", minimum=0, maximum=60, stage=Stage.PROCESS),
    Field("fade_out", "float", "Fade-out length in seconds (not on loops).", minimum=0, maximum=60,
          stage=Stage.PROCESS),
    Field("fade_curve", "str", "Shape of both fades: `sine` (equal power), `linear`, `exp`, `log`.",
          default="sine", choices=("sine", "linear", "exp", "log"), stage=Stage.PROCESS),
    Field("dither", "bool", "Add TPDF dither when writing 16- or 24-bit files.", default=True, stage=Stage.PROCESS),
    Field("trim", "bool", "Trim leading and trailing silence (never on loops). Word timings move with it.",
          stage=Stage.PROCESS),
    Field("trim_threshold", "float", "Level below which audio counts as silence when trimming, in dBFS "
          "(10 ms RMS).", default=-50.0, minimum=-120, maximum=0, stage=Stage.PROCESS),
    Field("trim_pad", "float", "Seconds of the original audio kept before the first and after the last "
          "sound when trimming.", default=0.05, minimum=0, maximum=5, stage=Stage.PROCESS),
)

KIND_FIELDS: dict[str, tuple[Field, ...]] = {
    "dialogue": (
        Field("text", "text", "The line to speak; with `[project] locales`, a table by locale "
              "(`{ en = \"...\", fr = \"...\" }`). `[pause]`, `[pause 300ms]` insert silence.",
              required=True, min_length=1, stage=Stage.GENERATE),
        Field("ssml", "bool", "`text` is SSML (`<speak>`, `<break>`, `<prosody>`, ...), checked when loading.",
              default=False, stage=Stage.GENERATE),
        Field("voice", "str", "Name of a `[voices.NAME]` table.", stage=Stage.META),
        Field("speaker", "str", "Character who speaks the line (metadata). Default: the voice name.",
              stage=Stage.META),
        Field("emotion", "str", "Delivery of the line.", choices=EMOTIONS, stage=Stage.GENERATE),
    ),
    "ambience": (),
    "music": (),
    "sfx": (
        Field("variations", "int", "Number of takes with different seeds: <id>_01, <id>_02, ... "
              "(with `pitch_variation` or `gain_variation`: one generated take, transformed N ways).",
              default=1, minimum=1, maximum=100, stage=Stage.GENERATE),
        Field("pitch_variation", "float", "Spread the takes' pitch over +/- this many semitones "
              "(varispeed: higher is also shorter). Takes then share one generated sound.",
              default=0.0, minimum=0, maximum=12, stage=Stage.PROCESS),
        Field("gain_variation", "float", "Spread the takes' loudness target over +/- this many dB. "
              "Takes then share one generated sound.", default=0.0, minimum=0, maximum=12, stage=Stage.PROCESS),
    ),
}
_BED_FIELDS = (
    Field("prompt", "str", "What to generate, in words (e.g. \"heavy rain with distant thunder\").",
          required=True, min_length=1, stage=Stage.GENERATE),
    Field("duration", "float", "Length in seconds. Default: 30 for ambience and music, "
          "the effect's natural length for sfx.", minimum=0, exclusive_minimum=True, maximum=600,
          stage=Stage.GENERATE),
    Field("loop", "bool", "Render a seamless loop and mark its loop points.", default=False, stage=Stage.GENERATE),
    Field("loop_crossfade", "float", "Seconds of the end crossfaded into the start (equal power) when "
          "mastering a loop; 0 keeps the backend's loop as is.", default=0.0, minimum=0, maximum=30,
          stage=Stage.PROCESS),
)
for _kind in ("ambience", "music", "sfx"):
    KIND_FIELDS[_kind] = _BED_FIELDS + KIND_FIELDS[_kind]

_ENTRY_FIELDS = {kind: {f.name: f for f in COMMON_FIELDS + KIND_FIELDS[kind]} for kind in KINDS}

# `[profiles.NAME]` (and `[profiles.NAME.KIND]`): another delivery of the same generated audio.
# Besides these, a profile may set any entry key that only re-processes (see profile_fields).
PROFILE_FIELDS = (
    Field("output", "str", "Output folder of this profile's tree, relative to the manifest. "
          "Default: the project's output folder with `-NAME` added (build/audio-mobile).",
          min_length=1, stage=Stage.META),
    Field("sample_rate", "int", "Sample rate of this profile's files, in Hz.", choices=SAMPLE_RATES,
          stage=Stage.PROCESS),
)
ENGINES = ("unreal", "unity", "wwise", "fmod")
EXPORT_FIELDS = (
    Field("engines", "strs", "Engine exports `build` writes into `<output>/<engine>/` after every build "
          "(see docs/engines.md).", default=[], choices=ENGINES, min_length=0, stage=Stage.META),
)
# [cache]: the team's remote cache (docs/scale.md). [cache.options]: storage options for fsspec
# (endpoint_url, region, ...); never credentials, which come from the environment.
CACHE_FIELDS = (
    Field("remote", "str", "URL of a remote cache the team shares: any fsspec URL (`s3://bucket/prefix`, "
          "`gs://`, `az://`, `file:///shared/folder`; `http(s)://` reads only). `--remote-cache URL` and "
          "$ASSETBUILD_REMOTE_CACHE override it, `--no-remote` ignores it.", min_length=1, stage=Stage.META),
    Field("remote_write", "bool", "Upload what this machine builds to the remote cache (for the machines that "
          "should fill it, typically CI; `--remote-write` does the same). Default: read only.", default=False,
          stage=Stage.META),
)
# [build]: where the jobs run (docs/scale.md).
BUILD_FIELDS = (
    Field("executor", "str", "Where generation and processing run: `local` (this machine: a process pool and "
          "one lane for heavy models) or `ray` (a Ray cluster: heavy models in actors, one per GPU; extra "
          "`[ray]`). `--executor` overrides it.", default="local", choices=("local", "ray"), stage=Stage.META),
    Field("ray_address", "str", "With `executor = \"ray\"`: the cluster to use (`auto`, `ray://host:10001`, "
          "`host:6379`). Default: a Ray started on this machine for the build. `--ray-address` overrides it.",
          min_length=1, stage=Stage.META),
)
# Storage options that are credentials: they belong in the environment, never in a manifest.
SECRET_OPTIONS = frozenset({"key", "secret", "token", "password", "session_token", "aws_access_key_id",
                            "aws_secret_access_key", "aws_session_token", "account_key", "sas_token",
                            "credentials", "client_secret", "connection_string"})
# [export.prefixes]: the engine-side name of an asset is its kind's prefix + its id.
DEFAULT_PREFIXES = {"dialogue": "VO_", "ambience": "AMB_", "music": "MUS_", "sfx": "SFX_"}
PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_]{0,32}")
PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def profile_fields(kind: str | None = None) -> dict[str, Field]:
    """Entry keys a profile may override: those that only change processing (for ``kind``, or
    for any kind)."""
    kinds = [kind] if kind else list(KINDS)
    return {name: f for k in kinds for name, f in _ENTRY_FIELDS[k].items() if f.stage == Stage.PROCESS}

VOICE_FIELDS = (
    Field("backend", "str", "Backend that speaks with this voice.", stage=Stage.GENERATE),
)

# Built-in defaults, the bottom layer under [defaults] and [defaults.KIND].
BUILTIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "dialogue": {"backend": "espeak", "loudness": -20.0, "channels": 1, "trim": True, "highpass": 60.0,
                 "fade_in": 0.005, "fade_out": 0.01},
    "ambience": {"backend": "procedural", "loudness": -27.0, "channels": 2, "duration": 30.0, "trim": False,
                 "highpass": 0.0, "fade_in": 0.0, "fade_out": 0.0},
    "music": {"backend": "procedural", "loudness": -24.0, "channels": 2, "duration": 30.0, "trim": False,
              "highpass": 0.0, "fade_in": 0.0, "fade_out": 0.0},
    # A 2 ms fade-in: a sound that starts at full level clicks (and reads hot on true-peak meters).
    "sfx": {"backend": "procedural", "loudness": -20.0, "channels": 1, "trim": True, "highpass": 0.0,
            "fade_in": 0.002, "fade_out": 0.005},
}

# A lexicon entry: `word = "respelling"` or `word = { say = "...", phonemes = "..." }`.
LEXICON_KEYS = ("say", "phonemes")
# Locale codes: "en", "fr", "pt-BR", "zh-Hans", "es-419".
LOCALE_PATTERN = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
# Names Windows refuses as file names, whatever the extension.
RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(10)] + [f"LPT{i}" for i in range(10)]
)


def sidecar_file(file: str, name: str) -> str:
    """``dialogue/intro.wav`` -> ``dialogue/intro.srt`` (for name "srt")."""
    return file.rpartition(".")[0] + SIDECARS[name]


def entry_fields(kind: str) -> dict[str, Field]:
    """Keys an entry of ``kind`` accepts (a fresh dict: callers may change it)."""
    return dict(_ENTRY_FIELDS[kind])


def id_problem(value: str) -> str | None:
    if not ID_PATTERN.fullmatch(value):
        return ("is not a safe file name: use letters, digits, '_' and '-', starting with a letter "
                f"or digit, at most 100 characters (got {value!r})")
    if value.upper() in RESERVED_NAMES:
        return f"is a reserved file name on Windows (got {value!r})"
    return None


@dataclass(frozen=True)
class Asset:
    """One output file to build: an entry, or one take of an entry with variations."""

    id: str
    kind: str
    entry_id: str  # the manifest entry it comes from (differs from id for variations)
    take: int | None  # 1-based take number for variations, else None
    backend: str
    seed: int
    values: dict[str, Any]  # every resolved entry key (defaults applied)
    settings: dict[str, Any]  # backend settings: voice table merged with entry overrides
    voice: str | None = None
    where: str = ""  # 'dialogue "intro_01"', for messages
    locale: str | None = None  # dialogue of a project with locales
    lexicon: dict[str, Any] = field(default_factory=dict)  # the lexicon entries this line uses
    fallback_from: str | None = None  # locale whose line stands in for a missing translation
    pitch_shift: float = 0.0  # semitones, for takes made by pitch_variation
    gain_offset: float = 0.0  # dB added to the loudness target, for takes made by gain_variation

    @property
    def name(self) -> str:
        """The id as the game sees it: ``id`` without the ``<locale>/`` prefix."""
        return self.id.rpartition("/")[2]

    @property
    def file(self) -> str:
        """Its main output file, relative to the output folder, with '/' separators."""
        return f"{self.kind}/{self.id}{EXTENSIONS[self.values['format'][0]]}"

    def stage_values(self, stage: str, fields: dict[str, Field]) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k in fields and fields[k].stage == stage}


@dataclass
class Manifest:
    path: Path
    name: str
    version: str
    output_dir: Path
    sample_rate: int
    voices: dict[str, dict[str, Any]] = field(default_factory=dict)
    assets: list[Asset] = field(default_factory=list)
    locales: list[str] = field(default_factory=list)
    lexicon: dict[str, dict[str, str]] = field(default_factory=dict)
    warnings: list[Any] = field(default_factory=list)  # Problems that do not stop the build
    digest: str = ""  # sha256 of the manifest's bytes: unchanged bytes mean unchanged metadata
    profile: str | None = None  # the [profiles.NAME] applied, if any
    profiles: list[str] = field(default_factory=list)  # every profile the manifest defines
    engines: list[str] = field(default_factory=list)  # [export] engines, written after each build
    prefixes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PREFIXES))  # [export.prefixes]
    sources: list[Path] = field(default_factory=list)  # every manifest file read (main first, then includes)
    include_patterns: list[str] = field(default_factory=list)  # absolute include globs, for watch
    sequences: list[Any] = field(default_factory=list)  # [[sequence]] timelines (manifest.sequence.Sequence)
    preview: str | None = None  # set by `assetbuild preview`: a scratch build of this one sequence
    remote: str | None = None  # [cache] remote
    remote_write: bool = False  # [cache] remote_write
    remote_options: dict[str, Any] = field(default_factory=dict)  # [cache.options]
    executor: str = "local"  # [build] executor
    ray_address: str | None = None  # [build] ray_address

    @property
    def root(self) -> Path:
        return self.path.parent

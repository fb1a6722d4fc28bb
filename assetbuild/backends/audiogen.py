"""The ``audiogen`` backend: ambience beds and sound effects from Meta's AudioGen (AudioCraft only).

AudioGen was trained on 10 s clips and writes 16 kHz mono. Longer beds continue window after
window, each prompted with the last ``overlap`` seconds of codes, decoded in one pass (see
:mod:`._audiocraft`). Items generate one at a time, seeded, so batching never changes a result.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..fields import Field
from . import _audiocraft as ac
from .base import Request, Result
from .neural import COMMON_SETTINGS, NeuralBackend

# Seconds when an entry gives no duration (an sfx's "natural length" is unknown to the model).
DEFAULT_SECONDS = {"ambience": 10.0, "sfx": 3.0}

_SAMPLING = ac.sampling_fields(window=10.0, overlap=5.0)


class AudioGenBackend(NeuralBackend):
    name: ClassVar[str] = "audiogen"
    kinds: ClassVar[frozenset[str]] = frozenset({"ambience", "sfx"})
    max_batch: ClassVar[int] = 8
    default_model: ClassVar[str] = "audiogen-medium"
    extra: ClassVar[str] = "audiocraft"
    packages: ClassVar[tuple[str, ...]] = ac.RUNTIME
    VERSION: ClassVar[str] = "1"
    settings: ClassVar[tuple[Field, ...]] = (
        Field("model", "str", "AudioGen model: audiogen-medium (default), a hub id or a local folder with "
              "state_dict.bin and compression_state_dict.bin.", min_length=1),
        *_SAMPLING,
        *COMMON_SETTINGS,
    )

    def implementation(self, request: Request) -> str:
        return "audiocraft"

    def extra_fingerprint(self, request: Request) -> dict[str, Any]:
        return {"audiogen": self.VERSION}

    def load_model(self, located: Any, device: str, dtype: Any) -> Any:
        return ac.load("AudioGen", located, device)

    def generate_with(self, model: Any, requests: list[Request]) -> list[Result]:
        opts = [ac.options(r, _SAMPLING) for r in requests]  # check them all before generating
        return [self._one(model, r, o) for r, o in zip(requests, opts)]

    def _one(self, model: Any, r: Request, o: dict[str, Any]) -> Result:
        seconds = r.duration or DEFAULT_SECONDS.get(r.kind, 10.0)
        samples = ac.samples_needed(seconds, model.sample_rate, r.loop)
        audio = ac.generate(model, r.prompt or "", samples, r.seed, o["window"], o["overlap"], o["top_k"],
                            o["top_p"], o["temperature"], o["guidance"])
        return Result(ac.finish(audio, model.sample_rate, seconds, r.loop), model.sample_rate,
                      {"generator": "audiogen (audiocraft)", "notes": ac.notes(r, seconds, o)})

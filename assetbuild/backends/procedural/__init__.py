"""The ``procedural`` backend: ambience, music and sound effects synthesised from the prompt's
words with numpy/scipy only; offline, seeded and byte-identical across processes.

* ambience beds: wind, rain, thunder, water (ocean, stream, river, waterfall, drips), fire,
  birds, insects (crickets, cicadas), room tone/hum, drone, crowd murmur; layered and shaped
  by words ("heavy rain with distant thunder");
* sound effects, sfxr-style: coin/pickup, jump, laser/shoot, explosion (and gunshot),
  hit/impact, UI click/blip/confirm/error, powerup, footstep(s), whoosh, magic shimmer;
* music beds: a chord progression in a key with pad, plucked arpeggio and bass, shaped by
  mood words (calm, tense, epic, sad, happy, mysterious, magical) and tempo ("90 bpm").

Importing this module is cheap: numpy and scipy load on the first render.
See ``prompt.py`` for the words understood.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ...fields import Field
from ..base import BaseBackend, Request, Result

_SETTINGS = (
    Field("tempo", "float", "Beats per minute for music (a \"NN bpm\" in the prompt wins)", minimum=40,
          maximum=240),
)


class ProceduralBackend(BaseBackend):
    name: ClassVar[str] = "procedural"
    kinds: ClassVar[frozenset[str]] = frozenset({"ambience", "music", "sfx"})
    max_batch: ClassVar[int] = 8
    parallel: ClassVar[bool] = True
    deterministic: ClassVar[bool] = True  # same input, same samples (tests compare bytes)
    settings: ClassVar[tuple[Field, ...]] = _SETTINGS
    # Bump whenever output changes for the same request: it is part of the cache key.
    VERSION: ClassVar[str] = "1"

    def availability(self) -> str | None:
        return None

    def fingerprint(self, request: Request) -> dict[str, Any]:
        return {"backend": "procedural", "version": self.VERSION}

    def licence(self, request: Request) -> dict[str, Any]:
        return {"name": "assetbuild procedural (no model; output unrestricted)", "commercial": True}

    def load(self) -> None:
        pass

    def unload(self) -> None:
        pass

    def generate(self, requests: list[Request]) -> list[Result]:
        return [self.render(r) for r in requests]

    def render(self, request: Request) -> Result:
        from .render import render

        return render(request)

"""Decide, for every asset, which stages must run and why.

An asset is *fresh* when the lockfile has its current process key and its output file is on
disk exactly as this tool left it (size, mtime, inode). Otherwise the first stage that has no
cache entry for its key runs, and every later one after it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .. import backends
from ..backends.base import Request
from ..export.metadata import sidecar_file
from ..manifest.model import EXTENSIONS, Asset, Manifest
from . import keys
from .cache import Cache
from .lock import Lockfile, stat_signature

FRESH, PLACE, PROCESS, GENERATE = "fresh", "place", "process", "generate"

# Speech runs at roughly 14 characters per second; used only for plan totals.
CHARS_PER_SECOND = 14.0

@dataclass
class Item:
    asset: Asset
    request: Request
    generate_key: str
    process_key: str
    generate_inputs: dict[str, Any]
    process_inputs: dict[str, Any]
    file: str  # output path relative to the output folder, with '/' separators
    action: str = FRESH
    reasons: list[str] = field(default_factory=list)
    fingerprint: dict[str, Any] | None = None  # the backend's, for inputs computed later (see complete)
    licence: dict[str, Any] | None = None  # terms of the model behind it (recorded in assetpack.json)


@dataclass
class Plan:
    manifest: Manifest
    items: list[Item]
    removed: dict[str, dict[str, Any]]  # lockfile entries of assets no longer in the manifest
    fingerprints: str = ""  # digest of the key versions and every backend fingerprint used

    def with_action(self, *actions: str) -> list[Item]:
        return [i for i in self.items if i.action in actions]

    def totals(self) -> dict[str, Any]:
        gen = self.with_action(GENERATE)
        chars = sum(len(i.request.text or "") for i in gen)
        seconds = sum(i.request.duration or 0.0 for i in gen if i.request.kind != "dialogue")
        seconds += sum(len(i.request.text or "") / CHARS_PER_SECOND for i in gen if i.request.kind == "dialogue")
        return {
            "entries": len(self.items),
            "generate": len(gen),
            "process": len(self.with_action(PROCESS)),
            "place": len(self.with_action(PLACE)),
            "fresh": len(self.with_action(FRESH)),
            "remove": len(self.removed),
            "characters": chars,
            "billed_characters": billed_characters(gen),
            "seconds": round(seconds, 1),
        }


def billed_characters(items: list[Item]) -> int:
    """Characters a paid service bills for generating ``items`` (backends with ``billed = True``)."""
    return sum(len(i.request.text or "") for i in items if getattr(backends.get(i.asset.backend), "billed", False))


def request_for(asset: Asset, context: dict[str, str] | None = None, base_dir: str = "") -> Request:
    v = asset.values
    return Request(id=asset.id, kind=asset.kind, seed=asset.seed, text=v.get("text"), prompt=v.get("prompt"),
                   duration=v.get("duration"), loop=bool(v.get("loop", False)), emotion=v.get("emotion"),
                   locale=asset.fallback_from or asset.locale, ssml=bool(v.get("ssml", False)),
                   lexicon=dict(asset.lexicon), settings=dict(asset.settings), context=dict(context or {}),
                   base_dir=base_dir)


def contexts(assets: list[Asset]) -> dict[str, dict[str, str]]:
    """For backends with ``uses_context``: each dialogue line's neighbours of the same voice and
    locale in manifest order ({"previous_text", "next_text"}), so a service can keep the
    delivery continuous. Takes of one entry share their entry's neighbours."""
    lines: dict[tuple[Any, ...], list[Asset]] = {}
    for a in assets:
        if a.kind == "dialogue" and a.take in (None, 1) and getattr(backends.get(a.backend), "uses_context", False):
            lines.setdefault((a.backend, a.voice, a.locale), []).append(a)
    by_entry: dict[tuple[str, Any], dict[str, str]] = {}
    for group in lines.values():
        for n, a in enumerate(group):
            ctx = {}
            if n > 0:
                ctx["previous_text"] = group[n - 1].values.get("text") or ""
            if n + 1 < len(group):
                ctx["next_text"] = group[n + 1].values.get("text") or ""
            by_entry[(a.entry_id, a.locale)] = ctx
    return {a.id: by_entry[(a.entry_id, a.locale)] for a in assets if (a.entry_id, a.locale) in by_entry}


def output_file(asset: Asset) -> str:
    return f"{asset.kind}/{asset.id}{EXTENSIONS[asset.values['format'][0]]}"



def make_plan(manifest: Manifest, cache: Cache, lock: Lockfile, state: dict[str, Any],
              last: dict[str, Any] | None = None) -> Plan:
    """``state``: the outputs the last build placed, by asset id. ``last``: that build's state
    file; when it was built from these very manifest bytes with the same backend fingerprints,
    its keys are the keys, and only assets whose files changed on disk are hashed again."""
    fingerprints: dict[tuple[str, Any], dict[str, Any]] = {}
    licences: dict[tuple[str, Any], dict[str, Any]] = {}
    out_dir = str(manifest.output_dir)  # plain strings: a Path per asset costs more than the stat
    requests = []
    context = contexts(manifest.assets)
    for asset in manifest.assets:
        request = request_for(asset, context.get(asset.id), str(manifest.root))
        # A backend may serve kinds or locales with different models (mms: one per language).
        memo = (asset.backend, asset.kind, request.locale, _hashable(asset.settings))
        if memo not in fingerprints:
            backend = backends.create(asset.backend)
            fingerprints[memo] = backend.fingerprint(request)
            licences[memo] = backends.licence_of(backend, request)
        requests.append((request, memo))
    used = keys.digest([keys.code_digest(), sorted(keys.canonical(fp).decode() for fp in fingerprints.values())])
    known = {}
    if last and last.get("manifest") == manifest.digest and last.get("fingerprints") == used and lock.is_current:
        known = last.get("keys") or {}
    items = []
    for asset, (request, memo) in zip(manifest.assets, requests):
        k = known.get(asset.id)
        if k and "generate" in k:  # keys as the last build computed them from the same inputs
            item = Item(asset, request, k["generate"], k["process"], {}, {}, output_file(asset),
                        fingerprint=fingerprints[memo], licence=licences[memo])
            _decide(item, out_dir, cache, lock, state.get(asset.id))
            if item.action == FRESH:
                items.append(item)
                continue
        g_inputs = keys.generate_inputs(asset, fingerprints[memo], request.context)
        g_key = keys.digest(g_inputs)
        p_inputs = keys.process_inputs(asset, g_key, manifest.sample_rate)
        p_key = keys.digest(p_inputs)
        item = Item(asset, request, g_key, p_key, g_inputs, p_inputs, output_file(asset), licence=licences[memo])
        _decide(item, out_dir, cache, lock, state.get(asset.id))
        items.append(item)
    current = {a.id for a in manifest.assets}
    removed = {k: v for k, v in lock.brief.items() if k not in current}
    return Plan(manifest, items, removed, used)


def complete(item: Item, sample_rate: int) -> None:
    """Fill in the inputs of an item whose keys came from the last build (they were not needed
    to find it fresh), before a stage runs for it after all."""
    if not item.generate_inputs and item.fingerprint is not None:
        item.generate_inputs = keys.generate_inputs(item.asset, item.fingerprint, item.request.context)
        item.process_inputs = keys.process_inputs(item.asset, item.generate_key, sample_rate)


def _hashable(settings: dict[str, Any]) -> Any:
    try:
        return frozenset(settings.items())
    except TypeError:  # a setting holding a list or table
        return keys.canonical(settings)


def _decide(item: Item, output_dir: str, cache: Cache, lock: Lockfile, placed: dict[str, Any] | None) -> None:
    brief = lock.brief.get(item.asset.id)
    if brief and brief["process"] == item.process_key and brief["file"] == item.file:
        root = output_dir + os.sep  # joined by hand: os.path.join per file shows up at 50,000 files
        if placed and placed.get("file") == item.file and placed.get("sig") == stat_signature(
                root + item.file) and all(sig == stat_signature(root + sidecar_file(item.file, name))
                                          for name, sig in placed.get("sidecars", {}).items()):
            item.action = FRESH
            return
    locked = lock.entries.get(item.asset.id)  # the full entry, for the reasons
    if cache.has_entry("process", item.process_key):
        item.action = PLACE
        item.reasons = ["output missing or changed on disk"] if locked else ["new entry (found in cache)"]
    elif cache.has_entry("generate", item.generate_key):
        item.action = PROCESS
        item.reasons = _why(locked, "process", item.process_inputs, item.process_key)
    else:
        item.action = GENERATE
        item.reasons = _why(locked, "generate", item.generate_inputs, item.generate_key)


def _why(locked: dict[str, Any] | None, stage: str, inputs: dict[str, Any], key: str) -> list[str]:
    if not locked:
        return ["new entry"]
    if locked.get(stage) == key:
        return ["not in cache"]
    old = locked.get("inputs", {}).get(stage, {})
    new = keys.input_digests(inputs)
    changed = [name for name in new if old.get(name) != new[name]]
    # A changed generate key is reported by the generate stage; say it here only if alone.
    changed = [n for n in changed if n != "generated audio"] or changed
    return [f"{name} changed" for name in changed] or ["inputs changed"]

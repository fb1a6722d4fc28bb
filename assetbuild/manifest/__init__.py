"""Manifest model and loading: TOML in, a validated list of assets out."""

from .load import derive_seed, load
from .model import EMOTIONS, KINDS, Asset, Manifest

__all__ = ["EMOTIONS", "KINDS", "Asset", "Manifest", "derive_seed", "load"]

"""Manifest model and loading: TOML in, a validated list of assets out."""

from .load import derive_seed, load
from .model import EMOTIONS, KINDS, Asset, Manifest

__all__ = ["load", "derive_seed", "Asset", "Manifest", "KINDS", "EMOTIONS"]

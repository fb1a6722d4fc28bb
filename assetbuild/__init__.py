"""assetbuild: build game audio assets from a TOML manifest."""

__version__ = "0.1.0"

"""Model catalog and local model store (see store.py)."""

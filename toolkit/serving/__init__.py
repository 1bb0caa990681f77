"""Serving: SavedModel exports with bounded raw-text signatures (`export`)
and LiteRT conversion (`litert`)."""

"""Gaia compatibility: descriptor patterns, datasets, preprocessing, .history models."""

"""Reusable config presets that experiment files import: models, optimizers, meshes, data."""

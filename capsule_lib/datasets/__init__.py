"""Training data sets: each module loads one corpus into note lists, split and windowed.

``bach``  Bach chorales from music21's bundled corpus (offline), for the AR-CNN.
"""

from __future__ import annotations

from .bach import BachDataset, build_bach_dataset, load_bach_windows

__all__ = ["BachDataset", "build_bach_dataset", "load_bach_windows"]

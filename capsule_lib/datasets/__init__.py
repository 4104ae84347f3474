"""Training data sets: each module turns one source of music into pieces split by piece.

``bach``        Bach chorales from music21's bundled corpus, as note lists cut into 8-bar
                windows, for the AR-CNN.
``classical``   Classical pieces from music21's corpus, as performance tokens
                (:mod:`capsule_lib.performance`), for the Transformer.
``multitrack``  Multi-track genres from music21's corpus (chorale, quartet, renaissance),
                a melody and its accompaniment in 4-bar samples, for the GAN.
``external``    The same multi-track data sets from files the user has: the Lakh Pianoroll
                Dataset (LPD-5) or a folder of MIDI files.
``shipped``     Rebuilds the parse results shipped in ``data/datasets/`` (``make datasets``).
``_corpus``     What they share: the split rule, parsing in worker processes, dropping
                failures and copies, the packed-array caches.

Everything is offline: music21's corpus is bundled and external files are never downloaded.
"""

from __future__ import annotations

from .bach import BachDataset, build_bach_dataset, load_bach_windows

__all__ = ["BachDataset", "build_bach_dataset", "load_bach_windows"]

"""Shared pieces of the GAN tests: synthetic chorale-like data sets and tiny trained models.

A plugin of the test suite (``tests/conftest.py``), so its fixtures are trained once per run
whichever GAN test file asks first; the data helpers are imported by the test files.
"""

from __future__ import annotations

import numpy as np
import pytest

from capsule_lib.datasets._corpus import bucket_of
from capsule_lib.datasets.multitrack import GENRES, MultitrackDataset, Piece, split_of

SPEC = GENRES["chorale"]


def piece(path: str, bars: int = 6, root: int = 60) -> Piece:
    """A melody of quarter notes over held triads (alto, tenor) and a bass on the root."""
    rows = []
    for b in range(bars):
        chord_root = root + (0, 5, 7, 0)[b % 4]
        for beat in range(4):
            rows.append((0, b * 16 + beat * 4, chord_root + 12 + (0, 4, 7, 4)[beat], 4))
        rows += [(1, b * 16, chord_root + 7, 16), (2, b * 16, chord_root + 4, 16), (3, b * 16, chord_root - 12, 16)]
    return Piece(path, path, split_of(path), np.asarray(sorted(rows), np.int32))


def paths_where(keep, n: int, prefix: str) -> list[str]:
    """The first ``n`` paths ``PREFIX0, PREFIX1, ...`` for which ``keep(path)`` holds."""
    out, i = [], 0
    while len(out) < n:
        p = f"{prefix}{i}"
        if keep(p):
            out.append(p)
        i += 1
    return out


def paths(split: str, n: int) -> list[str]:
    return paths_where(lambda p: split_of(p) == split, n, "synthetic/piece")


def synthetic_dataset() -> MultitrackDataset:
    pieces = [piece(p, root=55 + k) for k, p in enumerate(paths("train", 4))]
    pieces += [piece(p) for p in paths("validation", 1) + paths("test", 1)]
    return MultitrackDataset(SPEC, pieces, source="synthetic chorale-like pieces")


def bucket_paths(bucket: int, n: int) -> list[str]:
    return paths_where(lambda p: bucket_of(p) == bucket, n, "folded/piece")


def folded_dataset() -> MultitrackDataset:
    """Pieces in buckets 0-3 (two each, different keys), the rest of the split rule's buckets empty."""
    pieces = [piece(p, root=52 + 2 * b + k) for b in range(4) for k, p in enumerate(bucket_paths(b, 2))]
    return MultitrackDataset(SPEC, pieces, source="synthetic pieces in four buckets")


def tacet_alto(p: Piece) -> Piece:
    """The piece with its alto resting in every other bar (the melody unchanged)."""
    rows = p.notes[(p.notes[:, 0] != 1) | (p.notes[:, 1] // 16 % 2 == 0)]
    return Piece(p.path, p.title, p.split, rows)


def _trained(home, train):
    """``train()`` in ``home`` on one torch thread (tiny models: more threads only add overhead)."""
    import torch  # here, not at the top: this plugin loads for every test run, most of which need no torch

    mp = pytest.MonkeyPatch()
    mp.setenv("CAPSULE_HOME", str(home))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train()
    finally:
        torch.set_num_threads(threads)
        mp.undo()


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory):
    return tmp_path_factory.mktemp("gan_home")


@pytest.fixture(scope="session")
def tiny_model(tiny_home):
    """A tiny MuseGAN trained for two short epochs on the synthetic pieces."""
    from capsule_lib.techniques.gan import train_gan  # torch: see _trained

    return _trained(
        tiny_home,
        lambda: train_gan(
            "tiny-gan",
            "musegan",
            synthetic_dataset(),
            epochs=2,
            batch_size=4,
            update_ratio=2,
            max_steps_per_epoch=4,
            progress=False,
            sample_every=1,
            model_config={"z_dim": 8, "width": 16, "critic_width": 16},
        ),
    )


@pytest.fixture
def in_tiny_home(tiny_home, tiny_model, monkeypatch):
    monkeypatch.setenv("CAPSULE_HOME", str(tiny_home))
    return tiny_home


@pytest.fixture(scope="session")
def fold_models(tiny_home, tiny_model):
    """Two tiny MuseGANs trained by the same call on folds 0 and 1 of :func:`folded_dataset`."""

    from capsule_lib.techniques.gan import train_gan  # torch: see _trained

    def train():
        for fold in (0, 1):
            train_gan(
                f"fold-gan-{fold}",
                "musegan",
                folded_dataset(),
                epochs=1,
                batch_size=4,
                update_ratio=2,
                max_steps_per_epoch=2,
                progress=False,
                sample_every=1,
                fold=fold,
                model_config={"z_dim": 8, "width": 16, "critic_width": 16},
            )
        return ["fold-gan-0", "fold-gan-1"]

    return _trained(tiny_home, train)

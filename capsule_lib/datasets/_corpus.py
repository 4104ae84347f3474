"""What the corpus data sets share: parse many files in worker processes, then drop failures and copies."""

from __future__ import annotations

import hashlib
import os
from typing import Callable, Sequence

import numpy as np

from ..errors import CapsuleError

#: The three splits, by piece.
SPLITS = ("train", "validation", "test")


#: Buckets of the split rule; fold ``k`` of a cross-validation holds out bucket ``k``.
FOLDS = 10


def bucket_of(path: str) -> int:
    """``sha256(path) mod 10``: the bucket that decides a piece's split."""
    return int(hashlib.sha256(path.encode("utf-8")).hexdigest(), 16) % FOLDS


def check_fold(fold) -> int:
    """``fold`` as an int in 0..9, or a :class:`CapsuleError` naming the problem."""
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= int(fold) < FOLDS:
        raise CapsuleError(f"fold must be a whole number from 0 to {FOLDS - 1}, got {fold!r}")
    return int(fold)


def split_of(path: str, fold: int = 0) -> str:
    """The split of a corpus path by the fixed rule ``sha256(path) mod 10``: 0 test, 1 validation, else train.

    Fold ``k`` of a 10-fold cross-validation moves the rule round: bucket ``k`` test, bucket
    ``k + 1`` (mod 10) validation, else train -- fold 0 is the fixed split, and over the ten
    folds every piece is a test piece exactly once.
    """
    bucket = bucket_of(path)
    return "test" if bucket == fold else "validation" if bucket == (fold + 1) % FOLDS else "train"


def split_rule(fold: int = 0) -> str:
    """The split rule of ``fold`` in words."""
    if fold == 0:
        return "sha256(path) mod 10: 0 test, 1 validation, else train (by piece)"
    return (f"sha256(path) mod 10: {fold} test, {(fold + 1) % FOLDS} validation, else train (by piece; "
            f"fold {fold} of a {FOLDS}-fold cross-validation whose fold 0 is the fixed split)")


def check_split(name: str) -> None:
    """Refuse a split name other than train, validation or test."""
    if name not in SPLITS:
        raise CapsuleError(f"unknown split {name!r} (expected train, validation or test)")


def parse_all(parse: Callable[[str], dict], paths: Sequence[str], *, workers: int | None, max_workers: int,
              desc: str, unit: str, progress: bool, chunksize: int) -> list[dict]:
    """``[parse(p) for p in paths]`` with a progress bar, in worker processes for more than 8 paths.

    ``workers`` defaults to one per CPU core (at most ``max_workers``).  ``parse`` must be a
    module-level function (it is sent to ``spawn`` workers) and must report failures as
    ``{"path": ..., "error": ...}`` rather than raise.
    """
    if workers is None:
        workers = min(os.cpu_count() or 1, max_workers) if len(paths) > 8 else 1
    from tqdm.auto import tqdm

    bar = tqdm(total=len(paths), desc=desc, unit=unit, disable=not progress)
    results = []
    try:
        if workers <= 1:
            for p in paths:
                results.append(parse(p))
                bar.update(1)
        else:
            from .._workers import process_pool

            # spawned workers that exit with this process, even in the middle of a chunk
            with process_pool(workers) as pool:
                for r in pool.map(parse, paths, chunksize=chunksize):
                    results.append(r)
                    bar.update(1)
    finally:
        bar.close()
    return results


def keep_unique(results: list[dict], content: str) -> tuple[list[dict], list, list]:
    """``(kept, skipped, duplicates)``: results without an error whose ``content`` array is new.

    ``skipped`` holds ``(path, reason)``; ``duplicates`` holds ``(path, kept_path)`` for a
    result whose content equals an earlier one's (a second copy under another path), so no
    music can sit in two splits.
    """
    kept, skipped, duplicates, seen = [], [], [], {}
    for r in results:
        if "error" in r:
            skipped.append((r["path"], r["error"]))
            continue
        digest = hashlib.sha256(r[content].tobytes()).hexdigest()
        if digest in seen:
            duplicates.append((r["path"], seen[digest]))
            continue
        seen[digest] = r["path"]
        kept.append(r)
    return kept, skipped, duplicates

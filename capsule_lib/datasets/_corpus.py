"""What the corpus data sets share: parse many files in worker processes, then drop failures and copies."""

from __future__ import annotations

import hashlib
import os
from typing import Callable, Sequence

from ..errors import CapsuleError

#: The three splits, by piece.
SPLITS = ("train", "validation", "test")


def split_of(path: str) -> str:
    """The split of a corpus path by the fixed rule ``sha256(path) mod 10``: 0 test, 1 validation, else train."""
    bucket = int(hashlib.sha256(path.encode("utf-8")).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


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
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: safe after torch/OpenMP initialised in the parent (e.g. inside Jupyter).
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
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

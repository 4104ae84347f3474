"""Rebuild the parsed corpora shipped in ``data/datasets/`` (``make datasets``).

Each file holds, for every corpus path of one data set, what that data set's parse function
returns (see :func:`capsule_lib.datasets._corpus.parse_with_shipped`).  Run after changing a
parse rule and bumping the data set's ``CACHE_VERSION``::

    python -m capsule_lib.datasets.shipped            # all of them (10-20 min on 2 cores)
    python -m capsule_lib.datasets.shipped bach       # one
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

from ._corpus import _load_results, parse_all, save_results, shipped_stem

__all__ = ["KINDS", "Kind", "kind", "build"]


class Kind(NamedTuple):
    parse: Callable[[str], dict]
    array: str  # the result field holding the notes or tokens
    version: int
    paths: Callable[[], list[str]]


def kind(name: str) -> Kind:
    """The parse function, array field, version and corpus paths of a shipped data set."""
    from . import bach, classical, multitrack

    if name == "bach":
        return Kind(bach._parse_one, "notes", bach.CACHE_VERSION, bach.chorale_paths)
    if name == "classical":
        return Kind(classical.render_piece, "tokens", classical.CACHE_VERSION, classical.classical_paths)
    genre = name.removeprefix("gan-")
    if name.startswith("gan-") and genre in multitrack.GENRES:
        return Kind(multitrack._parse_one, "notes", multitrack.CACHE_VERSION, lambda: multitrack.genre_paths(genre))
    raise KeyError(name)


KINDS = ("bach", "gan-chorale", "gan-quartet", "gan-renaissance", "classical")


def build(name: str, *, workers: int | None = None, progress: bool = True) -> dict:
    """Parse every corpus path of data set ``name`` afresh and write its shipped file; a summary."""
    k = kind(name)
    paths = k.paths()
    t0 = time.perf_counter()
    results = parse_all(k.parse, paths, workers=workers, max_workers=8, desc=f"parsing {name}", progress=progress)
    stem = shipped_stem(name, k.version)
    stem.parent.mkdir(parents=True, exist_ok=True)
    save_results(stem, name, k.version, k.array, results)
    _load_results.cache_clear()
    return {
        "name": name,
        "paths": len(paths),
        "errors": sum("error" in r for r in results),
        "seconds": round(time.perf_counter() - t0, 1),
        "bytes": stem.with_suffix(".npz").stat().st_size + stem.with_suffix(".json").stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names",
        nargs="*",
        choices=[[], *KINDS],
        default=list(KINDS),
        metavar="NAME",
        help=f"data sets to rebuild (default: all of {', '.join(KINDS)})",
    )
    args = parser.parse_args(argv)
    for name in args.names or KINDS:
        s = build(name)
        print(f"{name}: {s['paths']} paths ({s['errors']} unparsable) in {s['seconds']} s, {s['bytes'] / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

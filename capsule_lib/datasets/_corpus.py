"""What the corpus data sets share: parse many files in worker processes, then drop failures and copies."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes, atomic_write_text
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
    return (
        f"sha256(path) mod 10: {fold} test, {(fold + 1) % FOLDS} validation, else train (by piece; "
        f"fold {fold} of a {FOLDS}-fold cross-validation whose fold 0 is the fixed split)"
    )


def check_split(name: str) -> None:
    """Refuse a split name other than train, validation or test."""
    if name not in SPLITS:
        raise CapsuleError(f"unknown split {name!r} (expected train, validation or test)")


def check_limit(limit) -> None:
    """Refuse a ``limit`` (how many paths to parse) that is not None or a whole number >= 1."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise CapsuleError(f"limit must be a whole number >= 1, got {limit!r}")


class SplitByPiece:
    """``split(name)`` for a data set whose items (in the attribute ``_items``) carry a ``split``."""

    _items = "pieces"

    def split(self, name: str) -> list:
        """The items of one split, in the data set's order."""
        check_split(name)
        return [item for item in getattr(self, self._items) if item.split == name]


# --------------------------------------------------------------------------- packed arrays on disk
# Every corpus data set keeps a cache, and the shipped parse results are kept the same way: the
# pieces' arrays concatenated into one array of a ``.npz`` with their ``offsets``, and whatever else
# describes them in a ``.json`` beside it.


def write_packed(
    stem: Path,
    name: str,
    arrays: Sequence[np.ndarray],
    meta: dict,
    *,
    dtype=None,
    row_shape: tuple[int, ...] = (),
    **json_kwargs,
) -> None:
    """Write ``stem.npz`` (``arrays`` concatenated as ``name``, as ``dtype``, and ``offsets``), then ``stem.json``.

    The ``.json`` goes last: it marks the pair complete, so an interrupted write leaves a
    missing cache, never a damaged one.  ``row_shape`` is the shape of one row, for an empty
    ``arrays``; ``json_kwargs`` go to :func:`json.dumps`.
    """
    values = np.concatenate(arrays) if len(arrays) else np.zeros((0, *row_shape), dtype or np.int32)
    offsets = np.cumsum([0] + [len(a) for a in arrays]).astype(np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **{name: values if dtype is None else values.astype(dtype), "offsets": offsets})
    atomic_write_bytes(stem.with_suffix(".npz"), buf.getvalue())
    atomic_write_text(stem.with_suffix(".json"), json.dumps(meta, **json_kwargs) + "\n")


def dropped_meta(ds) -> dict:
    """What data set ``ds`` dropped, for its cache's ``.json``: ``skipped`` (path, reason) and
    ``duplicates`` (path, kept path), as lists."""
    return {"skipped": [list(x) for x in ds.skipped], "duplicates": [list(x) for x in ds.duplicates]}


def read_dropped(meta: dict) -> tuple[list, list]:
    """``(skipped, duplicates)`` of a cache's ``meta`` as :func:`dropped_meta` wrote them, as tuples again."""
    return [tuple(x) for x in meta["skipped"]], [tuple(x) for x in meta["duplicates"]]


def cached_dataset(stem: Path, *, force: bool, load: Callable, save: Callable, build: Callable):
    """The data set cached at ``stem`` (unless ``force``), else ``build()``, saved there for next time.

    ``load(stem)`` returns None for a missing, damaged or outdated cache; ``save(stem, ds)``
    writes ``stem.npz`` and ``stem.json``.  The data set's ``cache_path`` is set either way.
    """
    if not force:
        ds = load(stem)
        if ds is not None:
            return ds
    ds = build()
    save(stem, ds)
    ds.cache_path = stem.with_suffix(".npz")
    return ds


def read_packed(stem: Path, name: str, *, version: int, items: str | None = None) -> tuple[dict, list] | None:
    """``(meta, arrays)`` as :func:`write_packed` wrote them, or None if missing, damaged or outdated.

    Outdated: ``meta["version"]`` is not ``version``.  With ``items``, also None unless
    ``meta[items]`` lists exactly one entry per array.
    """
    try:
        meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(stem.with_suffix(".npz")) as data:
            values, offsets = data[name], data["offsets"]
    except (OSError, ValueError, KeyError):
        return None
    if not isinstance(meta, dict) or meta.get("version") != version:
        return None
    arrays = [values[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    if items is not None and not (isinstance(meta.get(items), list) and len(meta[items]) == len(arrays)):
        return None
    return meta, arrays


def parse_all(
    parse: Callable[[str], dict],
    paths: Sequence[str],
    *,
    workers: int | None,
    desc: str,
    progress: bool,
    unit: str = "piece",
    max_workers: int = 4,
    chunksize: int = 2,
) -> list[dict]:
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


# --------------------------------------------------------------------------- shipped parse results
# Parsing music21's corpus takes one to nine minutes per data set on a two-core laptop, too long
# for a lesson.  data/datasets/ ships, per data set, what its parse function returned for every
# corpus path -- the notes or tokens and a few fields, or the error.  A data set built from them
# runs the same rules (skips, duplicates, splits) on the same results, so it is identical to one
# parsed now; ``python -m capsule_lib.datasets.shipped`` (``make datasets``) rebuilds the files.


def shipped_stem(kind: str, version: int) -> Path:
    """``data/datasets/<kind>-v<version>``: the shipped parse results of one data set (``.npz`` + ``.json``)."""
    from ..paths import data_dir

    return data_dir() / "datasets" / f"{kind}-v{version}"


def save_results(stem: Path, kind: str, version: int, array: str, results: list[dict]) -> None:
    """Write parse ``results`` as ``stem.npz`` (their ``array`` fields, concatenated) + ``stem.json`` (the rest)."""
    arrays = [r[array] for r in results if "error" not in r]
    if not arrays:
        raise CapsuleError(f"no {kind} piece parsed: nothing to ship")
    meta = {
        "kind": kind,
        "version": version,
        "array": array,
        "results": [{k: v for k, v in r.items() if k != array} for r in results],
    }
    write_packed(stem, "values", arrays, meta, indent=0, ensure_ascii=False)


@functools.lru_cache(maxsize=8)
def _load_results(stem: Path, version: int) -> dict[str, dict]:
    packed = read_packed(stem, "values", version=version)
    if packed is None:
        return {}  # not shipped (or damaged, or of another version): parse
    meta, arrays = packed
    out, i = {}, 0
    for r in meta["results"]:
        if "error" not in r:
            if i >= len(arrays):
                return {}  # truncated: trust none of it
            r = {**r, meta["array"]: arrays[i]}
            i += 1
        out[r["path"]] = r
    return out


def parse_with_shipped(
    kind: str,
    version: int,
    parse: Callable[[str], dict],
    paths: Sequence[str],
    *,
    use_shipped: bool = True,
    **parse_all_kwargs,
) -> list[dict]:
    """``parse_all(parse, paths)``, taking each path's result from the shipped file where it has one.

    Only paths the shipped file lacks (another music21 corpus, a newer parse version) are parsed.
    """
    shipped = _load_results(shipped_stem(kind, version), version) if use_shipped else {}
    missing = [p for p in paths if p not in shipped]
    fresh = dict(zip(missing, parse_all(parse, missing, **parse_all_kwargs))) if missing else {}
    out = []
    for p in paths:
        r = fresh.get(p) or shipped[p]
        out.append({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in r.items()})
    return out


@dataclass(frozen=True)
class CorpusParse:
    """How one data set parses its corpus: the name and version of its shipped parse results,
    its module-level ``parse`` function, the result field holding the array (``"notes"``), and
    the progress bar's words and worker settings for :func:`parse_all`."""

    kind: str
    version: int
    parse: Callable[[str], dict]
    array: str
    desc: str
    unit: str = "piece"
    max_workers: int = 4
    chunksize: int = 2

    def unique(self, paths: Sequence[str], *, force: bool, workers: int | None, progress: bool):
        """``(kept, skipped, duplicates)`` of ``paths`` (see :func:`keep_unique`): each parsed, or
        taken from the shipped results unless ``force``."""
        results = parse_with_shipped(
            self.kind,
            self.version,
            self.parse,
            paths,
            use_shipped=not force,
            workers=workers,
            max_workers=self.max_workers,
            desc=self.desc,
            unit=self.unit,
            progress=progress,
            chunksize=self.chunksize,
        )
        return keep_unique(results, self.array)

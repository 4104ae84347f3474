"""The parsed corpora in data/datasets/ are what the parse functions return today, and they are used.

A fresh machine builds every data set from them in seconds instead of parsing music21's corpus
for minutes; a stale or wrong file would silently train models on other music, so a few paths
of each are parsed afresh and compared field by field.
"""

import numpy as np
import pytest

from capsule_lib.datasets import _corpus
from capsule_lib.datasets.shipped import KINDS, kind


@pytest.mark.parametrize("name", KINDS)
def test_shipped_file_exists_for_the_current_parse_version_and_covers_the_corpus(name):
    k = kind(name)
    shipped = _corpus._load_results(_corpus.shipped_stem(name, k.version), k.version)
    paths = k.paths()
    assert shipped, f"data/datasets/{name}-v{k.version} is missing: run `make datasets`"
    assert set(paths) <= set(shipped)


@pytest.mark.slow
@pytest.mark.parametrize("name", KINDS)
def test_shipped_results_equal_a_fresh_parse(name):
    k = kind(name)
    shipped = _corpus._load_results(_corpus.shipped_stem(name, k.version), k.version)
    paths = k.paths()
    for path in (paths[len(paths) // 2],):  # one path each: parsing is what the shipped file spares us
        fresh, kept = k.parse(path), shipped[path]
        assert fresh.keys() == kept.keys(), path
        for key, value in fresh.items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(value, kept[key]) and value.dtype == kept[key].dtype, (path, key)
            else:
                assert value == pytest.approx(kept[key]) if isinstance(value, float) else value == kept[key], key


def test_a_fresh_home_builds_the_chorales_without_parsing(monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed although the results ship with the project")

    monkeypatch.setattr(_corpus, "parse_all", no_parsing)
    from capsule_lib.datasets.bach import build_bach_dataset
    from capsule_lib.datasets.multitrack import build_genre_dataset

    assert len(build_bach_dataset(progress=False).chorales) > 300
    assert len(build_bach_dataset(limit=12, progress=False).chorales) == 12
    assert build_genre_dataset("chorale", limit=5, progress=False).summary()["pieces"] == 5


def test_paths_the_file_lacks_are_parsed_and_rebuild_ignores_the_file(monkeypatch):
    calls = []

    def fake_parse_all(parse, paths, **kwargs):
        calls.append(list(paths))
        return [{"path": p, "error": "parsed"} for p in paths]

    monkeypatch.setattr(_corpus, "parse_all", fake_parse_all)
    k = kind("bach")
    known = k.paths()[:2]
    out = _corpus.parse_with_shipped(
        "bach",
        k.version,
        k.parse,
        [*known, "bach/not-shipped"],
        workers=1,
        max_workers=1,
        desc="",
        unit="",
        progress=False,
        chunksize=1,
    )
    assert calls == [["bach/not-shipped"]]
    assert [r["path"] for r in out] == [*known, "bach/not-shipped"] and "notes" in out[0]
    out = _corpus.parse_with_shipped(
        "bach",
        k.version,
        k.parse,
        known,
        use_shipped=False,
        workers=1,
        max_workers=1,
        desc="",
        unit="",
        progress=False,
        chunksize=1,
    )
    assert calls[-1] == known and all("error" in r for r in out)


def test_a_damaged_or_other_version_file_is_ignored(tmp_path):
    stem = tmp_path / "x-v1"
    _corpus.save_results(
        stem,
        "x",
        1,
        "notes",
        [{"path": "a", "notes": np.zeros((2, 3), np.int32), "title": "A"}, {"path": "b", "error": "no notes"}],
    )
    assert set(_corpus._load_results(stem, 1)) == {"a", "b"}
    assert _corpus._load_results(stem, 2) == {}
    stem.with_suffix(".npz").write_bytes(b"not a zip")
    _corpus._load_results.cache_clear()
    assert _corpus._load_results(stem, 1) == {}

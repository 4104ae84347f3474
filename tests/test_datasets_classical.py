"""Classical corpus as performance tokens: piece list, split, cache, augmentation."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capsule_lib import performance as T
from capsule_lib.datasets import _corpus, classical
from capsule_lib.datasets.classical import (
    COMPOSERS,
    SPLITS,
    augment,
    build_classical_dataset,
    classical_paths,
    split_of,
    stretch_tokens,
    transpose_tokens,
)
from capsule_lib.errors import CapsuleError
from capsule_lib.score import Note, Score, Track


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Four short pieces from two composers, rendered once into a private cache."""
    home = tmp_path_factory.mktemp("classical_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CAPSULE_HOME", str(home))
    started = time.perf_counter()
    ds = build_classical_dataset(progress=False, limit=4, composers=["bach", "schoenberg"], workers=1)
    first = time.perf_counter() - started
    yield ds, first, home
    mp.undo()


@pytest.mark.slow
def test_composers_exist_offline():
    from music21 import corpus

    for name in COMPOSERS:
        assert corpus.getComposer(name), name
    paths = classical_paths()
    counts = {}
    for p in paths:
        counts[p.split("/")[0]] = counts.get(p.split("/")[0], 0) + 1
    assert set(counts) == set(COMPOSERS)
    assert max(counts.values()) <= classical.MAX_PER_COMPOSER
    assert not any(p.endswith(".rntxt") for p in paths)
    assert len(paths) == len(set(paths))
    # interleaved: the first len(COMPOSERS) paths are one per composer
    assert len({p.split("/")[0] for p in paths[: len(COMPOSERS)]}) == len(COMPOSERS)
    assert classical_paths() == paths  # deterministic
    with pytest.raises(CapsuleError):
        classical_paths(["no_such_composer_xyz"])


@pytest.mark.slow
def test_split_rule():
    import hashlib

    for p in classical_paths()[:50]:
        b = int(hashlib.sha256(p.encode()).hexdigest(), 16) % 10
        assert split_of(p) == ("test" if b == 0 else "validation" if b == 1 else "train")
    splits = [split_of(p) for p in classical_paths()]
    assert all(splits.count(s) > 0 for s in SPLITS)


def test_build_small(small):
    ds, _, _ = small
    assert len(ds.pieces) + len(ds.skipped) + len(ds.duplicates) == 4
    assert ds.pieces
    for p in ds.pieces:
        assert p.composer in ("bach", "schoenberg")
        assert p.split == split_of(p.path)
        assert p.tokens.dtype == np.int16 and p.tokens[0] == T.START
        assert p.tokens.min() >= 0 and p.tokens.max() < T.VOCAB_SIZE
        assert p.seconds == pytest.approx(T.total_seconds(p.tokens))
        assert p.seconds > 5
        assert len(T.decode_notes(p.tokens)) > 10
    s = ds.summary()
    assert s["pieces"] == len(ds.pieces) and "sha256" in s["split_rule"]
    assert sum(s[name]["pieces"] for name in SPLITS) == len(ds.pieces)
    assert sum(s[name]["tokens"] for name in SPLITS) == s["tokens"]
    assert sum(len(x) for name in SPLITS for x in ds.tokens(name)) == s["tokens"]
    with pytest.raises(CapsuleError):
        ds.split("dev")


def test_cache_reload_reads_nothing_else_and_is_equal(small, monkeypatch):
    ds, first, home = small
    monkeypatch.setenv("CAPSULE_HOME", str(home))
    assert ds.cache_path is not None and ds.cache_path.exists()
    assert ds.cache_path.parent == home / "cache" / "classical"
    monkeypatch.setattr(_corpus, "parse_with_shipped", lambda *a, **k: pytest.fail("the cache was not used"))
    again = build_classical_dataset(progress=False, limit=4, composers=["bach", "schoenberg"])
    assert [p.path for p in again.pieces] == [p.path for p in ds.pieces]
    for a, b in zip(again.pieces, ds.pieces):
        assert np.array_equal(a.tokens, b.tokens) and a.split == b.split and a.seconds == b.seconds
    assert again.summary() == ds.summary()


def test_damaged_cache_rebuilds(small, monkeypatch):
    ds, _, home = small
    monkeypatch.setenv("CAPSULE_HOME", str(home))
    ds.cache_path.with_suffix(".json").write_text("{not json")
    again = build_classical_dataset(progress=False, limit=4, composers=["bach", "schoenberg"])
    assert [p.path for p in again.pieces] == [p.path for p in ds.pieces]


def test_unparsable_piece_is_skipped_not_fatal(monkeypatch):
    real = classical.render_piece
    monkeypatch.setattr(
        classical, "classical_paths", lambda composers=None: ["bach/nope.mxl", "schoenberg/opus19/movement2.mxl"]
    )
    ds = build_classical_dataset(progress=False, workers=1)
    assert [p.path for p in ds.pieces] == ["schoenberg/opus19/movement2.mxl"]
    assert ds.skipped and ds.skipped[0][0] == "bach/nope.mxl"
    assert ds.summary()["skipped"] == 1
    assert real("bach/nope.mxl")["error"]
    monkeypatch.setattr(classical, "classical_paths", lambda composers=None: ["bach/nope.mxl"])
    with pytest.raises(CapsuleError):
        build_classical_dataset(progress=False, workers=1)


def test_bad_limit():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(CapsuleError):
            build_classical_dataset(progress=False, limit=bad)


def test_default_tempo_without_metronome_marks():
    r = classical.render_piece("schoenberg/opus19/movement2.mxl")
    assert "error" not in r
    from music21 import converter, tempo

    s = converter.parse(str(classical.corpus_root() / "schoenberg/opus19/movement2.mxl"))
    marks = [m for m in s.flatten().getElementsByClass(tempo.MetronomeMark) if m.getQuarterBPM()]
    if not marks:
        assert r["tempo"] == classical.DEFAULT_TEMPO


# --------------------------------------------------------------------------- augmentation


def _perf(notes, tempo=120.0, res=4):
    return T.encode(Score(tracks=(Track("m", notes=tuple(Note(*n) for n in notes)),), tempo=tempo, resolution=res))


@st.composite
def token_seqs(draw):
    notes = []
    for _ in range(draw(st.integers(1, 20))):
        notes.append(
            (draw(st.integers(0, 64)), draw(st.integers(21, 108)), draw(st.integers(1, 16)), draw(st.integers(1, 127)))
        )
    return _perf(notes)


@settings(max_examples=60, deadline=None)
@given(token_seqs(), st.integers(-12, 12))
def test_transpose_commutes_with_decode(toks, semitones):
    got = T.decode_notes(transpose_tokens(toks, semitones))
    want = [(s, p + semitones, e, v) for s, p, e, v in T.decode_notes(toks) if 21 <= p + semitones <= 108]
    assert got == sorted(want)


def test_transpose_drops_on_and_off_together():
    toks = _perf([(0, 21, 4, 100), (0, 60, 4, 100), (2, 108, 4, 100)])
    down = transpose_tokens(toks, -1)
    assert T.note_on(21) not in down and T.note_off(21) not in down
    assert sum(T.is_note_on(t) for t in down) == sum(T.is_note_off(t) for t in down) == 2
    up = transpose_tokens(np.asarray(toks, np.int16), 1)
    assert up.dtype == np.int16 and sum(T.is_note_on(t) for t in up) == 2
    assert list(transpose_tokens(toks, 0)) == toks


@settings(max_examples=60, deadline=None)
@given(token_seqs(), st.floats(0.95, 1.05))
def test_stretch_scales_duration(toks, factor):
    out = stretch_tokens(toks, factor)
    assert T.total_seconds(out) == pytest.approx(T.total_seconds(toks) * factor, abs=0.005 + 1e-9)
    # every event moves to round(t * factor) on the 10 ms grid; order and content kept
    assert [t for t in out if not T.is_shift(t)] == [t for t in toks if not T.is_shift(t)]
    before, after = T.decode_notes(toks), T.decode_notes(out)
    assert len(before) == len(after)
    for (s0, p0, e0, v0), (s1, p1, e1, v1) in zip(before, after):
        assert p0 == p1 and v0 == v1
        assert abs(s0 * factor - s1) <= 0.0051
        assert abs(e0 * factor - e1) <= 0.0101  # +10 ms when a 1-tick note shrank to 0


def test_stretch_long_rests_and_bad_factor():
    toks = _perf([(0, 60, 4, 100), (200, 62, 4, 100)])  # 25 s rest at 120 bpm / 4 steps
    out = stretch_tokens(toks, 1.05)
    assert T.total_seconds(out) == pytest.approx(T.total_seconds(toks) * 1.05, abs=0.005)
    assert all(0 <= t < 310 for t in out)
    assert list(stretch_tokens(toks, 1.0)) == toks
    with pytest.raises(CapsuleError):
        stretch_tokens(toks, 0)


def test_augment_ranges():
    toks = _perf([(i, 48 + i % 24, 2, 90) for i in range(40)])
    rng = np.random.default_rng(0)
    base = T.total_seconds(toks)
    shifts = set()
    for _ in range(40):
        out = augment(toks, rng)
        assert 0.95 * base - 0.01 <= T.total_seconds(out) <= 1.05 * base + 0.01
        first_on = next(t for t in out if T.is_note_on(t))
        shifts.add(T.token_pitch(first_on) - 48)
    assert shifts <= set(range(-3, 4)) and len(shifts) > 3


@pytest.mark.slow
def test_abc_opus_is_merged():
    r = classical.render_piece("josquin/fortunaDunGranTempo.abc")
    assert "error" not in r, r.get("error")
    assert len({T.token_pitch(t) for t in r["tokens"] if T.is_note_on(t)}) > 10

"""Can a melody tell how its accompaniment is textured?  A study behind the quartet's quality bar.

The quality bar compares a GAN's accompaniment with the real one of the held-out test pieces
within 20 %.  For texture rates -- double stops (polyphonic rate), resting bars (empty bar
rate) -- string quartet movements differ far more than that.  A generator could only follow
the test movements if their texture were predictable from their melodies.  This script
measures that on the data alone, no model involved:

1. each split's mean texture (4-bar samples, not overlapping);
2. the quality bar with the real accompaniment of the training / validation pieces in place of
   generated music, against the test pieces (``real_music_bar``);
3. least-squares predictions of each sample's texture from its melody -- the window's own
   features, and the features of its whole movement's melody -- fitted on training +
   validation samples: does the predicted test mean move from the training mean towards the
   test truth?
4. how often the bar can be passed at all: for many random splits with as many test pieces
   as the real one, an *oracle* -- the mean of every piece of the data set, test pieces
   included -- and the real music of that draw's training pieces are scored against the
   drawn test pieces.  Their pass rates are what a model that matches the music's overall
   statistics could hope for.

Run: ``.venv/bin/python bench/texture_study.py [quartet|chorale|renaissance]`` (15-60 s
once the data set is cached).
"""

from __future__ import annotations

import sys

import numpy as np
from gan_research import real_music_bar  # bench/ is on sys.path when a script runs

from capsule_lib.datasets.multitrack import SAMPLE_STEPS, STEPS_PER_BAR, MultitrackDataset, build_genre_dataset
from capsule_lib.techniques.gan.data import batch_metrics, sample_metrics
from capsule_lib.techniques.gan.evaluate import QUALITY_BAR, quality_bar

SPLITS = ("train", "validation", "test")
FEATURES = ("double stops", "sounding share", "onsets per bar", "mean pitch", "pitch spread")
TEXTURE = ("polyphonic_rate", "empty_bar_rate")


def melody_features(melody: np.ndarray) -> np.ndarray:
    """``(n, 5)`` features of ``(n, steps, pitches)`` melody rolls (see :data:`FEATURES`)."""
    counts = melody.sum(-1)
    sounding = counts > 0
    chords = (counts >= 2).sum(-1) / np.maximum(sounding.sum(-1), 1)
    onsets = (np.diff(melody.astype(np.int8), axis=1) > 0).sum((1, 2)) / (melody.shape[1] / STEPS_PER_BAR)
    pitch = np.array([np.nonzero(m)[1].mean() if m.any() else np.nan for m in melody])
    spread = np.array([np.nonzero(m)[1].std() if m.any() else np.nan for m in melody])
    return np.c_[chords, sounding.mean(-1), onsets, pitch, spread]


def piece_table(ds) -> dict:
    """Every piece's 4-bar samples (not overlapping), once: ``{"owner": (n,) piece index,
    "split": (n,) split, "features": (n, 10) melody features of the window and of its whole
    piece, "checks": [(track, metric)], "values": (n, checks) each sample's metrics (those of
    the quality bar, as :func:`sample_metrics` computes them; NaN where undefined)}``."""
    checks = [(t, m) for t in ds.spec.tracks[1:] for m in QUALITY_BAR]
    owner, split, features, values = [], [], [], []
    for k, piece in enumerate(ds.pieces):
        samples = MultitrackDataset(ds.spec, [piece]).samples(piece.split, hop=SAMPLE_STEPS)
        if len(samples) == 0:
            continue
        window = melody_features(samples[:, 0])
        whole = np.broadcast_to(np.nanmean(window, axis=0), window.shape)  # the movement's melody
        features.append(np.c_[window, whole])
        values += [[float(r["tracks"][t].get(m, np.nan)) for t, m in checks] for r in sample_metrics(samples, ds.spec)]
        owner += [k] * len(samples)
        split += [piece.split] * len(samples)
    return {
        "owner": np.asarray(owner),
        "split": np.asarray(split),
        "features": np.concatenate(features),
        "checks": checks,
        "values": np.asarray(values),
    }


def _bar(candidate, truth, checks) -> dict:
    paired = {}
    for (t, m), g, x in zip(checks, candidate, truth):
        paired.setdefault(t, {})[m] = {"generated": float(g), "ground_truth": float(x)}
    return quality_bar(paired)


def bar_feasibility(ds, table: dict | None = None, draws: int = 1000, seed: int = 0) -> dict:
    """Pass rates of the quality bar over ``draws`` random splits of ``ds``'s pieces (as many
    test and validation pieces as its own split), for the oracle (mean of all pieces) and for
    the real music of each draw's training pieces; and how often each check fails for the oracle.

    Returns ``{"draws", "test_pieces", "oracle_passed", "training_music_passed",
    "oracle_failures_median", "oracle_failed_checks": {"TRACK METRIC": share}}``.
    """
    table = piece_table(ds) if table is None else table
    owner, values, checks = table["owner"], table["values"], table["checks"]
    n = len(ds.pieces)
    n_test = sum(p.split == "test" for p in ds.pieces)
    n_val = sum(p.split == "validation" for p in ds.pieces)
    rng = np.random.default_rng(seed)
    oracle = np.nanmean(values, axis=0)
    passed = {"oracle": 0, "training": 0}
    failed_checks, oracle_failures = {}, []
    with np.errstate(invalid="ignore"):
        for _ in range(draws):
            order = rng.permutation(n)
            truth = np.nanmean(values[np.isin(owner, order[:n_test])], axis=0)
            o = _bar(oracle, truth, checks)
            passed["oracle"] += o["passed"]
            oracle_failures.append(len(o["failures"]))
            for f in o["failures"]:
                check = f.split(":")[0]
                failed_checks[check] = failed_checks.get(check, 0) + 1
            training = np.nanmean(values[np.isin(owner, order[n_test + n_val :])], axis=0)
            passed["training"] += _bar(training, truth, checks)["passed"]
    return {
        "draws": draws,
        "test_pieces": n_test,
        "oracle_passed": passed["oracle"] / draws,
        "training_music_passed": passed["training"] / draws,
        "oracle_failures_median": float(np.median(oracle_failures)),
        "oracle_failed_checks": {k: v / draws for k, v in sorted(failed_checks.items(), key=lambda kv: -kv[1])},
    }


def study(ds, draws: int = 1000) -> dict:
    """The four parts of the study on a :class:`MultitrackDataset` with train, validation and test pieces.

    Returns ``{"pieces": {split: n}, "means": {metric: {track: {split: mean}}}, "real_music_bar": {...},
    "predicted": {metric: {track: {"fit_mean", "truth", "predicted", "correlation"}}},
    "feasibility": bar_feasibility(...)}``.
    """
    table = piece_table(ds)
    split, x, values = table["split"], table["features"], table["values"]
    out = {
        "pieces": {s: len(ds.split(s)) for s in SPLITS},
        "means": {m: {} for m in TEXTURE},
        "predicted": {m: {} for m in TEXTURE},
        "real_music_bar": real_music_bar(ds, "test", batch_metrics(ds.samples("test", hop=SAMPLE_STEPS), ds.spec)),
        "feasibility": bar_feasibility(ds, table, draws),
    }
    fit, test = split != "test", split == "test"
    mu, sd = np.nanmean(x[fit], 0), np.nanstd(x[fit], 0) + 1e-9

    def design(rows):
        return np.c_[np.ones(len(rows)), np.nan_to_num((rows - mu) / sd)]

    for j, (track, metric) in enumerate(table["checks"]):
        if metric not in TEXTURE:
            continue
        y = values[:, j]
        out["means"][metric][track] = {s: float(np.nanmean(y[split == s])) for s in SPLITS}
        ok_fit, ok_test = fit & ~np.isnan(y), test & ~np.isnan(y)
        coef = np.linalg.lstsq(design(x[ok_fit]), y[ok_fit], rcond=None)[0]
        pred, truth = np.clip(design(x[ok_test]) @ coef, 0, 1), y[ok_test]
        r = np.corrcoef(pred, truth)[0, 1] if pred.std() > 0 and truth.std() > 0 else float("nan")
        out["predicted"][metric][track] = {
            "fit_mean": float(y[ok_fit].mean()),
            "truth": float(truth.mean()),
            "predicted": float(pred.mean()),
            "correlation": float(r),
        }
    return out


def main(genre: str = "quartet") -> None:
    ds = build_genre_dataset(genre, progress=False)
    r = study(ds)
    print(
        f"{genre}: samples (4 bars, not overlapping) of "
        + ", ".join(f"{n} {s}" for s, n in r["pieces"].items())
        + " pieces\n"
    )
    print("1. mean texture per split")
    for metric, per_track in r["means"].items():
        for name, means in per_track.items():
            print(f"   {name:>10} {metric:<16}" + "".join(f"{s:>12} {m:.3f}" for s, m in means.items()))
    print("\n2. the quality bar with real music in place of the generated accompaniment, against the test pieces")
    for split, bar in r["real_music_bar"].items():
        print(
            f"   {split} pieces: "
            + ("passed" if bar["passed"] else f"{len(bar['failures'])} failed checks: " + "; ".join(bar["failures"]))
        )
    print("\n3. texture predicted from the melody (least squares on train + validation samples)")
    for metric, per_track in r["predicted"].items():
        for name, p in per_track.items():
            print(
                f"   {name:>10} {metric:<16} train+validation mean {p['fit_mean']:.3f}   test: truth "
                f"{p['truth']:.3f}, predicted {p['predicted']:.3f} (per-sample correlation {p['correlation']:.2f})"
            )
    f = r["feasibility"]
    print(f"\n4. the bar against {f['draws']} random draws of {f['test_pieces']} test pieces")
    print(
        f"   oracle (the mean of all {len(ds.pieces)} pieces) passes {f['oracle_passed']:.1%} of draws "
        f"(median failed checks: {f['oracle_failures_median']:.0f}); the draw's training music passes "
        f"{f['training_music_passed']:.1%}"
    )
    for check, share in list(f["oracle_failed_checks"].items())[:6]:
        print(f"   oracle fails {check} in {share:.0%} of draws")


if __name__ == "__main__":
    main(*sys.argv[1:2])

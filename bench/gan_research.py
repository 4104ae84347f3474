"""Research on the GAN evaluation itself: how far a held-out split of a few pieces can be trusted.

The library's :func:`~capsule_lib.techniques.gan.evaluate_gan` compares a model's accompaniment
with the real one of the test pieces under one quality bar.  A held-out split is a handful of
pieces whose textures differ (one string quartet movement is full of double stops, the next has
none), so this script asks how much of a verdict is about *which* pieces were held out:

- :func:`piece_interval`: how far each ground-truth mean would move with another draw of
  held-out pieces (a piece bootstrap);
- :func:`real_music_bar`: the same bar with the *real* accompaniment of the other splits'
  pieces in place of the generated one -- where real Haydn fails a check against the test
  pieces, the check measures which pieces were held out rather than the model;
- :func:`research_evaluation`: ``evaluate_gan`` with both of the above, as the shipped cards
  store their ``test`` results;
- :func:`cross_validate`: takes the dependence away -- the same training command run once per
  fold of the split rule (``capsule train gan ... --fold K``; fold 0 is the fixed split) gives
  ten models, each of which accompanies the melodies of the pieces *it* never saw, so every
  piece of the data set is a held-out piece once; :func:`record_cross_validation` stores the
  result in the fold-0 model's card.  ``texture_study.py`` beside this file studies whether a
  melody can tell its accompaniment's texture at all.

Run::

    python bench/gan_research.py cross-validate MODEL... [--record] [--json] [--dataset FOLDER] [--seed N]
    python bench/gan_research.py evaluate MODEL [--split test] [--json] [--dataset FOLDER] [--seed N]

Results are in ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from capsule_lib import CapsuleError, ModelRegistry
from capsule_lib.datasets.multitrack import SAMPLE_STEPS
from capsule_lib.techniques.gan.card import write_card_files
from capsule_lib.techniques.gan.data import batch_metrics, sample_metrics
from capsule_lib.techniques.gan.evaluate import (
    comparison,
    evaluate_gan,
    model_dataset,
    paired_tracks,
    quality_bar,
)
from capsule_lib.techniques.gan.sample import generate_samples, load_gan
from capsule_lib.techniques.gan.views import (
    cross_validation_lines,
    failure_intervals,
    metrics_comparison_table,
    real_music_lines,
)

#: Resamples and level of :func:`piece_interval`.
INTERVAL_DRAWS = 2000
INTERVAL_LEVEL = 0.9


def piece_interval(
    rows: list[dict], pieces, *, draws: int = INTERVAL_DRAWS, level: float = INTERVAL_LEVEL, seed: int = 0
) -> dict:
    """How much a ground-truth mean depends on *which* pieces the held-out split holds.

    ``rows`` are :func:`~capsule_lib.techniques.gan.data.sample_metrics` of the real
    samples, ``pieces`` each sample's piece.  The split's pieces are resampled with
    replacement ``draws`` times (a piece bootstrap: samples of one piece share its texture,
    so they are not independent) and each metric's mean recomputed as the evaluation does
    (over every sample with a value).  Returns ``{track: {metric: [low, high]}}``, the
    central ``level`` interval; empty with fewer than two pieces.
    """
    pieces = np.asarray(pieces)
    ids, owner = np.unique(pieces, return_inverse=True)
    if len(ids) < 2 or not rows:
        return {}
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), size=draws).astype(float)  # (draws, pieces)
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    out = {}
    for track in rows[0]["tracks"]:
        out[track] = {}
        for metric in rows[0]["tracks"][track]:
            vals = np.array([float(r["tracks"][track].get(metric, math.nan)) for r in rows])
            ok = ~np.isnan(vals)
            sums = np.bincount(owner[ok], weights=vals[ok], minlength=len(ids))
            counts = np.bincount(owner[ok], minlength=len(ids)).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                est = (weights @ sums) / (weights @ counts)
            est = est[~np.isnan(est)]
            if len(est):
                lo, hi = np.quantile(est, q)
                out[track][metric] = [round(float(lo), 4), round(float(hi), 4)]
    return out


def _interval(rows: list[dict], pieces, seed: int) -> dict:
    return {"level": INTERVAL_LEVEL, "draws": INTERVAL_DRAWS, "tracks": piece_interval(rows, pieces, seed=seed)}


def real_music_bar(ds, split: str, truth: dict, splits=("train", "validation")) -> dict:
    """The quality bar with *real* music in place of the generated accompaniment.

    For each of ``splits`` (other than ``split``) with samples, the real accompaniment of
    its pieces (4-bar samples, not overlapping, as the evaluation's) is scored against
    ``truth`` -- the :func:`batch_metrics` of ``split``'s real samples -- exactly as a
    model's output is.  A check that the composers' own music of the training pieces fails
    cannot tell a good model from a bad one on this split.  Returns ``{split: {"n_pieces",
    "n_samples", "passed", "failures"}}``.
    """
    out = {}
    for other in splits:
        if other == split:
            continue
        real = ds.samples(other, hop=SAMPLE_STEPS)
        if len(real) == 0:
            continue
        bar = quality_bar(
            paired_tracks(batch_metrics(real, ds.spec), truth, ds.spec.tracks),
            skip=(ds.spec.tracks[0],),
            label=f"{other} pieces",
        )
        out[other] = {
            "n_pieces": len(ds.split(other)),
            "n_samples": int(len(real)),
            "passed": bar["passed"],
            "failures": bar["failures"],
        }
    return out


def research_evaluation(
    model="musegan-chorale",
    split: str = "test",
    *,
    dataset=None,
    seed: int = 0,
    max_samples: int | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> dict:
    """:func:`~capsule_lib.techniques.gan.evaluate_gan` (same arguments) plus
    ``"ground_truth_interval": {"level", "draws", "tracks": {name: {metric: [low, high]}}}``
    (:func:`piece_interval` of the held-out pieces) and ``"real_music_bar"`` (:func:`real_music_bar`
    of the other splits), as the shipped cards store their ``test`` results."""
    gan = load_gan(model) if isinstance(model, str) else model
    ds = model_dataset(gan, dataset, limit=limit, progress=progress)
    result = evaluate_gan(gan, split, dataset=ds, seed=seed, max_samples=max_samples)
    real, owner = ds.samples(split, with_pieces=True)
    if max_samples is not None:
        real, owner = real[:max_samples], owner[:max_samples]
    rows = sample_metrics(real, gan.spec)
    result["ground_truth_interval"] = _interval(rows, owner, seed)
    result["real_music_bar"] = real_music_bar(ds, split, batch_metrics(None, gan.spec, rows))
    return result


def cross_validate(models, *, dataset=None, seed: int = 0, limit: int | None = None, progress: bool = False) -> dict:
    """The quality bar on the held-out melodies of several cross-validation folds, pooled.

    Parameters
    ----------
    models : sequence of str or LoadedGan
        Models trained by one command on different folds (``capsule train gan ... --fold K``;
        each card records its fold).  Two models of one fold, or of different data sets or
        tracks, are refused.
    dataset : optional
        As for :func:`~capsule_lib.techniques.gan.evaluate_gan` (default: the models' genre).
    seed : int
        Noise seed; with it each fold's samples are exactly ``evaluate_gan``'s.

    Returns
    -------
    dict
        ``{"models", "folds", "n_pieces", "n_samples", "seed", "tracks", "tonal_distance",
        "quality_bar", "ground_truth_interval", "per_fold"}``: every fold model accompanies
        the melodies of its own test pieces (4-bar samples, not overlapping) and the metrics
        of all those samples are averaged together, the ground truth over the same real
        samples -- with all ten folds, every piece of the data set.  ``per_fold`` holds each
        fold's own counts, means and quality bar (fold 0's are the fixed split's evaluation),
        and how the real music of that fold's training pieces fares against its test pieces
        (:func:`real_music_bar`).
    """
    gans = [load_gan(m) if isinstance(m, str) else m for m in models]
    if not gans:
        raise CapsuleError("cross-validation needs at least one model")
    spec = gans[0].spec
    folds = [g.fold for g in gans]
    if len(set(folds)) != len(folds):
        raise CapsuleError(f"two models of the same fold: folds {folds}")
    for g in gans[1:]:
        if list(g.spec.tracks) != list(spec.tracks) or g.spec.name != spec.name:
            raise CapsuleError(
                f"model {g.name} was trained on {g.spec.name} {list(g.spec.tracks)}, "
                f"not {spec.name} {list(spec.tracks)}"
            )
    base = model_dataset(gans[0], dataset, limit=limit, progress=progress)
    all_fake, all_real, owners, per_fold, n_pieces = [], [], [], {}, 0
    for gan in sorted(gans, key=lambda g: g.fold):
        ds = base.with_fold(gan.fold)
        real, owner = ds.samples("test", with_pieces=True)
        if len(real) == 0:
            raise CapsuleError(f"fold {gan.fold} has no test samples")
        fake = generate_samples(gan, real[:, 0], seed=seed)
        fake_rows, real_rows = sample_metrics(fake, spec), sample_metrics(real, spec)
        fold = comparison(fake_rows, real_rows, spec)
        per_fold[str(gan.fold)] = {
            "model": gan.name,
            "n_pieces": len(ds.split("test")),
            "n_samples": int(len(real)),
            "tracks": fold["tracks"],
            "failures": fold["quality_bar"]["failures"],
            "real_music_bar": real_music_bar(ds, "test", batch_metrics(None, spec, real_rows), splits=("train",)),
        }
        owners.append(owner + n_pieces)  # piece ids unique over the folds, for the piece bootstrap
        n_pieces += len(ds.split("test"))
        all_fake += fake_rows
        all_real += real_rows
    return {
        "models": [g.name for g in gans],
        "folds": sorted(folds),
        "n_pieces": n_pieces,
        "n_samples": len(all_real),
        "seed": seed,
        **comparison(all_fake, all_real, spec),
        "ground_truth_interval": _interval(all_real, np.concatenate(owners), seed),
        "per_fold": per_fold,
    }


def record_cross_validation(name: str, result: dict, registry=None):
    """Store a :func:`cross_validate` result in model ``name``'s card (``metrics["cross_validation"]``)
    and rewrite its README with the section; ``name`` must be one of the result's models."""
    registry = registry if registry is not None else ModelRegistry()
    card = registry.get(name)
    if name not in result.get("models", []):
        raise CapsuleError(f"{name} is not one of the cross-validated models ({', '.join(result.get('models', []))})")
    card = registry.update(name, metrics={**(card.metrics or {}), "cross_validation": result})
    try:
        history = json.loads((card.path / "history.json").read_text(encoding="utf-8"))
        summary = card.hyperparameters["data"]["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CapsuleError(f"model {name}: no training history or data summary to rewrite its card from") from None
    sample = card.path / "sample.mid"
    write_card_files(card, history, summary, sample if sample.is_file() else None)
    return registry.get(name)


# --------------------------------------------------------------------------- command line


def _cmd_cross_validate(args) -> None:
    result = cross_validate(args.models, dataset=args.dataset, seed=args.seed, progress=not args.quiet)
    card = None
    if args.record:
        fold0 = result["per_fold"].get("0")
        if fold0 is None:
            raise CapsuleError("--record stores the result in the fold-0 model's card: name the model of fold 0")
        card = record_cross_validation(fold0["model"], result)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(metrics_comparison_table(result))
    for row in cross_validation_lines(result):
        print(row)
    if card is not None:
        print(f"recorded in {card.path}")


def _cmd_evaluate(args) -> None:
    result = research_evaluation(args.model, args.split, dataset=args.dataset, seed=args.seed, progress=not args.quiet)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(metrics_comparison_table(result))
    iv = result["ground_truth_interval"]
    print(f"ground truth with other held-out pieces ({iv['level']:.0%} interval, pieces resampled):")
    for row in failure_intervals(result) + real_music_lines(result):
        print(f"  {row}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    x = sub.add_parser("cross-validate", help="the quality bar over the held-out pieces of several folds, pooled")
    x.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="models trained by one command with different --fold values (fold 0: the fixed split)",
    )
    x.add_argument("--record", action="store_true", help="store the result in the fold-0 model's card and README")
    x.set_defaults(func=_cmd_cross_validate)
    v = sub.add_parser("evaluate", help="evaluate_gan with piece-bootstrap intervals and real music on the bar")
    v.add_argument("model")
    v.add_argument("--split", default="test", choices=["test", "validation", "train"])
    v.set_defaults(func=_cmd_evaluate)
    for p in (x, v):
        p.add_argument(
            "--dataset", default=None, metavar="FOLDER", help="the data folder of models trained on LPD-5/MIDI files"
        )
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--quiet", action="store_true")
        p.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        args.func(args)
    except CapsuleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

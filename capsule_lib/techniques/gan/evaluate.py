"""Held-out evaluation of a GAN: per-track metrics of generated accompaniment vs the real one.

For every 4-bar sample of the held-out pieces (test split by default, samples not
overlapping) the generator accompanies the real melody with noise from a fixed seed; the
same metrics are computed on the real accompaniment (the ground truth).  The quality bar
compares them track by track (see :data:`QUALITY_BAR`).  Because a held-out split is a
handful of pieces whose textures differ (one string quartet movement is full of double
stops, the next has none), the evaluation also reports how far each ground-truth mean
would move with another draw of pieces (:func:`piece_interval`), and scores *real* music
by the same bar: the real accompaniment of the other splits' pieces in place of the generated
one (:func:`real_music_bar`).  Where real Haydn fails a check against the test pieces, the
check measures which pieces were held out rather than the model.

Cross-validation (:func:`cross_validate`) takes that dependence away: the same training
command run once per fold of the split rule (``--fold K``; fold 0 is the fixed split) gives
ten models, each of which accompanies the melodies of the pieces *it* never saw, so every
piece of the data set is a held-out piece once and the ground truth is the whole data set.
"""

from __future__ import annotations

import math

import numpy as np

from ...datasets.multitrack import SAMPLE_STEPS
from ...errors import CapsuleError
from .data import batch_metrics, sample_metrics

__all__ = ["evaluate_gan", "cross_validate", "cross_validation_lines", "quality_bar", "allowed_deviation",
           "piece_interval", "failure_intervals", "real_music_bar", "real_music_lines", "QUALITY_BAR"]

#: metric -> ("relative", tolerance) or ("absolute", tolerance).  A relative tolerance is a
#: fraction of the ground truth; for a ground truth below ``NEAR_ZERO`` (e.g. the empty bar
#: rate of a chorale voice, 0.009 = 5 bars of 576) 20 % is less than one bar of the test
#: set, so there the tolerance is ``NEAR_ZERO_TOLERANCE`` absolute instead.
QUALITY_BAR = {
    "empty_bar_rate": ("relative", 0.20),
    "pitch_classes_used": ("relative", 0.20),
    "qualified_note_rate": ("relative", 0.20),
    "polyphonic_rate": ("relative", 0.20),
    "in_scale_ratio": ("absolute", 0.05),
}
NEAR_ZERO = 0.05
NEAR_ZERO_TOLERANCE = 0.01


def allowed_deviation(metric: str, ground_truth: float, strict: bool = False) -> float:
    """How far a generated value of ``metric`` may lie from ``ground_truth`` (:data:`QUALITY_BAR`);
    ``strict`` applies the relative tolerance even to a near-zero ground truth."""
    kind, tol = QUALITY_BAR[metric]
    if kind == "absolute":
        return tol
    if not strict and abs(ground_truth) < NEAR_ZERO:
        return max(tol * abs(ground_truth), NEAR_ZERO_TOLERANCE)
    return tol * abs(ground_truth)


def quality_bar(tracks: dict, skip: tuple[str, ...] = (), label: str = "generated") -> dict:
    """Check ``{"track": {"metric": {"generated", "ground_truth"}}}`` against :data:`QUALITY_BAR`.

    Returns ``{"passed", "failures", "strict_passed", "strict_failures"}``; "strict" applies
    the relative tolerances even to near-zero ground truths.  A failure reads
    ``"TRACK METRIC: LABEL x vs ground truth y"``.
    """
    failures, strict = [], []
    for track, metrics in tracks.items():
        if track in skip:
            continue
        for metric in QUALITY_BAR:
            if metric not in metrics:
                continue
            g, t = metrics[metric]["generated"], metrics[metric]["ground_truth"]
            if t is None or (isinstance(t, float) and math.isnan(t)):
                continue
            if g is None or (isinstance(g, float) and math.isnan(g)):
                failures.append(f"{track} {metric}: no value (track silent)")
                strict.append(failures[-1])
                continue
            diff = abs(g - t)
            msg = f"{track} {metric}: {label} {g:.3f} vs ground truth {t:.3f}"
            if diff > allowed_deviation(metric, t) + 1e-12:
                failures.append(msg)
            if diff > allowed_deviation(metric, t, strict=True) + 1e-12:
                strict.append(msg)
    return {"passed": not failures, "failures": failures, "strict_passed": not strict, "strict_failures": strict}


#: Resamples and level of :func:`piece_interval`.
INTERVAL_DRAWS = 2000
INTERVAL_LEVEL = 0.9


def piece_interval(rows: list[dict], pieces, *, draws: int = INTERVAL_DRAWS, level: float = INTERVAL_LEVEL,
                   seed: int = 0) -> dict:
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


def failure_intervals(result: dict) -> list[str]:
    """One line per failed quality-bar check of an :func:`evaluate_gan` result: the ground
    truth, its piece-bootstrap interval and whether the generated value lies inside it."""
    iv = (result.get("ground_truth_interval") or {}).get("tracks") or {}
    rows = []
    for failure in result["quality_bar"]["failures"]:
        track, metric = failure.split(":", 1)[0].rsplit(" ", 1)
        band = iv.get(track, {}).get(metric)
        pair = result["tracks"].get(track, {}).get(metric)
        if band is None or pair is None or pair["generated"] is None:
            continue
        g = pair["generated"]
        where = "inside" if band[0] <= g <= band[1] else "outside"
        rows.append(f"{track} {metric}: ground truth {pair['ground_truth']:.3f}, its interval "
                    f"[{band[0]:.3f}, {band[1]:.3f}]; generated {g:.3f} is {where} it")
    return rows


def _paired(candidate: dict, truth: dict, tracks) -> dict:
    """``{track: {metric: {"generated", "ground_truth"}}}`` of two :func:`batch_metrics` results."""
    return {name: {k: {"generated": _num(candidate["tracks"][name].get(k)), "ground_truth": _num(v)}
                   for k, v in truth["tracks"][name].items()} for name in tracks}


def _paired_tonal(candidate: dict, truth: dict) -> dict:
    """``{pair: {"generated", "ground_truth"}}``: the tonal distances of two :func:`batch_metrics` results."""
    return {pair: {"generated": _num(candidate["tonal_distance"].get(pair)), "ground_truth": _num(v)}
            for pair, v in truth["tonal_distance"].items()}


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
        bar = quality_bar(_paired(batch_metrics(real, ds.spec), truth, ds.spec.tracks), skip=(ds.spec.tracks[0],),
                          label=f"{other} pieces")
        out[other] = {"n_pieces": len(ds.split(other)), "n_samples": int(len(real)), "passed": bar["passed"],
                      "failures": bar["failures"]}
    return out


def real_music_lines(result: dict) -> list[str]:
    """One line per reference split of an :func:`evaluate_gan` result: how the real music of
    that split's pieces fares on the same quality bar, beside the model's own count."""
    ref = result.get("real_music_bar") or {}
    if not ref:
        return []
    n_model = len(result["quality_bar"]["failures"])
    rows = [f"the model: {'passed' if not n_model else f'{n_model} failed check' + ('s' if n_model > 1 else '')}"]
    for split, r in ref.items():
        n = len(r["failures"])
        verdict = "passed" if r["passed"] else f"{n} failed check{'s' if n > 1 else ''} ({'; '.join(r['failures'])})"
        rows.append(f"the real accompaniment of the {r['n_pieces']} {split} pieces ({r['n_samples']} samples): {verdict}")
    return rows


def _genre_of(gen) -> str:
    """The genre data set a generator was trained on; a folder data set must be passed explicitly."""
    from ...datasets.multitrack import GENRES

    if gen.spec.name not in GENRES:
        raise CapsuleError(f"model {getattr(gen, 'name', '?')} was trained on {gen.spec.name}; "
                           "pass dataset=FOLDER to evaluate it")
    return gen.spec.name


def evaluate_gan(model="musegan-chorale", split: str = "test", *, dataset=None, seed: int = 0,
                 max_samples: int | None = None, limit: int | None = None, progress: bool = False,
                 reference: bool = True) -> dict:
    """Metrics of generated vs real accompaniment on held-out melodies.

    Parameters
    ----------
    model : str or generator
        A registered GAN name or a loaded generator (with ``spec`` and ``polyphony``).
    split : {"test", "validation", "train"}
    dataset : MultitrackDataset, optional
        Default: the model's genre data set (built or loaded from the cache), split as the
        model's training was (its cross-validation ``fold``).
    seed : int
        Noise seed (same seed, same numbers).
    max_samples : int, optional
        Evaluate on at most this many samples.
    limit : int, optional
        Use only the first ``limit`` pieces of the genre (quick checks; the split rule
        still keeps training pieces out of the test split).
    reference : bool
        Also score the real music of the other splits by the same bar (:func:`real_music_bar`).

    Returns
    -------
    dict
        ``{"model", "split", "n_pieces", "n_samples", "tracks": {name: {metric: {"generated",
        "ground_truth"}}}, "tonal_distance": {pair: {...}}, "quality_bar": {...},
        "ground_truth_interval": {"level", "draws", "tracks": {name: {metric: [low, high]}}}}``
        -- from :func:`piece_interval`: how far the ground truth itself would move
        with another draw of held-out pieces -- and, with ``reference``, ``"real_music_bar"``
        (:func:`real_music_bar`).
    """
    from .sample import load_gan
    from .train import generate_samples, resolve_dataset

    gen = load_gan(model) if isinstance(model, str) else model
    spec = gen.spec
    ds = resolve_dataset(_genre_of(gen) if dataset is None else dataset, limit=limit, progress=progress)
    fold = int(getattr(gen, "fold", 0))
    if fold != ds.fold:
        ds = ds.with_fold(fold)  # the split the model was trained on
    if list(ds.spec.tracks) != list(spec.tracks):
        raise CapsuleError(f"the data set's tracks {list(ds.spec.tracks)} do not match the model's {list(spec.tracks)}")
    real, owner = ds.samples(split, with_pieces=True)
    if max_samples is not None:
        real, owner = real[:max_samples], owner[:max_samples]
    if len(real) == 0:
        raise CapsuleError(f"the {split} split has no samples to evaluate on")
    fake = generate_samples(gen, real[:, 0], gen.polyphony, seed=seed)
    real_rows = sample_metrics(real, spec)
    mg, mt = batch_metrics(fake, spec), batch_metrics(real, spec, real_rows)
    tracks = _paired(mg, mt, spec.tracks)
    tonal = _paired_tonal(mg, mt)
    result = {
        "model": getattr(gen, "name", "custom"), "split": split, "n_pieces": len(ds.split(split)),
        "n_samples": int(len(real)), "seed": seed, "tracks": tracks, "tonal_distance": tonal,
        "quality_bar": quality_bar(tracks, skip=(spec.tracks[0],)),
        "ground_truth_interval": {"level": INTERVAL_LEVEL, "draws": INTERVAL_DRAWS,
                                  "tracks": piece_interval(real_rows, owner, seed=seed)},
    }
    if reference:
        result["real_music_bar"] = real_music_bar(ds, split, mt)
    return result


def cross_validate(models, *, dataset=None, seed: int = 0, limit: int | None = None,
                   progress: bool = False) -> dict:
    """The quality bar on the held-out melodies of several cross-validation folds, pooled.

    Parameters
    ----------
    models : sequence of str or generators
        Models trained by one command on different folds (``capsule train gan ... --fold K``;
        each card records its fold).  Two models of one fold, or of different data sets or
        tracks, are refused.
    dataset : optional
        As for :func:`evaluate_gan` (default: the models' genre).
    seed : int
        Noise seed; with it each fold's samples are exactly :func:`evaluate_gan`'s.

    Returns
    -------
    dict
        ``{"models", "folds", "n_pieces", "n_samples", "tracks", "tonal_distance",
        "quality_bar", "ground_truth_interval", "per_fold"}``: every fold model accompanies
        the melodies of its own test pieces (4-bar samples, not overlapping) and the metrics
        of all those samples are averaged together, the ground truth over the same real
        samples -- with all ten folds, every piece of the data set.  ``per_fold`` holds each
        fold's own counts, means and quality bar (fold 0's are the fixed split's evaluation),
        and how the real music of that fold's training pieces fares against its test pieces
        (:func:`real_music_bar`).
    """
    from .sample import load_gan
    from .train import generate_samples, resolve_dataset

    gens = [load_gan(m) if isinstance(m, str) else m for m in models]
    if not gens:
        raise CapsuleError("cross-validation needs at least one model")
    spec = gens[0].spec
    folds = [int(getattr(g, "fold", 0)) for g in gens]
    if len(set(folds)) != len(folds):
        raise CapsuleError(f"two models of the same fold: folds {folds}")
    for g in gens[1:]:
        if list(g.spec.tracks) != list(spec.tracks) or g.spec.name != spec.name:
            raise CapsuleError(f"model {getattr(g, 'name', '?')} was trained on {g.spec.name} {list(g.spec.tracks)}, "
                               f"not {spec.name} {list(spec.tracks)}")
    base = resolve_dataset(_genre_of(gens[0]) if dataset is None else dataset, limit=limit, progress=progress)
    all_fake, all_real, owners, per_fold, n_pieces = [], [], [], {}, 0
    for gen, fold in sorted(zip(gens, folds), key=lambda x: x[1]):
        ds = base.with_fold(fold)
        real, owner = ds.samples("test", with_pieces=True)
        if len(real) == 0:
            raise CapsuleError(f"fold {fold} has no test samples")
        fake = generate_samples(gen, real[:, 0], gen.polyphony, seed=seed)
        fake_rows, real_rows = sample_metrics(fake, spec), sample_metrics(real, spec)
        mg, mt = batch_metrics(fake, spec, fake_rows), batch_metrics(real, spec, real_rows)
        tracks = _paired(mg, mt, spec.tracks)
        per_fold[str(fold)] = {"model": getattr(gen, "name", "custom"), "n_pieces": len(ds.split("test")),
                               "n_samples": int(len(real)), "tracks": tracks,
                               "failures": quality_bar(tracks, skip=(spec.tracks[0],))["failures"],
                               "real_music_bar": real_music_bar(ds, "test", mt, splits=("train",))}
        owners.append(owner + n_pieces)  # piece ids unique over the folds, for the piece bootstrap
        n_pieces += len(ds.split("test"))
        all_fake += fake_rows
        all_real += real_rows
    owner = np.concatenate(owners)
    mg = batch_metrics(None, spec, all_fake)  # the pooled means, from the rows already computed
    mt = batch_metrics(None, spec, all_real)
    tracks = _paired(mg, mt, spec.tracks)
    return {
        "models": [getattr(g, "name", "custom") for g in gens], "folds": sorted(folds),
        "n_pieces": n_pieces, "n_samples": len(all_real), "seed": seed, "tracks": tracks,
        "tonal_distance": _paired_tonal(mg, mt),
        "quality_bar": quality_bar(tracks, skip=(spec.tracks[0],)),
        "ground_truth_interval": {"level": INTERVAL_LEVEL, "draws": INTERVAL_DRAWS,
                                  "tracks": piece_interval(all_real, owner, seed=seed)},
        "per_fold": per_fold,
    }


def cross_validation_lines(result: dict) -> list[str]:
    """Lines for a card or a terminal: the pooled verdict, then one line per fold."""
    bar = result["quality_bar"]
    n = len(bar["failures"])
    verdict = "**passed**" if bar["passed"] else f"**not passed** ({'; '.join(bar['failures'])})"
    rows = [f"Folds {', '.join(str(f) for f in result['folds'])}: {result['n_pieces']} held-out pieces, "
            f"{result['n_samples']} samples; quality bar on all of them together: {verdict}"
            + ("" if bar["passed"] else f" -- {n} failed check{'s' if n > 1 else ''}")]
    def count(k):
        return "passed" if not k else f"{k} failed check{'s' if k > 1 else ''}"

    for fold, r in result["per_fold"].items():
        row = (f"fold {fold} ({r['model']}, {r['n_pieces']} test piece{'s' if r['n_pieces'] != 1 else ''}, "
               f"{r['n_samples']} samples): {count(len(r['failures']))}")
        real = (r.get("real_music_bar") or {}).get("train")
        if real:
            row += f"; the real music of its {real['n_pieces']} training pieces: {count(len(real['failures']))}"
        rows.append(row)
    return rows


def _num(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else round(x, 4)

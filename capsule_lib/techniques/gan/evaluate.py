"""Held-out evaluation of a GAN: per-track metrics of generated accompaniment vs the real one.

For every 4-bar sample of the held-out pieces (test split by default, samples not
overlapping) the generator accompanies the real melody with noise from a fixed seed; the
same metrics are computed on the real accompaniment (the ground truth).  The quality bar
compares them track by track with one tolerance rule (:data:`QUALITY_BAR`).

How much a ground truth depends on which few pieces were held out, how real music fares on
the same bar and a 10-fold cross-validation are research questions about the evaluation
itself; they live in ``bench/gan_research.py`` (results in ``BENCHMARKS.md``).
"""

from __future__ import annotations

import math

from ...datasets.multitrack import GENRES, MultitrackDataset
from ...errors import CapsuleError
from .data import batch_metrics, resolve_dataset, sample_metrics
from .sample import LoadedGan, generate_samples, load_gan

__all__ = [
    "evaluate_gan",
    "quality_bar",
    "allowed_deviation",
    "comparison",
    "model_dataset",
    "paired_tracks",
    "paired_tonal",
    "QUALITY_BAR",
]

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


def allowed_deviation(metric: str, ground_truth: float) -> float:
    """How far a generated value of ``metric`` may lie from ``ground_truth`` (:data:`QUALITY_BAR`)."""
    kind, tol = QUALITY_BAR[metric]
    if kind == "absolute":
        return tol
    if abs(ground_truth) < NEAR_ZERO:
        return max(tol * abs(ground_truth), NEAR_ZERO_TOLERANCE)
    return tol * abs(ground_truth)


def quality_bar(tracks: dict, skip: tuple[str, ...] = (), label: str = "generated") -> dict:
    """Check ``{"track": {"metric": {"generated", "ground_truth"}}}`` against :data:`QUALITY_BAR`.

    Returns ``{"passed", "failures"}``.  A failure reads ``"TRACK METRIC: LABEL x vs ground truth y"``.
    """
    failures = []
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
            elif abs(g - t) > allowed_deviation(metric, t) + 1e-12:
                failures.append(f"{track} {metric}: {label} {g:.3f} vs ground truth {t:.3f}")
    return {"passed": not failures, "failures": failures}


def _num(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else round(x, 4)


def paired_tracks(candidate: dict, truth: dict, tracks) -> dict:
    """``{track: {metric: {"generated", "ground_truth"}}}`` of two :func:`batch_metrics` results."""
    return {
        name: {
            k: {"generated": _num(candidate["tracks"][name].get(k)), "ground_truth": _num(v)}
            for k, v in truth["tracks"][name].items()
        }
        for name in tracks
    }


def paired_tonal(candidate: dict, truth: dict) -> dict:
    """``{pair: {"generated", "ground_truth"}}``: the tonal distances of two :func:`batch_metrics` results."""
    return {
        pair: {"generated": _num(candidate["tonal_distance"].get(pair)), "ground_truth": _num(v)}
        for pair, v in truth["tonal_distance"].items()
    }


def comparison(generated_rows: list[dict], real_rows: list[dict], spec) -> dict:
    """``{"tracks", "tonal_distance", "quality_bar"}`` of generated against real samples, from their
    :func:`~capsule_lib.techniques.gan.data.sample_metrics` rows (the melody track is not judged)."""
    mg, mt = batch_metrics(None, spec, generated_rows), batch_metrics(None, spec, real_rows)
    tracks = paired_tracks(mg, mt, spec.tracks)
    return {
        "tracks": tracks,
        "tonal_distance": paired_tonal(mg, mt),
        "quality_bar": quality_bar(tracks, skip=(spec.tracks[0],)),
    }


def model_dataset(
    gan: LoadedGan, dataset=None, *, limit: int | None = None, progress: bool = False
) -> MultitrackDataset:
    """The data set ``gan`` is evaluated on, split as its training was (its fold).

    ``dataset`` defaults to the GAN's genre; a model trained on a folder needs it given.
    """
    if dataset is None:
        if gan.spec.name not in GENRES:
            raise CapsuleError(f"model {gan.name} was trained on {gan.spec.name}; pass dataset=FOLDER to evaluate it")
        dataset = gan.spec.name
    ds = resolve_dataset(dataset, limit=limit, progress=progress)
    if gan.fold != ds.fold:
        ds = ds.with_fold(gan.fold)  # the split the model was trained on
    if list(ds.spec.tracks) != list(gan.spec.tracks):
        raise CapsuleError(
            f"the data set's tracks {list(ds.spec.tracks)} do not match the model's {list(gan.spec.tracks)}"
        )
    return ds


def evaluate_gan(
    model="musegan-chorale",
    split: str = "test",
    *,
    dataset=None,
    seed: int = 0,
    max_samples: int | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> dict:
    """Metrics of generated vs real accompaniment on held-out melodies.

    Parameters
    ----------
    model : str or LoadedGan
        A registered GAN name or a GAN from :func:`~capsule_lib.techniques.gan.load_gan`.
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

    Returns
    -------
    dict
        ``{"model", "split", "n_pieces", "n_samples", "seed", "tracks": {name: {metric:
        {"generated", "ground_truth"}}}, "tonal_distance": {pair: {...}}, "quality_bar": {...}}``
    """
    gan = load_gan(model) if isinstance(model, str) else model
    ds = model_dataset(gan, dataset, limit=limit, progress=progress)
    real = ds.samples(split)
    if max_samples is not None:
        real = real[:max_samples]
    if len(real) == 0:
        raise CapsuleError(f"the {split} split has no samples to evaluate on")
    fake = generate_samples(gan, real[:, 0], seed=seed)
    return {
        "model": gan.name,
        "split": split,
        "n_pieces": len(ds.split(split)),
        "n_samples": int(len(real)),
        "seed": seed,
        **comparison(sample_metrics(fake, gan.spec), sample_metrics(real, gan.spec), gan.spec),
    }

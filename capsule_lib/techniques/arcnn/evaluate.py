"""How good is an AR-CNN?  Two numbers on held-out chorales, each beside a reference.

``nll`` / ``baseline_nll``
    Every window of the split gets a random half of its cells hidden (a fixed seed
    per window); the model reads the other half and predicts the hidden ones.  The
    figure is the mean negative log-likelihood per hidden cell, in nats (binary cross
    entropy).  The baseline knows only how often each pitch sounds: it predicts a cell
    of pitch ``k`` is on with the frequency of on-cells of pitch ``k`` in the *training*
    split's windows (add-one smoothed), fitted in the same call.  A model that learnt
    anything about harmony and voice leading must beat it.

``restoration`` (``precision``, ``recall``, ``f1``)
    Every window of the split loses half of its notes and gains stray notes (10 % of
    its note count, at least one), then goes through the sampler with caps that allow
    undoing exactly that damage (``max_added`` = notes removed, ``max_removed`` = strays
    added) at the default sampling settings.  Scores are cell-level against the
    original window, summed over all windows.  ``corrupted`` holds the same scores for
    the damaged input, so the gain is visible.

Windows, hiding and damage are drawn from ``seed``, so a second call gives the same
numbers.
"""

from __future__ import annotations

import time

import numpy as np

from ...datasets.bach import N_PITCHES, SPLITS, WINDOW_STEPS, build_bach_dataset
from ...errors import CapsuleError
from .corrupt import add_stray_notes, remove_notes
from .data import model_input, notes_to_roll
from .sample import DEFAULTS, enhance_notes

__all__ = ["evaluate_arcnn", "pitch_frequency_baseline", "masked_nll", "restoration_scores"]


def pitch_frequency_baseline(windows) -> np.ndarray:
    """Per pitch (64), the probability that a cell is on, from ``windows`` (add-one smoothed)."""
    on = np.zeros(N_PITCHES, dtype=np.float64)
    for w in windows:
        on += notes_to_roll(w).sum(axis=0)
    cells = len(windows) * WINDOW_STEPS
    return (on + 1.0) / (cells + 2.0)


def _bce(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def masked_nll(model, windows, baseline: np.ndarray, seed: int = 0, batch_size: int = 32) -> tuple[float, float]:
    """``(model_nll, baseline_nll)`` per hidden cell when a random half of the cells is hidden."""
    import torch

    device = next(model.parameters()).device
    total_model = total_base = 0.0
    count = 0
    was_training = model.training
    model.eval()
    try:
        for b0 in range(0, len(windows), batch_size):
            xs, ys, hidden = [], [], []
            for i in range(b0, min(b0 + batch_size, len(windows))):
                rng = np.random.default_rng([seed, 1, i])
                roll = notes_to_roll(windows[i])
                visible = rng.random(roll.shape) < 0.5
                xs.append(model_input(roll, visible))
                ys.append(roll)
                hidden.append(~visible)
            with torch.inference_mode():
                logits = model(torch.from_numpy(np.stack(xs)).to(device)).float().cpu().numpy()
            y = np.stack(ys).astype(np.float64)
            h = np.stack(hidden)
            # log-sigmoid form: exact for confident logits where probabilities round to 0 or 1
            z = logits.astype(np.float64)
            nll = np.logaddexp(0, z) - y * z
            total_model += float(nll[h].sum())
            total_base += float(_bce(np.broadcast_to(baseline, y.shape), y)[h].sum())
            count += int(h.sum())
    finally:
        model.train(was_training)
    return total_model / max(count, 1), total_base / max(count, 1)


def _prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def restoration_scores(
    model,
    windows,
    seed: int = 0,
    sampling_iterations: int | None = None,
    creative_risk: float | None = None,
    progress: bool = False,
) -> dict:
    """Cell-level precision/recall/F1 of enhanced corrupted windows (and of the corrupted input)."""
    from tqdm.auto import tqdm

    iterations = DEFAULTS["sampling_iterations"] if sampling_iterations is None else sampling_iterations
    risk = DEFAULTS["creative_risk"] if creative_risk is None else creative_risk
    from ...metrics import mean_metrics, track_metrics
    from .views import window_score

    out_counts = np.zeros(3, dtype=np.int64)
    in_counts = np.zeros(3, dtype=np.int64)
    rows = {"input": [], "output": [], "bach": []}
    for i, w in enumerate(tqdm(windows, desc="restoring", unit="window", disable=not progress)):
        w = np.asarray(w).reshape(-1, 3)
        if not len(w):
            continue
        rng = np.random.default_rng([seed, 2, i])
        kept, removed = remove_notes(w, 0.5, rng)
        damaged, strays = add_stray_notes(kept, max(1, round(0.1 * len(w))), rng, reference=w)
        res = enhance_notes(
            model,
            damaged,
            sampling_iterations=iterations,
            max_removed=len(strays),
            max_added=len(removed),
            creative_risk=risk,
            rng=rng,
            end=WINDOW_STEPS,
        )
        final = np.concatenate([damaged[res.kept], res.added.astype(np.int32)]) if len(res.added) else damaged[res.kept]
        truth = notes_to_roll(w)
        for counts, roll in ((out_counts, notes_to_roll(final)), (in_counts, notes_to_roll(damaged))):
            counts += [int((roll & truth).sum()), int((roll & ~truth).sum()), int((~roll & truth).sum())]
        for key, notes in (("input", damaged), ("output", final), ("bach", w)):
            rows[key].append(track_metrics(window_score(notes)))
    metrics = {key: {k: None if v != v else round(v, 4) for k, v in mean_metrics(r).items()} for key, r in rows.items()}
    return {**_prf(*out_counts), "corrupted": _prf(*in_counts), "metrics": metrics}


def evaluate_arcnn(
    name: str = "arcnn-bach",
    split: str = "test",
    *,
    model=None,
    dataset=None,
    paths=None,
    limit: int | None = None,
    seed: int = 0,
    max_windows: int | None = None,
    restoration: bool = True,
    progress: bool = False,
) -> dict:
    """Evaluate an AR-CNN on one split of the Bach chorales.

    Parameters
    ----------
    name : str
        Registered model name (ignored when ``model`` is given).
    split : {"test", "validation", "train"}
    model : ArcnnUNet, optional
        A network to evaluate directly.
    dataset : BachDataset, optional
        Already-built chorales (default: :func:`build_bach_dataset` with ``paths``/``limit``).
    seed : int
        Seeds the hiding and the damage.
    max_windows : int, optional
        Evaluate at most this many windows (evenly spaced) -- quick checks.
    restoration : bool
        Also run the (slower) restoration test.

    Returns
    -------
    dict
        ``nll``, ``baseline_nll`` (nats per hidden cell), ``restoration``
        (``precision``, ``recall``, ``f1``, ``corrupted``, and ``metrics``: the
        :mod:`capsule_lib.metrics` of the damaged ``input``, the enhanced ``output``
        and the original ``bach`` windows, averaged over windows), plus ``split``, ``model``,
        ``n_chorales``, ``n_windows``, ``seconds``.

    Raises
    ------
    CapsuleError
        For an unknown split or model, or a split without chorales.
    """
    if split not in SPLITS:
        raise CapsuleError(f"unknown split {split!r} (expected test, validation or train)")
    started = time.perf_counter()
    if model is None:
        from .model import load_arcnn

        model = load_arcnn(name)
    ds = dataset if dataset is not None else build_bach_dataset(progress=progress, paths=paths, limit=limit)
    windows = ds.windows(split)
    if not windows:
        raise CapsuleError(f"the {split} split has no chorales in this data set")
    if max_windows is not None and len(windows) > max_windows:
        idx = np.linspace(0, len(windows) - 1, max_windows).round().astype(int)
        windows = [windows[i] for i in idx]
    train_windows = ds.windows("train")
    if not train_windows:
        raise CapsuleError("the train split has no chorales; the baseline cannot be fitted")
    baseline = pitch_frequency_baseline(train_windows)
    nll, base_nll = masked_nll(model, windows, baseline, seed=seed)
    out = {
        "model": getattr(model, "name", name),
        "split": split,
        "n_chorales": len(ds.split(split)),
        "n_windows": len(windows),
        "nll": round(nll, 5),
        "baseline_nll": round(base_nll, 5),
        "nll_unit": "nats per hidden cell (half of the cells hidden)",
    }
    if restoration:
        out["restoration"] = restoration_scores(model, windows, seed=seed, progress=progress)
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out

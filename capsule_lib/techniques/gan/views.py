"""What notebook 02 and the model cards show: losses on two scales, metrics per epoch vs ground truth."""

from __future__ import annotations

import math
from typing import Sequence

from ...errors import CapsuleError
from ...metrics import METRICS

__all__ = ["plot_gan_loss", "plot_metric_curves", "metrics_comparison_table", "metric_series", "model_history",
           "plot_quality_bar"]

_LABELS = {
    "empty_bar_rate": "empty bar rate", "pitches_used": "pitches used", "pitch_classes_used": "pitch classes used",
    "polyphonic_rate": "polyphonic rate", "in_scale_ratio": "in-scale ratio", "qualified_note_rate": "qualified note rate",
    "drum_in_pattern_rate": "drum-in-pattern rate",
}


def _epochs(history: Sequence[dict], key: str):
    xs, ys = [], []
    for i, rec in enumerate(history):
        v = rec.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            xs.append(rec.get("epoch", i + 1))
            ys.append(v)
    return xs, ys


def plot_gan_loss(history: Sequence[dict], ax=None):
    """Generator loss (left axis) and critic loss (right axis) per epoch, as the console drew them."""
    from ...plot import subplots

    if not history:
        raise CapsuleError("the training history is empty")
    if ax is None:
        _, ax = subplots(figsize=(8, 3.5))
    gx, gy = _epochs(history, "generator_loss")
    cx, cy = _epochs(history, "critic_loss")
    if not gx and not cx:
        raise CapsuleError("the history has no generator_loss or critic_loss")
    ax.plot(gx, gy, color="tab:blue", marker="." if len(gx) < 30 else None, label="generator loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("generator loss", color="tab:blue")
    right = ax.twinx()
    right.plot(cx, cy, color="tab:red", marker="." if len(cx) < 30 else None, label="critic loss")
    right.set_ylabel("critic (discriminator) loss", color="tab:red")
    ax.set_title("Generator and critic loss (two scales)")
    ax.grid(alpha=0.3)
    return ax


def metric_series(history: Sequence[dict], track: str, metric: str):
    """``(epochs, values)`` of one generated-sample metric of one track."""
    return _epochs(history, f"gen/{track}/{metric}")


def plot_metric_curves(history: Sequence[dict], ground_truth: dict, tracks: Sequence[str],
                       metrics: Sequence[str] = ("empty_bar_rate", "pitch_classes_used", "polyphonic_rate",
                                                 "in_scale_ratio", "pitches_used", "qualified_note_rate"),
                       *, standalone: bool = False):
    """One panel per metric: each accompaniment track's value per epoch (dots and line) and
    its ground truth (dashed line of the same colour).  Returns the figure (a bare one, outside
    pyplot, with ``standalone=True``: for files)."""
    import matplotlib

    from ...plot import subplots

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise CapsuleError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    cols = 3
    rows = -(-len(metrics) // cols)
    fig, axes = subplots(rows, cols, figsize=(4.2 * cols, 3 * rows), squeeze=False, standalone=standalone)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes.ravel(), metrics):
        for j, track in enumerate(tracks[1:]):
            c = colors[j % len(colors)]
            xs, ys = metric_series(history, track, metric)
            ax.plot(xs, ys, ".-", color=c, label=track, alpha=0.8)
            gt = ground_truth.get("tracks", {}).get(track, {}).get(metric)
            if gt is not None and not (isinstance(gt, float) and math.isnan(gt)):
                ax.axhline(gt, color=c, linestyle="--", linewidth=1)
        ax.set_title(_LABELS.get(metric, metric))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        low, high = ax.get_ylim()
        if high - low < 1e-6:  # a constant metric (e.g. the polyphonic rate of a voice): a readable axis
            ax.set_ylim(low - 0.05, high + 0.05)
        ax.ticklabel_format(axis="y", useOffset=False)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8, title="generated (dots), ground truth (dashed)", title_fontsize=7)
    fig.tight_layout()
    return fig


def metrics_comparison_table(result: dict) -> str:
    """A Markdown table of an :func:`~capsule_lib.techniques.gan.evaluate_gan` result."""
    metrics = [m for m in METRICS if any(m in v for v in result["tracks"].values())]
    head = "| track | " + " | ".join(_LABELS.get(m, m) for m in metrics) + " |"
    lines = [head, "|" + " --- |" * (len(metrics) + 1)]

    def fmt(x):
        return "-" if x is None else f"{x:.3f}"

    for track, values in result["tracks"].items():
        cells = [f"{fmt(values[m]['generated'])} / {fmt(values[m]['ground_truth'])}" if m in values else "" for m in metrics]
        lines.append(f"| {track} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Each cell: generated / ground truth (mean per 4-bar sample).")
    return "\n".join(lines)


def plot_quality_bar(result: dict, metrics: Sequence[str] = ("empty_bar_rate", "pitch_classes_used", "polyphonic_rate",
                                                            "in_scale_ratio"), skip_first: bool = True):
    """The quality bar of an :func:`~capsule_lib.techniques.gan.evaluate_gan` result, one panel per metric.

    Per track: the ground truth (black), the window the bar allows around it (grey), the
    generated value (green inside the window, red outside) and, where the result has it, the
    ground truth's piece-bootstrap interval (black bar): how far the ground truth itself would
    move with other held-out pieces.
    """
    from ...plot import subplots
    from .evaluate import QUALITY_BAR, allowed_deviation

    tracks = list(result["tracks"])[1 if skip_first else 0:]
    metrics = [m for m in metrics if m in QUALITY_BAR]
    if not tracks or not metrics:
        raise CapsuleError("nothing to plot: no accompaniment tracks or no quality-bar metrics")
    bands = (result.get("ground_truth_interval") or {}).get("tracks") or {}
    fig, axes = subplots(1, len(metrics), figsize=(3.6 * len(metrics), 2.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for y, track in enumerate(tracks):
            pair = result["tracks"][track].get(metric)
            if not pair or pair["ground_truth"] is None:
                continue
            t, g = pair["ground_truth"], pair["generated"]
            half = allowed_deviation(metric, t)
            ax.barh(y, 2 * half, left=t - half, height=0.5, color="0.85")
            band = bands.get(track, {}).get(metric)
            if band:
                ax.plot(band, [y, y], color="black", lw=1.5)
            ax.plot([t], [y], "k|", ms=16, mew=2)
            if g is not None:
                ax.plot([g], [y], "o", color="tab:green" if abs(g - t) <= half + 1e-12 else "tab:red", ms=7)
        ax.set_yticks(range(len(tracks)))
        ax.set_yticklabels(tracks if ax is axes[0][0] else [""] * len(tracks))
        ax.set_ylim(-0.6, len(tracks) - 0.4)
        ax.set_title(_LABELS.get(metric, metric), fontsize=10)
    fig.suptitle("grey: allowed window; |: ground truth, its piece-resampling interval as a line; "
                 "dot: generated (green inside, red outside)", fontsize=8)
    fig.tight_layout()
    return fig


def model_history(name: str, registry=None) -> list[dict]:
    """The per-epoch training history stored with a GAN model (its ``history.json``)."""
    import json

    from ...models import ModelRegistry

    registry = registry if registry is not None else ModelRegistry()
    card = registry.get(name)
    try:
        return json.loads((card.path / "history.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CapsuleError(f"cannot read the training history of {name}: {exc}") from None

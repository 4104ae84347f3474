"""What notebooks 02 and 05 and the model cards show: losses on two scales, metrics per epoch vs ground
truth, the generated-vs-real table and the quality bar -- and lines that put into words the research
numbers a card stores (piece-bootstrap intervals, real music on the bar, cross-validation), which
``bench/gan_research.py`` measures.

Plots import matplotlib (through :mod:`capsule_lib.plot`) only when drawn."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ...errors import CapsuleError
from ...metrics import METRICS
from ...models import model_history  # noqa: F401 - re-exported for the technique
from .evaluate import QUALITY_BAR, allowed_deviation
from .model import Critic, GanConfig, build_generator

__all__ = [
    "plot_gan_loss",
    "plot_metric_curves",
    "metrics_comparison_table",
    "metric_series",
    "model_history",
    "plot_quality_bar",
    "plot_update_schedule",
    "plot_sample_tracks",
    "architecture_table",
    "plot_untrained_output",
    "plot_loss_parts",
    "plot_runs",
    "failure_intervals",
    "real_music_lines",
    "cross_validation_lines",
]

_LABELS = {
    "empty_bar_rate": "empty bar rate",
    "pitches_used": "pitches used",
    "pitch_classes_used": "pitch classes used",
    "polyphonic_rate": "polyphonic rate",
    "in_scale_ratio": "in-scale ratio",
    "qualified_note_rate": "qualified note rate",
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


def plot_metric_curves(
    history: Sequence[dict],
    ground_truth: dict,
    tracks: Sequence[str],
    metrics: Sequence[str] = (
        "empty_bar_rate",
        "pitch_classes_used",
        "polyphonic_rate",
        "in_scale_ratio",
        "pitches_used",
        "qualified_note_rate",
    ),
    *,
    title: str | None = None,
    standalone: bool = False,
):
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
    for ax in axes.ravel()[len(metrics) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8, title="generated (dots), ground truth (dashed)", title_fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def metrics_comparison_table(result: dict) -> str:
    """A Markdown table of an :func:`~capsule_lib.techniques.gan.evaluate_gan` result (or of a
    stored cross-validation: the same ``tracks``)."""
    metrics = [m for m in METRICS if any(m in v for v in result["tracks"].values())]
    head = "| track | " + " | ".join(_LABELS.get(m, m) for m in metrics) + " |"
    lines = [head, "|" + " --- |" * (len(metrics) + 1)]

    def fmt(x):
        return "-" if x is None else f"{x:.3f}"

    for track, values in result["tracks"].items():
        cells = [
            f"{fmt(values[m]['generated'])} / {fmt(values[m]['ground_truth'])}" if m in values else "" for m in metrics
        ]
        lines.append(f"| {track} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Each cell: generated / ground truth (mean per 4-bar sample).")
    return "\n".join(lines)


def plot_quality_bar(
    result: dict,
    metrics: Sequence[str] = ("empty_bar_rate", "pitch_classes_used", "polyphonic_rate", "in_scale_ratio"),
    skip_first: bool = True,
):
    """The quality bar of an :func:`~capsule_lib.techniques.gan.evaluate_gan` result, one panel per metric.

    Per track: the ground truth (black), the window the bar allows around it (grey), the
    generated value (green inside the window, red outside) and, where the result has it, the
    ground truth's piece-bootstrap interval (black bar): how far the ground truth itself would
    move with other held-out pieces.
    """
    from ...plot import subplots

    tracks = list(result["tracks"])[1 if skip_first else 0 :]
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
    fig.suptitle(
        "grey: allowed window; |: ground truth, its piece-resampling interval as a line; "
        "dot: generated (green inside, red outside)",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- notebook pictures
# Each draws one picture of notebook 02 or 05 and returns its figure, so the notebook cell is one call.


def plot_update_schedule(update_ratio: int, steps: int = 16):
    """Who learns on which batch: the critic on every one, the generator on every ``update_ratio``-th."""
    from ...plot import subplots

    if isinstance(update_ratio, bool) or not isinstance(update_ratio, int) or update_ratio < 1:
        raise CapsuleError(f"update_ratio must be a whole number >= 1, got {update_ratio!r}")
    xs = np.arange(1, steps + 1)
    gen = xs[xs % update_ratio == 0]
    fig, ax = subplots(figsize=(9, 1.6))
    ax.scatter(xs, np.ones_like(xs), marker="s", s=80, color="tab:red")
    ax.scatter(gen, np.zeros_like(gen), marker="o", s=80, color="tab:blue")
    ax.set_yticks([0, 1], ["generator", "critic"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xticks(xs)
    ax.set_xlabel("training step: one batch of real samples")
    ax.set_title(f"update ratio {update_ratio}: {update_ratio} critic updates per generator update")
    return fig


def plot_sample_tracks(sample, tracks: Sequence[str]):
    """One ``(tracks, 64 steps, 84 pitches)`` training sample as the networks see it: a grid per track."""
    from ...plot import subplots

    fig, axes = subplots(1, len(tracks), figsize=(13, 3.2), sharey=True, squeeze=False)
    for t, ax in enumerate(axes[0]):
        ax.imshow(sample[t].T, origin="lower", aspect="auto", cmap="gray_r", interpolation="nearest")
        for bar in (16, 32, 48):
            ax.axvline(bar - 0.5, color="tab:orange", linewidth=0.8)
        ax.set_title(f"track {t}: {tracks[t]}" + (" (melody)" if t == 0 else ""))
        ax.set_xlabel("step: 4 bars of 16")
    axes[0][0].set_ylabel("pitch row: MIDI 24 + row")
    fig.tight_layout()
    return fig


def architecture_table(n_tracks: int, melodies) -> str:
    """Markdown: the two generators and the critic, their sizes and what goes in and out.

    ``melodies`` is a ``(n, 1, 64, 84)`` bool array of real melodies to push through untrained networks.
    """
    x = torch.from_numpy(np.asarray(melodies, dtype=np.float32) * 2 - 1)
    rows = ["| network | parameters | noise numbers | reads | writes |", "|---|---|---|---|---|"]
    generated = None
    for algorithm in ("musegan", "unet"):
        g = build_generator(GanConfig(algorithm=algorithm, n_tracks=n_tracks)).eval()
        with torch.no_grad():
            out = g(x)
        generated = out if generated is None else generated
        rows.append(
            f"| {algorithm} generator | {sum(p.numel() for p in g.parameters()):,} | {g.noise_dim} | "
            f"melodies {tuple(x.shape)} | accompaniment {tuple(out.shape)} |"
        )
    critic = Critic(GanConfig(n_tracks=n_tracks)).eval()
    with torch.no_grad():
        scores = critic(torch.cat([x, generated], dim=1))
    rows.append(
        f"| critic | {sum(p.numel() for p in critic.parameters()):,} | - | melody + accompaniment "
        f"{(x.shape[0], n_tracks, *x.shape[2:])} | one score per sample {tuple(scores.shape)} |"
    )
    return "\n".join(rows)


def plot_untrained_output(melody, n_tracks: int, track_name: str, seed: int = 0):
    """The grey fog an untrained MuseGAN writes for one ``(64, 84)`` melody: every cell near 50 %."""
    from ...plot import subplots

    torch.manual_seed(seed)
    g = build_generator(GanConfig(algorithm="musegan", n_tracks=n_tracks)).eval()
    x = torch.from_numpy(np.asarray(melody, dtype=np.float32)[None, None] * 2 - 1)
    with torch.no_grad():
        fog = (g(x)[0, -1].numpy() + 1) / 2
    fig, ax = subplots(figsize=(10, 2.6), layout="constrained")
    im = ax.imshow(fog.T, origin="lower", aspect="auto", cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="probability of a note")
    ax.set_title(f"untrained MuseGAN: the {track_name} track")
    ax.set_xlabel("step")
    ax.set_ylabel("pitch row")
    return fig


def plot_loss_parts(history: Sequence[dict]):
    """Left: generator and critic loss on two scales; right: the parts of the losses (log scale)."""
    from ...plot import subplots

    fig, (left, right) = subplots(1, 2, figsize=(14, 3.6))
    plot_gan_loss(history, ax=left)
    for key, style in (("wasserstein", "-"), ("gradient_penalty", "--"), ("reconstruction", ":")):
        xs, ys = _epochs(history, key)
        if xs:
            right.plot(xs, ys, style, marker=".", label=key.replace("_", " "))
    right.set_yscale("symlog", linthresh=0.01)
    right.set_xlabel("epoch")
    right.set_title("the parts of the losses")
    right.legend()
    right.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_runs(runs: dict[str, Sequence[dict]]):
    """Several training runs side by side: losses on two scales (top), reconstruction (bottom)."""
    from ...plot import subplots

    fig, axes = subplots(2, len(runs), figsize=(5 * len(runs), 6.5), sharex=True, squeeze=False)
    for j, (label, h) in enumerate(runs.items()):
        plot_gan_loss(h, ax=axes[0, j])
        axes[0, j].set_title(label)
        xs, ys = _epochs(h, "reconstruction")
        axes[1, j].plot(xs, ys, ".-", color="tab:green")
        axes[1, j].axhline(np.log(2), color="grey", linestyle=":", label="a coin toss per cell")
        axes[1, j].set_title("reconstruction")
        axes[1, j].set_xlabel("epoch")
        axes[1, j].legend(fontsize=8)
        axes[1, j].grid(alpha=0.3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- stored research numbers in words


def _checks(k: int) -> str:
    return "passed" if not k else f"{k} failed check{'s' if k > 1 else ''}"


def failure_intervals(result: dict) -> list[str]:
    """One line per failed quality-bar check of an evaluation that carries piece-bootstrap
    intervals (``ground_truth_interval``, as the shipped cards store them): the ground truth,
    its interval and whether the generated value lies inside it."""
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
        rows.append(
            f"{track} {metric}: ground truth {pair['ground_truth']:.3f}, its interval "
            f"[{band[0]:.3f}, {band[1]:.3f}]; generated {g:.3f} is {where} it"
        )
    return rows


def real_music_lines(result: dict) -> list[str]:
    """One line per reference split of an evaluation that carries ``real_music_bar``: how the
    real music of that split's pieces fares on the same quality bar, beside the model's own count."""
    ref = result.get("real_music_bar") or {}
    if not ref:
        return []
    rows = [f"the model: {_checks(len(result['quality_bar']['failures']))}"]
    for split, r in ref.items():
        verdict = "passed" if r["passed"] else f"{_checks(len(r['failures']))} ({'; '.join(r['failures'])})"
        rows.append(
            f"the real accompaniment of the {r['n_pieces']} {split} pieces ({r['n_samples']} samples): {verdict}"
        )
    return rows


def cross_validation_lines(result: dict) -> list[str]:
    """Lines for a card or a terminal of a cross-validation result: the pooled verdict, then one line per fold."""
    bar = result["quality_bar"]
    n = len(bar["failures"])
    verdict = "**passed**" if bar["passed"] else f"**not passed** ({'; '.join(bar['failures'])})"
    rows = [
        f"Folds {', '.join(str(f) for f in result['folds'])}: {result['n_pieces']} held-out pieces, "
        f"{result['n_samples']} samples; quality bar on all of them together: {verdict}"
        + ("" if bar["passed"] else f" -- {n} failed check{'s' if n > 1 else ''}")
    ]
    for fold, r in result["per_fold"].items():
        row = (
            f"fold {fold} ({r['model']}, {r['n_pieces']} test piece{'s' if r['n_pieces'] != 1 else ''}, "
            f"{r['n_samples']} samples): {_checks(len(r['failures']))}"
        )
        real = (r.get("real_music_bar") or {}).get("train")
        if real:
            row += f"; the real music of its {real['n_pieces']} training pieces: {_checks(len(real['failures']))}"
        rows.append(row)
    return rows

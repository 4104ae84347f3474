"""Pictures and summaries that notebook 03 shows: windows as scores, a corruption, an edit summary, the U-Net.

Kept here, not in notebook cells, so the notebook stays short and these stay tested.
"""

from __future__ import annotations

import numpy as np

from ...datasets.bach import RESOLUTION
from ...errors import CapsuleError
from ...score import Note, Score, Track
from ...views import metrics_table  # noqa: F401 - re-exported for the technique
from .corrupt import corrupt_window

__all__ = ["window_score", "corruption_score", "edit_summary", "plot_unet", "metrics_table"]


def _notes(rows) -> tuple[Note, ...]:
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    return tuple(Note(start=int(s), pitch=int(p), duration=int(d)) for s, p, d in rows if d > 0)


def window_score(notes, title: str = "", *, name: str = "chorale", tempo: float = 90.0) -> Score:
    """An 8-bar window of ``(start, pitch, duration)`` rows (4 steps per beat) as a one-track score."""
    return Score(
        tracks=(Track(name=name, program=19, notes=_notes(notes)),), resolution=RESOLUTION, tempo=tempo, title=title
    )


def corruption_score(
    notes, seed: int = 0, *, remove_fraction: float = 0.5, stray_fraction: float = 0.1, title: str = ""
) -> tuple[Score, Score]:
    """What the model is trained on: ``(damaged, answer)`` scores for one window.

    ``damaged`` has tracks ``"kept"`` (original notes left in) and ``"stray"`` (wrong
    notes put in); ``answer`` has ``"kept"`` and ``"removed"`` (what the model should
    restore).  Drawn with the same corruption as training (no cells hidden).
    """
    if not 0 <= remove_fraction <= 1 or not 0 <= stray_fraction <= 1:
        raise CapsuleError("remove_fraction and stray_fraction must lie between 0 and 1")
    rng = np.random.default_rng(seed)
    c = corrupt_window(
        notes,
        rng,
        remove_fraction=remove_fraction,
        stray_fraction=stray_fraction,
        hide_fraction=0.0,
        harmonize_prob=0.0,
    )
    strays = {tuple(r) for r in np.asarray(c.added).tolist()}
    kept = [r for r in np.asarray(c.notes).tolist() if tuple(r) not in strays]
    damaged = Score(
        tracks=(Track(name="kept", notes=_notes(kept)), Track(name="stray", notes=_notes(c.added))),
        resolution=RESOLUTION,
        tempo=90.0,
        title=title,
    )
    answer = Score(
        tracks=(Track(name="kept", notes=_notes(kept)), Track(name="removed", notes=_notes(c.removed))),
        resolution=RESOLUTION,
        tempo=90.0,
        title=title,
    )
    return damaged, answer


def edit_summary(before: Score, after: Score, track: int = 0) -> dict:
    """Which notes an enhancement kept, removed and added (compared by start, pitch, duration)."""

    def key(n: Note, res: int):
        return (n.start * RESOLUTION / res, n.pitch, n.duration * RESOLUTION / res)

    old = {key(n, before.resolution) for n in before.tracks[track].notes}
    new = {key(n, after.resolution) for n in after.tracks[track].notes}
    return {"input_notes": len(old), "kept": len(old & new), "removed": len(old - new), "added": len(new - old)}


def plot_unet(config=None, ax=None):
    """Draw the U-Net of ``config`` (an :class:`ArcnnConfig`): blocks with their sizes, skips, pooling.

    Returns the matplotlib Axes.  Each box is one double-convolution block, labelled
    with its channels and its grid (steps x pitches); down arrows halve the grid (max-pool), up arrows
    double it (transposed convolution), dashed arrows are the skip connections.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle

    from .model import ArcnnConfig

    config = config or ArcnnConfig()
    depth, base = config.depth, config.base_channels
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 1.2 + 1.1 * (depth + 1)))
    width, height, gap_x = 1.5, 0.75, 1.9
    n_cols = 2 * depth + 1

    def box(col: int, level: int, text: str, color: str):
        x, y = col * gap_x, -level * 1.1
        ax.add_patch(Rectangle((x, y), width, height, facecolor=color, edgecolor="black", lw=0.8))
        ax.text(x + width / 2, y + height / 2, text, ha="center", va="center", fontsize=8)
        return x, y

    def arrow(a, b, style="-|>", ls="-", color="black"):
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=10, lw=1, ls=ls, color=color))

    enc = []
    for level in range(depth + 1):
        ch, steps, pitches = base * 2**level, 128 // 2**level, 64 // 2**level
        color = "#f4d35e" if level == depth else "#9ecae1"
        enc.append(box(level, level, f"{ch} ch\n{steps}x{pitches}", color))
        if level:
            px, py = enc[level - 1]
            x, y = enc[level]
            arrow((px + width / 2, py), (x + width / 2, y + height), color="tab:red")
    prev = enc[depth]
    for level in reversed(range(depth)):
        col = n_cols - 1 - level
        ch, steps, pitches = base * 2**level, 128 // 2**level, 64 // 2**level
        x, y = box(col, level, f"{ch} ch\n{steps}x{pitches}", "#a1d99b")
        arrow((prev[0] + width / 2, prev[1] + height), (x + width / 2, y), color="tab:green")
        ex, ey = enc[level]
        arrow((ex + width, ey + height / 2), (x, y + height / 2), ls="--", color="grey")
        prev = (x, y)
    ax.text(
        enc[0][0] - 0.2,
        enc[0][1] + height / 2,
        "input\n2 @ 128x64\n(notes, known)",
        ha="right",
        va="center",
        fontsize=8,
    )
    ax.text(
        prev[0] + width + 0.2, prev[1] + height / 2, "output\n1 @ 128x64\n(P(note))", ha="left", va="center", fontsize=8
    )
    ax.set_xlim(-3.0, n_cols * gap_x + 2.4)
    ax.set_ylim(-(depth + 0.6) * 1.1, 1.0)
    ax.set_axis_off()
    ax.set_title(
        "U-Net: encoder (blue, max-pool = red arrows), bottleneck (yellow), decoder (green, "
        "up-convolutions), skip connections (dashed)",
        fontsize=9,
    )
    return ax

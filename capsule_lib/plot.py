"""Pictures: piano rolls of scores and training-loss curves (matplotlib).

matplotlib is imported inside the functions, so ``import capsule_lib`` stays
fast.  Every function returns the matplotlib object it drew on, for further
styling; in a notebook the figure shows by itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real

from .errors import CapsuleError
from .keys import pitch_label
from .score import Score

__all__ = ["plot_pianoroll", "plot_loss", "compare_pianorolls", "pitch_label", "subplots"]

# x values of a loss history entry rather than curves
_X_KEYS = ("epoch", "step", "iteration")
_NOT_CURVES = (*_X_KEYS, "time", "seconds", "lr", "learning_rate")


def subplots(nrows: int = 1, ncols: int = 1, *, standalone: bool = False, **kwargs):
    """``(figure, axes)`` like ``matplotlib.pyplot.subplots``.

    ``standalone=True`` draws on a bare :class:`matplotlib.figure.Figure` that pyplot never
    sees: for pictures written to files (model cards, training samples), so nothing is left
    in pyplot's figure list and no backend is chosen or changed (choosing a backend from
    library code silently removes every later plot from a notebook).  Otherwise pyplot makes
    the figure, so a notebook shows it.
    """
    if standalone:
        from matplotlib.figure import Figure

        fig = Figure(figsize=kwargs.pop("figsize", None), layout=kwargs.pop("layout", None))
        return fig, fig.subplots(nrows, ncols, **kwargs)
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, **kwargs)


def _palette():
    import matplotlib

    return list(matplotlib.colormaps["tab10"].colors)


def _selected(score: Score, tracks) -> list[int]:
    if tracks is None:
        return list(range(len(score.tracks)))
    if isinstance(tracks, (int, str)):
        tracks = [tracks]
    return [score.track_index(t) for t in tracks]


def _check_range(pitch_range) -> tuple[int, int]:
    try:
        low, high = (int(p) for p in pitch_range)
    except (TypeError, ValueError):
        raise CapsuleError(f"pitch_range must be two MIDI numbers (low, high), not {pitch_range!r}") from None
    if not 0 <= low <= high <= 127:
        raise CapsuleError(f"pitch_range {low}-{high} must satisfy 0 <= low <= high <= 127")
    return low, high


def _auto_range(scores_tracks) -> tuple[int, int]:
    pitches = [n.pitch for score, idx in scores_tracks for i in idx for n in score.tracks[i].notes]
    if not pitches:
        return 60, 72
    low, high = min(pitches) - 2, max(pitches) + 2
    if high - low < 12:  # at least an octave, so a C label always shows
        pad = 12 - (high - low)
        low, high = low - pad // 2, high + pad - pad // 2
    return max(0, low), min(127, high)


def _draw(
    ax, score: Score, indices: list[int], colors: Mapping[str, object], *, title, boundary, pitch_range, x_end=None
):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    res = score.resolution
    low, high = pitch_range
    handles = []
    for i in indices:
        track = score.tracks[i]
        name = track.name or f"track {i + 1}"
        color = colors[name]
        if track.is_drum:
            # Drum "pitches" are instruments, not heights: small marks at each hit.
            xs = [n.start / res for n in track.notes]
            ys = [n.pitch for n in track.notes]
            ax.plot(xs, ys, linestyle="none", marker="|", markersize=6, color=color, label=name)
            handles.append(Line2D([], [], linestyle="none", marker="|", markersize=8, color=color, label=name))
            continue
        for n in track.notes:
            # Louder notes are drawn more opaque, as in the DeepComposer roll.
            alpha = 0.45 + 0.55 * n.velocity / 127
            # add_artist, not add_patch: the limits are set below, and skipping
            # add_patch's autoscale bookkeeping makes big scores ~3x faster.
            ax.add_artist(
                Rectangle(
                    (n.start / res, n.pitch - 0.4),
                    n.duration / res,
                    0.8,
                    facecolor=color,
                    edgecolor="black",
                    linewidth=0.4,
                    alpha=alpha,
                )
            )
        handles.append(Patch(facecolor=color, edgecolor="black", linewidth=0.4, label=name))

    beats_per_bar = score.steps_per_bar / res
    end_beats = max(score.end / res, float(boundary or 0), float(x_end or 0), beats_per_bar)
    n_bars = math.ceil(end_beats / beats_per_bar - 1e-9)
    x_max = n_bars * beats_per_bar
    # Every bar line up to 64 bars; beyond that every 2nd, 4th, ... so long pieces stay readable.
    every = 1
    while n_bars / every > 64:
        every *= 2
    ax.vlines(
        [b * beats_per_bar for b in range(0, n_bars + 1, every)],
        low - 0.5,
        high + 0.5,
        colors="0.75",
        linewidths=0.8,
        zorder=0,
    )
    if boundary is not None:
        ax.axvline(boundary, color="crimson", linestyle="--", linewidth=1.5, label="boundary", zorder=3)

    ax.set_xlim(0, x_max)
    ax.set_ylim(low - 0.5, high + 0.5)
    cs = [p for p in range(low, high + 1) if p % 12 == 0]
    ax.set_yticks(cs)
    ax.set_yticklabels([pitch_label(p) for p in cs])
    ax.set_xlabel("beats")
    ax.set_ylabel("pitch")
    ax.set_title(title if title is not None else score.title)
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)
    return ax


def _check_boundary(boundary):
    if boundary is None:
        return None
    if not isinstance(boundary, Real) or isinstance(boundary, bool) or not math.isfinite(boundary) or boundary < 0:
        raise CapsuleError(f"boundary must be a position in beats (a number >= 0), not {boundary!r}")
    return float(boundary)


def _colors_for(*pairs) -> dict:
    palette = _palette()
    colors: dict[str, object] = {}
    for score, indices in pairs:
        for i in indices:
            name = score.tracks[i].name or f"track {i + 1}"
            if name not in colors:
                colors[name] = palette[len(colors) % len(palette)]
    return colors


def plot_pianoroll(
    score: Score,
    ax=None,
    *,
    tracks: Sequence[int | str] | int | str | None = None,
    title: str | None = None,
    boundary: float | None = None,
    pitch_range: tuple[int, int] | None = None,
    figsize: tuple[float, float] = (10, 3.5),
):
    """Draw ``score`` as a piano roll.

    Notes are rectangles (time in beats across, MIDI pitch up, C notes
    labelled), one colour per track with a legend of track names; louder notes
    are more opaque.  Drum tracks are drawn as small marks at each hit.  Grey
    vertical lines mark the bars.

    Parameters
    ----------
    score : Score
    ax : matplotlib Axes, optional
        Where to draw; a new figure of ``figsize`` is made when omitted.
    tracks : int, str or list of them, optional
        Which tracks to draw (indices or names); all by default.
    title : str, optional
        Defaults to the score's title.
    boundary : float, optional
        A position in beats marked by a dashed vertical line, e.g. where a
        Transformer extension starts.
    pitch_range : (int, int), optional
        Lowest and highest MIDI pitch shown; by default the notes' range plus
        a margin (at least an octave).

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``, or the axes of a new figure, with the roll drawn on it.

    Raises
    ------
    CapsuleError
        For an unknown track, a bad ``pitch_range`` or a negative ``boundary``.
    """
    if not isinstance(score, Score):
        raise CapsuleError(f"plot_pianoroll needs a Score, not {type(score).__name__}")
    indices = _selected(score, tracks)
    boundary = _check_boundary(boundary)
    pitch_range = _check_range(pitch_range) if pitch_range is not None else _auto_range([(score, indices)])
    if ax is None:
        _, ax = subplots(figsize=figsize, layout="constrained")
    colors = _colors_for((score, indices))
    return _draw(ax, score, indices, colors, title=title, boundary=boundary, pitch_range=pitch_range)


def compare_pianorolls(
    before: Score,
    after: Score,
    titles: tuple[str, str] = ("before", "after"),
    *,
    boundary: float | None = None,
    pitch_range: tuple[int, int] | None = None,
    figsize: tuple[float, float] = (10, 6),
):
    """Two piano rolls stacked on a shared time axis, e.g. a melody and its enhancement.

    Both rolls use the same pitch range and the same colour for a track name,
    so differences are easy to see.  ``boundary`` (beats) is marked on the
    lower roll.

    Returns
    -------
    matplotlib.figure.Figure
        With two axes, ``fig.axes[0]`` (before) and ``fig.axes[1]`` (after).
    """
    for label, score in (("before", before), ("after", after)):
        if not isinstance(score, Score):
            raise CapsuleError(f"compare_pianorolls needs a Score for {label!r}, not {type(score).__name__}")
    if len(titles) != 2:
        raise CapsuleError(f"titles must be two strings (before, after), not {titles!r}")
    boundary = _check_boundary(boundary)
    pairs = [(before, list(range(len(before.tracks)))), (after, list(range(len(after.tracks))))]
    pitch_range = _check_range(pitch_range) if pitch_range is not None else _auto_range(pairs)
    colors = _colors_for(*pairs)
    x_end = max(s.end / s.resolution for s in (before, after))
    fig, (top, bottom) = subplots(2, 1, figsize=figsize, sharex=True, layout="constrained")
    _draw(top, before, pairs[0][1], colors, title=titles[0], boundary=None, pitch_range=pitch_range, x_end=x_end)
    _draw(bottom, after, pairs[1][1], colors, title=titles[1], boundary=boundary, pitch_range=pitch_range, x_end=x_end)
    top.set_xlabel("")
    return fig


def _history_table(history) -> tuple[str, list[float], dict[str, list[float]]]:
    if isinstance(history, Mapping):
        columns = {str(k): list(v) for k, v in history.items()}
        n = max((len(v) for v in columns.values()), default=0)
        rows = [{k: v[i] for k, v in columns.items() if i < len(v)} for i in range(n)]
    else:
        rows = list(history) if history is not None else []
    if not rows:
        raise CapsuleError("the training history is empty: train for at least one epoch first")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise CapsuleError(
                f"history entry {i} is {type(row).__name__}; expected a dict such as {{'epoch': 1, 'loss': 0.5}}"
            )
    x_key = next((k for k in _X_KEYS if all(k in r for r in rows)), None)
    xs = [float(r[x_key]) for r in rows] if x_key else [float(i + 1) for i in range(len(rows))]
    values: dict[str, list[float]] = {}
    for i, row in enumerate(rows):
        for key, value in row.items():
            if isinstance(value, Real) and not isinstance(value, bool):
                values.setdefault(str(key), [math.nan] * len(rows))[i] = float(value)
    return x_key or "epoch", xs, values


def plot_loss(
    history, keys: Iterable[str] | str | None = None, ax=None, log: bool = False, *, skip_missing: bool = False
):
    """Plot training curves, one line per metric.

    Parameters
    ----------
    history : list of dict, or dict of lists
        One entry per epoch, e.g. ``[{"epoch": 1, "loss": 0.9, "val_loss": 1.0}, ...]``.
        The x axis is ``epoch`` (or ``step``) when every entry has it, else 1, 2, 3, ...
    keys : str or list of str, optional
        Which metrics to draw; by default every numeric one except epoch,
        step, time and learning rate.  Entries missing a key leave a gap.
    ax : matplotlib Axes, optional
    log : bool
        Logarithmic y axis; when a curve has values <= 0 (e.g. a GAN's
        Wasserstein loss) a symmetric log scale is used instead.
    skip_missing : bool
        Leave out the keys no entry has (a run without validation data has no
        ``val_loss``) instead of refusing them; at least one key must remain.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``, or the axes of a new figure, with one curve per key.

    Raises
    ------
    CapsuleError
        For an empty history or a key that no entry has.
    """
    x_label, xs, values = _history_table(history)
    if keys is None:
        keys = [k for k in values if k not in _NOT_CURVES]
    elif isinstance(keys, str):
        keys = [keys]
    else:
        keys = list(keys)
    missing = [k for k in keys if k not in values]
    if skip_missing and len(missing) < len(keys):
        keys, missing = [k for k in keys if k in values], []
    if missing:
        raise CapsuleError(
            f"no numeric {', '.join(map(repr, missing))} in the history (it has: {', '.join(values) or 'nothing numeric'})"
        )
    if not keys:
        raise CapsuleError("the history has no loss values to plot")
    if ax is None:
        _, ax = subplots(figsize=(7, 3.5), layout="constrained")
    for key in keys:
        ax.plot(xs, values[key], marker="o" if len(xs) <= 30 else None, markersize=3, label=key)
    if log:
        finite = [v for k in keys for v in values[k] if not math.isnan(v)]
        if finite and min(finite) <= 0:
            ax.set_yscale("symlog", linthresh=1e-3)
        else:
            ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("loss (log scale)" if log else "loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax

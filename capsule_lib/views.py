"""What a notebook shows: a piano roll with its sound right under it, and training curves that redraw live.

Three small functions keep notebook cells short and their outputs in reading order.  A figure
drawn with pyplot inside a cell appears only when the cell ends -- *below* any audio player the
cell displayed meanwhile -- so these display each figure at once (and close it, so it is not
shown twice), then the player.  Nothing here changes matplotlib's backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .errors import CapsuleError
from .score import Score

__all__ = ["show", "show_pair", "live_plot", "metrics_table", "plot_against_baseline"]


def _display_figure(fig) -> None:
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)


def _caption(text: str):
    from IPython.display import Markdown

    return Markdown(f"&#9654; {text}")


def show(
    score: Score,
    title: str | None = None,
    *,
    audio: bool = True,
    boundary: float | None = None,
    figsize: tuple[float, float] = (10, 3.6),
) -> None:
    """Display the piano roll of ``score`` and, under it, its audio player (when ``audio``).

    ``boundary`` (in beats) draws a dashed line, e.g. where an extension starts.
    """
    from IPython.display import display

    from .audio import play
    from .plot import plot_pianoroll, subplots

    fig, ax = subplots(figsize=figsize, layout="constrained")
    plot_pianoroll(score, title=title if title is not None else score.title, boundary=boundary, ax=ax)
    _display_figure(fig)
    if audio:
        display(play(score))


def show_pair(
    before: Score,
    after: Score,
    titles: Sequence[str] = ("before", "after"),
    *,
    audio: bool = True,
    boundary: float | None = None,
) -> None:
    """Display two piano rolls on one time axis, then a labelled player for each (when ``audio``)."""
    from IPython.display import display

    from .audio import play
    from .plot import compare_pianorolls

    _display_figure(compare_pianorolls(before, after, titles=tuple(titles), boundary=boundary))
    if audio:
        for label, score in zip(titles, (before, after)):
            display(_caption(label), play(score))


def live_plot(draw: Callable[[list], object]) -> Callable[[list], None]:
    """An ``on_epoch_end`` callback for the trainers: ``draw(history)`` redrawn in one output area.

    ``draw`` gets the history so far (a list of per-epoch dicts) and returns a matplotlib Figure
    or Axes; the picture replaces the previous one, and the last stays in the saved notebook.
    """
    from IPython.display import display

    handle = display(display_id=True)

    def on_epoch_end(history) -> None:
        import matplotlib.pyplot as plt

        drawn = draw(list(history))
        fig = getattr(drawn, "figure", drawn)
        handle.update(fig)
        plt.close(fig)

    return on_epoch_end


def metrics_table(columns: dict) -> str:
    """A Markdown table of metric dicts side by side, e.g. ``{"input": {...}, "enhanced": {...}}``."""
    names = list(columns)
    keys = list(dict.fromkeys(k for m in columns.values() for k in m))

    def fmt(v):
        return "-" if v is None or v != v else f"{v:.3f}"

    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {k} | " + " | ".join(fmt(columns[n].get(k)) for n in names) + " |" for k in keys]
    return "\n".join(lines)


def plot_against_baseline(rows: dict, unit: str = "negative log-likelihood (lower is better)"):
    """Grouped bars: for each label, ``(model, baseline)`` side by side, each bar labelled with its value.

    The picture of a likelihood result: a model number means little without the baseline beside it.
    """
    import numpy as np

    from .plot import subplots

    labels = list(rows)
    if not labels:
        raise CapsuleError("nothing to plot: no (model, baseline) rows")
    values = np.array([[float(v) for v in rows[k]] for k in labels])
    x = np.arange(len(labels))
    fig, ax = subplots(figsize=(2.6 + 2.4 * len(labels), 3.2), layout="constrained")
    for j, (name, color) in enumerate((("model", "tab:blue"), ("baseline", "0.6"))):
        bars = ax.bar(x + (j - 0.5) * 0.38, values[:, j], 0.38, label=name, color=color)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(x, labels)
    ax.set_ylabel(unit)
    ax.legend()
    return fig

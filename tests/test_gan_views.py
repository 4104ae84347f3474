"""The GAN notebook helpers: the losses graph, the comparison table and the quality-bar plot."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import pytest  # noqa: E402

from capsule_lib import CapsuleError  # noqa: E402
from capsule_lib.techniques.gan import metrics_comparison_table, plot_gan_loss, plot_quality_bar  # noqa: E402
from capsule_lib.techniques.gan.evaluate import quality_bar  # noqa: E402


def _result(with_intervals=True):
    tracks = {
        "melody": {"empty_bar_rate": {"generated": 0.0, "ground_truth": 0.0}},
        "alto": {"empty_bar_rate": {"generated": 0.11, "ground_truth": 0.1},      # inside +-0.02
                 "polyphonic_rate": {"generated": 0.3, "ground_truth": 0.2}},     # outside +-0.04
        "bass": {"empty_bar_rate": {"generated": 0.02, "ground_truth": 0.01},     # near zero: +-0.01, on the edge
                 "polyphonic_rate": {"generated": None, "ground_truth": 0.1}},    # silent track: no dot
    }
    out = {"tracks": tracks, "quality_bar": quality_bar(tracks, skip=("melody",))}
    if with_intervals:
        out["ground_truth_interval"] = {"level": 0.9, "draws": 10, "tracks": {
            "alto": {"empty_bar_rate": [0.05, 0.15], "polyphonic_rate": [0.1, 0.25]}}}
    return out


def _dots(ax):
    return [(line.get_xdata()[0], mcolors.to_hex(line.get_color())) for line in ax.lines if line.get_marker() == "o"]


def test_quality_bar_plot_colours_each_generated_value_by_the_window():
    fig = plot_quality_bar(_result(), metrics=("empty_bar_rate", "polyphonic_rate"))
    empty, poly = fig.axes
    green, red = mcolors.to_hex("tab:green"), mcolors.to_hex("tab:red")
    assert sorted(_dots(empty)) == [(0.02, green), (0.11, green)]
    assert _dots(poly) == [(0.3, red)]
    windows = sorted((p.get_x(), p.get_width()) for p in empty.patches)  # the allowed windows, melody skipped
    assert windows == [(pytest.approx(0.0), pytest.approx(0.02)), (pytest.approx(0.08), pytest.approx(0.04))]
    intervals = [list(line.get_xdata()) for line in empty.lines if line.get_marker() in ("None", "", None)]
    assert intervals == [[0.05, 0.15]]
    assert [t.get_text() for t in empty.get_yticklabels()] == ["alto", "bass"]


def test_quality_bar_plot_without_intervals_and_bad_input():
    fig = plot_quality_bar(_result(with_intervals=False), metrics=("polyphonic_rate",))
    assert not [line for line in fig.axes[0].lines if line.get_marker() in ("None", "", None)]
    with pytest.raises(CapsuleError, match="nothing to plot"):
        plot_quality_bar(_result(), metrics=("pitches_used",))  # not a quality-bar metric


def test_comparison_table_and_losses():
    table = metrics_comparison_table(_result())
    assert "| alto | 0.110 / 0.100 |" in table and "| bass | 0.020 / 0.010 | - / 0.100 |" in table
    with pytest.raises(CapsuleError, match="empty"):
        plot_gan_loss([])
    ax = plot_gan_loss([{"epoch": 1, "generator_loss": 2.0, "critic_loss": -1.0},
                        {"epoch": 2, "generator_loss": 1.5, "critic_loss": -0.5}])
    assert len(ax.figure.axes) == 2  # two scales

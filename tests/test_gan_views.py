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
        "alto": {
            "empty_bar_rate": {"generated": 0.11, "ground_truth": 0.1},  # inside +-0.02
            "polyphonic_rate": {"generated": 0.3, "ground_truth": 0.2},
        },  # outside +-0.04
        "bass": {
            "empty_bar_rate": {"generated": 0.02, "ground_truth": 0.01},  # near zero: +-0.01, on the edge
            "polyphonic_rate": {"generated": None, "ground_truth": 0.1},
        },  # silent track: no dot
    }
    out = {"tracks": tracks, "quality_bar": quality_bar(tracks, skip=("melody",))}
    if with_intervals:
        out["ground_truth_interval"] = {
            "level": 0.9,
            "draws": 10,
            "tracks": {"alto": {"empty_bar_rate": [0.05, 0.15], "polyphonic_rate": [0.1, 0.25]}},
        }
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
    ax = plot_gan_loss(
        [
            {"epoch": 1, "generator_loss": 2.0, "critic_loss": -1.0},
            {"epoch": 2, "generator_loss": 1.5, "critic_loss": -0.5},
        ]
    )
    assert len(ax.figure.axes) == 2  # two scales


# -- the notebook pictures ------------------------------------------------------------------
def _history(n=4):
    return [
        {
            "epoch": e,
            "generator_loss": 10 / e,
            "critic_loss": -5 / e,
            "wasserstein": 4 / e,
            "gradient_penalty": 0.1,
            "reconstruction": 0.7 / e,
        }
        for e in range(1, n + 1)
    ]


def test_update_schedule_marks_the_generator_every_ratio_th_batch():
    from capsule_lib.techniques.gan import plot_update_schedule

    fig = plot_update_schedule(4, steps=12)
    critic, generator = fig.axes[0].collections
    assert [int(x) for x, _ in generator.get_offsets()] == [4, 8, 12]
    assert len(critic.get_offsets()) == 12
    with pytest.raises(CapsuleError):
        plot_update_schedule(0)


def test_sample_tracks_draws_one_grid_per_track():
    import numpy as np

    from capsule_lib.techniques.gan import plot_sample_tracks

    sample = np.zeros((4, 64, 84), bool)
    sample[2, :16, 40] = True
    fig = plot_sample_tracks(sample, ["s", "a", "t", "b"])
    assert [ax.get_title() for ax in fig.axes] == ["track 0: s (melody)", "track 1: a", "track 2: t", "track 3: b"]
    assert fig.axes[2].images[0].get_array().sum() == 16


def test_architecture_table_lists_both_generators_and_the_critic():
    import numpy as np

    from capsule_lib.techniques.gan import architecture_table

    text = architecture_table(4, np.zeros((2, 1, 64, 84), bool))
    rows = [r for r in text.splitlines() if r.startswith("| ") and "parameters" not in r]
    assert [r.split("|")[1].strip() for r in rows] == ["musegan generator", "unet generator", "critic"]
    assert "accompaniment (2, 3, 64, 84)" in rows[0] and "one score per sample (2,)" in rows[2]


def test_untrained_output_is_a_fog_of_middling_probabilities():
    import numpy as np

    from capsule_lib.techniques.gan import plot_untrained_output

    fig = plot_untrained_output(np.zeros((64, 84), bool), 4, "bass")
    values = fig.axes[0].images[0].get_array()
    assert values.shape == (84, 64) and 0.2 < float(values.mean()) < 0.8


def test_loss_parts_and_runs_draw_every_curve():
    from capsule_lib.techniques.gan import plot_loss_parts, plot_runs

    fig = plot_loss_parts(_history())
    assert [line.get_label() for line in fig.axes[1].lines] == ["wasserstein", "gradient penalty", "reconstruction"]
    fig = plot_runs({"a": _history(3), "b": _history(5)})
    titles = [ax.get_title() for ax in fig.axes]
    assert "a" in titles and "b" in titles and titles.count("reconstruction") == 2


def test_metric_curves_can_carry_a_title():
    from capsule_lib.techniques.gan import plot_metric_curves

    history = [{"epoch": 1, "gen/alto/empty_bar_rate": 0.2}]
    fig = plot_metric_curves(
        history,
        {"tracks": {"alto": {"empty_bar_rate": 0.1}}},
        ["s", "alto"],
        metrics=("empty_bar_rate",),
        title="my run",
    )
    assert fig._suptitle.get_text() == "my run"


def test_failed_checks_are_put_beside_the_stored_interval_of_their_ground_truth():
    from capsule_lib.techniques.gan import failure_intervals

    tracks = {
        "alto": {
            "empty_bar_rate": {"generated": 0.09, "ground_truth": 0.06},
            "polyphonic_rate": {"generated": 0.2, "ground_truth": 0.1},
        }
    }
    result = {
        "tracks": tracks,
        "quality_bar": quality_bar(tracks),
        "ground_truth_interval": {
            "level": 0.9,
            "draws": 10,
            "tracks": {"alto": {"empty_bar_rate": [0.04, 0.1], "polyphonic_rate": [0.08, 0.12]}},
        },
    }
    assert failure_intervals(result) == [
        "alto empty_bar_rate: ground truth 0.060, its interval [0.040, 0.100]; generated 0.090 is inside it",
        "alto polyphonic_rate: ground truth 0.100, its interval [0.080, 0.120]; generated 0.200 is outside it",
    ]
    assert failure_intervals({k: v for k, v in result.items() if k != "ground_truth_interval"}) == []

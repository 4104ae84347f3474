"""Piano-roll and loss pictures: what is drawn, counted on the matplotlib objects."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from capsule_lib import CapsuleError, Note, Score, Track  # noqa: E402
from capsule_lib.plot import compare_pianorolls, plot_loss, plot_pianoroll  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def two_tracks(resolution=4):
    melody = Track("melody", notes=(Note(0, 60, 4), Note(4, 64, 2), Note(6, 67, 10)))
    bass = Track("bass", program=32, notes=(Note(0, 48, 16), Note(16, 43, 16)))
    return Score(tracks=(melody, bass), resolution=resolution, title="two tracks")


def rects(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def legend_names(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_one_rectangle_per_note_and_a_legend_of_track_names():
    score = two_tracks()
    ax = plot_pianoroll(score)
    assert len(rects(ax)) == 5
    assert legend_names(ax) == ["melody", "bass"]
    assert ax.get_title() == "two tracks"


def test_rectangles_sit_at_beats_and_pitches():
    ax = plot_pianoroll(two_tracks(resolution=4), tracks=["melody"])
    boxes = sorted((r.get_x(), r.get_width(), r.get_y() + r.get_height() / 2) for r in rects(ax))
    # steps / 4 steps per beat: (start beat, length in beats, pitch)
    assert boxes == [(0.0, 1.0, 60.0), (1.0, 0.5, 64.0), (1.5, 2.5, 67.0)]


def test_tracks_have_distinct_colours():
    ax = plot_pianoroll(two_tracks())
    colours = {r.get_facecolor()[:3] for r in rects(ax)}
    assert len(colours) == 2


def test_track_selection_by_index_and_name():
    score = two_tracks()
    assert len(rects(plot_pianoroll(score, tracks=1))) == 2
    assert legend_names(plot_pianoroll(score, tracks=["bass"])) == ["bass"]
    with pytest.raises(CapsuleError, match="no track named 'drums'"):
        plot_pianoroll(score, tracks=["drums"])


def test_bar_lines_follow_the_time_signature():
    score = two_tracks().replace(time_signature=(2, 4))  # 32 steps = 8 beats = 4 bars of 2 beats
    ax = plot_pianoroll(score)
    bar_lines = [c for c in ax.collections if len(c.get_segments()) > 1]
    xs = sorted(seg[0][0] for c in bar_lines for seg in c.get_segments())
    assert xs == [0, 2, 4, 6, 8]
    assert ax.get_xlim() == (0, 8)


def test_boundary_draws_a_vertical_line():
    ax = plot_pianoroll(two_tracks(), boundary=3.5)
    xs = [tuple(line.get_xdata()) for line in ax.lines]
    assert (3.5, 3.5) in xs
    assert all(tuple(line.get_xdata()) != (3.5, 3.5) for line in plot_pianoroll(two_tracks()).lines)
    with pytest.raises(CapsuleError, match="boundary"):
        plot_pianoroll(two_tracks(), boundary=-1)


def test_boundary_past_the_end_widens_the_view():
    ax = plot_pianoroll(two_tracks(), boundary=12)
    assert ax.get_xlim()[1] >= 12


def test_y_ticks_are_c_notes():
    ax = plot_pianoroll(two_tracks())
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["C3", "C4"]
    assert list(ax.get_yticks()) == [48, 60]


def test_pitch_range():
    ax = plot_pianoroll(two_tracks(), pitch_range=(36, 84))
    assert ax.get_ylim() == (35.5, 84.5)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["C2", "C3", "C4", "C5", "C6"]
    for bad in [(70, 60), (-1, 60), (0, 128), "C4"]:
        with pytest.raises(CapsuleError, match="pitch_range"):
            plot_pianoroll(two_tracks(), pitch_range=bad)


def test_drums_are_marks_not_rectangles():
    drums = Track("drums", is_drum=True, notes=tuple(Note(i * 4, 36, 1) for i in range(6)))
    score = two_tracks().replace(tracks=two_tracks().tracks + (drums,))
    ax = plot_pianoroll(score)
    assert len(rects(ax)) == 5
    marks = [line for line in ax.lines if len(line.get_xdata()) == 6]
    assert len(marks) == 1 and list(marks[0].get_ydata()) == [36] * 6
    assert list(marks[0].get_xdata()) == [0, 1, 2, 3, 4, 5]
    assert legend_names(ax) == ["melody", "bass", "drums"]


def test_draws_into_a_given_axes_and_accepts_an_empty_score():
    fig, ax = plt.subplots()
    assert plot_pianoroll(two_tracks(), ax) is ax
    empty = plot_pianoroll(Score(tracks=(Track("melody"),)))
    assert rects(empty) == []
    with pytest.raises(CapsuleError, match="needs a Score"):
        plot_pianoroll([Note(0, 60, 1)])


# -- compare ----------------------------------------------------------------------
def test_compare_stacks_two_rolls_on_a_shared_time_axis():
    before = Score.from_notes([(0, 60, 4), (4, 62, 4)], resolution=4)
    after = two_tracks()
    fig = compare_pianorolls(before, after, titles=("melody", "accompanied"), boundary=2)
    top, bottom = fig.axes
    assert top.get_shared_x_axes().joined(top, bottom)
    assert (top.get_title(), bottom.get_title()) == ("melody", "accompanied")
    assert len(rects(top)) == 2 and len(rects(bottom)) == 5
    assert top.get_ylim() == bottom.get_ylim()  # same pitch range, honest comparison
    # the melody keeps its colour in both rolls
    assert (
        rects(top)[0].get_facecolor()[:3] == [r for r in rects(bottom) if r.get_y() + 0.4 == 60][0].get_facecolor()[:3]
    )
    assert any(tuple(line.get_xdata()) == (2, 2) for line in bottom.lines)
    with pytest.raises(CapsuleError, match="titles"):
        compare_pianorolls(before, after, titles=("only one",))


# -- loss curves ------------------------------------------------------------------
HISTORY = [{"epoch": e, "loss": 1 / e, "val_loss": 1.5 / e, "lr": 0.001} for e in range(1, 5)]


def test_plot_loss_draws_one_line_per_metric():
    ax = plot_loss(HISTORY)
    assert sorted(line.get_label() for line in ax.lines) == ["loss", "val_loss"]  # lr is not a loss
    loss = next(line for line in ax.lines if line.get_label() == "loss")
    assert list(loss.get_xdata()) == [1, 2, 3, 4]
    assert list(loss.get_ydata()) == pytest.approx([1, 0.5, 1 / 3, 0.25])
    assert ax.get_yscale() == "linear"


def test_plot_loss_keys_and_log_scale():
    ax = plot_loss(HISTORY, keys=["val_loss"], log=True)
    assert [line.get_label() for line in ax.lines] == ["val_loss"]
    assert ax.get_yscale() == "log"
    gan = [{"generator": -0.5 * e, "critic": 0.2} for e in range(3)]  # Wasserstein losses go negative
    ax = plot_loss(gan, log=True)
    assert ax.get_yscale() == "symlog"
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]  # no epoch key: counted from 1


def test_plot_loss_accepts_columns_and_leaves_gaps():
    ax = plot_loss({"loss": [3.0, 2.0, 1.0]})
    assert list(ax.lines[0].get_ydata()) == [3, 2, 1]
    ax = plot_loss([{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5, "val_loss": 0.7}])
    val = next(line for line in ax.lines if line.get_label() == "val_loss")
    assert math.isnan(val.get_ydata()[0]) and val.get_ydata()[1] == 0.7


def test_plot_loss_can_leave_out_a_curve_the_run_never_had():
    """A short run on a few pieces has no validation data, hence no val_loss: the notebooks still draw."""
    no_val = [{"epoch": e, "loss": 1 / e} for e in range(1, 4)]
    ax = plot_loss(no_val, keys=["loss", "val_loss"], skip_missing=True)
    assert [line.get_label() for line in ax.lines] == ["loss"]
    with pytest.raises(CapsuleError, match="val_loss"):
        plot_loss(no_val, keys=["loss", "val_loss"])
    with pytest.raises(CapsuleError, match="accuracy"):
        plot_loss(no_val, keys=["accuracy"], skip_missing=True)


def test_plot_loss_errors():
    with pytest.raises(CapsuleError, match="empty"):
        plot_loss([])
    with pytest.raises(CapsuleError, match=r"no numeric 'accuracy'.*loss"):
        plot_loss(HISTORY, keys="accuracy")
    with pytest.raises(CapsuleError, match="history entry 0"):
        plot_loss([0.5, 0.4])


def test_import_is_lazy():
    import subprocess
    import sys

    code = "import sys, capsule_lib.plot, capsule_lib.samples; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"

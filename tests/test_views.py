"""What a notebook cell shows: pictures before their players, live training plots, tables."""

import matplotlib
import pytest

import capsule_lib as cl
from capsule_lib.errors import CapsuleError


@pytest.fixture()
def shown(monkeypatch):
    """Everything passed to IPython's display, in order."""
    items = []

    class Handle:
        def update(self, obj):
            items.append(("update", obj))

    def fake_display(*objs, display_id=None):
        items.extend(objs)
        return Handle() if display_id else None

    monkeypatch.setattr("IPython.display.display", fake_display)
    monkeypatch.setenv("CAPSULE_AUDIO_BACKEND", "builtin")
    return items


def tune():
    return cl.Score.from_notes([(0, 60, 4), (4, 64, 4), (8, 67, 8)], resolution=4, title="tune")


def test_show_displays_the_piano_roll_before_its_player(shown):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()  # figures other tests left open are not this one's
    cl.show(tune())
    assert [type(x).__name__ for x in shown] == ["Figure", "Audio"]
    assert plt.get_fignums() == before  # closed after display: not shown a second time at the cell's end


def test_show_without_audio_shows_only_the_picture(shown):
    cl.show(tune(), audio=False)
    assert [type(x).__name__ for x in shown] == ["Figure"]


def test_show_pair_labels_each_player(shown):
    cl.show_pair(tune(), cl.transpose(tune(), 2), titles=("mine", "higher"))
    kinds = [type(x).__name__ for x in shown]
    assert kinds == ["Figure", "Markdown", "Audio", "Markdown", "Audio"]
    assert "mine" in shown[1].data and "higher" in shown[3].data


def test_live_plot_replaces_one_picture_per_epoch(shown):
    draw = cl.live_plot(lambda h: cl.plot_loss(h, keys=["loss"]))
    for n in range(1, 4):
        draw([{"epoch": e, "loss": 1 / e} for e in range(1, n + 1)])
    updates = [x for x in shown if isinstance(x, tuple)]
    assert len(updates) == 3 and all(type(u[1]).__name__ == "Figure" for u in updates)


def test_nothing_here_changes_matplotlibs_backend(shown):
    before = matplotlib.get_backend()
    cl.show(tune())
    cl.show_pair(tune(), tune())
    assert matplotlib.get_backend() == before


def test_plot_against_baseline_draws_model_and_baseline_bars():
    fig = cl.plot_against_baseline({"a": (0.1, 0.3), "b": (1.4, 3.2)})
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert heights == [0.1, 0.3, 1.4, 3.2]
    with pytest.raises(CapsuleError):
        cl.plot_against_baseline({})


def test_metrics_table_is_markdown_with_a_column_per_score():
    text = cl.metrics_table({"x": {"empty_bar_rate": 0.25}, "y": {"empty_bar_rate": float("nan")}})
    assert text.splitlines()[0] == "| metric | x | y |"
    assert "| empty_bar_rate | 0.250 | - |" in text


def test_download_buttons_make_the_file_when_pressed(monkeypatch):
    from capsule_lib.widgets import DownloadButtons

    monkeypatch.setenv("CAPSULE_AUDIO_BACKEND", "builtin")
    buttons = DownloadButtons(tune(), title="My tune: take 2")
    sent = []
    monkeypatch.setattr(buttons.status, "send", lambda content, buffers=None: sent.append((content, buffers)))
    assert [b.description for b in buttons.buttons.values()] == ["Download MIDI", "Download WAV", "Download MP3"]
    buttons.buttons["mid"].click()
    ((content, (data,)),) = sent
    assert content == {"op": "download", "name": "My_tune_take_2.mid", "mime": "audio/midi"}
    assert data[:4] == b"MThd"  # a MIDI file
    assert "Downloaded My_tune_take_2.mid" in buttons.status.message
    name, mp3 = buttons.download("mp3")
    assert name.endswith(".mp3") and len(mp3) > 1000
    with pytest.raises(CapsuleError):
        DownloadButtons(tune(), kinds=("ogg",))

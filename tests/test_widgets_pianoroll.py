"""The piano-roll editor's Python side, driven the way anywidget drives it (no browser)."""

from __future__ import annotations

import base64

import pytest

from capsule_lib import edit
from capsule_lib.errors import CapsuleError
from capsule_lib.midi import read_midi
from capsule_lib.samples import load_sample
from capsule_lib.score import Note, Score, Track
from capsule_lib.widgets import PianoRollEditor
from capsule_lib.widgets.pianoroll import MAX_ZOOM, MIN_PITCH_SPAN, MIN_ZOOM, TRACK_COLOURS


@pytest.fixture
def score() -> Score:
    """Three tracks at 24 steps a beat: a melody, a bass and drums."""
    melody = Track(
        "melody", program=0, notes=(Note(0, 60, 24), Note(0, 64, 24), Note(24, 62, 12, 90), Note(48, 67, 48))
    )
    bass = Track("bass", program=32, notes=(Note(0, 48, 96),))
    drums = Track("drums", is_drum=True, notes=(Note(0, 36, 6), Note(48, 38, 6)))
    return Score(tracks=(melody, bass, drums), tempo=90, resolution=24, title="three parts")


def sent(editor: PianoRollEditor, monkeypatch) -> list[dict]:
    """Collect what the editor sends to the front end."""
    out: list[dict] = []
    monkeypatch.setattr(editor, "send", lambda content, buffers=None: out.append(content))
    return out


def msg(editor: PianoRollEditor, **content) -> None:
    """Deliver a custom message as anywidget does (never raises)."""
    editor._handle_custom_msg(content, [])


def as_dicts(score: Score) -> list[dict]:
    return [
        {"track": i, "start": n.start, "pitch": n.pitch, "duration": n.duration, "velocity": n.velocity}
        for i, t in enumerate(score.tracks)
        for n in t.notes
    ]


# -- construction -----------------------------------------------------------------------------
def test_traits_describe_every_track_of_the_score(score):
    ed = PianoRollEditor(score)
    assert ed.score is score and ed.applied is score
    assert ed.notes == as_dicts(score)
    assert [(t["index"], t["name"], t["editable"], t["is_drum"], t["program"], t["n_notes"]) for t in ed.tracks] == [
        (0, "melody", True, False, 0, 4),
        (1, "bass", False, False, 32, 1),
        (2, "drums", False, True, 0, 2),
    ]
    assert [t["colour"] for t in ed.tracks] == list(TRACK_COLOURS[:3])
    assert (ed.track, ed.resolution, ed.grid, ed.steps_per_bar, ed.tempo, ed.title) == (
        0,
        24,
        6,
        96,
        90.0,
        "three parts",
    )
    assert ed.total_steps == 2 * 96  # the one-bar piece plus an empty bar to write in
    assert ed.pitch_low <= 36 - 3 and ed.pitch_high >= 67 + 3
    assert ed.pitch_high - ed.pitch_low + 1 >= MIN_PITCH_SPAN
    assert (ed.zoom, ed.playing, ed.edits, ed.dirty, ed.status_level) == (1.0, False, 0, False, "info")
    assert "melody" in ed.status
    assert "export default" in ed._esm and "data-testid" in ed._esm


def test_small_range_gets_a_two_octave_view_and_sample_scores_load():
    ed = PianoRollEditor(load_sample("twinkle_twinkle"))
    assert ed.pitch_high - ed.pitch_low + 1 == MIN_PITCH_SPAN
    assert ed.pitch_low < 60 and ed.pitch_high > 69
    assert len(ed.notes) == len(ed.score.notes) == 42
    assert ed.total_steps % ed.steps_per_bar == 0 and ed.total_steps > ed.score.end


def test_track_by_name_grid_and_bad_arguments(score):
    ed = PianoRollEditor(score, track="bass", grid=24)
    assert ed.track == 1 and ed.grid == 24
    assert [t["editable"] for t in ed.tracks] == [False, True, False]
    with pytest.raises(CapsuleError, match="no track named"):
        PianoRollEditor(score, track="piano")
    with pytest.raises(CapsuleError, match="does not exist"):
        PianoRollEditor(score, track=3)
    with pytest.raises(CapsuleError, match="grid"):
        PianoRollEditor(score, grid=0)
    with pytest.raises(CapsuleError, match="needs a Score"):
        PianoRollEditor([Note(0, 60, 1)])
    assert PianoRollEditor(score.with_resolution(2)).grid == 1  # coarse scores still get a grid


# -- edits through the message handler -----------------------------------------------------------
def test_toggle_adds_and_removes_exactly_as_the_edit_library(score):
    ed = PianoRollEditor(score)
    msg(ed, op="toggle", start=72, pitch=65)
    added = edit.toggle_note(score, 72, 65, 6, track=0)
    assert ed.score == added
    assert ed.notes == as_dicts(added)
    assert (ed.edits, ed.status_level, ed.dirty) == (1, "info", True)
    assert "Added F4" in ed.status
    msg(ed, op="toggle", start=74, pitch=65, track=0)  # anywhere on the note removes it
    assert ed.score == edit.toggle_note(added, 74, 65, track=0) == score
    assert "Removed F4" in ed.status and ed.edits == 2
    assert ed.history == [{"op": "toggle", "start": 72, "pitch": 65}, {"op": "toggle", "start": 74, "pitch": 65}]


def test_toggle_snaps_a_new_note_to_its_grid_cell(score):
    ed = PianoRollEditor(score, grid=12)
    ed.toggle(100, 70)
    assert ed.score == edit.add_note(score, 70, 96, 12)
    ed.toggle(130, 66)  # 130 lies in the cell 120-131: the note starts at 120 and lasts one cell
    assert Note(120, 66, 12) in ed.score.tracks[0].notes


def test_move_and_resize_match_change_pitch_and_change_length(score):
    ed = PianoRollEditor(score)
    msg(ed, op="pitch", start=10, pitch=60, new_pitch=59)
    moved = edit.change_pitch(score, 60, 10, 59, track=0)
    assert ed.score == moved and "Moved C4" in ed.status and "to B3" in ed.status
    msg(ed, op="length", start=24, pitch=62, duration=36)
    resized = edit.change_length(moved, 62, 24, 36, track=0)
    assert ed.score == resized and ed.notes == as_dicts(resized)
    assert ed.edits == 2 and ed.history[-1] == {"op": "length", "start": 24, "pitch": 62, "duration": 36}
    # Other tracks are untouched by edits of the melody.
    assert ed.score.tracks[1:] == score.tracks[1:]


def test_the_view_grows_when_an_edit_leaves_it(score):
    ed = PianoRollEditor(score)
    high, total = ed.pitch_high, ed.total_steps
    ed.move(48, 67, high + 5)
    assert ed.pitch_high >= high + 5 + 3
    ed.resize(48, high + 5, 400)
    assert ed.total_steps >= 448 and ed.total_steps % 96 == 0 and ed.total_steps > total


@pytest.mark.parametrize(
    "content, words",
    [
        ({"op": "pitch", "start": 0, "pitch": 60, "new_pitch": 64}, "already has a note"),  # onto an occupied cell
        ({"op": "length", "start": 0, "pitch": 60, "duration": 0}, "at least one step"),  # length < 1
        ({"op": "length", "start": 0, "pitch": 60, "duration": -6}, "at least one step"),
        ({"op": "toggle", "start": 0, "pitch": 48, "track": 1}, "only track 0 (melody) is editable"),
        ({"op": "length", "start": 0, "pitch": 36, "duration": 12, "track": 2}, "only track 0"),
        ({"op": "pitch", "start": 0, "pitch": 60, "new_pitch": 128}, "outside the MIDI range"),
        ({"op": "toggle", "start": 0, "pitch": -1}, "outside the MIDI range"),
        ({"op": "toggle", "start": -6, "pitch": 70}, "negative"),
        ({"op": "pitch", "start": 200, "pitch": 60, "new_pitch": 61}, "no note of pitch 60"),
        ({"op": "toggle", "start": 0.5, "pitch": 70}, "whole number"),
        ({"op": "toggle", "start": "0", "pitch": 70}, "whole number"),
        ({"op": "toggle", "start": 0}, "lacks 'pitch'"),
        ({"op": "transpose"}, "does not know the request 'transpose'"),
    ],
)
def test_invalid_edits_leave_the_score_and_say_why(score, monkeypatch, content, words):
    ed = PianoRollEditor(score)
    out = sent(ed, monkeypatch)
    ed._handle_custom_msg(content, [])
    assert ed.score is score and ed.notes == as_dicts(score)
    assert (ed.edits, ed.history, ed.dirty) == (0, [], False)
    assert ed.status_level == "error" and words in ed.status, ed.status
    assert out == [{"op": "done"}]


def test_a_message_that_is_not_a_dict_is_reported(score):
    ed = PianoRollEditor(score)
    ed._handle_custom_msg(["toggle"], [])
    assert ed.status_level == "error" and "does not understand" in ed.status


def test_python_methods_raise_on_invalid_edits(score):
    ed = PianoRollEditor(score)
    with pytest.raises(CapsuleError, match="Cannot move the note: pitch 64 already has a note"):
        ed.move(0, 60, 64)
    with pytest.raises(CapsuleError, match="only track 0"):
        ed.resize(0, 48, 12, track=1)
    assert ed.score is score and ed.status_level == "error"
    ed.toggle(72, 65)
    assert ed.status_level == "info"


def test_a_no_op_edit_is_not_counted(score):
    ed = PianoRollEditor(score)
    ed.move(0, 60, 60)
    ed.resize(0, 60, 24)
    assert ed.edits == 0 and ed.status == "No change." and ed.score == score


# -- apply and download -----------------------------------------------------------------------
def test_apply_hands_the_edited_score_to_callbacks(score, monkeypatch):
    ed = PianoRollEditor(score)
    seen, removed = [], []
    ed.on_apply(seen.append)
    ed.on_apply(removed.append)
    ed.on_apply(removed.append, remove=True)
    ed.toggle(72, 65)
    assert ed.applied is score and ed.dirty
    out = sent(ed, monkeypatch)
    msg(ed, op="apply")
    assert seen == [ed.score] and ed.applied == ed.score != score
    assert removed == [] and not ed.dirty and "Applied 1 edit" in ed.status
    assert out == [{"op": "done"}]
    ed.toggle(72, 65)  # the applied score stays as applied until the next apply
    assert ed.applied == seen[0] != ed.score and ed.dirty


def test_a_failing_callback_is_reported_not_raised(score):
    ed = PianoRollEditor(score)

    def broken(_score):
        raise ValueError("boom")

    ed.on_apply(broken)
    msg(ed, op="apply")
    assert ed.status_level == "error" and "ValueError: boom" in ed.status
    assert ed.applied is ed.score


def test_download_sends_midi_of_the_working_score(score, monkeypatch):
    ed = PianoRollEditor(score)
    ed.toggle(72, 65)
    ed.resize(48, 67, 30)
    out = sent(ed, monkeypatch)
    msg(ed, op="download")
    assert [m["op"] for m in out] == ["download", "done"]
    assert out[0]["name"] == "melody.mid"
    data = base64.b64decode(out[0]["b64"])
    assert data == ed.midi_bytes() and data.startswith(b"MThd")
    back = read_midi(data, track="all", resolution=ed.score.resolution)
    assert [t.notes for t in back.tracks] == [t.notes for t in ed.score.tracks]
    assert [(t.name, t.program, t.is_drum) for t in back.tracks] == [
        (t.name, t.program, t.is_drum) for t in ed.score.tracks
    ]
    assert "Downloaded melody.mid" in ed.status


# -- the rest of the state --------------------------------------------------------------------------
def test_zoom_is_clamped(score):
    ed = PianoRollEditor(score)
    ed.zoom = 100
    assert ed.zoom == MAX_ZOOM
    ed.zoom = 0
    assert ed.zoom == MIN_ZOOM
    ed.zoom = float("nan")
    assert ed.zoom == MIN_ZOOM


def test_switching_track_and_replacing_the_score(score):
    ed = PianoRollEditor(score)
    ed.track = 1
    assert [t["editable"] for t in ed.tracks] == [False, True, False]
    ed.toggle(0, 50)
    assert Note(0, 50, 6) in ed.score.tracks[1].notes and ed.score.tracks[0] == score.tracks[0]
    with pytest.raises(CapsuleError):
        ed.track = 5
    ed.score = edit.transpose(score, 2)
    assert ed.notes == as_dicts(edit.transpose(score, 2)) and ed.dirty
    with pytest.raises(CapsuleError, match="needs a Score"):
        ed.score = None


# -- issue 14 item 8 and the studio: read-only views, real audio, the whole piece in view -------------
def test_a_read_only_roll_refuses_edits_and_marks_no_track_editable(score):
    ed = PianoRollEditor(score, editable=False)
    assert [t["editable"] for t in ed.tracks] == [False, False, False]
    with pytest.raises(CapsuleError, match="read-only"):
        ed.toggle(0, 72)
    msg(ed, op="toggle", start=0, pitch=72)
    assert ed.score is score and ed.status_level == "error" and "read-only" in ed.status
    ed.editable = True
    assert ed.tracks[0]["editable"] is True


def test_the_roll_opens_fitted_to_the_whole_piece(score):
    ed = PianoRollEditor(score)
    assert ed.fit is True  # the browser spreads every bar over the view; zooming turns it off


def test_audio_is_rendered_in_the_kernel_and_follows_edits(score):
    ed = PianoRollEditor(score, audio=True)
    assert ed.wait_audio(60)
    first = ed.audio
    assert ed.audio_mime in ("audio/mpeg", "audio/wav") and len(first) > 1000
    ed.toggle(48, 72)  # an edit: stale audio is dropped at once, the new render follows
    assert ed.wait_audio(60) and ed.audio and ed.audio != first
    assert PianoRollEditor(score).audio == b""  # without audio=True the browser's synth plays

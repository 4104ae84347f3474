"""The piano-roll editor: the music studio's "edit melody" view as a notebook widget.

The widget shows every track of a score on one grid of steps by pitches, each
track in its own colour; one track (``track``) is editable.  In the browser:
double-click an empty cell to add a note (one grid cell long), double-click a
note to remove it, drag a note up or down to change its pitch, drag its right
edge to change its length, play it with a moving playhead, zoom and scroll,
"Apply changes" to hand the edited score back to Python and "Download melody"
to save it as MIDI.

Every edit goes through :mod:`capsule_lib.edit` (``toggle_note``,
``add_note``, ``change_pitch``, ``change_length``), applied by Python to the
editor's working score; the JavaScript only draws, plays and reports what the
user did.  An edit the library refuses leaves the score as it was and shows
why in ``status``.  The same edits are methods (:meth:`PianoRollEditor.toggle`,
:meth:`~PianoRollEditor.move`, :meth:`~PianoRollEditor.resize`,
:meth:`~PianoRollEditor.apply`) so a notebook can drive the editor without a
mouse::

    ed = PianoRollEditor(cl.load_sample("twinkle_twinkle"))
    ed                          # shows the editor
    ed.toggle(96, 72)           # add a C5 at bar 2 (or remove the note there)
    melody = ed.applied         # the score as of the last "Apply changes"

Messages from the front end (``model.send``) are dicts with an ``op``:
``{"op": "toggle", "start", "pitch"}``, ``{"op": "pitch", "start", "pitch",
"new_pitch"}``, ``{"op": "length", "start", "pitch", "duration"}``,
``{"op": "apply"}`` and ``{"op": "download"}`` (each may carry ``"track"``).
Python answers every message with ``{"op": "done"}`` and a download with
``{"op": "download", "name", "b64"}`` (base64 MIDI bytes).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from pathlib import Path

import anywidget
import traitlets as t

from .. import edit
from ..errors import CapsuleError
from ..keys import pitch_label
from ..midi import midi_bytes as _score_midi_bytes
from ..score import Score
from .sound import AudioRenderer
from .theme import themed_css

__all__ = ["PianoRollEditor", "TRACK_COLOURS"]

_STATIC = Path(__file__).parent / "static"

#: Colour of track ``i`` is ``TRACK_COLOURS[i % len(TRACK_COLOURS)]``.
TRACK_COLOURS = (
    "#e8590c",
    "#1c7ed6",
    "#2f9e44",
    "#ae3ec9",
    "#f08c00",
    "#0c8599",
    "#e64980",
    "#5c940d",
    "#6741d9",
    "#868e96",
)
MIN_ZOOM, MAX_ZOOM = 0.25, 8.0
#: Rows shown above the highest and below the lowest note, and the smallest view.
PITCH_MARGIN, MIN_PITCH_SPAN = 3, 24


class PianoRollEditor(anywidget.AnyWidget):
    """Edit one track of a score on a piano roll; the other tracks are shown read-only.

    Parameters
    ----------
    score : Score
        The piece to edit; it is never mutated (edits build new scores).
    track : int or str
        The editable track, by index or name (default the first, the melody).
    grid : int, optional
        Steps per grid cell: clicks snap to it and new notes last one cell.
        Default one 16th note, ``resolution // 4`` (at least 1).
    audio : bool
        Render the score in the kernel (FluidSynth or the built-in synth) after every change
        and play that, with the playhead following it; otherwise the browser beeps the notes.
    editable : bool
        False shows the score read-only (no edits, no Apply or Download buttons).

    Attributes
    ----------
    score : Score
        The working score, with every edit so far.
    applied : Score
        The score as of the last :meth:`apply` ("Apply changes"); the original
        score until then.
    edits : int
        How many edits changed the working score.
    history : list of dict
        One entry per accepted edit: ``{"op", "start", "pitch", ...}``.

    Raises
    ------
    CapsuleError
        If ``score`` is not a Score, ``track`` does not exist or ``grid < 1``.
    """

    _esm = _STATIC / "pianoroll.js"
    _css = themed_css("pianoroll.css")

    # Drawing
    notes = t.List(t.Dict(), help="every note: {track, start, pitch, duration, velocity}").tag(sync=True)
    tracks = t.List(t.Dict(), help="per track: {index, name, colour, editable, is_drum, program, n_notes}").tag(
        sync=True
    )
    track = t.Int(0, help="index of the editable track").tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    resolution = t.Int(24, help="steps per beat").tag(sync=True)
    grid = t.Int(6, help="steps per grid cell").tag(sync=True)
    steps_per_bar = t.Int(96).tag(sync=True)
    total_steps = t.Int(0, help="width of the roll in steps (whole bars, one empty bar after the end)").tag(sync=True)
    pitch_low = t.Int(48).tag(sync=True)
    pitch_high = t.Int(72).tag(sync=True)
    zoom = t.Float(1.0, help=f"horizontal zoom, {MIN_ZOOM}-{MAX_ZOOM} (used when fit is False)").tag(sync=True)
    fit = t.Bool(True, help="spread the whole piece over the view (longer pieces scroll); zooming turns it off").tag(
        sync=True
    )
    editable = t.Bool(True, help="False: a read-only view (no edits, no Apply or Download buttons)").tag(sync=True)
    # Playback
    tempo = t.Float(120.0, help="beats per minute at the start").tag(sync=True)
    tempo_changes = t.List(help="[[step, bpm], ...] after the start").tag(sync=True)
    playing = t.Bool(False).tag(sync=True)
    audio = t.Bytes(b"", help="the score rendered by the kernel (MP3 or WAV); empty: the browser's synth plays").tag(
        sync=True
    )
    audio_mime = t.Unicode("audio/mpeg").tag(sync=True)
    # State
    status = t.Unicode("").tag(sync=True)
    status_level = t.Unicode("info", help='"info" or "error"').tag(sync=True)
    edits = t.Int(0).tag(sync=True)
    dirty = t.Bool(False, help="the working score differs from the applied one").tag(sync=True)
    download_name = t.Unicode("melody.mid").tag(sync=True)

    def __init__(self, score: Score, track: int | str = 0, grid: int | None = None, *, audio: bool = False, **kwargs):
        if not isinstance(score, Score):
            raise CapsuleError(f"the piano roll needs a Score, not {type(score).__name__}")
        index = score.track_index(track)
        if grid is None:
            grid = max(1, score.resolution // 4)
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
            raise CapsuleError(f"grid {grid!r} must be a whole number of steps, at least 1")
        self._score = score
        self._applied = score
        self._callbacks: list[Callable[[Score], object]] = []
        self.history: list[dict] = []
        self._renderer = AudioRenderer(self._audio_ready) if audio else None
        self._rendered: Score | None = None
        super().__init__(track=index, grid=grid, **kwargs)
        self._refresh(fit_view=True)
        self.status = f"Editing track {self._track_label(index)}: double-click a cell to add or remove a note."
        self.on_msg(lambda _widget, content, buffers: self._handle_custom_msg(content, buffers))

    # -- the working score -------------------------------------------------------------
    @property
    def score(self) -> Score:
        """The working score (every edit so far, applied or not)."""
        return self._score

    @score.setter
    def score(self, score: Score) -> None:
        """Replace the working score (e.g. after a transpose); the view refits to it."""
        if not isinstance(score, Score):
            raise CapsuleError(f"the piano roll needs a Score, not {type(score).__name__}")
        score.track_index(self.track)
        self._score = score
        self._refresh(fit_view=True)

    @property
    def applied(self) -> Score:
        """The score as of the last "Apply changes" (the original score before any)."""
        return self._applied

    def on_apply(self, callback: Callable[[Score], object], remove: bool = False) -> None:
        """Call ``callback(score)`` whenever changes are applied (``remove=True`` to stop)."""
        if remove:
            self._callbacks = [c for c in self._callbacks if c != callback]
        else:
            self._callbacks.append(callback)

    # -- edits (the same as the mouse) ---------------------------------------------------
    def toggle(self, start: int, pitch: int, *, track: int | None = None) -> Score:
        """Double-click on cell ``(start, pitch)``: remove the note covering it, else add one.

        A new note starts on the grid cell holding ``start`` and lasts one grid
        cell (shortened if it would run into a later note of the same pitch).
        """
        index = self._editable(track, "add or remove notes")

        def change(score: Score) -> tuple[Score, str]:
            covering = _covering(score, index, start, pitch)
            if covering is not None:
                return (
                    edit.toggle_note(score, start, pitch, self.grid, track=index),
                    f"Removed {pitch_label(pitch)} at {self._where(covering.start)}.",
                )
            cell = _snap(start, self.grid)
            if cell != start and _covering(score, index, cell, pitch) is not None:
                raise CapsuleError(f"a note of pitch {pitch} already sounds at step {cell}")
            new = edit.toggle_note(score, cell, pitch, self.grid, track=index)
            return new, f"Added {pitch_label(pitch)} at {self._where(cell)}."

        return self._apply_edit("add or remove a note", change, {"op": "toggle", "start": start, "pitch": pitch})

    def move(self, start: int, pitch: int, new_pitch: int, *, track: int | None = None) -> Score:
        """Drag the note covering ``(start, pitch)`` to ``new_pitch``."""
        index = self._editable(track, "move notes")

        def change(score: Score) -> tuple[Score, str]:
            new = edit.change_pitch(score, pitch, start, new_pitch, track=index)
            return new, f"Moved {pitch_label(pitch)} at {self._where(start)} to {pitch_label(new_pitch)}."

        return self._apply_edit(
            "move the note", change, {"op": "pitch", "start": start, "pitch": pitch, "new_pitch": new_pitch}
        )

    def resize(self, start: int, pitch: int, duration: int, *, track: int | None = None) -> Score:
        """Drag the right edge of the note covering ``(start, pitch)``: it lasts ``duration`` steps."""
        index = self._editable(track, "change note lengths")

        def change(score: Score) -> tuple[Score, str]:
            new = edit.change_length(score, pitch, start, duration, track=index)
            note = _covering(new, index, start, pitch)
            length = note.duration if note is not None else duration
            return new, f"{pitch_label(pitch)} at {self._where(start)} now lasts {length} steps."

        return self._apply_edit(
            "change the length", change, {"op": "length", "start": start, "pitch": pitch, "duration": duration}
        )

    def apply(self) -> Score:
        """The "Apply changes" button: the working score becomes the applied one; callbacks get it."""
        self._applied = self._score
        self.dirty = False
        self._info(
            f"Applied {self.edits} edit{'s' if self.edits != 1 else ''}: "
            f"{len(self._score.tracks[self.track].notes)} notes in track {self._track_label(self.track)}."
        )
        for callback in list(self._callbacks):
            callback(self._score)
        return self._score

    def midi_bytes(self) -> bytes:
        """The working score as a Standard MIDI File ("Download melody")."""
        return _score_midi_bytes(self._score)

    # -- the front end's messages --------------------------------------------------------
    def _handle_custom_msg(self, content, buffers=None) -> None:
        """Apply one request from the browser; never raises (problems go to ``status``)."""
        try:
            if not isinstance(content, dict):
                raise CapsuleError(f"the editor got a request it does not understand: {content!r}")
            op = content.get("op")
            track = content.get("track")
            if op == "toggle":
                self.toggle(content["start"], content["pitch"], track=track)
            elif op == "pitch":
                self.move(content["start"], content["pitch"], content["new_pitch"], track=track)
            elif op == "length":
                self.resize(content["start"], content["pitch"], content["duration"], track=track)
            elif op == "apply":
                self.apply()
            elif op == "download":
                data = self.midi_bytes()
                self.send({"op": "download", "name": self.download_name, "b64": base64.b64encode(data).decode("ascii")})
                self._info(f"Downloaded {self.download_name} ({len(data)} bytes).")
            else:
                raise CapsuleError(f"the editor does not know the request {op!r}")
        except CapsuleError as exc:
            if self.status != str(exc):
                self._error(str(exc))
        except KeyError as exc:
            self._error(f"the editor's {content.get('op')!r} request lacks {exc}")
        except Exception as exc:  # a user's on_apply callback, a broken message: report, never raise
            self._error(f"{type(exc).__name__}: {exc}")
        finally:
            try:
                self.send({"op": "done"})
            except Exception:
                pass

    # -- internals -----------------------------------------------------------------------
    def wait_audio(self, timeout: float | None = 60) -> bool:
        """Wait until the audio of the current score is rendered (True), or ``timeout`` seconds pass."""
        return self._renderer.wait(timeout) if self._renderer is not None else True

    def _audio_ready(self, data: bytes, mime: str, error) -> None:
        with self.hold_sync():
            self.audio_mime = mime or "audio/mpeg"
            self.audio = data
        if error is not None:
            self._error(f"Cannot render the audio ({error}); Play uses the browser's synthesizer.")

    def _editable(self, track: int | None, action: str) -> int:
        if not self.editable:
            self._fail(f"Cannot {action}: this piano roll is read-only.")
        if track is None or (not isinstance(track, bool) and isinstance(track, int) and track == self.track):
            return self.track
        self._fail(f"Cannot {action} in track {track!r}: only track {self._track_label(self.track)} is editable.")

    def _apply_edit(self, what: str, change, entry: dict) -> Score:
        try:
            new, message = change(self._score)
        except CapsuleError as exc:
            self._fail(f"Cannot {what}: {exc}")
        if new == self._score:
            self._info("No change.")
            return self._score
        self._score = new
        self.history.append(entry)
        with self.hold_sync():
            self.edits += 1
            self._refresh()
            self._info(message)
        return new

    def _refresh(self, fit_view: bool = False) -> None:
        """Push the working score to the synced traits."""
        s = self._score
        notes = [
            {"track": i, "start": n.start, "pitch": n.pitch, "duration": n.duration, "velocity": n.velocity}
            for i, tr in enumerate(s.tracks)
            for n in tr.notes
        ]
        pitches = [n["pitch"] for n in notes]
        lo, hi = (min(pitches), max(pitches)) if pitches else (60, 60)
        lo, hi = max(0, lo - PITCH_MARGIN), min(127, hi + PITCH_MARGIN)
        if not fit_view:  # while editing the view only grows, so the grid does not jump
            lo, hi = min(lo, self.pitch_low), max(hi, self.pitch_high)
        while hi - lo + 1 < MIN_PITCH_SPAN:
            if hi < 127:
                hi += 1
            if hi - lo + 1 < MIN_PITCH_SPAN and lo > 0:
                lo -= 1
        bar = s.steps_per_bar
        total = (math.ceil(s.end / bar) + 1) * bar
        if not fit_view:
            total = max(total, self.total_steps)
        with self.hold_sync():
            self.title = s.title
            self.resolution = s.resolution
            self.steps_per_bar = bar
            self.tempo = float(s.tempo)
            self.tempo_changes = [[step, float(bpm)] for step, bpm in s.tempo_changes]
            self.pitch_low, self.pitch_high = lo, hi
            self.total_steps = total
            self.tracks = [
                {
                    "index": i,
                    "name": tr.name or f"track {i + 1}",
                    "colour": TRACK_COLOURS[i % len(TRACK_COLOURS)],
                    "editable": i == self.track and self.editable,
                    "is_drum": tr.is_drum,
                    "program": tr.program,
                    "n_notes": len(tr.notes),
                }
                for i, tr in enumerate(s.tracks)
            ]
            self.notes = notes
            self.dirty = s != self._applied
            if self._renderer is not None and self._rendered is not s:
                self._rendered = s
                self.audio = b""  # stale until the new render arrives; the browser's synth plays meanwhile
                self._renderer.request(s)

    @t.validate("zoom")
    def _valid_zoom(self, proposal):
        value = proposal["value"]
        if not math.isfinite(value):
            return self.zoom
        return min(MAX_ZOOM, max(MIN_ZOOM, value))

    @t.validate("track")
    def _valid_track(self, proposal):
        return self._score.track_index(proposal["value"])

    @t.observe("track", "editable")
    def _track_changed(self, change):
        if change["old"] != change["new"]:
            self._refresh()

    def _track_label(self, index: int) -> str:
        name = self._score.tracks[index].name
        return f"{index} ({name})" if name else str(index)

    def _where(self, step: int) -> str:
        bar, rest = divmod(step, self._score.steps_per_bar)
        return f"bar {bar + 1}, beat {1 + rest / self._score.resolution:.4g}"

    def _info(self, message: str) -> None:
        with self.hold_sync():
            self.status_level = "info"
            self.status = message

    def _error(self, message: str) -> None:
        with self.hold_sync():
            self.status_level = "error"
            self.status = message

    def _fail(self, message: str):
        """Show ``message`` as an error and raise it (the score is left as it was)."""
        self._error(message)
        raise CapsuleError(message) from None

    def __repr__(self) -> str:
        return f"PianoRollEditor({self._score!r}, track={self.track}, grid={self.grid}, edits={self.edits})"


def _snap(step, grid: int):
    """The start of the grid cell holding ``step`` (non-numbers pass through for edit to refuse)."""
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
        return step
    return int(step // grid * grid) if step == int(step) else step


def _covering(score: Score, index: int, step, pitch):
    """The note of ``pitch`` sounding at ``step`` in track ``index``, or None (also for non-numbers)."""
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (step, pitch)):
        return None
    for n in score.tracks[index].notes:
        if n.pitch == pitch and n.start <= step < n.end:
            return n
    return None

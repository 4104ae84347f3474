"""The virtual keyboard: play, hear and record a melody in the browser, get a :class:`Score` back.

The JavaScript (``static/keyboard.js``) draws 32 keys, makes the sound (Web Audio), runs the
metronome and countdown, and reports what was *played*: one event per key press, in
milliseconds from the start of the recording.  Everything musical happens here, in Python,
through :mod:`capsule_lib.edit`: milliseconds become steps, the sustain pedal is folded into
note lengths, rhythm assist, auto-chord and the arpeggiator are applied.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real
from pathlib import Path

import anywidget
import traitlets

from .. import edit
from ..errors import CapsuleError
from ..score import DEFAULT_RESOLUTION, Note, Score, Track
from .theme import themed_css

__all__ = ["VirtualKeyboard", "HOT_KEYS", "N_KEYS", "MIN_OCTAVE", "MAX_OCTAVE"]

_STATIC = Path(__file__).parent / "static"

#: Number of keys drawn: two octaves and a fifth (C to G), as on the DeepComposer keyboard.
N_KEYS = 32
#: Lowest and highest allowed ``octave`` (the MIDI number of the lowest key, always a C).
MIN_OCTAVE, MAX_OCTAVE = 24, 84
#: Computer keys and their semitone above the lowest key: two rows of a QWERTY keyboard laid out
#: like piano keys.  The browser matches them by position (``KeyboardEvent.code``), not by letter.
HOT_KEYS = {
    "a": 0,
    "w": 1,
    "s": 2,
    "e": 3,
    "d": 4,
    "f": 5,
    "t": 6,
    "g": 7,
    "y": 8,
    "h": 9,
    "u": 10,
    "j": 11,
    "k": 12,
    "o": 13,
    "l": 14,
    "p": 15,
    ";": 16,
    "'": 17,
}
#: Notes pressed closer together than this (ms) count as one chord for the arpeggiator.
CHORD_WINDOW_MS = 60.0

_PATTERN_ALIASES = {"up-down": "updown", "up_down": "updown"}


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise CapsuleError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def _round(x: float) -> int:
    """Nearest integer, halves up (so 0.5 step -> 1, never banker's rounding)."""
    return int(math.floor(x + 0.5))


class VirtualKeyboard(anywidget.AnyWidget):
    """A 32-key keyboard to play and record melodies (display it as a cell's last line).

    Play it with the mouse (or touch), a MIDI keyboard (Web MIDI, where the browser allows
    it) or the computer keyboard: click the widget first so it has the focus, then

    * ``a s d f g h j k l ;`` -- white keys C D E F G A B C D E, from the lowest key up
    * ``w e t y u o p`` -- black keys C# D# F# G# A# C# D# (the row above, between them)
    * ``'`` -- F, an octave and a fourth above the lowest key
    * ``z`` / ``x`` -- octave down / up
    * Space (hold) -- sustain pedal

    That is ``a w s e d f t g y h u j k o l p ; '`` chromatically upward from the lowest key
    (:data:`HOT_KEYS`); the widget shows the letters on its keys.
    (Keys are matched by position, so the map is the same on AZERTY or Dvorak keyboards.)
    ``record`` starts a take (after a 5-second countdown if ``countdown`` is ticked, with
    metronome clicks at ``tempo`` if ``metronome`` is ticked), ``stop`` ends it and
    ``play`` plays it back.  Then :meth:`score` gives the take as a :class:`Score`.

    Synced traits
    -------------
    tempo : int
        Beats per minute, 40-160: the metronome's speed and the score's tempo.
    metronome, countdown : bool
        Click while recording; count 5 seconds down before recording starts.
    octave : int
        MIDI number of the lowest key, a C from 24 to 84 (default 48, C3: keys C3-G5).
    arpeggiator : bool
        Arpeggiate chords (keys pressed within 60 ms of each other), see :meth:`score`.
    arp_pattern : str
        "up", "down", "updown" (also spelt "up-down") or "random".
    arp_rate : int
        Steps (24 per beat) per arpeggio note, default 6 (a 16th note); a tapped tempo wins.
    taps : list of float
        Times (seconds) of the tap-tempo button presses; ``tap_bpm`` follows from them
        through :func:`capsule_lib.edit.tap_tempo` (0 until two taps).
    auto_chord : bool
        Add a triad on every played note (:func:`capsule_lib.edit.auto_chord`).
    chord_key : str
        The key for auto-chord triads, e.g. "C major" or "A minor"; "" detects the key of
        the recording (the live preview then plays major triads).
    sustain : bool
        The sustain pedal (a toggle on the widget, or hold Space).
    recording : bool
        True from ``record`` (countdown included) until ``stop``; setting it from Python
        starts or stops a take too.
    events : list of dict
        The last take, filled when recording stops: ``{"pitch", "velocity", "start", "end"}``
        with times in ms from the moment recording started (after any countdown).
    pedal_events : list of dict
        Sustain-pedal intervals of the last take, ``{"start", "end"}`` in ms.
    midi_status : str
        What Web MIDI is doing: connected inputs, or why it is not available.
    """

    _esm = _STATIC / "keyboard.js"
    _css = themed_css("keyboard.css")

    tempo = traitlets.Int(120).tag(sync=True)
    metronome = traitlets.Bool(False).tag(sync=True)
    countdown = traitlets.Bool(False).tag(sync=True)
    octave = traitlets.Int(48).tag(sync=True)
    arpeggiator = traitlets.Bool(False).tag(sync=True)
    arp_pattern = traitlets.Unicode("up").tag(sync=True)
    arp_rate = traitlets.Int(DEFAULT_RESOLUTION // 4).tag(sync=True)
    taps = traitlets.List(traitlets.Float()).tag(sync=True)
    tap_bpm = traitlets.Float(0.0).tag(sync=True)
    auto_chord = traitlets.Bool(False).tag(sync=True)
    chord_key = traitlets.Unicode("C major").tag(sync=True)
    sustain = traitlets.Bool(False).tag(sync=True)
    recording = traitlets.Bool(False).tag(sync=True)
    events = traitlets.List(traitlets.Dict()).tag(sync=True)
    pedal_events = traitlets.List(traitlets.Dict()).tag(sync=True)
    midi_status = traitlets.Unicode("").tag(sync=True)
    hot_keys = traitlets.Dict(HOT_KEYS, read_only=True).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._recorded_callbacks: list[Callable[[Score], object]] = []

    # -- validation ----------------------------------------------------------------
    @traitlets.validate("tempo")
    def _valid_tempo(self, proposal):
        bpm = proposal["value"]
        if not edit.MIN_TEMPO <= bpm <= edit.MAX_TEMPO:
            raise CapsuleError(f"tempo {bpm} bpm is outside {edit.MIN_TEMPO}-{edit.MAX_TEMPO}")
        return bpm

    @traitlets.validate("octave")
    def _valid_octave(self, proposal):
        low = proposal["value"]
        if low % 12 or not MIN_OCTAVE <= low <= MAX_OCTAVE:
            raise CapsuleError(
                f"octave {low} must be the MIDI number of a C from {MIN_OCTAVE} (C1) to {MAX_OCTAVE} (C6), "
                "e.g. 48 for C3"
            )
        return low

    @traitlets.validate("arp_pattern")
    def _valid_pattern(self, proposal):
        pattern = _PATTERN_ALIASES.get(proposal["value"], proposal["value"])
        if pattern not in edit.ARP_PATTERNS:
            raise CapsuleError(f"arpeggio pattern {proposal['value']!r} is not one of up, down, up-down, random")
        return pattern

    @traitlets.validate("arp_rate")
    def _valid_rate(self, proposal):
        if proposal["value"] < 1:
            raise CapsuleError(f"arpeggio rate {proposal['value']} must be at least 1 step (24 steps per beat)")
        return proposal["value"]

    @traitlets.validate("tap_bpm")
    def _valid_tap(self, proposal):
        bpm = proposal["value"]
        if not math.isfinite(bpm) or bpm < 0:
            raise CapsuleError(f"tapped tempo {bpm} must be a positive number of bpm (or 0 for none)")
        return bpm

    @traitlets.validate("chord_key")
    def _valid_key(self, proposal):
        if proposal["value"].strip():
            edit.parse_key(proposal["value"])
        return proposal["value"]

    @traitlets.observe("taps")
    def _taps_changed(self, change):
        taps = change["new"]
        if len(taps) < 2:
            self.tap_bpm = 0.0
            return
        try:
            self.tap_bpm = edit.tap_tempo(taps)
        except CapsuleError:
            self.tap_bpm = 0.0

    @traitlets.observe("events")
    def _events_changed(self, change):
        if not change["new"] or not self._recorded_callbacks:
            return
        score = self.score()
        for callback in list(self._recorded_callbacks):
            callback(score)

    # -- Python API ------------------------------------------------------------------
    def on_recorded(self, callback: Callable[[Score], object], remove: bool = False) -> None:
        """Call ``callback(score)`` each time a take with at least one note stops.

        ``score`` is what :meth:`score` gives with its defaults.  ``remove=True`` unregisters.
        (``kb.observe(fn, "events")`` works too, for the raw events.)
        """
        if remove:
            self._recorded_callbacks = [c for c in self._recorded_callbacks if c != callback]
        else:
            self._recorded_callbacks.append(callback)

    def clear(self) -> None:
        """Forget the last take (settings and the tapped tempo stay)."""
        self.pedal_events = []
        self.events = []

    def _steps(self, ms, what: str) -> int:
        # steps = ms / 1000 * tempo / 60 * resolution, multiplied out first so that whole
        # milliseconds give exactly representable halves (one rounding, in the division).
        return max(0, _round(_number(ms, what) * self.tempo * DEFAULT_RESOLUTION / 60000.0))

    def raw_score(self) -> Score:
        """The take exactly as played: one note per key press, pedals in ``Track.pedals``.

        Times convert exactly: ``steps = round(ms / 1000 * tempo / 60 * 24)`` (halves up); a
        note keeps at least one step.  Raises :class:`CapsuleError` if nothing was recorded
        or an event is malformed.
        """
        if not self.events:
            raise CapsuleError("nothing recorded yet: press record and play some keys")
        notes = []
        for i, event in enumerate(self.events):
            try:
                pitch, start, end = event["pitch"], event["start"], event["end"]
            except (KeyError, TypeError):
                raise CapsuleError(f"recorded event {i} {event!r} needs pitch, start and end") from None
            velocity = event.get("velocity", 100)
            pitch = edit._check_pitch(pitch, f"recorded event {i} pitch")
            velocity = min(127, max(1, _round(_number(velocity, f"recorded event {i} velocity"))))
            first = self._steps(start, f"recorded event {i} start")
            last = self._steps(end, f"recorded event {i} end")
            notes.append(Note(first, pitch, max(1, last - first), velocity))
        pedals = []
        for i, pedal in enumerate(self.pedal_events):
            try:
                down, up = self._steps(pedal["start"], "pedal start"), self._steps(pedal["end"], "pedal end")
            except (KeyError, TypeError):
                raise CapsuleError(f"pedal event {i} {pedal!r} needs start and end") from None
            if up > down:
                pedals.append((down, up))
        track = Track(name="keyboard", program=0, notes=tuple(edit._tidy(notes)), pedals=tuple(pedals))
        return Score(tracks=(track,), tempo=float(self.tempo), resolution=DEFAULT_RESOLUTION, title="keyboard take")

    def score(self, quantize: bool = False, grid: int | None = None, *, resolve_sustain: bool = True) -> Score:
        """The last take as a one-track :class:`Score` ("keyboard", piano, tempo ``tempo``, 24 steps/beat).

        In order, each through :mod:`capsule_lib.edit`:

        1. :meth:`raw_score` (one note per key press, in steps);
        2. sustain: pedal intervals are recorded in ``Track.pedals`` and, with
           ``resolve_sustain=True`` (default), folded into note lengths by
           :func:`~capsule_lib.edit.resolve_sustain` (``False`` keeps them as CC64 pedals);
        3. rhythm assist if ``quantize``: :func:`~capsule_lib.edit.quantize` to ``grid`` steps
           (default a 16th note, 6 steps);
        4. if ``auto_chord`` was on: :func:`~capsule_lib.edit.auto_chord` in ``chord_key``;
        5. if ``arpeggiator`` was on: notes started within 60 ms of each other are made one
           chord (they start together), then :func:`~capsule_lib.edit.arpeggiate` with
           ``arp_pattern`` and the tapped tempo ``tap_bpm`` if there is one, else ``arp_rate``.

        Raises
        ------
        CapsuleError
            "nothing recorded yet: ..." if the take is empty; bad grid or events.
        """
        score = self.raw_score()
        if resolve_sustain:
            score = edit.resolve_sustain(score)
        if quantize:
            score = edit.quantize(score, grid)
        elif grid is not None:
            raise CapsuleError("a quantize grid was given without quantize=True")
        if self.auto_chord:
            score = edit.auto_chord(score, self.chord_key.strip() or None)
        if self.arpeggiator:
            score = self._group_chords(score)
            if self.tap_bpm > 0:
                score = edit.arpeggiate(score, self.arp_pattern, tap_bpm=self.tap_bpm)
            else:
                score = edit.arpeggiate(score, self.arp_pattern, self.arp_rate)
        return score

    def _group_chords(self, score: Score) -> Score:
        """Start notes pressed within ``CHORD_WINDOW_MS`` of a chord's first note with it (their ends stay)."""
        window = CHORD_WINDOW_MS / 1000.0 * self.tempo / 60.0 * score.resolution
        track = score.tracks[0]
        grouped, anchor = [], None
        for n in track.notes:
            if anchor is None or n.start - anchor > window:
                anchor = n.start
            grouped.append(Note(anchor, n.pitch, n.end - anchor, n.velocity))
        return score.with_track(0, track.replace(notes=tuple(edit._tidy(grouped))))

"""Record a hardware MIDI keyboard, in the kernel, into a :class:`~capsule_lib.score.Score`.

The console's keyboard recorder ("metronome (adjustable bpm), 5-second
countdown") for a keyboard plugged into the machine that runs the Jupyter
kernel.  Two layers:

* :class:`MidiRecorder` is the pure core: feed it ``mido`` messages stamped
  with seconds on a monotonic clock and ask for the :class:`Score`.  No ports,
  no threads, no sleeping, so it is tested exactly.
* :func:`record_midi` opens a port through a ``mido`` backend (python-rtmidi
  by default), stamps each message as it arrives, fires the metronome and
  countdown callbacks, and stops after ``seconds``, after a silence, when a
  ``stop`` event is set, or when the user interrupts the kernel (the notebook
  ■ button); it always returns what was recorded.  The clock and sleep are
  injectable, so tests drive it with fake time and a loopback backend.

Timing.  Beat 0 (step 0) is the moment the countdown ends.  A message at
``t`` seconds lands on step ``round((t - start) * tempo / 60 * resolution)``
(halves round up); every note lasts at least one step.

Documented choices for live playing:

* **Countdown.** ``countdown=True`` waits 5 seconds (:data:`COUNTDOWN_SECONDS`)
  before recording; a number waits that many seconds.  Notes played during
  the countdown are ignored (as are their note-offs), but a sustain pedal held
  down through the end of the countdown counts from step 0.
* **Metronome.** The kernel has no speaker of its own, so the metronome is
  a callback: ``on_beat(i)`` is called on every beat, with ``i < 0`` for the
  count-in beats that fall inside the countdown (the last is ``-1``) and
  ``i = 0, 1, 2, ...`` from the start of the recording.  A notebook shows a
  counter or plays a click; to *hear* the click with the recording afterwards,
  render with ``synthesize(score, metronome=True)`` or add
  :func:`capsule_lib.audio.metronome_track`.  The recorded score itself holds
  only what was played.
* **Sustain pedal** (CC64, value >= 64 down, < 64 up) is kept as
  ``Track.pedals`` intervals, exactly like :func:`capsule_lib.midi.read_midi`;
  ``resolve_sustain=True`` folds it into note lengths with
  :func:`capsule_lib.edit.resolve_sustain` (and clears the pedals).  A pedal
  still down at the stop is lifted there.
* **Note pairing.** A note-on with velocity 0 is a note-off.  A note-on for a
  pitch that is already sounding re-strikes the key: the sounding note ends
  there (MIDI files are paired first-in first-out instead, see
  :mod:`capsule_lib.midi`; a live key cannot be pressed twice, so a repeat
  means a lost note-off).  Notes still held at the stop end there.  Same-pitch
  collisions left after rounding are tidied as :func:`capsule_lib.edit.quantize`
  does.  CC123 (all notes off) releases every held key of its track.
* **Channels.** Channel 10 (index 9, drum pads) is kept as a separate drum
  track named ``"drums"`` after the melody; every other channel goes into
  track 0, named ``"melody"``, which is always present (possibly empty).
  Program changes from the keyboard are ignored; ``program`` sets the
  instrument.
* **No MIDI system.** Without ALSA/CoreMIDI/WinMM, python-rtmidi raises
  ``SystemError`` (an ``OSError``); :func:`list_midi_ports` then returns ``[]``
  and :func:`record_midi` raises ``CapsuleError("no MIDI ports: ...")``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from . import edit
from .edit import MAX_TEMPO, MIN_TEMPO, _as_float, _as_int, _tidy
from .errors import CapsuleError
from .midi import MAX_BEATS, MAX_NOTES
from .score import DEFAULT_RESOLUTION, Note, Score, Track

__all__ = [
    "list_midi_ports",
    "midi_status",
    "record_midi",
    "MidiRecorder",
    "COUNTDOWN_SECONDS",
    "POLL_SECONDS",
]

#: Length of ``countdown=True``, as in the console.
COUNTDOWN_SECONDS = 5.0
#: Longest sleep between two looks at the port (the metronome's precision).
POLL_SECONDS = 0.005

_DRUM_CHANNEL = 9
_SUSTAIN, _ALL_SOUND_OFF, _ALL_NOTES_OFF = 64, 120, 123
#: What MIDI libraries raise when there is no MIDI system (no ALSA sequencer,
#: no rtmidi build, an unknown MIDO_BACKEND): python-rtmidi's SystemError is an
#: OSError; mido raises ValueError for an API that is not compiled in.
_NO_MIDI_ERRORS = (SystemError, OSError, RuntimeError, ImportError, ValueError)


# -- ports ------------------------------------------------------------------------
def _backend(backend):
    """``None``: mido's default backend; a string: ``mido.Backend(name)``; else as given."""
    import mido

    if backend is None:
        return mido
    if isinstance(backend, str):
        return mido.Backend(backend, load=True)
    return backend


def _error_text(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 for a moment: ALSA's C library prints its failures there,
    and in a notebook (which captures fd 2) that noise would land under the cell."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _probe(backend=None) -> tuple[list[str], str | None]:
    """Input port names and, where the MIDI system is missing, why."""
    try:
        with _quiet_stderr():
            return list(_backend(backend).get_input_names()), None
    except _NO_MIDI_ERRORS as exc:
        return [], f"no MIDI system found: {_error_text(exc)}"


def list_midi_ports(backend=None) -> list[str]:
    """Names of the MIDI input ports a keyboard can be recorded from.

    Parameters
    ----------
    backend : None, str or backend object
        ``None`` uses mido's default backend (python-rtmidi, or ``$MIDO_BACKEND``);
        a string names a backend module (``mido.Backend(name)``); anything with
        ``get_input_names()`` and ``open_input()`` is used as it is.

    Returns
    -------
    list of str
        Empty when no port exists *or* there is no MIDI system at all (e.g. no
        ALSA sequencer in a container): the error is caught, never raised.
    """
    return _probe(backend)[0]


def midi_status(backend=None) -> str:
    """A one-line account of the MIDI inputs, for a notebook to print.

    Examples: ``"2 MIDI input ports: A, B"``, ``"no MIDI ports (none connected)"``,
    ``"no MIDI ports (no MIDI system found: ...)"``.
    """
    names, problem = _probe(backend)
    if not names:
        return f"no MIDI ports ({problem or 'none connected'})"
    plural = "port" if len(names) == 1 else "ports"
    return f"{len(names)} MIDI input {plural}: {', '.join(names)}"


def _choose_port(names: list[str], problem: str | None, port) -> str:
    if not names:
        reason = problem or "none connected; plug in a MIDI keyboard and run again"
        raise CapsuleError(f"no MIDI ports: {reason}")
    if port is None:
        return names[0]
    if isinstance(port, int) and not isinstance(port, bool):
        if not -len(names) <= port < len(names):
            raise CapsuleError(f"MIDI port {port} does not exist (ports: {', '.join(names)})")
        return names[port]
    if port in names:
        return port
    matches = [n for n in names if str(port).lower() in n.lower()]
    if len(matches) == 1:
        return matches[0]
    what = "matches several" if matches else "matches no"
    raise CapsuleError(f"MIDI port {port!r} {what} input port (ports: {', '.join(names)})")


# -- the pure core ------------------------------------------------------------------
def _check_tempo(tempo) -> float:
    tempo = _as_float(tempo, "tempo")
    if not MIN_TEMPO <= tempo <= MAX_TEMPO:
        raise CapsuleError(f"tempo {tempo:g} bpm is outside {MIN_TEMPO}-{MAX_TEMPO}")
    return tempo


class MidiRecorder:
    """Turn live MIDI messages, stamped in seconds, into a :class:`Score`.

    Parameters
    ----------
    tempo : float
        Beats per minute the player plays to (40-160): fixes seconds → beats.
    resolution : int
        Steps per beat of the score.
    start_time : float
        Clock reading of beat 0; earlier messages are ignored (the countdown),
        except that a sustain pedal held through ``start_time`` counts from 0.
    program : int
        General MIDI program of the melody track.

    Notes
    -----
    Feed messages in arrival order with :meth:`feed`; call :meth:`stop` once
    at the end (later messages are ignored).  :meth:`score` never changes the
    recorder, so it can be called for a live preview.  See the module
    docstring for pairing, pedal and channel rules.
    """

    def __init__(
        self, tempo: float, resolution: int = DEFAULT_RESOLUTION, start_time: float = 0.0, *, program: int = 0
    ):
        self.tempo = _check_tempo(tempo)
        self.resolution = _as_int(resolution, "resolution")
        if self.resolution < 1:
            raise CapsuleError(f"resolution {self.resolution} must be at least 1 step per beat")
        self.program = _as_int(program, "program")
        if not 0 <= self.program <= 127:
            raise CapsuleError(f"program {self.program} is outside the General MIDI range 0-127")
        self.start_time = _as_float(start_time, "start time")
        self.stop_time: float | None = None
        self.last_time: float | None = None
        #: Clock reading of the latest note-on/off inside the recording.
        self.last_note_time: float | None = None
        self._notes: dict[bool, list[Note]] = {False: [], True: []}  # key: is_drum
        self._open: dict[tuple[bool, int], tuple[int, int]] = {}  # (is_drum, pitch) -> (start step, velocity)
        self._pedals: list[tuple[int, int]] = []
        self._pedal_down: int | None = None  # step the pedal went down
        self._pedal_before_start = False

    # -- time ---------------------------------------------------------------------
    def step(self, t: float) -> int:
        """The step (relative to ``start_time``) of clock reading ``t``; halves round up."""
        return math.floor((t - self.start_time) * self.tempo * self.resolution / 60.0 + 0.5)

    @property
    def n_notes(self) -> int:
        """Notes finished so far plus keys still held."""
        return len(self._notes[False]) + len(self._notes[True]) + len(self._open)

    @property
    def held(self) -> int:
        """How many keys are down right now."""
        return len(self._open)

    # -- input ----------------------------------------------------------------------
    def feed(self, message, t: float) -> None:
        """Record one ``mido.Message`` that arrived at clock reading ``t`` (seconds).

        Note on/off (velocity-0 note-on included), CC64 sustain and CC120/123
        are used; every other message is ignored, as is anything before
        ``start_time`` or after :meth:`stop`.
        """
        kind = getattr(message, "type", None)
        if kind not in ("note_on", "note_off", "control_change"):
            return
        if self.stop_time is not None and t > self.stop_time:
            return
        drum = message.channel == _DRUM_CHANNEL
        if t < self.start_time:
            if kind == "control_change" and message.control == _SUSTAIN and not drum:
                self._pedal_before_start = message.value >= 64
            return
        if self.last_time is None and self._pedal_before_start:
            self._pedal_down = 0
        self.last_time = t
        step = self.step(t)
        if kind == "control_change":
            if drum:
                if message.control in (_ALL_NOTES_OFF, _ALL_SOUND_OFF):
                    self._release_all(True, step)
                return
            if message.control == _SUSTAIN:
                if message.value >= 64 and self._pedal_down is None:
                    self._pedal_down = step
                elif message.value < 64 and self._pedal_down is not None:
                    self._lift_pedal(step)
            elif message.control in (_ALL_NOTES_OFF, _ALL_SOUND_OFF):
                self._release_all(False, step)
            return
        self.last_note_time = t
        key = (drum, message.note)
        if kind == "note_on" and message.velocity > 0:
            if key in self._open:  # re-strike without a note-off
                self._release(key, step)
            self._open[key] = (step, message.velocity)
        elif key in self._open:
            self._release(key, step)

    def stop(self, t: float) -> None:
        """End the recording at clock reading ``t``: held keys and the pedal end there."""
        self.stop_time = max(float(t), self.start_time)

    def _release(self, key: tuple[bool, int], step: int) -> None:
        start, velocity = self._open.pop(key)
        self._notes[key[0]].append(Note(start, key[1], max(step - start, 1), velocity))

    def _release_all(self, drum: bool, step: int) -> None:
        for key in [k for k in self._open if k[0] == drum]:
            self._release(key, step)

    def _lift_pedal(self, step: int) -> None:
        if step > self._pedal_down:
            self._pedals.append((self._pedal_down, step))
        self._pedal_down = None

    # -- output ---------------------------------------------------------------------
    def score(
        self, end_time: float | None = None, *, resolve_sustain: bool = False, quantize: bool | int = False
    ) -> Score:
        """The recording so far as a score at ``tempo`` (4/4).

        Parameters
        ----------
        end_time : float, optional
            Where held keys and a held pedal end; default the :meth:`stop`
            time, else the latest message.
        resolve_sustain : bool
            Fold the pedal into note lengths (:func:`capsule_lib.edit.resolve_sustain`);
            otherwise the pedal is kept in ``Track.pedals``.
        quantize : bool or int
            ``True`` snaps onto 16th notes, an int onto that many steps
            (:func:`capsule_lib.edit.quantize`), after any sustain folding.

        Returns
        -------
        Score
            Track 0 ``"melody"`` (always there, perhaps empty); a ``"drums"``
            track follows if channel 10 was played.
        """
        if end_time is None:
            end_time = self.stop_time if self.stop_time is not None else self.last_time
        end = max(self.step(end_time), 0) if end_time is not None else 0
        notes = {drum: list(found) for drum, found in self._notes.items()}
        for (drum, pitch), (start, velocity) in self._open.items():
            notes[drum].append(Note(start, pitch, max(end - start, 1), velocity))
        pedals = list(self._pedals)
        down = self._pedal_down
        if down is None and self.last_time is None and self._pedal_before_start:
            down = 0
        if down is not None and end > down:
            pedals.append((down, end))
        tracks = [Track(name="melody", program=self.program, notes=tuple(_tidy(notes[False])), pedals=tuple(pedals))]
        if notes[True]:
            tracks.append(Track(name="drums", is_drum=True, notes=tuple(_tidy(notes[True]))))
        score = Score(tracks=tuple(tracks), tempo=self.tempo, resolution=self.resolution)
        if resolve_sustain:
            score = edit.resolve_sustain(score)
        if quantize is True:
            score = edit.quantize(score)
        elif quantize is not False and quantize is not None:
            score = edit.quantize(score, grid=quantize)
        return score


# -- the live loop ------------------------------------------------------------------
def _open_input(backend, name: str, on_arrival: Callable[[Any], None]):
    """Open ``name`` with a callback (exact arrival times); fall back to polling."""
    try:
        return backend.open_input(name, callback=on_arrival), False
    except (TypeError, NotImplementedError) + _NO_MIDI_ERRORS:
        pass  # perhaps a backend without callbacks: try again and poll
    try:
        return backend.open_input(name), True
    except _NO_MIDI_ERRORS as exc:
        raise CapsuleError(f"could not open MIDI port {name!r}: {_error_text(exc)}") from None


def record_midi(
    port: str | int | None = None,
    *,
    tempo: float = 100,
    seconds: float | None = None,
    stop_after_silence: float | None = None,
    stop=None,
    countdown: bool | float = True,
    metronome: bool = True,
    on_beat: Callable[[int], Any] | None = None,
    on_message: Callable[[Any, int], Any] | None = None,
    resolution: int = DEFAULT_RESOLUTION,
    quantize: bool | int = False,
    resolve_sustain: bool = False,
    program: int = 0,
    backend=None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> Score:
    """Record a MIDI keyboard into a :class:`Score`, with countdown and metronome.

    Parameters
    ----------
    port : str, int or None
        Input port: ``None`` takes the first, an int indexes
        :func:`list_midi_ports`, a string is a name or a unique part of one
        (case-insensitive).
    tempo : float
        Beats per minute of the metronome and of the score (40-160).
    seconds : float, optional
        Stop this long after the countdown ends.
    stop_after_silence : float, optional
        After the first note, stop once no key has been down and no note
        played for this many seconds.
    stop : threading.Event or similar, optional
        Stop as soon as ``stop.is_set()`` (e.g. set by a widget's button).
    countdown : bool or float
        ``True`` waits :data:`COUNTDOWN_SECONDS` (5) before recording, a number
        that many seconds, ``False`` none.  Notes during it are ignored.
    metronome : bool
        Call ``on_beat`` on every beat (count-in included); ``False`` never calls it.
    on_beat : callable, optional
        ``on_beat(i)``: beat ``i`` has come, ``i < 0`` during the countdown,
        0 at the start of the recording.  Called from this thread.
    on_message : callable, optional
        ``on_message(message, step)`` for every message received (step < 0
        during the countdown), for a live display.  Called from this thread.
    resolution, quantize, resolve_sustain, program
        Passed to :class:`MidiRecorder` and :meth:`MidiRecorder.score`.
    backend : None, str or backend object
        As for :func:`list_midi_ports`.
    clock, sleep : callable, optional
        Monotonic seconds and a sleep (defaults :func:`time.monotonic`,
        :func:`time.sleep`); tests inject fake time.
    poll_seconds : float
        Longest sleep between looks at the port and the metronome.

    Returns
    -------
    Score
        What was played; empty (one empty ``"melody"`` track) if nothing was.
        With no stop condition it records until the kernel is interrupted;
        the interrupt is caught and the recording returned.  It also stops at
        :data:`capsule_lib.midi.MAX_BEATS` beats or ``MAX_NOTES`` notes.

    Raises
    ------
    CapsuleError
        ``"no MIDI ports: ..."`` when no port exists or there is no MIDI
        system; an unknown port; a tempo outside 40-160; bad durations.
    """
    tempo = _check_tempo(tempo)
    limits = {}
    for label, value in (("seconds", seconds), ("stop_after_silence", stop_after_silence)):
        if value is not None:
            limits[label] = _as_float(value, label)
            if limits[label] <= 0:
                raise CapsuleError(f"{label} must be positive, not {value!r}")
    countdown_s = (
        COUNTDOWN_SECONDS if countdown is True else 0.0 if countdown is False else _as_float(countdown, "countdown")
    )
    if countdown_s < 0:
        raise CapsuleError(f"countdown {countdown_s:g} seconds is negative")
    poll_seconds = _as_float(poll_seconds, "poll_seconds")
    if poll_seconds <= 0:
        raise CapsuleError(f"poll_seconds must be positive, not {poll_seconds:g}")
    # Validate resolution, program and quantize before touching any port.
    MidiRecorder(tempo, resolution, program=program).score(quantize=quantize)
    clock = clock or time.monotonic
    sleep = sleep or time.sleep

    backend = _backend(backend)
    names, problem = _probe(backend)
    name = _choose_port(names, problem, port)
    inbox: deque = deque()  # (time, message); deque appends are thread-safe

    def on_arrival(message):  # may run on the MIDI library's thread: stamp and queue only
        inbox.append((clock(), message))

    inport, polling = _open_input(backend, name, on_arrival)
    start = clock() + countdown_s
    recorder = MidiRecorder(tempo, resolution, start, program=program)
    beat_seconds = 60.0 / tempo
    beat = -math.floor(countdown_s / beat_seconds + 1e-9)  # the next beat to announce
    end = start + limits["seconds"] if "seconds" in limits else None
    silence = limits.get("stop_after_silence")
    max_end = start + MAX_BEATS * beat_seconds
    if end is not None:
        recorder.stop(end)  # messages stamped after the end are never recorded

    def take(up_to: float | None = None):
        while inbox:
            t, message = inbox.popleft()
            recorder.feed(message, t)
            if on_message is not None and (up_to is None or t <= up_to):
                on_message(message, recorder.step(t))

    stop_at = None
    try:
        while True:
            now = clock()
            if polling:
                inbox.extend((now, m) for m in inport.iter_pending())
            take()
            due = now + 1e-9  # sums of float sleeps land a hair early
            while (
                metronome and start + beat * beat_seconds <= due and (end is None or start + beat * beat_seconds < end)
            ):
                if on_beat is not None:
                    on_beat(beat)
                beat += 1
            quiet_until = None
            if silence is not None and recorder.last_note_time is not None and recorder.held == 0:
                quiet_until = recorder.last_note_time + silence
            if end is not None and due >= end:
                stop_at = end
            elif quiet_until is not None and due >= quiet_until:
                stop_at = quiet_until
            elif stop is not None and stop.is_set():
                stop_at = now
            elif now >= max_end or recorder.n_notes >= MAX_NOTES:
                stop_at = now
            if stop_at is not None:
                break
            wake = now + poll_seconds
            for deadline in (start + beat * beat_seconds if metronome else None, end, quiet_until):
                if deadline is not None:
                    wake = min(wake, deadline)
            sleep(max(wake - now, 0.0))
    except KeyboardInterrupt:  # the notebook's stop button: keep what was played
        stop_at = clock()
    finally:
        try:
            inport.close()
        except Exception:  # closing must never hide the recording
            pass
    recorder.stop(stop_at if end is None else min(stop_at, end))
    take(stop_at)
    return recorder.score(resolve_sustain=resolve_sustain, quantize=quantize)

"""The one score type passed everywhere: tracks of notes on an integer step grid.

Times are integers in *steps*; ``resolution`` is the number of steps per beat
(quarter note).  Positions are musical (beats), so tempo changes never move a
note: they only change how fast the beats go by.  Everything is immutable;
editing functions return new scores.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from numbers import Real

from .errors import CapsuleError

__all__ = ["Note", "Track", "Score", "DEFAULT_RESOLUTION", "MODEL_RESOLUTION", "MIN_BPM", "MAX_BPM"]

#: Steps per beat used when importing MIDI: fine enough for 16ths and triplets.
DEFAULT_RESOLUTION = 24
#: Steps per beat the generative models work at (16th notes).
MODEL_RESOLUTION = 4
#: The tempo range a MIDI file can hold.  ``set_tempo`` stores 1 .. 0xFFFFFF microseconds
#: per beat; the slow end is rounded *up* to 1/1000 bpm (tempos are kept to 1/1000 bpm), so
#: every tempo a score may hold is written and read back without leaving the range.
MIN_BPM = 3.577  # 60e6 / 3.577 = 16 773 834 us <= 0xFFFFFF; 3.576 would need 16 778 523
MAX_BPM = 60_000_000.0  # 1 us per beat


def _check_bpm(bpm: float, what: str) -> None:
    # A score never holds a tempo MIDI cannot store, so every score can be written.
    if isinstance(bpm, bool) or not isinstance(bpm, Real):
        raise CapsuleError(f"{what} must be a number of beats per minute, not {bpm!r}")
    if not MIN_BPM <= bpm <= MAX_BPM:  # also refuses NaN
        raise CapsuleError(f"{what} {bpm:g} bpm is outside the range MIDI can store ({MIN_BPM:g}-{MAX_BPM:,.0f} bpm)")


@dataclass(frozen=True, slots=True, order=True)
class Note:
    """One note: ``start`` and ``duration`` in steps, MIDI ``pitch`` and ``velocity``."""

    start: int
    pitch: int
    duration: int
    velocity: int = 100

    def __post_init__(self):
        if not 0 <= self.pitch <= 127:
            raise CapsuleError(f"note pitch {self.pitch} is outside the MIDI range 0-127")
        if not 1 <= self.velocity <= 127:
            raise CapsuleError(f"note velocity {self.velocity} is outside 1-127")
        if self.start < 0:
            raise CapsuleError(f"note start {self.start} is negative")
        if self.duration < 1:
            raise CapsuleError(f"note duration {self.duration} must be at least one step")

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class Track:
    """An instrument part: General MIDI ``program`` (0-127), drum flag, sorted notes.

    ``pedals`` holds sustain-pedal (CC64) intervals ``(down_step, up_step)``;
    :func:`capsule_lib.edit.resolve_sustain` folds them into note lengths.
    """

    name: str = ""
    program: int = 0
    is_drum: bool = False
    notes: tuple[Note, ...] = ()
    pedals: tuple[tuple[int, int], ...] = ()

    def __post_init__(self):
        if not 0 <= self.program <= 127:
            raise CapsuleError(f"program {self.program} is outside the General MIDI range 0-127")
        notes = tuple(sorted(self.notes))
        object.__setattr__(self, "notes", notes)
        object.__setattr__(self, "pedals", tuple(sorted(tuple(p) for p in self.pedals)))

    @property
    def end(self) -> int:
        """The step after the last sounding note (0 for an empty track)."""
        return max((n.end for n in self.notes), default=0)

    def replace(self, **changes) -> Track:
        return replace(self, **changes)

    def pitch_range(self) -> tuple[int, int] | None:
        if not self.notes:
            return None
        pitches = [n.pitch for n in self.notes]
        return min(pitches), max(pitches)


@dataclass(frozen=True, slots=True)
class Score:
    """A piece of music.

    Parameters
    ----------
    tracks : tuple of Track
        The parts; by convention the melody is track 0.
    tempo : float
        Beats per minute at the start.
    time_signature : (int, int)
        Numerator and denominator of the (first) time signature.
    resolution : int
        Steps per beat (quarter note).
    tempo_changes : tuple of (step, bpm)
        Tempo changes after the start, kept so MIDI files round-trip.
    title : str
        A human title, carried into MIDI as the sequence name.
    """

    tracks: tuple[Track, ...] = ()
    tempo: float = 120.0
    time_signature: tuple[int, int] = (4, 4)
    resolution: int = DEFAULT_RESOLUTION
    tempo_changes: tuple[tuple[int, float], ...] = ()
    title: str = ""

    def __post_init__(self):
        object.__setattr__(self, "tracks", tuple(self.tracks))
        object.__setattr__(self, "time_signature", tuple(int(x) for x in self.time_signature))
        object.__setattr__(self, "tempo_changes", tuple((int(s), float(b)) for s, b in self.tempo_changes))
        if self.resolution < 1:
            raise CapsuleError(f"resolution {self.resolution} must be at least 1 step per beat")
        _check_bpm(self.tempo, "tempo")
        for step, bpm in self.tempo_changes:
            if step < 0:
                raise CapsuleError(f"tempo change at step {step}: steps cannot be negative")
            _check_bpm(bpm, f"tempo change at step {step}:")
        num, den = self.time_signature
        if num < 1 or den < 1 or den & (den - 1):
            raise CapsuleError(f"time signature {num}/{den} is not valid")

    # -- shape -------------------------------------------------------------
    @property
    def steps_per_bar(self) -> int:
        """Steps in one bar; rounds up for signatures that do not fill whole steps."""
        num, den = self.time_signature
        return max(1, -(-num * 4 * self.resolution // den))

    @property
    def end(self) -> int:
        """The step after the last sounding note."""
        return max((t.end for t in self.tracks), default=0)

    @property
    def n_bars(self) -> int:
        return -(-self.end // self.steps_per_bar)

    @property
    def notes(self) -> tuple[Note, ...]:
        """All notes of all tracks, sorted (handy for single-track melodies)."""
        return tuple(sorted(n for t in self.tracks for n in t.notes))

    def seconds_per_step(self) -> float:
        return 60.0 / (self.tempo * self.resolution)

    def step_to_seconds(self, step: float) -> float:
        """Wall-clock time of ``step``, honouring tempo changes."""
        seconds, last_step, bpm = 0.0, 0, self.tempo
        for change_step, change_bpm in self.tempo_changes:
            if change_step >= step:
                break
            seconds += (change_step - last_step) * 60.0 / (bpm * self.resolution)
            last_step, bpm = change_step, change_bpm
        return seconds + (step - last_step) * 60.0 / (bpm * self.resolution)

    def tempo_map(self) -> Callable[[float], float]:
        """``step -> seconds`` for many steps: :meth:`step_to_seconds` with the time up to
        each tempo change summed once, then a binary search per step.

        A piece with ``C`` tempo changes costs ``O(log C)`` per step instead of ``O(C)``
        (encoding a long piece with thousands of changes is no longer quadratic), with
        the same arithmetic in the same order, so the same floats.
        """
        steps = [s for s, _ in self.tempo_changes]
        if any(a > b for a, b in zip(steps, steps[1:])):
            return self.step_to_seconds  # unsorted changes: keep the loop's exact meaning
        res = self.resolution
        starts, bpms, before = [0], [self.tempo], [0.0]
        seconds, last_step, bpm = 0.0, 0, self.tempo
        for change_step, change_bpm in self.tempo_changes:
            seconds += (change_step - last_step) * 60.0 / (bpm * res)
            last_step, bpm = change_step, change_bpm
            starts.append(change_step)
            bpms.append(change_bpm)
            before.append(seconds)

        def seconds_at(step: float) -> float:
            i = bisect_left(steps, step)  # the changes strictly before ``step`` are in force
            return before[i] + (step - starts[i]) * 60.0 / (bpms[i] * res)

        return seconds_at

    @property
    def duration_seconds(self) -> float:
        return self.step_to_seconds(self.end)

    # -- construction --------------------------------------------------------
    def replace(self, **changes) -> Score:
        return replace(self, **changes)

    def with_track(self, index: int, track: Track) -> Score:
        tracks = list(self.tracks)
        tracks[index] = track
        return replace(self, tracks=tuple(tracks))

    def track_index(self, track: int | str) -> int:
        """Resolve a track given by index or name; raises CapsuleError if absent."""
        if isinstance(track, str):
            for i, t in enumerate(self.tracks):
                if t.name == track:
                    return i
            raise CapsuleError(f"no track named {track!r} (tracks: {', '.join(t.name for t in self.tracks) or 'none'})")
        if not -len(self.tracks) <= track < len(self.tracks):
            raise CapsuleError(f"track {track} does not exist (the score has {len(self.tracks)} tracks)")
        return track % len(self.tracks)

    def with_resolution(self, resolution: int) -> Score:
        """Re-grid to ``resolution`` steps per beat (rounding; notes keep ≥ 1 step)."""
        if resolution == self.resolution:
            return self
        if resolution < 1:
            raise CapsuleError(f"resolution {resolution} must be at least 1 step per beat")
        ratio = Fraction(resolution, self.resolution)

        def conv(x: int) -> int:
            return int(round(x * ratio))

        tracks = []
        for t in self.tracks:
            notes = []
            for n in t.notes:
                start = conv(n.start)
                end = max(conv(n.end), start + 1)
                notes.append(Note(start, n.pitch, end - start, n.velocity))
            pedals = tuple((conv(a), max(conv(b), conv(a))) for a, b in t.pedals)
            tracks.append(replace(t, notes=tuple(notes), pedals=pedals))
        changes = tuple((conv(s), b) for s, b in self.tempo_changes)
        return replace(self, tracks=tuple(tracks), resolution=resolution, tempo_changes=changes)

    @classmethod
    def from_notes(
        cls,
        notes: Iterable[Note | Sequence],
        *,
        resolution: int = DEFAULT_RESOLUTION,
        tempo: float = 120.0,
        time_signature: tuple[int, int] = (4, 4),
        program: int = 0,
        name: str = "melody",
        title: str = "",
    ) -> Score:
        """A one-track score from ``Note`` objects or ``(start, pitch, duration[, velocity])`` tuples."""
        built = tuple(n if isinstance(n, Note) else Note(*n) for n in notes)
        return cls(
            tracks=(Track(name=name, program=program, notes=built),),
            tempo=tempo,
            time_signature=time_signature,
            resolution=resolution,
            title=title,
        )

    def __repr__(self) -> str:  # short: scores can hold thousands of notes
        parts = ", ".join(f"{t.name or '?'}:{len(t.notes)}" for t in self.tracks)
        num, den = self.time_signature
        return (
            f"Score({self.title!r}, {self.tempo:g} bpm, {num}/{den}, {self.resolution} steps/beat, "
            f"{self.n_bars} bars, tracks=[{parts}])"
        )

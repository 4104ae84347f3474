"""Pure editing functions: each takes a :class:`~capsule_lib.score.Score` and returns a new one.

These are the music studio's edit operations (tempo, transpose, rhythm assist,
piano-roll note edits, cropping) and the keyboard's features (arpeggiator with
tap tempo, auto-chord, sustain pedal, instrument choice), shared by the
notebooks, the ``capsule edit`` command and the widgets.  Nothing is ever
mutated; out-of-range values raise :class:`~capsule_lib.errors.CapsuleError`.

Piano-roll edits identify a note by a *cell* it covers: ``(step, pitch)`` with
``note.start <= step < note.end``, which is what a click on the roll gives.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from numbers import Integral, Real

import numpy as np

from .errors import CapsuleError
from .keys import SCALES, detect_key, key_name, parse_key
from .score import MAX_BPM, MIN_BPM, Note, Score, Track

__all__ = [
    "MIN_TEMPO",
    "MAX_TEMPO",
    "MAX_TRANSPOSE",
    "MAX_GRID_BEATS",
    "set_tempo",
    "transpose",
    "octave_shift",
    "quantize",
    "humanize",
    "add_note",
    "remove_note",
    "toggle_note",
    "change_pitch",
    "change_length",
    "crop_bars",
    "tap_tempo",
    "arpeggiate",
    # key finding lives in capsule_lib.keys; auto_chord uses it and these names stay here too
    "detect_key",
    "parse_key",
    "key_name",
    "auto_chord",
    "resolve_sustain",
    "set_instrument",
]

#: Tempo range of the music studio (bpm, inclusive).
MIN_TEMPO, MAX_TEMPO = 40, 160
#: Largest transposition in semitones, either way.
MAX_TRANSPOSE = 12
#: Coarsest quantize grid, in beats (four bars of 4/4): a wider grid is no rhythm.
MAX_GRID_BEATS = 16

ARP_PATTERNS = ("up", "down", "updown", "random")


# -- validation helpers --------------------------------------------------------
def _as_int(value, what: str) -> int:
    """``value`` as an int; integral floats pass, bools and fractions do not."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise CapsuleError(f"{what} must be a whole number, not {value!r}")
    if isinstance(value, Integral):
        return int(value)
    if not math.isfinite(value) or value != int(value):
        raise CapsuleError(f"{what} must be a whole number, not {value!r}")
    return int(value)


def _as_float(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise CapsuleError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def _check_pitch(pitch, what: str = "pitch") -> int:
    pitch = _as_int(pitch, what)
    if not 0 <= pitch <= 127:
        raise CapsuleError(f"{what} {pitch} is outside the MIDI range 0-127")
    return pitch


def _sixteenth(score: Score) -> int:
    return max(1, score.resolution // 4)


def _pitched_track(score: Score, track, action: str) -> int:
    index = score.track_index(track)
    if score.tracks[index].is_drum:
        name = score.tracks[index].name or index
        raise CapsuleError(f"track {name!r} is a drum track; {action} needs a pitched track")
    return index


def _with_notes(score: Score, index: int, notes: Iterable[Note]) -> Score:
    return score.with_track(index, score.tracks[index].replace(notes=tuple(notes)))


def _tidy(notes: Iterable[Note]) -> list[Note]:
    """Resolve same-pitch collisions so a track stays playable as MIDI.

    Two notes of one pitch starting on the same step become one: the longer
    (then the louder) is kept.  A note still sounding when the same pitch starts
    again is cut at that start, as a keyboard would re-strike the key.
    """
    by_pitch: dict[int, dict[int, Note]] = defaultdict(dict)
    for n in notes:
        kept = by_pitch[n.pitch].get(n.start)
        if kept is None or (n.duration, n.velocity) > (kept.duration, kept.velocity):
            by_pitch[n.pitch][n.start] = n
    out = []
    for starts in by_pitch.values():
        ordered = [starts[s] for s in sorted(starts)]
        for n, nxt in zip(ordered, ordered[1:] + [None]):
            if nxt is not None and n.end > nxt.start:
                n = Note(n.start, n.pitch, nxt.start - n.start, n.velocity)
            out.append(n)
    return sorted(out)


# -- tempo and pitch -------------------------------------------------------------
def set_tempo(score: Score, bpm: float) -> Score:
    """Set the tempo to ``bpm`` (40-160 inclusive).

    Later tempo changes are scaled by the same factor, so a piece that speeds
    up keeps speeding up in proportion -- within the tempos a MIDI file can store
    (:data:`~capsule_lib.score.MIN_BPM` .. :data:`~capsule_lib.score.MAX_BPM`): a
    change scaled past either end stays at that end.  Note positions (in steps)
    never move.

    Raises
    ------
    CapsuleError
        If ``bpm`` is outside 40-160.
    """
    bpm = _as_float(bpm, "tempo")
    if not MIN_TEMPO <= bpm <= MAX_TEMPO:
        raise CapsuleError(f"tempo {bpm:g} bpm is outside {MIN_TEMPO}-{MAX_TEMPO}")
    factor = bpm / score.tempo
    changes = tuple(
        (step, min(max(round(change * factor, 3), MIN_BPM), MAX_BPM)) for step, change in score.tempo_changes
    )
    return score.replace(tempo=bpm, tempo_changes=changes)


def _shift_tracks(score: Score, indices: Sequence[int], semitones: int, what: str) -> Score:
    tracks = list(score.tracks)
    for i in indices:
        t = tracks[i]
        for n in t.notes:
            if not 0 <= n.pitch + semitones <= 127:
                raise CapsuleError(
                    f"{what} would move pitch {n.pitch} (step {n.start}) to {n.pitch + semitones}, "
                    "outside the MIDI range 0-127"
                )
        tracks[i] = t.replace(notes=tuple(Note(n.start, n.pitch + semitones, n.duration, n.velocity) for n in t.notes))
    return score.replace(tracks=tuple(tracks))


def transpose(score: Score, semitones: int) -> Score:
    """Move every pitched note by ``semitones`` (-12 to +12); drum tracks are untouched.

    Raises
    ------
    CapsuleError
        If ``semitones`` is out of range or a note would leave MIDI 0-127
        (nothing is clipped or dropped silently).
    """
    semitones = _as_int(semitones, "transposition")
    if not -MAX_TRANSPOSE <= semitones <= MAX_TRANSPOSE:
        raise CapsuleError(f"transposition {semitones:+d} semitones is outside -12 to +12")
    pitched = [i for i, t in enumerate(score.tracks) if not t.is_drum]
    return _shift_tracks(score, pitched, semitones, f"transposing by {semitones:+d}")


def octave_shift(score: Score, octaves: int, track: int | str | None = None) -> Score:
    """Move notes by ``12 * octaves`` semitones (the keyboard's octave up/down).

    ``track=None`` shifts every pitched track (drums stay); a named drum track
    is refused.  Any number of octaves is allowed as long as every note stays
    within MIDI 0-127.
    """
    octaves = _as_int(octaves, "octave shift")
    indices = (
        [i for i, t in enumerate(score.tracks) if not t.is_drum]
        if track is None
        else [_pitched_track(score, track, "an octave shift")]
    )
    return _shift_tracks(score, indices, 12 * octaves, f"shifting by {octaves:+d} octaves")


# -- rhythm assist ---------------------------------------------------------------
def _nearest_line(x: int, grid: int) -> int:
    # Integer arithmetic; halfway points go to the later line.
    return (2 * x + grid) // (2 * grid) * grid


def _toward(x: int, target: int, strength: float) -> int:
    return int(math.floor(x + strength * (target - x) + 0.5))


def quantize(score: Score, grid: int | None = None, strength: float = 1.0, *, durations: bool = True) -> Score:
    """Rhythm assist: pull note timing toward the nearest grid line.

    Parameters
    ----------
    score : Score
    grid : int, optional
        Grid spacing in steps, 1 .. ``MAX_GRID_BEATS`` (16) beats; default one 16th note
        (``resolution // 4``, at least 1).
    strength : float
        0 leaves the score unchanged, 1 snaps onto the grid, 0.5 moves each time
        half way (rounded to whole steps, halves later).
    durations : bool
        If true, note ends are pulled toward the grid too; otherwise each note
        keeps its length and simply moves with its start.

    Notes
    -----
    * Halfway between two grid lines counts as nearer the later one.
    * A note whose end would snap onto (or before) its start is instead given
      one grid cell, so short notes never vanish; every note keeps >= 1 step.
    * Collisions in a track are resolved after moving (all tracks, drums
      included): two notes of the same pitch landing on the same start become
      one, keeping the longer, then the louder; a note still sounding when its
      pitch starts again is cut at that start.  Notes of different pitch or
      different start are never lost.
    * Sustain-pedal intervals and tempo changes are left where they are.

    Raises
    ------
    CapsuleError
        If ``grid`` is outside 1 step .. 16 beats or ``strength`` is outside 0-1.
    """
    grid = _sixteenth(score) if grid is None else _as_int(grid, "quantize grid")
    if grid < 1:
        raise CapsuleError(f"quantize grid {grid} must be at least 1 step")
    if grid > MAX_GRID_BEATS * score.resolution:
        raise CapsuleError(
            f"quantize grid {grid} steps is longer than {MAX_GRID_BEATS} beats "
            f"({MAX_GRID_BEATS * score.resolution} steps at {score.resolution} steps per beat)"
        )
    strength = _as_float(strength, "quantize strength")
    if not 0.0 <= strength <= 1.0:
        raise CapsuleError(f"quantize strength {strength:g} is outside 0-1")
    if strength == 0.0:
        return score.replace()
    tracks = []
    for t in score.tracks:
        moved = []
        for n in t.notes:
            start_target = _nearest_line(n.start, grid)
            start = _toward(n.start, start_target, strength)
            if durations:
                end_target = _nearest_line(n.end, grid)
                if end_target <= start_target:
                    end_target = start_target + grid
                end = max(_toward(n.end, end_target, strength), start + 1)
            else:
                end = start + n.duration
            moved.append(Note(start, n.pitch, end - start, n.velocity))
        tracks.append(t.replace(notes=tuple(_tidy(moved))))
    return score.replace(tracks=tuple(tracks))


# -- piano-roll note edits ----------------------------------------------------------
def humanize(score: Score, spread: float = 0.12, *, seed: int = 0) -> Score:
    """A copy played the way a person plays: each note starts up to ``spread`` beats early or late.

    The opposite of :func:`quantize`, for showing what rhythm assist does when nothing was
    recorded yet.  Offsets are drawn uniformly from ``seed`` (the same seed, the same take);
    durations are kept, notes never start before 0, and same-pitch collisions are resolved
    as everywhere else.

    Raises
    ------
    CapsuleError
        For a ``spread`` outside 0-1 beat.
    """
    spread = _as_float(spread, "spread")
    if not 0 <= spread <= 1:
        raise CapsuleError(f"spread must lie between 0 and 1 beat, got {spread:g}")
    rng = np.random.default_rng(seed)
    reach = int(round(spread * score.resolution))
    tracks = []
    for track in score.tracks:
        moved = (
            [
                Note(max(0, n.start + int(rng.integers(-reach, reach + 1))), n.pitch, n.duration, n.velocity)
                for n in track.notes
            ]
            if reach
            else track.notes
        )
        tracks.append(track.replace(notes=tuple(_tidy(moved))))
    return score.replace(tracks=tuple(tracks))


def _find(track: Track, step: int, pitch: int) -> Note | None:
    # Overlapping same-pitch notes are rare; the latest started one is "on top".
    hits = [n for n in track.notes if n.pitch == pitch and n.start <= step < n.end]
    return max(hits, key=lambda n: n.start) if hits else None


def _require(score: Score, index: int, step, pitch) -> Note:
    step = _as_int(step, "step")
    pitch = _check_pitch(pitch)
    note = _find(score.tracks[index], step, pitch)
    if note is None:
        raise CapsuleError(
            f"no note of pitch {pitch} sounds at step {step} in track {score.tracks[index].name or index!r}"
        )
    return note


def _next_start(track: Track, pitch: int, after: int, ignore: Note | None = None) -> int | None:
    starts = [n.start for n in track.notes if n.pitch == pitch and n.start > after and n is not ignore]
    return min(starts, default=None)


def add_note(score: Score, pitch: int, start: int, duration: int, velocity: int = 100, track: int | str = 0) -> Score:
    """Add a note.

    A note that would run into a later note of the same pitch is shortened to
    end where that note starts.

    Raises
    ------
    CapsuleError
        For an invalid pitch, start, duration or velocity, or if a note of the
        same pitch already sounds at ``start``.
    """
    index = score.track_index(track)
    new = Note(
        _as_int(start, "start"), _check_pitch(pitch), _as_int(duration, "duration"), _as_int(velocity, "velocity")
    )
    t = score.tracks[index]
    if _find(t, new.start, new.pitch) is not None:
        raise CapsuleError(f"a note of pitch {new.pitch} already sounds at step {new.start}")
    nxt = _next_start(t, new.pitch, new.start)
    if nxt is not None and nxt < new.end:
        new = Note(new.start, new.pitch, nxt - new.start, new.velocity)
    return _with_notes(score, index, t.notes + (new,))


def remove_note(score: Score, pitch: int, start: int, track: int | str = 0) -> Score:
    """Remove the note of ``pitch`` sounding at step ``start`` (``note.start <= start < note.end``).

    Raises
    ------
    CapsuleError
        If no such note exists.
    """
    index = score.track_index(track)
    note = _require(score, index, start, pitch)
    return _with_notes(score, index, (n for n in score.tracks[index].notes if n is not note))


def toggle_note(score: Score, step: int, pitch: int, duration: int | None = None, track: int | str = 0) -> Score:
    """Double-click on a piano-roll cell: remove the note covering it, else add one there.

    The added note starts at ``step``, lasts ``duration`` steps (default one
    16th) with velocity 100, and is shortened if it would run into a later
    note of the same pitch.
    """
    index = score.track_index(track)
    step = _as_int(step, "step")
    pitch = _check_pitch(pitch)
    if _find(score.tracks[index], step, pitch) is not None:
        return remove_note(score, pitch, step, index)
    duration = _sixteenth(score) if duration is None else duration
    return add_note(score, pitch, step, duration, track=index)


def change_pitch(score: Score, pitch: int, start: int, new_pitch: int, track: int | str = 0) -> Score:
    """Drag a note up or down: the note covering cell ``(start, pitch)`` moves to ``new_pitch``.

    Raises
    ------
    CapsuleError
        If no note covers the cell, ``new_pitch`` is outside 0-127, or the
        moved note would overlap a note already at ``new_pitch``.
    """
    index = score.track_index(track)
    note = _require(score, index, start, pitch)
    new_pitch = _check_pitch(new_pitch, "new pitch")
    if new_pitch == note.pitch:
        return score.replace()
    t = score.tracks[index]
    for n in t.notes:
        if n.pitch == new_pitch and n.start < note.end and note.start < n.end:
            raise CapsuleError(f"pitch {new_pitch} already has a note at steps {n.start}-{n.end}")
    moved = Note(note.start, new_pitch, note.duration, note.velocity)
    return _with_notes(score, index, [moved if n is note else n for n in t.notes])


def change_length(score: Score, pitch: int, start: int, new_duration: int, track: int | str = 0) -> Score:
    """Drag a note's right edge: the note covering cell ``(start, pitch)`` lasts ``new_duration`` steps.

    A note lengthened into a later note of the same pitch stops where that
    note starts.

    Raises
    ------
    CapsuleError
        If no note covers the cell or ``new_duration < 1``.
    """
    index = score.track_index(track)
    note = _require(score, index, start, pitch)
    new_duration = _as_int(new_duration, "duration")
    if new_duration < 1:
        raise CapsuleError(f"note duration {new_duration} must be at least one step")
    t = score.tracks[index]
    nxt = _next_start(t, note.pitch, note.start, ignore=note)
    if nxt is not None:
        new_duration = min(new_duration, nxt - note.start)
    changed = Note(note.start, note.pitch, new_duration, note.velocity)
    return _with_notes(score, index, [changed if n is note else n for n in t.notes])


# -- cropping ------------------------------------------------------------------------
def crop_bars(score: Score, start_bar: int, end_bar: int) -> Score:
    """Keep bars ``[start_bar, end_bar)`` (0-based), shifted to start at step 0.

    Notes overlapping the window are clipped to it (a note held over the
    window's start begins again at 0), as are pedal intervals.  The tempo in
    force at the window's start becomes the score tempo.  ``end_bar`` may lie
    past the end of the music.

    Raises
    ------
    CapsuleError
        If ``start_bar < 0``, ``end_bar <= start_bar`` or ``start_bar`` is at or
        past the last bar.
    """
    start_bar = _as_int(start_bar, "start bar")
    end_bar = _as_int(end_bar, "end bar")
    if start_bar < 0 or end_bar <= start_bar:
        raise CapsuleError(f"bar range {start_bar}-{end_bar} is empty or negative (need 0 <= start < end)")
    if start_bar >= score.n_bars:
        raise CapsuleError(f"start bar {start_bar} is past the end of the {score.n_bars}-bar score")
    lo, hi = start_bar * score.steps_per_bar, end_bar * score.steps_per_bar

    def clip(a: int, b: int) -> tuple[int, int] | None:
        a, b = max(a, lo), min(b, hi)
        return (a - lo, b - lo) if b > a else None

    tracks = []
    for t in score.tracks:
        notes = []
        for n in t.notes:
            span = clip(n.start, n.end)
            if span:
                notes.append(Note(span[0], n.pitch, span[1] - span[0], n.velocity))
        pedals = tuple(span for a, b in t.pedals if (span := clip(a, b)))
        tracks.append(t.replace(notes=tuple(notes), pedals=pedals))
    tempo = score.tempo
    for step, bpm in score.tempo_changes:
        if step <= lo:
            tempo = bpm
    changes = tuple((step - lo, bpm) for step, bpm in score.tempo_changes if lo < step < hi)
    return score.replace(tracks=tuple(tracks), tempo=tempo, tempo_changes=changes)


# -- keyboard features ---------------------------------------------------------------
def tap_tempo(tap_times: Sequence[float]) -> float:
    """Tempo in bpm from tap times in seconds: 60 / the median interval.

    The median ignores one stray tap.  The result is not limited to 40-160
    (an arpeggio may run fast); :func:`set_tempo` checks that range.

    Raises
    ------
    CapsuleError
        With fewer than 2 taps or times that do not strictly increase.
    """
    try:
        times = [_as_float(x, "tap time") for x in tap_times]
    except TypeError:
        raise CapsuleError("tap times must be a sequence of seconds") from None
    if len(times) < 2:
        raise CapsuleError(f"tap tempo needs at least 2 taps, got {len(times)}")
    gaps = [b - a for a, b in zip(times, times[1:])]
    if min(gaps) <= 0:
        raise CapsuleError("tap times must strictly increase")
    return 60.0 / float(np.median(gaps))


def _arp_sequence(pitches: list[int], pattern: str, octaves: int) -> list[int]:
    up = sorted({p + 12 * k for k in range(octaves) for p in pitches})
    if up[-1] > 127:
        raise CapsuleError(f"an arpeggio over {octaves} octaves would reach pitch {up[-1]}, above 127")
    if pattern == "down":
        return up[::-1]
    if pattern == "updown":
        # Endpoints are not repeated: C E G E | C E G E ...
        return up + up[-2:0:-1]
    return up


def arpeggiate(
    score: Score,
    pattern: str = "up",
    rate: int | None = None,
    *,
    tap_bpm: float | None = None,
    track: int | str = 0,
    seed: int | None = None,
    octaves: int = 1,
) -> Score:
    """Turn chords into arpeggios, like the keyboard's arpeggiator.

    Notes of one track that start on the same step form a chord.  Each chord is
    replaced by its pitches played one after another, ``rate`` steps each,
    cycling through the pattern for as long as the chord lasts (its longest
    note) -- or until the next note or chord of the track starts, whichever is
    first, as a new chord takes over a real arpeggiator.  The last arpeggio
    note is cut to fit.  Each arpeggio note keeps the velocity of the chord
    note it repeats.

    Parameters
    ----------
    pattern : {"up", "down", "updown", "random"}
        "up" lowest to highest; "down" the reverse; "updown" (also written "up-down") up then down
        without repeating the top and bottom (C E G E C ...); "random" a
        pitch chosen at random for every step (reproducible with ``seed``).
    rate : int, optional
        Steps per arpeggio note; default one 16th (``resolution // 4``, >= 1).
    tap_bpm : float, optional
        A tapped tempo (e.g. from :func:`tap_tempo`); sets the rate so that one
        arpeggio note falls on each 16th of the tapped tempo while the score
        plays at its own: ``round(resolution / 4 * score.tempo / tap_bpm)``,
        at least 1.  Give ``rate`` or ``tap_bpm``, not both.
    track : int or str
        The track to arpeggiate; other tracks are untouched.
    seed : int, optional
        Seed for the "random" pattern.
    octaves : int
        1 or more; the pattern is extended upward by whole octaves (C E G C' E'
        G' for 2).  A single note is left as it is unless ``octaves > 1``, when
        it is arpeggiated over its octaves.

    Raises
    ------
    CapsuleError
        For an unknown pattern, ``rate < 1``, ``tap_bpm <= 0``, both ``rate``
        and ``tap_bpm``, ``octaves < 1``, an arpeggio reaching above pitch 127,
        or a drum track.

    Notes
    -----
    Same-pitch collisions in the result (a note left as it is still sounding
    when an arpeggio plays its pitch) are resolved by cutting the earlier note
    at the later one's start.
    """
    if isinstance(pattern, str) and pattern.replace("-", "").replace("_", "") == "updown":
        pattern = "updown"  # the console wrote "up-down"
    if pattern not in ARP_PATTERNS:
        raise CapsuleError(f"arpeggio pattern {pattern!r} is not one of {', '.join(ARP_PATTERNS)}")
    if rate is not None and tap_bpm is not None:
        raise CapsuleError("give an arpeggio rate or a tapped tempo, not both")
    if tap_bpm is not None:
        tap_bpm = _as_float(tap_bpm, "tapped tempo")
        if tap_bpm <= 0:
            raise CapsuleError(f"tapped tempo {tap_bpm:g} bpm must be positive")
        rate = max(1, int(math.floor(score.resolution / 4 * score.tempo / tap_bpm + 0.5)))
    rate = _sixteenth(score) if rate is None else _as_int(rate, "arpeggio rate")
    if rate < 1:
        raise CapsuleError(f"arpeggio rate {rate} must be at least 1 step")
    octaves = _as_int(octaves, "arpeggio octaves")
    if octaves < 1:
        raise CapsuleError(f"arpeggio octaves {octaves} must be at least 1")
    index = _pitched_track(score, track, "the arpeggiator")
    rng = random.Random(seed)

    chords: dict[int, list[Note]] = defaultdict(list)
    for n in score.tracks[index].notes:
        chords[n.start].append(n)
    starts = sorted(chords)
    out: list[Note] = []
    for start, nxt in zip(starts, starts[1:] + [None]):
        chord = chords[start]
        pitches = sorted({n.pitch for n in chord})
        if len(pitches) == 1 and octaves == 1:
            out.extend(chord)
            continue
        velocity = {n.pitch + 12 * k: n.velocity for k in range(octaves - 1, -1, -1) for n in chord}
        end = max(n.end for n in chord)
        if nxt is not None:
            end = min(end, nxt)
        sequence = _arp_sequence(pitches, pattern, octaves)
        for i, step in enumerate(range(start, end, rate)):
            pitch = rng.choice(sequence) if pattern == "random" else sequence[i % len(sequence)]
            out.append(Note(step, pitch, min(rate, end - step), velocity[pitch]))
    return _with_notes(score, index, _tidy(out))


def _triad(pitch: int, tonic: int, mode: str) -> tuple[int, int]:
    """Third and fifth above ``pitch``: diatonic if it is in the scale, else major."""
    scale = [(tonic + d) % 12 for d in SCALES[mode]]
    pc = pitch % 12
    if pc not in scale:
        return pitch + 4, pitch + 7
    degree = scale.index(pc)
    return tuple(pitch + (scale[(degree + k) % 7] - pc) % 12 for k in (2, 4))


def auto_chord(score: Score, key=None, track: int | str = 0, *, velocity_scale: float = 0.8) -> Score:
    """Add a triad under every note of a melody, with the note as its root.

    The third and fifth are the next-but-one and next-but-three scale steps
    *above* the note in ``key`` (so in C major D gives D-F-A and B gives
    B-D-F); a note outside the scale gets a major triad.  Chord notes share the
    melody note's start and duration, play at ``velocity_scale`` times its
    velocity, and go into the same track (as the keyboard's auto-chord plays
    them on the same instrument).

    A chord note is left out where that pitch already sounds in the track
    during it (the melody is never cut) or where it would be above pitch 127.

    Parameters
    ----------
    key : (int, str) or str, optional
        ``(tonic_pitch_class, "major" | "minor")`` or a name like "A minor";
        detected with :func:`detect_key` if omitted.
    velocity_scale : float
        In (0, 1]; chord velocity is at least 1.

    Raises
    ------
    CapsuleError
        For a bad key, velocity scale or a drum track.
    """
    velocity_scale = _as_float(velocity_scale, "chord velocity scale")
    if not 0 < velocity_scale <= 1:
        raise CapsuleError(f"chord velocity scale {velocity_scale:g} is outside (0, 1]")
    index = _pitched_track(score, track, "auto-chord")
    tonic, mode = detect_key(score) if key is None else parse_key(key)
    melody = score.tracks[index].notes
    sounding: dict[int, list[Note]] = defaultdict(list)
    for n in melody:
        sounding[n.pitch].append(n)
    added = []
    for m in melody:
        for pitch in _triad(m.pitch, tonic, mode):
            if pitch > 127 or any(n.start < m.end and m.start < n.end for n in sounding[pitch]):
                continue
            chord_note = Note(m.start, pitch, m.duration, max(1, int(round(m.velocity * velocity_scale))))
            sounding[pitch].append(chord_note)
            added.append(chord_note)
    return _with_notes(score, index, melody + tuple(added))


def resolve_sustain(score: Score) -> Score:
    """Fold sustain-pedal intervals into note lengths, then clear the pedals.

    Like a piano: a note released while the pedal is down (``down <= release <
    up``) keeps sounding until the pedal goes up, or until the same pitch is
    struck again in the track, whichever comes first.  Notes released before
    the pedal goes down, or as it comes up, are unchanged.  Drum tracks keep
    their notes as they are (General MIDI drums ignore the pedal), but their
    pedals are cleared too.
    """
    tracks = []
    for t in score.tracks:
        if t.is_drum or not t.pedals:
            tracks.append(t.replace(pedals=()))
            continue
        notes = []
        for n in t.notes:
            up = next((b for a, b in t.pedals if a <= n.end < b), None)
            if up is not None:
                # Overlapping pedal intervals chain: a pedal held past ``up`` keeps it going.
                extended = True
                while extended:
                    extended = False
                    for a, b in t.pedals:
                        if a <= up < b:
                            up, extended = b, True
                restrike = _next_start(t, n.pitch, n.start)
                end = up if restrike is None else min(up, restrike)
                n = Note(n.start, n.pitch, max(n.end, end) - n.start, n.velocity)
            notes.append(n)
        tracks.append(t.replace(notes=tuple(notes), pedals=()))
    return score.replace(tracks=tuple(tracks))


def set_instrument(score: Score, track: int | str, program: int) -> Score:
    """Give a track a new General MIDI ``program`` (0-127); drum tracks are refused."""
    index = _pitched_track(score, track, "an instrument change")
    program = _as_int(program, "program")
    if not 0 <= program <= 127:
        raise CapsuleError(f"program {program} is outside the General MIDI range 0-127")
    return score.with_track(index, score.tracks[index].replace(program=program))

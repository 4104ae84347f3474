"""Score ⇄ performance tokens: the console's 310-token vocabulary (TransformerXLClassical).

A conversion like :mod:`capsule_lib.roll`, kept below the techniques: the classical data
set (:mod:`capsule_lib.datasets.classical`) is stored as these tokens, and the
Transformer (:mod:`capsule_lib.techniques.transformer.tokens`) reads and writes them.

Layout (fixed; models depend on it)::

    0            PAD
    1            START
    2  ..  89    NOTE_ON  for MIDI pitches 21..108   (NOTE_ON_BASE + pitch - 21)
    90 .. 177    NOTE_OFF for MIDI pitches 21..108   (NOTE_OFF_BASE + pitch - 21)
    178 .. 277   TIME_SHIFT of 10 ms .. 1000 ms      (SHIFT_BASE + n - 1 for n x 10 ms)
    278 .. 309   VELOCITY bin 0..31                  (VELOCITY_BASE + bin)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import CapsuleError
from .score import Note, Score

PAD = 0
START = 1
PITCH_LOW, PITCH_HIGH = 21, 108
N_PITCHES = PITCH_HIGH - PITCH_LOW + 1  # 88
NOTE_ON_BASE = 2
NOTE_OFF_BASE = NOTE_ON_BASE + N_PITCHES  # 90
SHIFT_BASE = NOTE_OFF_BASE + N_PITCHES  # 178
N_SHIFTS = 100
SHIFT_MS = 10
VELOCITY_BASE = SHIFT_BASE + N_SHIFTS  # 278
N_VELOCITY_BINS = 32
VOCAB_SIZE = VELOCITY_BASE + N_VELOCITY_BINS  # 310

assert VOCAB_SIZE == 310

# --------------------------------------------------------------------------- code
#
# Encoding rules (documented here, relied on by the tests):
#
# * Times.  Every note's start and end are converted to seconds through the
#   score's tempo map (:meth:`Score.step_to_seconds`) and then rounded to the
#   10 ms grid (*ticks*).  Rounding absolute times (not differences) means no
#   drift: every event is within 5 ms of its true time however long the piece.
# * Order.  Events are sorted by tick; at equal ticks note-offs come before
#   note-ons, then by pitch.
# * Time shifts.  The gap between events is written greedily: as many
#   ``SHIFT(1000ms)`` as needed, then one shift for the remainder, so long rests
#   and long notes become repeated shifts.
# * Velocity.  32 bins over 0..127 (``bin = velocity * 32 // 128``); a
#   ``VELOCITY`` token precedes a ``NOTE_ON`` only when the bin changes (the first
#   note-on always gets one).  Decoding uses the bin's representative
#   ``4 * bin + 2`` (the centre of ``4*bin .. 4*bin+3``), which re-encodes to the
#   same bin; notes before any ``VELOCITY`` token get ``DEFAULT_VELOCITY``.
# * Range.  Pitches outside 21..108 (the piano) are dropped; pass ``stats={}`` to
#   :func:`encode` to learn how many (``stats["dropped"]``).
# * Overlaps.  When a pitch is struck again while still sounding, the earlier
#   note ends at the re-strike (NOTE_OFF then NOTE_ON at the same tick); two
#   strikes of one pitch at the same tick are merged into one note (the longer).
# * Short notes.  A note whose start and end round to the same tick is written
#   one tick (10 ms) long, and the decoder turns a note-off at the same time as
#   its note-on into a 10 ms note, so every note survives with at least one 10 ms
#   step (and at least one score step after decoding).


__all__ = [
    "PAD",
    "START",
    "PITCH_LOW",
    "PITCH_HIGH",
    "N_PITCHES",
    "NOTE_ON_BASE",
    "NOTE_OFF_BASE",
    "SHIFT_BASE",
    "N_SHIFTS",
    "SHIFT_MS",
    "VELOCITY_BASE",
    "N_VELOCITY_BINS",
    "VOCAB_SIZE",
    "DEFAULT_VELOCITY",
    "note_on",
    "note_off",
    "time_shift",
    "velocity_token",
    "velocity_bin",
    "bin_velocity",
    "is_note_on",
    "is_note_off",
    "is_shift",
    "is_velocity",
    "token_pitch",
    "shift_ticks",
    "check_tokens",
    "shift_tokens",
    "encode",
    "decode",
    "decode_notes",
    "total_seconds",
    "token_name",
    "describe",
]

#: Velocity given to notes decoded before any VELOCITY token.
DEFAULT_VELOCITY = 100
#: Ticks (10 ms steps) per second.
TICKS_PER_SECOND = 1000 // SHIFT_MS


# --------------------------------------------------------------------------- single tokens


def note_on(pitch: int) -> int:
    """The NOTE_ON token of MIDI ``pitch`` (21..108)."""
    if not PITCH_LOW <= pitch <= PITCH_HIGH:
        raise CapsuleError(f"pitch {pitch} is outside the vocabulary's range {PITCH_LOW}-{PITCH_HIGH}")
    return NOTE_ON_BASE + int(pitch) - PITCH_LOW


def note_off(pitch: int) -> int:
    """The NOTE_OFF token of MIDI ``pitch`` (21..108)."""
    if not PITCH_LOW <= pitch <= PITCH_HIGH:
        raise CapsuleError(f"pitch {pitch} is outside the vocabulary's range {PITCH_LOW}-{PITCH_HIGH}")
    return NOTE_OFF_BASE + int(pitch) - PITCH_LOW


def time_shift(ticks: int) -> int:
    """The TIME_SHIFT token of ``ticks`` x 10 ms (1..100)."""
    if not 1 <= ticks <= N_SHIFTS:
        raise CapsuleError(f"a single time shift is 1-{N_SHIFTS} ticks of {SHIFT_MS} ms, got {ticks}")
    return SHIFT_BASE + int(ticks) - 1


def velocity_bin(velocity: int) -> int:
    """The bin (0..31) of MIDI velocity 0..127: ``velocity * 32 // 128``."""
    v = min(max(int(velocity), 0), 127)
    return v * N_VELOCITY_BINS // 128


def bin_velocity(b: int) -> int:
    """The representative velocity of bin ``b``: its centre ``4 * b + 2`` (1..127)."""
    return min(max(int(b) * (128 // N_VELOCITY_BINS) + (128 // N_VELOCITY_BINS) // 2, 1), 127)


def velocity_token(velocity: int) -> int:
    """The VELOCITY token of MIDI ``velocity`` (binned)."""
    return VELOCITY_BASE + velocity_bin(velocity)


def is_note_on(t: int) -> bool:
    return NOTE_ON_BASE <= t < NOTE_OFF_BASE


def is_note_off(t: int) -> bool:
    return NOTE_OFF_BASE <= t < SHIFT_BASE


def is_shift(t: int) -> bool:
    return SHIFT_BASE <= t < VELOCITY_BASE


def is_velocity(t: int) -> bool:
    return VELOCITY_BASE <= t < VOCAB_SIZE


def token_pitch(t: int) -> int | None:
    """The MIDI pitch of a NOTE_ON/NOTE_OFF token, else None."""
    if is_note_on(t):
        return t - NOTE_ON_BASE + PITCH_LOW
    if is_note_off(t):
        return t - NOTE_OFF_BASE + PITCH_LOW
    return None


def shift_ticks(t: int) -> int:
    """Ticks (10 ms) of a TIME_SHIFT token, 0 for any other token."""
    return t - SHIFT_BASE + 1 if is_shift(t) else 0


def check_tokens(tokens: Iterable[int]) -> list[int]:
    """``tokens`` as a list of Python ints; CapsuleError for ids outside 0..309 or non-integers."""
    out = []
    for i, t in enumerate(tokens):
        try:
            v = int(t)
        except (TypeError, ValueError):
            raise CapsuleError(f"token {i} is {t!r}, not an integer id") from None
        if v != t or not 0 <= v < VOCAB_SIZE:
            raise CapsuleError(f"token {i} is {t!r}: ids must be whole numbers 0-{VOCAB_SIZE - 1}")
        out.append(v)
    return out


# --------------------------------------------------------------------------- encode


def shift_tokens(ticks: int) -> list[int]:
    """Greedy shift tokens for a gap of ``ticks`` (full 1000 ms shifts, then the rest)."""
    full, rest = divmod(int(ticks), N_SHIFTS)
    out = [SHIFT_BASE + N_SHIFTS - 1] * full
    if rest:
        out.append(SHIFT_BASE + rest - 1)
    return out


def _select_notes(score: Score, tracks) -> list[Note]:
    if tracks is None:
        chosen = [t for t in score.tracks if not t.is_drum]
    else:
        if isinstance(tracks, (int, str)):
            tracks = [tracks]
        chosen = [score.tracks[score.track_index(t)] for t in tracks]
    return [n for t in chosen for n in t.notes]


def encode(
    score: Score,
    *,
    tracks: Sequence[int | str] | int | str | None = None,
    start: bool = True,
    stats: dict | None = None,
) -> list[int]:
    """The notes of ``score`` as a performance token sequence.

    Parameters
    ----------
    score : Score
    tracks : track index/name or a list of them, optional
        Which tracks to encode; default all non-drum tracks, merged.
    start : bool
        Begin with the START token.
    stats : dict, optional
        Filled with ``notes`` (notes encoded), ``dropped`` (pitches outside 21..108)
        and ``merged`` (same-pitch strikes at the same 10 ms tick folded together).

    Returns
    -------
    list of int
        Token ids (see the module docstring for the rules).
    """
    if not isinstance(score, Score):
        raise CapsuleError(f"expected a Score, got {type(score).__name__}")
    dropped = merged = 0
    per_pitch: dict[int, list[list[int]]] = {}
    cache: dict[int, int] = {}
    seconds = score.tempo_map()  # linear in tempo changes, not quadratic

    def tick(step: int) -> int:
        t = cache.get(step)
        if t is None:
            t = cache[step] = int(round(seconds(step) * TICKS_PER_SECOND))
        return t

    for n in _select_notes(score, tracks):
        if not PITCH_LOW <= n.pitch <= PITCH_HIGH:
            dropped += 1
            continue
        on = tick(n.start)
        off = max(tick(n.end), on + 1)
        per_pitch.setdefault(n.pitch, []).append([on, off, n.velocity])

    events = []  # (tick, kind 0=off 1=on, pitch, velocity)
    n_notes = 0
    for pitch, spans in per_pitch.items():
        spans.sort(key=lambda s: (s[0], -s[1]))
        kept: list[list[int]] = []
        for s in spans:
            if kept and kept[-1][0] == s[0]:
                kept[-1][1] = max(kept[-1][1], s[1])  # same tick: one strike
                merged += 1
                continue
            if kept and kept[-1][1] > s[0]:
                kept[-1][1] = s[0]  # re-strike ends the earlier note
            kept.append(s)
        for on, off, vel in kept:
            events.append((on, 1, pitch, vel))
            events.append((off, 0, pitch, 0))
        n_notes += len(kept)
    events.sort(key=lambda e: (e[0], e[1], e[2]))

    out = [START] if start else []
    now = 0
    current_bin = None
    for t, kind, pitch, vel in events:
        if t > now:
            out.extend(shift_tokens(t - now))
            now = t
        if kind == 1:
            b = velocity_bin(vel)
            if b != current_bin:
                out.append(VELOCITY_BASE + b)
                current_bin = b
            out.append(NOTE_ON_BASE + pitch - PITCH_LOW)
        else:
            out.append(NOTE_OFF_BASE + pitch - PITCH_LOW)
    if stats is not None:
        stats.update(notes=n_notes, dropped=dropped, merged=merged)
    return out


# --------------------------------------------------------------------------- decode


def decode_notes(tokens: Iterable[int]) -> list[tuple[float, int, float, int]]:
    """The notes of a token sequence as ``(start_s, pitch, end_s, velocity)``, sorted.

    Tolerant: PAD and START are ignored, a note-off without a note-on is ignored, a
    note-on of a pitch already sounding ends the earlier note there, notes still on
    at the end are closed at the final time, and a note whose off comes at the same
    time as its on lasts one 10 ms tick.  Raises CapsuleError only for invalid ids.
    """
    toks = check_tokens(tokens)
    now = 0
    vel = DEFAULT_VELOCITY
    active: dict[int, tuple[int, int]] = {}
    notes: list[tuple[int, int, int, int]] = []

    def close(pitch: int, at: int) -> None:
        on, v = active.pop(pitch)
        notes.append((on, pitch, max(at, on + 1), v))

    for t in toks:
        if t < NOTE_ON_BASE:
            continue
        if t < NOTE_OFF_BASE:
            p = t - NOTE_ON_BASE + PITCH_LOW
            if p in active:
                close(p, now)
            active[p] = (now, vel)
        elif t < SHIFT_BASE:
            p = t - NOTE_OFF_BASE + PITCH_LOW
            if p in active:
                close(p, now)
        elif t < VELOCITY_BASE:
            now += t - SHIFT_BASE + 1
        else:
            vel = bin_velocity(t - VELOCITY_BASE)
    for p in list(active):
        close(p, now)
    notes.sort()
    return [(on / TICKS_PER_SECOND, p, off / TICKS_PER_SECOND, v) for on, p, off, v in notes]


def decode(
    tokens: Iterable[int], *, tempo: float = 120.0, resolution: int = 24, program: int = 0, name: str = "melody"
) -> Score:
    """A one-track Score from a token sequence (see :func:`decode_notes` for the rules).

    Seconds become steps as ``round(seconds * tempo / 60 * resolution)``; every note
    keeps at least one step.
    """
    if not tempo > 0:
        raise CapsuleError(f"tempo {tempo} must be positive")
    if resolution < 1:
        raise CapsuleError(f"resolution {resolution} must be at least 1 step per beat")
    per_second = float(tempo) / 60.0 * int(resolution)
    out = []
    for on, pitch, off, vel in decode_notes(tokens):
        s = int(round(on * per_second))
        e = max(int(round(off * per_second)), s + 1)
        out.append(Note(s, pitch, e - s, vel))
    return Score.from_notes(out, resolution=int(resolution), tempo=float(tempo), program=program, name=name)


def total_seconds(tokens: Iterable[int]) -> float:
    """The length of a token sequence in seconds (the sum of its time shifts)."""
    return sum(shift_ticks(t) for t in check_tokens(tokens)) / TICKS_PER_SECOND


# --------------------------------------------------------------------------- text


def token_name(t: int) -> str:
    """A readable name: ``PAD``, ``START``, ``NOTE_ON(60)``, ``NOTE_OFF(60)``, ``SHIFT(250ms)``, ``VELOCITY(20)``."""
    (t,) = check_tokens([t])
    if t == PAD:
        return "PAD"
    if t == START:
        return "START"
    if is_note_on(t):
        return f"NOTE_ON({token_pitch(t)})"
    if is_note_off(t):
        return f"NOTE_OFF({token_pitch(t)})"
    if is_shift(t):
        return f"SHIFT({shift_ticks(t) * SHIFT_MS}ms)"
    return f"VELOCITY({t - VELOCITY_BASE})"


def describe(tokens: Iterable[int], limit: int | None = 64, *, sep: str = " ") -> str:
    """ "Music as text": the names of the first ``limit`` tokens (None for all), with a count of the rest."""
    toks = check_tokens(tokens)
    shown = toks if limit is None else toks[: max(int(limit), 0)]
    text = sep.join(token_name(t) for t in shown)
    if len(shown) < len(toks):
        text += f"{sep}... (+{len(toks) - len(shown)} more tokens)"
    return text

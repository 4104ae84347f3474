"""Sample melodies: public-domain tunes written out by hand in ``data/melodies/``.

Each tune is one human-readable JSON file, ``data/melodies/<name>.json``::

    {
      "name": "mary_had_a_little_lamb",          # slug, equal to the file name
      "title": "Mary Had a Little Lamb",
      "composer": "traditional",
      "source": "American nursery song (1830); public domain; transcribed for this project",
      "tempo": 100,                               # beats (quarter notes) per minute, 40-160
      "time_signature": [4, 4],
      "key": "C major",
      "pickup": 0,                                # optional: length of an anacrusis, in beats
      "recommended_for": ["arcnn", "gan"],        # techniques: arcnn, gan, transformer
      "notes": ["E4:1 D4:1 C4:1 D4:1 | ...", "..."]   # a string, or a list of lines joined by spaces
    }

Melody notation
---------------
``notes`` is a list of whitespace-separated tokens:

``PITCH:DURATION``
    ``PITCH`` is a letter ``A``-``G``, an optional accidental (``#`` sharp or
    ``b`` flat) and an octave number, scientific style: ``C4`` is middle C
    (MIDI 60), ``A4`` is MIDI 69, ``Cb4`` is MIDI 59.  ``R`` is a rest.
    ``DURATION`` is in beats (quarter notes): an integer (``2``), a fraction
    (``1/2``, ``3/2``) or a decimal (``1.5``, ``0.25``).
``PITCH:DURATION~``
    A tie: the note continues into the next token, which must have the same
    pitch (used for notes held across a bar line).
``|``
    A bar line.  When a melody has bar lines, every bar is checked: it must
    last exactly one bar of the time signature (4 beats in 4/4, 3 in 3/4, 1.5
    in 3/8), except the first bar when the file declares a ``pickup``, which
    must last exactly ``pickup`` beats.

A pickup (anacrusis) is placed at the end of an otherwise silent first bar,
so that bar lines fall on the score's bar grid (``Score.steps_per_bar``):
the loaded score starts with ``bar - pickup`` beats of silence.  Note times
are exact fractions of a beat and are rounded to the nearest step of the
chosen resolution only at the end, so rounding never accumulates.

Downbeats are played a little louder than other beats, and off-beats a
little softer, so the melodies do not sound mechanical.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

from .errors import CapsuleError
from .keys import LETTER_PITCH_CLASSES
from .paths import data_dir
from .score import DEFAULT_RESOLUTION, Note, Score, Track
from .technique_registry import TECHNIQUES, technique_names

__all__ = [
    "list_samples",
    "load_sample",
    "parse_notation",
    "from_notation",
    "pitch_from_name",
    "TECHNIQUES",
    "MELODY_TEMPO_RANGE",
]

#: Tempi the studio accepts (bpm), so every sample can be played back unchanged.
MELODY_TEMPO_RANGE = (40, 160)

_VELOCITY_DOWNBEAT = 100
_VELOCITY_BEAT = 88
_VELOCITY_OFFBEAT = 80

_PITCH_RE = re.compile(r"^([A-Ga-g])([#b]?)(-?\d+)$")
_REQUIRED = {
    "name": str,
    "title": str,
    "composer": str,
    "source": str,
    "tempo": (int, float),
    "time_signature": list,
    "key": str,
    "recommended_for": list,
    "notes": (str, list),
}


# -- notation -----------------------------------------------------------------
def pitch_from_name(name: str) -> int:
    """MIDI number of a pitch name such as ``"C4"`` (60), ``"F#5"`` or ``"Bb3"``.

    Raises
    ------
    CapsuleError
        If the name is not a letter, optional ``#``/``b`` and an octave, or the
        pitch falls outside MIDI 0-127.
    """
    match = _PITCH_RE.match(str(name).strip())
    if not match:
        raise CapsuleError(
            f"{name!r} is not a pitch name (expected a letter A-G, optional # or b, and an octave, e.g. C4 or F#5)"
        )
    letter, accidental, octave = match.groups()
    pitch = 12 * (int(octave) + 1) + LETTER_PITCH_CLASSES[letter.upper()] + {"": 0, "#": 1, "b": -1}[accidental]
    if not 0 <= pitch <= 127:
        raise CapsuleError(f"pitch {name} (MIDI {pitch}) is outside the MIDI range 0-127")
    return pitch


def _parse_duration(text: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"duration {text!r} is not a number of beats (e.g. 1, 1/2, 3/2, 1.5)") from None
    if value <= 0:
        raise ValueError(f"duration {text!r} must be more than 0 beats")
    return value


def _fmt(beats: Fraction) -> str:
    return str(beats.numerator) if beats.denominator == 1 else f"{beats.numerator}/{beats.denominator}"


def _bar_beats(time_signature: Sequence[int]) -> Fraction:
    num, den = (int(x) for x in time_signature)
    if num < 1 or den < 1 or den & (den - 1):
        raise CapsuleError(f"time signature {num}/{den} is not valid")
    return Fraction(4 * num, den)


def parse_notation(
    text: str | Iterable[str],
    *,
    time_signature: Sequence[int] = (4, 4),
    pickup: float | str | Fraction = 0,
    where: str = "melody",
) -> list[tuple[Fraction, int, Fraction]]:
    """Parse melody notation (see the module docstring) into notes in beats.

    Parameters
    ----------
    text : str or iterable of str
        The tokens; an iterable (e.g. the lines of a JSON list) is joined with spaces.
    time_signature : (int, int)
        Used to check bars when the text has bar lines.
    pickup : number of beats
        Length of an anacrusis (0 for none).  The first bar must last exactly
        this long, and every note is shifted so that the pickup ends on a bar line.
    where : str
        Names the source (e.g. the file) in error messages.

    Returns
    -------
    list of (start, pitch, duration)
        Start and duration in beats as exact fractions, rests left out, tied
        notes merged, in time order.

    Raises
    ------
    CapsuleError
        Naming ``where`` and the offending token or bar: an unknown pitch, a
        missing or bad duration, a tie to a different pitch, or a bar whose
        notes do not add up to the time signature.
    """
    if not isinstance(text, str):
        text = " ".join(str(line) for line in text)
    bar = _bar_beats(time_signature)
    try:
        pickup = _parse_duration(str(pickup)) if pickup not in (0, "0", None) else Fraction(0)
    except ValueError as exc:
        raise CapsuleError(f"{where}: pickup {exc}") from None
    if pickup >= bar:
        raise CapsuleError(
            f"{where}: a pickup of {_fmt(pickup)} beats must be shorter than a {_fmt(bar)}-beat bar; "
            "write a full first bar instead"
        )
    num, den = (int(x) for x in time_signature)
    tokens = text.split()
    if not any(t != "|" for t in tokens):
        raise CapsuleError(f"{where}: the melody has no notes")
    has_bars = "|" in tokens
    offset = bar - pickup if pickup else Fraction(0)

    notes: list[tuple[Fraction, int, Fraction]] = []
    position = Fraction(0)  # beats since the first token
    bar_start, bar_no, bar_first_token = Fraction(0), 1, None
    tied: tuple[int, Fraction, int, str] | None = None  # pitch, start, index in notes, token

    def check_bar(end: Fraction, final: bool):
        length = end - bar_start
        expected = pickup if (bar_no == 1 and pickup) else bar
        if final and length == 0:
            return  # a trailing bar line
        if length != expected:
            what = "pickup bar" if (bar_no == 1 and pickup) else f"bar {bar_no}"
            raise CapsuleError(
                f"{where}: {what} (starting at token {bar_first_token!r}) lasts {_fmt(length)} beats, "
                f"but {'the pickup is' if (bar_no == 1 and pickup) else f'a {num}/{den} bar needs'} {_fmt(expected)}"
            )

    for index, token in enumerate(tokens, start=1):
        if token == "|":
            if has_bars:
                if bar_first_token is None:
                    raise CapsuleError(f"{where}: empty bar {bar_no} (two bar lines in a row at token {index})")
                check_bar(position, final=False)
            bar_start, bar_no, bar_first_token = position, bar_no + 1, None
            continue
        if bar_first_token is None:
            bar_first_token = token
        head, sep, dur_text = token.partition(":")
        tie = dur_text.endswith("~")
        if tie:
            dur_text = dur_text[:-1]
        if not sep or not dur_text:
            raise CapsuleError(
                f"{where}: token {index} {token!r} has no duration (write PITCH:BEATS, e.g. C4:1 or R:1/2)"
            )
        try:
            duration = _parse_duration(dur_text)
        except ValueError as exc:
            raise CapsuleError(f"{where}: token {index} {token!r}: {exc}") from None
        if head in ("R", "r"):
            if tie:
                raise CapsuleError(f"{where}: token {index} {token!r}: a rest cannot be tied")
            if tied is not None:
                raise CapsuleError(
                    f"{where}: token {index} {token!r}: the tie from {tied[3]!r} must go to a note of the same pitch"
                )
            position += duration
            continue
        try:
            pitch = pitch_from_name(head)
        except CapsuleError as exc:
            raise CapsuleError(f"{where}: token {index} {token!r}: {exc}") from None
        if tied is not None:
            tied_pitch, start, note_index, tied_token = tied
            if pitch != tied_pitch:
                raise CapsuleError(
                    f"{where}: token {index} {token!r}: the tie from {tied_token!r} must go to a note of the same pitch"
                )
            notes[note_index] = (start, pitch, position + duration - start)
        else:
            start, note_index = position, len(notes)
            notes.append((position, pitch, duration))
        tied = (pitch, start, note_index, token) if tie else None
        position += duration

    if tied is not None:
        raise CapsuleError(f"{where}: the last note {tied[3]!r} is tied to nothing")
    if has_bars:
        check_bar(position, final=True)
    return [(start + offset, pitch, duration) for start, pitch, duration in notes]


def _velocity(start: Fraction, bar: Fraction) -> int:
    if start % bar == 0:
        return _VELOCITY_DOWNBEAT
    if start.denominator == 1:
        return _VELOCITY_BEAT
    return _VELOCITY_OFFBEAT


def _to_steps(beats: Fraction, resolution: int) -> int:
    # Round half up on exact fractions, so results never depend on float error.
    scaled = beats * resolution
    return int((scaled + Fraction(1, 2)) // 1)


def from_notation(
    text: str | Iterable[str],
    *,
    tempo: float = 100.0,
    time_signature: Sequence[int] = (4, 4),
    pickup: float | str | Fraction = 0,
    title: str = "",
    resolution: int = DEFAULT_RESOLUTION,
    program: int = 0,
    where: str = "melody",
) -> Score:
    """A one-track score (track ``"melody"``) from melody notation.

    Handy for typing a tune in a notebook:
    ``from_notation("C4:1 D4:1 E4:2 | G4:4", tempo=90)``.  See
    :func:`parse_notation` for the arguments and errors; ``resolution`` is the
    number of steps per beat of the returned score.
    """
    if int(resolution) < 1:
        raise CapsuleError(f"resolution {resolution} must be at least 1 step per beat")
    low, high = MELODY_TEMPO_RANGE
    if not low <= float(tempo) <= high:
        raise CapsuleError(f"{where}: tempo {tempo:g} bpm is outside {low}-{high}")
    events = parse_notation(text, time_signature=time_signature, pickup=pickup, where=where)
    bar = _bar_beats(time_signature)
    notes = []
    for start, pitch, duration in events:
        first = _to_steps(start, resolution)
        last = max(_to_steps(start + duration, resolution), first + 1)
        notes.append(Note(first, pitch, last - first, _velocity(start, bar)))
    return Score(
        tracks=(Track(name="melody", program=program, notes=tuple(notes)),),
        tempo=float(tempo),
        time_signature=tuple(int(x) for x in time_signature),
        resolution=int(resolution),
        title=title,
    )


# -- the bundled files --------------------------------------------------------
def _melody_dir() -> Path:
    folder = data_dir() / "melodies"
    if not folder.is_dir():
        raise CapsuleError(
            f"the sample melodies folder {folder} is missing (set $CAPSULE_DATA to the project's data folder)"
        )
    return folder


def _read_file(path: Path) -> dict:
    label = path.name
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CapsuleError(f"{label}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except OSError as exc:
        raise CapsuleError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(spec, dict):
        raise CapsuleError(f"{label}: expected a JSON object with the fields {', '.join(_REQUIRED)}")
    for field, kind in _REQUIRED.items():
        if field not in spec:
            raise CapsuleError(f"{label}: missing field {field!r}")
        if not isinstance(spec[field], kind) or isinstance(spec[field], bool):
            raise CapsuleError(f"{label}: field {field!r} has the wrong type ({type(spec[field]).__name__})")
    if spec["name"] != path.stem:
        raise CapsuleError(f"{label}: name {spec['name']!r} must equal the file name {path.stem!r}")
    ts = spec["time_signature"]
    if len(ts) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in ts):
        raise CapsuleError(f"{label}: time_signature must be two integers like [4, 4], not {ts!r}")
    unknown = [t for t in spec["recommended_for"] if t not in technique_names()]
    if unknown or not spec["recommended_for"]:
        raise CapsuleError(
            f"{label}: recommended_for must list one or more of {', '.join(technique_names())}"
            + (f" (unknown: {', '.join(map(str, unknown))})" if unknown else "")
        )
    pickup = spec.get("pickup", 0)
    if isinstance(pickup, bool) or not isinstance(pickup, (int, float, str)):
        raise CapsuleError(f"{label}: pickup must be a number of beats, not {pickup!r}")
    return spec


def _score_from_spec(spec: dict, label: str, resolution: int) -> Score:
    return from_notation(
        spec["notes"],
        tempo=spec["tempo"],
        time_signature=spec["time_signature"],
        pickup=spec.get("pickup", 0),
        title=spec["title"],
        resolution=resolution,
        where=label,
    )


def _files() -> list[Path]:
    return sorted(_melody_dir().glob("*.json"))


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.casefold()).strip("_")


def list_samples() -> list[dict]:
    """The bundled sample melodies, sorted by name.

    Returns
    -------
    list of dict
        One per tune, with ``name``, ``title``, ``composer``,
        ``recommended_for``, ``bars`` (bars on the score's grid, a pickup bar
        counting as one), ``tempo``, ``key`` and ``time_signature``.

    Raises
    ------
    CapsuleError
        If the melodies folder is missing or a file in it is broken (the
        message names the file).
    """
    out = []
    for path in _files():
        spec = _read_file(path)
        score = _score_from_spec(spec, path.name, DEFAULT_RESOLUTION)
        out.append(
            {
                "name": spec["name"],
                "title": spec["title"],
                "composer": spec["composer"],
                "recommended_for": list(spec["recommended_for"]),
                "bars": score.n_bars,
                "tempo": spec["tempo"],
                "key": spec["key"],
                "time_signature": tuple(spec["time_signature"]),
            }
        )
    return sorted(out, key=lambda d: d["name"])


def load_sample(name: str, *, resolution: int = DEFAULT_RESOLUTION) -> Score:
    """Load a sample melody as a one-track score.

    Parameters
    ----------
    name : str
        The tune's name (``"ode_to_joy"``) or its title (``"Ode to Joy"``),
        either case-insensitively; spaces and hyphens match underscores.
    resolution : int
        Steps per beat of the returned score.

    Returns
    -------
    Score
        One track named ``"melody"`` (program 0, acoustic grand piano), with
        the tune's title, tempo and time signature.

    Raises
    ------
    CapsuleError
        For an unknown name (the message lists the available ones) or a broken file.
    """
    files = _files()
    wanted = _slug(str(name))
    by_name = {path.stem: path for path in files}
    path = by_name.get(str(name)) or next((p for p in files if _slug(p.stem) == wanted), None)
    if path is None:
        for candidate in files:
            spec = _read_file(candidate)
            if str(spec["title"]).casefold() == str(name).strip().casefold() or _slug(spec["title"]) == wanted:
                path = candidate
                break
    if path is None:
        available = ", ".join(p.stem for p in files) or "none"
        raise CapsuleError(f"no sample melody named {name!r} (available: {available})")
    return _score_from_spec(_read_file(path), path.name, int(resolution))

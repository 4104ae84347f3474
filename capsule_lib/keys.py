"""Pitch names, keys and scales: Krumhansl-Schmuckler key finding, shared by the editor and the metrics.

One home for what "the key of a piece" means in the package, so the keyboard's
auto-chord (:func:`capsule_lib.edit.auto_chord`), the quality metrics
(:func:`capsule_lib.metrics.in_key_rate`) and the techniques that steer toward a key
all read the same profiles, the same scales and the same spelling of pitch names.

Key finding correlates a piece's duration-weighted pitch-class histogram with the
Krumhansl & Kessler (1982) probe-tone profiles rotated to each of the 12 tonics
(Krumhansl, *Cognitive Foundations of Musical Pitch*, 1990).  :func:`detect_key` adds a
bonus for the melody's final note (what a person hearing a short tune goes by);
:func:`best_key` does not (a metric judges the whole piece as it sounds).
"""

from __future__ import annotations

import math
import re
from numbers import Real

import numpy as np

from .errors import CapsuleError
from .score import Score

__all__ = [
    "PITCH_NAMES",
    "LETTER_PITCH_CLASSES",
    "SCALES",
    "KK_MAJOR",
    "KK_MINOR",
    "pitch_label",
    "detect_key",
    "best_key",
    "key_scale",
    "parse_key",
    "key_name",
]

#: Pitch-class names, C first: sharps for C# and F#, flats for Eb, Ab and Bb (the
#: spelling most common in the keys of tonal music; the piano-roll and keyboard
#: widgets' JavaScript spells them the same).
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Pitch class of each natural note letter.
LETTER_PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
#: Scale steps above the tonic of each mode (minor: the natural minor).
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}

#: Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)

# Added to the correlation of keys whose tonic is the melody's final note (detect_key only).
_FINAL_BONUS = 0.25

_PITCH_CLASSES = np.arange(12)
_MAJOR_MASK = np.isin(_PITCH_CLASSES, SCALES["major"])
# A minor key's notes include the harmonic minor's raised 7th (the leading tone).
_MINOR_MASK = np.isin(_PITCH_CLASSES, (*SCALES["minor"], 11))


def pitch_label(pitch: int) -> str:
    """Scientific pitch name of a MIDI number: 60 → ``"C4"``, 61 → ``"C#4"``, 63 → ``"Eb4"``."""
    return f"{PITCH_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def _pitch_class_histogram(score: Score) -> np.ndarray:
    """Total duration (steps) of each pitch class, C first, over the non-drum tracks."""
    hist = np.zeros(12)
    for t in score.tracks:
        if not t.is_drum:
            for n in t.notes:
                hist[n.pitch % 12] += n.duration
    return hist


def _best_correlated_key(hist: np.ndarray, final_pc: int | None = None) -> tuple[int, str]:
    """The best of the 24 rotated profiles for ``hist`` (ties: lower tonic, major first).

    Keys on the tonic ``final_pc`` get :data:`_FINAL_BONUS` added to their correlation.
    ``hist`` must not be flat (every correlation would be undefined).
    """
    best, best_r = (0, "major"), -np.inf
    for tonic in range(12):
        for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
            r = np.corrcoef(hist, np.roll(profile, tonic))[0, 1]
            if tonic == final_pc:
                r += _FINAL_BONUS
            if r > best_r + 1e-12:
                best, best_r = (tonic, mode), r
    return best


def detect_key(score: Score) -> tuple[int, str]:
    """Krumhansl-Schmuckler key finding: ``(tonic_pitch_class, "major" | "minor")``.

    The duration-weighted pitch-class histogram of all non-drum notes is
    correlated (Pearson) with the Krumhansl-Kessler major and minor profiles
    rotated to each of the 12 tonics.  Short melodies leave the profile
    ambiguous between relative keys (Mary Had a Little Lamb's many E's look like
    E minor), so keys whose tonic is the melody's final note (the lowest note of
    the last onset -- tonal tunes end on the tonic) get ``_FINAL_BONUS`` added to
    their correlation.  The best of the 24 keys wins (ties go to the lower
    tonic, major before minor).

    Raises
    ------
    CapsuleError
        If there are no pitched notes or every pitch class weighs the same.
    """
    hist = _pitch_class_histogram(score)
    if not hist.any():
        raise CapsuleError("cannot detect a key: the score has no pitched notes")
    if np.ptp(hist) == 0:
        raise CapsuleError("cannot detect a key: every pitch class is equally weighted")
    pitched = [n for t in score.tracks if not t.is_drum for n in t.notes]
    last_start = max(n.start for n in pitched)
    final_pc = min(n.pitch for n in pitched if n.start == last_start) % 12  # bass of the final chord
    return _best_correlated_key(hist, final_pc)


def best_key(score: Score) -> tuple[int, str] | None:
    """The key that best fits the piece: ``(tonic_pitch_class, "major" | "minor")``, or None.

    Krumhansl-Schmuckler key finding as in :func:`detect_key` -- the best of the 24
    rotated Krumhansl-Kessler profiles (ties: lower tonic, major first) -- but with no
    bonus for the final note: the metric judges the whole piece as it sounds.  None when
    there is no note or every pitch class weighs the same.
    """
    if not isinstance(score, Score):
        raise CapsuleError(f"metrics need a Score, not {type(score).__name__}")
    hist = _pitch_class_histogram(score)
    if not hist.any() or np.ptp(hist) == 0:
        return None
    return _best_correlated_key(hist)


def key_scale(key: tuple[int, str]) -> np.ndarray:
    """12 bools, pitch class C first: the major scale, or natural + harmonic minor, of ``key``."""
    tonic, mode = key
    if mode not in SCALES or not 0 <= int(tonic) <= 11:
        raise CapsuleError(f"a key is (tonic 0-11, 'major' or 'minor'), not {key!r}")
    return np.roll(_MAJOR_MASK if mode == "major" else _MINOR_MASK, int(tonic))


def _tonic(value) -> int:
    """A key's tonic pitch class; integral floats pass, bools and fractions do not."""
    if isinstance(value, bool) or not isinstance(value, Real) or not (math.isfinite(value) and value == int(value)):
        raise CapsuleError(f"key tonic must be a whole number, not {value!r}")
    if not 0 <= value <= 11:
        raise CapsuleError(f"key tonic {int(value)} is outside 0-11 (pitch classes, C = 0)")
    return int(value)


def parse_key(key) -> tuple[int, str]:
    """A key as ``(tonic_pc, mode)`` from a tuple or a string like "C major", "F# minor", "Bb", "D-flat major".

    A bare tonic means major.

    Raises
    ------
    CapsuleError
        If the key cannot be understood.
    """
    if isinstance(key, str):
        spelled = re.sub(
            r"-?\s*flat\b", "b", re.sub(r"-?\s*sharp\b", "#", key, flags=re.IGNORECASE), flags=re.IGNORECASE
        )
        m = re.fullmatch(r"\s*([A-Ga-g])\s*([#♯b♭]?)\s*(major|minor|maj|min)?\s*", spelled, flags=re.IGNORECASE)
        if not m:
            raise CapsuleError(f"key {key!r} is not like 'C major' or 'A minor'")
        tonic = LETTER_PITCH_CLASSES[m.group(1).upper()] + {"#": 1, "♯": 1, "b": -1, "♭": -1, "": 0}[m.group(2)]
        mode = "minor" if (m.group(3) or "major").lower().startswith("min") else "major"
        return tonic % 12, mode
    try:
        tonic, mode = key
    except (TypeError, ValueError):
        raise CapsuleError(f"key {key!r} must be (tonic_pitch_class, mode) or a name like 'C major'") from None
    tonic = _tonic(tonic)
    if mode not in SCALES:
        raise CapsuleError(f"key mode {mode!r} must be 'major' or 'minor'")
    return tonic, mode


def key_name(key) -> str:
    """A readable name for a key, e.g. ``(9, "minor")`` -> ``"A minor"``."""
    tonic, mode = parse_key(key)
    return f"{PITCH_NAMES[tonic]} {mode}"

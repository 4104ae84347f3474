"""Following the prompt: a decoding-time guide that keeps an extension in its prompt's key and register.

The Transformer learned from 430 classical pieces in every key; handed a 10-second folk
tune it often wanders off into another key, a clashing chord or another octave, because
nothing in 10 seconds of tokens pins those down as firmly as a listener hears them.  The
guide changes no weight of the model: before each token is drawn it *reweights* the
model's next-token distribution (then renormalises), using what the prompt and the
extension so far say.  Only NOTE_ON tokens are reweighted; time shifts, note-offs and
velocities keep the model's own probabilities, so the rhythm is the model's.

A note-on of pitch ``p`` is multiplied by

* ``out_of_key`` when ``p``'s pitch class is outside the prompt's scale
  (:func:`capsule_lib.metrics.best_key` of the prompt; the major scale, or natural +
  harmonic minor -- the scale :func:`capsule_lib.metrics.in_key_rate` judges by);
* ``clash`` when ``p`` lies 1, 11 or 13 semitones from a pitch still sounding in the
  extension (a note sounds from its note-on until its note-off or for ``max_note_seconds``,
  2 s -- the default note length limit of :func:`~capsule_lib.techniques.transformer.sample.extend`;
  fixed, so that the tokens drawn never depend on the limits ``extend`` applies afterwards);
* ``exp(-(d - register_width) / register_decay)`` when it lies ``d > register_width``
  semitones from the prompt's mean pitch (the register), so the line may reach out but
  comes back.

This is the product-of-experts view of constrained sampling (Hinton, 2002; used for music
by e.g. Pachet & Roy, "Markov constraints", 2011): the model proposes, simple musical
experts veto softly.  The multipliers are :data:`GUIDE`: 0.1 for a note out of key or
clashing -- soft enough that the model can still insist on a chromatic passing note (the
model's own 0.85 of notes in the prompt's key becomes about 0.99 on the sample and folk
tunes of ``bench/bench_music.py``; 0.02 gave no more) -- and a register band of an octave
either side of the prompt's mean pitch, decaying by ``e`` every 3 semitones beyond it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import tokens as tok

__all__ = ["GUIDE", "PromptGuide", "guide_from_prompt"]

#: Default multipliers of :class:`PromptGuide`.
GUIDE = {"out_of_key": 0.1, "clash": 0.1, "register_width": 12.0, "register_decay": 3.0}

_ON = np.arange(tok.NOTE_ON_BASE, tok.NOTE_ON_BASE + tok.N_PITCHES)
_PITCHES = np.arange(tok.PITCH_LOW, tok.PITCH_HIGH + 1)
_CLASH = (1, 11, 13)


@dataclass
class PromptGuide:
    """Reweights next-token probabilities (see the module notes); call :meth:`observe` with each token drawn.

    Parameters
    ----------
    scale : array of 12 bool, optional
        The prompt's scale (None: no key constraint).
    centre : float, optional
        The prompt's mean pitch (None: no register constraint).
    max_note_seconds : float
        A note stops counting as sounding after this long.
    """

    scale: np.ndarray | None = None
    centre: float | None = None
    max_note_seconds: float = 2.0
    out_of_key: float = field(default_factory=lambda: GUIDE["out_of_key"])
    clash: float = field(default_factory=lambda: GUIDE["clash"])
    register_width: float = field(default_factory=lambda: GUIDE["register_width"])
    register_decay: float = field(default_factory=lambda: GUIDE["register_decay"])
    sounding: dict = field(default_factory=dict)  # pitch -> ms since its note-on
    _static: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        w = np.ones(tok.N_PITCHES)
        if self.scale is not None:
            w = np.where(np.asarray(self.scale, bool)[_PITCHES % 12], w, w * self.out_of_key)
        if self.centre is not None:
            excess = np.maximum(np.abs(_PITCHES - float(self.centre)) - self.register_width, 0.0)
            w = w * np.exp(-excess / self.register_decay)
        self._static = w

    def note_on_weights(self) -> np.ndarray:
        """Per pitch 21..108, the multiplier of its NOTE_ON token now."""
        w = self._static.copy()
        for p in self.sounding:
            for d in _CLASH:
                for q in (p - d, p + d):
                    if tok.PITCH_LOW <= q <= tok.PITCH_HIGH:
                        w[q - tok.PITCH_LOW] *= self.clash
        return w

    def weights(self) -> np.ndarray:
        """The multiplier of every token of the vocabulary now (1 for all but NOTE_ONs)."""
        w = np.ones(tok.VOCAB_SIZE)
        w[_ON] = self.note_on_weights()
        return w

    def observe(self, token: int) -> None:
        """Follow the extension: which notes sound now."""
        token = int(token)
        if tok.is_note_on(token):
            self.sounding[tok.token_pitch(token)] = 0
        elif tok.is_note_off(token):
            self.sounding.pop(tok.token_pitch(token), None)
        elif tok.is_shift(token):
            ms = tok.shift_ticks(token) * tok.SHIFT_MS
            limit = self.max_note_seconds * 1000.0
            self.sounding = {p: t + ms for p, t in self.sounding.items() if t + ms < limit}


def guide_from_prompt(prompt_notes, *, max_note_seconds: float = 2.0, **weights) -> PromptGuide | None:
    """A :class:`PromptGuide` for a prompt given as notes (anything with ``pitch`` and ``duration``).

    The key is the Krumhansl-Kessler best fit of the notes (duration-weighted); the register
    their mean pitch.  None when the prompt has no note.
    """
    from ...metrics import best_key, key_scale
    from ...score import Score, Track

    notes = tuple(prompt_notes)
    if not notes:
        return None
    key = best_key(Score(tracks=(Track(notes=notes),)))
    scale = key_scale(key) if key is not None else None
    centre = float(np.mean([n.pitch for n in notes]))
    if not math.isfinite(centre):
        centre = None
    return PromptGuide(scale=scale, centre=centre, max_note_seconds=max_note_seconds, **weights)

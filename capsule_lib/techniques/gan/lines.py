"""One track's line through the generator's note probabilities: the most likely one, or one drawn.

A cell's ``(x + 1) / 2`` is the probability that it sounds.  A *line* is a note or a rest at
each step.  Its states are the pitches plus a rest (probability ``1 - sum``, at least 1e-6),
each step's probabilities normalised (:func:`line_emissions`), read as a hidden Markov model
whose line holds its state from one step to the next and changes it with probability
``exp(-switch_penalty)`` (to a state drawn uniformly).  :func:`viterbi_line` finds the single
most likely line (it plays safe: few distinct pitches); :func:`sample_line` draws one from its
posterior by forward filtering, backward sampling (:func:`ffbs`), so whole notes -- not single
steps -- are sampled, with the model's own variety.  The joint decoder of
:mod:`~capsule_lib.techniques.gan.voicing` runs the same :func:`ffbs` with a voice-leading score
on its transitions.

:func:`with_chord_notes` turns a line into a roll, with the further notes a polyphonic track
plays above a threshold.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["SWITCH_PENALTY", "line_emissions", "viterbi_line", "ffbs", "sample_line", "with_chord_notes"]

#: Log-probability cost of a change of note in a single-line track (see :func:`viterbi_line`).
SWITCH_PENALTY = 3.0
_EPS = 1e-6


def line_emissions(prob: np.ndarray, rest_weight: float = 1.0, factor: np.ndarray | None = None) -> np.ndarray:
    """``(n, steps, pitches + 1)``: each step's state probabilities, normalised, the rest last.

    ``rest_weight`` multiplies the rest's probability and ``factor`` (``(n, steps, pitches)``)
    the pitches' before normalising.
    """
    rest = np.clip(1 - prob.sum(axis=-1, keepdims=True), _EPS, 1) * rest_weight
    pitched = np.clip(prob, _EPS, 1) if factor is None else np.clip(prob, _EPS, 1) * factor
    e = np.concatenate([pitched, rest], axis=-1)
    return e / e.sum(axis=-1, keepdims=True)


def viterbi_line(prob: np.ndarray, switch_penalty: float = SWITCH_PENALTY) -> np.ndarray:
    """The best single line through ``(n, steps, pitches)`` note probabilities.

    The score of a path is the sum of its states' log probabilities minus ``switch_penalty``
    for every change of state, so the line holds notes instead of flickering between
    neighbours step by step.  Returns ``(n, steps)`` state indices (``pitches`` = rest).
    """
    n, steps, pitches = prob.shape
    log_e = np.log(line_emissions(prob))  # (n, steps, S)
    delta = log_e[:, 0].copy()
    back = np.zeros((n, steps, pitches + 1), np.int16)
    states = np.arange(pitches + 1)
    for t in range(1, steps):
        best = delta.argmax(axis=1)
        switch = delta[np.arange(n), best][:, None] - switch_penalty
        stay = delta >= switch
        back[:, t] = np.where(stay, states[None], best[:, None])
        delta = np.maximum(delta, switch) + log_e[:, t]
    path = np.zeros((n, steps), np.int64)
    path[:, -1] = delta.argmax(axis=1)
    for t in range(steps - 1, 0, -1):
        path[:, t - 1] = back[np.arange(n), t, path[:, t]]
    return path


def ffbs(
    e: np.ndarray, switch_penalty: float, rng, *, predict: Callable | None = None, jump: Callable | None = None
) -> np.ndarray:
    """A path drawn from the posterior of the sticky chain given emissions ``e`` ``(n, steps, S)``.

    Forward filtering: ``alpha[t]`` is the state's probability given steps ``0..t``; the
    prediction from one step to the next keeps the state with probability ``1 - change`` and
    jumps to a uniform state with ``change = exp(-switch_penalty)``.  Backward sampling: the
    last state from ``alpha[-1]``, then each earlier one from ``alpha[t]`` times the transition
    into the state drawn after it.

    The voice-leading score of the joint decoder enters through two hooks, both about the
    jumps: ``predict(t, alpha_prev, pred)`` returns the prediction for step ``t`` (the jumps'
    share already in ``pred``), and ``jump(t, next_state, weights)`` returns the ``(n, S)``
    weights of jumping from each state at ``t`` into ``next_state`` (``change / S`` each
    before the hook).  Returns ``(n, steps)`` state indices.
    """
    n, steps, n_states = e.shape
    change = min(1.0, float(np.exp(-switch_penalty)))
    alpha = np.empty_like(e)
    a = e[:, 0] / e[:, 0].sum(axis=-1, keepdims=True)
    alpha[:, 0] = a
    for t in range(1, steps):
        pred = (1 - change) * a + change / n_states
        if predict is not None:
            pred = predict(t, a, pred)
        a = pred * e[:, t]
        a /= a.sum(axis=-1, keepdims=True)
        alpha[:, t] = a
    path = np.empty((n, steps), np.int64)
    rows = np.arange(n)

    def draw(w):
        c = np.cumsum(w, axis=-1)
        u = rng.random((n, 1)) * c[:, -1:]
        return np.minimum((c < u).sum(axis=-1), n_states - 1)

    path[:, -1] = draw(alpha[:, -1])
    for t in range(steps - 2, -1, -1):
        x = path[:, t + 1]
        weights = np.full((n, n_states), change / n_states)
        if jump is not None:
            weights = jump(t, x, weights)
        w = alpha[:, t] * weights
        w[rows, x] += alpha[rows, t, x] * (1 - change)
        path[:, t] = draw(w)
    return path


def sample_line(prob: np.ndarray, switch_penalty: float, rng, rest_weight: float = 1.0) -> np.ndarray:
    """A line *drawn* from ``(n, steps, pitches)`` note probabilities (:func:`ffbs` on
    :func:`line_emissions`); ``rest_weight`` multiplies the rest's probability.  Returns ``(n, steps)``."""
    return ffbs(line_emissions(prob, rest_weight), switch_penalty, rng)


def with_chord_notes(path: np.ndarray, prob: np.ndarray, polyphony: int, threshold: float) -> np.ndarray:
    """``(n, steps, pitches)`` bool: the line ``path`` (state indices, ``pitches`` = rest) and,
    for ``polyphony`` above 1, up to ``polyphony - 1`` further cells per step whose probability
    in ``prob`` is above ``threshold`` -- and no likelier than the line's own note (a sampled
    line that took a less likely pitch must not get the likelier one added)."""
    pitches = prob.shape[-1]
    onehot = np.zeros(prob.shape[:-1] + (pitches + 1,), bool)
    np.put_along_axis(onehot, path[..., None], True, axis=-1)
    line = onehot[..., :pitches]
    if polyphony <= 1:
        return line
    p_line = np.where(
        path < pitches, np.take_along_axis(prob, np.minimum(path, pitches - 1)[..., None], -1)[..., 0], 0.0
    )
    extra = (prob > float(threshold)) & ~line & (prob <= p_line[..., None])
    if polyphony - 1 < pitches:
        masked = np.where(extra, prob, -1.0)
        kth = -np.partition(-masked, polyphony - 2, axis=-1)[
            ..., polyphony - 2 : polyphony - 1
        ]  # the (p-1)-th strongest
        extra &= masked >= kth
    return line | extra

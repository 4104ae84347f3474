"""One track's line through note probabilities: the most likely one holds notes, a drawn one follows the seed."""

from __future__ import annotations

import numpy as np
import pytest

from capsule_lib.datasets.multitrack import N_PITCHES
from capsule_lib.techniques.gan.lines import sample_line, viterbi_line, with_chord_notes


def test_single_lines_hold_notes_instead_of_flickering():
    prob = np.zeros((1, 8, N_PITCHES))
    prob[0, :, 20] = [0.5, 0.45, 0.5, 0.45, 0.5, 0.45, 0.05, 0.05]
    prob[0, :, 21] = [0.45, 0.5, 0.45, 0.5, 0.45, 0.5, 0.9, 0.9]
    path = viterbi_line(prob, switch_penalty=3.0)[0]
    assert path.tolist() == [21] * 8  # one held note; per-step argmax would change note 6 times
    assert viterbi_line(prob, switch_penalty=0.0)[0].tolist() == [20, 21, 20, 21, 20, 21, 21, 21]


def test_sampled_lines_follow_the_seed_and_the_probabilities():
    prob = np.full((200, 4, 3), 0.0)
    prob[..., 0], prob[..., 1] = 0.7, 0.2  # rest 0.1
    a = sample_line(prob, 0.0, np.random.default_rng(3))  # penalty 0: every step drawn afresh
    assert np.array_equal(a, sample_line(prob, 0.0, np.random.default_rng(3)))
    share = np.bincount(a.ravel(), minlength=4) / a.size
    assert share[0] == pytest.approx(0.7, abs=0.05) and share[1] == pytest.approx(0.2, abs=0.05)
    assert share[3] == pytest.approx(0.1, abs=0.04)  # index 3 = rest
    assert (viterbi_line(prob, 0.0) == 0).all()  # the most likely line: always the likeliest state
    held = sample_line(np.repeat(prob, 16, axis=1), 4.0, np.random.default_rng(3))  # 64 steps, sticky
    changes = (np.diff(held, axis=1) != 0).mean()
    assert (
        changes
        < 0.1
        < (np.diff(sample_line(np.repeat(prob, 16, axis=1), 0.0, np.random.default_rng(3)), axis=1) != 0).mean()
    )


def test_chord_notes_join_the_line_above_the_threshold_and_never_above_its_note():
    prob = np.zeros((1, 1, 6))
    prob[0, 0] = [0.9, 0.6, 0.55, 0.2, 0.95, 0.0]
    line = np.array([[0]])  # the line took pitch 0 (0.9); pitch 4 (0.95) is likelier and must not join
    assert np.flatnonzero(with_chord_notes(line, prob, 1, 0.5)[0, 0]).tolist() == [0]
    assert np.flatnonzero(with_chord_notes(line, prob, 2, 0.5)[0, 0]).tolist() == [0, 1]  # the strongest extra
    assert np.flatnonzero(with_chord_notes(line, prob, 4, 0.5)[0, 0]).tolist() == [0, 1, 2]  # 0.2 is below 0.5
    rest = np.array([[6]])  # state 6 of 6 pitches: a rest, and no chord notes either
    assert not with_chord_notes(rest, prob, 3, 0.5).any()

"""Joint decoding of GAN parts: on fixed probabilities, voice leading moves each rate the right way."""

import numpy as np
import pytest

from capsule_lib import metrics as M
from capsule_lib.techniques.gan.decoder import decode
from capsule_lib.techniques.gan.lines import sample_line
from capsule_lib.techniques.gan.voicing import (
    PART_RANGES,
    _guided_line,
    _parallel_count,
    _parallel_sums,
    decode_voices,
    part_range,
    part_ranges,
    voice_order,
)

LOW = 24  # MIDI pitch of index 0 (the GAN's grid)
P = 84
STEPS = 16


def idx(pitch):
    return pitch - LOW


def melody_roll(n, pitches):
    """``(n, 16, 84)``: the melody plays ``pitches`` as 4 quarter notes."""
    m = np.zeros((n, STEPS, P), bool)
    for q, p in enumerate(pitches):
        m[:, 4 * q : 4 * q + 4, idx(p)] = True
    return m


def output_from(probs):
    """Generator output in [-1, 1] from probabilities ``(n, parts, steps, 84)``."""
    return np.asarray(probs) * 2 - 1


def lines_of(melody, acc):
    """Voice lines (MIDI pitches, -1 rest) of the melody and each decoded part, per sample."""
    out = []
    for s in range(len(melody)):
        rolls = [melody[s]] + [acc[s, j] for j in range(acc.shape[1])]
        out.append(np.array([np.where(r.any(-1), r.shape[-1] - 1 - r[:, ::-1].argmax(-1) + LOW, -1) for r in rolls]))
    return out


def decode_both(prob, melody, weights, ranges=None, seed=0):
    """Each part drawn on its own and the parts drawn jointly, lines that hold their notes
    (a change of note costs 2 nats: 13 % a step)."""
    k = prob.shape[1]
    kw = dict(switch_penalty=[2.0] * k, rest_weight=[1.0] * k, chord_threshold=[0.5] * k)
    alone = decode(output_from(prob), [1] * k, kw["switch_penalty"], seed=seed, rest_weight=kw["rest_weight"])
    joint = decode_voices(output_from(prob), melody, [1] * k, seed=seed, weights=weights, ranges=ranges, **kw)
    return alone, joint


def test_the_guided_line_without_a_score_is_exactly_the_sampled_line():
    rng = np.random.default_rng(0)
    prob = rng.random((5, STEPS, P)) ** 8
    a = sample_line(prob, 0.3, np.random.default_rng(7), rest_weight=1.5)
    b = _guided_line(prob, 0.3, np.random.default_rng(7), 1.5, np.ones_like(prob), [], 0.0)
    assert np.array_equal(a, b)


def test_parallel_sums_agree_with_counting_every_pair():
    rng = np.random.default_rng(1)
    alpha = rng.random((6, 30))
    a = np.array([10, 10, 12, 5, 20, 3])
    b = np.array([12, 8, 11, 7, 20, 9])  # the fifth sample holds its note: no parallels at all
    fast = _parallel_sums(alpha, a, b)
    y = np.arange(30)
    for s in range(6):
        pairs = _parallel_count(y[:, None], y[None, :], np.array(a[s]), np.array(b[s]))  # (from y, to x)
        assert pairs.sum() > 0 or a[s] == b[s]
        if a[s] != b[s]:  # _parallel_sums is only asked about moves
            assert fast[s] == pytest.approx(alpha[s] @ pairs)


def test_joint_decoding_writes_fewer_parallel_octaves_than_independent_decoding():
    # melody C5 C5 D5 D5; the part below is torn between C4 -> D4 (parallel octaves with the
    # melody) and C4 -> B3 (contrary motion), a little in favour of the octaves
    n = 400
    melody = melody_roll(n, [72, 72, 74, 74])
    prob = np.full((n, 1, STEPS, P), 1e-4)
    prob[:, 0, :8, idx(60)] = 0.95
    prob[:, 0, 8:, idx(62)] = 0.55
    prob[:, 0, 8:, idx(59)] = 0.40
    alone, joint = decode_both(prob, melody, {"parallel": 6.0})

    def count(acc):
        return sum(M.voice_motion(line)[0] for line in lines_of(melody, acc))

    assert count(alone) > 0.4 * n  # about half the draws move in octaves on their own
    assert count(joint) < 0.1 * count(alone)
    # the part still plays: the joint draw mostly takes the contrary B3
    assert joint[:, 0, 12, idx(59)].mean() > 0.8


def test_joint_decoding_avoids_clashes_with_the_melody():
    n = 400
    melody = melody_roll(n, [65, 65, 65, 65])  # F4 held
    prob = np.full((n, 1, STEPS, P), 1e-4)
    prob[:, 0, :, idx(64)] = 0.5  # E4: a minor second below F4
    prob[:, 0, :, idx(60)] = 0.45  # C4: a fourth below
    alone, joint = decode_both(prob, melody, {"clash": 3.0})

    def rate(acc):
        return np.mean(
            [M._clashing_steps(np.pad(melody[s] | acc[s, 0], ((0, 0), (LOW, 128 - LOW - P)))).mean() for s in range(n)]
        )

    assert rate(alone) > 0.3
    assert rate(joint) < 0.3 * rate(alone)


def test_joint_decoding_keeps_parts_in_range_and_below_the_melody():
    n = 200
    melody = melody_roll(n, [67, 67, 67, 67])  # G4
    prob = np.full((n, 2, STEPS, P), 1e-4)
    prob[:, 0, :, idx(71)] = 0.5  # the alto wants B4, above the melody ...
    prob[:, 0, :, idx(64)] = 0.45  # ... or E4 below it
    prob[:, 1, :, idx(33)] = 0.5  # the bass wants A1, under its range ...
    prob[:, 1, :, idx(45)] = 0.45  # ... or A2 inside it
    ranges = [PART_RANGES["alto"], PART_RANGES["bass"]]
    alone, joint = decode_both(prob, melody, {"crossing": 4.0, "range": 4.0}, ranges=ranges)

    def above(acc):
        return acc[:, 0, :, idx(68) :].any(-1).mean()

    def low_bass(acc):
        return acc[:, 1, :, : idx(PART_RANGES["bass"][0])].any(-1).mean()

    assert above(alone) > 0.3 and above(joint) < 0.1
    assert low_bass(alone) > 0.3 and low_bass(joint) < 0.1


def test_drum_parts_are_drawn_on_their_own():
    # the same probabilities, once as a drum part and once as a pitched part: only the pitched
    # part keeps away from the melody's C5 (a drum "pitch" is an instrument, not a note)
    n = 300
    melody = melody_roll(n, [72, 72, 72, 72])
    prob = np.full((n, 1, STEPS, P), 1e-4)
    prob[:, 0, :, idx(73)] = 0.5  # C#5 -- as a pitch, a minor second above the melody
    prob[:, 0, :, idx(69)] = 0.45
    kw = dict(switch_penalty=[2.0], rest_weight=[1.0], chord_threshold=[0.5], seed=3, weights={"clash": 4.0})
    drum = decode_voices(output_from(prob), melody, [1], drums=[True], **kw)
    pitched = decode_voices(output_from(prob), melody, [1], drums=[False], **kw)
    assert drum[:, 0, :, idx(73)].mean() > 0.3
    assert pitched[:, 0, :, idx(73)].mean() < 0.05


def test_decode_without_voice_leading_is_unchanged_and_with_it_calls_the_joint_decoder():
    rng = np.random.default_rng(2)
    out = rng.random((4, 3, STEPS, P)) * 2 - 1.9
    melody = melody_roll(4, [60, 62, 64, 65])
    plain = decode(out, [1, 1, 1], 0.1, seed=5)
    assert np.array_equal(plain, decode(out, [1, 1, 1], 0.1, seed=5, melody=melody))  # no weights: independent
    joint = decode(out, [1, 1, 1], 0.1, seed=5, melody=melody, voice_leading={"parallel": 6.0})
    expected = decode_voices(
        out,
        melody,
        [1, 1, 1],
        switch_penalty=[0.1] * 3,
        rest_weight=[1.0] * 3,
        chord_threshold=[0.5] * 3,
        seed=5,
        weights={"parallel": 6.0},
    )
    assert np.array_equal(joint, expected)


def test_part_ranges_and_the_drawing_order():
    assert part_range("Bass") == PART_RANGES["bass"] and part_range("kazoo") is None
    assert part_ranges(["alto", "kazoo"]) == [list(PART_RANGES["alto"]), None]
    assert voice_order(3) == [2, 0, 1] and voice_order(1) == [0]

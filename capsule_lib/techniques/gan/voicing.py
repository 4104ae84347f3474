"""Voice leading for GAN accompaniment: the parts' ranges, and decoding the parts *jointly*.

Why
    The generator writes one probability per cell for every accompaniment part at once, but
    :func:`~capsule_lib.techniques.gan.decoder.decode` without weights draws each part's line on its own.  Two
    lines drawn independently from good marginals still move in parallel fifths and octaves,
    cross each other and rub in seconds, because nothing asks how they sound *together*: the
    shipped models wrote 6-11 parallels per 100 joint moves where Bach writes 0.2.

How (:func:`decode_voices`)
    The parts are drawn one after another -- the bass first (the outer voices carry the
    harmony), then the others from the top down -- each by the same forward-filtering,
    backward-sampling draw as :func:`~capsule_lib.techniques.gan.lines.sample_line` (the
    same calibrated switch penalty and rest weight), but *conditioned on the melody and on
    the parts already drawn*: its hidden Markov model's emission and transition scores are
    multiplied by ``exp(-weight)`` for every

    ``parallel``   transition that, with a part already drawn (or the melody) moving the same
                   way at the same step, keeps a perfect fifth or octave (the move
                   :func:`capsule_lib.metrics.voice_motion` counts);
    ``clash``      pitch 1, 11 or 13 semitones from a note sounding in the melody or a part drawn;
    ``crossing``   pitch above a higher part's line (the melody's for the top part) or below
                   a lower part's already drawn;
    ``range``      pitch outside the part's range (:data:`PART_RANGES`);
    ``out_of_key`` pitch outside the scale of the melody's key (Krumhansl-Kessler).

    So a part is drawn from the generator's probabilities *times* a voice-leading score -- a
    product of experts (Hinton, 2002), the "scored" decoding Coconet's blocked Gibbs sampling
    approximates (Huang et al., 2017) -- and each draw is exact for its part given the others
    (forward filtering, backward sampling; the parallel weights enter the filter through
    prefix sums over the pitches of one interval class, so a part costs ``O(steps x pitches)``
    per decoded voice).

The weights (:data:`VOICE_LEADING`, nats) are set against the data's own rates: on the
validation melodies of each genre the decoder is asked to write parallels, clashes and
crossings no more often than the real accompaniment of those melodies does (see
BENCHMARKS.md, "GAN decoding").  A model card records the weights it decodes with
(``hyperparameters["voice_leading"]``); a card without them decodes each part on its own,
as it was trained and evaluated.

Part ranges
    :data:`PART_RANGES` gives, per part name of the genre data sets, the MIDI range a part
    may use: the singer's range for the voices of chorales and Renaissance polyphony (the
    usual textbook ranges, widened to hold at least 99.5 % of the corpus' own notes), the
    instrument's practical range for the strings of a quartet.
"""

from __future__ import annotations

import numpy as np

from ...keys import KK_MAJOR, KK_MINOR, key_scale
from ...metrics import CLASH_INTERVALS
from .lines import ffbs, line_emissions, with_chord_notes

__all__ = ["PART_RANGES", "part_range", "part_ranges", "VOICE_LEADING", "decode_voices", "voice_order", "melody_scales"]

#: part name -> (lowest, highest) MIDI pitch.
PART_RANGES = {
    # Bach chorales: SATB
    "soprano": (60, 81),
    "alto": (53, 74),
    "tenor": (47, 69),
    "bass": (38, 62),
    # string quartet: open G string / C string up to a practical top
    "violin 1": (55, 100),
    "violin 2": (55, 91),
    "viola": (48, 81),
    "cello": (36, 72),
    # Renaissance polyphony (music21's Palestrina and Monteverdi as written)
    "cantus": (57, 81),
    "altus": (50, 76),
    "bassus": (36, 64),
}

#: Default penalty weights (nats) of :func:`decode_voices`.
VOICE_LEADING = {"parallel": 6.0, "clash": 3.0, "crossing": 3.0, "range": 4.0, "out_of_key": 1.0}


def part_range(name: str) -> tuple[int, int] | None:
    """The range of the part ``name`` (None for a part without one, e.g. a custom data set's)."""
    return PART_RANGES.get(str(name).strip().lower())


def part_ranges(names) -> list[tuple[int, int] | None]:
    """:func:`part_range` of each name, as lists (JSON-friendly) or None."""
    return [list(r) if (r := part_range(n)) is not None else None for n in names]


def voice_order(n_parts: int) -> list[int]:
    """The order parts are drawn in (accompaniment indices): the lowest first, then from the top."""
    return [n_parts - 1] + list(range(n_parts - 1)) if n_parts > 1 else list(range(n_parts))


def melody_scales(melody: np.ndarray, pitch_low: int = 24) -> np.ndarray:
    """``(n, 12)`` bool: per sample, the scale of the key that best fits its melody (the
    Krumhansl-Kessler correlation of :func:`capsule_lib.metrics.best_key`, duration-weighted;
    all True where the melody is silent or flat)."""
    m = np.asarray(melody, bool)
    n, _, pitches = m.shape
    hist = np.zeros((n, 12))
    np.add.at(hist, (slice(None), (np.arange(pitches) + pitch_low) % 12), m.sum(axis=1))
    keys = [(k, mode) for mode in ("major", "minor") for k in range(12)]
    profiles = np.array([np.roll(KK_MAJOR if mode == "major" else KK_MINOR, k) for k, mode in keys])
    h = hist - hist.mean(axis=1, keepdims=True)
    q = profiles - profiles.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(h, axis=1)
    r = (h @ q.T) / np.where(norm > 0, norm, 1)[:, None] / np.linalg.norm(q, axis=1)[None]
    scales = np.stack([key_scale(keys[b]) for b in r.argmax(axis=1)])
    scales[norm == 0] = True
    return scales


def _top_line(roll: np.ndarray) -> np.ndarray:
    """``(n, steps)`` index of the highest sounding pitch, -1 in rests."""
    p = roll.shape[-1]
    has = roll.any(axis=-1)
    top = p - 1 - roll[..., ::-1].argmax(axis=-1)
    return np.where(has, top, -1)


def _bottom_line(roll: np.ndarray) -> np.ndarray:
    """``(n, steps)`` index of the lowest sounding pitch, -1 in rests."""
    return np.where(roll.any(axis=-1), roll.argmax(axis=-1), -1)


def _clash_mask(roll: np.ndarray) -> np.ndarray:
    """Cells 1, 11 or 13 semitones from a sounding cell of ``roll`` (same shape)."""
    out = np.zeros_like(roll)
    for d in CLASH_INTERVALS:
        out[..., d:] |= roll[..., :-d]
        out[..., :-d] |= roll[..., d:]
    return out


def _parallel_sums(alpha: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each sample whose other voice moves ``a -> b`` (pitch indices), and each pitch ``x``:
    the filtered mass of the pitches ``y`` from which ``y -> x`` is a parallel fifth or octave
    with that move (``|y - a| mod 12 == |x - b| mod 12`` in {0, 7}, moving the same way).

    ``alpha`` is ``(m, pitches)``; ``a``, ``b`` are ``(m,)``.  Returns ``(m, pitches)``.
    """
    m, p = alpha.shape
    idx = np.arange(p)
    iv_y = np.abs(idx[None] - a[:, None]) % 12
    iv_x = np.abs(idx[None] - b[:, None]) % 12
    up = (b > a)[:, None]
    out = np.zeros((m, p))
    for c in (0, 7):
        w = alpha * (iv_y == c)
        inclusive = np.cumsum(w, axis=1)
        below = inclusive - w  # sum over y < x
        above = inclusive[:, -1:] - inclusive  # sum over y > x
        out += (iv_x == c) * np.where(up, below, above)
    return out


def _parallel_count(y: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 where ``y -> x`` with the other voice's ``a -> b`` is a parallel fifth/octave (all ``(m, ...)``)."""
    moving = (a >= 0) & (b >= 0) & (a != b)
    iv0 = np.abs(y - a) % 12
    iv1 = np.abs(x - b) % 12
    return (moving & (y != x) & (np.sign(x - y) == np.sign(b - a)) & np.isin(iv0, (0, 7)) & (iv0 == iv1)).astype(float)


def _guided_line(prob, switch_penalty, rng, rest_weight, factor, moves, parallel):
    """:func:`~capsule_lib.techniques.gan.lines.sample_line` with a voice-leading score.

    ``factor`` ``(n, steps, pitches)`` multiplies the pitch states' emissions; ``moves`` is a
    list of ``(n, steps)`` lines (pitch index, -1 rest) of voices already decided; a
    transition that makes a parallel fifth/octave with one of them is multiplied by
    ``exp(-parallel)`` (in both passes of :func:`~capsule_lib.techniques.gan.lines.ffbs`).
    Returns ``(n, steps)`` states (``pitches`` = rest).
    """
    n, steps, pitches = prob.shape
    n_states = pitches + 1
    change = min(1.0, float(np.exp(-switch_penalty)))
    keep = 1.0 - np.exp(-parallel)  # share of a parallel transition's weight taken away
    lines = [np.asarray(line) for line in moves]
    if keep <= 0 or not lines:
        return ffbs(line_emissions(prob, rest_weight, factor), switch_penalty, rng)
    states = np.arange(n_states)

    def predict(t, a, pred):
        for line in lines:
            prev, cur = line[:, t - 1], line[:, t]
            rows = np.flatnonzero((prev >= 0) & (cur >= 0) & (prev != cur))
            if len(rows):
                sub = _parallel_sums(a[rows, :pitches], prev[rows], cur[rows])
                pred[rows, :pitches] -= (change / n_states) * keep * sub
        return np.maximum(pred, 0.0)

    def jump(t, x, weights):
        count = np.zeros((n, n_states))
        x_is_pitch = (x < pitches)[:, None]
        for line in lines:
            prev, cur = line[:, t][:, None], line[:, t + 1][:, None]
            count[:, :pitches] += _parallel_count(states[None, :pitches], x[:, None], prev, cur) * x_is_pitch
        return weights * np.exp(-parallel * count)

    return ffbs(line_emissions(prob, rest_weight, factor), switch_penalty, rng, predict=predict, jump=jump)


def _voice_leading_factor(t, melody, mel_line, decided, voices, weights, ranges, pitch_low, scales) -> np.ndarray:
    """``(n, steps, pitches)``: the emission multiplier of part ``t`` given the melody and the
    decided ``voices`` (clashes, crossings, range, key; see the module notes)."""
    n, steps, pitches = melody.shape
    idx = np.arange(pitches)
    factor = np.ones((n, steps, pitches))
    if weights.get("out_of_key"):
        inside = scales[:, (idx + pitch_low) % 12]  # (n, pitches)
        factor *= np.where(inside, 1.0, np.exp(-weights["out_of_key"]))[:, None, :]
    if weights.get("clash"):
        sounding = melody.copy()
        for j in voices:
            sounding |= decided[:, j]
        factor *= np.where(_clash_mask(sounding), np.exp(-weights["clash"]), 1.0)
    if weights.get("crossing") and ranges[t] is not None:
        # above: the melody and the decided voices of a lower index; below: those of a higher index
        ceiling = np.where(mel_line >= 0, mel_line, pitches)
        floor = np.full((n, steps), -1)
        for j in (j for j in voices if ranges[j] is not None):
            top = _top_line(decided[:, j])
            if j < t:
                ceiling = np.where(top >= 0, np.minimum(ceiling, top), ceiling)
            else:
                floor = np.maximum(floor, top)
        crossing = (idx[None, None] > ceiling[..., None]) | (idx[None, None] < floor[..., None])
        factor *= np.where(crossing, np.exp(-weights["crossing"]), 1.0)
    if weights.get("range") and ranges[t] is not None:
        low, high = ranges[t]
        outside = (idx + pitch_low < low) | (idx + pitch_low > high)
        factor *= np.where(outside[None, None], np.exp(-weights["range"]), 1.0)
    return factor


def decode_voices(
    output: np.ndarray,
    melody: np.ndarray,
    polyphony: list[int],
    *,
    switch_penalty,
    rest_weight,
    chord_threshold,
    seed: int,
    weights: dict | None = None,
    ranges=None,
    drums=None,
    scales: np.ndarray | None = None,
    pitch_low: int = 24,
    order: list[int] | None = None,
) -> np.ndarray:
    """Generator output ``(n, parts, steps, pitches)`` in [-1, 1] -> bool rolls, the parts drawn jointly.

    Parameters
    ----------
    output : ndarray
        The generator's accompaniment (a cell's ``(x + 1) / 2`` is the probability it sounds).
    melody : ndarray
        ``(n, steps, pitches)`` bool: the melody the parts go with.
    polyphony, switch_penalty, rest_weight, chord_threshold
        Per part, as for :func:`~capsule_lib.techniques.gan.decoder.decode`.
    seed : int
        The draw's random seed.
    weights : dict, optional
        Penalty weights in nats: ``parallel``, ``clash``, ``crossing``, ``range``, ``out_of_key`` (default
        :data:`VOICE_LEADING`; a missing key counts 0).
    ranges : list of (low, high) or None, optional
        Per part, its MIDI range (None: no range for that part).  Only parts with a range
        are voices of a known genre, whose tracks are ordered from high to low, so only they
        are kept from crossing the melody and each other.
    drums : list of bool, optional
        Per part, whether it is a drum track: drawn on its own, and no voice for the others.
    scales : ndarray, optional
        ``(n, 12)`` bool: per sample, the scale pitches out of key are weighed against with
        the ``out_of_key`` weight (default: :func:`melody_scales` of each sample's melody;
        :func:`~capsule_lib.techniques.gan.sample.accompany` passes the whole melody's).
    order : list of int, optional
        The order parts are drawn in (default :func:`voice_order`).
    """
    weights = dict(VOICE_LEADING if weights is None else weights)
    out = np.asarray(output, dtype=np.float64)
    n, k, steps, pitches = out.shape
    prob = (out + 1) / 2
    rng = np.random.default_rng(int(seed))
    melody = np.asarray(melody, bool)
    order = voice_order(k) if order is None else list(order)
    ranges = list(ranges) if ranges is not None else [None] * k
    drums = list(drums) if drums is not None else [False] * k
    decided = np.zeros((n, k, steps, pitches), bool)
    done: list[int] = []
    mel_line = _top_line(melody)
    if weights.get("out_of_key") and scales is None:
        scales = melody_scales(melody, pitch_low)
    for t in order:
        pt = prob[:, t]
        factor = np.ones_like(pt)
        voices = [j for j in done if not drums[j]]
        moves, parallel = [], 0.0
        if not drums[t]:  # a drum track is unpitched: drawn on its own
            factor = _voice_leading_factor(t, melody, mel_line, decided, voices, weights, ranges, pitch_low, scales)
            moves = [mel_line] + [_top_line(decided[:, j]) for j in voices]
            parallel = float(weights.get("parallel", 0.0))
        path = _guided_line(pt, float(switch_penalty[t]), rng, float(rest_weight[t]), factor, moves, parallel)
        line = with_chord_notes(path, pt * factor, polyphony[t], chord_threshold[t])  # from the voice-led probabilities
        decided[:, t] = line
        done.append(t)
    return decided

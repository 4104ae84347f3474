import numpy as np
import pytest
import torch

from capsule_lib.errors import CapsuleError
from capsule_lib.models import ModelRegistry
from capsule_lib.score import Note, Score, Track
from capsule_lib.store import CompositionStore
from capsule_lib.techniques.transformer import tokens as tok
from capsule_lib.techniques.transformer.model import TransformerConfig, TransformerXL
from capsule_lib.techniques.transformer.sample import (
    _clean_events,
    _compress,
    _draw,
    extend,
    filter_nucleus,
    filter_topk,
    generate,
    next_token_probabilities,
    prompt_from_tokens,
)

TINY = TransformerConfig(d_model=32, n_heads=2, n_layers=2, d_ff=64, segment_len=8, mem_len=8, dropout=0.1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_model(seed=0):
    torch.manual_seed(seed)
    m = TransformerXL(TINY).eval()
    # Sharper than the init's near-uniform logits, so sampling choices actually depend on the context.
    with torch.no_grad():
        m.head.weight.mul_(40)
    return m


@pytest.fixture
def registered():
    m = tiny_model()
    reg = ModelRegistry()
    reg.create("tiny-tx", "transformer", algorithm="TransformerXL", hyperparameters={"model": TINY.to_dict()})
    reg.save_weights("tiny-tx", m.state_dict())
    reg.update("tiny-tx", status="complete")
    return "tiny-tx"


def melody(n=16, resolution=24, tempo=120.0, seed=0):
    rng = np.random.default_rng(seed)
    notes, t = [], 0
    for _ in range(n):
        d = int(rng.choice([resolution // 2, resolution, 2 * resolution]))
        notes.append(Note(t, int(rng.integers(55, 80)), d, int(rng.integers(50, 110))))
        t += d
    return Score.from_notes(notes, resolution=resolution, tempo=tempo)


# --------------------------------------------------------------------------- filters


def test_topk_keeps_248_of_310():
    p = np.random.default_rng(0).dirichlet(np.ones(310))
    out = filter_topk(p, 0.80)
    assert (out > 0).sum() == 248
    assert out.sum() == pytest.approx(1.0)
    top = np.argsort(-p)[:248]
    assert set(np.flatnonzero(out)) == set(top)
    np.testing.assert_allclose(out[top], p[top] / p[top].sum())


@pytest.mark.parametrize("threshold, k", [(0.1, 31), (0.5, 155), (0.99, 307)])
def test_topk_sizes(threshold, k):
    p = np.random.default_rng(1).dirichlet(np.ones(310))
    assert (filter_topk(p, threshold) > 0).sum() == k


def test_topk_small_and_ties():
    np.testing.assert_allclose(filter_topk([0.1, 0.6, 0.3], 0.5), [0.0, 2 / 3, 1 / 3])
    out = filter_topk([0.25, 0.25, 0.25, 0.25], 0.5)  # ties: exactly k, lower ids first
    assert np.array_equal(out, np.array([0.5, 0.5, 0.0, 0.0]))
    assert (filter_topk([0.2, 0.8], 0.1) > 0).sum() == 1  # at least one


def test_nucleus_spec_example():
    out = filter_nucleus([0.4, 0.3, 0.2, 0.05, 0.05], 0.96)
    np.testing.assert_allclose(out, np.array([0.4, 0.3, 0.2, 0.05, 0.0]) / 0.95)


def test_nucleus_more_cases():
    p = [0.05, 0.4, 0.05, 0.3, 0.2]  # unsorted input
    np.testing.assert_allclose(filter_nucleus(p, 0.9), np.array([0, 0.4, 0, 0.3, 0.2]) / 0.9)
    np.testing.assert_allclose(filter_nucleus(p, 0.75), np.array([0, 0.4, 0, 0.3, 0]) / 0.7)
    np.testing.assert_allclose(filter_nucleus(p, 0.3), np.array([0, 1.0, 0, 0, 0]))  # the top token always stays
    np.testing.assert_allclose(filter_nucleus([2.0, 1.0, 1.0], 0.5), [1.0, 0, 0])  # unnormalised input


def test_filters_batched_and_bad_input():
    p = np.random.default_rng(2).dirichlet(np.ones(310), size=3)
    out = filter_topk(p, 0.8)
    assert out.shape == (3, 310) and ((out > 0).sum(-1) == 248).all()
    out = filter_nucleus(p, 0.5)
    np.testing.assert_allclose(out.sum(-1), 1.0)
    for bad in ([], [0.0, 0.0], [-0.1, 1.1], [np.nan, 1.0]):
        with pytest.raises(CapsuleError):
            filter_topk(bad, 0.5)
    for bad in (0, 1.5, "0.5", True):
        with pytest.raises(CapsuleError):
            filter_nucleus([0.5, 0.5], bad)


def test_random_and_banned_tokens():
    logits = np.random.default_rng(3).normal(size=310)
    p = next_token_probabilities(logits, "random", 0.1, 1.0)
    assert p[tok.PAD] == 0 and p[tok.START] == 0
    expected = np.exp(logits[2:] - logits[2:].max())
    np.testing.assert_allclose(p[2:], expected / expected.sum())
    # the threshold is ignored by random
    np.testing.assert_allclose(next_token_probabilities(logits, "random", 0.9, 1.0), p)


def test_temperature_before_filtering():
    logits = np.random.default_rng(4).normal(size=310) * 3

    def entropy(q):
        q = q[q > 0]
        return -(q * np.log(q)).sum()

    cold, warm, hot = (next_token_probabilities(logits, "random", 0.5, t) for t in (0.1, 1.0, 4.0))
    assert entropy(cold) < entropy(warm) < entropy(hot)
    assert cold.argmax() == warm.argmax() == hot.argmax() == logits[2:].argmax() + 2
    # nucleus after temperature: a flatter distribution needs more tokens to reach the threshold
    n_cold = (next_token_probabilities(logits, "nucleus", 0.8, 0.5) > 0).sum()
    n_hot = (next_token_probabilities(logits, "nucleus", 0.8, 3.0) > 0).sum()
    assert n_cold < n_hot
    with pytest.raises(CapsuleError):
        next_token_probabilities(logits, "random", 0.5, 0)
    with pytest.raises(CapsuleError):
        next_token_probabilities(logits, "greedy", 0.5, 1.0)


def test_draw_follows_the_distribution():
    p = np.array([0.5, 0.0, 0.25, 0.25, 0.0])
    rng = np.random.default_rng(0)
    draws = np.array([_draw(p, rng.random()) for _ in range(20000)])
    counts = np.bincount(draws, minlength=5) / len(draws)
    np.testing.assert_allclose(counts, p, atol=0.015)
    assert _draw(p, 0.0) == 0 and _draw(p, 0.5) == 2 and _draw(p, 0.999999) == 3


# --------------------------------------------------------------------------- generate


PROMPT = tok.encode(melody(8), start=True)


def test_generate_is_deterministic_by_seed():
    m = tiny_model()
    a = generate(m, PROMPT, max_tokens=60, seed=7)
    b = generate(m, PROMPT, max_tokens=60, seed=7)
    c = generate(m, PROMPT, max_tokens=60, seed=8)
    assert a == b and a != c and len(a) == 60
    assert all(t not in (tok.PAD, tok.START) for t in a)
    assert all(0 <= t < tok.VOCAB_SIZE for t in a)


@pytest.mark.parametrize(
    "sampling, threshold, temperature", [("topk", 0.8, 1.0), ("nucleus", 0.9, 1.3), ("random", 0.5, 0.7)]
)
def test_cache_and_no_cache_give_identical_tokens(sampling, threshold, temperature):
    m = tiny_model(1)
    prompt = PROMPT * 2  # longer than the model's reach (2 x 8 + 1 tokens)
    kw = dict(max_tokens=80, sampling=sampling, threshold=threshold, temperature=temperature, seed=11)
    cached = generate(m, prompt, use_cache=True, **kw)
    fresh = generate(m, prompt, use_cache=False, **kw)
    assert cached == fresh
    assert len(set(cached)) > 10  # a real sample, not a constant


def test_generate_stops_at_the_duration():
    m = tiny_model(2)
    out = generate(m, PROMPT, n_seconds=3.0, seed=1)
    ms = [tok.shift_ticks(t) * 10 for t in out]
    assert sum(ms) >= 3000 and sum(ms[:-1]) < 3000
    assert tok.is_shift(out[-1])
    with pytest.raises(CapsuleError):
        generate(m, PROMPT)


def test_generate_from_empty_prompt_and_keeps_training_flag():
    m = tiny_model(3).train()
    out = generate(m, [], max_tokens=5, seed=0)
    assert len(out) == 5 and m.training


def test_prompt_from_tokens_cuts_by_time():
    s = tok.SHIFT_BASE
    seq = [
        tok.START,
        tok.VELOCITY_BASE + 20,
        tok.NOTE_ON_BASE + 39,
        s + 49,
        tok.NOTE_OFF_BASE + 39,
        tok.VELOCITY_BASE + 25,
        tok.NOTE_ON_BASE + 41,
        s + 49,
        tok.NOTE_OFF_BASE + 41,
    ]
    assert prompt_from_tokens(seq, 5.0) == seq  # whole piece: START kept
    assert prompt_from_tokens(seq, 0.5) == [tok.VELOCITY_BASE + 20] + seq[4:]
    cut = prompt_from_tokens(seq, 0.7)  # 200 ms of the first shift, with the velocity in force
    assert cut == [tok.VELOCITY_BASE + 20, s + 19] + seq[4:]
    assert tok.total_seconds(cut) == pytest.approx(0.7)


def test_clean_events():
    s, on, off, vel = tok.SHIFT_BASE, tok.NOTE_ON_BASE, tok.NOTE_OFF_BASE, tok.VELOCITY_BASE
    prompt = [vel + 3, on + 10, s + 9]
    gen = [off + 10, on + 5, tok.START, s + 99, on + 5, s + 99]  # orphan off, re-strike, shift past the end
    out = _clean_events(prompt, gen, 1500.0)
    assert out == [vel + 3, on + 5, s + 99, off + 5, on + 5, s + 49, off + 5]


def test_compress():
    notes = [(10, 60, 100, 90), (200, 62, 5, 90), (205, 64, 3, 90)]
    out = _compress(notes, max_rest=4, max_len=20)
    assert out == [(4, 60, 20, 90), (28, 62, 5, 90), (33, 64, 3, 90)]


# --------------------------------------------------------------------------- extend


def silences(notes, start):
    covered, gaps = start, []
    for n in sorted(notes):
        gaps.append(n.start - covered)
        covered = max(covered, n.end)
    return gaps


def test_extend_appends_after_the_input_and_keeps_it(registered):
    score = melody(16)
    other = Track(name="bass", program=33, notes=(Note(0, 40, 48, 80),))
    score = score.replace(tracks=score.tracks + (other,))
    out, comp = extend(score, registered, seed=3, extension_duration=10.0, return_composition=True)
    assert out.resolution == score.resolution and out.tempo == score.tempo
    assert out.tracks[1] == other
    old = set(map(id, score.tracks[0].notes))
    kept = [n for n in out.tracks[0].notes if id(n) in old]
    assert len(kept) == len(score.tracks[0].notes)  # the same Note objects
    assert sorted(kept) == sorted(score.tracks[0].notes)
    new = [n for n in out.tracks[0].notes if id(n) not in old]
    assert new, "nothing was generated"
    assert min(n.start for n in new) >= score.end
    # never longer than asked (10 s at 120 bpm, 24 steps per beat = 480 steps)
    assert max(n.end for n in new) <= score.end + 480
    assert comp is not None and comp.technique == "transformer" and comp.model == "tiny-tx"
    p = comp.parameters
    assert p["seed"] == 3 and p["sampling"] == "topk" and p["threshold"] == 0.8 and p["creative_risk"] == 1.0
    assert p["extension_duration"] == 10.0 and p["input_duration"] == 10.0
    assert p["max_rest"] == 2.0 and p["max_note_length"] == 2.0 and p["notes_added"] == len(new)
    assert len(CompositionStore().list()) == 1


def test_extend_respects_max_rest_and_max_note_length(registered):
    score = melody(12, tempo=100.0)
    sps = 100.0 * 24 / 60  # steps per second
    loose = extend(score, registered, seed=5, max_rest=60.0, max_note_length=60.0, extension_duration=15.0, save=False)
    tight = extend(score, registered, seed=5, max_rest=0.25, max_note_length=0.4, extension_duration=15.0, save=False)
    n_in = len(score.tracks[0].notes)
    loose_new = sorted(set(loose.tracks[0].notes) - set(score.tracks[0].notes))
    tight_new = sorted(set(tight.tracks[0].notes) - set(score.tracks[0].notes))
    assert len(tight.tracks[0].notes) - n_in == len(loose.tracks[0].notes) - n_in > 0
    # the loose run really had long notes and long rests, the tight one has none
    assert max(n.duration for n in loose_new) > 0.4 * sps
    assert max(silences(loose_new, score.end)) > 0.25 * sps
    assert max(n.duration for n in tight_new) <= 0.4 * sps
    assert max(silences(tight_new, score.end)) <= 0.25 * sps
    assert min(n.start for n in tight_new) >= score.end


def test_extend_is_deterministic_and_seed_recorded(registered):
    score = melody(10)
    a = extend(score, registered, seed=42, extension_duration=5.0, save=False)
    b = extend(score, registered, seed=42, extension_duration=5.0, save=False)
    assert a == b
    out, comp = extend(score, registered, extension_duration=5.0, return_composition=True)
    again = extend(score, registered, extension_duration=5.0, seed=comp.parameters["seed"], save=False)
    assert again == out


@pytest.mark.parametrize("sampling", ["nucleus", "random", "TopK"])
def test_extend_other_sampling(registered, sampling):
    out, comp = extend(
        melody(8),
        registered,
        sampling=sampling,
        threshold=0.5,
        creative_risk=1.5,
        extension_duration=4.0,
        seed=1,
        return_composition=True,
    )
    assert comp.parameters["sampling"] == sampling.lower()
    assert len(out.notes) >= len(melody(8).notes)


def test_extend_with_a_network_object_and_no_save():
    out, comp = extend(melody(8), tiny_model(), seed=0, extension_duration=3.0, save=False, return_composition=True)
    assert comp is None and CompositionStore().list() == []
    assert isinstance(out, Score)


def test_extend_melody_track_by_name(registered):
    score = Score(
        tracks=(Track(name="bass", notes=(Note(0, 40, 24),)), Track(name="lead", notes=melody(8).tracks[0].notes))
    )
    out = extend(score, registered, track="lead", seed=2, extension_duration=4.0, save=False)
    assert out.tracks[0] == score.tracks[0]
    assert len(out.tracks[1].notes) >= len(score.tracks[1].notes)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sampling": "greedy"},
        {"sampling": 3},
        {"threshold": 0.05},
        {"threshold": 1.0},
        {"threshold": "0.8"},
        {"creative_risk": 0},
        {"creative_risk": 5},
        {"creative_risk": float("nan")},
        {"input_duration": 0},
        {"input_duration": 1000},
        {"extension_duration": 0},
        {"extension_duration": -1},
        {"extension_duration": 301},
        {"max_rest": 0},
        {"max_note_length": -2},
        {"max_note_length": 61},
        {"seed": -1},
        {"seed": 1.5},
        {"track": 3},
        {"model": 42},
        {"model": "no-such-model"},
    ],
)
def test_extend_bad_parameters(registered, kwargs):
    kwargs = {"model": registered, **kwargs}
    with pytest.raises(CapsuleError):
        extend(melody(4), **kwargs)
    assert CompositionStore().list() == []


def test_extend_bad_inputs(registered):
    with pytest.raises(CapsuleError, match="Score"):
        extend("not a score", registered)
    with pytest.raises(CapsuleError, match="no tracks"):
        extend(Score(), registered)
    with pytest.raises(CapsuleError, match="no notes"):
        extend(Score(tracks=(Track(name="melody"),)), registered)
    drums = Score(tracks=(Track(name="drums", is_drum=True, notes=(Note(0, 36, 4),)),))
    with pytest.raises(CapsuleError, match="drum"):
        extend(drums, registered)
    with pytest.raises(CapsuleError, match="pitch range"):
        extend(Score.from_notes([(0, 12, 24)]), registered)
    reg = ModelRegistry()
    reg.create("an-arcnn", "arcnn")
    with pytest.raises(CapsuleError):
        extend(melody(4), "an-arcnn")

"""The prompt guide: which note-ons it weighs down, and that the shipped model's extension stays in key with it."""

import numpy as np
import pytest

from capsule_lib import extend, load_sample
from capsule_lib import metrics as M
from capsule_lib.score import Note, Score
from capsule_lib.techniques.transformer import tokens as tok
from capsule_lib.techniques.transformer.guide import PromptGuide, guide_from_prompt
from capsule_lib.techniques.transformer.sample import next_token_probabilities

C_MAJOR = M.key_scale((0, "major"))


def on_weight(guide, pitch):
    return guide.weights()[tok.note_on(pitch)]


def test_out_of_key_note_ons_are_weighed_down_and_nothing_else_is():
    g = PromptGuide(scale=C_MAJOR, out_of_key=0.1)
    assert on_weight(g, 60) == 1.0 and on_weight(g, 61) == pytest.approx(0.1)  # C in, C# out
    w = g.weights()
    others = [t for t in range(tok.VOCAB_SIZE) if not tok.is_note_on(t)]
    assert np.all(w[others] == 1.0)  # rhythm, note-offs and dynamics stay the model's


def test_a_sounding_note_weighs_down_its_seconds_sevenths_and_ninths_until_it_ends():
    g = PromptGuide(clash=0.2)
    g.observe(tok.note_on(60))
    for p in (59, 61, 49, 71, 47, 73):
        assert on_weight(g, p) == pytest.approx(0.2), p
    assert on_weight(g, 64) == 1.0 and on_weight(g, 72) == 1.0  # a third and an octave are fine
    g.observe(tok.note_off(60))
    assert on_weight(g, 61) == 1.0


def test_a_note_stops_counting_after_max_note_seconds():
    g = PromptGuide(clash=0.2, max_note_seconds=2.0)
    g.observe(tok.note_on(60))
    g.observe(tok.time_shift(100))  # 1 s
    assert on_weight(g, 61) == pytest.approx(0.2)
    g.observe(tok.time_shift(100))  # 2 s: cut by extend anyway
    assert on_weight(g, 61) == 1.0


def test_the_register_weight_falls_beyond_an_octave_from_the_prompt():
    g = PromptGuide(centre=60.0, register_width=12.0, register_decay=3.0)
    assert on_weight(g, 72) == 1.0 and on_weight(g, 48) == 1.0
    assert on_weight(g, 75) == pytest.approx(np.exp(-1.0))
    assert on_weight(g, 84) < on_weight(g, 75)


def test_the_guide_reweights_before_the_sampling_filter():
    logits = np.zeros(tok.VOCAB_SIZE)
    logits[tok.note_on(61)], logits[tok.note_on(60)] = 8.2, 8.0  # C# (out of key) a little likelier than C
    g = PromptGuide(scale=C_MAJOR, out_of_key=0.01)
    plain = next_token_probabilities(logits, "nucleus", 0.9)
    guided = next_token_probabilities(logits, "nucleus", 0.9, weights=g.weights())
    # the nucleus of the model alone is C#; reweighted first, the nucleus becomes C
    assert plain[tok.note_on(61)] == 1.0
    assert guided[tok.note_on(61)] == 0.0 and guided[tok.note_on(60)] == 1.0


def test_guide_from_prompt_finds_the_key_and_register():
    notes = [Note(4 * i, p, 4) for i, p in enumerate([62, 64, 66, 67, 69, 71, 73, 74])]  # D major
    g = guide_from_prompt(notes)
    assert list(np.flatnonzero(g.scale)) == list(np.flatnonzero(M.key_scale((2, "major"))))
    assert g.centre == pytest.approx(np.mean([n.pitch for n in notes]))
    assert guide_from_prompt([]) is None


def _in_prompt_key(out: Score, melody: Score) -> float:
    new = [n for n in out.tracks[0].notes if n.start >= melody.end]
    key = M.best_key(melody)
    return float(np.mean([M.key_scale(key)[n.pitch % 12] for n in new]))


def test_the_shipped_models_extension_stays_in_the_prompts_key_with_the_guide():
    melody = load_sample("twinkle_twinkle")  # C major: the whole tune is the prompt's key
    # a daring setting, so that the model alone wanders off the key
    kw = dict(extension_duration=4.0, sampling="random", creative_risk=1.5, seed=3, save=False)
    free = _in_prompt_key(extend(melody, follow_prompt=False, **kw), melody)
    guided = _in_prompt_key(extend(melody, **kw), melody)
    assert free < 0.9 <= guided

"""The shipped sample model ``arcnn-bach``: registered, documented, small, and better than the baseline."""

from pathlib import Path

import pytest

from capsule_lib import ModelRegistry, enhance, load_sample
from capsule_lib.techniques.arcnn import evaluate_arcnn, load_arcnn
from capsule_lib.techniques.arcnn.sample import DEFAULTS

MODEL_DIR = Path(__file__).resolve().parents[1] / "data" / "models" / "arcnn-bach"


def test_sample_model_is_registered_complete_and_small():
    card = ModelRegistry().get("arcnn-bach")
    assert card.sample and card.technique == "arcnn" and card.status == "complete"
    assert card.path.resolve() == MODEL_DIR
    weights = MODEL_DIR / "weights.safetensors"
    assert weights.stat().st_size <= 10 * 2**20
    assert not [p for p in MODEL_DIR.iterdir() if p.suffix in (".pt", ".pth", ".pkl", ".bin")]  # nothing to unpickle
    assert card.training_time_s <= 30 * 60
    assert card.hyperparameters["provenance"]["command"].startswith("capsule train arcnn")


def test_model_card_documents_data_split_hyperparameters_time_curves_and_evaluation():
    text = (MODEL_DIR / "README.md").read_text()
    for needle in (
        "## Data and split",
        "sha256(corpus path) mod 10",
        "## Hyperparameters",
        "Wall-clock training time",
        "## Results",
        "pitch-frequency baseline",
        "Restoration",
        "in_scale_ratio",
        "![loss curves](loss.png)",
        "## Provenance",
    ):
        assert needle in text, needle
    assert (MODEL_DIR / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    test = ModelRegistry().get("arcnn-bach").metrics["test"]
    assert test["nll"] < test["baseline_nll"]
    assert test["restoration"]["f1"] > test["restoration"]["corrupted"]["f1"]


def test_shipped_model_beats_the_baseline_on_held_out_chorales():
    # The first 40 corpus chorales hold 3 test chorales (9 windows) -- never trained on.
    result = evaluate_arcnn("arcnn-bach", "test", limit=40, restoration=False)
    assert result["n_chorales"] >= 3
    assert result["nll"] < 0.5 * result["baseline_nll"]


@pytest.mark.slow
def test_default_enhance_uses_the_shipped_model_and_respects_the_caps():
    melody = load_sample("ode_to_joy")
    a = enhance(melody, seed=11, save=False)
    b = enhance(melody, seed=11, save=False)
    assert a == b
    old = {(n.start, n.pitch) for n in melody.notes}
    new = {(n.start, n.pitch) for n in a.notes}
    assert 0 < len(new - old) <= DEFAULTS["max_notes_added"]
    assert len(old - new) <= int(DEFAULTS["max_remove_pct"] / 100 * len(old))
    assert load_arcnn().name == "arcnn-bach"


SET = ("ode_to_joy", "twinkle_twinkle")  # a small fixed set: 8 bars of each


def _texture(**kw):
    from capsule_lib import crop_bars
    from capsule_lib import metrics as M

    rows = []
    for name in SET:
        melody = crop_bars(load_sample(name), 0, 8)
        out = enhance(melody, seed=5, save=False, **kw)
        rows.append((out, melody, M.polyphony(out), M.clash_rate(out), M.in_key_rate(out)))
    return rows


def test_harmonize_keeps_the_melody_and_writes_a_chorale_texture_beneath_it():
    for out, melody, poly, clash, key in _texture(harmonize=True):
        assert out.tracks[0] == melody.tracks[0]
        assert poly >= 3.3 and clash <= 0.08 and key >= 0.9, (poly, clash, key)
        top = {n.start: n.pitch for n in melody.tracks[0].notes}
        assert all(n.pitch < top.get(n.start, 128) for n in out.tracks[1].notes)


@pytest.mark.slow
def test_the_guide_makes_the_enhancement_clash_less_and_stay_in_key(monkeypatch):
    from capsule_lib.techniques.arcnn import sample

    guided = _texture()
    monkeypatch.setitem(sample.GUIDE, "clash", 0.0)
    monkeypatch.setitem(sample.GUIDE, "out_of_key", 0.0)
    free = _texture()
    assert sum(r[3] for r in guided) < sum(r[3] for r in free)
    assert sum(r[4] for r in guided) >= sum(r[4] for r in free)

"""The shipped sample model ``transformer-classical``: registered, documented, small, better than the baseline."""

from pathlib import Path

from capsule_lib import ModelRegistry, extend, load_sample

MODEL_DIR = Path(__file__).resolve().parents[1] / "data" / "models" / "transformer-classical"


def test_sample_model_is_registered_complete_small_and_safe():
    card = ModelRegistry().get("transformer-classical")
    assert card.sample and card.technique == "transformer" and card.status == "complete"
    assert card.path.resolve() == MODEL_DIR
    assert (MODEL_DIR / "weights.safetensors").stat().st_size <= 20 * 2**20
    assert not [p for p in MODEL_DIR.iterdir() if p.suffix in (".pt", ".pth", ".pkl", ".bin")]
    assert card.training_time_s <= 45 * 60
    assert card.hyperparameters["provenance"]["command"].startswith("capsule train transformer")


def test_card_documents_data_hyperparameters_time_curves_and_beats_the_bigram_baseline():
    text = (MODEL_DIR / "README.md").read_text()
    for needle in (
        "## Data and split",
        "sha256(corpus path) mod 10",
        "## Hyperparameters",
        "Wall-clock training time",
        "bigram baseline",
        "![loss and perplexity](loss.png)",
        "## Provenance",
    ):
        assert needle in text, needle
    assert (MODEL_DIR / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ev = ModelRegistry().get("transformer-classical").metrics["evaluation"]
    assert ev["test_nll"] < ev["baseline_nll"] and ev["val_nll"] < ev["baseline_nll"]


def test_default_extend_uses_the_shipped_model_and_keeps_the_input():
    melody = load_sample("twinkle_twinkle")
    a = extend(melody, extension_duration=8.0, seed=4, save=False)
    b = extend(melody, extension_duration=8.0, seed=4, save=False)
    assert a == b
    assert a.tracks[0].notes[: len(melody.tracks[0].notes)] == melody.tracks[0].notes
    assert len(a.notes) > len(melody.notes)
    assert max(n.start for n in a.notes) >= melody.end

"""The GAN technique: networks, training task, decoding, accompaniment, evaluation, command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from capsule_lib import CapsuleError, Note, Score, Track, load_sample, set_instrument
from capsule_lib.cli import main
from capsule_lib.datasets.multitrack import (
    GENRES, N_PITCHES, PITCH_LOW, SAMPLE_STEPS, GenreSpec, MultitrackDataset, Piece, split_of,
)
from capsule_lib.midi import read_midi
from capsule_lib.store import CompositionStore
from capsule_lib.techniques.gan import (
    Critic, GanConfig, GanSamples, GanTask, accompany, batch_metrics, build_generator, decode, evaluate_gan,
    load_gan, quality_bar, roll_to_score, train_gan,
)
from capsule_lib.techniques.gan.data import roll_to_notes
from capsule_lib.techniques.gan.evaluate import piece_interval, real_music_bar, real_music_lines
from capsule_lib.techniques.gan.train import (
    EVAL_SEED, calibrate_decoder, chord_share, empty_bar_share, generate_samples, gradient_penalty,
    pitch_class_rate, sample_line,
    track_polyphony, viterbi_line,
)

SPEC = GENRES["chorale"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _piece(path: str, bars: int = 6, root: int = 60) -> Piece:
    """A melody of quarter notes over held triads (alto, tenor) and a bass on the root."""
    rows = []
    for b in range(bars):
        chord_root = root + (0, 5, 7, 0)[b % 4]
        for beat in range(4):
            rows.append((0, b * 16 + beat * 4, chord_root + 12 + (0, 4, 7, 4)[beat], 4))
        rows += [(1, b * 16, chord_root + 7, 16), (2, b * 16, chord_root + 4, 16), (3, b * 16, chord_root - 12, 16)]
    return Piece(path, path, split_of(path), np.asarray(sorted(rows), np.int32))


def _paths_where(keep, n: int, prefix: str) -> list[str]:
    """The first ``n`` paths ``PREFIX0, PREFIX1, ...`` for which ``keep(path)`` holds."""
    out, i = [], 0
    while len(out) < n:
        p = f"{prefix}{i}"
        if keep(p):
            out.append(p)
        i += 1
    return out


def _paths(split: str, n: int) -> list[str]:
    return _paths_where(lambda p: split_of(p) == split, n, "synthetic/piece")


def synthetic_dataset() -> MultitrackDataset:
    pieces = [_piece(p, root=55 + k) for k, p in enumerate(_paths("train", 4))]
    pieces += [_piece(p) for p in _paths("validation", 1) + _paths("test", 1)]
    return MultitrackDataset(SPEC, pieces, source="synthetic chorale-like pieces")


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory):
    return tmp_path_factory.mktemp("gan_home")


@pytest.fixture(scope="module")
def tiny_model(tiny_home, one_torch_thread):
    """A tiny MuseGAN trained for two short epochs on the synthetic pieces (module-wide)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CAPSULE_HOME", str(tiny_home))
    try:
        card = train_gan("tiny-gan", "musegan", synthetic_dataset(), epochs=2, batch_size=4, update_ratio=2,
                         max_steps_per_epoch=4, progress=False, sample_every=1,
                         model_config={"z_dim": 8, "width": 16, "critic_width": 16})
    finally:
        mp.undo()
    return card


@pytest.fixture
def in_tiny_home(tiny_home, tiny_model, monkeypatch):
    monkeypatch.setenv("CAPSULE_HOME", str(tiny_home))
    return tiny_home


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("algorithm", ["musegan", "unet"])
@pytest.mark.parametrize("n_tracks", [4, 6])
def test_generators_write_the_accompaniment_tracks_in_range(algorithm, n_tracks):
    cfg = GanConfig(algorithm=algorithm, n_tracks=n_tracks, z_dim=8, width=16, critic_width=16)
    gen, critic = build_generator(cfg), Critic(cfg)
    melody = torch.rand(3, 1, SAMPLE_STEPS, N_PITCHES) * 2 - 1
    out = gen(melody)
    assert out.shape == (3, n_tracks - 1, SAMPLE_STEPS, N_PITCHES)
    assert out.abs().max() <= 1
    assert critic(torch.cat([melody, out], 1)).shape == (3,)
    # the noise matters: two draws differ, a fixed draw repeats
    gen.eval()
    noise = torch.randn(3, gen.noise_dim)
    assert torch.equal(gen(melody, noise), gen(melody, noise))
    assert not torch.equal(gen(melody, noise), gen(melody, torch.randn(3, gen.noise_dim)))


def test_generator_output_depends_on_the_melody():
    gen = build_generator(GanConfig(z_dim=8, width=16, critic_width=16)).eval()
    noise = torch.randn(2, gen.noise_dim)
    a = torch.full((2, 1, SAMPLE_STEPS, N_PITCHES), -1.0)
    b = a.clone()
    b[:, :, :, 40] = 1
    assert not torch.allclose(gen(a, noise), gen(b, noise))


def test_config_checks():
    with pytest.raises(CapsuleError, match="unknown GAN algorithm"):
        GanConfig(algorithm="vae")
    with pytest.raises(CapsuleError, match="n_tracks"):
        GanConfig(n_tracks=1)
    assert GanConfig.from_dict(GanConfig(width=8).to_dict()) == GanConfig(width=8)


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    class Linear(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, 0]  # gradient norm exactly 1 everywhere

    real = torch.rand(4, 4, SAMPLE_STEPS, N_PITCHES)
    assert gradient_penalty(Linear(), real, torch.rand_like(real)).item() == pytest.approx(0.0)

    class Steep(torch.nn.Module):
        def forward(self, x):
            return 3 * x.flatten(1)[:, 0]

    assert gradient_penalty(Steep(), real, torch.rand_like(real)).item() == pytest.approx(4.0)


# --------------------------------------------------------------------------- data and decoding


def test_samples_transpose_all_tracks_together_and_stay_in_range():
    ds = synthetic_dataset()
    samples = ds.samples("train")
    data = GanSamples(samples, transpose=True)
    torch.manual_seed(0)
    for i in range(len(data)):
        x = data[i] > 0
        orig = torch.from_numpy(samples[i])
        assert x.sum() == orig.sum()  # nothing fell off the range
        shifts = [s for s in range(-5, 7) if torch.equal(torch.roll(orig, s, dims=-1), x)]
        assert len(shifts) == 1  # one shift for every track


def test_roll_to_notes_turns_runs_into_notes():
    roll = np.zeros((8, N_PITCHES), bool)
    roll[0:3, 10] = True
    roll[5:8, 10] = True
    roll[2, 20] = True
    notes = roll_to_notes(roll, velocity=70)
    assert notes == (Note(0, PITCH_LOW + 10, 3, 70), Note(5, PITCH_LOW + 10, 3, 70), Note(2, PITCH_LOW + 20, 1, 70))


def test_decode_keeps_at_most_the_tracks_polyphony_above_zero():
    out = -np.ones((1, 2, 2, N_PITCHES))
    out[0, 0, 0, [3, 5, 9]] = [0.2, 0.9, 0.5]  # three candidates, polyphony 1 keeps the strongest
    out[0, 1, 0, [3, 5, 9]] = [0.2, 0.9, 0.5]  # polyphony 2 keeps two
    out[0, 0, 1, 7] = -0.1  # probability 0.45 in all: the line rests
    on = decode(out, [1, 2])
    assert np.flatnonzero(on[0, 0, 0]).tolist() == [5]
    assert np.flatnonzero(on[0, 1, 0]).tolist() == [5, 9]  # the line (5) and one more above 1/2 (9, not 3)
    assert not on[0, 0, 1].any()
    spread = -np.ones((1, 1, 1, N_PITCHES))
    spread[0, 0, 0, [10, 11, 12]] = [-0.4, -0.3, -0.4]  # 0.3, 0.35, 0.3: rest only 0.05, the line sounds at 11
    assert np.flatnonzero(decode(spread, [1])[0, 0, 0]).tolist() == [11]
    assert np.flatnonzero(decode(spread, [2])[0, 0, 0]).tolist() == [11]  # no second note above 1/2


def test_single_lines_hold_notes_instead_of_flickering():
    prob = np.zeros((1, 8, N_PITCHES))
    prob[0, :, 20] = [0.5, 0.45, 0.5, 0.45, 0.5, 0.45, 0.05, 0.05]
    prob[0, :, 21] = [0.45, 0.5, 0.45, 0.5, 0.45, 0.5, 0.9, 0.9]
    path = viterbi_line(prob, switch_penalty=3.0)[0]
    assert path.tolist() == [21] * 8  # one held note; per-step argmax would change note 6 times
    assert viterbi_line(prob, switch_penalty=0.0)[0].tolist() == [20, 21, 20, 21, 20, 21, 21, 21]


def test_track_polyphony_reads_the_texture_of_the_data():
    s = np.zeros((10, 2, SAMPLE_STEPS, N_PITCHES), bool)
    s[:, 0, :, 30] = True  # a single line
    s[:, 1, :, [30, 34, 37]] = True  # triads
    assert track_polyphony(s) == [1, 3]


def test_batch_metrics_match_hand_counts():
    sample = np.zeros((1, 4, SAMPLE_STEPS, N_PITCHES), bool)
    sample[0, 0, :, 60 - PITCH_LOW] = True  # melody: C held for 4 bars
    sample[0, 1, :16, 64 - PITCH_LOW] = True  # alto: E in bar 1 only
    sample[0, 2, :, [67 - PITCH_LOW, 71 - PITCH_LOW]] = True  # tenor: G+B throughout
    sample[0, 3, 0:4, 61 - PITCH_LOW] = True  # bass: one C#
    m = batch_metrics(sample, SPEC)["tracks"]
    assert m["alto"]["empty_bar_rate"] == 0.75
    assert m["tenor"]["polyphonic_rate"] == 1.0 and m["tenor"]["pitch_classes_used"] == 2
    assert m["soprano"]["polyphonic_rate"] == 0.0
    assert m["bass"]["in_scale_ratio"] == 1.0  # one pitch class fits some major scale


def test_batch_metrics_count_a_silent_last_bar_of_a_sample_as_empty():
    sample = np.zeros((1, 4, SAMPLE_STEPS, N_PITCHES), bool)
    sample[0, :, :48, 60 - PITCH_LOW] = True  # every track plays bars 1-3, all rest in bar 4
    sample[0, 1, 16:32] = False  # the alto also rests in bar 2
    m = batch_metrics(sample, SPEC)["tracks"]
    assert m["soprano"]["empty_bar_rate"] == 0.25  # a 4-bar sample, not a 3-bar score
    assert m["alto"]["empty_bar_rate"] == 0.5


def test_calibration_statistics_are_the_reported_metrics():
    """The decoder is calibrated on the very numbers batch_metrics (and the quality bar) report:
    per-sample rates averaged over samples, not one pooled share."""
    rng = np.random.default_rng(5)
    s = np.zeros((40, 4, SAMPLE_STEPS, N_PITCHES), bool)
    for i in range(40):
        for t in range(4):
            for bar in range(4):
                if rng.random() < 0.2:
                    continue  # an empty bar
                lo = bar * 16
                for k in range(int(rng.integers(1, 5))):
                    step = lo + 4 * k
                    s[i, t, step:step + 4, rng.integers(20, 60)] = True
                if rng.random() < 0.3 * (i % 3):  # some samples far more polyphonic than others
                    s[i, t, lo:lo + 8, rng.integers(20, 60)] = True
    m = batch_metrics(s, SPEC)["tracks"]
    for t, name in enumerate(SPEC.tracks):
        assert chord_share(s)[t] == pytest.approx(m[name]["polyphonic_rate"])
        assert pitch_class_rate(s)[t] == pytest.approx(m[name]["pitch_classes_used"])
        assert empty_bar_share(s)[t] == pytest.approx(m[name]["empty_bar_rate"])
    pooled = (s.sum(-1) >= 2).sum() / (s.sum(-1) > 0).sum()
    assert abs(np.mean(chord_share(s)) - pooled) > 1e-4  # the pooled share is a different number


def test_per_epoch_metrics_spread_over_all_validation_samples():
    pieces = [_piece(p) for p in _paths("train", 1)]
    pieces += [_piece(p, bars=8, root=50 + 3 * k) for k, p in enumerate(_paths("validation", 4))]  # 2 samples each
    ds = MultitrackDataset(SPEC, pieces)
    task = GanTask(ds, GanConfig(z_dim=8, width=16, critic_width=16), n_eval=4)
    full = ds.samples("validation")
    assert len(full) == 8 and len(task.eval_samples) == 4
    first_of_piece = full[::2]  # not the first two pieces' samples: one from each piece
    lows = sorted(int(np.flatnonzero(x[3].any(axis=0))[0]) for x in task.eval_samples)
    assert lows == sorted(int(np.flatnonzero(x[3].any(axis=0))[0]) for x in first_of_piece)


def test_decoder_targets_are_the_validation_accompaniment_and_never_the_test_split():
    ds = synthetic_dataset()
    task = GanTask(ds, GanConfig(z_dim=8, width=16, critic_width=16))
    val = ds.samples("validation")
    assert task.eval_split == "validation" and np.array_equal(task.eval_samples, val)
    assert task.empty_bars == empty_bar_share(val) and task.chords == chord_share(val)
    assert task.density == pitch_class_rate(val)
    no_val = MultitrackDataset(SPEC, [p for p in ds.pieces if p.split != "validation"])
    task = GanTask(no_val, GanConfig(z_dim=8, width=16, critic_width=16))
    assert task.eval_split == "train"  # not the test split: training never reads it
    train = {x.tobytes() for x in no_val.samples("train")}
    assert all(x.tobytes() in train for x in task.eval_samples)


# --------------------------------------------------------------------------- cross-validation folds


def _bucket_paths(bucket: int, n: int) -> list[str]:
    from capsule_lib.datasets._corpus import bucket_of

    return _paths_where(lambda p: bucket_of(p) == bucket, n, "folded/piece")


def folded_dataset() -> MultitrackDataset:
    """Pieces in buckets 0-3 (two each, different keys), the rest of the split rule's buckets empty."""
    pieces = [_piece(p, root=52 + 2 * b + k) for b in range(4) for k, p in enumerate(_bucket_paths(b, 2))]
    return MultitrackDataset(SPEC, pieces, source="synthetic pieces in four buckets")


def test_folds_move_the_split_rule_round_and_hold_out_every_piece_once():
    from capsule_lib.datasets._corpus import FOLDS, bucket_of, check_fold, split_rule

    paths = [f"any/path{i}.mxl" for i in range(200)]
    assert [split_of(p, 0) for p in paths] == [split_of(p) for p in paths]  # fold 0 is the fixed split
    for p in paths:
        splits = [split_of(p, k) for k in range(FOLDS)]
        assert splits.count("test") == 1 and splits.count("validation") == 1
        assert splits.index("test") == bucket_of(p) and splits.index("validation") == (bucket_of(p) - 1) % FOLDS
    ds = folded_dataset()
    assert ds.fold == 0 and ds.summary()["split_rule"] == split_rule(0)
    f2 = ds.with_fold(2)
    assert f2.fold == 2 and "2 test, 3 validation" in f2.summary()["split_rule"]
    assert [p.path for p in f2.split("test")] == _bucket_paths(2, 2)
    assert [p.path for p in f2.split("validation")] == _bucket_paths(3, 2)
    assert all(a.notes is b.notes for a, b in zip(ds.pieces, f2.pieces)) and ds.split("test") != f2.split("test")
    assert [p.split for p in f2.with_fold(0).pieces] == [p.split for p in ds.pieces]
    keyed = MultitrackDataset(SPEC, [Piece("a/b/x.npz", "x", "train", ds.pieces[0].notes, key=_bucket_paths(3, 1)[0])])
    assert keyed.with_fold(3).pieces[0].split == "test"  # the split key, not the path, decides
    for bad in (-1, 10, 1.5, "2", True, None):
        with pytest.raises(CapsuleError, match="fold must be a whole number from 0 to 9"):
            check_fold(bad)


@pytest.fixture(scope="module")
def fold_models(tiny_home, tiny_model, one_torch_thread):
    """Two tiny MuseGANs trained by the same call on folds 0 and 1 of :func:`folded_dataset`."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CAPSULE_HOME", str(tiny_home))
    try:
        for fold in (0, 1):
            train_gan(f"fold-gan-{fold}", "musegan", folded_dataset(), epochs=1, batch_size=4, update_ratio=2,
                      max_steps_per_epoch=2, progress=False, sample_every=1, fold=fold,
                      model_config={"z_dim": 8, "width": 16, "critic_width": 16})
    finally:
        mp.undo()
    return ["fold-gan-0", "fold-gan-1"]


def test_a_fold_model_remembers_its_fold_and_is_evaluated_on_its_own_test_pieces(in_tiny_home, fold_models):
    from capsule_lib import ModelRegistry

    card = ModelRegistry().get("fold-gan-1")
    assert card.hyperparameters["fold"] == 1 and load_gan("fold-gan-1").fold == 1
    assert "1 test, 2 validation" in (card.path / "README.md").read_text()
    test = card.metrics["test"]
    again = evaluate_gan("fold-gan-1", "test", dataset=folded_dataset())  # the fold-0 split given: moved to fold 1
    assert again["tracks"] == test["tracks"] and again["n_pieces"] == 2
    truth = batch_metrics(folded_dataset().with_fold(1).samples("test"), SPEC)["tracks"]
    assert {k: v["ground_truth"] for k, v in again["tracks"]["alto"].items()} == pytest.approx(
        {k: v for k, v in truth["alto"].items()}, abs=1e-4)


def test_cross_validation_pools_the_held_out_pieces_of_every_fold(in_tiny_home, fold_models):
    from capsule_lib.techniques.gan import cross_validate, cross_validation_lines

    ds = folded_dataset()
    cv = cross_validate(fold_models[::-1], dataset=ds)
    assert cv["folds"] == [0, 1] and cv["n_pieces"] == 4 and set(cv["per_fold"]) == {"0", "1"}
    real = np.concatenate([ds.with_fold(k).samples("test") for k in (0, 1)])
    assert cv["n_samples"] == len(real) == sum(f["n_samples"] for f in cv["per_fold"].values())
    truth = batch_metrics(real, SPEC)["tracks"]
    for track in SPEC.tracks:
        for metric, pair in cv["tracks"][track].items():
            if pair["ground_truth"] is not None:
                assert pair["ground_truth"] == pytest.approx(truth[track][metric], abs=1e-4)
    for fold, name in enumerate(fold_models):  # each fold's part is exactly that model's own evaluation
        own = evaluate_gan(name, "test", dataset=ds)
        assert cv["per_fold"][str(fold)]["tracks"] == own["tracks"]
        assert cv["per_fold"][str(fold)]["failures"] == own["quality_bar"]["failures"]
        assert cv["per_fold"][str(fold)]["real_music_bar"] == {"train": own["real_music_bar"]["train"]}
    assert cv["quality_bar"] == quality_bar(cv["tracks"], skip=("soprano",))
    assert set(cv["ground_truth_interval"]["tracks"]["alto"]) >= {"empty_bar_rate"}  # four pieces to resample
    lines = cross_validation_lines(cv)
    assert lines[0].startswith("Folds 0, 1: 4 held-out pieces") and lines[1].startswith("fold 0 (fold-gan-0, 2 test")
    assert "; the real music of its 4 training pieces: " in lines[1]
    with pytest.raises(CapsuleError, match="two models of the same fold"):
        cross_validate([fold_models[0], fold_models[0]], dataset=ds)
    with pytest.raises(CapsuleError, match="at least one model"):
        cross_validate([], dataset=ds)


def test_cli_cross_validate_records_the_result_in_the_fold_0_card(in_tiny_home, fold_models, capsys, monkeypatch):
    from capsule_lib import ModelRegistry

    monkeypatch.setattr("capsule_lib.techniques.gan.train.resolve_dataset", lambda *a, **k: folded_dataset())
    before = (ModelRegistry().get("fold-gan-0").path / "README.md").read_text()
    assert "## Cross-validation" not in before
    capsys.readouterr()
    assert main(["cross-validate", "fold-gan-1", "--record"]) == 2  # no fold-0 model to record in
    assert "name the model of fold 0" in capsys.readouterr().err
    assert main(["cross-validate", *fold_models, "--record"]) == 0
    out = capsys.readouterr().out
    assert "Folds 0, 1: 4 held-out pieces" in out and "recorded in" in out
    card = ModelRegistry().get("fold-gan-0")
    assert card.metrics["cross_validation"]["folds"] == [0, 1] and "test" in card.metrics
    text = (card.path / "README.md").read_text()
    assert "## Cross-validation" in text and "--fold K --name fold-gan-0-fold-K" not in text  # Python call, no CLI
    assert "Reproduce: `capsule cross-validate fold-gan-0 fold-gan-1 --record`." in text
    assert text.replace(text[text.index("## Cross-validation"):text.index("![generator")], "") == before
    assert main(["cross-validate", *fold_models, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_pieces"] == 4


# --------------------------------------------------------------------------- training


class _Counter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.noise_dim = 2

    def forward(self, melody, noise=None):
        return torch.tanh(self.w + 0 * melody).expand(-1, 3, -1, -1)


def test_update_ratio_sets_how_often_the_generator_is_updated():
    task = GanTask(synthetic_dataset(), GanConfig(z_dim=8, width=16, critic_width=16), update_ratio=3)
    gen = _Counter()
    critic = Critic(GanConfig(z_dim=8, width=16, critic_width=16))
    cfg = type("C", (), {"lr": 0.01})()
    opts = task.configure_optimizers({"generator": gen, "critic": critic}, cfg)
    assert all(o.param_groups[0]["lr"] == 0.01 for o in opts.values())
    batch = torch.stack([task.train_dataset()[i] for i in range(4)])
    updates = []
    for step in range(6):
        before = gen.w.item()
        out = task.training_step({"generator": gen, "critic": critic}, opts, batch, step)
        updates.append(("generator_loss" in out, gen.w.item() != before))
        assert {"critic_loss", "wasserstein", "gradient_penalty"} <= set(out)
    assert updates == [(False, False), (False, False), (True, True)] * 2
    assert "reconstruction" in out  # the pix2pix-style term joins the generator's loss
    with pytest.raises(CapsuleError, match="update ratio"):
        GanTask(synthetic_dataset(), GanConfig(), update_ratio=0)
    with pytest.raises(CapsuleError, match="reconstruction weight"):
        GanTask(synthetic_dataset(), GanConfig(), recon_weight=-1)


def test_reconstruction_term_pulls_the_generator_towards_the_real_accompaniment():
    torch.manual_seed(0)
    cfg = GanConfig(z_dim=8, width=16, critic_width=16)
    task = GanTask(synthetic_dataset(), cfg, update_ratio=1, recon_weight=50)
    mods = task.build(torch.device("cpu"))
    opts = task.configure_optimizers(mods, type("C", (), {"lr": 0.003})())
    batch = torch.stack([task.train_dataset()[i] for i in range(8)])
    first = [task.training_step(mods, opts, batch, s)["reconstruction"].item() for s in range(30)]
    assert first[-1] < 0.5 * first[0]


def test_train_gan_records_losses_metrics_against_ground_truth_and_samples(tiny_model, tiny_home):
    card = tiny_model
    assert card.status == "complete" and card.technique == "gan" and card.algorithm == "MuseGAN"
    history = json.loads((card.path / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    for rec in history:
        assert {"critic_loss", "generator_loss", "wasserstein"} <= set(rec)
        for track in SPEC.tracks[1:]:
            assert f"gen/{track}/pitch_classes_used" in rec or f"gen/{track}/empty_bar_rate" in rec
    gt = card.hyperparameters["ground_truth"]["tracks"]
    assert gt["alto"]["pitch_classes_used"] == 1.0 and gt["bass"]["polyphonic_rate"] == 0.0  # the synthetic texture
    for fname in ("README.md", "loss.png", "metrics.png", "sample.mid"):
        assert (card.path / fname).is_file(), fname
    text = (card.path / "README.md").read_text()
    for needle in ("## Data and split", "## Hyperparameters", "update ratio 2", "Wall-clock", "Quality bar",
                   "generated / ground truth"):
        assert needle in text, needle
    runs = tiny_home / "runs" / "gan" / "tiny-gan" / "samples"
    assert sorted(p.name for p in runs.iterdir()) == ["epoch_0001", "epoch_0002"]
    sample = read_midi(runs / "epoch_0002" / "sample_1.mid", "all")
    assert len(sample.tracks) >= 1
    assert card.hyperparameters["training"]["lr"] == 0.001  # the console's default


def test_training_refuses_a_taken_name_and_bad_algorithm(in_tiny_home):
    with pytest.raises(CapsuleError, match="already exists"):
        train_gan("tiny-gan", dataset=synthetic_dataset(), epochs=1)
    with pytest.raises(CapsuleError, match="unknown GAN algorithm"):
        train_gan("x", algorithm="rnn", dataset=synthetic_dataset())
    with pytest.raises(CapsuleError, match="unknown dataset"):
        train_gan("x", dataset="no-such-genre")


# --------------------------------------------------------------------------- inference


def test_accompany_keeps_the_melody_verbatim_and_adds_the_genre_tracks(in_tiny_home):
    melody = load_sample("ode_to_joy")
    out, comp = accompany(melody, model="tiny-gan", seed=3, return_composition=True)
    assert out.tracks[0] == melody.tracks[0]
    assert [t.name for t in out.tracks[1:]] == ["alto", "tenor", "bass"]
    assert [t.program for t in out.tracks[1:]] == list(SPEC.programs[1:])
    assert (out.resolution, out.tempo, out.time_signature) == (melody.resolution, melody.tempo, melody.time_signature)
    bar_end = -(-melody.tracks[0].end // melody.steps_per_bar) * melody.steps_per_bar
    assert all(n.end <= bar_end for t in out.tracks[1:] for n in t.notes)
    assert out == accompany(melody, model="tiny-gan", seed=3, save=False)  # same seed, same music
    stored = CompositionStore().get(comp.id)
    assert stored.technique == "gan" and stored.model == "tiny-gan" and stored.parameters["seed"] == 3


def test_accompany_handles_any_length_and_resolution(in_tiny_home):
    notes = tuple(Note(i * 12, 60 + (i % 5), 12) for i in range(2 * 9 * 4))  # 18 bars at 12 steps per beat
    score = Score(tracks=(Track("tune", 73, notes=notes),), resolution=12, tempo=90)
    out = accompany(score, model="tiny-gan", seed=1, save=False)
    assert out.tracks[0] == score.tracks[0] and out.resolution == 12
    ends = [n.end for t in out.tracks[1:] for n in t.notes]
    assert not ends or max(ends) <= score.tracks[0].end
    net = load_gan("tiny-gan")
    assert net.spec.tracks == SPEC.tracks and len(net.polyphony) == 4


def test_accompany_refuses_bad_input(in_tiny_home):
    with pytest.raises(CapsuleError, match="needs a Score"):
        accompany("ode_to_joy", model="tiny-gan")
    with pytest.raises(CapsuleError, match="no notes"):
        accompany(Score(tracks=(Track(),)), model="tiny-gan")
    drums = Score(tracks=(Track("kit", is_drum=True, notes=(Note(0, 36, 4),)),))
    with pytest.raises(CapsuleError, match="drum"):
        accompany(drums, model="tiny-gan")
    with pytest.raises(CapsuleError, match="seed"):
        accompany(load_sample("ode_to_joy"), model="tiny-gan", seed=-1)
    with pytest.raises(CapsuleError, match="not a GAN|is a"):
        accompany(load_sample("ode_to_joy"), model="arcnn-bach")


def test_generate_samples_returns_the_melody_unchanged():
    gen = build_generator(GanConfig(z_dim=8, width=16, critic_width=16))
    melodies = np.zeros((3, SAMPLE_STEPS, N_PITCHES), bool)
    melodies[:, ::4, 36] = True
    out = generate_samples(gen, melodies, [1, 1, 1, 1], seed=5)
    assert out.shape == (3, 4, SAMPLE_STEPS, N_PITCHES) and np.array_equal(out[:, 0], melodies)
    assert np.array_equal(out, generate_samples(gen, melodies, [1, 1, 1, 1], seed=5))
    assert (out[:, 1:].sum(axis=-1) <= 1).all()  # polyphony 1: one pitch per step at most


def test_set_instrument_changes_a_track_and_refuses_drums():
    score = Score(tracks=(Track("tune", 0, notes=(Note(0, 60, 4),)), Track("kit", is_drum=True, notes=(Note(0, 36, 1),))))
    assert set_instrument(score, 0, 41).tracks[0].program == 41
    with pytest.raises(CapsuleError, match="drum"):
        set_instrument(score, 1, 5)
    with pytest.raises(CapsuleError, match="0-127"):
        set_instrument(score, 0, 128)


# --------------------------------------------------------------------------- evaluation


def test_evaluate_reports_generated_beside_ground_truth(in_tiny_home):
    result = evaluate_gan("tiny-gan", "test", dataset=synthetic_dataset())
    assert set(result["tracks"]) == set(SPEC.tracks)
    for track, metrics in result["tracks"].items():
        assert {"empty_bar_rate", "pitches_used", "pitch_classes_used", "polyphonic_rate", "in_scale_ratio",
                "qualified_note_rate"} <= set(metrics)
        for v in metrics.values():
            assert set(v) == {"generated", "ground_truth"}
    melody = result["tracks"]["soprano"]
    assert all(v["generated"] == v["ground_truth"] for v in melody.values())  # the melody is kept verbatim
    assert result["n_samples"] >= 1 and isinstance(result["quality_bar"]["passed"], bool)
    assert result["ground_truth_interval"]["tracks"] == {}  # one test piece: nothing to resample
    assert set(result["real_music_bar"]) == {"train", "validation"}
    assert "real_music_bar" not in evaluate_gan("tiny-gan", "test", dataset=synthetic_dataset(), reference=False)


def test_real_music_of_the_other_splits_is_scored_by_the_same_bar():
    ds = synthetic_dataset()
    truth = batch_metrics(ds.samples("test"), SPEC)
    alike = real_music_bar(ds, "test", truth)
    assert set(alike) == {"train", "validation"} and alike["train"]["n_pieces"] == 4
    assert alike["train"]["passed"] and alike["validation"]["passed"]  # same texture everywhere
    assert alike["train"]["n_samples"] == len(ds.samples("train", hop=SAMPLE_STEPS))

    def tacet_alto(piece):  # the alto rests in every other bar
        rows = piece.notes[(piece.notes[:, 0] != 1) | (piece.notes[:, 1] // 16 % 2 == 0)]
        return Piece(piece.path, piece.title, piece.split, rows)

    unlike = MultitrackDataset(SPEC, [tacet_alto(p) if p.split == "train" else p for p in ds.pieces])
    ref = real_music_bar(unlike, "test", truth)
    assert not ref["train"]["passed"] and ref["validation"]["passed"]
    assert ref["train"]["failures"] == ["alto empty_bar_rate: train pieces 0.500 vs ground truth 0.000"]
    assert "train" not in real_music_bar(unlike, "train", truth)  # never against itself
    result = {"quality_bar": {"failures": ["tenor polyphonic_rate: generated 0.1 vs ground truth 0.0"]},
              "real_music_bar": ref}
    lines = real_music_lines(result)
    assert lines[0] == "the model: 1 failed check"
    assert lines[1].startswith("the real accompaniment of the 4 train pieces") and "alto empty_bar_rate" in lines[1]
    assert lines[2].endswith(": passed")


def test_texture_study_script_compares_splits_and_predicts_texture_from_the_melody():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "texture_study.py"
    spec = importlib.util.spec_from_file_location("texture_study", path)
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    ds = synthetic_dataset()
    alike = study.study(ds, draws=20)
    assert alike["pieces"] == {"train": 4, "validation": 1, "test": 1}
    assert all(r["passed"] for r in alike["real_music_bar"].values())
    empty = alike["predicted"]["empty_bar_rate"]["alto"]
    assert empty["truth"] == 0.0 and empty["predicted"] == pytest.approx(0.0, abs=1e-9)

    def tacet_alto(piece):  # the alto rests in every other bar, the melody unchanged
        rows = piece.notes[(piece.notes[:, 0] != 1) | (piece.notes[:, 1] // 16 % 2 == 0)]
        return Piece(piece.path, piece.title, piece.split, rows)

    unlike = study.study(MultitrackDataset(SPEC, [tacet_alto(p) if p.split != "test" else p for p in ds.pieces]),
                         draws=20)
    means = unlike["means"]["empty_bar_rate"]["alto"]
    assert means["train"] == means["validation"] == 0.5 and means["test"] == 0.0
    assert not any(r["passed"] for r in unlike["real_music_bar"].values())
    alto = unlike["predicted"]["empty_bar_rate"]["alto"]  # like melodies cannot tell the textures apart
    assert alto["truth"] == 0.0 and alto["fit_mean"] == 0.5 and alto["predicted"] == pytest.approx(0.5)
    # 4. alike pieces pass the bar in every random split; with the alto tacet in half of them, not
    feasible = alike["feasibility"]
    assert feasible["oracle_passed"] == feasible["training_music_passed"] == 1.0 and feasible["test_pieces"] == 1
    half = MultitrackDataset(SPEC, [tacet_alto(p) if i % 2 else p for i, p in enumerate(ds.pieces)])
    mixed = study.bar_feasibility(half, draws=20)
    assert mixed["oracle_passed"] == 0.0 and mixed["oracle_failed_checks"] == {"alto empty_bar_rate": 1.0}


def test_piece_interval_measures_how_much_the_held_out_pieces_matter():
    def rows(values):
        return [{"tracks": {"alto": {"empty_bar_rate": v}}, "tonal_distance": {}} for v in values]

    same = piece_interval(rows([0.1, 0.1, 0.1, 0.1]), [0, 0, 1, 1])
    assert same == {"alto": {"empty_bar_rate": [0.1, 0.1]}}  # pieces alike: the mean cannot move
    lo, hi = piece_interval(rows([0.0] * 10 + [0.2] * 10), [0] * 10 + [1] * 10)["alto"]["empty_bar_rate"]
    assert lo == 0.0 and hi == 0.2  # two unlike pieces: either may be all there is
    lo, hi = piece_interval(rows([0.0, 0.2] * 10), list(range(20)))["alto"]["empty_bar_rate"]
    assert 0.0 < lo < 0.1 < hi < 0.2  # twenty pieces: a narrower band around the mean
    nan = piece_interval(rows([math.nan, 0.3, 0.5, math.nan]), [0, 0, 1, 1])  # silent samples are skipped
    assert nan["alto"]["empty_bar_rate"] == [0.3, 0.5]
    assert piece_interval(rows([0.1, 0.2]), [0, 0]) == {}


def test_quality_bar_tolerances():
    def one(metric, g, t):
        return {"alto": {metric: {"generated": g, "ground_truth": t}}}

    assert quality_bar(one("pitch_classes_used", 3.5, 3.0))["passed"]
    assert not quality_bar(one("pitch_classes_used", 3.7, 3.0))["passed"]
    assert quality_bar(one("in_scale_ratio", 0.91, 0.95))["passed"]
    assert not quality_bar(one("in_scale_ratio", 0.89, 0.95))["passed"]
    near = quality_bar(one("empty_bar_rate", 0.0, 0.009))
    assert near["passed"] and not near["strict_passed"]  # within 0.01 of a near-zero ground truth
    assert not quality_bar(one("empty_bar_rate", 0.03, 0.009))["passed"]
    assert not quality_bar(one("polyphonic_rate", None, 0.0))["passed"]  # a silent track fails
    from capsule_lib.techniques.gan.evaluate import allowed_deviation

    assert allowed_deviation("pitch_classes_used", 3.0) == pytest.approx(0.6)
    assert allowed_deviation("empty_bar_rate", 0.01) == 0.01  # near zero: one hundredth, not 20 % of it
    assert allowed_deviation("empty_bar_rate", 0.01, strict=True) == pytest.approx(0.002)
    assert allowed_deviation("in_scale_ratio", 0.9) == 0.05


def test_roll_to_score_uses_the_spec_instruments():
    s = np.zeros((4, SAMPLE_STEPS, N_PITCHES), bool)
    s[2, 0:4, 10] = True
    score = roll_to_score(s, SPEC)
    assert [t.name for t in score.tracks] == list(SPEC.tracks) and score.tracks[2].notes[0].duration == 4
    assert score.resolution == 4


# --------------------------------------------------------------------------- command line


def test_cli_accompany_instrument_and_errors(in_tiny_home, tmp_path, capsys):
    out = tmp_path / "acc.mid"
    assert main(["accompany", "ode_to_joy", "-o", str(out), "--model", "tiny-gan", "--seed", "4"]) == 0
    score = read_midi(out, "all")
    assert len(score.tracks) >= 2
    out2 = tmp_path / "strings.mid"
    assert main(["instrument", str(out), "1", "41", "-o", str(out2)]) == 0
    assert read_midi(out2, "all").tracks[1].program == 41
    capsys.readouterr()
    assert main(["accompany", "ode_to_joy", "-o", str(tmp_path / "x.mid"), "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err and "Traceback" not in err
    assert main(["instrument", str(out), "9", "41", "-o", str(tmp_path / "y.mid")]) == 2
    assert main(["instrument", str(out), "1", "200", "-o", str(tmp_path / "y.mid")]) == 2
    assert not (tmp_path / "y.mid").exists()


def test_cli_data_lists_a_folder_dataset_and_refuses_a_missing_one(tmp_path, capsys):
    assert main(["data", "lpd5"]) == 2
    assert "folder" in capsys.readouterr().err
    assert main(["data", "midi", str(tmp_path / "missing")]) == 2


def test_cli_evaluate_json_format(in_tiny_home, tmp_path, capsys, monkeypatch):
    from capsule_lib.techniques.gan import evaluate as ev

    monkeypatch.setattr("capsule_lib.techniques.gan.train.resolve_dataset", lambda *a, **k: synthetic_dataset())
    capsys.readouterr()
    assert main(["evaluate", "tiny-gan", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tracks"]["alto"]["empty_bar_rate"].keys() == {"generated", "ground_truth"}
    assert ev.QUALITY_BAR["in_scale_ratio"] == ("absolute", 0.05)


def _failing_result():
    tracks = {"alto": {"empty_bar_rate": {"generated": 0.09, "ground_truth": 0.06},
                       "polyphonic_rate": {"generated": 0.2, "ground_truth": 0.1}}}
    return {"model": "m", "split": "test", "n_samples": 9, "n_pieces": 3, "tracks": tracks, "tonal_distance": {},
            "quality_bar": quality_bar(tracks),
            "ground_truth_interval": {"level": 0.9, "draws": 10, "tracks": {
                "alto": {"empty_bar_rate": [0.04, 0.1], "polyphonic_rate": [0.08, 0.12]}}}}


def test_failed_checks_are_shown_with_the_ground_truths_interval(in_tiny_home, capsys, monkeypatch):
    from capsule_lib.techniques.gan.evaluate import failure_intervals

    rows = failure_intervals(_failing_result())
    assert rows == ["alto empty_bar_rate: ground truth 0.060, its interval [0.040, 0.100]; generated 0.090 is inside it",
                    "alto polyphonic_rate: ground truth 0.100, its interval [0.080, 0.120]; generated 0.200 is outside it"]
    monkeypatch.setattr("capsule_lib.techniques.gan.evaluate.evaluate_gan", lambda *a, **k: _failing_result())
    capsys.readouterr()
    assert main(["evaluate", "tiny-gan"]) == 0
    out = capsys.readouterr().out
    assert "quality bar: not passed" in out and "90% interval" in out and "is outside it" in out


def test_genre_specs_are_consistent():
    for name, spec in GENRES.items():
        assert spec.name == name and len(spec.tracks) == 4 and not any(spec.is_drum)
        assert GenreSpec.from_dict(spec.to_dict()) == spec


def test_pitch_class_rate_and_penalty_calibration_match_the_training_texture():
    s = np.zeros((1, 1, 32, N_PITCHES), bool)
    s[0, 0, :8, 30] = True  # bar 1: F# and ...
    s[0, 0, 8:16, 43] = True  # ... G (two pitch classes)
    s[0, 0, 16:, 42] = True  # bar 2: F# an octave up (one)
    assert pitch_class_rate(s) == [1.5]
    flicker = -np.ones((16, 1, SAMPLE_STEPS, N_PITCHES))
    flicker[:, 0, :, 30] = np.where(np.arange(SAMPLE_STEPS) % 2, -0.1, 0.1)  # 0.45 / 0.55 alternating
    flicker[:, 0, :, 31] = np.where(np.arange(SAMPLE_STEPS) % 2, 0.1, -0.1)
    busy, _, _ = calibrate_decoder(flicker, [1], [2.0], [0.0], [0.0])  # the data moves between two notes
    calm, _, _ = calibrate_decoder(flicker, [1], [1.0], [0.0], [0.0])  # the data holds one note per bar
    assert busy[0] < calm[0]
    assert pitch_class_rate(decode(flicker, [1], busy, seed=1))[0] > 1.7
    assert pitch_class_rate(decode(flicker, [1], calm, seed=1))[0] < 1.3


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
    assert changes < 0.1 < (np.diff(sample_line(np.repeat(prob, 16, axis=1), 0.0, np.random.default_rng(3)),
                                    axis=1) != 0).mean()


def test_calibration_bisects_a_monotone_grid():
    from capsule_lib.techniques.gan.train import _closest

    grid = tuple(range(32))
    calls = []

    def falling(x):
        calls.append(x)
        return 100 - 3 * x

    assert _closest(grid, falling, 41.2) == 20  # 100 - 60 = 40 is nearest
    assert len(calls) <= 8  # bisection, not all 32
    assert _closest(grid, lambda x: x * x, 50) == 7  # rising: 49
    assert _closest(grid, lambda x: x, -5) == 0 and _closest(grid, lambda x: x, 99) == 31  # out of range: the ends


def test_chord_threshold_calibration_matches_the_share_of_double_stops():
    s = np.zeros((1, 1, 8, N_PITCHES), bool)
    s[0, 0, :, 30] = True
    s[0, 0, :2, 34] = True
    assert chord_share(s) == [0.25]
    out = -np.ones((4, 1, SAMPLE_STEPS, N_PITCHES))
    out[:, 0, :, 30] = 0.9  # the line
    out[:, 0, ::4, 34] = -0.4  # a second note with probability 0.3 on every 4th step
    pens, rests, th = calibrate_decoder(out, [2], [1.0], [0.0], [0.25])
    assert th[0] < 0.3
    decoded = decode(out, [2], pens, seed=EVAL_SEED, chord_threshold=th, rest_weight=rests)
    assert chord_share(decoded)[0] == pytest.approx(0.25, abs=0.03)
    assert chord_share(decode(out, [2], pens, seed=EVAL_SEED))[0] == 0.0  # at 1/2 no second note would sound
    assert calibrate_decoder(out, [1], [1.0], [0.0], [0.25])[2] == [0.5]  # single lines have no threshold


def test_unet_generator_trains_and_accompanies(tmp_path):
    card = train_gan("tiny-unet", "unet", synthetic_dataset(), epochs=1, batch_size=4, update_ratio=1,
                     max_steps_per_epoch=2, progress=False, evaluate=False,
                     model_config={"z_dim": 4, "width": 8, "critic_width": 8})
    assert card.status == "complete" and card.algorithm == "U-Net"
    assert card.hyperparameters["model"]["algorithm"] == "unet"
    out = accompany(load_sample("twinkle_twinkle"), model="tiny-unet", seed=2, save=False)
    assert [t.name for t in out.tracks[1:]] == ["alto", "tenor", "bass"]


def test_rest_weight_calibration_matches_the_share_of_empty_bars():
    out = -np.ones((32, 1, SAMPLE_STEPS, N_PITCHES))
    out[:, 0, :, 30] = 0.0  # the note is as likely as the rest at every step
    assert empty_bar_share(decode(out, [1], 0.0, seed=1, rest_weight=0.01)) == [0.0]
    pens, rests, ths = calibrate_decoder(out, [1], [1.0], [0.5], [0.0])
    decoded = decode(out, [1], pens, seed=EVAL_SEED, rest_weight=rests)
    plain = decode(out, [1], pens, seed=EVAL_SEED)
    assert abs(empty_bar_share(decoded)[0] - 0.5) < abs(empty_bar_share(plain)[0] - 0.5)
    assert rests[0] > 1 and ths == [0.5]
    s = np.zeros((1, 2, SAMPLE_STEPS, N_PITCHES), bool)
    s[0, 0, :16, 3] = True
    assert empty_bar_share(s) == [0.75, 1.0]

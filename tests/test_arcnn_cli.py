"""AR-CNN from the command line: ``capsule data bach``, ``train arcnn``, ``evaluate``, ``enhance``.

Runs on the first 12 chorales of the corpus (11 train, 1 validation) with a tiny
number of steps, so the whole flow takes seconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from capsule_lib import load_sample, read_midi, write_midi
from capsule_lib.cli import main

LIMIT = "12"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    """One tiny model trained through the CLI, shared by the tests below."""
    import os

    home = tmp_path_factory.mktemp("arcnn_cli_home")
    old = os.environ.get("CAPSULE_HOME")
    os.environ["CAPSULE_HOME"] = str(home)
    try:
        code = main(
            [
                "train",
                "arcnn",
                "--name",
                "tiny-cli",
                "--limit",
                LIMIT,
                "--epochs",
                "2",
                "--max-steps",
                "2",
                "--batch-size",
                "4",
                "--quiet",
                "--json",
            ]
        )
        assert code == 0
    finally:
        if old is None:
            os.environ.pop("CAPSULE_HOME")
        else:
            os.environ["CAPSULE_HOME"] = old
    return home


@pytest.fixture
def in_trained_home(trained_home, monkeypatch):
    monkeypatch.setenv("CAPSULE_HOME", str(trained_home))
    return trained_home


@pytest.mark.slow
def test_data_bach_builds_once_then_reuses_the_cache(capsys):
    code, out, err = run(capsys, "data", "bach", "--limit", LIMIT, "--quiet", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["chorales"] == 12
    assert first["train"]["chorales"] + first["validation"]["chorales"] + first["test"]["chorales"] == 12
    assert first["pitch_range"] == [30, 93] and first["window_steps"] == 128 and first["hop_steps"] == 64
    cache = Path(first["cache"])
    assert cache.is_file()
    stamp = (cache.stat().st_mtime_ns, hashlib.sha256(cache.read_bytes()).hexdigest())

    code, out, err = run(capsys, "data", "bach", "--limit", LIMIT, "--quiet", "--json")
    assert code == 0
    assert json.loads(out) == first
    assert (cache.stat().st_mtime_ns, hashlib.sha256(cache.read_bytes()).hexdigest()) == stamp  # not rewritten

    code, out, _ = run(capsys, "data", "bach", "--limit", LIMIT, "--quiet")
    assert "train" in out and "validation" in out and "test" in out and "sha256" in out


@pytest.mark.slow
def test_train_registers_a_complete_model_with_history(capsys, in_trained_home):
    code, out, _ = run(capsys, "models", "show", "tiny-cli", "--json")
    card = json.loads(out)
    assert card["technique"] == "arcnn" and card["status"] == "complete"
    assert card["hyperparameters"]["training"]["epochs"] == 2
    assert card["hyperparameters"]["training"]["batch_size"] == 4
    assert card["metrics"]["final_loss"] > 0
    folder = in_trained_home / "models" / "tiny-cli"
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == 2 and all("loss" in h for h in history)
    assert (folder / "README.md").is_file()


def test_train_refuses_a_taken_name(capsys, in_trained_home):
    code, _, err = run(capsys, "train", "arcnn", "--name", "tiny-cli", "--limit", LIMIT, "--epochs", "1", "--quiet")
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--lr", "-1"], ["--batch-size", "x"], ["gan-typo"]])
def test_train_rejects_bad_arguments(capsys, argv):
    args = ["train", *argv] if argv == ["gan-typo"] else ["train", "arcnn", *argv]
    code, _, err = run(capsys, *args)
    assert code == 2 and err.startswith("capsule: error:") and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_evaluate_reports_nll_against_the_baseline(capsys, in_trained_home):
    code, out, err = run(
        capsys,
        "evaluate",
        "tiny-cli",
        "--split",
        "validation",
        "--limit",
        LIMIT,
        "--max-windows",
        "3",
        "--quiet",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["split"] == "validation" and result["n_windows"] == 3
    assert result["nll"] > 0 and result["baseline_nll"] > 0
    assert 0 <= result["restoration"]["f1"] <= 1
    from capsule_lib.metrics import METRICS

    metrics = result["restoration"]["metrics"]
    assert set(metrics) == {"input", "output", "bach"}
    assert all(set(metrics[k]) == set(METRICS) for k in metrics)
    assert metrics["bach"]["pitches_used"] > 2 and metrics["bach"]["polyphonic_rate"] > 0.5  # four voices
    code, out, err = run(capsys, "evaluate", "no-such-model", "--quiet")
    assert code == 2 and "no-such-model" in err


def test_enhance_writes_midi_and_saves_a_composition(capsys, in_trained_home, tmp_path):
    src = tmp_path / "ode.mid"
    write_midi(load_sample("ode_to_joy"), src)
    before = src.read_bytes()
    out_path = tmp_path / "ode_enhanced.mid"
    code, out, err = run(
        capsys,
        "enhance",
        src,
        "-o",
        out_path,
        "--model",
        "tiny-cli",
        "--iterations",
        4,
        "--max-remove-pct",
        10,
        "--max-notes-added",
        5,
        "--seed",
        3,
    )
    assert code == 0, err
    assert src.read_bytes() == before
    original, result = read_midi(src), read_midi(out_path)
    old = {(n.start, n.pitch) for n in original.notes}
    new = {(n.start, n.pitch) for n in result.notes}
    assert len(new - old) <= 5  # the add cap
    assert len(old - new) <= len(old) // 10  # the removal cap
    comps = json.loads(run(capsys, "compositions", "list", "--json")[1])
    mine = [c for c in comps if c["technique"] == "arcnn"]
    assert len(mine) == 1 and mine[0]["model"] == "tiny-cli"
    assert mine[0]["parameters"]["seed"] == 3 and mine[0]["parameters"]["sampling_iterations"] == 4

    # Enhancing that composition by id records it as the parent.
    code, out, err = run(
        capsys,
        "enhance",
        mine[0]["id"],
        "-o",
        tmp_path / "again.mid",
        "--model",
        "tiny-cli",
        "--iterations",
        2,
        "--seed",
        1,
    )
    assert code == 0, err
    comps = json.loads(run(capsys, "compositions", "list", "--json")[1])
    assert any(c["parent"] == mine[0]["id"] for c in comps)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--iterations", "0"], "sampling_iterations"),
        (["--max-remove-pct", "101"], "max_remove_pct"),
        (["--creative-risk", "9"], "creative_risk"),
        (["--model", "nope"], "nope"),
    ],
)
def test_enhance_errors(capsys, in_trained_home, tmp_path, argv, needle):
    out_path = tmp_path / "o.mid"
    code, _, err = run(capsys, "enhance", "twinkle_twinkle", "-o", out_path, "--model", "tiny-cli", *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not out_path.exists()

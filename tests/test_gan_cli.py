"""The GAN on the command line: accompany, instrument, data, evaluate."""

from __future__ import annotations

import json

import pytest
from gan_fixtures import synthetic_dataset

from capsule_lib.cli import main
from capsule_lib.midi import read_midi
from capsule_lib.techniques.gan import quality_bar

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
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


def test_cli_evaluate_json_format(in_tiny_home, capsys, monkeypatch):
    monkeypatch.setattr("capsule_lib.techniques.gan.evaluate.resolve_dataset", lambda *a, **k: synthetic_dataset())
    capsys.readouterr()
    assert main(["evaluate", "tiny-gan", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tracks"]["alto"]["empty_bar_rate"].keys() == {"generated", "ground_truth"}
    assert main(["evaluate", "tiny-gan"]) == 0
    assert "quality bar: " in capsys.readouterr().out


def failing_result():
    """An evaluation whose quality bar fails (the piece-bootstrap intervals the shipped cards also
    store are research evaluation: ``bench/gan_research.py evaluate`` prints them, not ``capsule``)."""
    tracks = {
        "alto": {
            "empty_bar_rate": {"generated": 0.09, "ground_truth": 0.06},
            "polyphonic_rate": {"generated": 0.2, "ground_truth": 0.1},
        }
    }
    return {
        "model": "m",
        "split": "test",
        "n_samples": 9,
        "n_pieces": 3,
        "tracks": tracks,
        "tonal_distance": {},
        "quality_bar": quality_bar(tracks),
        "ground_truth_interval": {
            "level": 0.9,
            "draws": 10,
            "tracks": {"alto": {"empty_bar_rate": [0.04, 0.1], "polyphonic_rate": [0.08, 0.12]}},
        },
    }


def test_failed_checks_are_named(in_tiny_home, capsys, monkeypatch):
    monkeypatch.setattr("capsule_lib.techniques.gan.evaluate.evaluate_gan", lambda *a, **k: failing_result())
    capsys.readouterr()
    assert main(["evaluate", "tiny-gan"]) == 0
    out = capsys.readouterr().out
    assert "quality bar: not passed: alto" in out and "interval" not in out


def test_cross_validation_is_a_bench_script_not_a_command(capsys):
    assert main(["cross-validate", "tiny-gan"]) == 2
    assert "invalid choice: 'cross-validate'" in capsys.readouterr().err

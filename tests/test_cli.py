"""The ``capsule`` command line: every command of the foundation issue, its --json output and its errors.

Most tests call :func:`capsule_lib.cli.main` in-process (fast); a few run the installed
console script to check the exit status and that no traceback ever reaches the user.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import wave
from pathlib import Path

import pytest

from capsule_lib import load_sample, read_midi, write_midi
from capsule_lib.cli import main


def run(capsys, *argv):
    """(exit status, stdout, stderr) of ``capsule argv...``."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, out, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("capsule: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def melody_file(tmp_path):
    path = tmp_path / "twinkle.mid"
    write_midi(load_sample("twinkle_twinkle"), path)
    return path


# -- samples ----------------------------------------------------------------------


def test_samples_table_and_json(capsys):
    code, out, _ = run(capsys, "samples")
    assert code == 0 and "ode_to_joy" in out and "Ode to Joy" in out
    code, out, _ = run(capsys, "samples", "--json")
    data = json.loads(out)
    assert len(data) >= 8
    names = {s["name"] for s in data}
    assert {"twinkle_twinkle", "ode_to_joy"} <= names
    assert all(s["title"] and s["recommended_for"] for s in data)


# -- edit -------------------------------------------------------------------------


def test_edit_tempo_and_transpose(capsys, melody_file, tmp_path):
    out_path = tmp_path / "out.mid"
    code, out, err = run(capsys, "edit", melody_file, "-o", out_path, "--tempo", 72, "--transpose", -3)
    assert code == 0, err
    before, after = read_midi(melody_file), read_midi(out_path)
    assert after.tempo == pytest.approx(72)
    assert [n.pitch - 3 for n in before.notes] == [n.pitch for n in after.notes]
    assert [n.start for n in before.notes] == [n.start for n in after.notes]


def test_edit_quantize_snaps_notes_to_the_grid(capsys, tmp_path):
    from capsule_lib import Note, Score, Track

    # 24 steps per beat; a sixteenth is 6 steps.  Starts off the grid by a few steps.
    notes = tuple(Note(start=start, pitch=60 + i, duration=6) for i, start in enumerate([1, 8, 11, 19, 26]))
    score = Score(tracks=(Track(name="melody", notes=notes),), resolution=24)
    src, dst = tmp_path / "loose.mid", tmp_path / "tight.mid"
    write_midi(score, src)
    code, _, err = run(capsys, "edit", src, "-o", dst, "--quantize")
    assert code == 0, err
    starts = [n.start for n in read_midi(dst).notes]
    assert starts == [0, 6, 12, 18, 24]


def test_edit_a_sample_by_name(capsys, tmp_path):
    code, _, err = run(capsys, "edit", "ode_to_joy", "-o", tmp_path / "o.mid", "--transpose", 12)
    assert code == 0, err
    assert [n.pitch for n in read_midi(tmp_path / "o.mid").notes] == [
        n.pitch + 12 for n in load_sample("ode_to_joy").notes
    ]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--tempo", "200"], "tempo"),
        (["--tempo", "39"], "tempo"),
        (["--transpose", "13"], "transposition"),
        (["--transpose", "x"], "--transpose"),
    ],
)
def test_edit_out_of_range_is_a_one_line_error(capsys, melody_file, tmp_path, argv, needle):
    out_path = tmp_path / "out.mid"
    code, out, err = run(capsys, "edit", melody_file, "-o", out_path, *argv)
    assert_one_line_error(code, out, err, needle)
    assert not out_path.exists()


def test_edit_refuses_to_overwrite_its_input(capsys, melody_file):
    before = digest(melody_file)
    code, out, err = run(capsys, "edit", melody_file, "-o", melody_file, "--transpose", 1)
    assert_one_line_error(code, out, err, "overwrite")
    assert digest(melody_file) == before


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "empty"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x00\x60MTrk\x00\x00\x10\x00\x90\x3c", "truncated"),
        (b"%PDF-1.4 not music at all", "not a MIDI file"),
    ],
)
def test_edit_bad_midi_is_a_one_line_error_and_the_file_is_untouched(capsys, tmp_path, content, needle):
    bad = tmp_path / "twinkle.mid"
    bad.write_bytes(content)
    code, out, err = run(capsys, "edit", bad, "-o", tmp_path / "out.mid", "--transpose", 1)
    assert_one_line_error(code, out, err, needle, "twinkle.mid")
    assert bad.read_bytes() == content
    assert not (tmp_path / "out.mid").exists()


def test_missing_input_names_the_problem(capsys, tmp_path):
    code, out, err = run(capsys, "edit", tmp_path / "nope.mid", "-o", tmp_path / "o.mid")
    assert_one_line_error(code, out, err, "nope.mid")
    code, out, err = run(capsys, "edit", "no_such_tune", "-o", tmp_path / "o.mid")
    assert_one_line_error(code, out, err, "no_such_tune")


# -- render -----------------------------------------------------------------------


@pytest.mark.slow
def test_render_wav_and_mp3(capsys, melody_file, tmp_path):
    wav_path, mp3_path = tmp_path / "t.wav", tmp_path / "t.mp3"
    assert run(capsys, "render", melody_file, "-o", wav_path)[0] == 0
    with wave.open(str(wav_path)) as w:
        seconds = w.getnframes() / w.getframerate()
    score = read_midi(melody_file)
    assert seconds >= score.duration_seconds * 0.98  # the whole melody, plus its release
    assert run(capsys, "render", melody_file, "-o", mp3_path, "--metronome")[0] == 0
    head = mp3_path.read_bytes()[:3]
    assert head == b"ID3" or head[0] == 0xFF


def test_render_rejects_other_formats(capsys, melody_file, tmp_path):
    code, out, err = run(capsys, "render", melody_file, "-o", tmp_path / "t.ogg")
    assert_one_line_error(code, out, err, ".wav or .mp3")


# -- compositions -----------------------------------------------------------------


@pytest.mark.slow
def test_compositions_lifecycle(capsys, melody_file, tmp_path):
    code, out, _ = run(capsys, "compositions", "list", "--json")
    assert code == 0 and json.loads(out) == []

    code, out, err = run(capsys, "compositions", "add", melody_file, "--title", "My tune")
    assert code == 0, err
    cid = out.strip()
    assert len(out.strip().splitlines()) == 1  # add prints just the new id

    code, out, _ = run(capsys, "compositions", "list", "--json")
    listed = json.loads(out)
    assert [c["id"] for c in listed] == [cid]
    assert listed[0]["title"] == "My tune" and listed[0]["technique"] == "import"

    assert run(capsys, "compositions", "tag", cid, "mood=calm")[0] == 0
    code, out, _ = run(capsys, "compositions", "show", cid, "--json")
    shown = json.loads(out)
    assert shown["tags"]["mood"] == "calm"
    assert shown["tags"].get("capsule:technique") == "import"

    code, out, _ = run(capsys, "compositions", "show", cid)
    assert "My tune" in out and "mood" in out

    assert run(capsys, "compositions", "untag", cid, "mood")[0] == 0
    code, out, _ = run(capsys, "compositions", "show", cid, "--json")
    assert "mood" not in json.loads(out)["tags"]

    assert run(capsys, "compositions", "rename", cid, "My  better\ttune")[0] == 0
    code, out, _ = run(capsys, "compositions", "show", cid, "--json")
    assert json.loads(out)["title"] == "My better tune"  # one line, single spaces
    code, out, err = run(capsys, "compositions", "rename", cid, "   ")
    assert code == 2 and "empty" in err and len(err.strip().splitlines()) == 1

    for ext in ("mid", "wav", "mp3"):
        target = tmp_path / f"export.{ext}"
        code, out, err = run(capsys, "compositions", "export", cid, "-o", target)
        assert code == 0, err
        assert target.stat().st_size > 100
    assert read_midi(tmp_path / "export.mid").notes == read_midi(melody_file).notes

    assert run(capsys, "compositions", "delete", cid)[0] == 0
    code, out, _ = run(capsys, "compositions", "list", "--json")
    assert json.loads(out) == []
    code, out, err = run(capsys, "compositions", "show", cid)
    assert_one_line_error(code, out, err, cid)


@pytest.mark.parametrize(
    "tag, needle",
    [
        ("novalue", "KEY=VALUE"),
        ("capsule:technique=x", "capsule:"),
        ("=empty-key", "key"),
        ("k" * 129 + "=v", "128"),
    ],
)
def test_compositions_tag_errors(capsys, melody_file, tag, needle):
    cid = run(capsys, "compositions", "add", melody_file)[1].strip()
    code, out, err = run(capsys, "compositions", "tag", cid, tag)
    assert_one_line_error(code, out, err, needle)


def test_compositions_add_refuses_bad_midi(capsys, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage")
    code, out, err = run(capsys, "compositions", "add", bad)
    assert code == 2 and "Traceback" not in err
    assert run(capsys, "compositions", "list", "--json")[1].strip() == "[]"


def test_home_selects_the_store(capsys, melody_file, tmp_path, monkeypatch):
    cid = run(capsys, "compositions", "add", melody_file)[1].strip()
    monkeypatch.setenv("CAPSULE_HOME", str(tmp_path / "elsewhere"))
    assert json.loads(run(capsys, "compositions", "list", "--json")[1]) == []
    code, out, err = run(capsys, "compositions", "show", cid)
    assert code == 2


# -- models -----------------------------------------------------------------------


@pytest.fixture
def tiny_model():
    import torch

    from capsule_lib import ModelRegistry

    reg = ModelRegistry()
    reg.create("tiny", "arcnn", algorithm="U-Net", dataset="none", hyperparameters={"epochs": 1})
    reg.save_weights("tiny", {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)})
    reg.update("tiny", status="complete", metrics={"loss": 0.5})
    return reg


def test_models_list_show_export_import(capsys, tiny_model, tmp_path):
    code, out, _ = run(capsys, "models", "list", "--json")
    assert "tiny" in {m["name"] for m in json.loads(out)}
    code, out, _ = run(capsys, "models", "list")
    assert "tiny" in out and "custom" in out
    code, out, _ = run(capsys, "models", "show", "tiny", "--json")
    card = json.loads(out)
    assert card["technique"] == "arcnn" and card["status"] == "complete" and card["metrics"]["loss"] == 0.5

    archive = tmp_path / "tiny.tar.gz"
    assert run(capsys, "models", "export", "tiny", "-o", archive)[0] == 0
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert any(n.endswith(".safetensors") for n in names) and not any(n.endswith((".pt", ".pkl")) for n in names)

    code, out, err = run(capsys, "models", "import", archive)
    assert_one_line_error(code, out, err, "tiny")  # the name is taken
    code, out, err = run(capsys, "models", "import", archive, "--name", "tiny-copy")
    assert code == 0, err
    assert out.strip() == "tiny-copy"
    import torch

    w = tiny_model.load_weights("tiny-copy")
    assert torch.equal(w["w"], torch.arange(6, dtype=torch.float32).reshape(2, 3))


def test_models_import_rejects_path_traversal(capsys, tmp_path):
    import io

    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"{}"
        info = tarfile.TarInfo("../../escape.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    code, out, err = run(capsys, "models", "import", archive)
    assert code == 2 and "Traceback" not in err
    assert not (tmp_path.parent / "escape.json").exists()
    assert not any(m["name"] == "evil" for m in json.loads(run(capsys, "models", "list", "--json")[1]))


def test_models_unknown_name(capsys):
    code, out, err = run(capsys, "models", "show", "no-such-model")
    assert_one_line_error(code, out, err, "no-such-model")


# -- usage errors and the real console script ----------------------------------------


def test_usage_errors_are_one_line(capsys):
    assert_one_line_error(*run(capsys, "frobnicate"))
    assert_one_line_error(*run(capsys, "compositions"))
    assert_one_line_error(*run(capsys, "edit", "x.mid"), "-o")


def _console(*argv, env_home):
    exe = Path(sys.executable).with_name("capsule")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "capsule_lib.cli"]
    env = {**os.environ, "CAPSULE_HOME": str(env_home)}
    return subprocess.run([*cmd, *map(str, argv)], capture_output=True, text=True, env=env, timeout=120)


def test_console_script_exit_codes(tmp_path):
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\xff\x90")
    proc = _console("render", bad, "-o", tmp_path / "x.wav", env_home=tmp_path / "home")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "broken.mid" in proc.stderr
    assert not (tmp_path / "x.wav").exists()
    ok = _console("samples", "--json", env_home=tmp_path / "home")
    assert ok.returncode == 0 and json.loads(ok.stdout)

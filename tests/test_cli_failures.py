"""File-system failures on the command line (issue 18 items 3 and 6): one line, exit 2,
and a failed command leaves nothing behind -- no output file, no composition.

The read-only store is simulated by refusing writes below a folder (``read_only``):
tests often run as root, for whom ``chmod`` makes nothing read-only.
"""

from __future__ import annotations

import builtins
import errno
import io
import os

import pytest
from test_cli import assert_one_line_error, digest, run

from capsule_lib import CompositionStore, load_sample, read_midi, write_midi
from capsule_lib.cli import main


@pytest.fixture
def melody_file(tmp_path):
    path = tmp_path / "ode.mid"
    write_midi(load_sample("ode_to_joy"), path)
    return path


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)``: from then on every write below ``folder`` fails with EROFS, as on a read-only disk."""
    roots: list[str] = []

    def blocked(path) -> bool:
        if isinstance(path, int):
            return False
        p = os.path.abspath(os.fsdecode(path))
        return any(p == r or p.startswith(r + os.sep) for r in roots)

    def deny(path):
        raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))

    real = {name: getattr(os, name) for name in ("open", "mkdir", "rename", "replace", "unlink", "rmdir")}
    real_open = builtins.open

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and blocked(path):
            deny(path)
        return real["open"](path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if blocked(path):
            if os.path.exists(path):
                raise FileExistsError(errno.EEXIST, "File exists", os.fsdecode(path))
            deny(path)
        return real["mkdir"](path, *args, **kwargs)

    def two_paths(name):
        def call(src, dst, *args, **kwargs):
            if blocked(src) or blocked(dst):
                deny(dst)
            return real[name](src, dst, *args, **kwargs)

        return call

    def one_path(name):
        def call(path, *args, **kwargs):
            if blocked(path):
                deny(path)
            return real[name](path, *args, **kwargs)

        return call

    def open_(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and any(c in mode for c in "wax+") and blocked(file):
            deny(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "rename", two_paths("rename"))
    monkeypatch.setattr(os, "replace", two_paths("replace"))
    monkeypatch.setattr(os, "unlink", one_path("unlink"))
    monkeypatch.setattr(os, "rmdir", one_path("rmdir"))
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    return lambda folder: roots.append(os.path.abspath(folder))


def _compositions() -> list[str]:
    return [c.id for c in CompositionStore().list()]


def _everything(folder) -> set[str]:
    """Every file and folder below ``folder``."""
    return {os.path.relpath(os.path.join(d, f), folder) for d, dirs, files in os.walk(folder) for f in files + dirs}


# -- 3. bad output paths: one line, exit 2, nothing written, no composition -----------------------

COMMANDS = {
    "edit": ["edit", "{in}", "--transpose", "2"],
    "render": ["render", "{in}"],
    "enhance": ["enhance", "{in}", "--seed", "1"],
    "extend": ["extend", "{in}", "--seed", "1", "--extension-duration", "1"],
    "accompany": ["accompany", "{in}", "--seed", "1"],
    "instrument": ["instrument", "{in}", "0", "5"],
    "compositions export": ["compositions", "export", "{id}"],
    "models export": ["models", "export", "arcnn-bach"],
}
SUFFIX = {"render": ".wav", "models export": ".tar.gz"}


def _bad_output(kind: str, tmp_path, suffix: str):
    if kind == "under a file":
        (tmp_path / "plain").write_text("mine")
        return tmp_path / "plain" / f"out{suffix}", "a folder on its path is a file"
    if kind == "a folder":
        folder = tmp_path / f"taken{suffix}"
        folder.mkdir()
        (folder / "keep.txt").write_text("mine")
        return folder, "it is a folder"
    return tmp_path / ("x" * 300 + suffix), "longer than the file system allows"


@pytest.mark.parametrize(
    "command, kind",
    [
        (command, kind)
        for command in sorted(COMMANDS)
        for kind in ("under a file", "a folder", "a name too long")
        # exporting into an existing folder is a feature: the file is named after the id
        if not (command.endswith("export") and kind == "a folder")
    ],
)
def test_a_bad_output_path_is_one_line_and_leaves_nothing_behind(capsys, tmp_path, melody_file, command, kind):
    cid = CompositionStore().add(load_sample("twinkle_twinkle"), title="mine").id
    out, needle = _bad_output(kind, tmp_path, SUFFIX.get(command, ".mid"))
    before = _everything(tmp_path)
    argv = [a.format(**{"in": melody_file, "id": cid}) for a in COMMANDS[command]]
    code, stdout, err = run(capsys, *argv, "-o", out)
    assert_one_line_error(code, stdout, err, needle)
    assert _everything(tmp_path) == before  # no output, no temporary file
    assert _compositions() == [cid]  # and no composition saved for a result never written


@pytest.mark.slow
@pytest.mark.parametrize("command", ["enhance", "extend", "accompany"])
def test_a_technique_whose_output_write_fails_late_keeps_no_composition(
    capsys, tmp_path, melody_file, monkeypatch, command
):
    from capsule_lib import CapsuleError, midi

    out = tmp_path / "out.mid"
    out.write_bytes(b"the user's old file")

    def disk_full(score, path):
        raise CapsuleError(f"cannot write {path}: no space left on the disk")

    monkeypatch.setattr(midi, "write_midi", disk_full)
    argv = [a.format(**{"in": melody_file}) for a in COMMANDS[command]]
    code, stdout, err = run(capsys, *argv, "-o", out)
    assert_one_line_error(code, stdout, err, "no space left")
    assert _compositions() == []
    assert out.read_bytes() == b"the user's old file"


def test_composition_ids_longer_than_the_file_system_allows(capsys):
    for argv in (
        ["show", "a" * 300],
        ["tag", "a" * 300, "k=v"],
        ["delete", "a" * 300],
        ["export", "a" * 300, "-o", "x.mid"],
    ):
        code, out, err = run(capsys, "compositions", *argv)
        assert_one_line_error(code, out, err, "no composition")
    code, out, err = run(capsys, "enhance", "b" * 300, "-o", "x.mid")
    assert_one_line_error(code, out, err, "is not a MIDI file, a sample melody or a composition id")


def test_a_damaged_meta_json_is_skipped_by_list_and_one_line_for_show(capsys):
    store = CompositionStore()
    good = store.add(load_sample("twinkle_twinkle"), title="mine").id
    bad = store.add(load_sample("ode_to_joy"), title="damaged").id
    (store.root / bad / "meta.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    code, out, err = run(capsys, "compositions", "list")
    assert code == 0 and good in out and bad not in out
    code, out, err = run(capsys, "compositions", "show", bad)
    assert_one_line_error(code, out, err, "is damaged")


# -- 3. a read-only store ---------------------------------------------------------------------------


def test_a_read_only_store_refuses_changes_in_one_line_and_still_reads(
    capsys, tmp_path, melody_file, read_only, _isolated_home
):
    store = CompositionStore()
    cid = store.add(load_sample("twinkle_twinkle"), title="mine").id
    read_only(_isolated_home)
    before = _everything(_isolated_home)
    for argv, needle in [
        (["compositions", "add", melody_file], "read-only"),
        (["compositions", "tag", cid, "mood=calm"], "read-only"),
        (["compositions", "delete", cid], "read-only"),
        (["accompany", melody_file, "--seed", "1", "-o", tmp_path / "acc.mid"], "read-only"),
        (["models", "tag", "arcnn-bach", "mood=calm"], "read-only"),
    ]:
        code, out, err = run(capsys, *argv)
        assert_one_line_error(code, out, err, needle)
    assert not (tmp_path / "acc.mid").exists()  # the composition could not be saved, so no output either
    assert _everything(_isolated_home) == before
    code, out, err = run(capsys, "compositions", "list")
    assert code == 0 and cid in out
    code, out, err = run(capsys, "edit", cid, "-o", tmp_path / "copy.mid")  # reading from the store works
    assert code == 0, err
    assert read_midi(tmp_path / "copy.mid").notes == load_sample("twinkle_twinkle").notes


def test_a_read_only_store_refuses_a_model_import_in_one_line(capsys, tmp_path, read_only, _isolated_home):
    archive = tmp_path / "arcnn.tar.gz"
    assert run(capsys, "models", "export", "arcnn-bach", "-o", archive)[0] == 0
    read_only(_isolated_home)
    code, out, err = run(capsys, "models", "import", archive, "--name", "copy")
    assert_one_line_error(code, out, err, "read-only")


def test_an_input_file_is_never_changed_by_a_failing_command(capsys, tmp_path, melody_file):
    before = digest(melody_file)
    run(capsys, "edit", melody_file, "-o", tmp_path / "plain.mid" / "x.mid")
    run(capsys, "enhance", melody_file, "-o", melody_file)
    assert digest(melody_file) == before


# -- 1 and 6. the command line writes no file it would refuse -------------------------------------------


@pytest.mark.parametrize("change_bpm, tempo", [(5.0, "40"), (60_000_000.0, "160")])
def test_edit_tempo_keeps_tempo_changes_writable(capsys, tmp_path, change_bpm, tempo):
    from capsule_lib import Note, Score, Track

    src, out = tmp_path / "changes.mid", tmp_path / "out.mid"
    write_midi(
        Score(
            tracks=(Track(notes=(Note(0, 60, 24), Note(48, 62, 24))),), tempo=100.0, tempo_changes=((24, change_bpm),)
        ),
        src,
    )
    code, stdout, err = run(capsys, "edit", src, "-o", out, "--tempo", tempo)
    assert code == 0, err
    again = read_midi(out)  # the file written reads back
    assert again.tempo == float(tempo) and len(again.tempo_changes) == 1


# -- 6. a quantize grid out of range -----------------------------------------------


@pytest.mark.parametrize("grid", ["0", "65536", "99999999999999999999"])
def test_edit_refuses_a_quantize_grid_out_of_range(capsys, tmp_path, melody_file, grid):
    out = tmp_path / "q.mid"
    code, stdout, err = run(capsys, "edit", melody_file, "-o", out, "--quantize", "--grid", grid)
    assert_one_line_error(code, stdout, err, "quantize grid")
    assert not out.exists()


def test_console_script_read_only_failure_is_exit_2(tmp_path):
    """The installed script, not main(): a path under a file is exit status 2, no traceback."""
    from test_cli import _console

    (tmp_path / "plain").write_text("x")
    proc = _console("edit", "ode_to_joy", "-o", tmp_path / "plain" / "o.mid", env_home=tmp_path / "home")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_main_turns_a_stray_os_error_into_one_line(capsys, monkeypatch):
    from capsule_lib import cli

    def vanished(args):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/gone/folder")

    monkeypatch.setattr(cli.library, "cmd_samples", vanished)
    code = main(["samples"])
    out, err = capsys.readouterr()
    assert_one_line_error(code, out, err, "/gone/folder")

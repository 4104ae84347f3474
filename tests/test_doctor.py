"""``capsule doctor`` / ``capsule_lib.doctor()``: what works here, each problem with its fix.

In this environment (CI's, or a developer's ``make install``) everything essential works and the
command exits 0; each failure case is made real (an unwritable $CAPSULE_HOME, a data folder
without data, a missing package) and must give FAIL, the fix, exit status 2 and one line on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import capsule_lib
from capsule_lib import audio
from capsule_lib import doctor as doctor_module
from capsule_lib.cli import main
from capsule_lib.doctor import FAIL, OK, WARN, Check, DoctorReport

REPO = Path(__file__).resolve().parents[1]
CHECK_NAMES = ["Python", "PyTorch", "packages", "audio", "MP3", "widgets", "MIDI", "capsule home", "data"]


def run_cli(*args, env=None):
    environ = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "capsule_lib.cli", "doctor", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


def by_name(report: DoctorReport) -> dict[str, Check]:
    return {c.name: c for c in report.checks}


@pytest.fixture
def unwritable_home(tmp_path, monkeypatch):
    """A $CAPSULE_HOME that cannot be created even by root: its parent is a file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CAPSULE_HOME", str(blocker / "home"))
    return blocker / "home"


# -- the command ----------------------------------------------------------------------
@pytest.mark.slow
def test_capsule_doctor_passes_here_and_reports_every_check():
    result = run_cli()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Composer Capsules doctor"
    for name in CHECK_NAMES:
        assert any(line.split("  ")[0].strip() in ("ok", "warn") and f"  {name}  " in line for line in lines), name
    assert lines[-1].startswith("=> everything essential works")
    assert result.stderr == ""


def test_an_unwritable_capsule_home_fails_with_exit_2_and_one_line(unwritable_home, capsys):
    assert main(["doctor"]) == 2
    out, err = capsys.readouterr()
    err_lines = err.strip().splitlines()
    assert len(err_lines) == 1 and "Traceback" not in err
    assert err_lines[0].startswith("capsule: error: 1 essential check failed (capsule home: ")
    lines = out.splitlines()
    failed = [i for i, line in enumerate(lines) if line.startswith("FAIL  capsule home")]
    assert failed and "fix: export CAPSULE_HOME=" in lines[failed[0] + 1]


@pytest.mark.slow
def test_json_output_is_machine_readable_and_keeps_the_exit_status(unwritable_home, tmp_path, capsys):
    good = run_cli("--json", env={"CAPSULE_HOME": str(tmp_path / "home")})
    assert good.returncode == 0
    report = json.loads(good.stdout)
    assert report["ok"] is True and [c["name"] for c in report["checks"]] == CHECK_NAMES
    assert main(["doctor", "--json"]) == 2  # the fixture's unwritable home
    out, err = capsys.readouterr()
    assert json.loads(out)["ok"] is False and err.startswith("capsule: error: 1 essential check failed")


# -- the function, for a notebook cell ----------------------------------------------------
def test_the_report_reads_in_a_notebook_cell():
    report = capsule_lib.doctor()
    assert isinstance(report, DoctorReport) and report.ok
    assert repr(report) == str(report) and repr(report).startswith("Composer Capsules doctor")
    page = report._repr_html_()
    assert page.count("<tr>") == len(CHECK_NAMES) and "everything essential works" in page


@pytest.mark.slow
def test_capsule_lib_doctor_is_one_callable_module_whichever_import_came_first():
    import capsule_lib.doctor as submodule
    from capsule_lib import doctor

    assert doctor is submodule is capsule_lib.doctor
    assert callable(doctor) and isinstance(doctor(), DoctorReport)
    assert "doctor" in capsule_lib.__all__ and "doctor" in dir(capsule_lib)
    code = "import capsule_lib as cl; r = cl.doctor(); import capsule_lib.doctor as d; print(d is cl.doctor, r.ok)"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert fresh.stdout.split() == ["True", "True"], fresh.stderr


def test_html_escapes_what_the_checks_report():
    report = DoctorReport([Check("data", FAIL, "<script>x</script>", "fix <b>")])
    assert "<script>" not in report._repr_html_() and "&lt;script&gt;" in report._repr_html_()


# -- each failure, made real ----------------------------------------------------------------
def test_unwritable_home_is_an_essential_failure(unwritable_home):
    report = capsule_lib.doctor()
    home = by_name(report)["capsule home"]
    assert home.status == FAIL and str(unwritable_home) in home.detail and "CAPSULE_HOME" in home.fix
    assert not report.ok and report.summary().startswith("1 essential check failed (capsule home:")


def test_a_data_folder_without_data_is_an_essential_failure(tmp_path, monkeypatch):
    (tmp_path / "melodies").mkdir()
    monkeypatch.setenv("CAPSULE_DATA", str(tmp_path))
    data = by_name(capsule_lib.doctor())["data"]
    assert data.status == FAIL and "CAPSULE_DATA" in data.fix


def test_the_data_check_counts_the_bundled_melodies_and_models():
    data = doctor_module._check_data()
    melodies = len(list((REPO / "data" / "melodies").glob("*.json")))
    models = len([p for p in (REPO / "data" / "models").iterdir() if (p / "model.json").is_file()])
    assert data.status == OK and data.detail.startswith(f"{melodies} sample melodies, {models} sample models")


def test_a_missing_or_too_old_package_fails_with_the_install_command(monkeypatch):
    real = doctor_module._version
    versions = {"mido": "1.2.10", "music21": None}
    monkeypatch.setattr(doctor_module, "_version", lambda dist: versions[dist] if dist in versions else real(dist))
    check = doctor_module._check_packages()
    assert check.status == FAIL
    assert "missing music21" in check.detail and "mido 1.2.10 (needs >= 1.3)" in check.detail
    assert "requirements.txt" in check.fix


def test_missing_fluidsynth_is_a_warning_naming_the_library_to_install(monkeypatch):
    monkeypatch.delenv("CAPSULE_AUDIO_BACKEND", raising=False)
    monkeypatch.setattr(audio, "_STATE", audio._BackendState())
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # `import fluidsynth` raises ImportError
    check = doctor_module._check_audio()
    assert check.status == WARN and "built-in synthesizer" in check.detail
    assert any(name in check.fix for name in ("libfluidsynth3", "fluid-synth", "fluidsynth"))


def test_a_jupyter_server_elsewhere_needs_anywidget_too(monkeypatch):
    real = doctor_module._version
    monkeypatch.setattr(
        doctor_module, "_version", lambda dist: None if dist in ("jupyterlab", "notebook") else real(dist)
    )
    monkeypatch.setattr(doctor_module, "_labextension", lambda name, extra_dirs=(): None)
    check = doctor_module._check_widgets()
    assert check.status == WARN and "AnyModel" in check.detail
    assert f"anywidget=={real('anywidget')}" in check.fix and "JupyterSystemEnv" in check.fix


def test_a_front_end_with_another_anywidget_version_is_a_warning(tmp_path, monkeypatch):
    (tmp_path / "anywidget").mkdir()
    (tmp_path / "anywidget" / "package.json").write_text(json.dumps({"version": "0.1.0"}))
    monkeypatch.setattr(doctor_module, "_labextension", lambda name, extra_dirs=(): tmp_path / "anywidget")
    check = doctor_module._check_widgets()
    assert check.status == WARN and "0.1.0" in check.detail


def test_the_front_end_here_has_the_kernels_anywidget():
    assert doctor_module._check_widgets().status == OK


def test_a_check_that_crashes_is_reported_not_raised(monkeypatch):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor_module, "CHECKS", (("data", broken, True), ("MIDI", broken, False)))
    report = capsule_lib.doctor()
    assert [(c.name, c.status) for c in report.checks] == [("data", FAIL), ("MIDI", WARN)]
    assert "RuntimeError: boom" in report.checks[0].detail


def test_the_package_list_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {}
    for line in project["dependencies"]:
        name, _, minimum = line.partition(">=")
        declared[name.strip().lower().replace("_", "-")] = minimum.strip()
    ours = {name: minimum for name, minimum in doctor_module.ESSENTIAL_PACKAGES.items()}
    ours.update({name: minimum for name, (minimum, _) in doctor_module.FEATURE_PACKAGES.items()})
    ours["torch"] = doctor_module.MIN_TORCH
    assert {k.replace("_", "-"): v for k, v in ours.items()} == declared

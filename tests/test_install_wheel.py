"""``pip install`` works: a wheel built from this checkout, installed into a fresh virtual
environment outside the repository, carries the sample melodies and models and finds them.

The wheel is built from a copy of the repository's files (so no stale ``build/`` folder of the
checkout can leak into it) without build isolation and without an index, and installed with
``--no-deps``; the fresh environment borrows the project environment's packages (torch, ...)
through a ``.pth`` line instead of downloading them again.  It is what Colab's
``pip install "composer-capsules @ git+https://..."`` does, minus the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SAMPLE_MODELS = sorted(p.name for p in (REPO / "data" / "models").iterdir() if (p / "model.json").is_file())
SAMPLE_MELODIES = sorted(p.stem for p in (REPO / "data" / "melodies").glob("*.json"))
_SKIP = (
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    "test-artifacts",
    "runs",
    "_data",
)


def _source_copy(dest: Path) -> Path:
    """The files a ``git+https`` install would see: tracked plus new, never ignored ones."""
    try:
        listed = (
            subprocess.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=REPO,
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .split("\0")
        )
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist)
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(*_SKIP))
        return dest
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, environment folder, run(...) in that environment from a folder outside the repository)."""
    tmp = tmp_path_factory.mktemp("wheel_install")
    src = _source_copy(tmp / "src")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            tmp / "dist",
            src,
        ]
    )
    (wheel,) = (tmp / "dist").glob("composer_capsules-*.whl")

    # Nothing of the checkout may be on the new environment's path (a PYTHONPATH would
    # even make pip think the package is installed already).
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CAPSULE_DATA", "PYTHONHOME")}
    # One torch thread: the model is small and CI's two cores are busy with other tests.
    environ.update(CAPSULE_HOME=str(tmp / "home"), MPLBACKEND="Agg", PYTHONNOUSERSITE="1", OMP_NUM_THREADS="1")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False, symlinks=os.name != "nt")
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel],
        env=environ,
    )
    # Borrow torch & co. from the project environment: appended after the new site-packages,
    # so capsule_lib itself can only come from the wheel.
    site = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env=environ).stdout.strip()
    )
    assert (site / "capsule_lib" / "__init__.py").is_file()
    borrowed = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "borrowed-project-packages.pth").write_text("".join(f"{p}\n" for p in borrowed))

    work = tmp / "work"
    work.mkdir()

    def run_there(program: str, *args) -> subprocess.CompletedProcess:
        return _run([bin_dir / program, *args], cwd=work, env=environ)

    return wheel, env_dir, work, run_there


def test_the_wheel_carries_every_file_under_data(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"capsule_lib/_data/{p.relative_to(REPO / 'data').as_posix()}"
        for p in (REPO / "data").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
    assert expected and expected <= names, sorted(expected - names)[:5]
    assert "capsule_lib/widgets/static/keyboard.js" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_the_installed_package_reads_its_own_data_not_the_repository(installed):
    _, env_dir, _, run_there = installed
    out = run_there(
        "python", "-c", "import capsule_lib, capsule_lib.paths as p; print(capsule_lib.__file__); print(p.data_dir())"
    ).stdout.split("\n")
    package_file, data = Path(out[0]), Path(out[1])
    assert env_dir in package_file.parents
    assert data.name == "_data" and data.parent == package_file.parent
    assert REPO not in data.parents


def test_capsule_samples_lists_the_bundled_melodies(installed):
    out = installed[3]("capsule", "samples", "--json").stdout
    assert sorted(s["name"] for s in json.loads(out)) == SAMPLE_MELODIES


def test_capsule_enhance_runs_the_shipped_arcnn_model(installed):
    _, _, work, run_there = installed
    # Two sampling passes instead of twelve: enough to load and run the model, quick on a busy CI.
    run_there("capsule", "enhance", "ode_to_joy", "-o", "x.mid", "--seed", "1", "--iterations", "2")
    assert (work / "x.mid").read_bytes()[:4] == b"MThd"


def test_capsule_models_list_finds_every_sample_model(installed):
    models = json.loads(installed[3]("capsule", "models", "list", "--json").stdout)
    samples = sorted(m["name"] for m in models if m["sample"])
    assert samples == SAMPLE_MODELS


def test_capsule_doctor_passes_from_the_wheel_and_names_the_packaged_data(installed):
    report = json.loads(installed[3]("capsule", "doctor", "--json").stdout)
    assert report["ok"] is True
    data = next(c for c in report["checks"] if c["name"] == "data")
    assert data["status"] == "ok" and data["detail"].endswith("(installed package)")

"""The four descriptions of the environment agree with each other.

``requirements.txt`` is the reference: it is what ``make`` installs and CI tests.
``pyproject.toml`` is what ``pip install composer-capsules`` asks for, ``binder/`` what Binder
builds, ``environment.yml`` what conda (and the SageMaker lifecycle script) creates.  Each
names the same packages; where requirements.txt pins a version (torch) the other range admits
it, otherwise the ranges are the same.  conda is asked only for packages checked to exist on
conda-forge at the asked version; everything else goes under ``pip:``.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

#: conda package name -> PyPI name, where they differ
CONDA_NAMES = {"pytorch-cpu": "torch"}
#: conda-only packages: the interpreter, pip itself, and the FluidSynth C library (a system package elsewhere)
CONDA_EXTRAS = {"python", "pip", "fluidsynth"}
#: Checked on conda-forge (feedstock recipes, 2026-11-29) to exist at or above the lower bound
#: asked here.  Asking conda for anything else needs a check first, then an entry here.
ON_CONDA_FORGE = {
    "python",
    "pip",
    "pytorch-cpu",
    "numpy",
    "matplotlib",
    "fluidsynth",
    "safetensors",
    "tqdm",
    "ipython",
    "ipykernel",
    "ipywidgets",
    "anywidget",
    "jupyterlab",
    "notebook",
    "papermill",
    "nbformat",
    "pytest",
    "hypothesis",
    "nbval",  # nbval: 0.11.0 noarch on conda-forge (anaconda.org/conda-forge/nbval)
}
#: Must come from PyPI (under ``pip:``): conda-forge's version would break the environment.
PIP_ONLY = {
    "mido": "conda-forge has mido 1.2.10 only; the project needs >= 1.3",
    "pretty-midi": "conda-forge's pretty_midi depends on conda-forge's mido, i.e. 1.2.10",
}


def _requirements_file(path: Path) -> dict[str, SpecifierSet]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        found[canonicalize_name(req.name)] = req.specifier
    return found


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pyproject_requirements(*groups: str) -> dict[str, SpecifierSet]:
    project = _pyproject()
    lines = list(project["dependencies"]) if "runtime" in groups else []
    for group in groups:
        lines += project["optional-dependencies"].get(group, [])
    found = {}
    for line in lines:
        req = Requirement(line)
        found[canonicalize_name(req.name)] = req.specifier
    return found


def _environment_yml() -> tuple[dict[str, str], dict[str, SpecifierSet]]:
    """(conda package -> its spec text, PyPI package under pip: -> specifier)."""
    env = yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                req = Requirement(line)
                pip[canonicalize_name(req.name)] = req.specifier
        else:
            name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", dep).groups()
            conda[name.lower()] = spec.strip()
    return conda, pip


REFERENCE = _requirements_file(REPO / "requirements.txt")


def _agrees(name: str, other: SpecifierSet, where: str) -> None:
    """A pinned reference version must fall in ``other``; any other reference range must be ``other``."""
    reference = REFERENCE[name]
    pins = [s.version for s in reference if s.operator == "=="]
    if pins:
        assert Version(pins[0]) in other, f"{where}: {name}{other} excludes the tested {name}=={pins[0]}"
    else:
        assert other == reference, (
            f"{where}: {name}{other or ' (any)'} differs from requirements.txt's {name}{reference}"
        )


def test_requirements_txt_pins_torch_and_names_no_index_of_its_own():
    assert [s.operator for s in REFERENCE["torch"]] == ["=="]
    text = (REPO / "requirements.txt").read_text()
    assert not re.search(r"^\s*--?(extra-)?index-url|^\s*--find-links|^\s*-f\s", text, re.M)


def test_pyproject_asks_for_the_same_packages_as_requirements_txt():
    declared = _pyproject_requirements("runtime", "lab", "test")
    assert sorted(declared) == sorted(REFERENCE)
    for name, spec in declared.items():
        _agrees(name, spec, "pyproject.toml")


def test_binder_installs_the_versions_requirements_txt_names():
    binder = _requirements_file(REPO / "binder" / "requirements.txt")
    needed = set(_pyproject_requirements("runtime", "lab"))
    assert needed <= set(binder), f"binder/requirements.txt lacks {sorted(needed - set(binder))}"
    assert set(binder) <= set(REFERENCE), f"binder/requirements.txt adds {sorted(set(binder) - set(REFERENCE))}"
    for name, spec in binder.items():
        assert spec == REFERENCE[name], f"binder: {name}{spec} but requirements.txt has {name}{REFERENCE[name]}"


def test_binder_takes_torch_from_the_cpu_index_and_python_from_runtime_txt():
    lines = [line.strip() for line in (REPO / "binder" / "requirements.txt").read_text().splitlines()]
    assert f"--extra-index-url {CPU_INDEX}" in lines
    runtime = (REPO / "binder" / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), runtime
    assert Version(runtime.removeprefix("python-")) in SpecifierSet(_pyproject()["requires-python"])


def test_binder_installs_fluidsynth_by_its_ubuntu_name():
    packages = [line.partition("#")[0].strip() for line in (REPO / "binder" / "apt.txt").read_text().splitlines()]
    assert "libfluidsynth3" in packages


def test_environment_yml_has_every_package_once_with_the_same_versions():
    conda, pip = _environment_yml()
    assert not set(CONDA_NAMES.get(n, n) for n in conda) & set(pip), "a package both from conda and from pip"
    named = {canonicalize_name(CONDA_NAMES.get(n, n)) for n in conda if n not in CONDA_EXTRAS} | set(pip)
    assert sorted(named) == sorted(REFERENCE)
    for name, spec in pip.items():
        _agrees(name, spec, "environment.yml pip:")
    for name, spec in conda.items():
        if name in CONDA_EXTRAS:
            continue
        _agrees(canonicalize_name(CONDA_NAMES.get(name, name)), SpecifierSet(spec), "environment.yml")


def test_environment_yml_asks_conda_forge_only_for_what_it_has():
    conda, pip = _environment_yml()
    assert yaml.safe_load((REPO / "environment.yml").read_text())["channels"] == ["conda-forge"]
    unchecked = set(conda) - ON_CONDA_FORGE
    assert not unchecked, f"check these exist on conda-forge, then list them in ON_CONDA_FORGE: {sorted(unchecked)}"
    for name, why in PIP_ONLY.items():
        assert name in pip, f"{name} must be under pip: ({why})"


def test_every_route_uses_the_same_python():
    conda, _ = _environment_yml()
    runtime = (REPO / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    assert conda["python"] == f"={runtime}"


_TEXT = {".py", ".md", ".txt", ".yml", ".yaml", ".toml", ".sh", ".cfg", ".ipynb", ".in", ".cff", ""}
_NOT_OURS = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis", "test-artifacts", "runs"}


def test_nothing_in_the_repository_assumes_the_ci_machines_package_mirror():
    needles = ("/opt/pypi", "/opt/wheels", "/etc/xdg/pip")
    hits = []
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO)
        if rel.parts[0] in _NOT_OURS or "__pycache__" in rel.parts or not path.is_file() or path.suffix not in _TEXT:
            continue
        if path.name == Path(__file__).name:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [f"{rel}: {n}" for n in needles if n in text]
    assert hits == []

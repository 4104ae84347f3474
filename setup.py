"""The one part of the build that pyproject.toml cannot say: ship data/ inside the package.

The repository keeps ``data/`` (sample melodies, sample models, prepared data sets) at the
top level, beside ``capsule_lib/``, as the design asks.  A wheel carries it as
``capsule_lib/_data``: setuptools maps the package ``capsule_lib._data`` onto the folder
``data/`` and takes every file under it as package data, whatever the sub-folders are
called, so new data needs no change here.  At run time
:func:`capsule_lib.paths.data_dir` finds that copy with :mod:`importlib.resources`; a
checkout or an editable install (``make lab``) reads ``data/`` where it is.

Everything else (name, version, dependencies, the ``capsule`` command) is in pyproject.toml.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOT = Path(__file__).resolve().parent
DATA_PACKAGE = "capsule_lib._data"


def data_packages() -> list[str]:
    """``capsule_lib._data`` and every importable-looking folder under data/.

    Listing the folders whose names are identifiers (``melodies``, ``models``) keeps
    setuptools from warning that it sees packages it was not told about; folders such as
    ``arcnn-bach`` are not importable names and travel as package data of their parent.
    """
    names = [DATA_PACKAGE]
    for folder in sorted(p for p in (ROOT / "data").rglob("*") if p.is_dir()):
        parts = folder.relative_to(ROOT / "data").parts
        if all(part.isidentifier() for part in parts):
            names.append(".".join((DATA_PACKAGE, *parts)))
    return names


setup(
    packages=find_namespace_packages(include=["capsule_lib", "capsule_lib.*"], exclude=["*.__pycache__"])
    + data_packages(),
    package_dir={DATA_PACKAGE: "data"},
    package_data={
        "capsule_lib.widgets.static": ["*.js", "*.css"],
        DATA_PACKAGE: ["**/*"],
    },
)

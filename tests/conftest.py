import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own $CAPSULE_HOME, so none touches ~/.capsule."""
    home = tmp_path_factory.mktemp("capsule_home")
    monkeypatch.setenv("CAPSULE_HOME", str(home))
    return home

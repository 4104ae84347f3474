import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

pytest_plugins = ["gan_fixtures"]  # the GAN tests' tiny trained models, shared by their files


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own $CAPSULE_HOME, so none touches ~/.capsule."""
    home = tmp_path_factory.mktemp("capsule_home")
    monkeypatch.setenv("CAPSULE_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: extra threads only add overhead, and stall badly on a busy machine.
    A module asks for it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""The public API: every advertised name exists, and importing stays light."""

import subprocess
import sys

import pytest

import capsule_lib


def test_every_public_name_resolves():
    missing = [name for name in capsule_lib.__all__ if not hasattr(capsule_lib, name)]
    assert missing == []


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, capsule_lib; heavy = {'torch', 'music21', 'matplotlib', 'mido', 'fluidsynth', 'IPython', 'pretty_midi'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_library_code_never_changes_matplotlibs_backend():
    """``matplotlib.use(...)`` in library code silently removes every later plot from a notebook."""
    import re
    from pathlib import Path

    root = Path(capsule_lib.__file__).parent
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if re.search(r"matplotlib\.use\(|pyplot\.switch_backend\(|plt\.switch_backend\(", p.read_text())
    ]
    assert offenders == []


@pytest.mark.slow
def test_training_pictures_leave_the_backend_and_pyplot_alone(tmp_path):
    """Writing a model card's pictures (as training does) inside a notebook keeps its inline backend."""
    code = f"""
import matplotlib
matplotlib.use("module://matplotlib_inline.backend_inline")
import matplotlib.pyplot as plt
from types import SimpleNamespace
from pathlib import Path
from capsule_lib.techniques.arcnn.train import _write_card_files
card = SimpleNamespace(path=Path({str(tmp_path)!r}), name="m", hyperparameters={{}}, metrics={{}}, description="d",
                       dataset="x", training_time_s=1.0)
try:
    _write_card_files(card, [{{"epoch": 1, "loss": 0.5, "val_loss": 0.6}}], {{"skipped": 0, "duplicates": 0}})
except Exception:
    pass  # the README needs more of a card; the picture comes first
print(matplotlib.get_backend(), len(plt.get_fignums()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["module://matplotlib_inline.backend_inline", "0"]
    assert (tmp_path / "loss.png").stat().st_size > 2000

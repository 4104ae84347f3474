"""The public API: every advertised name exists, and importing stays light."""

import subprocess
import sys

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

"""Studio widgets for notebooks: the studio, the virtual keyboard, the piano-roll editor and technique panels.

Each widget is an ``anywidget.AnyWidget`` (a Python class with synced traits plus one plain
ES module in ``static/``, no build step); the logic lives in Python where it is tested, the
JavaScript only draws, plays sound and reports what the user did.

Names load lazily, so ``import capsule_lib.widgets`` does not import anywidget.
"""

from __future__ import annotations

from .._lazy import lazy_exports

# fmt: off
_LAZY = {
    "VirtualKeyboard": "keyboard",
    "PianoRollEditor": "pianoroll",
    "technique_panel": "panels", "arcnn_panel": "panels", "model_picker": "panels", "ArcnnPanel": "panels",
    "available_techniques": "panels", "TransformerPanel": "panels", "transformer_panel": "panels", "GanPanel": "panels",
    "gan_panel": "panels", "instrument_options": "panels", "model_choices": "panels",
    "ParameterForm": "form",
    "Studio": "studio",
    "DownloadButtons": "download",
}
# fmt: on

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

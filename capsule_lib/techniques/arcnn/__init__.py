"""The AR-CNN technique: a U-Net trained on Bach chorales that enhances a melody.

One file per part, each readable alone (after magenta's coconet):

``params``     its parameters with the console's labels, defaults and ranges (``SPEC``)
``technique``  its record in the registry: the ``capsule enhance`` options, what ``capsule evaluate`` prints
``model``      the U-Net and its :class:`ArcnnConfig`; loading registered models
``data``       chorale windows as roll tensors, transposition augmentation
``corrupt``    the online corruption (notes removed, stray notes added, cells hidden)
``gibbs``      the annealed blocked Gibbs schedule the sampler follows
``sample``     :func:`enhance` -- the sampler with hard caps and windowing
``train``      :class:`ArcnnTask` for the shared harness and :func:`train_arcnn`
``evaluate``   :func:`evaluate_arcnn` -- NLL vs a pitch-frequency baseline, restoration F1
``views``      what notebook 03 shows: windows and corruptions as scores, edit summaries

Its model card and training history are read like any model's, with
:func:`capsule_lib.model_card_text` and :func:`capsule_lib.model_history`.

Names load lazily, so ``import capsule_lib.techniques.arcnn`` does not import torch.
"""

from __future__ import annotations

from ..._lazy import lazy_exports

# fmt: off
_LAZY = {
    "ArcnnConfig": "model", "ArcnnUNet": "model", "load_arcnn": "model",
    "enhance": "sample", "enhance_notes": "sample",
    "ArcnnTask": "train", "train_arcnn": "train",
    "evaluate_arcnn": "evaluate",
    "corrupt_window": "corrupt",
    "ArcnnWindows": "data",
    "window_score": "views", "corruption_score": "views", "edit_summary": "views", "plot_unet": "views",
    "metrics_table": "views",
}
# fmt: on

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

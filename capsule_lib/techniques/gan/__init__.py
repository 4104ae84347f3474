"""The GAN technique: melody-conditioned accompaniment (MuseGAN and U-Net generators, WGAN-GP).

Modules, each importing only those listed before it:

``model``     the generators, the critic and :class:`GanConfig`
``data``      the data set by name or folder, training samples as tensors, roll <-> score, metrics
              of sample batches
``lines``     one track's line through the generator's probabilities: Viterbi, and the forward-
              filtering backward-sampling draw
``voicing``   the parts' ranges and drawing them *jointly* (voice leading)
``decoder``   :func:`decode` (generator output -> notes), :class:`DecoderSettings`, and the tuning
              of the decoder's settings to the real accompaniment's statistics
``sample``    :func:`load_gan` (a :class:`LoadedGan`) and :func:`accompany`
``evaluate``  :func:`evaluate_gan` -- metrics of generated vs real accompaniment, the quality bar
``views``     what notebooks 02 and 05 show: losses on two scales, metrics per epoch vs ground
              truth, the comparison table, the quality bar, stored research numbers in words
``card``      the model card's README, written from the card's numbers
``train``     :class:`GanTask` for the shared harness and :func:`train_gan`

Research on the evaluation itself (piece bootstrap, real music on the bar, cross-validation,
the texture study) is in ``bench/gan_research.py``.

Names load lazily, so ``import capsule_lib.techniques.gan`` does not import torch.
"""

from __future__ import annotations

from ..._lazy import lazy_exports

# fmt: off
_LAZY = {
    "GanConfig": "model", "MuseGANGenerator": "model", "UNetGenerator": "model", "Critic": "model",
    "build_generator": "model",
    "GanSamples": "data", "roll_to_score": "data", "batch_metrics": "data", "sample_metrics": "data",
    "resolve_dataset": "data",
    "decode": "decoder", "DecoderSettings": "decoder",
    "GanTask": "train", "train_gan": "train",
    "accompany": "sample", "load_gan": "sample", "LoadedGan": "sample", "melody_windows": "sample",
    "generate_samples": "sample",
    "evaluate_gan": "evaluate", "quality_bar": "evaluate",
    "plot_gan_loss": "views", "plot_metric_curves": "views", "metrics_comparison_table": "views",
    "model_history": "views", "metric_series": "views", "plot_quality_bar": "views", "plot_update_schedule": "views",
    "plot_sample_tracks": "views", "architecture_table": "views", "plot_untrained_output": "views",
    "plot_loss_parts": "views", "plot_runs": "views", "failure_intervals": "views", "real_music_lines": "views",
    "cross_validation_lines": "views",
}
# fmt: on

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

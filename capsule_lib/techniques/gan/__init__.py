"""The GAN technique: melody-conditioned accompaniment (MuseGAN and U-Net generators, WGAN-GP).

``model``     the generators, the critic and :class:`GanConfig`
``data``      training samples as tensors, roll <-> score, metrics of sample batches
``train``     :class:`GanTask` for the shared harness and :func:`train_gan`
``sample``    :func:`accompany` and :func:`load_gan`
``evaluate``  :func:`evaluate_gan` -- metrics of generated vs real accompaniment, the quality bar;
              :func:`cross_validate` -- the same over the held-out pieces of several folds
``views``     what notebook 02 shows: losses on two scales, metrics per epoch vs ground truth

Names load lazily, so ``import capsule_lib.techniques.gan`` does not import torch.
"""

from __future__ import annotations

from ..._lazy import lazy_exports

_LAZY = {
    "GanConfig": "model", "MuseGANGenerator": "model", "UNetGenerator": "model", "Critic": "model",
    "build_generator": "model",
    "GanSamples": "data", "roll_to_score": "data", "batch_metrics": "data", "sample_metrics": "data",
    "GanTask": "train", "train_gan": "train", "record_cross_validation": "train", "resolve_dataset": "train", "decode": "train",
    "generate_samples": "train",
    "accompany": "sample", "load_gan": "sample", "melody_windows": "sample",
    "evaluate_gan": "evaluate", "quality_bar": "evaluate", "piece_interval": "evaluate",
    "failure_intervals": "evaluate", "real_music_bar": "evaluate", "real_music_lines": "evaluate",
    "cross_validate": "evaluate", "cross_validation_lines": "evaluate",
    "plot_gan_loss": "views", "plot_metric_curves": "views", "metrics_comparison_table": "views",
    "model_history": "views", "metric_series": "views", "plot_quality_bar": "views",
    "plot_update_schedule": "views", "plot_sample_tracks": "views", "architecture_table": "views",
    "plot_untrained_output": "views", "plot_loss_parts": "views", "plot_runs": "views",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

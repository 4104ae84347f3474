"""The GAN in the registry: its ``capsule accompany`` options, its training and evaluation from the
command line, and the lines an evaluation prints.

Plain data and string formatting: the generator, trainer and evaluator are named, not imported
(the report imports the comparison table when it is called). Piece bootstraps and the real-music
check are research evaluation: ``bench/gan_research.py evaluate`` prints them.
"""

from __future__ import annotations

from .._common import evaluate_options, train_options
from ..spec import Technique
from .params import SPEC

__all__ = ["TECHNIQUE", "report"]


def add_options(parser) -> None:
    """``capsule accompany``'s options: the GAN has no parameters but its noise seed."""
    parser.add_argument("--seed", type=int, default=None, help="noise seed (same seed, same accompaniment)")


def train_arguments(args) -> dict:
    """``capsule train gan``'s options for :func:`~capsule_lib.techniques.gan.train.train_gan`
    (epochs, learning rate, update ratio or batch size not given keep the trainer's defaults)."""
    passed = ("algorithm", "dataset", "sample_every", "fold")
    return train_options(
        args, passed, optional=("epochs", "lr", "update_ratio", "batch_size"), max_steps_per_epoch=args.max_steps
    )


def evaluate_arguments(args) -> dict:
    return evaluate_options(args, split=args.split, max_samples=args.max_windows, dataset=args.dataset)


def report(result: dict) -> list[str]:
    """The lines ``capsule evaluate`` prints for an :func:`~capsule_lib.techniques.gan.evaluate_gan` result."""
    # The table lives with the GAN's views (which import torch): loaded once there is a result to show.
    from .views import metrics_comparison_table

    bar = result["quality_bar"]
    return [
        f"{result['model']} on {result['n_samples']} {result['split']} samples ({result['n_pieces']} pieces):",
        metrics_comparison_table(result),
        "quality bar: " + ("passed" if bar["passed"] else "not passed: " + "; ".join(bar["failures"])),
    ]


def result_note(score) -> str:
    """After ``capsule accompany``'s composition id: the accompaniment tracks written."""
    return "; accompaniment: " + ", ".join(t.name for t in score.tracks[1:])


TECHNIQUE = Technique(
    SPEC,
    "accompany",
    "GAN: write accompaniment tracks for a melody",
    model_help="musegan-chorale (default), musegan-quartet, musegan-renaissance or a custom GAN",
    run_ref="capsule_lib.techniques.gan.sample:accompany",
    load_ref="capsule_lib.techniques.gan.sample:load_gan",
    train_ref="capsule_lib.techniques.gan.train:train_gan",
    evaluate_ref="capsule_lib.techniques.gan.evaluate:evaluate_gan",
    report=report,
    add_options=add_options,
    train_arguments=train_arguments,
    evaluate_arguments=evaluate_arguments,
    result_note=result_note,
    melody_only=True,
)

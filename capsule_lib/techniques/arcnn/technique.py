"""The AR-CNN in the registry: its ``capsule enhance`` options, its training and evaluation from the
command line, and the lines an evaluation prints.

Plain data and string formatting: the sampler, trainer and evaluator are named, not imported.
"""

from __future__ import annotations

from .._common import evaluate_options, text_table, train_options
from ..spec import Technique
from .params import SPEC

__all__ = ["TECHNIQUE", "report"]


def add_options(parser) -> None:
    """``capsule enhance``'s options: the console's names, with defaults and ranges from :data:`SPEC`."""
    it, rm, ad, cr = (SPEC[k] for k in ("sampling_iterations", "max_remove_pct", "max_notes_added", "creative_risk"))
    parser.add_argument(
        "--iterations",
        dest="sampling_iterations",  # the library's name, so the options are enhance's keyword arguments as they are
        metavar="ITERATIONS",
        type=int,
        default=it.default,
        help=f"sampling iterations, {it.bounds()} (default {it.default})",
    )
    parser.add_argument(
        "--max-remove-pct",
        type=float,
        default=rm.default,
        help=f"max %% of input notes removed, {rm.bounds()} (default {rm.default:g})",
    )
    parser.add_argument(
        "--max-notes-added",
        "--max-add",
        type=int,
        default=ad.default,
        help=f"max notes added, {ad.bounds()} (default {ad.default})",
    )
    parser.add_argument(
        "--creative-risk",
        type=float,
        default=cr.default,
        help=f"sampling temperature, {cr.bounds()} (default {cr.default:g})",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--harmonize", action="store_true", help="keep the melody, write voices beneath it")


def train_arguments(args) -> dict:
    """``capsule train arcnn``'s options for :func:`~capsule_lib.techniques.arcnn.train.train_arcnn`
    (a learning rate or batch size not given keeps the trainer's default)."""
    return train_options(args, ("eval_windows",), max_steps_per_epoch=args.max_steps)


def evaluate_arguments(args) -> dict:
    return evaluate_options(args, split=args.split, max_windows=args.max_windows)


def report(result: dict) -> list[str]:
    """The lines ``capsule evaluate`` prints for an :func:`~capsule_lib.techniques.arcnn.evaluate_arcnn` result."""
    lines = [
        f"{result['model']} on {result['n_windows']} {result['split']} windows ({result['n_chorales']} chorales):",
        f"  NLL {result['nll']:.4f} vs pitch-frequency baseline {result['baseline_nll']:.4f} ({result['nll_unit']})",
    ]
    if "restoration" in result:
        r = result["restoration"]
        c = r["corrupted"]
        lines.append(
            f"  restoration F1 {r['f1']:.3f} (precision {r['precision']:.3f}, recall {r['recall']:.3f}); "
            f"damaged input F1 {c['f1']:.3f}"
        )
        m = r.get("metrics")
        if m:
            lines.append("  metrics (mean per 8-bar window):")
            lines += text_table(
                [
                    [k, *(("-" if m[s].get(k) is None else f"{m[s][k]:.3f}") for s in ("input", "output", "bach"))]
                    for k in m["bach"]
                ],
                ["METRIC", "DAMAGED INPUT", "ENHANCED", "BACH"],
            )
    return lines


TECHNIQUE = Technique(
    SPEC,
    "enhance",
    "AR-CNN: add and remove notes of a melody, Bach-style",
    run_ref="capsule_lib.techniques.arcnn.sample:enhance",
    load_ref="capsule_lib.techniques.arcnn.model:load_arcnn",
    train_ref="capsule_lib.techniques.arcnn.train:train_arcnn",
    evaluate_ref="capsule_lib.techniques.arcnn.evaluate:evaluate_arcnn",
    report=report,
    add_options=add_options,
    train_arguments=train_arguments,
    evaluate_arguments=evaluate_arguments,
)

"""The Transformer in the registry: its ``capsule extend`` options, its training and evaluation from the
command line, and the lines an evaluation prints.

Plain data and string formatting: the sampler, trainer and evaluator are named, not imported.
"""

from __future__ import annotations

from .._common import evaluate_options, train_options
from ..spec import Technique
from .params import SPEC

__all__ = ["TECHNIQUE", "report"]

#: Options left unset on the command line take the library's defaults (from :data:`SPEC`).
_OPTIONAL = ("threshold", "input_duration", "max_rest", "max_note_length")


def add_options(parser) -> None:
    """``capsule extend``'s options, with defaults and choices from :data:`SPEC`."""
    parser.add_argument("--sampling", default=SPEC["sampling"].default, choices=list(SPEC["sampling"].values))
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="0.1-0.99: TopK fraction of the 310 tokens, Nucleus cumulative probability; ignored for random",
    )
    parser.add_argument(
        "--creative-risk",
        type=float,
        default=SPEC["creative_risk"].default,
        help=f"sampling temperature (default {SPEC['creative_risk'].default:g})",
    )
    parser.add_argument("--input-duration", type=float, default=None, help="seconds from the end used as the prompt")
    parser.add_argument(
        "--extension-duration",
        type=float,
        default=SPEC["extension_duration"].default,
        help=f"seconds to generate (default {SPEC['extension_duration'].default:g})",
    )
    parser.add_argument("--max-rest", type=float, default=None, help="longer silences are compressed to this (s)")
    parser.add_argument("--max-note-length", type=float, default=None, help="longer notes are shortened to this (s)")
    parser.add_argument(
        "--free",
        action="store_true",
        help="let the model wander: no guide keeping the extension in the melody's key and register",
    )
    parser.add_argument("--seed", type=int, default=None)


def run_arguments(args) -> dict:
    options = {k: getattr(args, k) for k in _OPTIONAL if getattr(args, k) is not None}
    return {
        "sampling": args.sampling,
        "creative_risk": args.creative_risk,
        "extension_duration": args.extension_duration,
        "follow_prompt": not args.free,
        **options,
    }


def train_arguments(args) -> dict:
    """``capsule train transformer``'s options for :func:`~capsule_lib.techniques.transformer.train.train_transformer`
    (steps, learning rate or batch size not given keep the trainer's defaults)."""
    return train_options(args, optional=("steps", "lr", "batch_size"), eval_pieces=args.eval_windows)


def evaluate_arguments(args) -> dict:
    return evaluate_options(args, max_pieces=args.max_windows)


def report(result: dict) -> list[str]:
    """The lines ``capsule evaluate`` prints for an
    :func:`~capsule_lib.techniques.transformer.evaluate.evaluate_transformer` result."""
    lines = [
        f"{result['model']}: validation NLL {result['val_nll']:.4f}, test NLL {result['test_nll']:.4f} "
        f"vs bigram baseline {result['baseline_nll']:.4f} ({result['nll_unit']})"
    ]
    if "extensions" in result:
        e = result["extensions"]
        lines.append(
            f"  {e['n']} extensions of held-out prompts: in-scale ratio {e['in_scale_ratio']:.3f} "
            f"(prompts {e['prompt_in_scale_ratio']:.3f}), longest rest {e['longest_rest_s']:.2f} s, "
            f"longest note {e['longest_note_s']:.2f} s, pitch range {e['pitch_range']:.1f}"
        )
    return lines


TECHNIQUE = Technique(
    SPEC,
    "extend",
    "Transformer: extend a melody by up to 30 s (or more)",
    run_ref="capsule_lib.techniques.transformer.sample:extend",
    load_ref="capsule_lib.techniques.transformer.model:load_transformer",
    train_ref="capsule_lib.techniques.transformer.train:train_transformer",
    evaluate_ref="capsule_lib.techniques.transformer.evaluate:evaluate_transformer",
    report=report,
    add_options=add_options,
    run_arguments=run_arguments,
    train_arguments=train_arguments,
    evaluate_arguments=evaluate_arguments,
)

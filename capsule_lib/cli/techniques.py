"""The technique commands: one run command per technique (``enhance``, ``extend``, ``accompany``),
``train`` and ``evaluate``.

Every technique command is read from the registry (:mod:`capsule_lib.techniques.spec`): its
subcommand, options and defaults, the library functions it calls and the lines it prints.
:func:`run_technique` is the one body of the run commands.
"""

from __future__ import annotations

from ..errors import CapsuleError
from ..techniques.spec import Technique, TechniqueSpec, technique, technique_names
from ._shared import (
    add_input_output,
    add_quiet_json,
    check_output,
    is_composition_id,
    load_input,
    positive_float,
    positive_int,
    print_json,
)

__all__ = ["add_commands", "run_technique"]


def run_technique(args) -> None:
    """Run ``args.technique`` on ``IN`` and write ``OUT``: the output is checked first, the result saved
    as a composition (whose parent is ``IN`` when that is a composition id), deleted again if
    ``OUT`` cannot be written after all."""
    t = technique(args.technique)
    out = check_output(args.input, args.output)
    score = load_input(args.input)
    parent = args.input if is_composition_id(args.input) else None
    arguments = t.run_arguments(args) if t.run_arguments is not None else _spec_arguments(t, args)
    result, comp = t.run(
        score, model=args.model, seed=args.seed, parent=parent, title=args.title, return_composition=True, **arguments
    )
    _write_result(out, result, comp)
    print(f"{out} (composition {comp.id}{t.result_note(result)})")


def _write_result(out, result, composition) -> None:
    """Write a technique's result to ``out``; if that fails, delete the composition it saved."""
    from ..midi import write_midi

    try:
        write_midi(result, out)
    except BaseException:
        if composition is not None:
            from ..store import CompositionStore

            try:
                CompositionStore().delete(composition.id)
            except CapsuleError:
                pass
        raise


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _spec_options(spec: TechniqueSpec, parser) -> None:
    """One option per parameter of ``spec``, named after it, with its default and range."""
    types = {"int": int, "float": float, "choice": str}
    for p in spec.parameters:
        if p.kind == "bool":
            parser.add_argument(_option(p.name), action="store_true", default=p.default, help=p.help)
        else:
            parser.add_argument(
                _option(p.name),
                type=types[p.kind],
                default=p.default,
                choices=list(p.values) if p.kind == "choice" else None,
                help=f"{p.help} {p.bounds()} (default {p.default})",
            )
    parser.add_argument("--seed", type=int, default=None)


def _spec_arguments(t: Technique, args) -> dict:
    return {p.name: getattr(args, p.name) for p in t.spec.parameters}


def cmd_train(args) -> None:
    if args.name is None:
        import time

        args.name = f"{args.technique}-{time.strftime('%Y%m%d-%H%M%S')}"
    t = technique(args.technique)
    card = t.train(args.name, **t.train_arguments(args))
    if args.json:
        print_json(card.to_dict())
    else:
        print(f"{card.name}: {card.status} in {card.training_time_s:.0f} s; card in {card.path}")


def cmd_evaluate(args) -> None:
    from ..models import ModelRegistry

    card = ModelRegistry().get(args.name)
    evaluable = [name for name in technique_names() if technique(name).evaluate_ref is not None]
    if card.technique not in evaluable:
        known = f"{', '.join(evaluable[:-1])} and {evaluable[-1]}" if len(evaluable) > 1 else evaluable[0]
        raise CapsuleError(f"{args.name} is a {card.technique} model; 'capsule evaluate' knows {known} models")
    t = technique(card.technique)
    result = t.evaluate(args.name, **t.evaluate_arguments(args))
    if args.json:
        print_json(result)
        return
    for line in t.report(result):
        print(line)


def add_commands(sub) -> None:
    """``train``, ``evaluate`` and each technique's run command on ``sub``."""
    names = technique_names()
    t = sub.add_parser("train", help="train a model of one technique and register it")
    t.add_argument("technique", choices=[n for n in names if technique(n).train_ref is not None])
    t.add_argument(
        "--algorithm", choices=["musegan", "unet"], default="musegan", help="gan: generator (default musegan)"
    )
    t.add_argument(
        "--dataset",
        default="chorale",
        metavar="NAME",
        help="gan: chorale, quartet, renaissance, or a folder of LPD-5 .npz / MIDI files (default chorale)",
    )
    t.add_argument(
        "--update-ratio",
        type=positive_int,
        default=None,
        metavar="N",
        help="gan: critic updates per generator update (default: the trainer's)",
    )
    t.add_argument(
        "--sample-every",
        type=positive_int,
        default=10,
        metavar="N",
        help="gan: write MIDI + piano-roll samples every N epochs (default 10)",
    )
    t.add_argument(
        "--fold",
        type=int,
        default=0,
        metavar="K",
        help="gan: hold out bucket K of the split rule (0, the default, is the fixed split; "
        "1-9 are the other folds of a 10-fold cross-validation)",
    )
    t.add_argument("--name", default=None, help="model name (default: <technique>-<date>-<time>)")
    t.add_argument("--epochs", type=positive_int, default=None, help="arcnn, gan: epochs (default: the trainer's)")
    t.add_argument(
        "--steps", type=positive_int, default=None, help="transformer: optimiser steps (default: the trainer's)"
    )
    t.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        metavar="X",
        help="peak learning rate (default: the trainer's)",
    )
    t.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="windows (arcnn), samples (gan) or crops (transformer) per batch (default: the trainer's)",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=positive_int, help="train on the first N chorales only (quick runs)")
    t.add_argument("--max-steps", type=positive_int, help="cut every epoch to N batches (smoke runs)")
    t.add_argument("--eval-windows", type=positive_int, help="evaluate on at most N test windows")
    t.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation")
    add_quiet_json(t, "no progress bars")
    t.set_defaults(func=cmd_train)

    v = sub.add_parser("evaluate", help="evaluate a model on its held-out test data")
    v.add_argument("name", help="model name")
    v.add_argument("--split", default="test", choices=["test", "validation", "train"])
    v.add_argument("--max-windows", "--max-samples", type=positive_int, help="at most N windows/samples (quick check)")
    v.add_argument("--limit", type=positive_int, help="only the first N chorales/pieces")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument(
        "--dataset", default=None, metavar="FOLDER", help="gan: the data folder of a model trained on LPD-5/MIDI files"
    )
    add_quiet_json(v)
    v.set_defaults(func=cmd_evaluate)

    # Each technique's run command, its defaults and ranges from its one definition (techniques/*/params.py).
    for name in names:
        record = technique(name)
        r = sub.add_parser(record.command, help=record.help)
        add_input_output(r, "OUT.mid")
        r.add_argument("--model", default=record.spec.default_model, help=record.model_help)
        if record.add_options is not None:
            record.add_options(r)
        else:
            _spec_options(record.spec, r)
        r.add_argument("--title")
        r.set_defaults(func=run_technique, technique=name)

"""The ``capsule`` command line: samples, editing, rendering, compositions and models.

Errors print one line on stderr and exit with status 2; there is never a
traceback for bad input (set ``CAPSULE_DEBUG=1`` to see one for a bug).  A
command that fails leaves nothing behind: the output path is checked before the
work starts, and a composition saved by a technique is deleted again if its
output file cannot be written after all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import CapsuleError

__all__ = ["main", "build_parser"]

PROG = "capsule"


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and CapsuleErrors (exit 2)."""

    def error(self, message):  # noqa: D401 - argparse hook
        raise CapsuleError(f"{message} (see '{self.prog} --help')")


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def load_input(arg: str, *, track=None):
    """A score from a MIDI file path, a sample melody name, or a composition id (tried in that order)."""
    from .midi import read_midi

    path = Path(arg)
    if _exists(path) or path.suffix.lower() in (".mid", ".midi", ".rmi"):
        return read_midi(path, track=track if track is not None else "all")
    from .samples import list_samples, load_sample

    names = {s["name"] for s in list_samples()}
    if arg in names:
        return load_sample(arg)
    from .store import CompositionStore

    try:
        return CompositionStore().load(arg)
    except CapsuleError:
        raise CapsuleError(f"{arg!r} is not a MIDI file, a sample melody or a composition id") from None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system names no file
        return False


def _check_output(inp: str, out: str, suffixes: tuple[str, ...] = (".mid", ".midi")) -> Path:
    """The output path, checked before any work: right suffix, not the input, writable."""
    from .atomic import check_writable

    out_path = Path(out)
    if suffixes and out_path.suffix.lower() not in suffixes:
        raise CapsuleError(f"{out_path.name}: the output must end in {' or '.join(suffixes)}")
    if _exists(Path(inp)) and _exists(out_path) and out_path.resolve() == Path(inp).resolve():
        raise CapsuleError(f"refusing to overwrite the input file {inp}; choose another output name")
    return check_writable(out_path)


def _write_result(out: Path, result, composition) -> None:
    """Write a technique's result to ``out``; if that fails, delete the composition it saved."""
    from .midi import write_midi

    try:
        write_midi(result, out)
    except BaseException:
        if composition is not None:
            from .store import CompositionStore

            try:
                CompositionStore().delete(composition.id)
            except CapsuleError:
                pass
        raise


# -- commands ---------------------------------------------------------------------

def cmd_samples(args) -> None:
    from .samples import list_samples

    samples = list_samples()
    if args.json:
        _print_json(samples)
        return
    _table([[s["name"], s["title"], s.get("composer", ""), ", ".join(s.get("recommended_for", []))] for s in samples],
           ["NAME", "TITLE", "COMPOSER", "RECOMMENDED FOR"])


def cmd_edit(args) -> None:
    from . import edit
    from .midi import write_midi

    out = _check_output(args.input, args.output, ())  # write_midi names the suffix it wants
    score = load_input(args.input)
    if args.transpose is not None:
        score = edit.transpose(score, args.transpose)
    if args.quantize:
        score = edit.quantize(score, grid=args.grid, strength=args.strength)
    if args.tempo is not None:
        score = edit.set_tempo(score, args.tempo)
    write_midi(score, out)
    print(out)


def cmd_render(args) -> None:
    from .audio import render_audio

    out = _check_output(args.input, args.output, (".wav", ".mp3"))
    score = load_input(args.input)
    render_audio(score, out, metronome=args.metronome)
    print(out)


def cmd_compositions(args) -> None:
    from .store import CompositionStore

    store = CompositionStore()
    action = args.action
    if action == "list":
        items = store.list()
        if args.json:
            _print_json([c.to_dict() for c in items])
        elif not items:
            print(f"no compositions yet in {store.root}")
        else:
            _table([[c.id, c.title, c.technique, c.model or "", c.parent or "", c.created[:19]] for c in items],
                   ["ID", "TITLE", "TECHNIQUE", "MODEL", "PARENT", "CREATED"])
    elif action == "show":
        c = store.get(args.id)
        if args.json:
            _print_json(c.to_dict())
        else:
            for k, v in c.to_dict().items():
                print(f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v}")
    elif action == "add":
        from .midi import read_midi

        score = read_midi(args.file, track="all")
        title = args.title or Path(args.file).stem
        print(store.add(score, technique="import", title=title).id)
    elif action == "tag":
        if "=" not in args.tag:
            raise CapsuleError(f"tag {args.tag!r} must be written KEY=VALUE")
        key, value = args.tag.split("=", 1)
        store.tag(args.id, key, value)
    elif action == "untag":
        store.untag(args.id, args.key)
    elif action == "rename":
        store.rename(args.id, args.title)
    elif action == "delete":
        store.delete(args.id)
    elif action == "export":
        print(store.export(args.id, args.output))


def cmd_models(args) -> None:
    from .models import ModelRegistry

    reg = ModelRegistry()
    if args.action == "list":
        cards = reg.list()
        if args.json:
            _print_json([c.to_dict() for c in cards])
        elif not cards:
            print("no models yet: train one (capsule train ...) or import one (capsule models import FILE.tar.gz)")
        else:
            _table([[c.name, c.technique, c.algorithm, c.dataset, c.status, "sample" if c.sample else "custom"] for c in cards],
                   ["NAME", "TECHNIQUE", "ALGORITHM", "DATASET", "STATUS", "KIND"])
    elif args.action == "show":
        card = reg.get(args.name)
        if args.json:
            _print_json(card.to_dict())
        else:
            for k, v in card.to_dict().items():
                print(f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v}")
    elif args.action == "export":
        print(reg.export(args.name, args.output))
    elif args.action == "import":
        print(reg.import_archive(args.file, name=args.name).name)
    elif args.action == "delete":
        reg.delete(args.name)
    elif args.action == "tag":
        if "=" not in args.tag:
            raise CapsuleError(f"tag {args.tag!r} must be written KEY=VALUE")
        key, value = args.tag.split("=", 1)
        reg.tag(args.name, key, value)
    elif args.action == "untag":
        reg.untag(args.name, args.key)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def cmd_data(args) -> None:
    from .datasets.bach import build_bach_dataset

    if args.dataset in ("chorale", "quartet", "renaissance", "lpd5", "midi"):
        _cmd_data_multitrack(args)
        return
    if args.path:
        raise CapsuleError("a folder is only read by 'capsule data lpd5 FOLDER' or 'capsule data midi FOLDER'")
    if args.dataset == "classical":
        from .datasets.classical import build_classical_dataset

        ds = build_classical_dataset(force=args.rebuild, progress=not args.quiet, limit=args.limit)
        summary = ds.summary()
        if args.json:
            _print_json(summary)
            return
        print(f"classical pieces: {summary.get('pieces', '?')} kept, {summary.get('skipped', 0)} skipped")
        _table([[name, summary[name]["pieces"], summary[name]["tokens"]] for name in ("train", "validation", "test")],
               ["SPLIT", "PIECES", "TOKENS"])
        print(f"split: {summary.get('split_rule', '')}")
        return
    ds = build_bach_dataset(force=args.rebuild, progress=not args.quiet, limit=args.limit)
    summary = ds.summary()
    summary["cache"] = str(getattr(ds, "cache_path", "") or "")
    if args.json:
        _print_json(summary)
        return
    print(f"Bach chorales: {summary['chorales']} kept, {summary['skipped']} skipped (unparsable), "
          f"{summary['duplicates']} duplicates dropped, {summary['repeats_not_expanded']} with repeats not expanded")
    _table([[name, summary[name]["chorales"], summary[name]["windows"], summary[name]["notes"]]
            for name in ("train", "validation", "test")], ["SPLIT", "CHORALES", "WINDOWS", "NOTES"])
    print(f"split: {summary['split_rule']}; pitches MIDI {summary['pitch_range'][0]}-{summary['pitch_range'][1]}; "
          f"windows of {summary['window_steps']} steps sliding by {summary['hop_steps']}")
    if summary["cache"]:
        print(f"cache: {summary['cache']}")


def _cmd_data_multitrack(args) -> None:
    if args.dataset in ("lpd5", "midi"):
        if not args.path:
            raise CapsuleError(f"give the folder: capsule data {args.dataset} FOLDER (nothing is downloaded)")
        from .datasets.external import load_lpd5, load_midi_folder

        load = load_lpd5 if args.dataset == "lpd5" else load_midi_folder
        ds = load(args.path, limit=args.limit, progress=not args.quiet, force=args.rebuild)
    else:
        if args.path:
            raise CapsuleError(f"{args.dataset} comes from music21's corpus; it takes no folder")
        from .datasets.multitrack import build_genre_dataset

        ds = build_genre_dataset(args.dataset, force=args.rebuild, progress=not args.quiet, limit=args.limit)
    summary = ds.summary()
    summary["cache"] = str(ds.cache_path or "")
    for name in ("train", "validation", "test"):
        summary[name]["samples"] = int(len(ds.samples(name)))
    if args.json:
        _print_json(summary)
        return
    print(f"{summary['source']}: {summary['pieces']} pieces kept, {summary['skipped']} skipped, "
          f"{summary['duplicates']} duplicates dropped; tracks {', '.join(summary['tracks'])}")
    _table([[name, summary[name]["pieces"], summary[name]["samples"], summary[name]["notes"]]
            for name in ("train", "validation", "test")], ["SPLIT", "PIECES", "SAMPLES", "NOTES"])
    print(f"split: {summary['split_rule']}; samples of {summary['sample']}")
    if summary["cache"]:
        print(f"cache: {summary['cache']}")


def cmd_train(args) -> None:
    args.lr_given, args.batch_size_given = args.lr is not None, args.batch_size is not None
    if args.technique == "arcnn":
        args.lr = args.lr if args.lr is not None else 2e-3
        args.batch_size = args.batch_size if args.batch_size is not None else 32
    if args.name is None:
        import time

        args.name = f"{args.technique}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.technique == "gan":
        from .techniques.gan.train import DEFAULT_LR, DEFAULT_UPDATE_RATIO, train_gan

        card = train_gan(args.name, algorithm=args.algorithm, dataset=args.dataset, epochs=args.epochs,
                         lr=args.lr if args.lr_given else DEFAULT_LR,
                         update_ratio=args.update_ratio if args.update_ratio is not None else DEFAULT_UPDATE_RATIO,
                         batch_size=args.batch_size if args.batch_size_given else 32, seed=args.seed, limit=args.limit,
                         max_steps_per_epoch=args.max_steps, progress=not args.quiet, evaluate=not args.no_eval,
                         sample_every=args.sample_every, fold=args.fold)
    elif args.technique == "transformer":
        from .techniques.transformer.train import train_transformer

        steps = args.steps if args.steps is not None else 1500
        card = train_transformer(args.name, steps=steps, lr=args.lr if args.lr_given else 1e-3,
                                 batch_size=args.batch_size if args.batch_size_given else 8, seed=args.seed,
                                 limit=args.limit, progress=not args.quiet, evaluate=not args.no_eval,
                                 eval_pieces=args.eval_windows)
    elif args.technique == "arcnn":
        from .techniques.arcnn import train_arcnn

        card = train_arcnn(args.name, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                           limit=args.limit, max_steps_per_epoch=args.max_steps, progress=not args.quiet,
                           evaluate=not args.no_eval, eval_windows=args.eval_windows)
    else:  # argparse restricts the choices; later techniques add their trainers here
        raise CapsuleError(f"no trainer for technique {args.technique!r}")
    if args.json:
        _print_json(card.to_dict())
    else:
        print(f"{card.name}: {card.status} in {card.training_time_s:.0f} s; card in {card.path}")


def cmd_evaluate(args) -> None:
    from .models import ModelRegistry

    card = ModelRegistry().get(args.name)
    if card.technique == "transformer":
        from .techniques.transformer.evaluate import evaluate_transformer

        result = evaluate_transformer(args.name, limit=args.limit, max_pieces=args.max_windows, seed=args.seed,
                                      progress=not args.quiet)
        if args.json:
            _print_json(result)
        else:
            print(f"{result['model']}: validation NLL {result['val_nll']:.4f}, test NLL {result['test_nll']:.4f} "
                  f"vs bigram baseline {result['baseline_nll']:.4f} ({result['nll_unit']})")
            if "extensions" in result:
                e = result["extensions"]
                print(f"  {e['n']} extensions of held-out prompts: in-scale ratio {e['in_scale_ratio']:.3f} "
                      f"(prompts {e['prompt_in_scale_ratio']:.3f}), longest rest {e['longest_rest_s']:.2f} s, "
                      f"longest note {e['longest_note_s']:.2f} s, pitch range {e['pitch_range']:.1f}")
        return
    if card.technique == "gan":
        from .techniques.gan.evaluate import evaluate_gan

        result = evaluate_gan(args.name, args.split, seed=args.seed, max_samples=args.max_windows,
                              dataset=args.dataset, limit=args.limit, progress=not args.quiet)
        if args.json:
            _print_json(result)
            return
        from .techniques.gan.views import failure_intervals, metrics_comparison_table, real_music_lines

        print(f"{result['model']} on {result['n_samples']} {result['split']} samples ({result['n_pieces']} pieces):")
        print(metrics_comparison_table(result))
        bar = result["quality_bar"]
        print("quality bar: " + ("passed" if bar["passed"] else "not passed: " + "; ".join(bar["failures"])))
        rows = failure_intervals(result)
        if rows:
            level = result["ground_truth_interval"]["level"]
            print(f"ground truth with other held-out pieces ({level:.0%} interval, pieces resampled):")
            for row in rows:
                print(f"  {row}")
        rows = real_music_lines(result)
        if rows:
            print(f"the same bar for real music against these {result['n_pieces']} pieces:")
            for row in rows:
                print(f"  {row}")
        return
    if card.technique != "arcnn":
        raise CapsuleError(f"{args.name} is a {card.technique} model; 'capsule evaluate' knows arcnn, gan and transformer models")
    from .techniques.arcnn import evaluate_arcnn

    result = evaluate_arcnn(args.name, args.split, max_windows=args.max_windows, limit=args.limit,
                            seed=args.seed, progress=not args.quiet)
    if args.json:
        _print_json(result)
        return
    print(f"{result['model']} on {result['n_windows']} {result['split']} windows ({result['n_chorales']} chorales):")
    print(f"  NLL {result['nll']:.4f} vs pitch-frequency baseline {result['baseline_nll']:.4f} ({result['nll_unit']})")
    if "restoration" in result:
        r = result["restoration"]
        c = r["corrupted"]
        print(f"  restoration F1 {r['f1']:.3f} (precision {r['precision']:.3f}, recall {r['recall']:.3f}); "
              f"damaged input F1 {c['f1']:.3f}")
        m = r.get("metrics")
        if m:
            print("  metrics (mean per 8-bar window):")
            _table([[k, *(("-" if m[s].get(k) is None else f"{m[s][k]:.3f}") for s in ("input", "output", "bach"))]
                    for k in m["bach"]], ["METRIC", "DAMAGED INPUT", "ENHANCED", "BACH"])


def cmd_enhance(args) -> None:
    from .techniques.arcnn import enhance

    out = _check_output(args.input, args.output)
    score = load_input(args.input)
    parent = args.input if _is_composition_id(args.input) else None
    result, comp = enhance(score, model=args.model, sampling_iterations=args.iterations,
                           max_remove_pct=args.max_remove_pct, max_notes_added=args.max_notes_added,
                           creative_risk=args.creative_risk, seed=args.seed, harmonize=args.harmonize,
                           parent=parent, title=args.title, return_composition=True)
    _write_result(out, result, comp)
    print(f"{out} (composition {comp.id})")


def cmd_extend(args) -> None:
    from .techniques.transformer.sample import extend

    out = _check_output(args.input, args.output)
    score = load_input(args.input)
    parent = args.input if _is_composition_id(args.input) else None
    options = {k: getattr(args, k) for k in ("threshold", "input_duration", "max_rest", "max_note_length")
               if getattr(args, k) is not None}
    result, comp = extend(score, model=args.model, sampling=args.sampling, creative_risk=args.creative_risk,
                          extension_duration=args.extension_duration, seed=args.seed, parent=parent,
                          title=args.title, return_composition=True, follow_prompt=not args.free,
                          **options)
    _write_result(out, result, comp)
    print(f"{out} (composition {comp.id})")


def cmd_accompany(args) -> None:
    from .techniques.gan.sample import accompany

    out = _check_output(args.input, args.output)
    score = load_input(args.input)
    parent = args.input if _is_composition_id(args.input) else None
    result, comp = accompany(score, model=args.model, seed=args.seed, parent=parent, title=args.title,
                             return_composition=True)
    _write_result(out, result, comp)
    names = ", ".join(t.name for t in result.tracks[1:])
    print(f"{out} (composition {comp.id}; accompaniment: {names})")


def cmd_instrument(args) -> None:
    from .edit import set_instrument
    from .midi import write_midi

    out = _check_output(args.input, args.output)
    score = load_input(args.input)
    track = int(args.track) if args.track.lstrip("-").isdigit() else args.track
    if isinstance(track, int) and not 0 <= track < len(score.tracks):
        raise CapsuleError(f"track {track} does not exist (the score has tracks 0-{len(score.tracks) - 1})")
    result = set_instrument(score, track, args.program)
    write_midi(result, out)
    t = result.tracks[result.track_index(track)]
    print(f"{out}: track {t.name or track} now plays General MIDI program {t.program}")


def _is_composition_id(arg: str) -> bool:
    if _exists(Path(arg)):
        return False
    from .store import CompositionStore

    try:
        CompositionStore().get(arg)
        return True
    except CapsuleError:
        return False


# -- parser -----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Composer Capsules: generative music studio on your own machine.")
    p.add_argument("--version", action="version", version=f"{PROG} 0.1.0")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("samples", help="list the sample melodies")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_samples)

    e = sub.add_parser("edit", help="change tempo, pitch or timing of a melody")
    e.add_argument("input", metavar="IN", help="MIDI file, sample name or composition id")
    e.add_argument("-o", "--output", required=True, metavar="OUT", help="output .mid file")
    e.add_argument("--tempo", type=float, metavar="BPM", help="new tempo, 40-160 bpm")
    e.add_argument("--transpose", type=int, metavar="N", help="semitones, -12..12")
    e.add_argument("--quantize", action="store_true", help="rhythm assist: snap notes to the grid")
    e.add_argument("--grid", type=int, default=None, metavar="STEPS", help="quantize grid in steps (default: a 16th note)")
    e.add_argument("--strength", type=float, default=1.0, help="quantize strength 0..1 (default 1)")
    e.set_defaults(func=cmd_edit)

    r = sub.add_parser("render", help="render to audio (.wav or .mp3)")
    r.add_argument("input", metavar="IN", help="MIDI file, sample name or composition id")
    r.add_argument("-o", "--output", required=True, metavar="OUT")
    r.add_argument("--metronome", action="store_true", help="mix in a metronome click")
    r.set_defaults(func=cmd_render)

    c = sub.add_parser("compositions", help="list, show, add, tag, rename, delete and export compositions")
    csub = c.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    csub.required = True
    x = csub.add_parser("list"); x.add_argument("--json", action="store_true")
    x = csub.add_parser("show"); x.add_argument("id"); x.add_argument("--json", action="store_true")
    x = csub.add_parser("add"); x.add_argument("file", metavar="FILE.mid"); x.add_argument("--title")
    x = csub.add_parser("tag"); x.add_argument("id"); x.add_argument("tag", metavar="KEY=VALUE")
    x = csub.add_parser("untag"); x.add_argument("id"); x.add_argument("key", metavar="KEY")
    x = csub.add_parser("rename"); x.add_argument("id"); x.add_argument("title", metavar="TITLE")
    x = csub.add_parser("delete"); x.add_argument("id")
    x = csub.add_parser("export"); x.add_argument("id"); x.add_argument("-o", "--output", required=True, metavar="FILE")
    c.set_defaults(func=cmd_compositions)

    m = sub.add_parser("models", help="list, show, export and import models")
    msub = m.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    msub.required = True
    x = msub.add_parser("list"); x.add_argument("--json", action="store_true")
    x = msub.add_parser("show"); x.add_argument("name"); x.add_argument("--json", action="store_true")
    x = msub.add_parser("export"); x.add_argument("name"); x.add_argument("-o", "--output", required=True, metavar="FILE.tar.gz")
    x = msub.add_parser("import"); x.add_argument("file", metavar="FILE.tar.gz"); x.add_argument("--name", help="import under another name")
    x = msub.add_parser("delete"); x.add_argument("name")
    x = msub.add_parser("tag"); x.add_argument("name"); x.add_argument("tag", metavar="KEY=VALUE")
    x = msub.add_parser("untag"); x.add_argument("name"); x.add_argument("key", metavar="KEY")
    m.set_defaults(func=cmd_models)

    d = sub.add_parser("data", help="build (or load the cache of) a training data set")
    d.add_argument("dataset", choices=["bach", "classical", "chorale", "quartet", "renaissance", "lpd5", "midi"],
                   help="bach: the Bach chorales in music21's corpus; classical: its classical pieces as performances")
    d.add_argument("path", nargs="?", default=None, metavar="FOLDER",
                   help="lpd5/midi: the folder of LPD-5 .npz or MIDI files you have (nothing is downloaded)")
    d.add_argument("--limit", type=_positive_int, help="only the first N chorales (quick runs)")
    d.add_argument("--rebuild", action="store_true", help="ignore the cache and parse again")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_data)

    t = sub.add_parser("train", help="train a model of one technique and register it")
    t.add_argument("technique", choices=["arcnn", "gan", "transformer"])
    t.add_argument("--algorithm", choices=["musegan", "unet"], default="musegan", help="gan: generator (default musegan)")
    t.add_argument("--dataset", default="chorale", metavar="NAME",
                   help="gan: chorale, quartet, renaissance, or a folder of LPD-5 .npz / MIDI files (default chorale)")
    t.add_argument("--update-ratio", type=_positive_int, default=None, metavar="N",
                   help="gan: critic updates per generator update (default 4)")
    t.add_argument("--sample-every", type=_positive_int, default=10, metavar="N",
                   help="gan: write MIDI + piano-roll samples every N epochs (default 10)")
    t.add_argument("--fold", type=int, default=0, metavar="K",
                   help="gan: hold out bucket K of the split rule (0, the default, is the fixed split; "
                        "1-9 are the other folds of a 10-fold cross-validation)")
    t.add_argument("--name", default=None, help="model name (default: <technique>-<date>-<time>)")
    t.add_argument("--epochs", type=_positive_int, default=30, help="arcnn, gan: epochs (default 30)")
    t.add_argument("--steps", type=_positive_int, default=None, help="transformer: optimiser steps (default 1500)")
    t.add_argument("--lr", type=_positive_float, default=None, metavar="X",
                   help="peak learning rate (arcnn default 0.002, transformer 0.001)")
    t.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                   help="arcnn default 32 windows, transformer 8 crops")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=_positive_int, help="train on the first N chorales only (quick runs)")
    t.add_argument("--max-steps", type=_positive_int, help="cut every epoch to N batches (smoke runs)")
    t.add_argument("--eval-windows", type=_positive_int, help="evaluate on at most N test windows")
    t.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_train)

    v = sub.add_parser("evaluate", help="evaluate a model on its held-out test data")
    v.add_argument("name", help="model name")
    v.add_argument("--split", default="test", choices=["test", "validation", "train"])
    v.add_argument("--max-windows", "--max-samples", type=_positive_int, help="at most N windows/samples (quick check)")
    v.add_argument("--limit", type=_positive_int, help="only the first N chorales/pieces")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--dataset", default=None, metavar="FOLDER", help="gan: the data folder of a model trained on LPD-5/MIDI files")
    v.add_argument("--quiet", action="store_true")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_evaluate)

    # Defaults and ranges: the one definition of each technique's parameters (techniques/*/params.py).
    from .techniques.spec import technique_spec

    ar, tf = technique_spec("arcnn"), technique_spec("transformer")
    n = sub.add_parser("enhance", help="AR-CNN: add and remove notes of a melody, Bach-style")
    n.add_argument("input", metavar="IN", help="MIDI file, sample name or composition id")
    n.add_argument("-o", "--output", required=True, metavar="OUT.mid")
    n.add_argument("--model", default=ar.default_model)
    it, rm, ad, cr = (ar[k] for k in ("sampling_iterations", "max_remove_pct", "max_notes_added", "creative_risk"))
    n.add_argument("--iterations", type=int, default=it.default, help=f"sampling iterations, {it.bounds()} (default {it.default})")
    n.add_argument("--max-remove-pct", type=float, default=rm.default,
                   help=f"max %% of input notes removed, {rm.bounds()} (default {rm.default:g})")
    n.add_argument("--max-notes-added", "--max-add", type=int, default=ad.default,
                   help=f"max notes added, {ad.bounds()} (default {ad.default})")
    n.add_argument("--creative-risk", type=float, default=cr.default,
                   help=f"sampling temperature, {cr.bounds()} (default {cr.default:g})")
    n.add_argument("--seed", type=int, default=None)
    n.add_argument("--harmonize", action="store_true", help="keep the melody, write voices beneath it")
    n.add_argument("--title")
    n.set_defaults(func=cmd_enhance)

    x = sub.add_parser("extend", help="Transformer: extend a melody by up to 30 s (or more)")
    x.add_argument("input", metavar="IN", help="MIDI file, sample name or composition id")
    x.add_argument("-o", "--output", required=True, metavar="OUT.mid")
    x.add_argument("--model", default=tf.default_model)
    x.add_argument("--sampling", default=tf["sampling"].default, choices=list(tf["sampling"].values))
    x.add_argument("--threshold", type=float, default=None, help="0.1-0.99: TopK fraction of the 310 tokens, "
                   "Nucleus cumulative probability; ignored for random")
    x.add_argument("--creative-risk", type=float, default=tf["creative_risk"].default,
                   help=f"sampling temperature (default {tf['creative_risk'].default:g})")
    x.add_argument("--input-duration", type=float, default=None, help="seconds from the end used as the prompt")
    x.add_argument("--extension-duration", type=float, default=tf["extension_duration"].default,
                   help=f"seconds to generate (default {tf['extension_duration'].default:g})")
    x.add_argument("--max-rest", type=float, default=None, help="longer silences are compressed to this (s)")
    x.add_argument("--max-note-length", type=float, default=None, help="longer notes are shortened to this (s)")
    x.add_argument("--free", action="store_true",
                   help="let the model wander: no guide keeping the extension in the melody's key and register")
    x.add_argument("--seed", type=int, default=None)
    x.add_argument("--title")
    x.set_defaults(func=cmd_extend)

    a = sub.add_parser("accompany", help="GAN: write accompaniment tracks for a melody")
    a.add_argument("input", metavar="IN", help="MIDI file, sample name or composition id")
    a.add_argument("-o", "--output", required=True, metavar="OUT.mid")
    a.add_argument("--model", default="musegan-chorale",
                   help="musegan-chorale (default), musegan-quartet, musegan-renaissance or a custom GAN")
    a.add_argument("--seed", type=int, default=None, help="noise seed (same seed, same accompaniment)")
    a.add_argument("--title")
    a.set_defaults(func=cmd_accompany)

    i = sub.add_parser("instrument", help="change the General MIDI instrument of a track (not drums)")
    i.add_argument("input", metavar="IN", help="MIDI file, sample name or composition id")
    i.add_argument("track", metavar="TRACK", help="track number (0 = first) or name")
    i.add_argument("program", metavar="PROGRAM", type=int, help="General MIDI program 0-127")
    i.add_argument("-o", "--output", required=True, metavar="OUT.mid")
    i.set_defaults(func=cmd_instrument)

    x = sub.add_parser("doctor", help="what works here (Python, PyTorch, audio, widgets, MIDI, data), each with its fix")
    x.add_argument("--json", action="store_true")
    x.set_defaults(func=lambda args: __import__(f"{__package__}.doctor", fromlist=["command"]).command(args))
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
        return 0
    except CapsuleError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the machine's, not the input's: a full disk, a vanished folder
        if os.environ.get("CAPSULE_DEBUG"):
            raise
        from .atomic import os_error

        print(f"{PROG}: error: {os_error(exc, 'use', exc.filename or 'a file')}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("CAPSULE_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (set CAPSULE_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The library's commands: samples, edit, render, instrument, compositions, models, data and doctor."""

from __future__ import annotations

from pathlib import Path

from ..errors import CapsuleError
from ._shared import (
    Parser,
    add_input_output,
    add_quiet_json,
    check_output,
    load_input,
    positive_int,
    print_fields,
    print_json,
    print_table,
    split_tag,
)

__all__ = ["add_commands"]


def cmd_samples(args) -> None:
    from ..samples import list_samples

    samples = list_samples()
    if args.json:
        print_json(samples)
        return
    print_table(
        [[s["name"], s["title"], s.get("composer", ""), ", ".join(s.get("recommended_for", []))] for s in samples],
        ["NAME", "TITLE", "COMPOSER", "RECOMMENDED FOR"],
    )


def cmd_edit(args) -> None:
    from .. import edit
    from ..midi import write_midi

    out = check_output(args.input, args.output, ())  # write_midi names the suffix it wants
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
    from ..audio import render_audio

    out = check_output(args.input, args.output, (".wav", ".mp3"))
    score = load_input(args.input)
    render_audio(score, out, metronome=args.metronome)
    print(out)


def cmd_instrument(args) -> None:
    from ..edit import set_instrument
    from ..midi import write_midi

    out = check_output(args.input, args.output)
    score = load_input(args.input)
    track = int(args.track) if args.track.lstrip("-").isdigit() else args.track
    if isinstance(track, int) and not 0 <= track < len(score.tracks):
        raise CapsuleError(f"track {track} does not exist (the score has tracks 0-{len(score.tracks) - 1})")
    result = set_instrument(score, track, args.program)
    write_midi(result, out)
    t = result.tracks[result.track_index(track)]
    print(f"{out}: track {t.name or track} now plays General MIDI program {t.program}")


def cmd_compositions(args) -> None:
    from ..store import CompositionStore

    store = CompositionStore()
    action = args.action
    if action == "list":
        items = store.list()
        if args.json:
            print_json([c.to_dict() for c in items])
        elif not items:
            print(f"no compositions yet in {store.root}")
        else:
            print_table(
                [[c.id, c.title, c.technique, c.model or "", c.parent or "", c.created[:19]] for c in items],
                ["ID", "TITLE", "TECHNIQUE", "MODEL", "PARENT", "CREATED"],
            )
    elif action == "show":
        c = store.get(args.id)
        (print_json if args.json else print_fields)(c.to_dict())
    elif action == "add":
        from ..midi import read_midi

        score = read_midi(args.file, track="all")
        title = args.title or Path(args.file).stem
        print(store.add(score, technique="import", title=title).id)
    elif action == "tag":
        store.tag(args.id, *split_tag(args.tag))
    elif action == "untag":
        store.untag(args.id, args.key)
    elif action == "rename":
        store.rename(args.id, args.title)
    elif action == "delete":
        store.delete(args.id)
    elif action == "export":
        print(store.export(args.id, args.output))


def cmd_models(args) -> None:
    from ..models import ModelRegistry

    reg = ModelRegistry()
    if args.action == "list":
        cards = reg.list()
        if args.json:
            print_json([c.to_dict() for c in cards])
        elif not cards:
            print("no models yet: train one (capsule train ...) or import one (capsule models import FILE.tar.gz)")
        else:
            print_table(
                [
                    [c.name, c.technique, c.algorithm, c.dataset, c.status, "sample" if c.sample else "custom"]
                    for c in cards
                ],
                ["NAME", "TECHNIQUE", "ALGORITHM", "DATASET", "STATUS", "KIND"],
            )
    elif args.action == "show":
        card = reg.get(args.name)
        (print_json if args.json else print_fields)(card.to_dict())
    elif args.action == "export":
        print(reg.export(args.name, args.output))
    elif args.action == "import":
        print(reg.import_archive(args.file, name=args.name).name)
    elif args.action == "delete":
        reg.delete(args.name)
    elif args.action == "tag":
        reg.tag(args.name, *split_tag(args.tag))
    elif args.action == "untag":
        reg.untag(args.name, args.key)


def cmd_data(args) -> None:
    from ..datasets.bach import build_bach_dataset

    if args.dataset in ("chorale", "quartet", "renaissance", "lpd5", "midi"):
        _cmd_data_multitrack(args)
        return
    if args.path:
        raise CapsuleError("a folder is only read by 'capsule data lpd5 FOLDER' or 'capsule data midi FOLDER'")
    if args.dataset == "classical":
        from ..datasets.classical import build_classical_dataset

        s = build_classical_dataset(force=args.rebuild, progress=not args.quiet, limit=args.limit).summary()
        _show_summary(
            args,
            s,
            f"classical pieces: {s.get('pieces', '?')} kept, {s.get('skipped', 0)} skipped",
            ["PIECES", "TOKENS"],
            f"split: {s.get('split_rule', '')}",
        )
        return
    ds = build_bach_dataset(force=args.rebuild, progress=not args.quiet, limit=args.limit)
    s = ds.summary()
    s["cache"] = str(getattr(ds, "cache_path", "") or "")
    _show_summary(
        args,
        s,
        f"Bach chorales: {s['chorales']} kept, {s['skipped']} skipped (unparsable), "
        f"{s['duplicates']} duplicates dropped, {s['repeats_not_expanded']} with repeats not expanded",
        ["CHORALES", "WINDOWS", "NOTES"],
        f"split: {s['split_rule']}; pitches MIDI {s['pitch_range'][0]}-{s['pitch_range'][1]}; "
        f"windows of {s['window_steps']} steps sliding by {s['hop_steps']}",
    )


def _cmd_data_multitrack(args) -> None:
    if args.dataset in ("lpd5", "midi"):
        if not args.path:
            raise CapsuleError(f"give the folder: capsule data {args.dataset} FOLDER (nothing is downloaded)")
        from ..datasets.external import load_lpd5, load_midi_folder

        load = load_lpd5 if args.dataset == "lpd5" else load_midi_folder
        ds = load(args.path, limit=args.limit, progress=not args.quiet, force=args.rebuild)
    else:
        if args.path:
            raise CapsuleError(f"{args.dataset} comes from music21's corpus; it takes no folder")
        from ..datasets.multitrack import build_genre_dataset

        ds = build_genre_dataset(args.dataset, force=args.rebuild, progress=not args.quiet, limit=args.limit)
    s = ds.summary()
    s["cache"] = str(ds.cache_path or "")
    for name in _SPLITS:
        s[name]["samples"] = int(len(ds.samples(name)))
    _show_summary(
        args,
        s,
        f"{s['source']}: {s['pieces']} pieces kept, {s['skipped']} skipped, "
        f"{s['duplicates']} duplicates dropped; tracks {', '.join(s['tracks'])}",
        ["PIECES", "SAMPLES", "NOTES"],
        f"split: {s['split_rule']}; samples of {s['sample']}",
    )


_SPLITS = ("train", "validation", "test")


def _show_summary(args, summary: dict, headline: str, columns: list[str], split_line: str) -> None:
    """A data set's summary: all of it as JSON (``--json``), or the headline, one row per split with
    ``columns`` (the summary's keys in lower case), the split rule and the cache folder if any."""
    if args.json:
        print_json(summary)
        return
    print(headline)
    print_table([[name, *(summary[name][c.lower()] for c in columns)] for name in _SPLITS], ["SPLIT", *columns])
    print(split_line)
    if summary.get("cache"):
        print(f"cache: {summary['cache']}")


def cmd_doctor(args) -> None:
    from ..doctor import command

    command(args)


def add_commands(sub) -> None:
    """The library's subcommands on ``sub`` (the top-level subparsers)."""
    s = sub.add_parser("samples", help="list the sample melodies")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_samples)

    e = sub.add_parser("edit", help="change tempo, pitch or timing of a melody")
    add_input_output(e, output_help="output .mid file")
    e.add_argument("--tempo", type=float, metavar="BPM", help="new tempo, 40-160 bpm")
    e.add_argument("--transpose", type=int, metavar="N", help="semitones, -12..12")
    e.add_argument("--quantize", action="store_true", help="rhythm assist: snap notes to the grid")
    e.add_argument(
        "--grid", type=int, default=None, metavar="STEPS", help="quantize grid in steps (default: a 16th note)"
    )
    e.add_argument("--strength", type=float, default=1.0, help="quantize strength 0..1 (default 1)")
    e.set_defaults(func=cmd_edit)

    r = sub.add_parser("render", help="render to audio (.wav or .mp3)")
    add_input_output(r)
    r.add_argument("--metronome", action="store_true", help="mix in a metronome click")
    r.set_defaults(func=cmd_render)

    i = sub.add_parser("instrument", help="change the General MIDI instrument of a track (not drums)")
    add_input_output(i, "OUT.mid")
    i.add_argument("track", metavar="TRACK", help="track number (0 = first) or name")
    i.add_argument("program", metavar="PROGRAM", type=int, help="General MIDI program 0-127")
    i.set_defaults(func=cmd_instrument)

    c = sub.add_parser("compositions", help="list, show, add, tag, rename, delete and export compositions")
    csub = _add_record_actions(c, "id", cmd_compositions)
    x = csub.add_parser("add")
    x.add_argument("file", metavar="FILE.mid")
    x.add_argument("--title")
    x = csub.add_parser("rename")
    x.add_argument("id")
    x.add_argument("title", metavar="TITLE")
    x = csub.add_parser("export")
    x.add_argument("id")
    x.add_argument("-o", "--output", required=True, metavar="FILE")

    m = sub.add_parser("models", help="list, show, export and import models")
    msub = _add_record_actions(m, "name", cmd_models)
    x = msub.add_parser("export")
    x.add_argument("name")
    x.add_argument("-o", "--output", required=True, metavar="FILE.tar.gz")
    x = msub.add_parser("import")
    x.add_argument("file", metavar="FILE.tar.gz")
    x.add_argument("--name", help="import under another name")

    d = sub.add_parser("data", help="build (or load the cache of) a training data set")
    d.add_argument(
        "dataset",
        choices=["bach", "classical", "chorale", "quartet", "renaissance", "lpd5", "midi"],
        help="bach: the Bach chorales in music21's corpus; classical: its classical pieces as performances",
    )
    d.add_argument(
        "path",
        nargs="?",
        default=None,
        metavar="FOLDER",
        help="lpd5/midi: the folder of LPD-5 .npz or MIDI files you have (nothing is downloaded)",
    )
    d.add_argument("--limit", type=positive_int, help="only the first N chorales (quick runs)")
    d.add_argument("--rebuild", action="store_true", help="ignore the cache and parse again")
    add_quiet_json(d, "no progress bar")
    d.set_defaults(func=cmd_data)

    x = sub.add_parser(
        "doctor", help="what works here (Python, PyTorch, audio, widgets, MIDI, data), each with its fix"
    )
    x.add_argument("--json", action="store_true")
    x.set_defaults(func=cmd_doctor)


def _add_record_actions(parser, key: str, func):
    """The actions compositions and models share (list, show, delete, tag, untag), each record named
    by ``key``; returns the subparsers for the others."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True
    x = actions.add_parser("list")
    x.add_argument("--json", action="store_true")
    x = actions.add_parser("show")
    x.add_argument(key)
    x.add_argument("--json", action="store_true")
    x = actions.add_parser("delete")
    x.add_argument(key)
    x = actions.add_parser("tag")
    x.add_argument(key)
    x.add_argument("tag", metavar="KEY=VALUE")
    x = actions.add_parser("untag")
    x.add_argument(key)
    x.add_argument("key", metavar="KEY")
    parser.set_defaults(func=func)
    return actions

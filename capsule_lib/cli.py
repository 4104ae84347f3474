"""The ``capsule`` command line: samples, editing, rendering, compositions and models.

Errors print one line on stderr and exit with status 2; there is never a
traceback for bad input (set ``CAPSULE_DEBUG=1`` to see one for a bug).
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
    if path.exists() or path.suffix.lower() in (".mid", ".midi"):
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


def _check_output(inp: str, out: str) -> Path:
    out_path = Path(out)
    if Path(inp).exists() and out_path.exists() and out_path.resolve() == Path(inp).resolve():
        raise CapsuleError(f"refusing to overwrite the input file {inp}; choose another output name")
    return out_path


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

    out = _check_output(args.input, args.output)
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

    out = _check_output(args.input, args.output)
    if out.suffix.lower() not in (".wav", ".mp3"):
        raise CapsuleError(f"{out.name}: the output must end in .wav or .mp3")
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

    c = sub.add_parser("compositions", help="list, show, add, tag, delete and export compositions")
    csub = c.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    csub.required = True
    x = csub.add_parser("list"); x.add_argument("--json", action="store_true")
    x = csub.add_parser("show"); x.add_argument("id"); x.add_argument("--json", action="store_true")
    x = csub.add_parser("add"); x.add_argument("file", metavar="FILE.mid"); x.add_argument("--title")
    x = csub.add_parser("tag"); x.add_argument("id"); x.add_argument("tag", metavar="KEY=VALUE")
    x = csub.add_parser("untag"); x.add_argument("id"); x.add_argument("key", metavar="KEY")
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
    except Exception as exc:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("CAPSULE_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (set CAPSULE_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

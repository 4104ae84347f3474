"""What every command shares: reading an input, checking an output before the work, printing.

Imports of the library happen inside the functions, so that ``capsule --help`` and a usage
error answer without loading music21, mido or numpy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import CapsuleError
from ..techniques._common import text_table

PROG = "capsule"


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and CapsuleErrors (exit 2)."""

    def error(self, message):  # noqa: D401 - argparse hook
        raise CapsuleError(f"{message} (see '{self.prog} --help')")


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def print_table(rows: list[list], header: list[str]) -> None:
    for line in text_table(rows, header):
        print(line)


def print_fields(record: dict) -> None:
    """``key: value`` per line (lists and dicts as JSON), for ``show`` without ``--json``."""
    for k, v in record.items():
        print(f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v}")


def split_tag(tag: str) -> tuple[str, str]:
    """``KEY=VALUE`` as ``(key, value)``."""
    if "=" not in tag:
        raise CapsuleError(f"tag {tag!r} must be written KEY=VALUE")
    key, value = tag.split("=", 1)
    return key, value


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system names no file
        return False


def load_input(arg: str, *, track=None):
    """A score from a MIDI file path, a sample melody name, or a composition id (tried in that order)."""
    from ..midi import read_midi

    path = Path(arg)
    if exists(path) or path.suffix.lower() in (".mid", ".midi", ".rmi"):
        return read_midi(path, track=track if track is not None else "all")
    from ..samples import list_samples, load_sample

    names = {s["name"] for s in list_samples()}
    if arg in names:
        return load_sample(arg)
    from ..store import CompositionStore

    try:
        return CompositionStore().load(arg)
    except CapsuleError:
        raise CapsuleError(f"{arg!r} is not a MIDI file, a sample melody or a composition id") from None


def is_composition_id(arg: str) -> bool:
    if exists(Path(arg)):
        return False
    from ..store import CompositionStore

    try:
        CompositionStore().get(arg)
        return True
    except CapsuleError:
        return False


def check_output(inp: str, out: str, suffixes: tuple[str, ...] = (".mid", ".midi")) -> Path:
    """The output path, checked before any work: right suffix, not the input, writable."""
    from ..atomic import check_writable

    out_path = Path(out)
    if suffixes and out_path.suffix.lower() not in suffixes:
        raise CapsuleError(f"{out_path.name}: the output must end in {' or '.join(suffixes)}")
    if exists(Path(inp)) and exists(out_path) and out_path.resolve() == Path(inp).resolve():
        raise CapsuleError(f"refusing to overwrite the input file {inp}; choose another output name")
    return check_writable(out_path)


def add_input_output(parser, output_metavar: str = "OUT", output_help: str | None = None) -> None:
    """The ``IN`` argument and the required ``-o OUT`` of a command that reads music and writes a file."""
    parser.add_argument("input", metavar="IN", help="MIDI file, sample name or composition id")
    parser.add_argument("-o", "--output", required=True, metavar=output_metavar, help=output_help)


def add_quiet_json(parser, quiet_help: str | None = None) -> None:
    """``--quiet`` (no progress bars) and ``--json`` (machine-readable output)."""
    parser.add_argument("--quiet", action="store_true", help=quiet_help)
    parser.add_argument("--json", action="store_true")

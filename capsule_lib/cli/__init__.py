"""The ``capsule`` command line: samples, editing, rendering, compositions, models and the techniques.

Errors print one line on stderr and exit with status 2; there is never a
traceback for bad input (set ``CAPSULE_DEBUG=1`` to see one for a bug).  A
command that fails leaves nothing behind: the output path is checked before the
work starts, and a composition saved by a technique is deleted again if its
output file cannot be written after all.

``library``     the commands over the library: samples, edit, render, instrument,
                compositions, models, data, doctor
``techniques``  the technique commands, read from the registry: train, evaluate and one
                run command per technique (enhance, extend, accompany)
``_shared``     reading inputs, checking outputs, tables and JSON, the argparse types
"""

from __future__ import annotations

import os
import sys

from ..errors import CapsuleError
from . import library, techniques
from ._shared import PROG, Parser

__all__ = ["main", "build_parser"]


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="Composer Capsules: generative music studio on your own machine.")
    p.add_argument("--version", action="version", version=f"{PROG} 0.1.0")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    library.add_commands(sub)
    techniques.add_commands(sub)
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
        from ..atomic import os_error

        print(f"{PROG}: error: {os_error(exc, 'use', exc.filename or 'a file')}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("CAPSULE_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (set CAPSULE_DEBUG=1 for details)", file=sys.stderr)
        return 1

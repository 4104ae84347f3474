"""The studio's three small browser parts: the status line, the MIDI import button and the compositions table.

Each is an anywidget with a few lines of JavaScript (``static/status.js``, ``upload.js``,
``compositions.js``); what they show and what happens is decided in Python.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anywidget
import traitlets as t

from .theme import STATIC, themed_css

__all__ = ["StatusLine", "MidiImport", "CompositionTable", "MAX_IMPORT_BYTES"]

#: Files larger than this are refused in the browser, before their bytes travel to the kernel.
MAX_IMPORT_BYTES = 2 * 1024 * 1024


class StatusLine(anywidget.AnyWidget):
    """One line: a message (``level`` "info", "ok" or "error"), or a busy label with a progress bar and a clock.

    It also carries the studio's style sheet and saves downloads (:meth:`download`).
    """

    _esm = STATIC / "status.js"
    _css = themed_css("studio.css")

    message = t.Unicode("").tag(sync=True)
    level = t.Unicode("info").tag(sync=True)
    busy = t.Bool(False).tag(sync=True)
    busy_label = t.Unicode("").tag(sync=True)
    busy_since = t.Float(0.0, help="epoch milliseconds when the job started (the browser counts from it)").tag(
        sync=True
    )

    def say(self, message: str, level: str = "info") -> None:
        """Show ``message`` on one line (line breaks become spaces)."""
        with self.hold_sync():
            self.level = level
            self.message = " ".join(str(message).split())

    def start(self, label: str) -> None:
        with self.hold_sync():
            self.busy_label = label
            if not self.busy:
                self.busy_since = time.time() * 1000
            self.busy = True

    def stop(self) -> None:
        self.busy = False

    def download(self, name: str, data: bytes, mime: str) -> None:
        """Save ``data`` as the file ``name`` in the browser (its usual download)."""
        self.send({"op": "download", "name": name, "mime": mime}, buffers=[data])


class MidiImport(anywidget.AnyWidget):
    """A labelled "Import a MIDI file" button; ``on_file(name, data)`` gets each file chosen.

    A file larger than ``max_bytes`` is refused in the browser: ``on_file`` gets ``data=None``
    and the size instead of the bytes.
    """

    _esm = STATIC / "upload.js"
    _css = themed_css()

    label = t.Unicode("Import a MIDI file").tag(sync=True)
    disabled = t.Bool(False).tag(sync=True)
    max_bytes = t.Int(MAX_IMPORT_BYTES).tag(sync=True)

    def __init__(self, on_file: Callable[[str, bytes | None, int], object], **kwargs):
        super().__init__(**kwargs)
        self._on_file = on_file
        self.on_msg(self._handle)

    def _handle(self, _widget, content, buffers) -> None:
        if not isinstance(content, dict):
            return
        name = str(content.get("name") or "file")
        size = int(content.get("size") or 0)
        if content.get("op") == "too-large":
            self._on_file(name, None, size)
        elif content.get("op") == "file":
            data = bytes(buffers[0]) if buffers else b""
            self._on_file(name, data, len(data))


class CompositionTable(anywidget.AnyWidget):
    """The saved compositions as a table; ``selected`` is the id of the row picked."""

    _esm = STATIC / "compositions.js"
    _css = themed_css("studio.css")

    rows = t.List(t.Dict(), help="composition_row() of each composition, newest first").tag(sync=True)
    selected = t.Unicode("").tag(sync=True)
    disabled = t.Bool(False).tag(sync=True)

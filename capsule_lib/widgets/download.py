"""Download buttons for one score: MIDI, WAV and MP3, made when clicked.

A link that carries its file inside the notebook would save every MP3 into the ``.ipynb``
(megabytes); these buttons render and send the file only when pressed, through the status
line that also tells what was saved.  Nothing is written into the notebook's folder.
"""

from __future__ import annotations

from ..errors import CapsuleError
from ..score import Score

__all__ = ["DownloadButtons"]

_NAMES = {"mid": "MIDI", "wav": "WAV", "mp3": "MP3"}


class DownloadButtons:
    """``DownloadButtons(score, "my tune")``: one button per file kind; display it in a cell.

    :meth:`download` is what a click does (for scripts and tests): returns ``(file name, bytes)``.
    """

    def __init__(self, score: Score, title: str | None = None, kinds=("mid", "wav", "mp3")):
        import ipywidgets as w

        from .parts import StatusLine
        from .studio import _safe_name

        if not isinstance(score, Score):
            raise CapsuleError(f"DownloadButtons needs a Score, not {type(score).__name__}")
        unknown = [k for k in kinds if k not in _NAMES]
        if unknown or not kinds:
            raise CapsuleError(f"cannot offer {unknown or 'nothing'} for download: choose from mid, wav, mp3")
        self.score = score
        self.stem = _safe_name(title or score.title or "composition")
        self.status = StatusLine()
        self.buttons = {}
        for kind in kinds:
            button = w.Button(
                description=f"Download {_NAMES[kind]}",
                icon="download",
                tooltip=f"{self.stem}.{kind}",
                layout=w.Layout(width="auto"),
            )
            button.on_click(lambda _, k=kind: self._click(k))
            self.buttons[kind] = button
        self.widget = w.VBox([w.HBox(list(self.buttons.values())), self.status])

    def _click(self, kind: str) -> None:
        try:
            self.download(kind)
        except CapsuleError as err:
            self.status.say(str(err), "error")

    def download(self, kind: str) -> tuple[str, bytes]:
        """Render ``kind`` ("mid", "wav" or "mp3") and send it to the browser as a file."""
        from .sound import file_bytes

        self.status.start(f"Making {self.stem}.{kind} ...")
        try:
            data, mime = file_bytes(self.score, kind)
        finally:
            self.status.stop()
        name = f"{self.stem}.{kind}"
        self.status.download(name, data, mime)
        self.status.say(f"Downloaded {name} ({len(data) / 1e3:.0f} kB).", "ok")
        return name, data

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

"""Real sound for the widgets: a score rendered in the kernel (FluidSynth or the built-in synth), sent compressed.

The browser's own oscillators can only beep; the studio plays what :mod:`capsule_lib.audio`
renders, as a small mono MP3 (WAV where the MP3 encoder is missing), and renders it in a
background thread so the page never waits for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..errors import CapsuleError
from ..score import Score

__all__ = ["compressed_audio", "file_bytes", "AudioRenderer"]

_MIME = {"mid": "audio/midi", "wav": "audio/wav", "mp3": "audio/mpeg"}


def compressed_audio(score: Score) -> tuple[bytes, str]:
    """``(bytes, mime type)`` of ``score`` rendered for listening in the browser: the notebook players' MP3."""
    from ..audio import PLAYER_SAMPLE_RATE, player_bytes, synthesize, wav_bytes

    try:
        return player_bytes(score), "audio/mpeg"
    except CapsuleError:  # no MP3 encoder: WAV is bigger but plays everywhere
        return wav_bytes(synthesize(score, PLAYER_SAMPLE_RATE).mean(axis=1), PLAYER_SAMPLE_RATE), "audio/wav"


def file_bytes(score: Score, kind: str) -> tuple[bytes, str]:
    """``(bytes, mime type)`` of ``score`` as a downloadable ``"mid"``, ``"wav"`` or ``"mp3"`` file.

    Audio files are full quality (44.1 kHz stereo), as ``capsule compositions export`` writes them.
    """
    from ..audio import mp3_bytes, synthesize, wav_bytes
    from ..midi import midi_bytes

    if kind == "mid":
        return midi_bytes(score), _MIME[kind]
    if kind in ("wav", "mp3"):
        samples = synthesize(score, 44100)
        return (wav_bytes(samples, 44100) if kind == "wav" else mp3_bytes(samples, 44100)), _MIME[kind]
    raise CapsuleError(f"cannot download as {kind!r}: choose mid, wav or mp3")


class AudioRenderer:
    """Render the latest score asked for in a background thread; hand the audio to ``on_ready``.

    ``on_ready(data, mime, error)`` is called from the worker thread with the audio of the
    most recent :meth:`request` (scores asked for meanwhile are skipped, never rendered for
    nothing); ``error`` is the exception when rendering failed (``data`` is then empty).
    """

    def __init__(self, on_ready: Callable[[bytes, str, Exception | None], object]):
        self._on_ready = on_ready
        self._lock = threading.Lock()
        self._pending: Score | None = None
        self._busy = False
        self._idle = threading.Event()
        self._idle.set()

    def request(self, score: Score) -> None:
        with self._lock:
            self._pending = score
            self._idle.clear()
            if self._busy:
                return
            self._busy = True
        threading.Thread(target=self._work, name="capsule-audio", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every requested render is done (True) or ``timeout`` seconds pass (False)."""
        return self._idle.wait(timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                score, self._pending = self._pending, None
                if score is None:
                    self._busy = False
                    self._idle.set()
                    return
            try:
                data, mime = compressed_audio(score)
                error = None
            except Exception as exc:  # never let a render kill the thread silently
                data, mime, error = b"", "", exc
            with self._lock:
                newer = self._pending is not None
            if not newer:
                try:
                    self._on_ready(data, mime, error)
                except Exception:
                    pass

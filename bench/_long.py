"""What the long-piece benchmarks share: melodies of any length, and a CPU-bound competitor."""

from __future__ import annotations

import os
import subprocess
import sys

from capsule_lib import Note, Score, Track, list_samples, load_sample

TEMPO = 100.0


def long_melody(minutes: float) -> Score:
    """The sample melodies one after another (each from its first bar line), at 100 bpm in 4/4,
    repeated until the piece lasts ``minutes``: varied music, any length."""
    parts = [load_sample(s["name"]) for s in list_samples()]
    notes: list[Note] = []
    at = 0
    i = 0
    res = parts[0].resolution
    target = minutes * 60 * TEMPO / 60 * res  # steps
    while at < target:
        part = parts[i % len(parts)]
        mel = part.tracks[0].notes
        bar = 4 * res
        for n in mel:
            notes.append(Note(at + n.start, n.pitch, n.duration, n.velocity))
        at += -(-part.tracks[0].end // bar) * bar
        i += 1
    notes = [n for n in notes if n.start < target]
    return Score(
        tracks=(Track(name="melody", notes=tuple(notes)),),
        tempo=TEMPO,
        resolution=res,
        title=f"{minutes:g}-minute medley",
    )


def with_tempo_changes(score: Score, n_changes: int) -> Score:
    """``score`` with ``n_changes`` tempo changes spread evenly (alternating 96 and 104 bpm)."""
    end = score.end
    changes = tuple((1 + k * (end - 1) // n_changes, 96.0 if k % 2 else 104.0) for k in range(n_changes))
    return score.replace(tempo_changes=changes)


class Competitors:
    """``with Competitors(n):`` runs ``n`` CPU-bound processes (``while True: pass``) meanwhile --
    a browser, a second notebook -- on the cores this process may use."""

    def __init__(self, n: int):
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def __enter__(self):
        for _ in range(self.n):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def machine_line() -> str:
    import platform

    import torch

    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = ""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return (
        f"machine: {platform.system()} {platform.machine()}, {cores} cores, torch {torch.__version__}, "
        f"python {platform.python_version()}; {load}"
    )

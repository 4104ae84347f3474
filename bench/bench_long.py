"""Long pieces: enhance, accompany and extend on 1-, 4- and 20-minute melodies, and token
encoding against the number of tempo changes (issue 18 item 9).

Targets on a quiet 2-core machine: time linear in length; for a 20-minute melody
enhance <= 60 s, accompany <= 10 s, extend (encoding the whole input + a 30-second
extension) <= 60 s; token encoding linear in tempo changes.

Each figure is the median of ``--runs`` calls after a warm-up (models loaded, nothing
saved).  Beside the library as it is, in the same process, the baseline it replaced:

* ``before`` for the techniques: torch's default thread count (all cores, whatever else
  runs) and the AR-CNN's old window rendering (a Python loop over every note of the piece
  on every pass);
* ``before`` for the encoding: every step's time summed over all earlier tempo changes
  (``Score.step_to_seconds`` per step) instead of the tempo map.

The melodies are the sample melodies one after another at 100 bpm (``bench/_long.py``).

Usage: ``python bench/bench_long.py [--runs 3] [--minutes 1 4 20] [--baseline-up-to 4] [--only enhance ...]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import contextmanager

import numpy as np
from _long import long_melody, machine_line, with_tempo_changes  # bench/ is on sys.path when a script runs

import capsule_lib as cl
from capsule_lib.techniques.arcnn import sample as arcnn_sample
from capsule_lib.techniques.transformer import tokens


def _old_render(notes, alive, w0):
    """The AR-CNN's window rendering before issue 18: a Python loop over every note, every pass."""
    W, P = arcnn_sample.WINDOW_STEPS, arcnn_sample.N_PITCHES
    lo, hi = arcnn_sample.PITCH_LOW, arcnn_sample.PITCH_HIGH
    roll = np.zeros((W, P), dtype=bool)
    for (s, p, d), ok in zip(notes, alive):
        if ok and lo <= p <= hi and s < w0 + W and s + d > w0:
            roll[max(s - w0, 0) : min(s + d - w0, W), p - lo] = True
    return roll


@contextmanager
def before():
    """The baseline: torch's default threads, the old rendering."""
    import torch

    old_env, old_render = os.environ.get("CAPSULE_THREADS"), arcnn_sample._render
    os.environ["CAPSULE_THREADS"] = str(os.cpu_count() or 1)  # torch's default: one thread per core
    arcnn_sample._render = _old_render
    try:
        yield
    finally:
        arcnn_sample._render = old_render
        if old_env is None:
            os.environ.pop("CAPSULE_THREADS", None)
        else:
            os.environ["CAPSULE_THREADS"] = old_env
        torch.set_num_threads(os.cpu_count() or 1)


def timed(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


TECHNIQUES = {
    "enhance": lambda s: cl.enhance(s, save=False, seed=0, progress=False),
    "accompany": lambda s: cl.accompany(s, save=False, seed=0),
    "extend": lambda s: cl.extend(s, save=False, seed=0, progress=False),
}
TARGET_20 = {"enhance": 60, "accompany": 10, "extend": 60}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 4, 20])
    ap.add_argument("--baseline-up-to", type=float, default=4, help="time the baseline up to this length (minutes)")
    ap.add_argument("--only", nargs="+", choices=[*TECHNIQUES, "encode"], default=[*TECHNIQUES, "encode"])
    ap.add_argument("--changes", type=int, nargs="+", default=[0, 2000, 4000, 8000])
    args = ap.parse_args()
    print(machine_line())
    melodies = {m: long_melody(m) for m in args.minutes}
    for m, s in melodies.items():
        print(f"  {m:g}-minute melody: {len(s.tracks[0].notes)} notes, {s.n_bars} bars, {s.duration_seconds:.0f} s")

    for name in [t for t in TECHNIQUES if t in args.only]:
        print(f"\n{name}: median of {args.runs} (s)")
        print("| minutes | now (s) | s per minute | before (s) | target (20 min) |")
        print("|---|---|---|---|---|")
        for m, s in melodies.items():
            now = timed(lambda: TECHNIQUES[name](s), args.runs)
            base = "-"
            if m <= args.baseline_up_to:
                with before():
                    base = f"{timed(lambda: TECHNIQUES[name](s), args.runs):.2f}"
            target = f"<= {TARGET_20[name]} s: {'met' if now <= TARGET_20[name] else 'NOT met'}" if m == 20 else ""
            print(f"| {m:g} | {now:.2f} | {now / m:.2f} | {base} | {target} |", flush=True)

    if "encode" in args.only:
        s = melodies[max(melodies)]
        print(f"\ntoken encoding of the {max(melodies):g}-minute melody vs tempo changes: median of {args.runs} (s)")
        print("| tempo changes | now (s) | before (s) |")
        print("|---|---|---|")
        for c in args.changes:
            piece = with_tempo_changes(s, c) if c else s
            now = timed(lambda: tokens.encode(piece), args.runs)
            old_map = cl.Score.tempo_map
            cl.Score.tempo_map = lambda self: self.step_to_seconds  # the per-step loop over all changes
            try:
                base = timed(lambda: tokens.encode(piece), args.runs)
            finally:
                cl.Score.tempo_map = old_map
            print(f"| {c} | {now:.3f} | {base:.3f} |", flush=True)


if __name__ == "__main__":
    main()

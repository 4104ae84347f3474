"""Inference beside other busy processes: the slowdown should stay near the share of CPU lost.

A classroom laptop runs a browser and JupyterLab beside the kernel.  Each technique runs
with 0, 1 and 2 CPU-bound competitors (``python -c 'while True: pass'``) under three
thread policies:

* ``torch default`` -- one thread per core whatever else runs (what the library did before
  issue 18: OpenMP threads spin-wait for each other and stall behind the competitor);
* ``1 thread`` -- ``CAPSULE_THREADS=1``;
* ``adaptive`` -- the library's policy (:mod:`capsule_lib.threads`): one thread per core no
  other process is busy on, re-decided during long calls.

Target: with one competitor on a 2-core machine the adaptive slowdown against the quiet
machine stays <= 3x (one core of two is lost: 2x is the share of CPU lost).

Workloads (models loaded, nothing saved, median of ``--runs`` after a warm-up): enhance of
an 8-bar melody, a 30-second extend of the same melody, accompany of a 1-minute melody.

Usage: ``python bench/bench_contention.py [--runs 5] [--competitors 0 1 2]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _long import Competitors, long_melody, machine_line  # bench/ is on sys.path when a script runs

import capsule_lib as cl
from capsule_lib.edit import crop_bars

POLICIES = {"torch default": str(os.cpu_count() or 1), "1 thread": "1", "adaptive": None}


def workloads():
    eight = crop_bars(cl.load_sample("ode_to_joy"), 0, 8)
    minute = long_melody(1)
    return {
        "enhance 8 bars": lambda: cl.enhance(eight, save=False, seed=0, progress=False),
        "extend 30 s": lambda: cl.extend(eight, save=False, seed=0, progress=False),
        "accompany 1 min": lambda: cl.accompany(minute, save=False, seed=0),
    }


def timed(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--competitors", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="+", default=None, help="workload names to run (default: all)")
    args = ap.parse_args()
    print(machine_line())
    jobs = workloads()
    if args.only:
        jobs = {k: v for k, v in jobs.items() if any(o in k for o in args.only)}
    results: dict[tuple[str, str, int], float] = {}
    for n in args.competitors:
        with Competitors(n):
            time.sleep(0.5)  # let the competitors get going
            for name, fn in jobs.items():
                for policy, env in POLICIES.items():
                    if env is None:
                        os.environ.pop("CAPSULE_THREADS", None)
                    else:
                        os.environ["CAPSULE_THREADS"] = env
                    results[(name, policy, n)] = timed(fn, args.runs)
                    print(f"  {name}, {policy}, {n} competitors: {results[(name, policy, n)]:.3f} s", flush=True)
    os.environ.pop("CAPSULE_THREADS", None)
    quiet = min(args.competitors)
    print("\nmedian seconds (slowdown against the same workload's best quiet time)")
    print("| workload | policy | " + " | ".join(f"{n} competitors" for n in args.competitors) + " |")
    print("|---|---|" + "---|" * len(args.competitors))
    for name in jobs:
        best = min(results[(name, p, quiet)] for p in POLICIES)
        for policy in POLICIES:
            cells = [
                f"{results[(name, policy, n)]:.3f} ({results[(name, policy, n)] / best:.1f}x)" for n in args.competitors
            ]
            print(f"| {name} | {policy} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

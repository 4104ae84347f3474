"""GAN accompaniment speed: an 8-bar melody accompanied by each model, model loaded, result not saved.

Target (issue 4): median <= 0.2 s on a 2-core CPU.  Reported per model: the median of
``--runs`` calls of ``capsule_lib.accompany(melody, model, seed=i, save=False)`` after a
warm-up, and the share of it spent in the generator's forward pass (the rest is turning
the melody into a roll, decoding the output into notes and building the score).  As a
baseline in the same process, the time of the same call with a 4x wider generator
(randomly initialised: the cost of a forward pass does not depend on the weights).

Usage: ``python bench/bench_accompany.py [--runs 15] [--models musegan-chorale musegan-quartet ...]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform

import torch
from _timing import median_time  # bench/ is on sys.path when a script runs

import capsule_lib as cl
from capsule_lib import CapsuleError
from capsule_lib.techniques.gan import GanConfig, build_generator, load_gan


def _melody_8_bars() -> cl.Score:
    melody = cl.load_sample("ode_to_joy")
    bars = melody.steps_per_bar * 8
    track = melody.tracks[0]
    notes = tuple(n for n in track.notes if n.start < bars)
    return melody.replace(tracks=(track.replace(notes=notes),))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--models", nargs="*", default=["musegan-chorale", "musegan-quartet", "musegan-renaissance"])
    args = ap.parse_args()
    melody = _melody_8_bars()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), python {platform.python_version()}"
    )
    print(f"\n### Accompanying an 8-bar melody ({melody.n_bars} bars of Ode to Joy), median of {args.runs} runs\n")
    print("| model | generator parameters | accompany median (s) | of which generator forward (s) |")
    print("|---|---|---|---|")
    for name in args.models:
        try:
            gen = load_gan(name)
        except CapsuleError as exc:
            print(f"| {name} | - | not available: {exc} | - |")
            continue
        seed = iter(range(10**6))
        med = median_time(lambda: cl.accompany(melody, model=gen, seed=next(seed), save=False), args.runs)
        x = torch.zeros(2, 1, 64, 84)
        with torch.no_grad():
            fwd = median_time(lambda: gen.generator(x), args.runs)
        n = sum(p.numel() for p in gen.generator.parameters())
        print(f"| {name} | {n / 1e6:.2f} M | {med:.3f} | {fwd:.3f} |")
        last = (gen, med)
    if "last" in locals():
        gen, med = last
        cfg = GanConfig.from_dict({**gen.config.to_dict(), "width": gen.config.width * 4})
        wide = dataclasses.replace(gen, generator=build_generator(cfg).eval(), name="wide")
        seed = iter(range(10**6))
        wmed = median_time(lambda: cl.accompany(melody, model=wide, seed=next(seed), save=False), args.runs)
        n = sum(p.numel() for p in wide.generator.parameters())
        print(f"| baseline: 4x wider generator (random weights) | {n / 1e6:.2f} M | {wmed:.3f} | - |")
        print(
            f"\nratio: the shipped size is {wmed / med:.1f}x faster than the 4x wider one; "
            f"target <= 0.2 s -> {'met' if med <= 0.2 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()

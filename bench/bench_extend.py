"""Transformer extension speed: a 30-second extension with the model's memory, and without it.

Target (issue 5): median <= 3 s for 30 s of music on a 2-core CPU, model loaded.  Beside
it, in the same process, the same model generating *without* memory -- recomputing its
whole context for every token -- as a ratio.  Both generate the same tokens for a seed
(a test checks that), so the comparison is like for like.

A trained model is used when ``--model`` names one; otherwise a randomly initialised
model of the default size (speed does not depend on the weights, but the number of
tokens per second of music does: a trained model's density is the honest figure).

Usage: ``python bench/bench_extend.py [--model transformer-classical] [--runs 3] [--seconds 30]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

import capsule_lib as cl
from capsule_lib import CapsuleError
from capsule_lib.techniques.transformer.model import TransformerConfig, TransformerXL, load_transformer
from capsule_lib.techniques.transformer.sample import generate
from capsule_lib.techniques.transformer.tokens import encode, is_shift, shift_ticks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="transformer-classical")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    try:
        model, label = load_transformer(args.model), args.model
    except CapsuleError:
        torch.manual_seed(0)
        model, label = TransformerXL(TransformerConfig()).eval(), "random-init default config"
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), python {platform.python_version()}"
    )
    prompt = encode(cl.load_sample("ode_to_joy"))

    def run(use_cache: bool, seed: int):
        t0 = time.perf_counter()
        toks = generate(model, prompt, n_seconds=args.seconds, seed=seed, use_cache=use_cache)
        return time.perf_counter() - t0, toks

    run(True, 99)  # warm-up
    cached = [run(True, s) for s in range(args.runs)]
    uncached = [run(False, s) for s in range(max(1, args.runs // 3))]
    med_c = statistics.median(t for t, _ in cached)
    med_u = statistics.median(t for t, _ in uncached)
    n_tokens = statistics.median(len(toks) for _, toks in cached)
    music = statistics.median(sum(shift_ticks(t) for t in toks if is_shift(t)) / 100 for _, toks in cached)
    same = all(cached[i][1] == uncached[i][1] for i in range(len(uncached)))
    print(f"\n### {args.seconds:.0f}-second extension of Ode to Joy ({label}, {n_params / 1e6:.2f} M parameters)\n")
    print("| generation | median (s) | tokens | ms per token |")
    print("|---|---|---|---|")
    print(f"| with memory (cache) | {med_c:.2f} | {n_tokens:.0f} | {1000 * med_c / n_tokens:.1f} |")
    print(f"| without memory (recompute context) | {med_u:.2f} | {n_tokens:.0f} | {1000 * med_u / n_tokens:.1f} |")
    print(
        f"\nratio: {med_u / med_c:.1f}x faster with memory; {music:.1f} s of music generated; same tokens: {same}; "
        f"target <= 3 s -> {'met' if med_c <= 3 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()

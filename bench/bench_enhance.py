"""AR-CNN enhance speed and quality, beside a re-implementation of the DeepComposer console's sampler.

Speed
    ``capsule_lib.enhance`` with its defaults on an 8-bar melody (model loaded, result
    not saved), median of RUNS after a warm-up -- target 0.5 s on a 2-core CPU.  Beside
    it, in the same process, the console's sampler as the original service described it:
    a U-Net with 5 down-sampling levels and 32 base filters (32..1024 channels, 31.1 M
    parameters) on a 128 x 128 (time x pitch) roll, one forward pass per iteration,
    toggling the one cell it is most sure is wrong, for 100 passes.  Its weights are
    random: a forward pass costs the same whatever the weights, and training a 31 M
    parameter network is out of reach on a laptop CPU.

Quality ("at least as Bach-like")
    Both *sampling algorithms* run with the same trained ``arcnn-bach`` network on the
    same damaged held-out chorale windows (half the notes removed, 10 % strays added):
    ours (a few whole notes added/removed per pass, 12 passes, hard caps) against the
    console's (one cell toggled per pass, 100 passes).  Reported: restoration F1 against
    Bach's original and the metrics of :mod:`capsule_lib.metrics` beside the Bach values.

Usage: ``python bench/bench_enhance.py [--runs 7] [--windows 40] [--model arcnn-bach]``
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import numpy as np
import torch
from _timing import median_time  # bench/ is on sys.path when a script runs
from torch import nn

import capsule_lib as cl
from capsule_lib.datasets.bach import PITCH_LOW, build_bach_dataset
from capsule_lib.metrics import METRICS, mean_metrics, track_metrics
from capsule_lib.techniques.arcnn import load_arcnn
from capsule_lib.techniques.arcnn.corrupt import add_stray_notes, remove_notes
from capsule_lib.techniques.arcnn.data import model_input, notes_to_roll
from capsule_lib.techniques.arcnn.evaluate import _prf, restoration_scores
from capsule_lib.techniques.arcnn.model import _block
from capsule_lib.techniques.arcnn.views import window_score


class ConsoleUNet(nn.Module):
    """The console's network size: 5 poolings, 32 -> 1024 channels, (B, C, 128, 128) -> (B, 128, 128)."""

    def __init__(self, in_channels: int = 1, base: int = 32, levels: int = 5):
        super().__init__()
        ch = [base * 2**i for i in range(levels + 1)]
        self.down = nn.ModuleList([_block(in_channels, ch[0])] + [_block(ch[i], ch[i + 1]) for i in range(levels)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in reversed(range(levels))])
        self.merge = nn.ModuleList([_block(2 * ch[i], ch[i]) for i in reversed(range(levels))])
        self.head = nn.Conv2d(ch[0], 1, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        skips, h = [], x
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else self.pool(h))
            skips.append(h)
        skips.pop()
        for up, merge in zip(self.up, self.merge):
            h = merge(torch.cat([up(h), skips.pop()], 1))
        return self.head(h).squeeze(1)


def toggle_sampler(predict, roll: np.ndarray, passes: int = 100, rng=None) -> np.ndarray:
    """The console's loop (creative risk 1): each pass one forward, then toggle one cell drawn by how wrong it looks."""
    rng = rng or np.random.default_rng(0)
    roll = roll.copy()
    for _ in range(passes):
        p = predict(roll)
        wrong = np.where(roll, 1 - p, p).ravel()
        idx = int(rng.choice(wrong.size, p=wrong / wrong.sum()))
        roll.flat[idx] = ~roll.flat[idx]
    return roll


def roll_to_notes(roll: np.ndarray) -> np.ndarray:
    """Runs of sounding cells along time as ``(start, pitch, duration)`` rows (64-pitch model roll)."""
    rows = []
    for j in range(roll.shape[1]):
        col = np.concatenate([[False], roll[:, j], [False]])
        edges = np.flatnonzero(np.diff(col.astype(np.int8)))
        for s, e in zip(edges[::2], edges[1::2]):
            rows.append((s, j + PITCH_LOW, e - s))
    return np.array(rows, dtype=np.int32).reshape(-1, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--console-runs", type=int, default=3)
    ap.add_argument("--windows", type=int, default=40)
    ap.add_argument("--model", default="arcnn-bach")
    args = ap.parse_args()
    torch.manual_seed(0)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), python {platform.python_version()}"
    )

    # -- speed ------------------------------------------------------------------------
    melody = cl.crop_bars(cl.load_sample("ode_to_joy"), 0, 8)
    net = load_arcnn(args.model)
    ours = median_time(lambda: cl.enhance(melody, model=net, seed=1, save=False), args.runs)

    console = ConsoleUNet().eval()
    n_console = sum(p.numel() for p in console.parameters())
    roll128 = np.zeros((128, 128), bool)
    for n in melody.with_resolution(4).notes:
        roll128[n.start : n.end, n.pitch] = True

    def console_predict(r):
        with torch.inference_mode():
            logits = console(torch.from_numpy(r.astype(np.float32))[None, None])[0].numpy().astype(np.float64)
        return 1 / (1 + np.exp(-logits))

    theirs = median_time(lambda: toggle_sampler(console_predict, roll128, 100), args.console_runs)
    n_ours = sum(p.numel() for p in net.parameters())
    print("\n## Speed: enhancing an 8-bar melody (Ode to Joy, bars 1-8)\n")
    print("| sampler | network | passes | median (s) |")
    print("|---|---|---|---|")
    print(f"| capsule_lib.enhance (defaults) | U-Net {n_ours / 1e6:.2f} M params, 128 x 64 | 12 | {ours:.3f} |")
    print(f"| console re-implementation | U-Net {n_console / 1e6:.1f} M params, 128 x 128 | 100 | {theirs:.3f} |")
    print(
        f"\nratio: {theirs / ours:.1f}x faster (target >= 10x); enhance target <= 0.5 s -> "
        f"{'met' if ours <= 0.5 else 'MISSED'}"
    )

    # -- quality: same trained network, two sampling algorithms ------------------------
    ds = build_bach_dataset(progress=False)
    windows = ds.windows("test")
    idx = np.linspace(0, len(windows) - 1, min(args.windows, len(windows))).round().astype(int)
    windows = [windows[i] for i in idx]
    t0 = time.perf_counter()
    ours_q = restoration_scores(net, windows, seed=0)
    t_ours = time.perf_counter() - t0

    def trained_predict(r):
        x = model_input(r, np.ones_like(r))
        with torch.inference_mode():
            logits = net(torch.from_numpy(x)[None])[0].numpy().astype(np.float64)
        return 1 / (1 + np.exp(-logits))

    counts = np.zeros(3, np.int64)
    rows = []
    t0 = time.perf_counter()
    for i, w in enumerate(windows):
        w = np.asarray(w).reshape(-1, 3)
        rng = np.random.default_rng([0, 2, i])  # the same damage as restoration_scores
        kept, removed = remove_notes(w, 0.5, rng)
        damaged, _ = add_stray_notes(kept, max(1, round(0.1 * len(w))), rng, reference=w)
        out = toggle_sampler(trained_predict, notes_to_roll(damaged), 100, rng=rng)
        truth = notes_to_roll(w)
        counts += [int((out & truth).sum()), int((out & ~truth).sum()), int((~out & truth).sum())]
        rows.append(track_metrics(window_score(roll_to_notes(out))))
    t_console = time.perf_counter() - t0
    console_q = {**_prf(*counts), "metrics": mean_metrics(rows)}

    print(f"\n## Quality: restoring {len(windows)} damaged held-out chorale windows with the trained {args.model}\n")
    print("| | damaged input | capsule_lib sampler | console sampler (1 cell x 100) | Bach |")
    print("|---|---|---|---|---|")
    print(f"| restoration F1 | {ours_q['corrupted']['f1']:.3f} | {ours_q['f1']:.3f} | {console_q['f1']:.3f} | 1 |")
    m_in, m_ours, m_bach, m_con = (
        ours_q["metrics"]["input"],
        ours_q["metrics"]["output"],
        ours_q["metrics"]["bach"],
        console_q["metrics"],
    )
    for k in METRICS:

        def f(v):
            return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

        print(f"| {k} | {f(m_in[k])} | {f(m_ours[k])} | {f(m_con[k])} | {f(m_bach[k])} |")

    def gap(m):  # rates: absolute difference; counts (pitches used): relative difference
        return statistics.mean(abs(m[k] - m_bach[k]) / max(abs(m_bach[k]), 1.0) for k in METRICS)

    print(f"| mean gap to Bach (lower is better) | {gap(m_in):.3f} | {gap(m_ours):.3f} | {gap(m_con):.3f} | 0 |")
    print(f"| seconds for all windows | - | {t_ours:.1f} | {t_console:.1f} | - |")


if __name__ == "__main__":
    main()

"""What the bench scripts share: the median wall-clock time of a call, after a warm-up."""

from __future__ import annotations

import statistics
import time


def median_time(fn, runs: int) -> float:
    """Call ``fn`` once to warm up, then ``runs`` times; the median of those times in seconds."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

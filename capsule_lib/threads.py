"""How many threads torch may use for inference, now: the cores nobody else is busy on.

Why it matters
    torch runs a network's layers on a pool of OpenMP threads that *spin* while they wait
    for each other.  On a 2-core laptop where a browser or a second notebook keeps one
    core busy, two spinning threads fight that process for the cores and every layer
    waits for the slowest: inference ran 8-20x slower, not the 2x the lost core explains
    (see ``BENCHMARKS.md``, "Inference under contention").  One thread per *free* core
    keeps the slowdown near the share of CPU lost.

How it is decided
    :func:`free_cores` = the cores this process may run on (its affinity) minus the other
    processes running right now (Linux: the kernel's count of runnable tasks, less this
    process's own running threads, sampled a few times; elsewhere the 1-minute load
    average).  :class:`InferenceThreads` applies that to torch for the length of a call
    and :meth:`~InferenceThreads.refresh` re-decides during long calls (every
    ``REFRESH_SECONDS``), so a process that starts competing half-way is noticed.
    ``CAPSULE_THREADS=N`` fixes the count (``0``: leave torch's own setting alone).

Reproducibility
    The thread count changes how torch splits its sums, so a network's outputs can differ
    in their last bits (about 1e-7) between counts, and a random draw that lands exactly
    there picks differently: rarely for a short melody, more often over the many thousand
    draws of a long piece.  The same seed gives
    the same result with the same thread count; ``CAPSULE_THREADS=1`` makes results
    independent of the machine's load and core count (at some speed on an idle machine
    with many cores).
"""

from __future__ import annotations

import os
import time

__all__ = ["available_cores", "free_cores", "inference_threads", "InferenceThreads", "REFRESH_SECONDS"]

#: How often a long call re-decides its thread count (calls within this time share a decision).
REFRESH_SECONDS = 1.0
_SAMPLES = 3
_decided: tuple[float, int] | None = None  # (when, free cores): quick calls in a row look once


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _own_running_threads() -> int:
    running = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        running += state == b"R"
    return max(running, 1)  # the thread asking is running


def _others_running() -> float:
    """Tasks of other processes running or ready to run now (Linux), else the load average less ourselves."""
    try:
        counts = []
        for i in range(_SAMPLES):
            with open("/proc/loadavg", "rb") as fh:
                runnable = int(fh.read().split()[3].split(b"/")[0])
            counts.append(max(0, runnable - _own_running_threads()))
            if i + 1 < _SAMPLES:
                time.sleep(0.001)
        return sorted(counts)[len(counts) // 2]
    except (OSError, ValueError, IndexError):
        pass
    try:
        return max(0.0, os.getloadavg()[0] - 1.0)
    except (AttributeError, OSError):  # Windows
        return 0.0


def free_cores() -> int:
    """The cores of this process not busy with other processes right now (at least 1)."""
    return max(1, min(available_cores(), int(available_cores() - _others_running() + 0.5)))


def _recent_free_cores() -> int:
    """:func:`free_cores`, looked up at most every :data:`REFRESH_SECONDS` (a look costs ~3 ms)."""
    global _decided
    now = time.monotonic()
    if _decided is None or now - _decided[0] >= REFRESH_SECONDS:
        _decided = (now, free_cores())
    return _decided[1]


def inference_threads() -> int | None:
    """The thread count for torch inference now: ``CAPSULE_THREADS`` if set (``0``/None: leave
    torch alone), else :func:`free_cores`."""
    fixed = os.environ.get("CAPSULE_THREADS", "").strip()
    if fixed:
        try:
            n = int(fixed)
        except ValueError:
            n = -1
        return None if n == 0 else max(1, n)
    return _recent_free_cores()


class InferenceThreads:
    """Set torch's thread count for a call (``with InferenceThreads():``) and put it back after.

    Long calls call :meth:`refresh` between units of work (windows, tokens); at most every
    :data:`REFRESH_SECONDS` it looks at the machine again and changes the count if needed.
    """

    def __init__(self):
        self.threads: int | None = None
        self._before: int | None = None
        self._checked = 0.0

    def __enter__(self) -> InferenceThreads:
        import torch

        self._before = torch.get_num_threads()
        self._apply(inference_threads())
        return self

    def refresh(self) -> None:
        if time.monotonic() - self._checked >= REFRESH_SECONDS:
            self._apply(inference_threads())

    def _apply(self, n: int | None) -> None:
        import torch

        self._checked = time.monotonic()
        if n is not None and n != torch.get_num_threads():
            torch.set_num_threads(n)
        self.threads = torch.get_num_threads()

    def __exit__(self, *exc) -> None:
        import torch

        if self._before is not None and torch.get_num_threads() != self._before:
            torch.set_num_threads(self._before)

"""Worker processes that die with their parent.

A pool worker that is busy when its parent is killed (Ctrl-C twice, a closed notebook, a
SIGKILL) would otherwise run on at full CPU until its work item ends -- minutes for a big
corpus chunk.  Each worker made here exits as soon as its parent is gone:

* on Linux the kernel sends it SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``);
* everywhere, a watchdog thread checks every half second that the parent is still its
  parent (an orphan is adopted by another process).  The thread gets its turn even while
  the worker computes: Python switches threads every few milliseconds, and numpy and
  torch release the GIL in long operations.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["process_pool"]

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.5


def process_pool(workers: int):
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes that exit when this process dies.

    ``spawn``, not ``fork``: safe after torch or OpenMP started threads in the parent
    (inside Jupyter, for one).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent, initargs=(os.getpid(),)
    )


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when ``parent_pid`` (its parent) dies; for a pool's ``initializer``."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):  # no libc to ask: the watchdog below still works
            pass
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="die-with-parent", daemon=True).start()


def _watch(parent_pid: int) -> None:
    while True:
        time.sleep(_POLL_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(1)  # no clean-up to wait for: the results have nobody to go to

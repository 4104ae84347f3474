"""Worker processes die with their parent (issue 18 item 8).

A parent process parses a "corpus" in worker processes whose every item spins the CPU
for a minute; the test kills the parent with SIGKILL (no clean-up at all) and expects
the busy workers gone within seconds, not a minute later.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and process ids are POSIX")

SPIN = """
import os, time

def spin(path):
    with open(os.path.join(os.environ["PID_DIR"], str(os.getpid())), "w"):
        pass
    end = time.time() + 60
    while time.time() < end:  # pure Python: holds the GIL between switches, like real parsing
        pass
    return {"path": path}
"""

PARENT = """
import sys
sys.path.insert(0, sys.argv[1])
from capsule_lib.datasets._corpus import parse_all
from spin_job import spin

parse_all(spin, [str(i) for i in range(4)], workers=2, max_workers=2, desc="", unit="", progress=False, chunksize=1)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its new parent) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _wait(condition, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.slow
def test_busy_pool_workers_exit_when_their_parent_is_killed(tmp_path):
    (tmp_path / "spin_job.py").write_text(textwrap.dedent(SPIN))
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {
        **os.environ,
        "PID_DIR": str(pids),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]),
    }
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], env=env)
    workers: list[int] = []
    try:
        assert _wait(lambda: len(os.listdir(pids)) >= 2, 120), "the workers never started"
        workers = [int(p) for p in os.listdir(pids)]
        assert all(_alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        assert _wait(lambda: not any(_alive(p) for p in workers), 10), "workers outlived their parent"
    finally:
        parent.kill()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_die_with_parent_leaves_a_living_parent_alone(tmp_path):
    """The watchdog in a worker of a living parent does nothing: the pool finishes its work."""
    (tmp_path / "quick_job.py").write_text("import os\ndef pid(path):\n    return {'path': path, 'pid': os.getpid()}\n")
    sys.path.insert(0, str(tmp_path))
    try:
        from quick_job import pid

        from capsule_lib.datasets._corpus import parse_all

        results = parse_all(
            pid, [str(i) for i in range(6)], workers=2, max_workers=2, desc="", unit="", progress=False, chunksize=1
        )
    finally:
        sys.path.remove(str(tmp_path))
    assert [r["path"] for r in results] == [str(i) for i in range(6)]
    assert os.getpid() not in {r["pid"] for r in results}

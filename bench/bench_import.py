"""How long `import capsule_lib` takes in a fresh interpreter (target: under 1.5 s).

Runs the import in new processes several times and reports the median, beside a
baseline of a bare interpreter start, so the figure is the package's own cost.
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import time

RUNS = 7


def timed(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def main() -> None:
    timed("import capsule_lib")  # warm the file cache once
    base = [timed("pass") for _ in range(RUNS)]
    imp = [timed("import capsule_lib") for _ in range(RUNS)]
    heavy = [timed("import capsule_lib; capsule_lib.read_midi; capsule_lib.to_pianoroll") for _ in range(RUNS)]
    b, i, h = statistics.median(base), statistics.median(imp), statistics.median(heavy)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print("| measurement | median (s) | minus bare interpreter (s) |")
    print("|---|---|---|")
    print(f"| bare interpreter start | {b:.3f} | - |")
    print(f"| `import capsule_lib` | {i:.3f} | {i - b:.3f} |")
    print(f"| import + first MIDI/roll use (mido, numpy) | {h:.3f} | {h - b:.3f} |")
    print(f"target: import under 1.5 s -> {'met' if i < 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()

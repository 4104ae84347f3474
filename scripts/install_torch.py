#!/usr/bin/env python3
"""Install the PyTorch build this machine should have, before ``pip install -r requirements.txt``.

Why: on Linux the package index's ``torch`` wheel is the CUDA build -- with its nvidia-* and
triton wheels about 2.7 GB to download -- while the CPU build, about 190 MB, lives on PyTorch's
own index.  The notebooks run on a laptop CPU, so:

* Linux, default: torch from the PyTorch CPU index (https://download.pytorch.org/whl/cpu).
  When that index cannot be reached within a few seconds (a machine that only sees a local
  package mirror, a firewall) fall back to the configured index and say what that means.
* Linux with ``--gpu`` (``make lab GPU=1``): the configured index, i.e. the CUDA build.
* macOS and Windows: the configured index; its wheels there are CPU (and Apple MPS) builds.

The version is the ``torch==`` pin of requirements.txt, so ``pip install -r requirements.txt``
afterwards finds torch satisfied (``2.13.0+cpu`` satisfies ``==2.13.0``) and keeps it.  A torch
already installed at the pin and of the wanted build is left alone; one of the other build is
replaced.

    python scripts/install_torch.py [--gpu] [--index URL] [--dry-run]

``--index`` (or ``$CAPSULE_TORCH_INDEX``) names another index to try first, e.g. a CUDA one
(https://download.pytorch.org/whl/cu126).  ``--dry-run`` prints the pip command instead of
running it.  Exit status: pip's, or 2 with a one-line message for a usage problem.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
PROBE_TIMEOUT_S = 5.0


def torch_pin(requirements: Path = REQUIREMENTS) -> str:
    """The ``torch==X`` version pinned in requirements.txt."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"\s*torch\s*==\s*([0-9][^\s;#]*)\s*(#.*)?", line)
        if match:
            return match.group(1)
    print(f"install_torch: error: no 'torch==VERSION' line in {requirements}", file=sys.stderr)
    raise SystemExit(2)


def reachable(index: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether ``index`` answers for torch within ``timeout`` seconds (pip would wait minutes)."""
    try:
        with urllib.request.urlopen(
            urllib.request.Request(index.rstrip("/") + "/torch/", method="HEAD"), timeout=timeout
        ) as response:
            return response.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


def installed_torch() -> str | None:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def plan(
    pin: str, *, platform: str, gpu: bool, index: str | None, installed: str | None, probe=reachable
) -> tuple[list[str] | None, str]:
    """(pip arguments after ``pip``, or None when nothing is to be done; what and why, for people)."""
    cpu_wanted = platform.startswith("linux") and not gpu
    if installed is not None and installed.split("+")[0] == pin:
        is_cpu_build = installed.endswith("+cpu")
        if not platform.startswith("linux") or is_cpu_build == cpu_wanted:
            return None, f"torch {installed} is installed already"
    spec = f"torch=={pin}"
    args = ["install", "--quiet", spec]
    if installed is not None and installed.split("+")[0] == pin:
        # The other build of the same version counts as satisfied for pip: replace it.
        args = ["install", "--quiet", "--force-reinstall", "--no-deps", spec]
    first = index or (CPU_INDEX if cpu_wanted else None)
    if first is None:
        what = (
            "the GPU (CUDA) build, about 2.7 GB with its CUDA wheels"
            if gpu and platform.startswith("linux")
            else "the build of the configured package index"
        )
        return args, f"installing {spec}: {what}"
    if probe(first):
        return [*args, "--index-url", first], f"installing {spec} from {first}"
    fallback = (
        (
            "the configured package index instead; on Linux that is usually the CUDA build (about 2.7 GB) "
            "unless the index is a mirror serving the CPU build"
        )
        if cpu_wanted
        else "the configured package index instead"
    )
    return args, f"{first} cannot be reached; installing {spec} from {fallback}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="install_torch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="Linux: the CUDA build from the configured index")
    parser.add_argument(
        "--index",
        default=os.environ.get("CAPSULE_TORCH_INDEX") or None,
        metavar="URL",
        help=f"index to try first (default on Linux without --gpu: {CPU_INDEX})",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the pip command, install nothing")
    parser.add_argument("--platform", default=sys.platform, help=argparse.SUPPRESS)  # for the tests
    args = parser.parse_args(argv)

    pip_args, why = plan(
        torch_pin(), platform=args.platform, gpu=args.gpu, index=args.index, installed=installed_torch()
    )
    print(f"install_torch: {why}", flush=True)
    if pip_args is None:
        return 0
    command = [sys.executable, "-m", "pip", *pip_args]
    if args.dry_run:
        print(" ".join(command))
        return 0
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())

"""Bookkeeping the techniques' training jobs share: name checks and provenance for model cards."""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from contextlib import contextmanager

from ..errors import CapsuleError


def check_name_free(registry, name: str, technique: str):
    """The existing card to resume (an unfinished run of ``technique``), or None for a new model.

    Raises :class:`CapsuleError` if ``name`` is a sample model, a finished model or a
    model of another technique.
    """
    try:
        card = registry.get(name)
    except CapsuleError:
        return None
    if card.sample or card.status == "complete" or card.technique != technique:
        raise CapsuleError(f"a model named {name} already exists; choose another name")
    return card


def provenance(device: str, fallback: str) -> dict:
    """How and where a model was trained, for its card (``fallback``: the call when not run as ``capsule``)."""
    import torch

    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    command = "capsule " + " ".join(sys.argv[1:]) if prog == "capsule" else fallback
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory = f", {mem:.0f} GiB memory"
    except (ValueError, OSError, AttributeError):
        memory = ""
    return {
        "command": command,
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores{memory}",
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def check_seed(seed, maximum: int) -> int:
    """``seed`` as an int in 0..``maximum``, or a fresh random one for None (to be recorded)."""
    from numbers import Integral

    import numpy as np

    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] & maximum)
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed <= maximum:
        raise CapsuleError(f"seed must be None or a whole number 0-{maximum}, got {seed!r}")
    return int(seed)


#: A technique's progress bar appears only once a call has run this long (quick calls show nothing).
PROGRESS_DELAY_S = 2.0


def progress_bar(total: float, desc: str, unit: str, progress: bool | None):
    """A tqdm bar over ``total`` units that appears after :data:`PROGRESS_DELAY_S` seconds.

    ``progress``: None shows it where someone watches (a terminal, a notebook) and never in
    a pipe or a log; True always; False never.
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, delay=PROGRESS_DELAY_S, leave=False,
                disable=None if progress is None else not progress)


@contextmanager
def working_bar(desc: str, progress: bool | None):
    """A progress bar for one long step that cannot report progress itself (a batched network
    pass): it appears after :data:`PROGRESS_DELAY_S`, shows the time elapsed while the step
    runs (a thread ticks it) and fills when the step is done."""
    bar = progress_bar(1, desc, "step", progress)
    stop = threading.Event()

    def tick():
        while not stop.wait(0.25):
            bar.update(0)  # tqdm draws (once past its delay) only when updated

    ticker = threading.Thread(target=tick, name="progress-ticker", daemon=True)
    ticker.start()
    try:
        yield
        stop.set()
        ticker.join()
        bar.update(1)
    finally:
        stop.set()
        ticker.join()
        bar.close()


def check_flags(**flags) -> None:
    """Refuse any of ``flags`` (``save=...``, ``harmonize=...``) that is not True or False.

    One check for every technique: ``save="yes"`` must not quietly count as true.
    """
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise CapsuleError(f"{name} must be True or False, got {value!r}")


def finish_inference(result, technique: str, net, parameters: dict, *, save: bool, parent, title,
                     return_composition: bool):
    """Save ``result`` as a composition of ``technique`` (model: the network's ``name``) when
    ``save``; return ``(result, composition)`` if ``return_composition`` else ``result``."""
    composition = None
    if save:
        from ..store import save_composition

        composition = save_composition(result, technique, title=title, model=getattr(net, "name", "custom"),
                                       parameters=parameters, parent=parent)
    return (result, composition) if return_composition else result


@contextmanager
def training_run(registry, existing, name: str, technique: str, *, algorithm: str, dataset: str,
                 hyperparameters: dict, description: str):
    """Register ``name`` as training (a new card, or ``existing`` resumed) and yield its run folder,
    ``$CAPSULE_HOME/runs/<technique>/<name>``; if the body raises, the model is marked failed."""
    from ..paths import capsule_home

    if existing is None:
        registry.create(name, technique, algorithm=algorithm, dataset=dataset, hyperparameters=hyperparameters,
                        description=description)
    else:
        registry.update(name, status="training", hyperparameters=hyperparameters, dataset=dataset)
    try:
        yield capsule_home() / "runs" / technique / name
    except BaseException:
        try:
            registry.update(name, status="failed")
        finally:
            raise


def text_table(rows: list[list], header: list[str]) -> list[str]:
    """``rows`` under ``header`` as lines of left-aligned columns two spaces apart (a terminal's table)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [header, *rows]]

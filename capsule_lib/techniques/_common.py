"""What every technique does the same way, written once.

Running (``enhance``, ``extend``, ``accompany``): :func:`start_inference` checks the
arguments every run takes and finds the melody, :func:`resolve_model` turns a model name
into a network, :func:`finish_inference` saves the result; progress bars.  Training:
:func:`check_name_free`, :func:`model_config_of`, :func:`train_and_register` (register, train with the shared
:class:`~capsule_lib.train.Trainer`, save the weights, evaluate, record provenance, write
the card -- or mark the model failed), :func:`provenance`.  Model cards: :func:`write_history`
(``history.json`` and the loss plot), :func:`provenance_lines`, :func:`card_number`.
Command-line options: :func:`train_options`, :func:`evaluate_options`.  Reports: :func:`text_table`.

Nothing here imports torch at import time: the functions that need it import it when called.
"""

from __future__ import annotations

import functools
import io
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from typing import Any

from ..errors import CapsuleError
from . import spec


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

    return _vanishing(tqdm)(
        total=total,
        desc=desc,
        unit=unit,
        delay=PROGRESS_DELAY_S,
        leave=False,
        disable=None if progress is None else not progress,
    )


@functools.cache
def _vanishing(tqdm_class: type) -> type:
    """``tqdm_class``, or in a notebook a bar that leaves nothing behind once it is done.

    tqdm's notebook bar with ``leave=False`` hides its widget when it closes, but the saved
    notebook keeps the widget's text ("extending: 100%|###|...") -- what a teacher sees who runs
    the capsule with papermill.  This bar shows itself through a display handle and, when it
    finishes, replaces that output with nothing.  A bar stopped early (an error) stays.
    """
    try:
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:  # no ipywidgets: tqdm.auto is the text bar
        return tqdm_class
    if not issubclass(tqdm_class, notebook_tqdm):
        return tqdm_class

    from IPython.display import display

    class VanishingBar(tqdm_class):
        _handle = None

        def display(self, *args, check_delay: bool = True, **kwargs):
            if check_delay and self.delay > 0 and not self.displayed:  # past its delay: show it, keeping a handle
                self._handle = display(self.container, display_id=True)
                self.displayed = True
            return super().display(*args, check_delay=check_delay, **kwargs)

        def close(self):
            finished = not (self.total and self.n < self.total)
            super().close()
            if self._handle is not None and not self.leave and finished:
                self._handle.update({"text/plain": ""}, raw=True)
                self._handle = None

    return VanishingBar


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


def start_inference(verb: str, score, seed, max_seed: int, track, progress, **flags) -> tuple:
    """The checks every technique's run makes once its own parameters are checked, in one order:
    ``seed`` (None draws one), the True/False ``flags`` (``save=...``), ``progress``, then the
    melody track ``track`` of ``score`` (it must exist and not be a drum track).

    Returns ``(seed used, melody track index, melody track)``; ``verb`` (``"enhance"``) names
    the call in the errors.
    """
    used_seed = check_seed(seed, max_seed)
    check_flags(**flags)
    if progress is not None:
        check_flags(progress=progress)
    if not score.tracks:
        raise CapsuleError(f"the score has no tracks; give {verb} a melody")
    ti = score.track_index(track)
    melody = score.tracks[ti]
    if melody.is_drum:
        raise CapsuleError(f"track {melody.name or ti!r} is a drum track; {verb} needs a melody")
    return used_seed, ti, melody


def resolve_model(model, technique: str, what: str, *, accepts: type | None = None, needs: str | None = None):
    """The network ``model`` names (a registered model of ``technique``, loaded by the registry's
    ``load``) or is (an ``accepts`` -- by default a torch module -- with the attribute ``needs`` if
    given); ``what`` names the network in the error."""
    if isinstance(model, str):
        return spec.technique(technique).load(model)
    if accepts is None:
        from torch import nn  # torch only once a model is resolved: importing a sampler stays light

        accepts = nn.Module
    if isinstance(model, accepts) and (needs is None or hasattr(model, needs)):
        return model
    raise CapsuleError(f"model must be a model name or {what}, not {type(model).__name__}")


def count_parameters(model) -> int:
    """The number of weights of a torch module."""
    return sum(p.numel() for p in model.parameters())


def finish_inference(
    result, technique: str, net, parameters: dict, *, save: bool, parent, title, return_composition: bool
):
    """Save ``result`` as a composition of ``technique`` (model: the network's ``name``) when
    ``save``; return ``(result, composition)`` if ``return_composition`` else ``result``."""
    composition = None
    if save:
        from ..store import save_composition

        composition = save_composition(
            result, technique, title=title, model=getattr(net, "name", "custom"), parameters=parameters, parent=parent
        )
    return (result, composition) if return_composition else result


def model_config_of(model_config, cls):
    """A trainer's ``model_config`` argument as a ``cls``: a mapping (a card's ``model`` entry) is
    read with ``cls.from_dict``, None is the default configuration ``cls()``."""
    if isinstance(model_config, Mapping):
        return cls.from_dict(dict(model_config))
    return model_config or cls()


@contextmanager
def training_run(
    registry,
    existing,
    name: str,
    technique: str,
    *,
    algorithm: str,
    dataset: str,
    hyperparameters: dict,
    description: str,
):
    """Register ``name`` as training (a new card, or ``existing`` resumed) and yield its run folder,
    ``$CAPSULE_HOME/runs/<technique>/<name>``; if the body raises, the model is marked failed."""
    from ..paths import capsule_home

    if existing is None:
        registry.create(
            name,
            technique,
            algorithm=algorithm,
            dataset=dataset,
            hyperparameters=hyperparameters,
            description=description,
        )
    else:
        registry.update(name, status="training", hyperparameters=hyperparameters, dataset=dataset)
    try:
        yield capsule_home() / "runs" / technique / name
    except BaseException:
        try:
            registry.update(name, status="failed")
        finally:
            raise


def train_and_register(
    registry,
    existing,
    name: str,
    technique: str,
    *,
    make_task: Callable,
    config,
    module: str,
    card: dict,
    weights_metadata: Callable[[list], dict],
    evaluation: tuple | None,
    write_card: Callable,
    on_epoch_end=None,
    metrics: Callable | None = None,
):
    """A technique's whole training job, after its arguments and data are ready; returns the finished card.

    Registers ``name`` (``card``: its ``algorithm``, ``dataset``, ``hyperparameters`` and
    ``description``; ``existing``: an unfinished card to resume, see :func:`check_name_free`),
    trains ``make_task()`` with :class:`~capsule_lib.train.Trainer` and ``config`` (checkpoints in
    the run folder, so an interrupted run resumes), saves the weights of the trained module
    ``module`` with ``weights_metadata(history)``, stores its metrics -- ``metrics(history,
    trainer.modules)``, by default the final training and validation losses and the parameter
    count -- and, for ``evaluation = (key, evaluate)``, ``evaluate(net)`` under ``key``, records
    the provenance (the command, or else the registry's training function of ``technique``),
    marks the model complete and calls ``write_card(card, history, run_folder)``.  If anything
    fails the model is marked failed.
    """
    from ..train import Trainer  # torch, loaded by a training job only

    package, _, function = spec.technique(technique).train_ref.partition(":")
    call = f"{package.rsplit('.', 1)[0]}.{function}(...)"  # capsule_lib.techniques.arcnn.train_arcnn(...)
    hyper = card["hyperparameters"]
    with training_run(registry, existing, name, technique, **card) as run_dir:
        trainer = Trainer(make_task(), config, run_dir, on_epoch_end=on_epoch_end)
        started = time.perf_counter()
        history = trainer.fit(resume=True)
        # Wall-clock of the epochs actually run (a resumed run adds the earlier epochs' time).
        train_seconds = float(sum(rec.get("seconds", 0.0) for rec in history)) or time.perf_counter() - started
        net = trainer.modules[module].to("cpu").eval()
        registry.save_weights(name, net.state_dict(), metadata=weights_metadata(history))
        results = (metrics or _loss_metrics(module))(history, trainer.modules)
        if evaluation is not None:
            key, evaluate = evaluation
            net.name = name
            results[key] = evaluate(net)
        hyper["provenance"] = provenance(str(trainer.device), call)
        finished = registry.update(
            name, status="complete", metrics=results, training_time_s=round(train_seconds, 1), hyperparameters=hyper
        )
        write_card(finished, list(history), run_dir)
        return registry.get(name)


def _loss_metrics(module: str) -> Callable:
    """The metrics of a model trained on one loss: the last epoch's training and validation loss,
    and the parameter count of ``module``."""

    def metrics(history: list, modules: dict) -> dict:
        out: dict[str, Any] = {"final_loss": history[-1].get("loss")}
        if "val_loss" in history[-1]:
            out["final_val_loss"] = history[-1]["val_loss"]
        out["parameters"] = count_parameters(modules[module])
        return out

    return metrics


def card_number(x) -> str:
    """A metric as a model card writes it: four decimals, or ``n/a`` when it was not measured."""
    return f"{x:.4f}" if isinstance(x, (int, float)) else "n/a"


def write_history(card, history, draw: Callable) -> bool:
    """Write ``history.json`` and ``loss.png`` (the figure ``draw(history)`` returns) into the card's
    folder; False when there is no plot (matplotlib missing): the card then shows none."""
    from ..atomic import atomic_write_bytes, atomic_write_text

    history = list(history)
    atomic_write_text(card.path / "history.json", json.dumps(history, indent=1) + "\n")
    try:
        fig = draw(history)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        atomic_write_bytes(card.path / "loss.png", buf.getvalue())
    except (ImportError, CapsuleError):
        return False
    return True


def provenance_lines(card, *notes: str) -> list[str]:
    """The model card's "Provenance" section (none for a card without provenance), then ``notes``."""
    run = card.hyperparameters.get("provenance")
    if not run:
        return []
    return [
        "",
        "## Provenance",
        "",
        f"- Produced by: `{run['command']}`",
        f"- Machine: {run['machine']}; device {run['device']}; torch {run['torch']}, Python {run['python']}.",
        f"- Finished: {run['finished']}.",
        *notes,
    ]


def train_options(args, passed: tuple[str, ...] = (), *, optional=("epochs", "lr", "batch_size"), **own) -> dict:
    """``capsule train``'s options every trainer takes, as its keyword arguments: ``seed``, ``limit``,
    ``progress`` (not ``--quiet``) and ``evaluate`` (not ``--no-eval``); then the technique's options
    named in ``passed`` (under their own names) and ``own`` (renamed ones); last those named in
    ``optional``, only when given (one not given keeps the trainer's default)."""
    given = {k: getattr(args, k) for k in optional if getattr(args, k) is not None}
    common = {"seed": args.seed, "limit": args.limit, "progress": not args.quiet, "evaluate": not args.no_eval}
    return {**common, **{k: getattr(args, k) for k in passed}, **own, **given}


def evaluate_options(args, **own) -> dict:
    """``capsule evaluate``'s options every evaluation takes (``seed``, ``limit``, ``progress``: not
    ``--quiet``) as its keyword arguments, with the technique's ``own``."""
    return {"seed": args.seed, "limit": args.limit, "progress": not args.quiet, **own}


def text_table(rows: list[list], header: list[str]) -> list[str]:
    """``rows`` under ``header`` as lines of left-aligned columns two spaces apart (a terminal's table)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [header, *rows]]

"""The technique registry: what each technique asks of its user and where its functions live, said once.

A technique's folder holds its :class:`TechniqueSpec` in ``params.py`` (each parameter's
console label, kind, default, range and help) and its :class:`Technique` record in
``technique.py`` (the spec, the command-line verb, and references to its run, load, train
and evaluate functions and to its report).  :data:`capsule_lib.technique_registry.TECHNIQUES` lists the folders.
Everything that shows, checks or runs a technique reads it from there -- the sampler's
defaults and range checks, the command line's subcommands and defaults, the technique
panels and the studio -- so a default changed in one place changes everywhere, and a new
technique is one new folder plus one name in that registry.  The records are plain
data: the functions are named as ``"module:function"`` strings and imported on first
call, so reading the registry loads no torch.

>>> from capsule_lib.techniques.spec import technique_spec
>>> spec = technique_spec("arcnn")
>>> spec["creative_risk"].label, spec["creative_risk"].default
('Creative risk', 1.0)
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

from .. import technique_registry
from ..errors import CapsuleError

__all__ = ["Parameter", "TechniqueSpec", "Technique", "technique", "technique_spec", "technique_names", "KINDS"]

#: The kinds of parameter a widget knows how to show.
KINDS = ("int", "float", "choice", "bool")
#: The registry: one folder ``techniques/<name>/`` per name, in the console's order.


@dataclass(frozen=True)
class Parameter:
    """One parameter of a technique, as the console showed it and the library checks it.

    Attributes
    ----------
    name : str
        The library's keyword argument (``creative_risk``).
    label : str
        The console's name for it (``"Creative risk"``); short enough to show in full.
    kind : {"int", "float", "choice", "bool"}
    default
        The value used when none is given (library, command line and widgets alike).
    low, high : float, optional
        The range the library accepts (numbers only).
    low_inclusive : bool
        False when ``low`` itself is refused (a duration must be more than 0).
    step : float, optional
        The slider's step.
    slider : (low, high), optional
        A narrower range for the slider than the library accepts (the console's range);
        values outside it stay possible from code.
    choices : tuple of (label, value)
        For ``kind="choice"``.
    help : str
        One sentence for a tooltip or a ``--help`` line.
    unit : str
        Shown after the value (``"%"``, ``"s"``).
    """

    name: str
    label: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    step: float | None = None
    slider: tuple | None = None
    choices: tuple = ()
    help: str = ""
    unit: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind in ("int", "float") and (self.low is None or self.high is None):
            raise ValueError(f"parameter {self.name}: a number needs low and high")
        if self.kind == "choice" and self.default not in self.values:
            raise ValueError(f"parameter {self.name}: default {self.default!r} is not a choice")
        if self.kind in ("int", "float"):
            self.check(self.default)

    @property
    def values(self) -> tuple:
        """The allowed values of a choice."""
        return tuple(value for _, value in self.choices)

    @property
    def slider_range(self) -> tuple:
        """``(low, high)`` of a slider: :attr:`slider`, else the accepted range."""
        return tuple(self.slider) if self.slider is not None else (self.low, self.high)

    def bounds(self) -> str:
        """The accepted range in words (``"0-4"``, ``"more than 0 and at most 60"``)."""
        if self.kind == "choice":
            return ", ".join(str(v) for v in self.values)
        if self.kind == "bool":
            return "True or False"
        return (
            f"{self.low:g}-{self.high:g}" if self.low_inclusive else f"more than {self.low:g} and at most {self.high:g}"
        )

    def check(self, value):
        """``value`` as this parameter's type, or :class:`CapsuleError` naming the range."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise CapsuleError(f"{self.name} must be True or False, got {value!r}")
            return value
        if self.kind == "choice":
            if value not in self.values:
                raise CapsuleError(f"{self.name} must be one of {self.bounds()}, got {value!r}")
            return value
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise CapsuleError(f"{self.name} must be a whole number in {self.bounds()}, got {value!r}")
            value = int(value)
        else:
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
                raise CapsuleError(f"{self.name} must be a number in {self.bounds()}, got {value!r}")
            value = float(value)
        if not (self.low <= value if self.low_inclusive else self.low < value) or value > self.high:
            raise CapsuleError(f"{self.name} {value:g} is outside {self.bounds()}")
        return value

    def to_dict(self) -> dict:
        """Plain JSON data for a widget (``min``/``max`` are the slider's range)."""
        out = {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "default": self.default,
            "help": self.help,
            "unit": self.unit,
        }
        if self.kind in ("int", "float"):
            lo, hi = self.slider_range
            out.update(min=lo, max=hi, step=self.step if self.step is not None else (1 if self.kind == "int" else 0.1))
        if self.kind == "choice":
            out["choices"] = [[label, value] for label, value in self.choices]
        return out


@dataclass(frozen=True)
class TechniqueSpec:
    """A technique as the studio presents it: names, the run button's verb and its parameters.

    Attributes
    ----------
    name : str
        ``"arcnn"``, ``"gan"``, ``"transformer"`` (the composition's ``technique``).
    title : str
        How the console named it (``"AR-CNN"``).
    verb : str
        The run button (``"Enhance"``; again: ``"Enhance again"``).
    doing : str
        What the busy line says while it runs (``"Enhancing"``).
    default_model : str
        The sample model used when none is chosen.
    summary : str
        One sentence for a beginner.
    parameters : tuple of Parameter
    """

    name: str
    title: str
    verb: str
    doing: str
    default_model: str
    summary: str
    parameters: tuple = field(default_factory=tuple)

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return any(p.name == name for p in self.parameters)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def defaults(self) -> dict:
        """``{name: default}`` of every parameter."""
        return {p.name: p.default for p in self.parameters}

    def check(self, values: dict) -> dict:
        """Every parameter checked (missing ones take their default); unknown names are refused."""
        unknown = sorted(set(values) - set(self.names))
        if unknown:
            raise CapsuleError(f"{self.title} has no parameter {', '.join(unknown)} (it has {', '.join(self.names)})")
        return {p.name: p.check(values.get(p.name, p.default)) for p in self.parameters}

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "verb": self.verb,
            "doing": self.doing,
            "default_model": self.default_model,
            "summary": self.summary,
            "parameters": [p.to_dict() for p in self.parameters],
        }


#: A function named by ``"package.module:function"`` (imported on first call) or the function itself.
FunctionRef = str | Callable


class _Imported:
    """A :class:`Technique` attribute ``<role>`` that reads as the function its field ``<role>_ref``
    names (imported then), or :class:`CapsuleError` when the technique has none."""

    def __set_name__(self, owner, name: str):
        self.role = name

    def __get__(self, record, owner=None) -> Callable:
        if record is None:
            return self
        ref = getattr(record, f"{self.role}_ref")
        if ref is None:
            raise CapsuleError(f"the {record.name} technique has no {self.role} function")
        if callable(ref):
            return ref
        module, _, name = ref.partition(":")
        return getattr(importlib.import_module(module), name)


def _no_note(result) -> str:
    return ""


@dataclass(frozen=True)
class Technique:
    """One technique as the command line, the panels and the studio use it.

    The library functions are named, not imported (``"capsule_lib.techniques.arcnn.sample:enhance"``),
    so that reading a record loads no torch; the attributes ``run``, ``load``, ``train`` and
    ``evaluate`` are those functions, imported on first use.

    Attributes
    ----------
    spec : TechniqueSpec
        Its parameters with their console labels, defaults and ranges.
    command : str
        The command-line subcommand that runs it (``"enhance"``).
    help : str
        That subcommand's line in ``capsule --help``.
    model_help : str
        The help of its ``--model`` option (default: none).
    run_ref, load_ref, train_ref, evaluate_ref : str or callable
        ``run(score, model=..., seed=..., parent=..., title=..., return_composition=..., **parameters)``;
        ``load(model_name)``; ``train(name, **train_arguments(args))`` -> ModelCard;
        ``evaluate(name, **evaluate_arguments(args))`` -> a JSON-able result.  ``train_ref`` and
        ``evaluate_ref`` may be None (no trainer, no evaluation).
    report : callable
        ``report(result) -> list[str]``: the lines ``capsule evaluate`` prints for a result.
    add_options : callable, optional
        ``add_options(parser)`` adds the run subcommand's options; None: one ``--<parameter-name>`` per
        parameter of :attr:`spec`, with its default and range.
    run_arguments : callable, optional
        ``run_arguments(args) -> dict``: the parsed options as ``run``'s keyword arguments;
        None: each parameter of :attr:`spec` under its own name (as the default options give them).
    train_arguments, evaluate_arguments : callable
        The ``capsule train`` / ``capsule evaluate`` options as keyword arguments.
    result_note : callable
        ``result_note(score) -> str``: words the run command adds after the composition id.
    melody_only : bool
        It reads the melody (the first track) alone and writes the rest, as the GAN's accompaniment:
        the studio hands it the melody, so running it again replaces its parts instead of stacking.
    """

    spec: TechniqueSpec
    command: str
    help: str
    run_ref: FunctionRef
    load_ref: FunctionRef
    train_ref: FunctionRef | None = None
    evaluate_ref: FunctionRef | None = None
    model_help: str | None = None
    report: Callable[[Any], list] = lambda result: []
    add_options: Callable | None = None
    run_arguments: Callable | None = None
    train_arguments: Callable = lambda args: {}
    evaluate_arguments: Callable = lambda args: {}
    result_note: Callable[[Any], str] = _no_note
    melody_only: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    # ``record.run`` is the function ``record.run_ref`` names, imported on first use.
    run = _Imported()
    load = _Imported()
    train = _Imported()
    evaluate = _Imported()


def technique_names() -> tuple[str, ...]:
    """The techniques, in the console's order (:data:`capsule_lib.technique_registry.TECHNIQUES`)."""
    return technique_registry.TECHNIQUES


def technique(name: str) -> Technique:
    """The :class:`Technique` record of ``name`` (read from ``techniques/<name>/technique.py``)."""
    if name not in technique_names():
        raise CapsuleError(f"no technique {name!r} (there are {', '.join(technique_names())})")
    return importlib.import_module(f"{__package__}.{name}.technique").TECHNIQUE


def technique_spec(name: str) -> TechniqueSpec:
    """The :class:`TechniqueSpec` of ``name`` (its record's, from ``techniques/<name>/params.py``)."""
    return technique(name).spec

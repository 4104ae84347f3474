"""A technique's parameters as a form: the console's labels, ranges and defaults, read from its definition.

:class:`ParameterForm` draws one native, labelled control per
:class:`~capsule_lib.techniques.spec.Parameter` (a slider with its value for numbers, a
list for choices, a tick box for switches) on one grid, so every control starts at the
same place and no label is cut.  Native controls are reachable with Tab and named for
screen readers by their ``<label>``.  The values live in Python and are checked against
the definition; the browser only shows them and reports what the user chose.
"""

from __future__ import annotations

from collections.abc import Sequence

import anywidget
import traitlets as t

from ..errors import CapsuleError
from ..techniques.spec import Parameter, TechniqueSpec, technique_spec
from .theme import STATIC, themed_css

__all__ = ["ParameterForm"]


class ParameterForm(anywidget.AnyWidget):
    """A form of parameters (a technique's, plus any the caller adds, such as the model).

    Parameters
    ----------
    parameters : TechniqueSpec, str or sequence of Parameter
        A technique (``"arcnn"``), its definition, or the rows to show.
    values : dict, optional
        Starting values (each parameter's default otherwise).
    title : str, optional
        The group's name for screen readers (default "<technique> parameters").

    Attributes
    ----------
    values : dict
        ``{name: value}`` of every row, each checked against its :class:`Parameter`.
    """

    _esm = STATIC / "form.js"
    _css = themed_css()

    parameters = t.List(t.Dict(), help="each row's definition, as plain data").tag(sync=True)
    values = t.Dict(help="{name: value}").tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    disabled = t.Bool(False).tag(sync=True)

    def __init__(
        self,
        parameters: TechniqueSpec | str | Sequence[Parameter],
        values: dict | None = None,
        title: str | None = None,
        **kwargs,
    ):
        if isinstance(parameters, str):
            parameters = technique_spec(parameters)
        if isinstance(parameters, TechniqueSpec):
            title = title if title is not None else f"{parameters.title} parameters"
            parameters = parameters.parameters
        self._params: tuple[Parameter, ...] = tuple(parameters)
        super().__init__(parameters=[p.to_dict() for p in self._params], title=title or "Parameters", **kwargs)
        self.values = {**self.defaults(), **(values or {})}

    @property
    def rows(self) -> tuple[Parameter, ...]:
        """The :class:`Parameter` of each row, in order."""
        return self._params

    def defaults(self) -> dict:
        return {p.name: p.default for p in self._params}

    def set_rows(self, parameters: Sequence[Parameter], values: dict | None = None) -> None:
        """Show other rows; a value the old rows had and the new row accepts is kept."""
        new = tuple(parameters)
        kept = {}
        for p in new:
            if p.name in self.values:
                try:
                    kept[p.name] = p.check(self.values[p.name])
                except CapsuleError:
                    pass
        with self.hold_sync():
            self._params = new
            self.values = {**{p.name: p.default for p in new}, **kept, **(values or {})}
            self.parameters = [p.to_dict() for p in new]

    @t.validate("values")
    def _valid_values(self, proposal):
        values = dict(proposal["value"])
        names = [p.name for p in self._params]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise CapsuleError(f"no parameter {', '.join(unknown)} here (there are {', '.join(names)})")
        out = {}
        for p in self._params:
            v = values.get(p.name, p.default)
            if p.kind == "int" and isinstance(v, float) and v.is_integer():
                v = int(v)  # a slider reports 12.0 for 12
            out[p.name] = p.check(v)
        return out

    def __getitem__(self, name: str):
        return self.values[name]

    def __setitem__(self, name: str, value) -> None:
        self.values = {**self.values, name: value}

    def reset(self) -> None:
        """Every row back to its default."""
        self.values = self.defaults()

    def __repr__(self) -> str:
        return f"ParameterForm({self.title!r}, {self.values})"

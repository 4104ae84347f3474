"""Technique panels: a technique's parameters, read from its definition, wired to the library.

A panel holds an input score and shows one aligned form (:class:`~capsule_lib.widgets.form.ParameterForm`):
the model (sample and custom models of that technique) and the technique's parameters with the
console's names, ranges and defaults, as :mod:`capsule_lib.techniques.spec` defines them -- never
written again here.  Its run button ("Enhance again" for AR-CNN, "Accompany again" for the GAN,
"Extend again" for the Transformer) calls the library function, which saves a new composition
whose parent is the previous result (or the input's composition), so the history of a session is
kept; the result line names it (title, technique, model, parent).  The work is done by
:meth:`_TechniquePanel.run`, which tests and scripts can call without clicking.

:func:`technique_panel` picks the panel of a technique by name: every technique of the
registry (:data:`~capsule_lib.technique_registry.TECHNIQUES`) has one -- its own class where it
draws or runs differently (the GAN's instruments, the Transformer's extension line), else
the plain panel of its parameters, which calls the technique's ``run``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import CapsuleError
from ..score import Score
from ..techniques.spec import Parameter, technique, technique_names, technique_spec

__all__ = [
    "ArcnnPanel",
    "GanPanel",
    "TransformerPanel",
    "arcnn_panel",
    "gan_panel",
    "transformer_panel",
    "technique_panel",
    "model_picker",
    "model_choices",
    "model_parameter",
    "available_techniques",
    "instrument_options",
    "instrument_parameter",
]


def available_techniques() -> list[str]:
    """Techniques that have a panel: every technique of the registry."""
    return list(technique_names())


def model_choices(technique: str, registry=None) -> list[tuple[str, str]]:
    """``[("arcnn-bach (sample)", "arcnn-bach"), ...]``: the finished models of ``technique``, sample models first."""
    from ..models import ModelRegistry

    registry = registry if registry is not None else ModelRegistry()
    cards = [c for c in registry.list() if c.technique == technique and c.status == "complete"]
    if not cards:
        raise CapsuleError(f"no finished {technique} model: train one or import one first")
    cards.sort(key=lambda c: (not c.sample, c.name))
    return [(f"{c.name} ({'sample' if c.sample else 'custom'})", c.name) for c in cards]


def model_parameter(technique: str, value: str | None = None, registry=None) -> Parameter:
    """The model choice as a form row ("Model": the finished sample and custom models of ``technique``)."""
    options = model_choices(technique, registry)
    names = [name for _, name in options]
    if value is not None and value not in names:
        raise CapsuleError(f"no finished {technique} model named {value}")
    default = technique_spec(technique).default_model
    return Parameter(
        "model",
        "Model",
        "choice",
        value or (default if default in names else names[0]),
        choices=tuple(options),
        help="Sample models ship with the project; custom models are ones you trained.",
    )


def model_picker(technique: str, value: str | None = None, registry=None):
    """A dropdown of the finished sample and custom models of ``technique`` (sample models first)."""
    import ipywidgets as w

    row = model_parameter(technique, value, registry)
    return w.Dropdown(
        options=list(row.choices), value=row.default, description="Model", style={"description_width": "initial"}
    )


class _TechniquePanel:
    """Controls for one input melody; each run saves a composition and becomes the next input.

    The controls are the technique's own definition (:mod:`capsule_lib.techniques.spec`):
    the console's labels, ranges and defaults, on one aligned form with the model first.

    Parameters
    ----------
    score : Score
        The melody to work on.
    parent : str, optional
        The composition ``score`` came from (recorded as the first result's parent).
    model : str, optional
        The model to pre-select (default: the technique's sample model).
    chain : bool
        If True (default), each press works on the previous result ("... again");
        otherwise every press starts again from ``score``.
    seed : int, optional
        First seed; each run uses the next one, so runs differ but can be reproduced.
    on_result : callable, optional
        Called as ``on_result(score, composition)`` after each run.
    show : bool
        Draw the before/after piano rolls and the audio player after each run.
    """

    technique = ""
    icon = "magic"

    def __init__(
        self,
        score: Score,
        parent: str | None = None,
        *,
        model: str | None = None,
        chain: bool = True,
        seed: int | None = 0,
        on_result: Callable | None = None,
        show: bool = True,
        registry=None,
    ):
        import ipywidgets as w

        from .form import ParameterForm
        from .theme import ROOT_CLASS

        if not isinstance(score, Score):
            raise CapsuleError(f"the {self.technique} panel needs a Score, not {type(score).__name__}")
        self.spec = technique_spec(self.technique)
        self.input, self.current, self.parent = score, score, parent
        self.chain, self.seed, self.on_result, self.show = chain, seed, on_result, show
        self.results: list = []  # (score, composition) per run
        self.registry = registry
        self.form = ParameterForm(
            [model_parameter(self.technique, model, registry), *self.spec.parameters, *self._extra_rows(model)],
            title=f"{self.spec.title} parameters",
        )
        self.form.observe(self._form_changed, names="values")
        verb = f"{self.spec.verb} again" if chain else self.spec.verb
        self.button = w.Button(
            description=verb, button_style="primary", icon=self.icon, tooltip=verb, layout=w.Layout(width="auto")
        )
        self.status = w.HTML("", layout=w.Layout(flex="1 1 auto"))
        self.output = w.Output()
        self.button.on_click(lambda _: self._clicked())
        title = w.HTML(f"<div class='cc-heading'>{self.spec.title}</div><div class='cc-note'>{self.spec.summary}</div>")
        self.widget = w.VBox([title, self.form, w.HBox([self.button, self.status]), self.output])
        self.widget.add_class(ROOT_CLASS)
        self.widget.add_class("cc-card")

    @property
    def model(self) -> str:
        """The chosen model's name."""
        return self.form["model"]

    def _extra_rows(self, model: str | None) -> list:
        return []

    def _form_changed(self, change) -> None:
        pass

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    @property
    def parameters(self) -> dict:
        """The current values of the technique's parameters, under the library's names."""
        return {name: self.form[name] for name in self.spec.names}

    def _call(self, source: Score, seed, parent, title):
        """The technique's ``run`` on ``source`` with the form's parameters, saved as a composition."""
        return technique(self.technique).run(
            source, model=self.model, seed=seed, parent=parent, title=title, return_composition=True, **self.parameters
        )

    def run(self):
        """Run the technique once with the current settings; returns ``(score, composition)``."""
        from ..store import CompositionStore
        from .describe import composition_line, result_title

        source = self.current if self.chain else self.input
        parent = self.results[-1][1].id if (self.chain and self.results) else self.parent
        seed = None if self.seed is None else self.seed + len(self.results)
        base = self.input.title or "melody"
        result, comp = self._call(source, seed, parent, result_title(base, self.technique, len(self.results) + 1))
        self.results.append((result, comp))
        self.current = result
        added = sum(len(t.notes) for t in result.tracks) - sum(len(t.notes) for t in source.tracks)
        parent_comp = None
        if comp.parent:
            try:
                parent_comp = CompositionStore().get(comp.parent)
            except CapsuleError:
                parent_comp = None
        self.status.value = (
            f"<span class='cc-result'>Saved {composition_line(comp, parent_comp, as_html=True)}"
            f" <span class='cc-muted'>(run {len(self.results)}, {added:+d} notes)</span></span>"
        )
        if self.on_result is not None:
            self.on_result(result, comp)
        return result, comp

    def _clicked(self):
        import html

        with self.output:
            self.output.clear_output(wait=True)
            try:
                before = self.current if self.chain else self.input
                result, _ = self.run()
            except CapsuleError as exc:
                self.status.value = f"<span class='cc-error' role='alert'>{html.escape(str(exc))}</span>"
                return
            if self.show:
                self._draw(before, result)

    def _draw(self, before: Score, after: Score):
        import matplotlib.pyplot as plt
        from IPython.display import display

        from ..audio import play
        from ..plot import compare_pianorolls

        compare_pianorolls(before, after, titles=("before", f"after run {len(self.results)}"))
        plt.show()
        display(play(after))


class ArcnnPanel(_TechniquePanel):
    """AR-CNN controls (the console's names and ranges, and Harmonize) with "Enhance again"."""

    technique, icon = "arcnn", "magic"


def instrument_options() -> list[tuple[str, int]]:
    """``("0 Acoustic Grand Piano", 0)`` ... for the 128 General MIDI programs."""
    import pretty_midi

    return [(f"{p} {pretty_midi.program_to_instrument_name(p)}", p) for p in range(128)]


def instrument_parameter(track: str, program: int) -> Parameter:
    """A form row choosing the General MIDI instrument of ``track`` (named ``instrument:<track>``)."""
    return Parameter(
        f"instrument:{track}",
        track,
        "choice",
        int(program),
        choices=tuple(instrument_options()),
        help=f"The General MIDI instrument that plays the {track} track.",
    )


class GanPanel(_TechniquePanel):
    """GAN controls: the model (one per genre), an instrument per accompaniment track, "Accompany again".

    Each press writes a new accompaniment for the melody (track 0) with the next seed,
    applies the chosen instruments (drum tracks keep theirs) and saves the composition.
    Choosing another model resets the instrument choices to that genre's defaults.
    """

    technique, icon = "gan", "music"

    def _extra_rows(self, model):
        return self._instrument_rows(model or model_parameter("gan", None, self.registry).default)

    def _instrument_rows(self, model: str) -> list:
        from ..techniques.gan.sample import load_gan

        spec = load_gan(model).spec
        return [
            instrument_parameter(name, program)
            for name, program, drum in zip(spec.tracks[1:], spec.programs[1:], spec.is_drum[1:])
            if not drum
        ]

    def _form_changed(self, change) -> None:
        if change["old"].get("model") != change["new"].get("model"):
            rows = [r for r in self.form.rows if not r.name.startswith("instrument:")]
            self.form.set_rows(
                [*rows, *self._instrument_rows(change["new"]["model"])], values={"model": change["new"]["model"]}
            )

    @property
    def instruments(self) -> dict[str, int]:
        """``{track: program}`` chosen for the accompaniment tracks (drum tracks are not listed)."""
        return {k.split(":", 1)[1]: v for k, v in self.form.values.items() if k.startswith("instrument:")}

    @property
    def parameters(self) -> dict:
        return {"instruments": self.instruments}

    def _call(self, source, seed, parent, title):
        from ..edit import set_instrument
        from ..store import save_composition
        from ..techniques.gan.sample import accompany

        melody = source.replace(tracks=source.tracks[:1]) if self.results and self.chain else source
        result = accompany(melody, model=self.model, seed=seed, save=False)
        for name, program in self.instruments.items():
            result = set_instrument(result, name, program)
        comp = save_composition(
            result, "gan", model=self.model, parent=parent, title=title, parameters={"seed": seed, **self.parameters}
        )
        return result, comp


class TransformerPanel(_TechniquePanel):
    """Transformer controls (the console's names and ranges) with "Extend again"."""

    technique, icon = "transformer", "forward"

    def _draw(self, before: Score, after: Score):
        import matplotlib.pyplot as plt
        from IPython.display import display

        from ..audio import play
        from ..plot import plot_pianoroll

        plot_pianoroll(
            after, title=f"after run {len(self.results)} (input | extension)", boundary=before.end / before.resolution
        )
        plt.show()
        display(play(after))


def arcnn_panel(score: Score, parent: str | None = None, **kwargs) -> ArcnnPanel:
    """The AR-CNN panel for ``score`` (see :class:`ArcnnPanel`)."""
    return ArcnnPanel(score, parent, **kwargs)


def gan_panel(score: Score, parent: str | None = None, **kwargs) -> GanPanel:
    """The GAN panel for ``score`` (see :class:`GanPanel`)."""
    return GanPanel(score, parent, **kwargs)


def transformer_panel(score: Score, parent: str | None = None, **kwargs) -> TransformerPanel:
    """The Transformer panel for ``score`` (see :class:`TransformerPanel`)."""
    return TransformerPanel(score, parent, **kwargs)


#: The techniques whose panel is a class of its own; the others get the plain panel of their parameters.
_PANELS = {"arcnn": ArcnnPanel, "gan": GanPanel, "transformer": TransformerPanel}


def technique_panel(name: str, score: Score, parent: str | None = None, **kwargs):
    """The panel of technique ``name`` for ``score``; a clear error for a name the registry does not know."""
    if name not in technique_names():
        raise CapsuleError(f"no panel for technique {name!r} (available: {', '.join(technique_names())})")
    panel = _PANELS.get(name) or type(f"{name.title()}Panel", (_TechniquePanel,), {"technique": name})
    return panel(score, parent, **kwargs)

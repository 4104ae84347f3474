"""Technique panels: the console's parameter controls as ipywidgets, wired to the library.

A panel holds an input score, shows the technique's parameters with the console's names
and ranges, a model picker (sample and custom models of that technique) and a run button
("Enhance again" for AR-CNN, "Accompany again" for the GAN, "Extend again" for the Transformer).  Every press calls the library function, which saves a new
composition whose parent is the previous result (or the input's composition), so the
history of a session is kept.  The work is done by :meth:`ArcnnPanel.run`, which tests and
scripts can call without clicking.

:func:`technique_panel` picks the panel of a technique by name.
"""

from __future__ import annotations

from typing import Callable

from ..errors import CapsuleError
from ..score import Score

__all__ = ["ArcnnPanel", "GanPanel", "TransformerPanel", "arcnn_panel", "gan_panel", "transformer_panel",
           "technique_panel", "model_picker", "available_techniques", "instrument_options"]

#: The console's names for the AR-CNN parameters, with their ranges, steps and defaults.
ARCNN_CONTROLS = {
    "sampling_iterations": ("Sampling iterations", 1, 100, 1, 12),
    "max_remove_pct": ("Maximum input notes to remove (%)", 0, 100, 1, 20),
    "max_notes_added": ("Maximum number of notes to add", 0, 1000, 1, 40),
    "creative_risk": ("Creative risk", 0.0, 4.0, 0.1, 1.0),
}


#: The console's names for the Transformer parameters, with their ranges, steps and defaults.
TRANSFORMER_CONTROLS = {
    "sampling": ("Sampling technique", [("TopK", "topk"), ("Nucleus", "nucleus"), ("Random", "random")], "topk"),
    "threshold": ("Sampling threshold", 0.1, 0.99, 0.01, 0.8),
    "creative_risk": ("Creative risk", 0.1, 4.0, 0.1, 1.0),
    "input_duration": ("Input duration (s)", 1.0, 60.0, 1.0, 10.0),
    "extension_duration": ("Track extension duration (s)", 1.0, 60.0, 1.0, 30.0),
    "max_rest": ("Maximum rest time (s)", 0.1, 10.0, 0.1, 2.0),
    "max_note_length": ("Maximum note length (s)", 0.1, 10.0, 0.1, 2.0),
}


def available_techniques() -> list[str]:
    """Techniques that have a panel now."""
    return list(_PANELS)


def model_picker(technique: str, value: str | None = None, registry=None):
    """A dropdown of the finished sample and custom models of ``technique`` (sample models first)."""
    import ipywidgets as w

    from ..models import ModelRegistry

    registry = registry if registry is not None else ModelRegistry()
    cards = [c for c in registry.list() if c.technique == technique and c.status == "complete"]
    if not cards:
        raise CapsuleError(f"no finished {technique} model: train one or import one first")
    cards.sort(key=lambda c: (not c.sample, c.name))
    options = [(f"{c.name} ({'sample' if c.sample else 'custom'})", c.name) for c in cards]
    names = [name for _, name in options]
    if value is not None and value not in names:
        raise CapsuleError(f"no finished {technique} model named {value}")
    return w.Dropdown(options=options, value=value or names[0], description="Model",
                      style={"description_width": "initial"})


class _TechniquePanel:
    """Controls for one input melody; each run saves a composition and becomes the next input.

    Parameters
    ----------
    score : Score
        The melody to work on.
    parent : str, optional
        The composition ``score`` came from (recorded as the first result's parent).
    model : str, optional
        The model to pre-select (default: the first sample model).
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
    controls_spec: dict = {}
    verb = ""
    icon = "magic"

    def __init__(self, score: Score, parent: str | None = None, *, model: str | None = None, chain: bool = True,
                 seed: int | None = 0, on_result: Callable | None = None, show: bool = True, registry=None):
        import ipywidgets as w

        if not isinstance(score, Score):
            raise CapsuleError(f"the {self.technique} panel needs a Score, not {type(score).__name__}")
        self.input, self.current, self.parent = score, score, parent
        self.chain, self.seed, self.on_result, self.show = chain, seed, on_result, show
        self.results: list = []  # (score, composition) per run
        self.model = model_picker(self.technique, model, registry)
        self.controls = {}
        for key, spec in self.controls_spec.items():
            label = spec[0]
            style, layout = {"description_width": "initial"}, w.Layout(width="460px")
            if isinstance(spec[1], (list, tuple)):  # a choice
                self.controls[key] = w.Dropdown(options=spec[1], value=spec[2], description=label, style=style)
                continue
            _, lo, hi, step, default = spec
            cls = w.FloatSlider if isinstance(step, float) else w.IntSlider
            self.controls[key] = cls(value=default, min=lo, max=hi, step=step, description=label, style=style,
                                     layout=layout)
        self.extra = self._extra_widgets()
        self.button = w.Button(description=f"{self.verb} again" if chain else self.verb, button_style="primary",
                               icon=self.icon)
        self.status = w.HTML("")
        self.output = w.Output()
        self.button.on_click(lambda _: self._clicked())
        self.widget = w.VBox([self.model, *self.controls.values(), *self.extra, w.HBox([self.button, self.status]),
                              self.output])

    def _extra_widgets(self) -> list:
        return []

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    @property
    def parameters(self) -> dict:
        """The current control values under the library's parameter names."""
        return {key: control.value for key, control in self.controls.items()}

    def _call(self, source: Score, seed, parent):  # pragma: no cover - subclasses
        raise NotImplementedError

    def run(self):
        """Run the technique once with the current settings; returns ``(score, composition)``."""
        source = self.current if self.chain else self.input
        parent = self.results[-1][1].id if (self.chain and self.results) else self.parent
        seed = None if self.seed is None else self.seed + len(self.results)
        result, comp = self._call(source, seed, parent)
        self.results.append((result, comp))
        self.current = result
        added = sum(len(t.notes) for t in result.tracks) - sum(len(t.notes) for t in source.tracks)
        self.status.value = (f"saved <code>{comp.id}</code> (run {len(self.results)}, {added:+d} notes)")
        if self.on_result is not None:
            self.on_result(result, comp)
        return result, comp

    def _clicked(self):
        with self.output:
            self.output.clear_output(wait=True)
            try:
                before = self.current if self.chain else self.input
                result, _ = self.run()
            except CapsuleError as exc:
                self.status.value = f"<span style='color:#b00'>{exc}</span>"
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
    """AR-CNN controls (the console's names and ranges) with "Enhance again"."""

    technique, controls_spec, verb, icon = "arcnn", ARCNN_CONTROLS, "Enhance", "magic"

    def _extra_widgets(self):
        import ipywidgets as w

        self.harmonize = w.Checkbox(value=False, description="Harmonize (keep the melody, add voices beneath)",
                                    style={"description_width": "initial"})
        return [self.harmonize]

    def _call(self, source, seed, parent):
        from ..techniques.arcnn import enhance

        return enhance(source, model=self.model.value, seed=seed, harmonize=self.harmonize.value, parent=parent,
                       return_composition=True, **self.parameters)


def instrument_options() -> list[tuple[str, int]]:
    """``("0 Acoustic Grand Piano", 0)`` ... for the 128 General MIDI programs."""
    import pretty_midi

    return [(f"{p} {pretty_midi.program_to_instrument_name(p)}", p) for p in range(128)]


class GanPanel(_TechniquePanel):
    """GAN controls: the model (one per genre), an instrument per accompaniment track, "Accompany again".

    Each press writes a new accompaniment for the melody (track 0) with the next seed,
    applies the chosen instruments (drum tracks keep theirs) and saves the composition.
    Choosing another model resets the instrument choices to that genre's defaults.
    """

    technique, controls_spec, verb, icon = "gan", {}, "Accompany", "music"

    def _extra_widgets(self):
        import ipywidgets as w

        self.instrument_box = w.VBox([])
        self.instruments: dict[str, object] = {}
        self.model.observe(lambda _: self._reset_instruments(), names="value")
        self._reset_instruments()
        return [w.HTML("<b>Instruments</b> (General MIDI; drums cannot change)"), self.instrument_box]

    def _reset_instruments(self):
        import ipywidgets as w

        from ..techniques.gan.sample import load_gan

        spec = load_gan(self.model.value).spec
        self.instruments = {}
        rows = []
        for name, program, drum in zip(spec.tracks[1:], spec.programs[1:], spec.is_drum[1:]):
            if drum:
                rows.append(w.HTML(f"{name}: drum kit"))
                continue
            dd = w.Dropdown(options=instrument_options(), value=program, description=name,
                            style={"description_width": "initial"}, layout=w.Layout(width="360px"))
            self.instruments[name] = dd
            rows.append(dd)
        self.instrument_box.children = rows

    @property
    def parameters(self) -> dict:
        return {"instruments": {name: dd.value for name, dd in self.instruments.items()}}

    def _call(self, source, seed, parent):
        from ..edit import set_instrument
        from ..store import save_composition
        from ..techniques.gan.sample import accompany

        melody = source.replace(tracks=source.tracks[:1]) if self.results and self.chain else source
        result = accompany(melody, model=self.model.value, seed=seed, save=False)
        for name, program in self.parameters["instruments"].items():
            result = set_instrument(result, name, program)
        comp = save_composition(result, "gan", model=self.model.value, parent=parent,
                                parameters={"seed": seed, **self.parameters})
        return result, comp


class TransformerPanel(_TechniquePanel):
    """Transformer controls (the console's names and ranges) with "Extend again"."""

    technique, controls_spec, verb, icon = "transformer", TRANSFORMER_CONTROLS, "Extend", "forward"

    def _call(self, source, seed, parent):
        from ..techniques.transformer.sample import extend

        return extend(source, model=self.model.value, seed=seed, parent=parent, return_composition=True,
                      **self.parameters)

    def _draw(self, before: Score, after: Score):
        import matplotlib.pyplot as plt
        from IPython.display import display

        from ..audio import play
        from ..plot import plot_pianoroll

        plot_pianoroll(after, title=f"after run {len(self.results)} (input | extension)",
                       boundary=before.end / before.resolution)
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


_PANELS = {"arcnn": arcnn_panel, "gan": gan_panel, "transformer": transformer_panel}


def technique_panel(technique: str, score: Score, parent: str | None = None, **kwargs):
    """The panel of ``technique`` for ``score``; a clear error for one that has not landed yet."""
    if technique not in _PANELS:
        known = ", ".join(_PANELS)
        raise CapsuleError(f"no panel for technique {technique!r} (available: {known})")
    return _PANELS[technique](score, parent, **kwargs)

"""The music studio in one cell: input, technique, output, edit, again -- and every result kept.

``capsule_lib.Studio()`` shows the console's one-page flow::

    1 Input          a sample melody, a recording on the virtual keyboard, an imported MIDI
                     file, or a saved composition -- its piano roll at once (edit it there)
    2 Technique      AR-CNN, GAN or Transformer, a model, and that technique's parameters
                     (the console's labels, ranges and defaults, from its definition)
    3 Output         the result named, before/after piano rolls with the kernel's rendered
                     audio and a playhead, "... again", back to any earlier version, note
                     edits, tempo, transpose and an instrument per track, downloads
    4 My compositions  every saved composition: open, rename, tag, delete, download; the
                     lineage as a small tree

Another technique can follow on the output in any order: each step reads the current
version and saves a new composition whose parent it is (:class:`~.session.StudioSession`).
Techniques run in a background thread, so the page never freezes: the status line shows
what is happening and for how long, and the kernel keeps answering.

Everything the mouse does is also a method (``pick_sample``, ``choose_technique``,
``generate``, ``go_back``, ``import_midi``, ``open``, ``rename``, ``tag``, ``delete``,
``download``), so tests and scripts can drive the studio without a browser.
"""

from __future__ import annotations

import html
import re
import threading
import traceback
from collections.abc import Callable

from ..errors import CapsuleError
from ..score import Score
from ..techniques.spec import Parameter, technique_names, technique_spec
from ..techniques.spec import technique as technique_record  # `technique` names a technique's name here
from .describe import composition_line, composition_row, family, lineage_forest, technique_title
from .session import StudioSession

__all__ = ["Studio", "MAX_STUDIO_NOTES"]

#: Larger pieces would make the piano rolls crawl; the library and the command line take more.
MAX_STUDIO_NOTES = 5000


def _safe_name(title: str) -> str:
    name = re.sub(r"[^\w\-]+", "_", title, flags=re.UNICODE).strip("_")
    return re.sub(r"_+", "_", name)[:80] or "composition"


def _section(number: int, title: str, note: str = ""):
    import ipywidgets as w

    extra = f"<div class='cc-note'>{note}</div>" if note else ""
    return w.HTML(f"<div class='cs-section-title' role='heading' aria-level='3'><b>{number}</b>{title}</div>{extra}")


class Studio:
    """The music studio: one widget for the console's whole flow (display it as a cell's last line).

    Parameters
    ----------
    sample : str
        The sample melody it opens with (``capsule_lib.list_samples()`` names them).
    technique : {"arcnn", "gan", "transformer"}
        The technique chosen at first.
    seed : int, optional
        Seed of the first technique run; each run uses the next (None: random).
    store : CompositionStore, optional
        Where compositions are saved (the default store otherwise).
    registry : ModelRegistry, optional
        Where models are found (the default registry otherwise).

    Attributes
    ----------
    session : StudioSession
        The input and every version made from it.
    widget : ipywidgets.VBox
        What is displayed.
    """

    def __init__(
        self, sample: str = "ode_to_joy", technique: str = "arcnn", *, seed: int | None = 0, store=None, registry=None
    ):
        import ipywidgets as w

        from ..samples import list_samples, load_sample
        from .form import ParameterForm
        from .keyboard import VirtualKeyboard
        from .parts import CompositionTable, MidiImport, StatusLine
        from .pianoroll import PianoRollEditor
        from .theme import ROOT_CLASS

        if technique not in technique_names():
            raise CapsuleError(f"no technique {technique!r} (there are {', '.join(technique_names())})")
        self.session = StudioSession(store, seed)
        self.store = self.session.store
        self.registry = registry
        self._job: threading.Thread | None = None
        self._busy = False
        self._last_error: str | None = None
        self._quiet = False  # set while Python itself fills the forms, so observers do not act
        self._values: dict[str, dict] = {}
        self._technique_now = technique
        self._recordings = 0
        self._loaded_models: set[str] = set()

        def auto():  # a Layout per widget: a shared one would hide them all when one is hidden
            return w.Layout(width="auto")

        label = {"description_width": "initial"}

        # -- header and status ------------------------------------------------------------
        header = w.HTML(
            "<div class='cs-header'><div class='cs-name'>Music <span>studio</span></div>"
            "<div class='cc-note'>Pick a melody, choose a technique and press its button. "
            "Every result is saved in <i>My compositions</i>; press Tab to move between controls."
            "</div></div>"
        )
        self.status = StatusLine()

        # -- 1 input ----------------------------------------------------------------------
        samples = list_samples()
        self.sample = w.Dropdown(
            options=[(s["title"], s["name"]) for s in samples],
            value=sample,
            description="Sample melody",
            style=label,
            layout=auto(),
        )
        self.record_button = w.Button(
            description="Record a melody",
            layout=auto(),
            tooltip="Show the keyboard: record, and your take becomes the input",
        )
        self.importer = MidiImport(lambda name, data, size: self._guard(lambda: self.import_midi(name, data, size)))
        self.input_info = w.HTML()
        self.keyboard = VirtualKeyboard()
        self.rhythm = w.Checkbox(
            value=True, description="Rhythm assist (snap notes to 16ths)", indent=False, layout=auto()
        )
        self.keyboard_box = w.VBox(
            [
                w.HTML(
                    "<div class='cc-note'>Press <b>● Record</b>, play with the mouse or your computer keys "
                    "(click the keyboard first), press <b>■ Stop</b>: your take becomes the input.</div>"
                ),
                self.keyboard,
                self.rhythm,
            ],
            layout=w.Layout(display="none"),
        )
        self.input_roll = PianoRollEditor(load_sample(sample), audio=True)
        self.input_roll.download_name = "input.mid"
        input_box = w.VBox(
            [
                _section(
                    1,
                    "Input",
                    "A sample melody, your own recording, a MIDI file, or a saved "
                    "composition (open it in My compositions below).",
                ),
                w.HBox([self.sample, self.record_button, self.importer]),
                self.keyboard_box,
                self.input_info,
                self.input_roll,
            ]
        )

        # -- 2 technique ------------------------------------------------------------------
        specs = [technique_spec(t) for t in technique_names()]
        self.technique = w.ToggleButtons(
            options=[(s.title, s.name) for s in specs],
            value=technique,
            tooltips=[s.summary for s in specs],
            style={"button_width": "auto"},
        )
        self.technique_note = w.HTML()
        self.form = ParameterForm(
            self._technique_rows(technique), title=f"{technique_spec(technique).title} parameters"
        )
        self.run_button = w.Button(button_style="primary", layout=auto())
        self.restart_button = w.Button(
            description="Start again from the input",
            layout=auto(),
            tooltip="The next run reads the input, not the latest result",
        )
        self.run_note = w.HTML()
        technique_box = w.VBox(
            [
                _section(2, "Technique"),
                self.technique,
                self.technique_note,
                self.form,
                w.HBox([self.run_button, self.restart_button, self.run_note]),
            ]
        )

        # -- 3 output ---------------------------------------------------------------------
        self.result_line = w.HTML()
        self.history = w.Dropdown(options=[], description="Version", style=label, layout=auto())
        self.back_button = w.Button(
            description="Go back to this version", layout=auto(), tooltip="The next step reads the version chosen here"
        )
        self.before_roll = PianoRollEditor(load_sample(sample), audio=True, editable=False)
        self.after_roll = PianoRollEditor(load_sample(sample), audio=True)
        self.after_roll.download_name = "result.mid"
        self.arrange = ParameterForm([], title="Tempo, pitch and instruments")
        kinds = {"mid": "MIDI", "wav": "WAV", "mp3": "MP3"}
        self.downloads = {
            kind: w.Button(description=f"Download {name}", layout=auto(), tooltip=f"Save the result as a {name} file")
            for kind, name in kinds.items()
        }
        self.output_empty = w.HTML(
            "<div class='cs-empty-output'>Your result appears here, with the melody it "
            "was made from, both playable.</div>"
        )
        self.output_box = w.VBox(
            [
                self.result_line,
                w.HBox([self.history, self.back_button, *self.downloads.values()]),
                w.HTML("<div class='cs-roll-title'>Before<span class='cc-note'>what the last step read</span></div>"),
                self.before_roll,
                w.HTML(
                    "<div class='cs-roll-title'>After<span class='cc-note'>double-click to add or remove a note, "
                    "drag to change it, then Apply changes</span></div>"
                ),
                self.after_roll,
                w.HTML(
                    "<div class='cs-roll-title'>Tempo, pitch and instruments<span class='cc-note'>each change is "
                    "saved as a new version</span></div>"
                ),
                self.arrange,
            ],
            layout=w.Layout(display="none"),
        )
        output_box = w.VBox([_section(3, "Output"), self.output_empty, self.output_box])

        # -- 4 my compositions ------------------------------------------------------------
        self.table = CompositionTable()
        self.open_button = w.Button(description="Open as input", layout=auto())
        self.title_text = w.Text(description="Title", style=label, layout=w.Layout(width="320px"))
        self.rename_button = w.Button(description="Rename", layout=auto())
        self.tag_text = w.Text(description="Tag", placeholder="key=value", style=label, layout=w.Layout(width="240px"))
        self.tag_button = w.Button(description="Add tag", layout=auto())
        self.untag_button = w.Button(description="Remove tag", layout=auto())
        self.delete_button = w.Button(description="Delete", button_style="danger", layout=auto())
        self.confirm_yes = w.Button(description="Delete for good", button_style="danger", layout=auto())
        self.confirm_no = w.Button(description="Keep it", layout=auto())
        self.confirm_text = w.HTML()
        self.confirm_box = w.HBox(
            [self.confirm_text, self.confirm_yes, self.confirm_no], layout=w.Layout(display="none")
        )
        self.confirm_box.add_class("cs-confirm")
        self.saved_downloads = {
            kind: w.Button(
                description=f"Download {name}", layout=auto(), tooltip=f"Download the chosen composition as {name}"
            )
            for kind, name in kinds.items()
        }
        self.tree = w.HTML()
        mine_box = w.VBox(
            [
                _section(
                    4,
                    "My compositions",
                    "Every result, saved as it was made. Choose one to open, rename, tag, delete or download it.",
                ),
                self.table,
                w.HBox([self.open_button, *self.saved_downloads.values(), self.delete_button]),
                self.confirm_box,
                w.HBox([self.title_text, self.rename_button, self.tag_text, self.tag_button, self.untag_button]),
                w.HTML(
                    "<div class='cs-roll-title'>Lineage<span class='cc-note'>what it was made from, and what "
                    "was made from it</span></div>"
                ),
                self.tree,
            ]
        )

        sections = [input_box, technique_box, output_box, mine_box]
        for box in sections:
            box.add_class("cs-section")
        self.widget = w.VBox([header, self.status, *sections])
        self.widget.add_class(ROOT_CLASS)
        self.widget.add_class("capsule-studio")

        # -- wiring -----------------------------------------------------------------------
        self.sample.observe(lambda c: self._guard(lambda: self.pick_sample(c["new"])), names="value")
        self.record_button.on_click(lambda _: self._toggle_keyboard())
        self.keyboard.on_recorded(lambda _score: self._guard(self._recorded))
        self.input_roll.on_apply(lambda score: self._guard(lambda: self._input_edited(score)))
        self.technique.observe(lambda c: self._guard(lambda: self.choose_technique(c["new"])), names="value")
        self.form.observe(self._form_changed, names="values")
        self.run_button.on_click(lambda _: self._guard(self.generate))
        self.restart_button.on_click(lambda _: self._guard(self._restart))
        self.back_button.on_click(lambda _: self._guard(lambda: self.go_back(self.history.value)))
        self.after_roll.on_apply(lambda score: self._guard(lambda: self._output_edited(score)))
        self.arrange.observe(self._arranged, names="values")
        for kind, button in self.downloads.items():
            button.on_click(lambda _, k=kind: self._guard(lambda: self.download(k)))
        self.table.observe(lambda c: self._guard(self._selected), names="selected")
        self.open_button.on_click(lambda _: self._guard(lambda: self.open(self._chosen())))
        self.rename_button.on_click(lambda _: self._guard(lambda: self.rename(self._chosen(), self.title_text.value)))
        self.tag_button.on_click(lambda _: self._guard(lambda: self.tag(self._chosen(), self.tag_text.value)))
        self.untag_button.on_click(lambda _: self._guard(lambda: self.untag(self._chosen(), self.tag_text.value)))
        self.delete_button.on_click(lambda _: self._guard(self._ask_delete))
        self.confirm_yes.on_click(lambda _: self._guard(lambda: self.delete(self._chosen())))
        self.confirm_no.on_click(lambda _: self._hide_confirm())
        for kind, button in self.saved_downloads.items():
            button.on_click(lambda _, k=kind: self._guard(lambda: self.download(k, self._chosen())))

        self._show_technique()
        self.pick_sample(sample)
        self._refresh_compositions()
        self.status.say("Ready: press the blue button to hear what a model makes of the melody.")

    # ======================================================================================
    # what the mouse does, as methods
    # ======================================================================================
    def pick_sample(self, name: str) -> None:
        """Make the sample melody ``name`` the input."""
        from ..samples import load_sample

        self._idle()
        score = load_sample(name)
        self._set_input(score, "sample", title=score.title)
        if self.sample.value != name:
            self._quietly(lambda: setattr(self.sample, "value", name))
        self.status.say(f"Input: “{score.title}”, a sample melody.")

    def use_score(self, score: Score, title: str | None = None, kind: str = "import") -> None:
        """Make ``score`` the input (from code: a score you made or loaded)."""
        self._idle()
        self._set_input(score, kind, title=title)

    def import_midi(self, name: str, data: bytes | None, size: int | None = None) -> bool:
        """Import the MIDI file ``name`` (its bytes) as the input; a bad file changes nothing.

        Returns True if it became the input; otherwise the status line says why, in one line.
        """
        from ..midi import read_midi
        from .parts import MAX_IMPORT_BYTES

        self._idle()
        try:
            if data is None:
                raise CapsuleError(
                    f"is {size / 1e6:.1f} MB; the studio imports MIDI files up to {MAX_IMPORT_BYTES / 1e6:.0f} MB"
                )
            try:
                score = read_midi(data)  # the melody track, as the console imported it
            except CapsuleError as exc:
                raise CapsuleError(str(exc).replace("MIDI data ", "", 1)) from None
            n = sum(len(t.notes) for t in score.tracks)
            if n == 0:
                raise CapsuleError("has no notes")
            if n > MAX_STUDIO_NOTES:
                raise CapsuleError(
                    f"has {n} notes; the studio opens pieces of up to {MAX_STUDIO_NOTES} "
                    "(the library and the capsule command take longer ones)"
                )
        except CapsuleError as exc:
            self.status.say(f"Cannot import {name}: it {exc}", "error")
            return False
        title = re.sub(r"\.(mid|midi|kar|smf)$", "", name, flags=re.I) or "imported file"
        self._set_input(score, "import", title=title)
        self.status.say(f"Input: “{title}”, imported ({n} notes).", "ok")
        return True

    def choose_technique(self, technique: str) -> None:
        """Show ``technique``'s model and parameters (its values are kept for when you come back)."""
        if technique not in technique_names():
            raise CapsuleError(f"no technique {technique!r}")
        previous = getattr(self, "_technique_now", None)
        if previous is not None:
            self._values[previous] = dict(self.form.values)
        self._technique_now = technique
        if self.technique.value != technique:
            self._quietly(lambda: setattr(self.technique, "value", technique))
        rows = self._technique_rows(technique)

        def show_rows():
            with self.form.hold_sync():  # one message: the browser draws the new rows once
                self.form.title = f"{technique_spec(technique).title} parameters"
                self.form.set_rows(rows, values=self._values.get(technique))

        self._quietly(show_rows)
        self._show_technique()

    def generate(self, wait: bool = False) -> None:
        """Press the technique's button: run it on the current music in the background.

        ``wait=True`` returns when it is done (as :meth:`wait` does).
        """
        self._idle()
        technique = self.technique.value
        spec = technique_spec(technique)
        values = dict(self.form.values)
        model = values.pop("model")
        source = self.session.current.title if self.session.current is not None else self.session.title

        def work():
            if model not in self._loaded_models:
                self.status.start(f"Loading the model {model} (the first time takes a little while)…")
                self._load_model(technique, model)
                self._loaded_models.add(model)
            self.status.start(f"{spec.doing} “{source}” with {model}…")
            version = self.session.run(technique, model, values)
            self._show_current()
            self._refresh_compositions(select=version.composition.id)
            self.status.say(
                f"Saved {composition_line(version.composition, self._parent_of(version.composition))}.", "ok"
            )

        self._start(f"{spec.doing} “{source}”…", work)
        if wait:
            self.wait()

    def go_back(self, index: int) -> None:
        """Make version ``index`` (0 = the first result) current: the next step reads it."""
        self._idle()
        version = self.session.go_back(index)
        self._show_current()
        self.status.say(f"Back to “{version.title}”: the next step reads it.")

    def open(self, composition_id: str) -> None:
        """Open a saved composition as the input."""
        self._idle()
        comp = self.store.get(composition_id)
        score = self.store.load(comp.id)
        if sum(len(t.notes) for t in score.tracks) > MAX_STUDIO_NOTES:
            raise CapsuleError(f"“{comp.title}” has more than {MAX_STUDIO_NOTES} notes: too long for the studio")
        self._set_input(score, "composition", composition=comp)
        self.status.say(f"Opened “{comp.title}” as the input.", "ok")

    def rename(self, composition_id: str, title: str) -> None:
        comp = self.store.rename(composition_id, title)
        self.session.renamed(comp)
        self._refresh_compositions(select=comp.id)
        self._show_current()
        self.status.say(f"Renamed it “{comp.title}”.", "ok")

    def tag(self, composition_id: str, text: str) -> None:
        """Tag a composition: ``"key=value"`` (or just ``"key"``)."""
        key, _, value = (text or "").partition("=")
        if not key.strip():
            raise CapsuleError("write a tag as key=value, e.g. class=4B")
        comp = self.store.tag(composition_id, key.strip(), value.strip())
        self.tag_text.value = ""
        self._refresh_compositions(select=comp.id)
        self.status.say(f"Tagged “{comp.title}” {key.strip()}={value.strip()}.", "ok")

    def untag(self, composition_id: str, text: str) -> None:
        """Remove the tag ``key`` (``"key"`` or ``"key=..."``) from a composition."""
        key = (text or "").partition("=")[0].strip()
        if not key:
            raise CapsuleError("write the key of the tag to remove, e.g. class")
        comp = self.store.untag(composition_id, key)
        self.tag_text.value = ""
        self._refresh_compositions(select=comp.id)
        self.status.say(f"Removed the tag {key} from “{comp.title}”.", "ok")

    def delete(self, composition_id: str) -> None:
        """Delete a saved composition (its music stays in the studio's history until you leave it)."""
        self._idle()
        comp = self.store.get(composition_id)
        self.store.delete(comp.id)
        self.session.forget(comp.id)
        self._hide_confirm()
        self._refresh_compositions()
        self._show_current()
        self.status.say(f"Deleted “{comp.title}”.", "ok")

    def download(self, kind: str, composition_id: str | None = None) -> tuple[str, bytes]:
        """Send the current result (or a saved composition) to the browser as ``"mid"``, ``"wav"`` or ``"mp3"``.

        Returns ``(file name, bytes)``.
        """
        from .sound import file_bytes

        if composition_id is not None:
            comp = self.store.get(composition_id)
            score, title = self.store.load(comp.id), comp.title
        else:
            current = self.session.current
            if current is None:
                raise CapsuleError("nothing to download yet: run a technique first")
            score, title = current.score, current.title
        data, mime = file_bytes(score, kind)
        name = f"{_safe_name(title)}.{kind}"
        self.status.download(name, data, mime)
        self.status.say(f"Downloaded {name} ({len(data) / 1e3:.0f} kB).", "ok")
        return name, data

    # -- the background job ------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a technique runs."""
        return self._busy

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running technique (True when nothing runs any more)."""
        job = self._job
        if job is not None:
            job.join(timeout)
        return not self.busy

    @property
    def last_error(self) -> str | None:
        """The traceback of the last unexpected error (the status line shows its one-line summary)."""
        return self._last_error

    def _start(self, label: str, work: Callable[[], None]) -> None:
        def run():
            try:
                work()
            except CapsuleError as exc:
                self.status.say(str(exc), "error")
            except Exception as exc:  # an unexpected bug: one line here, the traceback in last_error
                self._last_error = traceback.format_exc()
                self.status.say(f"Something went wrong: {type(exc).__name__}: {exc}", "error")
            finally:
                self.status.stop()
                self._set_busy(False)

        self._set_busy(True)
        self.status.start(label)
        self._job = threading.Thread(target=run, name="capsule-studio", daemon=True)
        self._job.start()

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for control in (
            self.run_button,
            self.restart_button,
            self.sample,
            self.record_button,
            self.back_button,
            self.confirm_yes,
            *self.downloads.values(),
        ):
            control.disabled = busy
        self.importer.disabled = busy
        self.form.disabled = busy
        self.arrange.disabled = busy
        self.table.disabled = busy
        self._selected()
        if not busy:
            self._show_technique()

    def _idle(self) -> None:
        if self.busy:
            raise CapsuleError("the studio is still working on the last step; wait for it to finish")

    # ======================================================================================
    # internals
    # ======================================================================================
    def _guard(self, action: Callable[[], object]) -> None:
        """Run a click's action; a problem becomes the status line, never a traceback in the page."""
        if self._quiet:
            return
        try:
            action()
        except CapsuleError as exc:
            self.status.say(str(exc), "error")
        except Exception as exc:
            self._last_error = traceback.format_exc()
            self.status.say(f"Something went wrong: {type(exc).__name__}: {exc}", "error")

    def _quietly(self, action: Callable[[], object]) -> None:
        quiet, self._quiet = self._quiet, True
        try:
            action()
        finally:
            self._quiet = quiet

    def _set_input(self, score: Score, kind: str, *, composition=None, title: str | None = None) -> None:
        self.session.set_input(score, kind, composition=composition, title=title)
        self.input_roll.score = self.session.input
        self.input_roll.apply()  # the editor's "applied" score is the new input, not the old one
        self._show_input()
        self._show_current()

    def _show_input(self) -> None:
        s = self.session
        what = {
            "sample": "sample melody",
            "recording": "your recording",
            "import": "imported file",
            "composition": "saved composition",
            "edit": "edited",
        }[s.input_kind]
        notes = sum(len(t.notes) for t in s.input.tracks)
        bars = -(-s.input.end // s.input.steps_per_bar)
        self.input_info.value = (
            f"<div><b>“{html.escape(s.title)}”</b> <span class='cc-muted'>{what}, "
            f"{bars} bar{'s' * (bars != 1)}, {notes} note{'s' * (notes != 1)}, "
            f"{s.input.tempo:g} bpm</span></div>"
        )
        self.input_roll.status = "Double-click a cell to add or remove a note, then Apply changes."

    def _toggle_keyboard(self) -> None:
        shown = self.keyboard_box.layout.display != "none"
        self.keyboard_box.layout.display = "none" if shown else ""
        self.record_button.description = "Record a melody" if shown else "Hide the keyboard"

    def _recorded(self) -> None:
        score = self.keyboard.score(quantize=self.rhythm.value)
        self._recordings += 1
        self._set_input(score, "recording", title=f"My recording {self._recordings}")
        self.status.say(f"Your recording ({len(score.notes)} notes) is the input now.", "ok")

    def _input_edited(self, score: Score) -> None:
        if score == self.session.input:
            return
        self.session.edit_input(score)
        self.session.current = None  # the next step reads the edited input
        self._show_input()
        self._show_current()
        self.status.say("Input changed: the next step reads your edited melody.", "ok")

    def _output_edited(self, score: Score) -> None:
        if self.session.current is None or score == self.session.current.score:
            return
        version = self.session.edit_output(score)
        self._show_current()
        self._refresh_compositions(select=version.composition.id)
        self.status.say(f"Saved {composition_line(version.composition, self._parent_of(version.composition))}.", "ok")

    def _restart(self) -> None:
        self.session.current = None
        self._show_current()
        self.status.say("The next step reads the input.")

    # -- technique ---------------------------------------------------------------------------
    def _technique_rows(self, technique: str) -> list[Parameter]:
        from .panels import model_parameter

        try:
            model = model_parameter(technique, registry=self.registry)
        except CapsuleError as exc:  # no model of this technique: say so, keep the rest working
            model = Parameter("model", "Model", "choice", "", choices=(("no model: " + str(exc), ""),))
        return [model, *technique_spec(technique).parameters]

    def _load_model(self, technique: str, model: str) -> None:
        technique_record(technique).load(model)

    def _form_changed(self, change) -> None:
        if not self._quiet:
            self._values[self.technique.value] = dict(change["new"])

    def _show_technique(self) -> None:
        spec = technique_spec(self.technique.value)
        current = self.session.current
        again = current is not None and current.technique == spec.name
        self.run_button.description = f"{spec.verb} again" if again else spec.verb
        self.run_button.tooltip = f"{spec.verb} the music below with {spec.title}"
        self.technique_note.value = f"<div class='cc-note'>{html.escape(spec.summary)}</div>"
        reads = current.title if current is not None else self.session.title
        self.run_note.value = f"<span class='cc-note'>reads “{html.escape(reads)}”</span>"
        self.restart_button.layout.display = "" if current is not None else "none"
        self.run_button.disabled = self.busy or not self.form.values.get("model")

    # -- output ------------------------------------------------------------------------------
    def _show_current(self) -> None:
        s = self.session
        current = s.current
        versions = s.versions
        self._quietly(lambda: self._fill_history(versions, current))
        if current is None:
            self.output_empty.value = (
                "<div class='cs-empty-output'>Your result appears here, with the melody it "
                "was made from, both playable.</div>"
                if not versions
                else "<div class='cs-empty-output'>The next step reads the input. Earlier "
                "results stay under Version.</div>"
            )
            self.output_empty.layout.display = ""
            self.output_box.layout.display = "" if versions else "none"
        else:
            self.output_empty.layout.display = "none"
            self.output_box.layout.display = ""
            comp = current.composition
            if comp is not None:
                line = composition_line(comp, self._parent_of(comp), as_html=True)
            else:
                line = f"<q>{html.escape(current.title)}</q> (deleted from My compositions)"
            added = len(current.score.notes) - len(current.before.notes)
            self.result_line.value = (
                f"<div class='cc-result' data-testid='result-line'>{line} "
                f"<span class='cc-muted'>· {added:+d} notes</span></div>"
            )
            self.before_roll.score = current.before
            self.before_roll.status = "What the last step read (read-only)."
            self.after_roll.score = current.score
            self.after_roll.apply()
            self.after_roll.status = "Double-click a cell to add or remove a note, then Apply changes."
            self._fill_arrange()
        self._show_technique()

    def _fill_history(self, versions, current) -> None:
        options = [(f"{i + 1}. {v.title} ({technique_title(v.technique)})", i) for i, v in enumerate(versions)]
        self.history.options = options
        if current is not None and current in versions:
            self.history.value = versions.index(current)

    def _fill_arrange(self) -> None:
        from .panels import instrument_options

        current = self.session.current
        d = self.session.arrangement_defaults()
        base = current.base
        rows = [
            Parameter(
                "tempo", "Tempo", "int", d["tempo"], 40, 160, step=1, unit="bpm", help="Beats per minute (40-160)."
            ),
            Parameter(
                "transpose",
                "Transpose",
                "int",
                d["transpose"],
                -12,
                12,
                step=1,
                unit="semitones",
                help="Move every note up or down (drums stay).",
            ),
            *[
                Parameter(
                    f"instrument:{i}",
                    f"{base.tracks[i].name or f'track {i + 1}'} instrument",
                    "choice",
                    d["instruments"].get(i, base.tracks[i].program),
                    choices=tuple(instrument_options()),
                    help="The General MIDI instrument of this track.",
                )
                for i, t in enumerate(base.tracks)
                if not t.is_drum
            ],
        ]
        self._quietly(lambda: self.arrange.set_rows(rows, values={r.name: r.default for r in rows}))

    def _arranged(self, change) -> None:
        if self._quiet or self.session.current is None:
            return

        def act():
            v = change["new"]
            instruments = {int(k.split(":", 1)[1]): p for k, p in v.items() if k.startswith("instrument:")}
            try:
                self._idle()
                version = self.session.arrange(tempo=v["tempo"], transpose=v["transpose"], instruments=instruments)
            except CapsuleError:
                self._fill_arrange()  # the form shows the music as it is, not the refused setting
                raise
            if version is None:
                return
            self._show_current()
            self._refresh_compositions(select=version.composition.id)
            self.status.say(
                f"Saved {composition_line(version.composition, self._parent_of(version.composition))}.", "ok"
            )

        self._guard(act)

    def _parent_of(self, comp):
        if comp is None or not comp.parent:
            return None
        try:
            return self.store.get(comp.parent)
        except CapsuleError:
            return None

    # -- my compositions -----------------------------------------------------------------------
    def _refresh_compositions(self, select: str | None = None) -> None:
        comps = self.store.list()
        by_id = {c.id: c for c in comps}
        rows = [composition_row(c, by_id.get(c.parent)) for c in reversed(comps)]
        chosen = select or self.table.selected
        if chosen not in by_id:
            chosen = rows[0]["id"] if rows else ""
        with self.table.hold_sync():
            self.table.rows = rows
            self._quietly(lambda: setattr(self.table, "selected", chosen))
        self._comps = comps
        self._selected()

    def _chosen(self) -> str:
        if not self.table.selected:
            raise CapsuleError("choose a composition in the list first")
        return self.table.selected

    def _selected(self) -> None:
        comps = getattr(self, "_comps", [])
        chosen = self.table.selected
        comp = next((c for c in comps if c.id == chosen), None)
        self._hide_confirm()
        self.title_text.value = comp.title if comp is not None else ""
        for control in (
            self.open_button,
            self.rename_button,
            self.tag_button,
            self.untag_button,
            self.delete_button,
            *self.saved_downloads.values(),
        ):
            control.disabled = comp is None or self.busy
        self.tree.value = self._tree_html(comps, chosen) if comp is not None else ""

    def _tree_html(self, comps, chosen: str) -> str:
        root = family(lineage_forest(comps), chosen)
        if root is None:
            return ""
        current = (
            self.session.current.composition.id
            if (self.session.current is not None and self.session.current.composition is not None)
            else None
        )

        def node(n) -> str:
            c, kids = n
            cls = " class='cs-node-selected'" if c.id == chosen else ""
            here = " <span class='cs-kind'>◀ in the studio now</span>" if c.id == current else ""
            made = technique_title(c.technique) + (f", {c.model}" if c.model else "")
            inner = "".join(node(k) for k in kids)
            return (
                f"<li data-id='{html.escape(c.id)}'><span{cls}>{html.escape(c.title)}</span>"
                f"<span class='cs-kind'>{html.escape(made)}</span>{here}"
                f"{'<ul>' + inner + '</ul>' if inner else ''}</li>"
            )

        return f"<ul class='cs-tree' data-testid='lineage' aria-label='Lineage'>{node(root)}</ul>"

    def _ask_delete(self) -> None:
        comp = self.store.get(self._chosen())
        self.confirm_text.value = f"<span>Delete <q>{html.escape(comp.title)}</q> for good?</span>"
        self.confirm_box.layout.display = ""

    def _hide_confirm(self) -> None:
        self.confirm_box.layout.display = "none"

    # -- display -------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"Studio(input={self.session.title!r}, versions={len(self.session.versions)})"

"""The studio without a browser: every button is a method, every step a composition with the right parent."""

from __future__ import annotations

import threading
import time

import pytest

from capsule_lib import CapsuleError, CompositionStore, Note, Score, Track, load_sample, midi_bytes
from capsule_lib.techniques.spec import technique_spec
from capsule_lib.widgets import Studio
from capsule_lib.widgets.describe import composition_line, composition_row, family, lineage_forest
from capsule_lib.widgets.parts import MAX_IMPORT_BYTES
from capsule_lib.widgets.studio import MAX_STUDIO_NOTES

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUICK = {"sampling_iterations": 1, "max_notes_added": 4}


@pytest.fixture
def studio():
    s = Studio("mary_had_a_little_lamb", seed=3)
    yield s
    s.wait(120)


def parent_title(store, comp):
    return store.get(comp.parent).title if comp.parent else None


def test_it_opens_on_the_sample_with_the_techniques_own_parameters_and_saves_nothing_yet(studio):
    assert studio.session.title == "Mary Had a Little Lamb" and studio.session.input_kind == "sample"
    assert studio.input_roll.score == load_sample("mary_had_a_little_lamb").replace(title="Mary Had a Little Lamb")
    assert [r.name for r in studio.form.rows] == ["model", *technique_spec("arcnn").names]
    assert studio.form.values == {"model": "arcnn-bach", **technique_spec("arcnn").defaults()}
    assert studio.run_button.description == "Enhance"
    assert studio.output_box.layout.display == "none"
    assert CompositionStore().list() == []  # browsing samples leaves nothing behind
    studio.choose_technique("transformer")
    assert [r.name for r in studio.form.rows] == ["model", *technique_spec("transformer").names]
    assert studio.run_button.description == "Extend" and studio.form["model"] == "transformer-classical"


@pytest.mark.slow
def test_the_whole_flow_saves_each_step_with_its_parent(studio):
    store = CompositionStore()
    studio.form.values = {**studio.form.values, **QUICK}
    studio.generate(wait=True)
    assert studio.status.level == "ok", studio.status.message
    first = studio.session.current.composition
    assert studio.run_button.description == "Enhance again"
    studio.form["creative_risk"] = 2.0
    studio.generate(wait=True)
    second = studio.session.current.composition
    assert second.parameters["creative_risk"] == 2.0 and second.parent == first.id

    # edit a note of the result: a new version whose parent is the second run
    edited = studio.session.current.score
    edited = edited.with_track(0, edited.tracks[0].replace(notes=edited.tracks[0].notes[1:]))
    studio.after_roll.score = edited
    studio.after_roll.apply()
    edit = studio.session.current.composition
    assert (edit.technique, edit.parent) == ("edit", second.id)

    studio.choose_technique("gan")
    assert studio.run_button.description == "Accompany"
    studio.generate(wait=True)
    gan = studio.session.current.composition
    assert (gan.technique, gan.parent) == ("gan", edit.id)
    assert [t.name for t in studio.session.current.score.tracks] == ["melody", "alto", "tenor", "bass"]

    # change an instrument: a new arrangement of the accompanied version
    assert studio.arrange["instrument:2"] == 52
    studio.arrange["instrument:2"] = 71
    arranged = studio.session.current.composition
    assert (arranged.technique, arranged.parent) == ("arrange", gan.id)
    assert arranged.parameters["instruments"] == {"melody": 0, "alto": 52, "tenor": 71, "bass": 52}
    assert store.load(arranged.id).tracks[2].program == 71
    studio.arrange["transpose"] = 2  # applied to the GAN result with the clarinet kept, not on top of it
    moved = studio.session.current
    assert moved.composition.parent == arranged.id and moved.score.tracks[2].program == 71
    assert [n.pitch for n in moved.score.tracks[0].notes] == [n.pitch + 2 for n in moved.base.tracks[0].notes]

    studio.arrange["transpose"] = 2  # the same again: nothing new to save
    assert studio.session.current is moved
    studio._guard(lambda: studio.go_back(None))  # "Go back" with no version chosen: said, not a traceback
    assert studio.status.level == "error" and "no version" in studio.status.message

    studio.choose_technique("transformer")
    studio.form["extension_duration"] = 1.0
    studio.generate(wait=True)
    ext = studio.session.current.composition
    assert (ext.technique, ext.parent) == ("transformer", moved.composition.id)

    titles = [(c.title, c.technique, parent_title(store, c)) for c in store.list()]
    assert titles == [
        ("Mary Had a Little Lamb", "sample", None),
        ("Mary Had a Little Lamb – AR-CNN 1", "arcnn", "Mary Had a Little Lamb"),
        ("Mary Had a Little Lamb – AR-CNN 2", "arcnn", "Mary Had a Little Lamb – AR-CNN 1"),
        ("Mary Had a Little Lamb – edit 1", "edit", "Mary Had a Little Lamb – AR-CNN 2"),
        ("Mary Had a Little Lamb – GAN 1", "gan", "Mary Had a Little Lamb – edit 1"),
        ("Mary Had a Little Lamb – arrangement 1", "arrange", "Mary Had a Little Lamb – GAN 1"),
        ("Mary Had a Little Lamb – arrangement 2", "arrange", "Mary Had a Little Lamb – arrangement 1"),
        ("Mary Had a Little Lamb – Transformer 1", "transformer", "Mary Had a Little Lamb – arrangement 2"),
    ]
    # the result line names the composition, never its id
    assert (
        "<q>Mary Had a Little Lamb – Transformer 1</q>, made by Transformer with transformer-classical from "
        "<q>Mary Had a Little Lamb – arrangement 2</q>" in studio.result_line.value
    )
    assert ext.id not in studio.result_line.value
    # the lineage tree of the selected (newest) composition runs from the sample down to it
    assert studio.table.selected == ext.id
    assert studio.tree.value.index("Mary Had a Little Lamb</span>") < studio.tree.value.index("Transformer 1")

    # undo to any earlier result: the next run reads it, and its parent is it
    studio.go_back(0)
    assert studio.session.current.composition.id == first.id
    studio.choose_technique("gan")
    studio.generate(wait=True)
    assert studio.session.current.composition.parent == first.id
    assert len(studio.history.options) == 8


def test_the_technique_runs_in_the_background_and_the_studio_says_so(studio, monkeypatch):
    release = threading.Event()
    real = studio.session.run

    def slow(*args, **kwargs):
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(studio.session, "run", slow)
    studio.form.values = {**studio.form.values, **QUICK}
    studio.generate()  # returns at once
    try:
        assert studio.busy and studio.status.busy and studio.run_button.disabled and studio.form.disabled
        deadline = time.time() + 120  # first the model loads ("Loading the model ..."), then it runs
        while "Enhancing “Mary Had a Little Lamb” with arcnn-bach" not in studio.status.busy_label:
            assert time.time() < deadline, studio.status.busy_label
            time.sleep(0.05)
        studio._guard(studio.generate)  # a second press while busy: a message, not a second job
        assert "still working" in studio.status.message
    finally:
        release.set()
    assert studio.wait(120)
    assert not studio.status.busy and not studio.run_button.disabled and len(studio.session.versions) == 1


def test_an_error_in_the_technique_is_one_line_in_the_studio(studio, monkeypatch):
    def broken(*args, **kwargs):
        raise CapsuleError("the model is tired")

    monkeypatch.setattr(studio.session, "run", broken)
    studio.generate(wait=True)
    assert (studio.status.message, studio.status.level) == ("the model is tired", "error")
    monkeypatch.setattr(studio.session, "run", lambda *a, **k: 1 / 0)
    studio.generate(wait=True)
    assert studio.status.message == "Something went wrong: ZeroDivisionError: division by zero"
    assert "Traceback" in studio.last_error and not studio.busy


def _many_notes(n: int) -> bytes:
    notes = tuple(Note(i * 6, 60 + i % 12, 6) for i in range(n))
    return midi_bytes(Score(tracks=(Track("melody", notes=notes),), resolution=24, tempo=120))


@pytest.mark.parametrize(
    "name, data, size, message",
    [
        ("empty.mid", b"", 0, "Cannot import empty.mid: it is empty"),
        ("truncated.mid", None, 0, "Cannot import truncated.mid: it is corrupt or truncated"),
        ("notes.txt", b"these are my notes, not music", 29, "Cannot import notes.txt: it is not a MIDI file"),
        ("huge.mid", None, 5_000_000, "Cannot import huge.mid: it is 5.0 MB; the studio imports MIDI files up to 2 MB"),
        (
            "dense.mid",
            "many",
            0,
            f"has {MAX_STUDIO_NOTES + 1} notes; the studio opens pieces of up to {MAX_STUDIO_NOTES}",
        ),
    ],
)
@pytest.mark.slow
def test_a_malformed_import_is_one_line_and_changes_nothing(studio, name, data, size, message):
    if name == "truncated.mid":
        data = midi_bytes(load_sample("ode_to_joy"))[:60]
    if data == "many":
        data = _many_notes(MAX_STUDIO_NOTES + 1)
    before = (studio.session.input, studio.session.title, studio.input_roll.score, len(CompositionStore().list()))
    assert studio.import_midi(name, data, size) is False
    assert message in studio.status.message and studio.status.level == "error"
    assert "\n" not in studio.status.message and "Traceback" not in studio.status.message
    assert (
        studio.session.input,
        studio.session.title,
        studio.input_roll.score,
        len(CompositionStore().list()),
    ) == before
    assert MAX_IMPORT_BYTES == 2 * 1024 * 1024


def test_a_good_import_becomes_the_input_named_after_its_file(studio):
    assert studio.import_midi("Lullaby.mid", midi_bytes(load_sample("twinkle_twinkle")))
    assert studio.session.title == "Lullaby" and studio.session.input_kind == "import"
    assert len(studio.input_roll.score.notes) == len(load_sample("twinkle_twinkle").notes)
    assert "Lullaby" in studio.input_info.value


def test_a_keyboard_take_becomes_the_input_with_rhythm_assist(studio):
    studio.keyboard.events = [
        {"pitch": 60, "velocity": 100, "start": 0, "end": 230},
        {"pitch": 64, "velocity": 100, "start": 260, "end": 480},
    ]
    assert studio.session.input_kind == "recording" and studio.session.title == "My recording 1"
    assert [(n.pitch, n.start % 6) for n in studio.session.input.notes] == [(60, 0), (64, 0)]
    assert studio.input_roll.score.notes == studio.session.input.notes


def test_an_edited_input_is_saved_as_an_edit_of_the_sample_when_used(studio):
    melody = studio.session.input
    studio.session.input_parent_id()  # the sample is saved (as it is when a run needs it)
    edited = melody.with_track(0, melody.tracks[0].replace(notes=melody.tracks[0].notes[:-1]))
    studio.input_roll.score = edited
    studio.input_roll.apply()
    assert studio.session.input_kind == "edit"
    edit = CompositionStore().get(studio.session.parent_id())
    assert edit.technique == "edit" and CompositionStore().get(edit.parent).technique == "sample"


@pytest.mark.slow
def test_my_compositions_rename_tag_delete_open_and_download(studio):
    store = CompositionStore()
    sample = store.add(load_sample("twinkle_twinkle"), technique="sample", title="Twinkle")
    child = store.add(load_sample("twinkle_twinkle"), technique="edit", title="Twinkle (mine)", parent=sample.id)
    studio._refresh_compositions(select=child.id)
    rows = studio.table.rows
    assert [r["title"] for r in rows] == ["Twinkle (mine)", "Twinkle"]  # newest first
    assert rows[0]["parent"] == "Twinkle" and rows[0]["technique"] == "edit"
    assert studio.title_text.value == "Twinkle (mine)"

    studio.rename(child.id, "My twinkle")
    studio.tag(child.id, "class=4B")
    assert store.get(child.id).title == "My twinkle" and store.get(child.id).tags["class"] == "4B"
    assert studio.table.rows[0]["tags"] == "class=4B"
    studio._guard(lambda: studio.tag(child.id, "capsule:technique=magic"))
    assert studio.status.level == "error" and "reserved" in studio.status.message
    studio.untag(child.id, "class")
    assert "class" not in store.get(child.id).tags

    for kind, magic in (("mid", b"MThd"), ("wav", b"RIFF")):
        name, data = studio.download(kind, child.id)
        assert name == f"My_twinkle.{kind}" and data.startswith(magic)
    name, data = studio.download("mp3", child.id)
    assert name == "My_twinkle.mp3" and (data[:3] == b"ID3" or data[0] == 0xFF)

    studio.open(child.id)
    assert studio.session.input_kind == "composition" and studio.session.parent_id() == child.id

    studio._ask_delete()
    assert studio.confirm_box.layout.display == ""
    studio.delete(child.id)
    assert [c.id for c in store.list()] == [sample.id] and studio.confirm_box.layout.display == "none"
    assert studio.session.input_composition is None  # the open composition is gone: a run saves a fresh one


def test_composition_words():
    store = CompositionStore()
    a = store.add(load_sample("twinkle_twinkle"), technique="sample", title="Twinkle")
    b = store.add(
        load_sample("twinkle_twinkle"), technique="arcnn", title="Twinkle – AR-CNN 1", model="arcnn-bach", parent=a.id
    )
    c = store.add(load_sample("twinkle_twinkle"), technique="edit", title="Twinkle – edit 1", parent=b.id)
    assert composition_line(a) == "“Twinkle”, a sample melody"
    assert composition_line(b, a) == "“Twinkle – AR-CNN 1”, made by AR-CNN with arcnn-bach from “Twinkle”"
    assert composition_line(c, b) == "“Twinkle – edit 1”, your edit of “Twinkle – AR-CNN 1”"
    assert composition_line(c, None) == "“Twinkle – edit 1”, your edit of a deleted composition"
    assert composition_line(b, a, as_html=True).startswith("<q>Twinkle – AR-CNN 1</q>, made by AR-CNN")
    assert composition_row(b, a)["parent"] == "Twinkle" and composition_row(c)["parent"] == "(deleted)"
    d = store.add(load_sample("twinkle_twinkle"), technique="gan", title="Other root")
    forest = lineage_forest(store.list())
    assert [(n[0].title, [k[0].title for k in n[1]]) for n in forest] == [
        ("Twinkle", ["Twinkle – AR-CNN 1"]),
        ("Other root", []),
    ]
    assert family(forest, c.id)[0].id == a.id and family(forest, d.id)[0].id == d.id and family(forest, "x") is None
    store.delete(a.id)
    assert [n[0].title for n in lineage_forest(store.list())] == ["Twinkle – AR-CNN 1", "Other root"]


def test_a_studio_with_its_own_store_keeps_everything_there(tmp_path):
    own = CompositionStore(tmp_path / "class-4b")
    studio = Studio("mary_had_a_little_lamb", "gan", seed=None, store=own)
    studio.generate(wait=True)
    studio.generate(wait=True)
    comps = own.list()
    assert [c.technique for c in comps] == ["sample", "gan", "gan"] and comps[2].parent == comps[1].id
    assert isinstance(comps[1].parameters["seed"], int)  # random seeds are recorded too
    assert CompositionStore().list() == []

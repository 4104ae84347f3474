"""Technique panels: console names and ranges, the model picker, and 'Enhance again' saving a chain."""

import pytest

from capsule_lib import CapsuleError, CompositionStore, ModelRegistry, load_sample
from capsule_lib.techniques.arcnn import ArcnnConfig, ArcnnUNet
from capsule_lib.techniques.spec import technique_spec
from capsule_lib.widgets import (
    ArcnnPanel,
    GanPanel,
    ParameterForm,
    TransformerPanel,
    available_techniques,
    instrument_options,
    model_picker,
    technique_panel,
)


def test_controls_are_the_techniques_own_definition_on_one_form():
    panel = ArcnnPanel(load_sample("twinkle_twinkle"), show=False)
    rows = {r["name"]: r for r in panel.form.parameters}
    assert list(rows) == ["model", *technique_spec("arcnn").names]
    assert rows["sampling_iterations"]["label"] == "Sampling iterations"
    assert (rows["sampling_iterations"]["min"], rows["sampling_iterations"]["max"]) == (1, 100)
    assert (rows["max_remove_pct"]["min"], rows["max_remove_pct"]["max"], rows["max_remove_pct"]["unit"]) == (
        0,
        100,
        "%",
    )
    assert (rows["max_notes_added"]["min"], rows["max_notes_added"]["max"]) == (0, 1000)
    assert (rows["creative_risk"]["min"], rows["creative_risk"]["max"]) == (0, 4)
    assert rows["harmonize"]["label"] == "Harmonize" and rows["harmonize"]["kind"] == "bool"
    assert panel.parameters == technique_spec("arcnn").defaults() and panel.model == "arcnn-bach"
    assert panel.button.description == "Enhance again"
    # item 8 of issue 14: short labels (the explanation is help text), a button sized to its label
    assert all(len(r["label"]) <= 32 for r in panel.form.parameters)
    assert panel.button.layout.width == "auto"


def test_the_form_checks_values_against_the_definition():
    form = ParameterForm("arcnn")
    form["creative_risk"] = 2
    assert form["creative_risk"] == 2.0 and form.values["sampling_iterations"] == 12
    form.values = {**form.values, "sampling_iterations": 7.0}  # what a browser slider sends
    assert form["sampling_iterations"] == 7 and isinstance(form["sampling_iterations"], int)
    for bad in ({"creative_risk": 9}, {"temperature": 1}, {"harmonize": "yes"}):
        with pytest.raises(CapsuleError):
            form.values = {**form.values, **bad}
    assert form["creative_risk"] == 2.0
    form.reset()
    assert form.values == technique_spec("arcnn").defaults()


def test_model_picker_lists_sample_then_custom_finished_models():
    reg = ModelRegistry()
    reg.create("my-arcnn", "arcnn", hyperparameters={"model": ArcnnConfig(base_channels=4, depth=1).to_dict()})
    reg.save_weights("my-arcnn", ArcnnUNet(ArcnnConfig(base_channels=4, depth=1)).state_dict())
    reg.update("my-arcnn", status="complete")
    reg.create("unfinished", "arcnn")
    picker = model_picker("arcnn")
    names = [v for _, v in picker.options]
    assert names[0] == "arcnn-bach" and "my-arcnn" in names and "unfinished" not in names
    assert picker.options[0][0] == "arcnn-bach (sample)"
    with pytest.raises(CapsuleError, match="nope"):
        model_picker("arcnn", "nope")
    empty = ModelRegistry(sample_dir=reg.root / "no-samples")
    with pytest.raises(CapsuleError, match="no finished gan model"):
        model_picker("gan", registry=empty)


def test_enhance_again_chains_compositions_with_parents_and_parameters():
    store = CompositionStore()
    melody = load_sample("twinkle_twinkle")
    origin = store.add(melody, technique="sample")
    seen = []
    panel = ArcnnPanel(melody, origin.id, seed=5, show=False, on_result=lambda s, c: seen.append(c.id))
    panel.form["sampling_iterations"] = 3
    panel.form["max_notes_added"] = 6
    first, c1 = panel.run()
    second, c2 = panel.run()
    assert c1.parent == origin.id and c2.parent == c1.id
    assert c1.parameters["sampling_iterations"] == 3 and c1.parameters["max_notes_added"] == 6
    assert (c1.parameters["seed"], c2.parameters["seed"]) == (5, 6)
    assert seen == [c1.id, c2.id]
    assert panel.current == second and store.load(c2.id).notes == second.notes
    # The result line names the composition, what made it and its parent -- not its id.
    assert (c1.title, c2.title) == (
        "Twinkle, Twinkle, Little Star – AR-CNN 1",
        "Twinkle, Twinkle, Little Star – AR-CNN 2",
    )
    assert (
        "Saved <q>Twinkle, Twinkle, Little Star – AR-CNN 2</q>, made by AR-CNN with arcnn-bach from "
        "<q>Twinkle, Twinkle, Little Star – AR-CNN 1</q>" in panel.status.value
    )
    assert c2.id not in panel.status.value


def test_button_reports_errors_in_the_panel_instead_of_raising():
    panel = ArcnnPanel(load_sample("twinkle_twinkle"), show=False)
    panel.form.set_rows(
        [model_parameter_named("gone"), *technique_spec("arcnn").parameters]
    )  # a model deleted meanwhile
    panel._clicked()
    assert "gone" in panel.status.value and panel.results == []


def test_technique_panel_dispatch():
    assert available_techniques() == ["arcnn", "gan", "transformer"]
    assert isinstance(technique_panel("arcnn", load_sample("ode_to_joy"), show=False), ArcnnPanel)
    assert isinstance(technique_panel("transformer", load_sample("ode_to_joy"), show=False), TransformerPanel)
    _tiny_gan()
    assert isinstance(technique_panel("gan", load_sample("ode_to_joy"), model="tiny-gan", show=False), GanPanel)
    with pytest.raises(CapsuleError, match="no panel for technique 'vae'"):
        technique_panel("vae", load_sample("ode_to_joy"))
    with pytest.raises(CapsuleError):
        ArcnnPanel("not a score")


def test_extend_again_chains_transformer_compositions():
    melody = load_sample("twinkle_twinkle")
    panel = TransformerPanel(melody, seed=2, show=False)
    rows = {r["name"]: r for r in panel.form.parameters}
    assert panel.form["sampling"] == "topk" and [v for _, v in rows["sampling"]["choices"]] == [
        "topk",
        "nucleus",
        "random",
    ]
    assert (rows["threshold"]["min"], rows["threshold"]["max"]) == (0.1, 0.99)
    assert (rows["extension_duration"]["min"], rows["extension_duration"]["max"]) == (1.0, 60.0)
    assert panel.button.description == "Extend again"
    panel.form["extension_duration"] = 4.0
    panel.form["sampling"] = "nucleus"
    first, c1 = panel.run()
    second, c2 = panel.run()
    assert c2.parent == c1.id and c1.technique == "transformer"
    assert c1.parameters["sampling"] == "nucleus" and c1.parameters["extension_duration"] == 4.0
    assert second.tracks[0].notes[: len(first.tracks[0].notes)] == first.tracks[0].notes


def _tiny_gan(name: str = "tiny-gan"):
    """An untrained (random-weight) GAN registered as finished: enough to drive the panel."""
    from capsule_lib.datasets.multitrack import GENRES
    from capsule_lib.techniques.gan import GanConfig, build_generator

    cfg = GanConfig(z_dim=4, width=8, critic_width=8)
    reg = ModelRegistry()
    reg.create(
        name,
        "gan",
        algorithm="MuseGAN",
        hyperparameters={"model": cfg.to_dict(), "genre": GENRES["quartet"].to_dict(), "polyphony": [1, 1, 1, 1]},
    )
    reg.save_weights(name, build_generator(cfg).state_dict())
    reg.update(name, status="complete")


def test_accompany_again_applies_the_chosen_instruments_and_chains_compositions():
    _tiny_gan()
    melody = load_sample("twinkle_twinkle")
    panel = GanPanel(melody, model="tiny-gan", seed=4, show=False)
    assert panel.button.description == "Accompany again"
    assert panel.instruments == {"violin 2": 40, "viola": 41, "cello": 42}
    assert [r.label for r in panel.form.rows] == ["Model", "violin 2", "viola", "cello"]
    assert len(instrument_options()) == 128 and instrument_options()[41] == ("41 Viola", 41)
    panel.form["instrument:viola"] = 71  # clarinet
    first, c1 = panel.run()
    second, c2 = panel.run()
    for result in (first, second):
        assert result.tracks[0] == melody.tracks[0]
        assert [t.name for t in result.tracks] == [melody.tracks[0].name, "violin 2", "viola", "cello"]
        assert result.tracks[2].program == 71 and result.tracks[1].program == 40
    assert c2.parent == c1.id and (c1.parameters["seed"], c2.parameters["seed"]) == (4, 5)
    assert c1.parameters["instruments"]["viola"] == 71 and c1.technique == "gan"
    assert CompositionStore().load(c2.id).tracks[2].program == 71


def model_parameter_named(name: str):
    from capsule_lib.techniques.spec import Parameter

    return Parameter("model", "Model", "choice", name, choices=((name, name),))


def test_choosing_another_gan_model_brings_its_tracks_and_their_instruments():
    _tiny_gan("tiny-a")
    panel = GanPanel(load_sample("twinkle_twinkle"), model="tiny-a", show=False)
    panel.form["instrument:viola"] = 71
    panel.form["model"] = "musegan-chorale"
    assert panel.instruments == {"alto": 52, "tenor": 52, "bass": 52}
    assert [r.label for r in panel.form.rows] == ["Model", "alto", "tenor", "bass"]

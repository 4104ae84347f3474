"""One definition per technique: the samplers, the command line and the widgets all read the same parameters."""

import inspect
import subprocess
import sys

import pytest

from capsule_lib import CapsuleError
from capsule_lib.cli import build_parser
from capsule_lib.techniques.spec import Parameter, technique, technique_names, technique_spec


def test_the_console_labels_ranges_and_defaults_of_the_ar_cnn():
    spec = technique_spec("arcnn")
    assert (spec.title, spec.verb, spec.default_model) == ("AR-CNN", "Enhance", "arcnn-bach")
    got = [(p.name, p.label, p.default, p.low, p.high) for p in spec.parameters if p.kind != "bool"]
    assert got == [
        ("sampling_iterations", "Sampling iterations", 12, 1, 100),
        ("max_remove_pct", "Maximum input notes to remove", 20.0, 0, 100),
        ("max_notes_added", "Maximum number of notes to add", 400, 0, 1000),
        ("creative_risk", "Creative risk", 1.0, 0, 4),
    ]
    assert spec["harmonize"].default is False and spec["harmonize"].label == "Harmonize"


def test_the_transformer_sliders_stay_in_the_console_range_while_the_library_accepts_more():
    spec = technique_spec("transformer")
    ext = spec["extension_duration"]
    assert ext.default == 30.0 and ext.slider_range == (1.0, 60.0)
    assert ext.check(300.0) == 300.0
    with pytest.raises(CapsuleError, match="more than 0 and at most 300"):
        ext.check(0.0)
    assert spec["sampling"].values == ("topk", "nucleus", "random")
    assert technique_spec("gan").parameters == ()


@pytest.mark.parametrize(
    "technique, function",
    [
        ("arcnn", "capsule_lib.techniques.arcnn.sample:enhance"),
        ("transformer", "capsule_lib.techniques.transformer.sample:extend"),
    ],
)
def test_the_library_functions_default_to_the_definition(technique, function):
    import importlib

    module, name = function.split(":")
    signature = inspect.signature(getattr(importlib.import_module(module), name))
    spec = technique_spec(technique)
    for p in spec.parameters:
        assert signature.parameters[p.name].default == p.default, p.name


def test_the_library_range_checks_are_the_definition():
    from capsule_lib.techniques.arcnn import sample as ar
    from capsule_lib.techniques.transformer import sample as tf

    assert ar.RANGES["creative_risk"] == (0, 4) and ar.DEFAULTS == technique_spec("arcnn").defaults()
    assert (
        tf.RANGES["input_duration"] == (0.0, 600.0, False) and tf.DEFAULTS == technique_spec("transformer").defaults()
    )


def test_the_command_line_defaults_are_the_definition():
    parser = build_parser()
    enhance = parser.parse_args(["enhance", "x.mid", "-o", "y.mid"])
    spec = technique_spec("arcnn")
    assert (
        enhance.model,
        enhance.sampling_iterations,
        enhance.max_remove_pct,
        enhance.max_notes_added,
        enhance.creative_risk,
    ) == (
        spec.default_model,
        *(spec[k].default for k in ("sampling_iterations", "max_remove_pct", "max_notes_added", "creative_risk")),
    )
    extend = parser.parse_args(["extend", "x.mid", "-o", "y.mid"])
    tf = technique_spec("transformer")
    assert (extend.model, extend.sampling, extend.creative_risk, extend.extension_duration) == (
        tf.default_model,
        tf["sampling"].default,
        tf["creative_risk"].default,
        tf["extension_duration"].default,
    )


def test_check_fills_defaults_and_refuses_unknown_or_out_of_range_values():
    spec = technique_spec("arcnn")
    assert spec.check({"creative_risk": 2}) == {**spec.defaults(), "creative_risk": 2.0}
    with pytest.raises(CapsuleError, match="no parameter temperature"):
        spec.check({"temperature": 1})
    with pytest.raises(CapsuleError, match="outside 1-100"):
        spec.check({"sampling_iterations": 0})
    with pytest.raises(CapsuleError, match="whole number"):
        spec.check({"sampling_iterations": 2.5})
    with pytest.raises(CapsuleError, match="no technique 'vae'"):
        technique_spec("vae")
    assert technique_names() == ("arcnn", "gan", "transformer")


def test_a_definition_refuses_a_default_outside_its_own_range():
    with pytest.raises(CapsuleError):
        Parameter("x", "X", "int", 5, 0, 3)
    with pytest.raises(ValueError):
        Parameter("x", "X", "choice", "c", choices=(("A", "a"),))


def test_reading_the_definitions_loads_no_torch():
    code = (
        "import sys; from capsule_lib.techniques.spec import technique_spec\n"
        "[technique_spec(t) for t in ('arcnn', 'gan', 'transformer')]\n"
        "assert 'torch' not in sys.modules and 'music21' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the registry: a new technique is one folder and one name --------------------------------------------


def _echo_run(
    score, model="echo-model", seed=None, save=True, *, repeat=2, parent=None, title=None, return_composition=False
):
    """A technique that plays the melody ``repeat`` times (what a fourth technique's ``run`` looks like)."""
    from capsule_lib.score import Note
    from capsule_lib.techniques._common import finish_inference
    from capsule_lib.techniques.spec import technique

    repeat = technique("echo").spec["repeat"].check(repeat)
    melody = score.tracks[0]
    length = score.end
    notes = tuple(
        Note(n.start + k * length, n.pitch, n.duration, n.velocity) for k in range(repeat) for n in melody.notes
    )
    result = score.replace(tracks=(melody.replace(notes=notes), *score.tracks[1:]))
    return finish_inference(
        result,
        "echo",
        None,
        {"repeat": repeat, "seed": seed},
        save=save,
        parent=parent,
        title=title,
        return_composition=return_composition,
    )


@pytest.fixture
def echo_registered(monkeypatch):
    """A fourth technique, ``echo``, registered as a folder would be: its ``technique`` module and one
    more name in the registry."""
    import types

    from capsule_lib import technique_registry
    from capsule_lib.techniques.spec import Technique, TechniqueSpec

    echo_spec = TechniqueSpec(
        "echo",
        "Echo",
        "Echo",
        "Echoing",
        "echo-model",
        "Plays the melody again.",
        (Parameter("repeat", "Repeats", "int", 2, 1, 4, step=1, help="How often it plays."),),
    )
    module = types.ModuleType("capsule_lib.techniques.echo.technique")
    module.TECHNIQUE = Technique(
        echo_spec, "echo", "Echo: play a melody again", run_ref=_echo_run, load_ref=lambda name: None
    )
    monkeypatch.setitem(sys.modules, "capsule_lib.techniques.echo", types.ModuleType("capsule_lib.techniques.echo"))
    monkeypatch.setitem(sys.modules, "capsule_lib.techniques.echo.technique", module)
    monkeypatch.setattr(technique_registry, "TECHNIQUES", (*technique_registry.TECHNIQUES, "echo"))
    return module.TECHNIQUE


def test_a_registered_technique_gets_a_command_with_its_options_and_runs(echo_registered, tmp_path, capsys):
    from capsule_lib import CompositionStore
    from capsule_lib.cli import main
    from capsule_lib.midi import read_midi

    args = build_parser().parse_args(["echo", "x.mid", "-o", "y.mid"])
    assert (args.repeat, args.model, args.technique) == (2, "echo-model", "echo")
    out = tmp_path / "echo.mid"
    assert main(["echo", "ode_to_joy", "-o", str(out), "--repeat", "3", "--title", "thrice"]) == 0
    line = capsys.readouterr().out.strip()
    comp = CompositionStore().get(line.split("(composition ")[1].rstrip(")"))
    assert line.startswith(str(out)) and comp.technique == "echo" and comp.parameters["repeat"] == 3
    from capsule_lib import load_sample

    assert len(read_midi(out).tracks[0].notes) == 3 * len(load_sample("ode_to_joy").tracks[0].notes)
    assert main(["echo", "ode_to_joy", "-o", str(tmp_path / "x.mid"), "--repeat", "9"]) == 2  # the spec's range
    assert main(["train", "echo"]) == 2  # no trainer: not a choice of 'capsule train'


def test_a_registered_technique_gets_a_panel_and_a_place_in_the_studio(echo_registered):
    from capsule_lib import ModelRegistry, load_sample
    from capsule_lib.widgets import Studio, available_techniques, technique_panel

    assert available_techniques()[-1] == "echo"
    reg = ModelRegistry()
    reg.create("echo-model", "echo")
    reg.update("echo-model", status="complete")
    panel = technique_panel("echo", load_sample("ode_to_joy"), show=False)
    assert [r["name"] for r in panel.form.parameters] == [
        "model",
        "repeat",
    ] and panel.button.description == "Echo again"
    panel.form["repeat"] = 4
    result, comp = panel.run()
    assert comp.technique == "echo" and len(result.tracks[0].notes) == 4 * len(
        load_sample("ode_to_joy").tracks[0].notes
    )
    studio = Studio("ode_to_joy", "echo", seed=1)
    assert ("Echo", "echo") in list(studio.technique.options)
    version = studio.session.run("echo", "echo-model", {"repeat": 3})
    assert version.technique == "echo" and version.composition.parameters["repeat"] == 3
    assert len(version.score.tracks[0].notes) == 3 * len(load_sample("ode_to_joy").tracks[0].notes)


def test_train_and_evaluate_options_become_each_trainers_keyword_arguments():
    """The shared options (seed, limit, --quiet, --no-eval) map the same way for every technique;
    an optional one not given (the Transformer's --batch-size, the GAN's --epochs) is left to the trainer's default."""
    parser = build_parser()
    args = parser.parse_args(
        ["train", "transformer", "--steps", "7", "--lr", "0.1", "--quiet", "--seed", "4", "--limit", "5"]
    )
    assert technique("transformer").train_arguments(args) == {
        "seed": 4,
        "limit": 5,
        "progress": False,
        "evaluate": True,
        "eval_pieces": None,
        "steps": 7,
        "lr": 0.1,
    }
    args = parser.parse_args(["train", "gan", "--update-ratio", "2", "--no-eval", "--max-steps", "3"])
    assert technique("gan").train_arguments(args) == {
        "seed": 0,
        "limit": None,
        "progress": True,
        "evaluate": False,
        "algorithm": "musegan",
        "dataset": "chorale",
        "sample_every": 10,
        "fold": 0,
        "max_steps_per_epoch": 3,
        "update_ratio": 2,
    }
    args = parser.parse_args(["train", "arcnn", "--epochs", "5"])
    assert technique("arcnn").train_arguments(args)["epochs"] == 5
    args = parser.parse_args(["evaluate", "m", "--max-windows", "6", "--seed", "1"])
    assert technique("arcnn").evaluate_arguments(args) == {
        "seed": 1,
        "limit": None,
        "progress": True,
        "split": "test",
        "max_windows": 6,
    }

"""Accompanying a melody with a GAN: loading it, any length and resolution, the melody kept verbatim."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from gan_fixtures import SPEC

from capsule_lib import CapsuleError, Note, Score, Track, load_sample, set_instrument
from capsule_lib.datasets.multitrack import N_PITCHES, SAMPLE_STEPS
from capsule_lib.store import CompositionStore
from capsule_lib.techniques.gan import DecoderSettings, GanConfig, LoadedGan, accompany, build_generator, load_gan
from capsule_lib.techniques.gan.sample import generate_samples

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_accompany_keeps_the_melody_verbatim_and_adds_the_genre_tracks(in_tiny_home):
    melody = load_sample("ode_to_joy")
    out, comp = accompany(melody, model="tiny-gan", seed=3, return_composition=True)
    assert out.tracks[0] == melody.tracks[0]
    assert [t.name for t in out.tracks[1:]] == ["alto", "tenor", "bass"]
    assert [t.program for t in out.tracks[1:]] == list(SPEC.programs[1:])
    assert (out.resolution, out.tempo, out.time_signature) == (melody.resolution, melody.tempo, melody.time_signature)
    bar_end = -(-melody.tracks[0].end // melody.steps_per_bar) * melody.steps_per_bar
    assert all(n.end <= bar_end for t in out.tracks[1:] for n in t.notes)
    assert out == accompany(melody, model="tiny-gan", seed=3, save=False)  # same seed, same music
    stored = CompositionStore().get(comp.id)
    assert stored.technique == "gan" and stored.model == "tiny-gan" and stored.parameters["seed"] == 3


def test_accompany_handles_any_length_and_resolution(in_tiny_home):
    notes = tuple(Note(i * 12, 60 + (i % 5), 12) for i in range(2 * 9 * 4))  # 18 bars at 12 steps per beat
    score = Score(tracks=(Track("tune", 73, notes=notes),), resolution=12, tempo=90)
    out = accompany(score, model="tiny-gan", seed=1, save=False)
    assert out.tracks[0] == score.tracks[0] and out.resolution == 12
    ends = [n.end for t in out.tracks[1:] for n in t.notes]
    assert not ends or max(ends) <= score.tracks[0].end
    net = load_gan("tiny-gan")
    assert net.spec.tracks == SPEC.tracks and len(net.polyphony) == 4


def test_a_loaded_gan_is_a_frozen_record_of_its_card(in_tiny_home, tiny_model):
    gan = load_gan("tiny-gan")
    hp = tiny_model.hyperparameters
    assert isinstance(gan, LoadedGan) and gan.name == "tiny-gan" and gan.fold == 0
    assert gan.config == GanConfig.from_dict(hp["model"]) and not gan.generator.training
    assert gan.decoder == DecoderSettings(
        tuple(hp["polyphony"]),
        tuple(hp["switch_penalty"]),
        tuple(hp["chord_threshold"]),
        tuple(hp["rest_weight"]),
        hp["voice_leading"],
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        gan.name = "other"
    assert not hasattr(gan.generator, "spec")  # nothing hung on the network


def test_accompany_refuses_bad_input(in_tiny_home):
    with pytest.raises(CapsuleError, match="needs a Score"):
        accompany("ode_to_joy", model="tiny-gan")
    with pytest.raises(CapsuleError, match="no notes"):
        accompany(Score(tracks=(Track(),)), model="tiny-gan")
    drums = Score(tracks=(Track("kit", is_drum=True, notes=(Note(0, 36, 4),)),))
    with pytest.raises(CapsuleError, match="drum"):
        accompany(drums, model="tiny-gan")
    with pytest.raises(CapsuleError, match="seed"):
        accompany(load_sample("ode_to_joy"), model="tiny-gan", seed=-1)
    with pytest.raises(CapsuleError, match="not a GAN|is a"):
        accompany(load_sample("ode_to_joy"), model="arcnn-bach")
    with pytest.raises(CapsuleError, match="LoadedGan"):
        accompany(load_sample("ode_to_joy"), model=load_gan("tiny-gan").generator)


def test_generate_samples_returns_the_melody_unchanged():
    gen = build_generator(GanConfig(z_dim=8, width=16, critic_width=16))
    gan = LoadedGan(gen, SPEC, DecoderSettings(polyphony=(1, 1, 1, 1)))
    melodies = np.zeros((3, SAMPLE_STEPS, N_PITCHES), bool)
    melodies[:, ::4, 36] = True
    out = generate_samples(gan, melodies, seed=5)
    assert out.shape == (3, 4, SAMPLE_STEPS, N_PITCHES) and np.array_equal(out[:, 0], melodies)
    assert np.array_equal(out, generate_samples(gan, melodies, seed=5))
    assert (out[:, 1:].sum(axis=-1) <= 1).all()  # polyphony 1: one pitch per step at most


@pytest.mark.slow
def test_accompanying_a_melody_does_not_load_the_training_module():
    code = (
        "import sys, capsule_lib as cl\n"
        "from capsule_lib.techniques.gan.sample import load_gan\n"
        "gan = load_gan('musegan-chorale')\n"
        "cl.accompany(cl.load_sample('ode_to_joy'), model=gan, seed=1, save=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith('capsule_lib.techniques.gan.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = out.strip()
    assert "capsule_lib.techniques.gan.sample" in loaded
    for above in ("train", "evaluate", "views", "card"):
        assert f"capsule_lib.techniques.gan.{above}'" not in loaded, above


def test_set_instrument_changes_a_track_and_refuses_drums():
    score = Score(
        tracks=(Track("tune", 0, notes=(Note(0, 60, 4),)), Track("kit", is_drum=True, notes=(Note(0, 36, 1),)))
    )
    assert set_instrument(score, 0, 41).tracks[0].program == 41
    with pytest.raises(CapsuleError, match="drum"):
        set_instrument(score, 1, 5)
    with pytest.raises(CapsuleError, match="0-127"):
        set_instrument(score, 0, 128)

"""GAN networks: the generators write the accompaniment from melody and noise, the critic scores all tracks."""

from __future__ import annotations

import pytest
import torch

from capsule_lib import CapsuleError
from capsule_lib.datasets.multitrack import N_PITCHES, SAMPLE_STEPS
from capsule_lib.techniques.gan import Critic, GanConfig, build_generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("algorithm", ["musegan", "unet"])
@pytest.mark.parametrize("n_tracks", [4, 6])
def test_generators_write_the_accompaniment_tracks_in_range(algorithm, n_tracks):
    cfg = GanConfig(algorithm=algorithm, n_tracks=n_tracks, z_dim=8, width=16, critic_width=16)
    gen, critic = build_generator(cfg), Critic(cfg)
    melody = torch.rand(3, 1, SAMPLE_STEPS, N_PITCHES) * 2 - 1
    out = gen(melody)
    assert out.shape == (3, n_tracks - 1, SAMPLE_STEPS, N_PITCHES)
    assert out.abs().max() <= 1
    assert critic(torch.cat([melody, out], 1)).shape == (3,)
    # the noise matters: two draws differ, a fixed draw repeats
    gen.eval()
    noise = torch.randn(3, gen.noise_dim)
    assert torch.equal(gen(melody, noise), gen(melody, noise))
    assert not torch.equal(gen(melody, noise), gen(melody, torch.randn(3, gen.noise_dim)))


def test_generator_output_depends_on_the_melody():
    gen = build_generator(GanConfig(z_dim=8, width=16, critic_width=16)).eval()
    noise = torch.randn(2, gen.noise_dim)
    a = torch.full((2, 1, SAMPLE_STEPS, N_PITCHES), -1.0)
    b = a.clone()
    b[:, :, :, 40] = 1
    assert not torch.allclose(gen(a, noise), gen(b, noise))


def test_config_checks():
    with pytest.raises(CapsuleError, match="unknown GAN algorithm"):
        GanConfig(algorithm="vae")
    with pytest.raises(CapsuleError, match="n_tracks"):
        GanConfig(n_tracks=1)
    assert GanConfig.from_dict(GanConfig(width=8).to_dict()) == GanConfig(width=8)

"""Melody-conditioned generators (MuseGAN hybrid, U-Net) and the WGAN-GP critic.

Tensors are piano rolls ``(batch, tracks, bars * steps, pitches)`` with values in
``[-1, 1]`` (-1 silent, +1 sounding), the melody as track 0.  A generator reads the
melody ``(batch, 1, T, P)`` and noise and writes the ``tracks - 1`` accompaniment tracks;
the critic reads all tracks together, so it judges the accompaniment *against* the melody.

``MuseGANGenerator`` (Dong et al., 2018, the "hybrid" model, conditioned on the melody
like the DeepComposer version)
    Four noise vectors per sample: shared and time-independent, shared and
    time-dependent (one per bar, made by a small temporal network), private per track
    and time-independent, private per track and time-dependent.  For each bar and track
    they are joined with an encoding of that bar of the melody; a *shared* bar network
    (the same weights for every track) turns that into a coarse (steps x octaves) map,
    then a *private* network per track writes the track's (steps x pitches) bar.  The
    melody encoder's beat- and octave-level features are fed to the shared and private
    stages (skip connections), and so are the melody's pitch classes (at each step, over
    the beat, the bar and the whole 4 bars -- its key) at every octave, so that a bass two octaves below the tune still
    hears its harmony.

``UNetGenerator``
    The image-to-image view: the melody roll goes through a convolutional encoder
    (time and pitch halved at each level), noise joins at the bottleneck, and a decoder
    with skip connections writes all accompaniment tracks as output channels.

``Critic``
    Per-track private convolutions (grouped), then shared ones over bars, steps and
    octaves; a chroma stream (each track's 12 pitch classes per step) and an onset
    stream (where notes start) join before the final layer, as in MuseGAN.  No batch
    norm (WGAN-GP penalises per-sample gradients).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...datasets.multitrack import N_BARS, N_PITCHES, STEPS_PER_BAR
from ...errors import CapsuleError

__all__ = ["GanConfig", "MuseGANGenerator", "UNetGenerator", "Critic", "build_generator", "ALGORITHMS"]

ALGORITHMS = ("musegan", "unet")
OCTAVES = N_PITCHES // 12


@dataclass
class GanConfig:
    """Network shape: algorithm, track count, noise size and widths."""

    algorithm: str = "musegan"
    n_tracks: int = 4
    z_dim: int = 32
    width: int = 64
    critic_width: int = 64

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise CapsuleError(f"unknown GAN algorithm {self.algorithm!r} (expected musegan or unet)")
        # The same ranges as capsule_lib.card_schema (a card is checked before a network is built).
        for name, lo, hi in (("n_tracks", 2, 16), ("z_dim", 1, 1024), ("width", 1, 512), ("critic_width", 1, 512)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise CapsuleError(f"{name} must be a whole number {lo}-{hi}, got {v!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GanConfig:
        if not isinstance(d, dict):
            raise CapsuleError("the GAN model config is not a dict")
        known = {k: d[k] for k in ("algorithm", "n_tracks", "z_dim", "width", "critic_width") if k in d}
        return cls(**known)


class _TrackLinear(nn.Module):
    """A separate linear map per track: ``(..., k, ..., cin)`` with the track axis at ``dim``."""

    def __init__(self, k: int, cin: int, cout: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(k, cin, cout) / cin**0.5)
        self.bias = nn.Parameter(torch.zeros(k, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (n, k, m, cin) -> (n, k, m, cout)
        return torch.einsum("nkmc,kcd->nkmd", x, self.weight) + self.bias[None, :, None, :]


class _Norm(nn.Module):
    """Batch norm over the last (channel) axis of any shape."""

    def __init__(self, c: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.reshape(-1, x.shape[-1])).view(x.shape)


class _MelodyEncoder(nn.Module):
    """Bars of melody ``(n, 16, 84)`` -> octave map ``(n, 16, 7, c/2)``, beat map ``(n, 4, 7, c)``, code ``(n, c)``.

    The layers are convolutions whose kernels equal their strides (an octave of
    pitches, a beat of steps), written as linear maps on reshaped rolls: the same
    arithmetic, many times faster on a CPU.
    """

    def __init__(self, c: int):
        super().__init__()
        self.octave = nn.Linear(12, c // 2)
        self.beat = nn.Linear(4 * (c // 2), c)
        self.code = nn.Linear(4 * OCTAVES * c, c)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, bars: torch.Tensor):
        n = bars.shape[0]
        o = self.act(self.octave(bars.reshape(n, STEPS_PER_BAR, OCTAVES, 12)))  # (n, 16, 7, c/2)
        b = o.view(n, 4, 4, OCTAVES, -1).permute(0, 1, 3, 2, 4).reshape(n, 4, OCTAVES, -1)
        b = self.act(self.beat(b))  # (n, 4, 7, c)
        return o, b, self.act(self.code(b.reshape(n, -1)))


class MuseGANGenerator(nn.Module):
    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        c, z = config.width, config.z_dim
        k = self.n_out = config.n_tracks - 1
        h = c // 2
        self.encoder = _MelodyEncoder(c)
        self.temporal_shared = nn.Sequential(nn.Linear(z, z * N_BARS), nn.Tanh())
        self.temporal_private = nn.Linear(z, z * N_BARS)  # applied per track to its own noise
        in_dim = 4 * z + c
        # shared bar network (same weights for every track): vector -> (4 beats, 7 octaves, c)
        self.project = nn.Linear(in_dim, 4 * OCTAVES * c)
        self.project_norm = _Norm(c)
        # ... -> (16 steps, 7 octaves, c), reading the melody's beat map too
        self.shared_time = nn.Linear(2 * c, 4 * c)
        self.shared_norm = _Norm(c)
        # private per-track networks: octave features (+ the melody's octave map) -> the
        # octave's 12 pitches, plus a per-track weight on the melody roll itself
        self.private_hidden = _TrackLinear(k, c + h + 48 + OCTAVES, c)
        self.private_norm = _Norm(k * c)
        self.private_pitch = _TrackLinear(k, c, 12)
        self.melody_weight = nn.Parameter(torch.zeros(k))

    @property
    def noise_dim(self) -> int:
        return (2 + 2 * self.n_out) * self.config.z_dim

    def forward(self, melody: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``melody (B, 1, 64, 84)`` in [-1, 1] -> accompaniment ``(B, tracks - 1, 64, 84)`` in [-1, 1]."""
        bsz = melody.shape[0]
        k, z, c = self.n_out, self.config.z_dim, self.config.width
        n = bsz * N_BARS
        if noise is None:
            noise = torch.randn(bsz, self.noise_dim, device=melody.device)
        z_shared, z_tshared, rest = noise[:, :z], noise[:, z : 2 * z], noise[:, 2 * z :]
        z_private = rest[:, : k * z].view(bsz, k, z)
        z_tprivate = rest[:, k * z :].view(bsz, k, z)
        bars = melody.reshape(n, STEPS_PER_BAR, N_PITCHES)
        oct_map, beat_map, code = self.encoder(bars)
        t_shared = self.temporal_shared(z_tshared).view(bsz, N_BARS, z)
        t_private = torch.tanh(self.temporal_private(z_tprivate)).view(bsz, k, N_BARS, z)
        vec = torch.cat(
            [
                z_shared[:, None, None, :].expand(bsz, N_BARS, k, z),
                t_shared[:, :, None, :].expand(bsz, N_BARS, k, z),
                z_private[:, None, :, :].expand(bsz, N_BARS, k, z),
                t_private.permute(0, 2, 1, 3),
                code.view(bsz, N_BARS, 1, c).expand(bsz, N_BARS, k, c),
            ],
            dim=-1,
        )  # (B, bars, k, in_dim)
        x = F.relu(self.project_norm(self.project(vec).view(n, k, 4, OCTAVES, c)))
        x = torch.cat([x, beat_map[:, None].expand(n, k, 4, OCTAVES, c)], -1)
        x = self.shared_time(x).view(n, k, 4, OCTAVES, 4, c).permute(0, 1, 2, 4, 3, 5)
        x = F.relu(self.shared_norm(x.reshape(n, k, STEPS_PER_BAR, OCTAVES, c)))
        # the melody's pitch classes now, over the beat, the bar and all 4 bars (its key), and
        # which octave this is -- at every octave
        chroma = bars.view(n, STEPS_PER_BAR, OCTAVES, 12).add(1).mul(0.5).sum(2)  # (n, 16, 12)
        beat_chroma = chroma.view(n, 4, 4, 12).mean(2, keepdim=True).expand(n, 4, 4, 12).reshape(n, STEPS_PER_BAR, 12)
        bar_chroma = chroma.mean(1, keepdim=True)  # (n, 1, 12)
        key_chroma = (
            bar_chroma.view(bsz, N_BARS, 1, 12).mean(1, keepdim=True).expand(bsz, N_BARS, 1, 12).reshape(n, 1, 12)
        )
        harmony = torch.cat(
            [chroma, beat_chroma, bar_chroma.expand(n, STEPS_PER_BAR, 12), key_chroma.expand(n, STEPS_PER_BAR, 12)], -1
        )
        harmony = harmony[:, None, :, None, :].expand(n, k, STEPS_PER_BAR, OCTAVES, 48)
        octave = torch.eye(OCTAVES, device=bars.device)[None, None, None].expand(n, k, STEPS_PER_BAR, OCTAVES, OCTAVES)
        x = torch.cat(
            [x, oct_map[:, None].expand(n, k, STEPS_PER_BAR, OCTAVES, oct_map.shape[-1]), harmony, octave], -1
        )
        x = self.private_hidden(x.reshape(n, k, STEPS_PER_BAR * OCTAVES, -1))  # (n, k, 16*7, c)
        x = F.relu(self.private_norm(x.permute(0, 2, 1, 3).reshape(n, -1, k * c)).view(n, -1, k, c)).permute(0, 2, 1, 3)
        x = self.private_pitch(x).reshape(n, k, STEPS_PER_BAR * N_PITCHES)  # 16 steps x 7 octaves x 12
        mel = bars.reshape(n, 1, STEPS_PER_BAR * N_PITCHES)
        x = torch.tanh(x + self.melody_weight[None, :, None] * mel)
        return (
            x.view(bsz, N_BARS, k, STEPS_PER_BAR, N_PITCHES)
            .permute(0, 2, 1, 3, 4)
            .reshape(bsz, k, N_BARS * STEPS_PER_BAR, N_PITCHES)
        )


class _Down(nn.Sequential):
    def __init__(self, cin, cout, kernel, stride, padding):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class _Up(nn.Sequential):
    def __init__(self, cin, cout, kernel, stride, padding):
        super().__init__(nn.ConvTranspose2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout), nn.ReLU())


class UNetGenerator(nn.Module):
    """Melody roll ``(B, 1, 64, 84)`` -> accompaniment ``(B, tracks - 1, 64, 84)``."""

    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        c = config.width
        self.n_out = config.n_tracks - 1
        # (64, 84) -> (32, 42) -> (16, 21) -> (8, 7) -> (4, 7) -> (1, 1)
        self.d1 = _Down(1, c // 2, (4, 4), (2, 2), (1, 1))
        self.d2 = _Down(c // 2, c, (4, 4), (2, 2), (1, 1))
        self.d3 = _Down(c, c, (4, 3), (2, 3), (1, 0))
        self.d4 = _Down(c, 2 * c, (4, 1), (2, 1), (1, 0))
        self.d5 = nn.Sequential(nn.Conv2d(2 * c, 2 * c, (4, 7)), nn.LeakyReLU(0.2))
        self.noise = nn.Linear(config.z_dim, 2 * c)
        self.u5 = _Up(4 * c, 2 * c, (4, 7), 1, 0)
        self.u4 = _Up(4 * c, c, (4, 1), (2, 1), (1, 0))
        self.u3 = _Up(2 * c, c, (4, 3), (2, 3), (1, 0))
        self.u2 = _Up(2 * c, c // 2, (4, 4), (2, 2), (1, 1))
        self.u1 = nn.ConvTranspose2d(c, c // 2, (4, 4), (2, 2), (1, 1))
        self.out = nn.Conv2d(c // 2 + 1, self.n_out, (3, 3), padding=(1, 1))

    @property
    def noise_dim(self) -> int:
        return self.config.z_dim

    def forward(self, melody: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(melody.shape[0], self.noise_dim, device=melody.device)
        e1 = self.d1(melody)
        e2 = self.d2(e1)
        e3 = self.d3(e2)
        e4 = self.d4(e3)
        e5 = self.d5(e4)  # (B, 2c, 1, 1)
        zb = torch.tanh(self.noise(noise))[:, :, None, None]
        x = self.u5(torch.cat([e5, zb], 1))
        x = self.u4(torch.cat([x, e4], 1))
        x = self.u3(torch.cat([x, e3], 1))
        x = self.u2(torch.cat([x, e2], 1))
        x = F.relu(self.u1(torch.cat([x, e1], 1)))
        return torch.tanh(self.out(torch.cat([x, melody], 1)))


class Critic(nn.Module):
    """All tracks ``(B, tracks, 64, 84)`` -> one realism score per sample.

    Layers whose kernel equals their stride (an octave, a beat, a bar) are written as
    linear maps on reshaped rolls, which is the same arithmetic and much faster on a CPU.
    """

    def __init__(self, config: GanConfig):
        super().__init__()
        t, c = config.n_tracks, config.critic_width
        self.act = nn.LeakyReLU(0.2)
        self.private_pitch = _TrackLinear(t, 12, 8)  # per track: octave of pitches -> 8
        self.private_beat = _TrackLinear(t, 4 * 8, 16)  # per track: 4 steps -> a beat
        self.shared_tracks = nn.Linear(t * 16, c)  # tracks together, per beat and octave
        self.shared_octaves = nn.Linear(OCTAVES * c, c)  # per beat
        self.shared_bar = nn.Linear(4 * c, c)  # per bar
        self.chroma_beat = nn.Linear(t * 4 * 12, c // 2)
        self.chroma_bar = nn.Linear(4 * (c // 2), c // 2)
        self.onset_bar = nn.Linear(t * STEPS_PER_BAR, c // 2)
        self.bars = nn.Linear(N_BARS * 2 * c, 2 * c)
        self.head = nn.Linear(2 * c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bsz, t = x.shape[:2]
        a = self.act
        steps = N_BARS * STEPS_PER_BAR
        v = x.reshape(bsz, t, steps * OCTAVES, 12)
        h = a(self.private_pitch(v)).view(bsz, t, steps // 4, 4, OCTAVES, 8)
        h = h.permute(0, 1, 2, 4, 3, 5).reshape(bsz, t, (steps // 4) * OCTAVES, 32)
        h = a(self.private_beat(h)).view(bsz, t, steps // 4, OCTAVES, 16)
        h = a(self.shared_tracks(h.permute(0, 2, 3, 1, 4).reshape(bsz, steps // 4, OCTAVES, t * 16)))
        h = a(self.shared_octaves(h.reshape(bsz, steps // 4, -1)))  # (B, 16 beats, c)
        main = a(self.shared_bar(h.reshape(bsz, N_BARS, -1)))  # (B, 4, c)
        on = (x + 1) / 2
        chroma = on.reshape(bsz, t, steps // 4, 4, OCTAVES, 12).sum(4)  # (B, t, 16, 4, 12)
        chroma = a(self.chroma_beat(chroma.permute(0, 2, 1, 3, 4).reshape(bsz, steps // 4, -1)))
        chroma = a(self.chroma_bar(chroma.reshape(bsz, N_BARS, -1)))  # (B, 4, c/2)
        starts = F.relu(on - F.pad(on, (0, 0, 1, 0))[:, :, :-1]).sum(-1)  # (B, t, 64) note onsets per step
        onset = a(
            self.onset_bar(starts.view(bsz, t, N_BARS, STEPS_PER_BAR).permute(0, 2, 1, 3).reshape(bsz, N_BARS, -1))
        )
        h = a(self.bars(torch.cat([main, chroma, onset], -1).reshape(bsz, -1)))
        return self.head(h).squeeze(1)


def build_generator(config: GanConfig) -> nn.Module:
    return MuseGANGenerator(config) if config.algorithm == "musegan" else UNetGenerator(config)

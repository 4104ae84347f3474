"""The AR-CNN's network: a small U-Net over a 128 x 64 piano-roll image.

Input ``(batch, 2, 128, 64)`` -- the roll and its visibility mask (see
:mod:`capsule_lib.techniques.arcnn.data`); output ``(batch, 128, 64)`` logits, one per
cell, for "the original has a note here".

The encoder halves time and pitch ``depth`` times (two 3x3 convolutions, batch norm and
ReLU per level, channels doubling from ``base_channels``); the decoder mirrors it with
transposed convolutions and concatenates the encoder's features at each level (the skip
connections that let fine detail -- single notes -- pass straight through).  With the
defaults (16 base channels, depth 4: 128 x 64 shrinks to 8 x 4) the network has about
1.9 M parameters (7.8 MB of float32 weights), its receptive field spans the whole
window and pitch range, and one pass over a window takes about 12 ms on a 2-core
laptop CPU (a training step on 32 windows under a second).  The console's original was a 5-level
U-Net with 32 base filters on a 128 x 128 roll (about 31 M parameters).

Weights travel as safetensors (no pickle); :func:`load_arcnn` reads a registered
model (its card's ``hyperparameters["model"]`` holds the :class:`ArcnnConfig`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...errors import CapsuleError
from .._common import count_parameters  # re-exported: part of this module's API (tests, notebooks)

__all__ = ["ArcnnConfig", "ArcnnUNet", "load_arcnn", "count_parameters"]


@dataclass(frozen=True)
class ArcnnConfig:
    """Hyperparameters of the network.

    Parameters
    ----------
    base_channels : int
        Channels of the first level (doubling at each level below), 4..64.
    depth : int
        Down-sampling steps, 1..4 (``128 x 64`` must stay divisible: 2**depth <= 16).
    """

    base_channels: int = 16
    depth: int = 4

    def __post_init__(self):
        for name, value, lo, hi in (("base_channels", self.base_channels, 4, 64), ("depth", self.depth, 1, 4)):
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise CapsuleError(f"AR-CNN {name} {value!r} is outside {lo}-{hi}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArcnnConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, Mapping):
            raise CapsuleError("the AR-CNN model config is not a dict")
        return cls(**{k: v for k, v in data.items() if k in known})


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ArcnnUNet(nn.Module):
    """U-Net: ``(B, 2, 128, 64)`` roll + visibility -> ``(B, 128, 64)`` logits."""

    def __init__(self, config: ArcnnConfig | None = None):
        super().__init__()
        self.config = config or ArcnnConfig()
        c = self.config.base_channels
        chans = [c * 2**i for i in range(self.config.depth + 1)]
        self.down = nn.ModuleList(
            [_block(2, chans[0])] + [_block(chans[i], chans[i + 1]) for i in range(self.config.depth)]
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(self.config.depth))]
        )
        self.merge = nn.ModuleList([_block(2 * chans[i], chans[i]) for i in reversed(range(self.config.depth))])
        self.head = nn.Conv2d(chans[0], 1, 1)
        # Start at the cells' base rate (about 6 % of chorale cells sound), not at 50 %:
        # otherwise the first hundreds of steps only learn that most cells are silent.
        nn.init.constant_(self.head.bias, -2.75)
        #: registry name when loaded by :func:`load_arcnn` (recorded with compositions)
        self.name = "custom"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 2 or x.shape[2] % 2**self.config.depth or x.shape[3] % 2**self.config.depth:
            raise CapsuleError(
                f"AR-CNN input must be (batch, 2, steps, pitches) divisible by {2**self.config.depth}, got {tuple(x.shape)}"
            )
        skips = []
        h = x
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else self.pool(h))
            skips.append(h)
        skips.pop()  # the bottleneck output is h itself
        for up, merge in zip(self.up, self.merge):
            h = merge(torch.cat([up(h), skips.pop()], dim=1))
        return self.head(h).squeeze(1)


def load_arcnn(name: str = "arcnn-bach", registry=None) -> ArcnnUNet:
    """A registered AR-CNN model in eval mode (cached until its weights file changes).

    Raises
    ------
    CapsuleError
        If the model does not exist, is not an AR-CNN, has not finished training or
        its weights do not fit its config.
    """
    from ...models import load_network

    return load_network(name, "arcnn", "an AR-CNN", ArcnnUNet, ArcnnConfig.from_dict, registry)

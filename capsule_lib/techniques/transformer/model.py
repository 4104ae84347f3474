"""A Transformer-XL sized for a laptop CPU: segment recurrence memory and relative positions.

The network (Dai et al. 2019, "Transformer-XL") reads performance tokens (see
:mod:`capsule_lib.techniques.transformer.tokens`) and predicts the next one.

* **Segment-level recurrence.**  A long sequence is read in segments; each layer keeps
  the hidden states it was given for the last ``mem_len`` positions (detached, so no
  gradient flows into the past) and attends over ``[memory + current segment]``.
  ``forward(tokens, mems)`` returns the new memory with the logits.
* **Relative positional encodings.**  No absolute positions anywhere: attention scores
  are ``(q + u)·k + (q + v)·W_r r(i - j)`` with sinusoidal ``r`` of the distance, learned
  biases ``u`` and ``v`` (shared by all layers, as in the paper) and the "rel-shift"
  trick that turns the ``(query, distance)`` score table into ``(query, key)``.
* **Fixed attention span** (the paper's ``same_length`` evaluation mask, used here
  always, in training too).  Every token attends to itself and at most the ``mem_len``
  tokens before it -- never more, whether they lie in the memory or in the current
  segment.  So what a token sees does not depend on how the sequence was cut into
  segments: one pass over a sequence, segment-by-segment passes with memory, and
  token-by-token generation with memory all compute the same numbers (up to float
  rounding).  Stacked layers still reach ``n_layers x mem_len`` tokens back, the same
  reach as the recurrence alone gives.  See :func:`context_tokens`.

Pre-layer-norm blocks (layer norm before attention and before the feed-forward, one more
at the end) train stably without warm-up tricks.  With the defaults (256 wide, 4 heads,
4 layers, 1024 feed-forward) the network has about 3.5 M parameters (about 14 MB of
float32 weights); one token step with a full memory takes a few milliseconds on a
laptop CPU.

Weights travel as safetensors (no pickle); :func:`load_transformer` reads a registered
model (its card's ``hyperparameters["model"]`` holds the :class:`TransformerConfig`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...errors import CapsuleError
from .._common import count_parameters  # re-exported: part of this module's API (tests, notebooks)
from .tokens import VOCAB_SIZE

__all__ = [
    "TransformerConfig",
    "TransformerXL",
    "load_transformer",
    "count_parameters",
    "context_tokens",
    "rel_shift",
]


@dataclass(frozen=True)
class TransformerConfig:
    """Hyperparameters of the network.

    Parameters
    ----------
    vocab_size : int
        Token vocabulary, 2..4096 (310 for the console's vocabulary).
    d_model : int
        Width of the residual stream, 8..1024, divisible by ``n_heads``.
    n_heads : int
        Attention heads, 1..16.
    n_layers : int
        Transformer blocks, 1..24.
    d_ff : int
        Width of the feed-forward layer, 8..8192.
    segment_len : int
        Tokens per training segment (and per chunk when reading a prompt), 1..4096.
    mem_len : int
        Positions of memory kept per layer = the attention span (each token sees itself
        and the ``mem_len`` tokens before it), 1..4096.
    dropout : float
        Dropout on embeddings, attention weights and block outputs, 0..0.9.
    """

    vocab_size: int = VOCAB_SIZE
    d_model: int = 192
    n_heads: int = 4
    n_layers: int = 3
    d_ff: int = 768
    segment_len: int = 128
    mem_len: int = 128
    dropout: float = 0.1

    def __post_init__(self):
        for name, lo, hi in (
            ("vocab_size", 2, 4096),
            ("d_model", 8, 1024),
            ("n_heads", 1, 16),
            ("n_layers", 1, 24),
            ("d_ff", 8, 8192),
            ("segment_len", 1, 4096),
            ("mem_len", 1, 4096),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise CapsuleError(f"Transformer {name} {value!r} is outside {lo}-{hi}")
        if self.d_model % self.n_heads:
            raise CapsuleError(f"Transformer d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise CapsuleError(
                f"Transformer head width {self.d_model // self.n_heads} (d_model / n_heads) must be even"
            )
        d = self.dropout
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 <= d <= 0.9:
            raise CapsuleError(f"Transformer dropout {d!r} is outside 0-0.9")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransformerConfig:
        if not isinstance(data, Mapping):
            raise CapsuleError("the Transformer model config is not a dict")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def context_tokens(config: TransformerConfig) -> int:
    """How many tokens back the last token's prediction can depend on, itself included.

    Each layer reaches ``mem_len`` tokens further back, so ``n_layers * mem_len + 1``.
    Running the model on just the last ``context_tokens`` tokens (no memory) gives the
    same final logits as running it on the whole history.
    """
    return config.n_layers * config.mem_len + 1


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """Turn scores indexed ``(query i, relative slot k)`` into ``(query i, key j)``.

    ``x[..., i, k]`` holds the score of query ``i`` against distance ``klen - 1 - k``;
    the result's ``[..., i, j]`` holds it for distance ``mlen + i - j`` (``mlen = klen -
    qlen``) wherever ``j <= mlen + i``.  The trick (Dai et al., appendix B): pad one zero
    column on the left, reinterpret the ``(q, k+1)`` block as ``(k+1, q)``, drop the first
    row and reinterpret back -- no gather needed.  Entries above the causal diagonal are
    junk and must be masked.
    """
    *lead, q, k = x.shape
    padded = torch.cat([x.new_zeros(*lead, q, 1), x], dim=-1)
    return padded.view(*lead, k + 1, q)[..., 1:, :].reshape(*lead, q, k)


def _sinusoid(distances: torch.Tensor, d_model: int) -> torch.Tensor:
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d_model, 2, dtype=torch.float32, device=distances.device) / d_model))
    angles = distances.float()[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class RelMultiHeadAttention(nn.Module):
    """Multi-head attention with relative positions (content, position, u and v terms)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        h, dh = config.n_heads, config.d_head
        self.n_heads, self.d_head = h, dh
        self.qkv = nn.Linear(config.d_model, 3 * h * dh, bias=False)
        self.r_net = nn.Linear(config.d_model, h * dh, bias=False)
        self.out = nn.Linear(h * dh, config.d_model, bias=False)
        self.drop_att = nn.Dropout(config.dropout)
        self.scale = 1.0 / math.sqrt(dh)

    def forward(self, h, mem, pos_emb, mask, u, v):
        # h: (B, Q, d) normalised current segment; mem: (B, M, d) normalised memory or None
        b, q, _ = h.shape
        cat = h if mem is None else torch.cat([mem, h], dim=1)
        k_len = cat.shape[1]
        w = self.qkv(cat).view(b, k_len, 3, self.n_heads, self.d_head)
        query = w[:, -q:, 0].transpose(1, 2)  # (B, H, Q, dh)
        key = w[:, :, 1].transpose(1, 2)  # (B, H, K, dh)
        value = w[:, :, 2].transpose(1, 2)
        r = self.r_net(pos_emb).view(k_len, self.n_heads, self.d_head).permute(1, 0, 2)  # (H, K, dh)
        content = torch.matmul(query + u[None, :, None, :], key.transpose(-1, -2))  # (B, H, Q, K)
        position = rel_shift(torch.matmul(query + v[None, :, None, :], r.transpose(-1, -2)[None]))
        scores = (content + position) * self.scale
        scores = scores.masked_fill(mask, float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        out = torch.matmul(self.drop_att(attn), value)  # (B, H, Q, dh)
        return self.out(out.transpose(1, 2).reshape(b, q, -1)), attn


class Block(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = RelMultiHeadAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.ff = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.d_ff, config.d_model),
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, h, mem, pos_emb, mask, u, v):
        normed_mem = None if mem is None else self.norm1(mem)
        a, attn = self.attn(self.norm1(h), normed_mem, pos_emb, mask, u, v)
        h = h + self.drop(a)
        h = h + self.drop(self.ff(self.norm2(h)))
        return h, attn


class TransformerXL(nn.Module):
    """Tokens ``(B, T)`` (+ memory) -> next-token logits ``(B, T, vocab)`` and new memory.

    Call ``model(tokens, mems=None, return_attention=False)``:

    Parameters
    ----------
    tokens : LongTensor ``(B, T)``
        Token ids in ``0 .. vocab_size - 1``.
    mems : list of Tensor, optional
        One ``(B, M, d_model)`` tensor per layer (``M <= mem_len``), as returned by the
        previous call: the inputs of each layer at the ``M`` positions just before
        ``tokens``.
    return_attention : bool
        Also return the attention weights, one ``(B, n_heads, T, M + T)`` tensor per
        layer (rows: queries of this segment; columns: memory then segment positions;
        each row sums to 1, zero outside the token's span).

    Returns
    -------
    logits : Tensor ``(B, T, vocab)``
    new_mems : list of Tensor
        Per layer, the last ``mem_len`` positions of ``[mems + this segment]``, detached.
    attention : list of Tensor
        Only with ``return_attention=True``.
    """

    def __init__(self, config: TransformerConfig | None = None):
        super().__init__()
        self.config = config or TransformerConfig()
        c = self.config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.u = nn.Parameter(torch.zeros(c.n_heads, c.d_head))  # content bias (the paper's u)
        self.v = nn.Parameter(torch.zeros(c.n_heads, c.d_head))  # position bias (the paper's v)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.n_layers)])
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size)
        self.apply(self._init)
        nn.init.normal_(self.u, std=0.02)
        nn.init.normal_(self.v, std=0.02)
        #: registry name when loaded by :func:`load_transformer` (recorded with compositions)
        self.name = "custom"

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def init_mems(self, batch: int = 1) -> list[torch.Tensor]:
        """Empty memory (zero positions) for ``batch`` sequences."""
        p = self.embed.weight
        return [p.new_zeros(batch, 0, self.config.d_model) for _ in self.blocks]

    def _check(self, tokens, mems):
        if (
            not isinstance(tokens, torch.Tensor)
            or tokens.dim() != 2
            or tokens.dtype not in (torch.long, torch.int, torch.int16, torch.int8, torch.uint8)
        ):
            raise CapsuleError(
                f"Transformer input must be an integer tensor (batch, tokens), got {getattr(tokens, 'shape', type(tokens).__name__)}"
            )
        if tokens.shape[1] == 0:
            raise CapsuleError("Transformer input has no tokens")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.config.vocab_size):
            raise CapsuleError(f"Transformer input holds token ids outside 0-{self.config.vocab_size - 1}")
        if mems is None:
            return
        if len(mems) != len(self.blocks):
            raise CapsuleError(f"Transformer memory has {len(mems)} layers, the model {len(self.blocks)}")
        shape = tuple(mems[0].shape)
        for m in mems:
            if (
                m.dim() != 3
                or tuple(m.shape) != shape
                or m.shape[0] != tokens.shape[0]
                or m.shape[2] != self.config.d_model
            ):
                raise CapsuleError(
                    f"Transformer memory must be (batch, positions, {self.config.d_model}) per layer, got {tuple(m.shape)}"
                )

    def forward(self, tokens: torch.Tensor, mems: Sequence[torch.Tensor] | None = None, return_attention: bool = False):
        self._check(tokens, mems)
        c = self.config
        tokens = tokens.long()
        q_len = tokens.shape[1]
        m_len = 0 if mems is None else mems[0].shape[1]
        k_len = m_len + q_len
        device = tokens.device

        # Query i sits at absolute position m_len + i; key j at j.  Visible: 0 <= distance <= mem_len.
        qi = torch.arange(q_len, device=device)[:, None] + m_len
        kj = torch.arange(k_len, device=device)[None, :]
        dist = qi - kj
        mask = (dist < 0) | (dist > c.mem_len)  # True = hidden
        pos_emb = self.drop(_sinusoid(torch.arange(k_len - 1, -1, -1, device=device), c.d_model)).to(
            self.embed.weight.dtype
        )

        h = self.drop(self.embed(tokens) * math.sqrt(c.d_model))
        new_mems, attentions = [], []
        for i, block in enumerate(self.blocks):
            mem = None if mems is None or m_len == 0 else mems[i]
            new_mems.append((h if mem is None else torch.cat([mem, h], dim=1))[:, -c.mem_len :].detach())
            h, attn = block(h, mem, pos_emb, mask, self.u, self.v)
            if return_attention:
                attentions.append(attn.detach())
        logits = self.head(self.norm(h))
        if return_attention:
            return logits, new_mems, attentions
        return logits, new_mems


def load_transformer(name: str = "transformer-classical", registry=None) -> TransformerXL:
    """A registered Transformer model in eval mode (cached until its weights file changes).

    Raises
    ------
    CapsuleError
        If the model does not exist, is not a Transformer, has not finished training or
        its weights do not fit its config.
    """
    from ...models import load_network

    return load_network(name, "transformer", "a Transformer", TransformerXL, TransformerConfig.from_dict, registry)

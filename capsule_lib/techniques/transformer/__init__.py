"""The Transformer technique: performance tokens and a Transformer-XL that extends a melody.

``params``     its parameters with the console's labels, defaults and ranges (``SPEC``)
``technique``  its record in the registry: the ``capsule extend`` options, what ``capsule evaluate`` prints
``tokens``     the console's 310-token performance vocabulary, encoder and decoder
``model``      the Transformer-XL (segment recurrence memory, relative positions)
``guide``      the decoding-time guide that keeps an extension in its prompt's key and register
``sample``     next-token filtering (TopK, Nucleus, Random) and :func:`extend`
``train``      :class:`TransformerTask` for the shared harness and :func:`train_transformer`
``evaluate``   :func:`evaluate_transformer` -- token NLL vs a bigram baseline, extension statistics
``views``      what notebook 04 shows: training curves, attention, the next-token distribution

The classical pieces it trains on are built by :mod:`capsule_lib.datasets.classical`.

Names load lazily, so importing this package does not import torch.
"""

from __future__ import annotations

from ..._lazy import lazy_exports

# fmt: off
_LAZY = {
    "encode": "tokens", "decode": "tokens", "token_name": "tokens", "describe": "tokens",
    "TransformerConfig": "model", "TransformerXL": "model", "load_transformer": "model",
    "filter_topk": "sample", "filter_nucleus": "sample", "generate": "sample", "extend": "sample",
    "TransformerTask": "train", "train_transformer": "train",
    "evaluate_transformer": "evaluate",
    "plot_training": "views", "plot_attention": "views", "plot_next_token": "views",
}
# fmt: on

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

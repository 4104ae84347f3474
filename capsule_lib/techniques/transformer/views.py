"""What notebook 04 shows: training curves, the model's real attention, the next-token distribution."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["plot_training", "plot_attention", "plot_next_token"]


def plot_training(history: Sequence[dict], **figure):
    """Cross entropy per token (left) and perplexity on a log scale (right), training and validation.

    ``figure``: arguments of :func:`capsule_lib.plot.subplots` (default 11 x 3.2 inches, constrained
    layout, shown by pyplot); the model card draws it ``standalone``.
    """
    from ...plot import plot_loss, subplots

    fig, (a1, a2) = subplots(1, 2, **{"figsize": (11, 3.2), "layout": "constrained", **figure})
    plot_loss(history, keys=[k for k in ("loss", "val_loss") if any(k in r for r in history)], ax=a1)
    a1.set_title("cross entropy per token (nats)")
    plot_loss(
        history, keys=[k for k in ("perplexity", "val_perplexity") if any(k in r for r in history)], ax=a2, log=True
    )
    a2.set_title("perplexity")
    return fig


def plot_attention(model, tokens: Sequence[int], last: int = 48, context: int = 128):
    """Draw the last layer's attention (mean over heads) of the final ``last`` of ``context`` tokens.

    Rows are the positions being predicted from, columns the tokens they attend to; a colour bar
    gives the weight.  Returns the model's next-token logits after the final token (a 1-D array),
    so a notebook can show what it would play next.
    """
    import torch

    from ...plot import subplots
    from .tokens import token_name

    x = torch.tensor(list(tokens)[-context:])[None]
    with torch.inference_mode():
        logits, _, attention = model(x, return_attention=True)
    att = attention[-1][0].mean(0).numpy()[-last:, -last:]  # (queries, memory + queries) -> the last tokens
    names = [token_name(t) for t in list(tokens)[-context:][-last:]]
    fig, ax = subplots(figsize=(9.5, 8.5), layout="constrained")
    im = ax.imshow(att, cmap="magma")
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_xticks(range(len(names)), names, fontsize=6, rotation=90)
    ax.set_xlabel("attended token (earlier in the melody)")
    ax.set_ylabel("token being read (predicting the next one)")
    ax.set_title(f"last-layer attention over the final {len(names)} tokens, mean of the heads")
    fig.colorbar(im, ax=ax, shrink=0.7, label="attention weight")
    return logits[0, -1].numpy()


def plot_next_token(
    logits, *, sampling: str = "topk", threshold: float = 0.8, creative_risk: float = 1.0, top: int = 15
):
    """The ``top`` most likely next tokens (bars) and, in the title, how many each technique may draw."""
    import numpy as np

    from ...plot import subplots
    from .sample import next_token_probabilities
    from .tokens import token_name

    p = next_token_probabilities(logits, "random", 1.0, creative_risk)
    order = np.argsort(p)[::-1][:top]
    kept = {
        t: int((next_token_probabilities(logits, t, threshold, creative_risk) > 0).sum())
        for t in ("topk", "nucleus", "random")
    }
    allowed = next_token_probabilities(logits, sampling, threshold, creative_risk) > 0
    fig, ax = subplots(figsize=(10, 3.2), layout="constrained")
    ax.bar(range(len(order)), p[order], color=["tab:blue" if allowed[t] else "0.7" for t in order])
    ax.set_xticks(range(len(order)), [token_name(t) for t in order], rotation=60, fontsize=8)
    ax.set_ylabel(f"probability (creative risk {creative_risk:g})")
    ax.set_title(
        f"the {top} most likely next tokens (grey: ruled out by {sampling} {threshold:g}); tokens that may be "
        f"drawn: TopK {kept['topk']}, Nucleus {kept['nucleus']}, Random {kept['random']}",
        fontsize=9,
    )
    return fig

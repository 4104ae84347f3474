"""Notebook 04's pictures: training curves, the real attention map, the next-token distribution."""

import numpy as np
import pytest
import torch

import capsule_lib as cl
from capsule_lib.techniques.transformer import TransformerConfig, TransformerXL, encode
from capsule_lib.techniques.transformer.views import plot_attention, plot_next_token, plot_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_training_plot_has_cross_entropy_and_perplexity():
    h = [
        {"epoch": e, "loss": 3 / e, "val_loss": 3.2 / e, "perplexity": 20 / e, "val_perplexity": 25 / e}
        for e in range(1, 4)
    ]
    fig = plot_training(h)
    assert [ax.get_title() for ax in fig.axes] == ["cross entropy per token (nats)", "perplexity"]
    assert fig.axes[1].get_yscale() == "log"


def test_attention_map_is_labelled_with_a_colour_bar_and_returns_the_next_token_logits():
    torch.manual_seed(0)
    net = TransformerXL(
        TransformerConfig(d_model=32, n_heads=2, n_layers=2, d_ff=64, segment_len=64, mem_len=16)
    ).eval()
    tokens = encode(cl.load_sample("ode_to_joy"))
    import matplotlib.pyplot as plt

    logits = plot_attention(net, tokens, last=20, context=64)
    fig = plt.gcf()
    ax, bar = fig.axes
    assert ax.get_xlabel() and ax.get_ylabel() and bar.get_ylabel() == "attention weight"
    assert ax.images[0].get_array().shape == (20, 20)
    assert logits.shape == (310,) and np.isfinite(logits).all()
    plt.close(fig)


def test_next_token_plot_greys_out_what_the_technique_rules_out():
    logits = np.linspace(40, -40, 310)  # steep: the first few tokens hold 30 % of the probability
    fig = plot_next_token(logits, sampling="nucleus", threshold=0.3, top=10)
    colours = [tuple(p.get_facecolor()[:3]) for p in fig.axes[0].patches]
    assert colours[0] != colours[-1]  # the most likely token may be drawn, the tenth may not
    assert "TopK 93, Nucleus 1, Random 308" in fig.axes[0].get_title()  # 310 x 0.3; START and PAD never drawn

import pytest
import torch

from capsule_lib.errors import CapsuleError
from capsule_lib.models import ModelRegistry
from capsule_lib.techniques.transformer.model import (
    TransformerConfig,
    TransformerXL,
    context_tokens,
    count_parameters,
    load_transformer,
    rel_shift,
)
from capsule_lib.techniques.transformer.tokens import VOCAB_SIZE

SMALL = TransformerConfig(d_model=32, n_heads=2, n_layers=3, d_ff=64, segment_len=8, mem_len=6, dropout=0.1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(seed=0, config=SMALL):
    torch.manual_seed(seed)
    return TransformerXL(config).eval()


def tokens(b, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB_SIZE, (b, t), generator=g)


def test_shapes_and_memory():
    m = small()
    x = tokens(2, 5)
    logits, mems = m(x)
    assert logits.shape == (2, 5, VOCAB_SIZE)
    assert len(mems) == SMALL.n_layers and all(t.shape == (2, 5, 32) for t in mems)
    logits, mems = m(tokens(2, 4, 1), mems)
    assert logits.shape == (2, 4, VOCAB_SIZE)
    assert all(t.shape == (2, SMALL.mem_len, 32) and not t.requires_grad for t in mems)  # last mem_len kept


def test_memory_keeps_the_last_positions():
    m = small()
    x = tokens(1, 9)
    _, mems_a = m(x)
    _, mems_b = m(x[:, :4])
    _, mems_b = m(x[:, 4:], mems_b)
    for a, b in zip(mems_a, mems_b):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert torch.equal(mems_a[0], (m.embed(x) * 32**0.5)[:, -SMALL.mem_len :])


def test_attention_weights_returned():
    m = small()
    x = tokens(1, 10)
    logits, _, attn = m(x, return_attention=True)
    assert len(attn) == SMALL.n_layers
    a = attn[0]
    assert a.shape == (1, SMALL.n_heads, 10, 10)
    torch.testing.assert_close(a.sum(-1), torch.ones(1, SMALL.n_heads, 10))
    # causal and span-limited: query i sees keys i - mem_len .. i only
    i = torch.arange(10)[:, None]
    j = torch.arange(10)[None, :]
    hidden = (j > i) | (i - j > SMALL.mem_len)
    assert torch.all(a[..., hidden] == 0)
    assert torch.all(a[..., ~hidden] > 0)
    _, mems = m(x)
    _, _, attn2 = m(tokens(1, 3, 5), mems, return_attention=True)
    assert attn2[1].shape == (1, SMALL.n_heads, 3, SMALL.mem_len + 3)


def test_causal():
    m = small()
    x = tokens(1, 12)
    base, _ = m(x)
    y = x.clone()
    y[0, 7] = (y[0, 7] + 1) % VOCAB_SIZE
    changed, _ = m(y)
    assert torch.equal(base[:, :7], changed[:, :7])
    assert not torch.allclose(base[:, 7:], changed[:, 7:])


@pytest.mark.parametrize("cut", [1, 4, 9])
def test_two_segments_with_memory_equal_one_pass(cut):
    cfg = TransformerConfig(d_model=32, n_heads=2, n_layers=3, d_ff=64, segment_len=16, mem_len=16, dropout=0.1)
    m = small(1, cfg)
    x = tokens(2, 14, 3)
    whole, _ = m(x)  # memory (16) covers the whole context
    a, mems = m(x[:, :cut])
    b, _ = m(x[:, cut:], mems)
    torch.testing.assert_close(torch.cat([a, b], 1), whole, atol=1e-5, rtol=0)


def test_segments_equal_one_pass_beyond_the_memory():
    """With the fixed attention span, segmenting never changes what a token sees."""
    m = small(2)
    x = tokens(1, 40, 4)
    whole, _ = m(x)
    parts, mems = [], None
    for lo in range(0, 40, 7):
        out, mems = m(x[:, lo : lo + 7], mems)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, 1), whole, atol=1e-5, rtol=0)
    # one token at a time, too
    steps, mems = [], None
    for t in range(40):
        out, mems = m(x[:, t : t + 1], mems)
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps, 1), whole, atol=1e-5, rtol=0)


def test_context_tokens_is_the_reach():
    m = small(3)
    n = context_tokens(SMALL)
    assert n == SMALL.n_layers * SMALL.mem_len + 1
    x = tokens(1, n + 5, 6)
    whole, _ = m(x)
    tail, _ = m(x[:, -n:])
    torch.testing.assert_close(tail[:, -1], whole[:, -1], atol=1e-5, rtol=0)


def test_rel_shift_matches_explicit_indexing():
    q, k = 4, 9
    x = torch.randn(2, 3, q, k)
    out = rel_shift(x)
    m = k - q
    for i in range(q):
        for j in range(m + i + 1):
            # distance m + i - j sits in column k - 1 - distance of the input
            torch.testing.assert_close(out[..., i, j], x[..., i, k - 1 - (m + i - j)])


def test_dropout_only_in_training():
    m = small()
    x = tokens(1, 6)
    a, _ = m(x)
    b, _ = m(x)
    assert torch.equal(a, b)
    m.train()
    c, _ = m(x)
    assert not torch.equal(a, c)
    m.eval()


def test_gradients_flow_to_relative_biases():
    m = small().train()
    logits, _ = m(tokens(2, 6))
    logits.sum().backward()
    assert m.u.grad is not None and m.v.grad is not None and m.u.grad.abs().sum() > 0


def test_default_size_is_laptop_friendly():
    m = TransformerXL()
    n = count_parameters(m)
    print(f"default TransformerXL parameters: {n:,} ({n * 4 / 1e6:.1f} MB float32)")
    assert 1_000_000 < n < 5_000_000
    cfg = TransformerConfig()
    assert (cfg.vocab_size, cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.d_ff) == (310, 192, 4, 3, 768)
    assert n * 4 <= 20 * 2**20  # the shipped weights must stay under 20 MB


@pytest.mark.parametrize(
    "kwargs",
    [
        {"d_model": 30, "n_heads": 4},
        {"n_heads": 0},
        {"n_layers": 0},
        {"mem_len": 0},
        {"segment_len": 0},
        {"dropout": 1.0},
        {"dropout": "x"},
        {"d_model": 256.0},
        {"n_layers": True},
        {"vocab_size": 1},
    ],
)
def test_config_validation(kwargs):
    with pytest.raises(CapsuleError):
        TransformerConfig(**kwargs)


def test_config_round_trip():
    cfg = TransformerConfig(d_model=64, n_heads=2, mem_len=32)
    assert TransformerConfig.from_dict(cfg.to_dict()) == cfg
    assert TransformerConfig.from_dict({**cfg.to_dict(), "future_field": 1}) == cfg
    with pytest.raises(CapsuleError):
        TransformerConfig.from_dict([1, 2])


def test_bad_inputs():
    m = small()
    with pytest.raises(CapsuleError):
        m(torch.tensor([[VOCAB_SIZE]]))
    with pytest.raises(CapsuleError):
        m(torch.zeros(3, dtype=torch.long))
    with pytest.raises(CapsuleError):
        m(torch.zeros(1, 2, dtype=torch.long), [torch.zeros(1, 2, 32)])


def register(name, model, registry=None, status="complete"):
    registry = registry or ModelRegistry()
    registry.create(name, "transformer", algorithm="TransformerXL", hyperparameters={"model": model.config.to_dict()})
    registry.save_weights(name, model.state_dict())
    if status:
        registry.update(name, status=status)
    return registry


def test_load_transformer_round_trip():
    m = small(4)
    register("tiny-tx", m)
    loaded = load_transformer("tiny-tx")
    assert loaded.name == "tiny-tx" and not loaded.training
    assert loaded.config == SMALL
    x = tokens(1, 7)
    torch.testing.assert_close(loaded(x)[0], m(x)[0])
    assert load_transformer("tiny-tx") is loaded  # cached


def test_load_transformer_errors():
    reg = ModelRegistry()
    with pytest.raises(CapsuleError, match="no model"):
        load_transformer("nope")
    register("unfinished", small(), status=None)
    with pytest.raises(CapsuleError, match="not ready"):
        load_transformer("unfinished")
    reg.create("an-arcnn", "arcnn")
    with pytest.raises(CapsuleError, match="not a Transformer"):
        load_transformer("an-arcnn")
    other = TransformerXL(TransformerConfig(d_model=16, n_heads=2, n_layers=1, d_ff=16, mem_len=4, segment_len=4))
    reg.create("mismatch", "transformer", hyperparameters={"model": SMALL.to_dict()})
    reg.save_weights("mismatch", other.state_dict())
    reg.update("mismatch", status="complete")
    with pytest.raises(CapsuleError, match="do not fit"):
        load_transformer("mismatch")

import pytest
import torch

from ptutils import (EncoderConfig, PositionwiseFeedForward, TransformerEncoder,
                     load_state_dict_strict, set_seed, sinusoidal_positions)


def test_ffn_is_affine_after_one_relu():
    set_seed(0)
    ffn = PositionwiseFeedForward(d_model=4, d_ff=8).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    expected = torch.relu(x @ ffn.w_1.weight.T + ffn.w_1.bias) @ ffn.w_2.weight.T + ffn.w_2.bias
    torch.testing.assert_close(ffn(x), expected)
    # no second ReLU: with these weights some outputs must be negative
    assert (ffn(x) < 0).any()


def test_ffn_errors():
    with pytest.raises(ValueError, match="activation"):
        PositionwiseFeedForward(4, 8, activation="tanh")
    with pytest.raises(ValueError, match="d_model=4"):
        PositionwiseFeedForward(4, 8)(torch.randn(2, 5))


def test_sinusoidal_positions_values():
    pe = sinusoidal_positions(10, 6)
    assert pe.shape == (10, 6)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1, 0, 1, 0, 1]))
    torch.testing.assert_close(pe[3, 0], torch.sin(torch.tensor(3.0)))
    torch.testing.assert_close(pe[3, 3], torch.cos(torch.tensor(3.0 / 10000 ** (2 / 6))))


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "none"])
def test_encoder_shapes_and_padding_invariance(positional):
    set_seed(0)
    enc = TransformerEncoder(vocab_size=50, d_model=16, num_heads=4, d_ff=32, num_layers=2,
                             max_len=20, positional=positional).eval()
    ids = torch.randint(1, 50, (1, 6))
    out = enc(ids)
    assert out.shape == (1, 6, 16)
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], 1)
    am = torch.tensor([[1] * 6 + [0] * 3])
    out_pad = enc(padded, attention_mask=am)
    torch.testing.assert_close(out_pad[:, :6], out, atol=1e-5, rtol=1e-5)
    res = enc.encode(ids, need_weights=True)
    assert len(res.hidden_states) == 3 and res.attentions[0].shape == (1, 4, 6, 6)
    torch.testing.assert_close(res.last_hidden_state, out)
    torch.testing.assert_close(res.hidden_states[-1], out)
    assert enc.encode(ids).attentions is None


def test_no_positions_is_permutation_equivariant_and_others_are_not():
    """positional="none" (chapter 4's ablation) has no order information at all: permuting the
    tokens permutes the outputs; with learned or sinusoidal positions it does not."""
    ids = torch.tensor([[3, 7, 1, 9, 4]])
    perm = torch.tensor([4, 2, 0, 3, 1])
    for positional, equivariant in (("none", True), ("learned", False), ("sinusoidal", False)):
        set_seed(0)
        enc = TransformerEncoder(vocab_size=10, d_model=8, num_heads=2, d_ff=16, num_layers=2, max_len=5,
                                 dropout=0.0, positional=positional).eval()
        same = torch.allclose(enc(ids)[:, perm], enc(ids[:, perm]), atol=1e-6)
        assert same == equivariant, positional
    assert not any(n.startswith("embeddings.position") for n, _ in TransformerEncoder(
        vocab_size=10, d_model=8, num_heads=2, d_ff=16, num_layers=1, positional="none").named_parameters())
    with pytest.raises(ValueError, match="'learned', 'sinusoidal' or 'none'"):
        TransformerEncoder(vocab_size=10, d_model=8, num_heads=2, d_ff=16, num_layers=1, positional="rotary")


def test_encoder_errors():
    enc = TransformerEncoder(vocab_size=10, d_model=8, num_heads=2, d_ff=16, num_layers=1, max_len=5)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        enc(torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="integer"):
        enc(torch.randn(1, 3))
    with pytest.raises(ValueError, match="vocab_size=10"):
        enc(torch.tensor([[1, 12]]))
    with pytest.raises(ValueError, match="max_len=5"):
        enc(torch.ones(1, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="must match"):
        enc(torch.ones(1, 3, dtype=torch.long), attention_mask=torch.ones(1, 4))
    with pytest.raises(TypeError, match="not both"):
        TransformerEncoder(EncoderConfig(), d_model=8)


def test_strict_loading_names_the_problem():
    a = TransformerEncoder(vocab_size=10, d_model=8, num_heads=2, d_ff=16, num_layers=1, max_len=5)
    state = a.state_dict()
    load_state_dict_strict(a, state)  # the model's own state loads
    bad = dict(state)
    bad.pop("blocks.0.norm1.weight")
    bad["head.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys \['blocks.0.norm1.weight'\].*unexpected keys \['head.weight'\]"):
        load_state_dict_strict(a, bad)
    bad = dict(state)
    bad["embeddings.token.weight"] = torch.zeros(11, 8)
    with pytest.raises(ValueError, match="shape mismatches"):
        load_state_dict_strict(a, bad)


def test_digit_cnn_shapes_and_errors():
    from ptutils.cnn import DigitCNN
    m = DigitCNN()
    assert m(torch.rand(5, 8, 8)).shape == (5, 10)
    assert m(torch.rand(5, 1, 8, 8)).shape == (5, 10)
    assert sum(isinstance(l, torch.nn.Conv2d) for l in m.modules()) == 2
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        m(torch.rand(5, 1, 28, 28))
    with pytest.raises(TypeError, match="floating"):
        m(torch.ones(5, 8, 8, dtype=torch.long))

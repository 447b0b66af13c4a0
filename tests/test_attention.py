import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ptutils import (MultiHeadAttention, attend, causal_mask, padding_mask,
                     scaled_dot_product_attention, set_seed)


@pytest.fixture(autouse=True)
def _seed():
    set_seed(0)


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def test_shapes_and_rows_sum_to_one():
    q, k, v = rand(2, 3, 5, 4), rand(2, 3, 7, 4), rand(2, 3, 7, 6)
    out, w = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 5, 6)
    assert w.shape == (2, 3, 5, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5, dtype=torch.float64))


def test_matches_formula_by_hand():
    q, k, v = rand(4, 3), rand(4, 3), rand(4, 2)
    scores = q @ k.T / math.sqrt(3)
    expected = torch.softmax(scores, -1) @ v
    out, _ = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("use_mask", ["none", "causal", "padding"])
def test_teaching_path_equals_pytorch(use_mask):
    B, h, T, d = 2, 4, 6, 8
    q, k, v = rand(B, h, T, d), rand(B, h, T, d), rand(B, h, T, d)
    mask = None
    if use_mask == "causal":
        mask = causal_mask(T)
    elif use_mask == "padding":
        am = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
        mask = padding_mask(am)
    ours, _ = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(attend(q, k, v, mask, fast=True), ref)
    torch.testing.assert_close(attend(q, k, v, mask, fast=False), ref)


def test_masked_keys_get_zero_weight():
    q, k, v = rand(1, 5, 4), rand(1, 5, 4), rand(1, 5, 4)
    m = causal_mask(5)
    _, w = scaled_dot_product_attention(q, k, v, m)
    assert torch.all(w[0][~m] == 0)
    assert torch.all(w[0][m] > 0)


def test_padding_changes_nothing_for_real_tokens():
    """Appending padded keys must not change what real positions compute."""
    q, k, v = rand(1, 3, 4), rand(1, 3, 4), rand(1, 3, 4)
    k_pad = torch.cat([k, rand(1, 2, 4)], 1)
    v_pad = torch.cat([v, rand(1, 2, 4)], 1)
    mask = padding_mask(torch.tensor([[1, 1, 1, 0, 0]]))[:, 0]  # (1, 1, 5)
    a, _ = scaled_dot_product_attention(q, k, v)
    b, _ = scaled_dot_product_attention(q, k_pad, v_pad, mask)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "q_shape,k_shape,v_shape,msg",
    [
        ((2, 5, 4), (2, 5, 3), (2, 5, 3), "same last dimension"),
        ((2, 5, 4), (2, 6, 4), (2, 5, 4), "same number of positions"),
        ((4,), (4,), (4,), "shape"),
    ],
)
def test_bad_shapes_raise(q_shape, k_shape, v_shape, msg):
    with pytest.raises(ValueError, match=msg):
        scaled_dot_product_attention(torch.randn(q_shape), torch.randn(k_shape), torch.randn(v_shape))


def test_bad_dtypes_and_masks_raise():
    q = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match="floating-point"):
        scaled_dot_product_attention(q.long(), q.long(), q.long())
    with pytest.raises(TypeError, match="share a dtype"):
        scaled_dot_product_attention(q, q.double(), q)
    with pytest.raises(TypeError, match="bool"):
        scaled_dot_product_attention(q, q, q, torch.ones(3, 3))
    with pytest.raises(ValueError, match="broadcast"):
        scaled_dot_product_attention(q, q, q, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="hides every key"):
        scaled_dot_product_attention(q, q, q, torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="positive"):
        causal_mask(0)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        padding_mask(torch.ones(3))


def test_multihead_shapes_and_paths_agree():
    mha = MultiHeadAttention(d_model=16, num_heads=4).double().eval()
    x = rand(3, 7, 16)
    mask = padding_mask(torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 1 + [0] * 6]))
    fast, none = mha(x, mask=mask)
    slow, w = mha(x, mask=mask, need_weights=True)
    assert none is None
    assert fast.shape == (3, 7, 16) and w.shape == (3, 4, 7, 7)
    torch.testing.assert_close(fast, slow)


def test_multihead_equals_nn_multiheadattention_with_copied_weights():
    d_model, h = 12, 3
    ours = MultiHeadAttention(d_model, h).double().eval()
    ref = nn.MultiheadAttention(d_model, h, batch_first=True).double().eval()
    with torch.no_grad():
        wq, wk, wv = ref.in_proj_weight.chunk(3)
        bq, bk, bv = ref.in_proj_bias.chunk(3)
        for lin, w, b in ((ours.w_q, wq, bq), (ours.w_k, wk, bk), (ours.w_v, wv, bv)):
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        ours.w_o.weight.copy_(ref.out_proj.weight)
        ours.w_o.bias.copy_(ref.out_proj.bias)
    x = rand(2, 5, d_model)
    am = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    out, w = ours(x, mask=padding_mask(am), need_weights=True)
    # nn.MultiheadAttention's key_padding_mask uses True = ignore, the opposite convention
    ref_out, ref_w = ref(x, x, x, key_padding_mask=~am.bool(), need_weights=True,
                         average_attn_weights=False)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(w, ref_w)


def test_multihead_rejects_bad_config_and_input():
    with pytest.raises(ValueError, match="must divide"):
        MultiHeadAttention(10, 3)
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match="d_model=8"):
        mha(torch.randn(2, 5, 6))

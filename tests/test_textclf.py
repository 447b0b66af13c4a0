"""Attention pooling, token encoding and the text classifier of the first project chapter."""

import pytest
import torch

from ptutils.attention import AttentionPooling, scaled_dot_product_attention
from ptutils.textclf import AttentionTextClassifier, encode_tokens
from ptutils.training import predict, train_classifier

W2I = {"<pad>": 0, "<unk>": 1, "good": 2, "bad": 3, "film": 4}


def test_encode_tokens_pads_masks_and_maps_unknowns():
    ids, mask = encode_tokens([["good", "film"], ["awful"], []], W2I)
    assert ids.tolist() == [[2, 4], [1, 0], [1, 0]]
    assert mask.tolist() == [[True, True], [True, False], [True, False]]
    ids, _ = encode_tokens([["good"] * 10], W2I, max_len=3)
    assert ids.shape == (1, 3)


def test_encode_tokens_rejects_bad_input():
    with pytest.raises(TypeError, match="list of token lists"):
        encode_tokens(["good film"], W2I)
    with pytest.raises(ValueError, match="<pad>"):
        encode_tokens([["good"]], {"good": 0})


def test_attention_pooling_is_the_mean_at_initialisation_and_ignores_padding():
    torch.manual_seed(0)
    pool = AttentionPooling(6)
    x = torch.randn(3, 4, 6)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    out, w = pool(x, mask)
    mean = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert torch.allclose(out, mean, atol=1e-6)
    assert torch.all(w[~mask] == 0) and torch.allclose(w.sum(-1), torch.ones(3))
    # changing a padded vector changes nothing
    x2 = x.clone()
    x2[1, 3] = 100.0
    assert torch.allclose(pool(x2, mask)[0], out)


def test_attention_pooling_matches_the_formula_with_a_trained_query():
    torch.manual_seed(1)
    pool = AttentionPooling(5)
    with torch.no_grad():
        pool.query.normal_()
    x = torch.randn(2, 3, 5)
    out, w = pool(x)
    q = pool.query.expand(2, 1, 5)
    ref, ref_w = scaled_dot_product_attention(q, pool.w_k(x), x)
    assert torch.allclose(out, ref[:, 0]) and torch.allclose(w, ref_w[:, 0])
    assert not torch.allclose(w, torch.full_like(w, 1 / 3))


def test_attention_pooling_rejects_bad_shapes():
    pool = AttentionPooling(4)
    with pytest.raises(ValueError, match="d_model=4"):
        pool(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="mask must have shape"):
        pool(torch.randn(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))


def test_classifier_rejects_float_inputs():
    model = AttentionTextClassifier(torch.nn.Embedding(5, 8, padding_idx=0))
    with pytest.raises(TypeError, match="long tensor"):
        model(torch.randn(2, 3), torch.ones(2, 3, dtype=torch.bool))


def test_classifier_learns_a_keyword_task_and_is_reproducible():
    # label = 1 iff the sentence contains "good"; the sentences also contain noise words
    g = torch.Generator().manual_seed(0)
    n, T = 200, 6
    ids = torch.randint(4, 20, (n, T), generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    pos = torch.randint(0, T, (n,), generator=g)
    ids[torch.arange(n), pos] = torch.where(y == 1, 2, 3)  # "good" or "bad" somewhere
    mask = torch.ones(n, T, dtype=torch.bool)

    def run():
        torch.manual_seed(0)
        model = AttentionTextClassifier(torch.nn.Embedding(20, 16, padding_idx=0))
        hist = train_classifier(model, {"ids": ids[:150], "mask": mask[:150]}, y[:150], epochs=30, lr=1e-2, seed=0)
        acc = (predict(model, {"ids": ids[150:], "mask": mask[150:]}) == y[150:]).float().mean().item()
        return hist["loss"], acc, model

    loss1, acc1, model = run()
    loss2, acc2, _ = run()
    assert loss1 == loss2 and acc1 == acc2
    assert loss1[-1] < 0.5 * loss1[0]
    assert acc1 > 0.9
    # the learned pooling weighs the keyword far above the uniform 1/T
    model(ids[150:], mask[150:])
    w = model.last_weights
    keyword = (ids[150:] == 2) | (ids[150:] == 3)
    assert (w * keyword).sum(-1).mean() > 2 / T

import numpy as np
import pytest
import torch
from scipy import sparse

from ptutils.word2vec import (GloVeConfig, Vocab, WordVectors, analogy_answers, build_vocab, cooccurrence_matrix,
                                glove_loss, glove_loss_and_grads, glove_weight, paired_spearman_difference,
                                train_glove)


def test_weighting_function():
    f = glove_weight(torch.tensor([0.0, 1.0, 50.0, 100.0, 1000.0]), x_max=100, alpha=0.75)
    assert f[0] == 0 and f[3] == 1 and f[4] == 1
    assert f[1].item() == pytest.approx(0.01 ** 0.75) and f[2].item() == pytest.approx(0.5 ** 0.75)
    with pytest.raises(ValueError, match="non-negative"):
        glove_weight(torch.tensor([-1.0]))


def test_loss_equals_hand_computation():
    X = np.array([[0.0, 2.0], [200.0, 1.0]])  # three non-zero entries, one above x_max
    w, wc = np.array([[1.0, 0.0], [0.5, 1.0]]), np.array([[0.0, 1.0], [2.0, -1.0]])
    b, bc = np.array([0.1, -0.2]), np.array([0.3, 0.0])
    hand = 0.0
    for i, j in ((0, 1), (1, 0), (1, 1)):
        f = min(1.0, (X[i, j] / 100) ** 0.75)
        hand += f * (w[i] @ wc[j] + b[i] + bc[j] - np.log(X[i, j])) ** 2
    assert glove_loss(X, w, wc, b, bc) == pytest.approx(hand)
    assert glove_loss(sparse.csr_matrix(X), w, wc, b, bc) == pytest.approx(hand)


def test_hand_gradients_equal_autograd():
    g = torch.Generator().manual_seed(0)
    w, wc = (torch.randn(7, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    b, bc, logx = (torch.randn(7, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    f = torch.rand(7, generator=g, dtype=torch.float64)
    loss, *grads = glove_loss_and_grads(w, wc, b, bc, logx.detach(), f)
    loss.backward()
    for mine, t in zip(grads, (w, wc, b, bc), strict=True):
        torch.testing.assert_close(mine, t.grad)


def test_bad_input_names_the_problem():
    w, b = np.zeros((2, 3)), np.zeros(2)
    with pytest.raises(ValueError, match="non-negative"):
        glove_loss(np.array([[1.0, -1.0], [0.0, 1.0]]), w, w, b, b)
    with pytest.raises(ValueError, match="square"):
        train_glove(np.ones((2, 3)))
    with pytest.raises(ValueError, match="do not match"):
        glove_loss(np.ones((3, 3)), w, w, b, b)
    with pytest.raises(ValueError, match="no positive entry"):
        train_glove(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="vocabulary has"):
        train_glove(np.ones((2, 2)), Vocab(["a"], np.ones(1, dtype=np.int64)))


def test_cooccurrence_counts_by_hand():
    sents = [["a", "b", "zz", "a"], ["b", "a"]]  # zz is out of vocabulary but keeps its position
    vocab = build_vocab(sents, min_count=2)  # a (3), b (2)
    ia, ib = vocab.index["a"], vocab.index["b"]
    X = cooccurrence_matrix(sents, vocab, window=2).toarray()
    # a-b at distance 1 (sentence 0), zz-a ignored, b-a at distance 2 (b zz a), a-b distance 1 (sentence 1)
    assert X[ia, ib] == X[ib, ia] == pytest.approx(1 + 0.5 + 1)
    assert X[ia, ia] == 0  # a ... a is 3 apart
    U = cooccurrence_matrix(sents, vocab, window=3, weighting="uniform").toarray()
    assert U[ia, ia] == 2 and U[ia, ib] == 3


def test_recovers_a_low_rank_log_count_matrix_and_is_reproducible():
    rng = np.random.default_rng(0)
    V, d = 30, 3
    A, B = rng.normal(size=(V, d)), rng.normal(size=(V, d))
    logX = A @ B.T * 0.5 + 4.0  # counts up to a few thousand: most weights are 1
    X = np.exp(logX)
    cfg = GloVeConfig(dim=d, epochs=300, batch_size=100, lr=0.5, seed=1)
    (w, wc, b, bc), hist = train_glove(X, cfg=cfg)
    recon = (w @ wc.T + b[:, None] + bc[None, :]).double().numpy()
    assert np.abs(recon - logX).mean() < 1e-3 * np.abs(logX - logX.mean()).mean()
    assert hist["loss"][-1] < 1e-6 * hist["loss"][0]
    (w2, *_), _ = train_glove(X, cfg=cfg)
    assert torch.equal(w, w2)
    (w3, *_), _ = train_glove(X, cfg=GloVeConfig(dim=d, epochs=2, batch_size=300, seed=2))
    assert not torch.equal(w[:1], w3[:1])


def test_paired_spearman_difference():
    rng = np.random.default_rng(0)
    human = rng.normal(size=200)
    good, bad = human + 0.3 * rng.normal(size=200), rng.normal(size=200)
    r = paired_spearman_difference(human, good, bad)
    assert r["low"] > 0 and r["a"] > 0.8 and abs(r["b"]) < 0.2
    same = paired_spearman_difference(human, good, good)
    assert same["diff"] == 0 and same["low"] == same["high"] == 0
    with pytest.raises(ValueError, match="paired"):
        paired_spearman_difference(human, good[:10], bad)


def test_analogy_answers(tmp_path):
    words = ["man", "woman", "king", "queen", "apple"]
    vec = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [-1, 0, 0]], dtype=float)
    wv = WordVectors(Vocab(words, np.ones(5, dtype=np.int64)), vec)
    f = tmp_path / "q.txt"
    f.write_text(": section\nMan Woman King Queen\nman woman king unknown\n")
    qs, pred = analogy_answers(wv, f)
    assert qs == [("man", "woman", "king", "queen")] and wv.vocab.words[pred[0]] == "queen"


def test_one_adagrad_step_is_the_reference_codes():
    """glove.c accumulates the squares of the scaled steps lr * g (started at 1): after one batch
    theta moves by lr g / sqrt(1 + (lr g)^2). Squaring the unscaled g instead (lr g / sqrt(1 + g^2))
    moves it up to 1 / lr times less once gradients are large, which is what this test rejects."""
    X = np.array([[0.0, 50.0, 3.0], [50.0, 0.0, 8.0], [3.0, 8.0, 2.0]])
    V, d, lr, seed = 3, 2, 0.5, 4
    gen = torch.Generator().manual_seed(seed)
    W = (torch.rand(2 * V, d, generator=gen) - 0.5) / d
    bias = (torch.rand(2 * V, generator=gen) - 0.5) / d
    i, j = np.nonzero(X)
    x = torch.tensor(X[i, j], dtype=torch.float32)
    ii, jj = torch.from_numpy(i), torch.from_numpy(j) + V
    _, g_w, g_wc, g_b, g_bc = glove_loss_and_grads(W[ii], W[jj], bias[ii], bias[jj], torch.log(x),
                                                   glove_weight(x, 10.0, 0.75))
    G = torch.zeros_like(W).index_add_(0, ii, g_w).index_add_(0, jj, g_wc)
    Gb = torch.zeros_like(bias).index_add_(0, ii, g_b).index_add_(0, jj, g_bc)
    assert (G.abs() > 1).any()  # large enough that the two rules differ clearly
    want_w = W - lr * G / torch.sqrt(1 + (lr * G) ** 2)
    want_b = bias - lr * Gb / torch.sqrt(1 + (lr * Gb) ** 2)
    (w, wc, b, bc), _ = train_glove(X, cfg=GloVeConfig(dim=d, x_max=10.0, lr=lr, epochs=1, batch_size=100, seed=seed))
    torch.testing.assert_close(torch.cat([w, wc]), want_w)
    torch.testing.assert_close(torch.cat([b, bc]), want_b)

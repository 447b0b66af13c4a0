import numpy as np
import pytest
import torch

from ptutils.data import gensim_data_path, load_text_corpus, tokenize
from ptutils.word2vec import (Vocab, Word2VecConfig, WordVectors, build_vocab, gensim_word2vec,
                                keep_probabilities, sgns_loss_and_grads, skipgram_pairs,
                                train_word2vec)


def topic_corpus(n=300, seed=0):
    """Two topics with disjoint words: a good embedding puts each topic's words together."""
    rng = np.random.default_rng(seed)
    a = [f"a{i}" for i in range(10)]
    b = [f"b{i}" for i in range(10)]
    return [list(rng.choice(a if k % 2 else b, size=12)) for k in range(n)]


def test_vocab_and_errors():
    v = build_vocab([["a", "b", "a"], ["c", "a", "b"]], min_count=2)
    assert v.words == ["a", "b"] and v.counts.tolist() == [3, 2]
    with pytest.raises(ValueError, match="empty"):
        build_vocab([[], []])
    with pytest.raises(ValueError, match="min_count=5 leaves no vocabulary"):
        build_vocab([["a", "b"]], min_count=5)
    with pytest.raises(TypeError, match="list of token lists"):
        build_vocab(["a sentence as a string"])


def test_keep_probabilities():
    counts = np.array([100000, 1000, 10])
    p = keep_probabilities(counts, 1e-3)
    assert (p <= 1).all() and p[0] < p[1] <= p[2] == 1.0
    t = 1e-3 * counts.sum()
    assert p[0] == pytest.approx((np.sqrt(counts[0] / t) + 1) * t / counts[0])
    assert (keep_probabilities(counts, 0) == 1).all()


def test_skipgram_pairs_respect_window_and_sentences():
    ids = np.array([0, 1, 2, 3, 4])
    sent = np.array([0, 0, 0, 1, 1])
    c, o = skipgram_pairs(ids, sent, window=1, rng=np.random.default_rng(0))
    pairs = set(zip(c.tolist(), o.tolist(), strict=True))
    assert pairs == {(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)}  # never (2, 3): different sentences
    c, o = skipgram_pairs(ids[:3], sent[:3], window=5, rng=np.random.default_rng(1))
    assert all(abs(a - b) <= 2 and a != b for a, b in zip(c, o, strict=True))


def test_hand_gradients_equal_autograd():
    g = torch.Generator().manual_seed(0)
    v, u_pos = (torch.randn(3, 4, 6, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    u_neg = torch.randn(3, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    loss, gv, gp, gn = sgns_loss_and_grads(v, u_pos, u_neg)
    loss.backward()
    for mine, t in ((gv, v), (gp, u_pos), (gn, u_neg)):
        torch.testing.assert_close(mine, t.grad)


def test_training_learns_topics_and_is_reproducible():
    corpus = topic_corpus()
    cfg = Word2VecConfig(dim=16, window=3, min_count=1, sample=0, epochs=5, batch_size=256, share_negatives=8)
    wv, hist = train_word2vec(corpus, cfg)
    assert hist["loss"][-1] < hist["loss"][0]
    within = np.mean([wv.similarity("a0", f"a{i}") for i in range(1, 10)])
    across = np.mean([wv.similarity("a0", f"b{i}") for i in range(10)])
    assert within > across + 0.3
    assert all(w.startswith("a") for w, _ in wv.most_similar("a0", topn=5))
    wv2, _ = train_word2vec(corpus, cfg)
    assert np.array_equal(wv.vectors, wv2.vectors)
    with pytest.raises(TypeError, match="not both"):
        train_word2vec(corpus, cfg, dim=8)


def test_word_vectors_api_and_conversions():
    corpus = topic_corpus(100)
    wv, _ = train_word2vec(corpus, dim=8, min_count=1, epochs=1, batch_size=128, share_negatives=4)
    assert wv["a1"].shape == (8,) and "a1" in wv and "zzz" not in wv
    with pytest.raises(KeyError, match="'zzz' is not in the vocabulary"):
        wv.most_similar("zzz")
    assert "a1" not in [w for w, _ in wv.most_similar("a1")]
    assert wv.most_similar(wv["a1"], topn=1)[0][0] == "a1"
    kv = wv.to_gensim()
    assert kv.similarity("a1", "b2") == pytest.approx(wv.similarity("a1", "b2"), abs=1e-6)
    back = WordVectors.from_gensim(kv)
    assert back.vocab.words == wv.vocab.words and np.allclose(back.vectors, wv.vectors)
    emb, index = wv.to_embedding()
    assert emb.weight.shape == (len(wv) + 2, 8) and not emb.weight.requires_grad
    assert torch.allclose(emb(torch.tensor(index["a1"])), torch.from_numpy(wv["a1"]))
    assert torch.equal(emb.weight[0], torch.zeros(8)) and index["<unk>"] == 1
    with pytest.raises(ValueError, match="vectors for"):
        WordVectors(wv.vocab, wv.vectors[:3])


def test_word_pair_evaluation_is_spearman_and_an_oov_rate(tmp_path):
    """Similarities ranked like the human scores give rho = 1 (not Pearson's r), reversed -1."""
    angles = np.array([0.0, 0.3, 0.6, 0.9, 1.2])  # cos(x, w) falls as the angle grows
    vectors = np.stack([np.cos(angles), np.sin(angles)], 1)
    wv = WordVectors(Vocab(["x", "a", "b", "c", "d"], np.ones(5, dtype=np.int64)), vectors)
    f = tmp_path / "pairs.tsv"
    for scores, expected in (([10.0, 9.9, 2.0, 1.0], 1.0), ([1.0, 2.0, 9.9, 10.0], -1.0)):
        rows = [f"x\t{w}\t{s}" for w, s in zip("abcd", scores, strict=True)]
        f.write_text("# word1 word2 score\n" + "\n".join(rows + ["x\tunseen\t5.0"]) + "\n")
        rho, oov = wv.evaluate_word_pairs(f)
        assert rho == pytest.approx(expected, abs=1e-9) and oov == pytest.approx(1 / 5)


def test_gensim_loader_and_evaluation():
    from scipy.stats import spearmanr

    corpus = load_text_corpus("lee")
    gv, secs = gensim_word2vec(corpus, epochs=2, workers=1)
    assert len(gv) > 1000 and gv.dim == Word2VecConfig().dim and secs > 0
    path = gensim_data_path("wordsim353.tsv")
    rho, oov = gv.evaluate_word_pairs(path)
    pairs = [line.split("\t") for line in path.read_text().splitlines() if not line.startswith("#")]
    known = [(a.lower(), b.lower(), float(s)) for a, b, s in pairs if a.lower() in gv and b.lower() in gv]
    assert oov == pytest.approx(1 - len(known) / len(pairs))  # a fraction, not gensim's percentage
    ours = spearmanr([gv.similarity(a, b) for a, b, _ in known], [s for *_, s in known]).statistic
    assert rho == pytest.approx(ours, abs=5e-3)  # (gensim ranks float32 similarities: ties can differ)


def test_tokenize_lowercases_before_stopwords():
    assert tokenize("The THE Cat's hat!") == ["the", "the", "cat's", "hat"]
    assert tokenize("The THE Cat sat", remove_stopwords=True) == ["cat", "sat"]


def test_text_corpus():
    wiki = load_text_corpus("wiki")
    assert len(wiki) == 106 and 400_000 < sum(map(len, wiki)) < 500_000
    assert wiki[0][:2] == ["anarchism", "is"]
    with pytest.raises(ValueError, match="which"):
        load_text_corpus("books")


@pytest.mark.parametrize("bad", [dict(share_negatives=0), dict(batch_size=0), dict(window=0), dict(negative=0),
                                 dict(min_count=0), dict(epochs=-1), dict(dim=2.5), dict(sample=-1e-3),
                                 dict(lr=0.0), dict(min_lr=1.0), dict(share_negatives=True)])
def test_word2vec_config_refuses_settings_that_cannot_train(bad):
    from ptutils.word2vec import Word2VecConfig

    with pytest.raises(ValueError, match="Word2VecConfig"):
        Word2VecConfig(**bad)

"""Chapter 9 on the benchmark: Word2Vec cached by corpus and settings, the random model's own vocabulary."""

import numpy as np
import pytest

from ptutils.word2vec import Word2VecConfig, cached_word2vec, corpus_fingerprint, train_word2vec, word2vec_recipe
from ptutils.textclf import encode_tokens, word_index

CORPUS = [["the", "film", "is", "good"], ["the", "film", "is", "bad"], ["a", "good", "film"],
          ["a", "bad", "plot"], ["the", "plot", "is", "good"]] * 20
CFG = Word2VecConfig(dim=8, epochs=2, min_count=2, batch_size=64, share_negatives=1, seed=0)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    import ptutils.config as config

    monkeypatch.setattr(config, "cache_dir", lambda: tmp_path)
    return tmp_path


def test_corpus_fingerprint_sees_tokens_and_sentence_boundaries():
    base = corpus_fingerprint([["a", "b"], ["c"]])
    assert base == corpus_fingerprint([["a", "b"], ["c"]])
    assert base != corpus_fingerprint([["a"], ["b", "c"]])  # same tokens, other boundaries
    assert base != corpus_fingerprint([["ab"], ["c"]])  # same characters, other tokens
    assert base != corpus_fingerprint([["a", "b"], ["c"], []])  # an empty sentence counts
    with pytest.raises(TypeError, match="list of token lists"):
        corpus_fingerprint(["a b", "c"])


def test_word2vec_recipe_holds_every_setting_and_the_corpus():
    r = word2vec_recipe(CORPUS, CFG)
    assert r["config"]["epochs"] == 2 and r["config"]["dim"] == 8 and r["config"]["seed"] == 0
    assert r["tokens"] == sum(map(len, CORPUS)) and r["sentences"] == len(CORPUS)
    assert r != word2vec_recipe(CORPUS, Word2VecConfig(**{**CFG.__dict__, "window": 2}))
    assert r != word2vec_recipe(CORPUS[:-1], CFG)


def test_cached_word2vec_trains_once_and_matches_train_word2vec(tmp_cache):
    wv, hist = cached_word2vec(CORPUS, CFG, verbose=False)
    ref, _ = train_word2vec(CORPUS, CFG)
    assert wv.vocab.words == ref.vocab.words
    np.testing.assert_array_equal(wv.vectors, ref.vectors)
    files = sorted(p.name for p in tmp_cache.iterdir())
    assert len(files) == 1 and files[0].startswith("word2vec-") and hist["key"] in files[0]
    again, hist2 = cached_word2vec(CORPUS, CFG, verbose=False)  # loaded, not trained
    np.testing.assert_array_equal(again.vectors, wv.vectors)
    assert hist2["key"] == hist["key"] and hist2["loss"] == hist["loss"]
    assert len(list(tmp_cache.iterdir())) == 1


def test_cached_word2vec_never_answers_a_changed_corpus_or_setting(tmp_cache):
    _, h1 = cached_word2vec(CORPUS, CFG, verbose=False)
    _, h2 = cached_word2vec(CORPUS + [["a", "good", "plot"]], CFG, verbose=False)
    _, h3 = cached_word2vec(CORPUS, Word2VecConfig(**{**CFG.__dict__, "epochs": 3}), verbose=False)
    assert len({h1["key"], h2["key"], h3["key"]}) == 3
    assert len(list(tmp_cache.iterdir())) == 3


def test_cached_word2vec_rejects_config_and_keywords_together(tmp_cache):
    with pytest.raises(TypeError, match="not both"):
        cached_word2vec(CORPUS, CFG, epochs=3)


def test_the_random_models_vocabulary_comes_from_its_training_sentences_only():
    train = [["a", "good", "film"], ["a", "bad", "film"]]
    index = word_index(train, min_count=1)
    assert set(index) == {"<pad>", "<unk>", "a", "film", "good", "bad"}
    assert index["<pad>"] == 0 and index["<unk>"] == 1
    ids, mask = encode_tokens([["a", "masterpiece"]], index)
    assert ids.tolist() == [[index["a"], 1]]  # a word no training sentence has is <unk>
    assert set(word_index(train, min_count=2)) == {"<pad>", "<unk>", "a", "film"}


def test_keep_best_with_patience_stops_train_classifier_early():
    import torch
    from torch import nn

    from ptutils.training import KeepBest, train_classifier

    torch.manual_seed(0)
    x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    scores = iter([0.5, 0.7, 0.6, 0.7, 0.65, 0.9, 0.95])  # best at epoch 1, then two epochs without a new best
    keep = KeepBest(lambda m: next(scores), patience=2)
    h = train_classifier(nn.Linear(3, 2), x, y, epochs=7, lr=0.1, on_epoch_end=keep)
    assert len(h["loss"]) == 4 and keep.epoch == 1 and keep.best == 0.7  # stopped after epoch 3 (0-based)
    assert h["epochs_run"] == 4 and h["val_acc"] == [0.5, 0.7, 0.6, 0.7] and "stop" not in h


def test_keep_best_without_patience_runs_every_epoch_and_reports_only_the_score():
    import torch
    from torch import nn

    from ptutils.training import KeepBest, train_classifier

    keep = KeepBest(lambda m: 0.5)
    h = train_classifier(nn.Linear(3, 2), torch.randn(8, 3), torch.randint(0, 2, (8,)), epochs=5, on_epoch_end=keep)
    assert len(h["loss"]) == 5 and h["val_acc"] == [0.5] * 5 and set(h) == {"loss", "val_acc", "epochs_run", "seconds"}
    with pytest.raises(ValueError, match="patience"):
        KeepBest(lambda m: 0.0, patience=0)

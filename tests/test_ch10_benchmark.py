"""Chapter 10 on the sentence-polarity benchmark: length batching, early stopping, cached runs."""

import numpy as np
import pytest
import torch

from ptutils import protocol
from ptutils.data import rt_polarity_benchmark
from ptutils.seq_autoencoder import (PAD, UNK, LSTMClassifier, LSTMSequenceAutoencoder, SequenceEncoder,
                                     batches_by_length, benchmark_autoencoder, encode_texts,
                                     lstm_classifier_predictions, mean_reconstruction_loss,
                                     pretrain_sequence_autoencoder, reconstruction_loss, train_with_validation,
                                     trim_padding, vocabulary_of)

TINY_AE = {"d_embed": 8, "d_hidden": 16, "max_words": 300, "epochs": 2, "max_len": 12, "batch_size": 128}
TINY_CLF = {"epochs": 2, "min_steps": 4, "checks": 2}


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    import ptutils.config as config

    monkeypatch.setattr(config, "cache_dir", lambda: tmp_path)
    return tmp_path


def _padded(rows):
    T = max(map(len, rows))
    return torch.tensor([r + [PAD] * (T - len(r)) for r in rows])


def test_trim_padding_changes_no_result():
    ids = _padded([[5, 6, 7], [4, 5], [8]])
    ids = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], 1)  # extra all-padding columns
    assert trim_padding(ids).shape == (3, 3)
    torch.manual_seed(0)
    ae = LSTMSequenceAutoencoder(10, 4, 6)
    assert torch.allclose(reconstruction_loss(ae(ids), ids), reconstruction_loss(ae(trim_padding(ids)),
                                                                                 trim_padding(ids)), atol=1e-6)
    assert trim_padding(torch.zeros(2, 3, dtype=torch.long)).shape == (2, 1)


def test_batches_by_length_cover_every_row_once_and_group_lengths():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 30, (500,), generator=g)
    ids = (torch.arange(30)[None] < lengths[:, None]).long() * 5  # (500, 30), row i has lengths[i] tokens
    batches = batches_by_length(ids, 50, torch.Generator().manual_seed(1))
    assert sorted(torch.cat(batches).tolist()) == list(range(500))
    spread = [int(lengths[b].max() - lengths[b].min()) for b in batches]
    assert max(spread) <= 5  # sorted by length: a batch holds similar lengths
    again = batches_by_length(ids, 50, torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))


def test_keep_best_restores_the_epoch_with_the_lowest_held_out_loss():
    g = torch.Generator().manual_seed(0)
    train = torch.randint(3, 40, (64, 6), generator=g)
    held = torch.randint(3, 40, (32, 6), generator=g)  # unrelated random text: held-out loss rises as it overfits
    torch.manual_seed(0)
    ae = LSTMSequenceAutoencoder(40, 8, 32)
    h = pretrain_sequence_autoencoder(ae, train, held, epochs=8, lr=2e-2, batch_size=16, keep_best=True,
                                      by_length=True)
    best = int(np.argmin(h["val_loss"])) + 1
    assert h["best_epoch"] == best
    assert mean_reconstruction_loss(ae, held) == pytest.approx(h["val_loss"][best - 1], rel=1e-5)
    with pytest.raises(ValueError, match="val_ids"):
        pretrain_sequence_autoencoder(ae, train, None, keep_best=True)


def test_train_with_validation_keeps_the_best_checkpoint():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 20, (48, 5), generator=g)
    y = (ids == 3).any(1).long()
    torch.manual_seed(0)
    model = LSTMClassifier(SequenceEncoder(20, 8, 16))
    h = train_with_validation(model, ids, y, ids[:24], y[:24].numpy(), lr=1e-2, epochs=3, min_steps=30,
                              checks=5, batch_size=16)
    assert h["epochs"] == 10  # 30 steps at 3 steps per epoch
    assert h["val_epoch"] == [2, 4, 6, 8, 10]
    assert h["best_epoch"] == h["val_epoch"][int(np.argmax(h["val_acc"]))]
    from ptutils.training import predict

    assert float((predict(model, ids[:24]) == y[:24]).float().mean()) == pytest.approx(max(h["val_acc"]))


def test_vocabulary_and_encoding():
    wi = vocabulary_of(["A film, a film.", "the film"], min_count=1)
    assert list(wi)[:5] == ["<pad>", "<unk>", "<bos>", "film", "a"]
    ids = encode_texts(["a film nobody saw", "..."], wi, max_len=3)
    assert ids.tolist() == [[wi["a"], wi["film"], UNK], [UNK, PAD, PAD]]


def test_benchmark_autoencoder_is_cached_by_recipe_and_never_sees_test_text(tmp_cache, monkeypatch):
    bench = rt_polarity_benchmark(fast=True)
    seen = []
    import ptutils.seq_autoencoder as sa

    real = sa.encode_texts

    def spy(texts, *a, **k):
        seen.extend(texts)
        return real(texts, *a, **k)

    monkeypatch.setattr(sa, "encode_texts", spy)
    ae = benchmark_autoencoder(bench, verbose=False, **TINY_AE)
    test_texts = set(bench.text(bench.test))
    assert seen and not test_texts & set(seen)  # pre-training and held-out text: pool only
    train_pool, val = protocol.split(bench)
    assert set(seen) == set(bench.text(train_pool)) | set(bench.text(val))
    assert ae.history["best_epoch"] in (1, 2) and len(ae.history["val_loss"]) == 2
    seen.clear()
    again = benchmark_autoencoder(bench, verbose=False, **TINY_AE)  # loaded, not retrained
    assert not seen and again.key == ae.key
    for p, q in zip(ae.model.state_dict().values(), again.model.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    other = benchmark_autoencoder(bench, verbose=False, **{**TINY_AE, "lr": 1e-3})
    assert other.key != ae.key and seen  # a changed setting is a different artefact
    with pytest.raises(TypeError, match="unknown"):
        benchmark_autoencoder(bench, hidden=3)


def test_classifier_runs_pretrained_and_scratch_fairly(tmp_cache):
    bench = rt_polarity_benchmark(fast=True)
    ae = benchmark_autoencoder(bench, verbose=False, **TINY_AE)
    idx = protocol.train_set(bench, 16, 0)
    pre = lstm_classifier_predictions(bench, idx, ae, pretrained=True, **TINY_CLF)
    scratch = lstm_classifier_predictions(bench, idx, ae, pretrained=False, **TINY_CLF)
    for r in (pre, scratch):
        assert r["test_pred"].shape == (len(bench.test),) and set(np.unique(r["test_pred"])) <= {0, 1}
        assert int(r["best_epoch"]) in r["val_epoch"].tolist()
    again = lstm_classifier_predictions(bench, idx, ae, pretrained=True, **TINY_CLF)
    assert np.array_equal(again["test_pred"], pre["test_pred"])
    with pytest.raises(ValueError, match="test"):
        lstm_classifier_predictions(bench, bench.test[:4], ae, pretrained=True, **TINY_CLF)
    with pytest.raises(ValueError, match="validation"):
        lstm_classifier_predictions(bench, protocol.split(bench)[1][:4], ae, pretrained=False, **TINY_CLF)


def test_scratch_vocabulary_comes_from_its_own_training_sentences(tmp_cache, monkeypatch):
    import ptutils.seq_autoencoder as sa

    bench = rt_polarity_benchmark(fast=True)
    ae = benchmark_autoencoder(bench, verbose=False, **TINY_AE)
    calls, real = [], sa.vocabulary_of
    monkeypatch.setattr(sa, "vocabulary_of", lambda texts, **k: calls.append(list(texts)) or real(texts, **k))
    idx = protocol.train_set(bench, 4, 1)
    lstm_classifier_predictions(bench, idx, ae, pretrained=False, **TINY_CLF)
    assert calls == [bench.text(idx)]  # nothing from the unlabelled pool, not even the word list
    lstm_classifier_predictions(bench, idx, ae, pretrained=True, **TINY_CLF)
    assert len(calls) == 1  # the fine-tuned model keeps the autoencoder's vocabulary

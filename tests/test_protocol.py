"""The text chapters' shared protocol: baselines, fine-tuning runs, tables."""

import numpy as np
import pytest

from ptutils import protocol
from ptutils.baselines import choose_C, fit_predict, linear_probe, tfidf_classifier
from ptutils.data import rt_polarity_benchmark


@pytest.fixture(scope="module")
def bench():
    return rt_polarity_benchmark(fast=True)


def test_choose_C_uses_validation_and_prefers_the_simpler_tie():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] > 0).astype(int)
    best, scores = choose_C(linear_probe, X[:100], y[:100], X[100:], y[100:], grid=(0.01, 1.0, 100.0))
    assert set(scores) == {0.01, 1.0, 100.0} and scores[best] == max(scores.values())
    tied = [C for C, s in scores.items() if s == scores[best]]
    assert best == min(tied)
    with pytest.raises(ValueError, match="two classes"):
        choose_C(linear_probe, X[:10], np.zeros(10, int), X[10:20], y[10:20])
    pred, C = fit_predict(linear_probe, X[:100], y[:100], X[100:], X_val=X[100:150], y_val=y[100:150])
    assert pred.shape == (100,) and (pred == y[100:]).mean() > 0.9


def test_tfidf_and_probe_beat_chance_on_the_benchmark(bench):
    from ptutils.pretrained import benchmark_embeddings

    tr = protocol.train_set(bench, None)
    _, val = protocol.split(bench)
    assert not set(tr) & set(val) and not set(tr) & set(bench.test)
    y = bench.y(bench.test)
    pred, params = protocol.tfidf_predictions(bench, tr)
    assert (pred == y).mean() > 0.6 and params in __import__("ptutils").baselines.TFIDF_GRID
    X = benchmark_embeddings(bench, verbose=False)
    pred, C = protocol.probe_predictions(bench, X, tr)
    assert (pred == y).mean() > 0.65
    fitted = tfidf_classifier(1.0, (1, 1)).fit(bench.text(tr), bench.y(tr))
    assert fitted.named_steps["tfidfvectorizer"].ngram_range == (1, 1)


def test_draws_and_grid():
    assert protocol.draws_for(None) == 1 and protocol.draws_for(4) == protocol.LINEAR_DRAWS
    assert protocol.label(None) == "all" and protocol.label(16) == "16"
    assert protocol.LABEL_GRID[-1] is None and protocol.REFERENCE_K in protocol.LABEL_GRID


def test_finetune_minilm_refuses_test_sentences_and_bad_settings(bench):
    from ptutils.finetune import finetune_minilm

    train_pool, val = protocol.split(bench)
    with pytest.raises(ValueError, match="test sentences"):
        finetune_minilm(bench, bench.test[:8], val_idx=val)
    with pytest.raises(ValueError, match="test sentences"):
        finetune_minilm(bench, train_pool[:8], val_idx=bench.test[:8])
    with pytest.raises(ValueError, match="overlaps"):
        finetune_minilm(bench, train_pool[:8], val_idx=train_pool[4:12])
    with pytest.raises(ValueError, match="empty"):
        finetune_minilm(bench, [])
    with pytest.raises(TypeError, match="unknown fine-tuning settings"):
        finetune_minilm(bench, train_pool[:8], learning_rate=1e-3)
    with pytest.raises(ValueError, match="head"):
        finetune_minilm(bench, train_pool[:8], head="max")


def test_finetune_minilm_runs_caches_and_keys_by_training_set(bench, tmp_path, monkeypatch):
    import ptutils.config as config
    from ptutils.finetune import finetune_minilm

    monkeypatch.setattr(config, "cache_dir", lambda: tmp_path)
    train_pool, val = protocol.split(bench)
    tr = bench.labelled(4, within=train_pool)
    tiny = {"epochs": 1, "max_length": 16, "batch_size": 8, "min_steps": 2}
    r = finetune_minilm(bench, tr, val_idx=val[:20], predict_idx=train_pool[:5], verbose=False, **tiny)
    assert r["test_logits"].shape == (len(bench.test), 2) and r["test_pred"].shape == (len(bench.test),)
    assert np.array_equal(r["test_pred"], r["test_logits"].argmax(-1))
    # 4 labels a class = one step an epoch, so min_steps=2 makes 2 epochs, each scored on validation
    assert r["val_epoch"].tolist() == [1, 2] and r["loss"].shape == (2,)
    assert r["val_acc"].shape == (2,) and np.allclose(r["val_acc"] * 20, np.round(r["val_acc"] * 20))  # k/20
    assert r["predict_logits"].shape == (5, 2) and float(r["seconds"]) > 0
    files = list(tmp_path.glob("finetuned-minilm-*.npz"))
    assert len(files) == 1
    again = finetune_minilm(bench, tr[::-1], val_idx=val[:20], predict_idx=train_pool[:5], verbose=False, **tiny)
    assert np.array_equal(again["test_logits"], r["test_logits"])  # same set, any order: loaded
    assert len(list(tmp_path.glob("finetuned-minilm-*.npz"))) == 1
    other = bench.labelled(4, draw=1, within=train_pool)
    finetune_minilm(bench, other, val_idx=val[:20], predict_idx=train_pool[:5], verbose=False, **tiny)
    assert len(list(tmp_path.glob("finetuned-minilm-*.npz"))) == 2


def test_mean_pool_classifier_masks_padding_and_gives_a_loss():
    import torch

    from ptutils.finetune import MeanPoolClassifier

    class Toy(torch.nn.Module):
        config = type("C", (), {"hidden_size": 3})()

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            return type("O", (), {"last_hidden_state": input_ids.float().unsqueeze(-1).repeat(1, 1, 3)})()

    m = MeanPoolClassifier(Toy(), dropout=0.0).eval()
    ids = torch.tensor([[2, 4, 0], [2, 4, 9]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    out = m(ids, mask, labels=torch.tensor([0, 1]))
    pooled_first = m.head(torch.full((1, 3), 3.0))  # mean of 2 and 4; the padded 0 ignored
    assert torch.allclose(out.logits[0], pooled_first[0]) and out.loss.ndim == 0
    assert m(ids, mask).loss is None


def test_markdown_table_escapes_and_checks_rows():
    from ptutils.display import markdown_table

    md = markdown_table([{"a": 1, "b": "x|y"}, {"a": 2, "b": "z"}], display=False).data
    assert md.splitlines()[0] == "| a | b |" and "x\\|y" in md
    with pytest.raises(ValueError, match="same keys"):
        markdown_table([{"a": 1}, {"b": 2}], display=False)
    with pytest.raises(ValueError, match="no rows"):
        markdown_table([], display=False)


def test_length_grouped_batches_cover_every_example_once_and_reduce_padding():
    import torch

    from ptutils.finetune import _epoch_batches

    rng = np.random.default_rng(0)
    texts = ["x" * int(n) for n in rng.integers(1, 80, size=1000)]
    for grouped in (False, True):
        batches = _epoch_batches(texts, 32, torch.Generator().manual_seed(0), grouped)
        flat = torch.cat(batches).tolist()
        assert sorted(flat) == list(range(1000)) and all(len(b) <= 32 for b in batches)
    pad = lambda bs: sum(len(b) * max(len(texts[i]) for i in b) for b in bs)  # noqa: E731
    plain = _epoch_batches(texts, 32, torch.Generator().manual_seed(0), False)
    grouped = _epoch_batches(texts, 32, torch.Generator().manual_seed(0), True)
    assert pad(grouped) < 0.7 * pad(plain)
    with pytest.raises(ValueError, match="batch_size"):
        _epoch_batches(texts, 0, torch.Generator(), True)


def test_epochs_for_guarantees_a_minimum_number_of_steps():
    from ptutils.finetune import epochs_for

    assert epochs_for(2048, epochs=3, batch_size=32, min_steps=100) == 3  # 64 steps an epoch
    assert epochs_for(32, epochs=3, batch_size=32, min_steps=100) == 100  # one step an epoch
    assert epochs_for(128, epochs=3, batch_size=32, min_steps=100) == 25
    assert epochs_for(33, epochs=1, batch_size=32, min_steps=0) == 1
    with pytest.raises(ValueError):
        epochs_for(0, epochs=3, batch_size=32, min_steps=100)


def test_baseline_fits_are_cached_exactly_and_keyed_on_what_they_depend_on(bench, monkeypatch, tmp_path):
    """Chapters share TF-IDF and probe fits through the cache: a hit must return exactly what a fresh fit
    returns, a different training set or feature matrix must not hit, and a corrupted file is refitted."""
    from ptutils import baselines, config

    monkeypatch.setattr(config, "cache_dir", lambda: tmp_path)
    tr = protocol.train_set(bench, 4, 0)
    tr2 = protocol.train_set(bench, 4, 1)
    _, val = protocol.split(bench)
    fresh = fit_predict(baselines.tfidf_from, bench.text(tr), bench.y(tr), bench.text(bench.test),
                        X_val=bench.text(val), y_val=bench.y(val), grid=baselines.TFIDF_GRID)
    first = protocol.tfidf_predictions(bench, tr)
    files = sorted(tmp_path.glob("tfidf-predictions-*.npz"))
    assert len(files) == 1
    again = protocol.tfidf_predictions(bench, tr)  # from the file
    for got in (first, again):
        assert np.array_equal(got[0], fresh[0]) and got[0].dtype == fresh[0].dtype and got[1] == fresh[1]
        assert type(got[1][0]) is type(fresh[1][0]) and type(got[1][1]) is type(fresh[1][1])
    protocol.tfidf_predictions(bench, tr2)
    assert len(list(tmp_path.glob("tfidf-predictions-*.npz"))) == 2  # other rows, other key
    files[0].write_bytes(b"not an npz file")
    assert np.array_equal(protocol.tfidf_predictions(bench, tr)[0], fresh[0])  # refitted, not trusted

    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(bench.texts), 8)).astype(np.float32)
    X[:, 0] += bench.labels * 1.5
    probe, C, _ = protocol.fit_probe(bench, X, tr)
    expected = probe.predict(X[bench.test])
    for _ in range(2):
        pred, C_got = protocol.probe_predictions(bench, X, tr)
        assert np.array_equal(pred, expected) and C_got == C and type(C_got) is type(C)
    X2 = X.copy()
    X2[:, 1] = -X2[:, 1]  # other features, same rows: must not be served the first matrix's fit
    probe2 = protocol.fit_probe(bench, X2, tr)[0]
    assert np.array_equal(protocol.probe_predictions(bench, X2, tr)[0], probe2.predict(X2[bench.test]))
    assert len(list(tmp_path.glob("probe-predictions-*.npz"))) == 2

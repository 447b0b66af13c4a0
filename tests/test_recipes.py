"""Recipes the chapters share, written once in the library: the tiny BERT (chapters 8 and 12), the
linear probe, latency, recall@k and IoU (chapters 12, 14, 15), and the code fingerprint that keys
a cached model on the code that trained it."""

import numpy as np
import pytest
import torch

from ptutils import cache, metrics, mlm, protocol


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    import ptutils.config as config

    monkeypatch.setattr(config, "cache_dir", lambda: tmp_path)
    return tmp_path


# ---- code fingerprint -----------------------------------------------------------------------

@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A ptutils stand-in on disk: a imports b lazily, b imports c with ``from . import``; d is unrelated;
    the subpackage sub imports d with ``from ..``."""
    files = {"a.py": "def f():\n    from .b import g\n    return g()\n",
             "b.py": "from . import c\nimport numpy\n\ndef g():\n    return 1\n",
             "c.py": "X = 1\n",
             "d.py": "Y = 2\n",
             "sub/__init__.py": "from ..d import Y\nfrom .e import Z\n",
             "sub/e.py": "Z = 0\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.setattr(cache, "_PACKAGE_DIR", tmp_path)
    return tmp_path


def test_library_modules_follow_every_ptutils_import(fake_package):
    assert cache.library_modules("ptutils.a") == ["ptutils.a", "ptutils.b", "ptutils.c"]
    assert cache.library_modules("ptutils.d") == ["ptutils.d"]
    assert cache.library_modules("ptutils.sub") == ["ptutils.d", "ptutils.sub", "ptutils.sub.e"]
    with pytest.raises(ImportError):
        cache.library_modules("ptutils.missing")


def test_code_fingerprint_changes_with_imported_code_only(fake_package):
    before = cache.code_fingerprint("ptutils.a")
    (fake_package / "d.py").write_text("Y = 3\n")
    assert cache.code_fingerprint("ptutils.a") == before, "d is not imported by a"
    (fake_package / "c.py").write_text("X = 2\n")
    assert cache.code_fingerprint("ptutils.a") != before, "c is imported by b, which a imports"


def test_the_tiny_bert_recipe_covers_its_training_loop():
    modules = cache.library_modules("ptutils.mlm")
    assert {"ptutils.mlm", "ptutils.training", "ptutils.data", "ptutils.repro"} <= set(modules)
    assert mlm.tiny_bert_recipe()["code"] == cache.code_fingerprint("ptutils.mlm")


# ---- the tiny BERT ------------------------------------------------------------------------------

SMALL = {**mlm.tiny_bert_settings(), "corpus": "lee", "vocab_size": 400, "block": 30, "val_divisor": 10,
         "config": {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                    "intermediate_size": 32, "max_position_embeddings": 64},
         "epochs": 1, "batch_size": 64}


def test_tiny_bert_is_trained_once_by_the_recipe_and_then_loaded(tmp_cache, capsys, monkeypatch):
    from transformers import BertForMaskedLM

    # chapter 8's path: the steps one by one, with other work (random numbers drawn) in between
    tokenizer, train_blocks, val_blocks = mlm.tiny_bert_data(SMALL)
    assert train_blocks.shape[1] == SMALL["block"] + 2 and len(val_blocks) == (len(train_blocks) + len(val_blocks)) // 10
    model = mlm.new_tiny_bert(tokenizer, SMALL)
    torch.rand(1000), model(train_blocks[:4])  # noqa: B018 - what chapter 8 does before training (dropout draws)
    history = mlm.pretrain_tiny_bert(model, tokenizer, train_blocks, val_blocks, SMALL)
    assert len(history["loss"]) == SMALL["epochs"]
    ch8 = {k: v.clone() for k, v in model.state_dict().items()}

    # chapter 12's path, on an empty cache: trains by the same recipe
    assert mlm.saved_tiny_bert(SMALL) is None
    path = mlm.tiny_bert(SMALL)
    assert "pre-training it now" in capsys.readouterr().out
    ch12 = BertForMaskedLM.from_pretrained(path, local_files_only=True).state_dict()
    assert ch8.keys() == ch12.keys() and all(torch.equal(ch8[k], ch12[k]) for k in ch8), \
        "chapter 12 must get the very model chapter 8's recipe trains"

    # second call: loaded, not trained (pre-training would fail here)
    monkeypatch.setattr(mlm, "pretrain_tiny_bert", lambda *a, **k: pytest.fail("trained again"))
    assert mlm.tiny_bert(SMALL) == path
    assert "loaded tiny-bert-mlm" in capsys.readouterr().out
    # a changed recipe (or changed training code) is a different model
    assert mlm.saved_tiny_bert({**SMALL, "lr": SMALL["lr"] / 2}) is None
    monkeypatch.setattr(cache, "code_fingerprint", lambda *names: "0" * 64)
    assert mlm.saved_tiny_bert(SMALL) is None


# ---- the linear probe -------------------------------------------------------------------------------

def test_fit_probe_is_probe_predictions_fitted():
    from ptutils.data import rt_polarity_benchmark

    bench = rt_polarity_benchmark(fast=True)
    rng = np.random.default_rng(0)
    y = bench.y(np.arange(len(bench.texts)))
    X = rng.normal(size=(len(bench.texts), 8)) + 0.8 * y[:, None]  # features that carry the label
    tr = protocol.train_set(bench, 16)
    probe, C, scores = protocol.fit_probe(bench, X, tr)
    pred, C2 = protocol.probe_predictions(bench, X, tr)
    assert C == C2 and scores[C] == max(scores.values())
    assert np.array_equal(probe.predict(X[bench.test]), pred)
    assert (pred == bench.y(bench.test)).mean() > 0.8


# ---- latency ---------------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now, self.calls = 0.0, []

    def __call__(self):
        return self.now


def test_latency_is_the_median_of_timed_calls_after_warm_up():
    clock = FakeClock()
    durations = {"a": 0.010, "b": 0.030, "c": 0.020, "d": 1.0}  # d: one interruption

    def predict_one(x):
        clock.calls.append(x)
        clock.now += durations[x]
        assert not torch.is_grad_enabled(), "inference is timed without autograd"

    ms = metrics.latency_ms(predict_one, ["a", "b", "c", "d"], warmup=2, clock=clock)
    assert ms == pytest.approx(25.0), "median of 10, 30, 20, 1000 ms"
    assert clock.calls == ["a", "b", "a", "b", "c", "d"], "warm-up calls first, then every input once"
    assert metrics.latency_ms(predict_one, ["a"], warmup=0, clock=clock) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="at least one"):
        metrics.latency_ms(predict_one, [])
    with pytest.raises(ValueError, match="warmup"):
        metrics.latency_ms(predict_one, ["a"], warmup=-1)


def test_latency_of_real_work_is_positive_and_ordered():
    slow = metrics.latency_ms(lambda n: sum(range(n)), [200_000] * 5, warmup=1)
    fast = metrics.latency_ms(lambda n: sum(range(n)), [2_000] * 5, warmup=1)
    assert 0 < fast < slow


# ---- recall@k and IoU --------------------------------------------------------------------------------------

def test_recall_at_k():
    S = np.array([[0.9, 0.1, 0.0], [0.8, 0.5, 0.1], [0.4, 0.9, 0.3]])  # answers ranked 1st, 2nd, 3rd
    assert [metrics.recall_at_k(S, k) for k in (1, 2, 3)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert metrics.recall_at_k(np.ones((3, 3)), 1) == 0.0, "a tie with the right answer is a miss"
    assert metrics.recall_at_k(np.eye(4), 1) == 1.0


def test_box_iou_for_one_pair_and_for_rows():
    assert float(metrics.box_iou((0, 0, 2, 2), (1, 1, 3, 3))) == pytest.approx(1 / 7)
    assert float(metrics.box_iou((0, 0, 10, 10), (5, 0, 15, 10))) == pytest.approx(50 / 150)
    assert float(metrics.box_iou((0, 0, 1, 1), (1, 0, 2, 1))) == 0.0, "touching edges do not overlap"
    assert float(metrics.box_iou((0, 0, 0, 0), (0, 0, 0, 0))) == 0.0, "two empty boxes: 0, not nan"
    a = np.array([[0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 1, 1]])
    b = np.array([[1, 1, 3, 3], [1, 1, 2, 2], [2, 2, 3, 3]])
    assert metrics.box_iou(a, b) == pytest.approx([1 / 7, 1 / 16, 0.0])


def test_mask_iou():
    a = np.zeros((2, 4, 4), bool)
    b = np.zeros((2, 4, 4), bool)
    a[0, :2], b[0, 1:3] = True, True  # 4 shared pixels of 12 covered
    assert metrics.mask_iou(a, b) == pytest.approx([4 / 12, 0.0])
    with pytest.raises(ValueError, match="one shape"):
        metrics.mask_iou(a, b[:, :3])


# ---- a deterministic tokenizer ------------------------------------------------------------------------------

VOCAB_PROBE = """
import hashlib, json
from ptutils.data import load_text_corpus
from ptutils.mlm import train_wordpiece
texts = [" ".join(d) for d in load_text_corpus("lee")]
print(hashlib.sha256(json.dumps(sorted(train_wordpiece(texts, vocab_size=400).get_vocab().items())).encode()).hexdigest())
"""


def test_wordpiece_training_is_deterministic():
    """tokenizers#1794: the trainer alone gives different ids (and merges) from run to run."""
    import subprocess
    import sys

    from ptutils.data import load_text_corpus

    texts = [" ".join(d) for d in load_text_corpus("lee")]
    vocabs = [mlm.train_wordpiece(texts, vocab_size=400).get_vocab() for _ in range(3)]
    assert all(v == vocabs[0] for v in vocabs), "the same texts must give the same vocabulary, id for id"
    runs = {subprocess.run([sys.executable, "-c", VOCAB_PROBE], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert len(runs) == 1, "and in another process"


def test_wordpiece_marks_only_berts_tokens_special():
    t = mlm.train_wordpiece(["a tiny corpus for a tiny tokenizer", "another short line"] * 20, vocab_size=60)
    assert sorted(t.all_special_tokens) == sorted(mlm.WORDPIECE_SPECIALS)
    assert [t.convert_ids_to_tokens(i) for i in range(5)] == mlm.WORDPIECE_SPECIALS
    ids = t("another tokenizer")["input_ids"]
    assert ids[0] == t.cls_token_id and ids[-1] == t.sep_token_id
    pieces = t.convert_ids_to_tokens(ids[1:-1])
    assert any(p.startswith("##") for p in pieces), pieces
    assert t.decode(ids, skip_special_tokens=True) == "another tokenizer", "## pieces are not special: kept"
    assert set(t.get_added_vocab()) == set(mlm.WORDPIECE_SPECIALS), "no '##' piece is an added token"

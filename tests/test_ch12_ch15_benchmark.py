"""Chapters 12 and 15 on the benchmark: compression, distillation, early stopping, the tiny BERT's recipe."""

import numpy as np
import pytest
import torch
from torch import nn

from ptutils import compression
from ptutils.training import KeepBest, train_classifier


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    import ptutils.config as config

    monkeypatch.setattr(config, "cache_dir", lambda: tmp_path)
    return tmp_path


class Tiny(nn.Module):
    """A stand-in encoder with an ``encoder`` attribute, like a Hugging Face model."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.encoder(x))


# --- compression ----------------------------------------------------------------------------

def test_magnitude_prune_zeroes_the_smallest_weights_globally_and_leaves_the_original():
    m = Tiny()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    p = compression.magnitude_prune(m, 0.5)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # original untouched
    assert compression.linear_sparsity(m) == 0.0
    assert abs(compression.linear_sparsity(p) - 0.5) < 0.01
    w = torch.cat([l.weight.flatten() for l in (m.encoder[0], m.encoder[2])]).abs()
    kept = torch.cat([l.weight.flatten() for l in (p.encoder[0], p.encoder[2])]) != 0
    assert w[kept].min() >= w[~kept].max()  # global: every kept weight outweighs every pruned one
    assert torch.equal(p.head.weight, m.head.weight)  # outside the encoder: untouched
    assert not any("orig" in k or "mask" in k for k in p.state_dict())  # pruning made permanent
    with pytest.raises(ValueError, match="amount"):
        compression.magnitude_prune(m, 1.0)


def test_int8_quantisation_is_a_close_smaller_copy():
    m = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 8)).eval()
    q = compression.quantize_linear_int8(m)
    assert isinstance(m[0], nn.Linear)  # the original is not modified
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref, out = m(x), q(x)
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
    assert compression.serialized_mb(q) < 0.5 * compression.serialized_mb(m)


def test_train_student_fits_the_teacher_and_validates_its_arguments():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    teacher = nn.Linear(8, 2)
    with torch.no_grad():
        z_t = 3 * teacher(x)
    torch.manual_seed(1)
    student = nn.Linear(8, 2)

    class Wrap(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x)

    s = Wrap(student)
    before = float((s(x).argmax(1) == z_t.argmax(1)).float().mean())
    h = compression.train_student(s, {"x": x}, z_t.numpy(), tau=2.0, kd_weight=1.0, epochs=30, lr=3e-2, seed=0)
    after = float((s(x).argmax(1) == z_t.argmax(1)).float().mean())
    assert h["loss"][-1] < h["loss"][0] and after > max(before, 0.95)
    labels, labelled = z_t.argmax(1).numpy(), np.zeros(256, bool)
    labelled[:10] = True
    compression.train_student(Wrap(nn.Linear(8, 2)), {"x": x}, z_t, labels=labels, labelled=labelled, epochs=1)
    with pytest.raises(ValueError, match="together"):
        compression.train_student(s, {"x": x}, z_t, labels=labels, epochs=1)
    with pytest.raises(ValueError, match="same length"):
        compression.train_student(s, {"x": x[:10]}, z_t, epochs=1)
    with pytest.raises(ValueError, match="tau"):
        compression.train_student(s, {"x": x}, z_t, tau=0.0, epochs=1)


# --- early stopping on validation -----------------------------------------------------------

def test_keep_best_restores_the_best_validation_epoch():
    scores = iter([0.5, 0.8, 0.8, 0.6])
    m = nn.Linear(2, 2)
    keep = KeepBest(lambda model: next(scores))
    x, y = torch.randn(32, 2), torch.randint(0, 2, (32,))
    h = train_classifier(m, x, y, epochs=4, lr=0.1, on_epoch_end=keep)
    assert keep.epoch == 1 and keep.best == 0.8 and keep.scores == [0.5, 0.8, 0.8, 0.6]  # ties: the earlier
    assert h["val_acc"] == keep.scores
    saved = {k: v.clone() for k, v in keep.state.items()}
    keep.restore(m)
    assert all(torch.equal(saved[k], v) for k, v in m.state_dict().items())
    with pytest.raises(RuntimeError, match="no epoch"):
        KeepBest(lambda model: 0.0).restore(m)


# --- the tiny BERT is found by its recipe ---------------------------------------------------

def test_tiny_bert_is_saved_and_found_only_under_its_recipe(tmp_cache):
    from transformers import BertConfig, BertForMaskedLM

    from ptutils import mlm

    settings = mlm.tiny_bert_settings()
    assert mlm.saved_tiny_bert(settings) is None  # nothing saved yet
    tok = mlm.train_wordpiece(["a tiny corpus for a tiny tokenizer", "another short line"] * 20, vocab_size=60)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=32, max_position_embeddings=32))
    path = mlm.save_tiny_bert(model, tok, settings)
    assert mlm.saved_tiny_bert(settings) == path and mlm.saved_tiny_bert() == path
    other = dict(settings, epochs=settings["epochs"] + 1)
    assert mlm.saved_tiny_bert(other) is None  # a changed recipe never loads this model
    assert mlm.tiny_bert_recipe(other) != mlm.tiny_bert_recipe(settings)
    weights = next(path.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8])  # truncated: no longer trusted
    assert mlm.saved_tiny_bert(settings) is None


def test_word_index_is_built_from_the_training_text_only():
    from ptutils.textclf import encode_tokens, word_index

    w2i = word_index([["a", "film"], ["a", "bad", "film"], ["a"]], min_count=2)
    assert w2i == {"<pad>": 0, "<unk>": 1, "a": 2, "film": 3}
    ids, mask = encode_tokens([["a", "bad", "film"]], w2i)
    assert ids.tolist() == [[2, 1, 3]] and mask.all()


def test_paired_mean_difference_covers_the_true_shift_and_rejects_unpaired_input():
    from ptutils.metrics import paired_mean_difference

    rng = np.random.default_rng(0)
    b = rng.normal(size=400)
    a = b + 0.3 + rng.normal(scale=0.1, size=400)  # a shift of 0.3, with pairing noise much smaller than b's spread
    r = paired_mean_difference(a, b)
    assert r["low"] < 0.3 < r["high"] and r["high"] - r["low"] < 0.05 and r["n"] == 400
    assert abs(r["diff"] - (r["a"] - r["b"])) < 1e-12
    same = paired_mean_difference(b, b)
    assert same["low"] == same["high"] == 0.0
    with pytest.raises(ValueError, match="paired"):
        paired_mean_difference(a, b[:-1])

"""The book's one training loop, ptutils.training.fit, and the loops built on it."""

import pytest
import torch
from torch import nn

from ptutils.training import (KeepBest, batch_size_of, classification_step, decay_groups, fit,
                              linear_warmup, make_optimizer, shuffled, to_device, train_classifier)


def _data(n=40, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, 2, (n,), generator=g)


def test_train_classifier_is_the_textbook_loop():
    """fit + classification_step reproduce the hand-written loop exactly (same order, same updates)."""
    x, y = _data()
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    b = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    b.load_state_dict(a.state_dict())
    h = train_classifier(a, x, y, epochs=3, lr=0.01, weight_decay=0.1, batch_size=16, seed=5)

    g = torch.Generator().manual_seed(5)
    opt = torch.optim.AdamW([{"params": [p for p in b.parameters() if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in b.parameters() if p.dim() < 2], "weight_decay": 0.0}], lr=0.01)
    losses = []
    for _ in range(3):
        total = 0.0
        for idx in torch.randperm(len(x), generator=g).split(16):
            loss = nn.functional.cross_entropy(b(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
    assert h["loss"] == pytest.approx(losses, abs=1e-7)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_history_has_one_format():
    x, y = _data()
    h = train_classifier(nn.Linear(3, 2), x, y, epochs=3, on_epoch_end=lambda e, m: {"val_acc": 0.1 * e, "stop": False})
    assert set(h) == {"loss", "val_acc", "epochs_run", "seconds"}
    assert len(h["loss"]) == 3 and h["val_acc"] == pytest.approx([0.0, 0.1, 0.2]) and h["epochs_run"] == 3


def test_stop_ends_training_after_that_epoch():
    x, y = _data()
    h = train_classifier(nn.Linear(3, 2), x, y, epochs=10, on_epoch_end=lambda e, m: {"stop": e == 2})
    assert h["epochs_run"] == 3 and len(h["loss"]) == 3


def test_fit_rejects_bad_steps_and_empty_epochs():
    x, y = _data()
    model = nn.Linear(3, 2)

    def batches(g):
        yield x, y

    with pytest.raises(ValueError, match="scalar loss"):
        fit(model, lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1], reduction="none"), batches,
            epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="no batches"):
        fit(model, classification_step, lambda g: iter(()), epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, classification_step, batches, epochs=-1, lr=0.1)
    with pytest.raises(ValueError, match="batch_size"):
        list(shuffled(10, 0, torch.Generator()))


def test_decay_groups_split_by_dimension():
    model = nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    groups = decay_groups(model.parameters(), 0.01)
    decayed = {id(p) for g in groups if g["weight_decay"] == 0.01 for p in g["params"]}
    assert decayed == {id(model[0].weight), id(model[2].weight)}
    assert sum(len(g["params"]) for g in groups) == 5
    model[0].weight.requires_grad_(False)
    assert sum(len(g["params"]) for g in decay_groups(model.parameters(), 0.01)) == 4  # frozen: left out
    # groups keep their own settings (e.g. a smaller learning rate for an encoder)
    groups = decay_groups([{"params": list(model[2].parameters()), "lr": 0.5}], 0.1)
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups] == [(0.5, 0.1, 1), (0.5, 0.0, 1)]
    with pytest.raises(ValueError, match="no trainable"):
        decay_groups([p for p in model[0].parameters()], 0.1)


def test_decay_groups_match_the_bert_rule_on_minilm():
    """On a BERT model, "dim >= 2" decays exactly what Hugging Face's name rule (no bias, no LayerNorm) does."""
    from ptutils.pretrained import load_text_model

    _, model = load_text_model("minilm")
    by_name = {n for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)}
    by_dim = {n for n, p in model.named_parameters() if p.dim() >= 2}
    assert by_name == by_dim and len(by_dim) > 30


def test_linear_warmup_is_berts_schedule():
    from transformers import get_linear_schedule_with_warmup

    def lrs(make):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = make(opt)
        out = []
        for _ in range(12):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    ours = lrs(linear_warmup(10, 3))
    assert ours == pytest.approx(lrs(lambda o: get_linear_schedule_with_warmup(o, 3, 10)))
    assert ours[:4] == pytest.approx([0, 1 / 3, 2 / 3, 1]) and ours[10:] == [0, 0]
    with pytest.raises(ValueError, match="warmup_steps"):
        linear_warmup(10, 11)


def test_make_optimizer_names():
    params = list(nn.Linear(2, 2).parameters())
    assert isinstance(make_optimizer("sgd", params, lr=0.1), torch.optim.SGD)
    assert isinstance(make_optimizer("adamw", params, lr=0.1, weight_decay=0.1), torch.optim.AdamW)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("lion", params, lr=0.1)


def test_batches_move_to_the_models_device():
    seen = []

    class Spy(nn.Linear):
        def forward(self, x):
            seen.append((x.device, self.weight.device))
            return super().forward(x)

    x, y = _data()
    train_classifier(Spy(3, 2), x, y, epochs=1, device="cpu")
    assert seen and all(a == b for a, b in seen)
    assert to_device({"a": x, "b": [y, 3]}, "cpu")["b"][1] == 3
    assert batch_size_of(({"input_ids": x[:5]}, y[:5])) == 5
    with pytest.raises(TypeError, match="size of a batch"):
        batch_size_of(3)


def test_keep_best_every_and_min_mode():
    scores = iter([3.0, 2.0, 2.5, 1.0])
    keep = KeepBest(lambda m: next(scores), every=2, last=5, name="val_loss", mode="min")
    x, y = _data()
    h = train_classifier(nn.Linear(3, 2), x, y, epochs=5, on_epoch_end=keep)
    # scored after epochs 2, 4 and the last (5): 3.0, 2.0, 2.5 -> the best (lowest) is epoch 4
    assert keep.scored == [1, 3, 4] and keep.epoch == 3 and keep.best == 2.0
    assert h["val_loss"] == [3.0, 2.0, 2.5]
    with pytest.raises(ValueError, match="mode"):
        KeepBest(lambda m: 0.0, mode="lowest")
    with pytest.raises(ValueError, match="every"):
        KeepBest(lambda m: 0.0, every=0)


def test_patience_counts_scored_epochs():
    scores = iter([0.5, 0.4, 0.4, 0.9])
    keep = KeepBest(lambda m: next(scores), patience=2)
    x, y = _data()
    h = train_classifier(nn.Linear(3, 2), x, y, epochs=10, on_epoch_end=keep)
    assert h["epochs_run"] == 3 and keep.epoch == 0


def test_every_pretraining_loop_returns_the_same_history_format():
    from ptutils.autoencoder import MLPAutoencoder, pretrain_autoencoder
    from ptutils.contrastive import ContrastiveModel, pretrain_contrastive

    images = torch.rand(20, 8, 8, generator=torch.Generator().manual_seed(0))
    h1 = pretrain_autoencoder(MLPAutoencoder(), images, epochs=2)
    h2 = pretrain_contrastive(ContrastiveModel(nn.Sequential(nn.Flatten(), nn.Linear(64, 16)), 16), images,
                              epochs=2, batch_size=8)
    for h in (h1, h2):
        assert {"loss", "epochs_run", "seconds"} <= set(h) and len(h["loss"]) == h["epochs_run"] == 2
    with pytest.raises(ValueError, match="at least two"):
        pretrain_contrastive(ContrastiveModel(nn.Sequential(nn.Flatten(), nn.Linear(64, 16)), 16), images[:1])

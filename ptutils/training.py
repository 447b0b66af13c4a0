"""The training loop: forward, loss, backward, update, written out once and reused.

Each step computes ``L = cross_entropy(model(x), y)``, its gradient by
back-propagation, and the update ``theta <- theta - lr * step(grad)`` (AdamW's
step here; plain SGD would use the gradient itself).
"""

from __future__ import annotations

import time

import torch
from torch import nn


def _batches(n: int, batch_size: int, generator: torch.Generator, shuffle: bool = True):
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


def _index(inputs, idx):
    if isinstance(inputs, dict):
        return {k: v[idx] for k, v in inputs.items()}
    return inputs[idx]


def _call(model, inputs):
    return model(**inputs) if isinstance(inputs, dict) else model(inputs)


def _length(inputs) -> int:
    if isinstance(inputs, dict):
        lengths = {k: len(v) for k, v in inputs.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"inputs of different lengths: {lengths}")
        return next(iter(lengths.values()))
    return len(inputs)


def train_classifier(model: nn.Module, inputs, labels: torch.Tensor, *, epochs: int = 10,
                     lr: float = 1e-3, weight_decay: float = 0.01, batch_size: int = 32,
                     seed: int = 0, log_every: int = 0, optimizer: str = "adamw",
                     on_epoch_end=None, params=None) -> dict:
    """Train ``model`` with cross-entropy and AdamW on mini-batches; return the loss history.

    Args:
        model: maps a batch of inputs to logits ``(B, num_classes)``.
        inputs: a tensor ``(N, ...)`` or a dict of tensors (passed as keyword arguments).
        labels: ``(N,)`` integer class labels.
        epochs, lr, weight_decay, batch_size: the usual.
        seed: seeds the batch order (the model's initialisation is the caller's).
        log_every: print a progress line every this many epochs (0 = silent).
        optimizer: ``"adamw"``, ``"adam"`` or ``"sgd"`` (plain gradient descent).
        on_epoch_end: optional ``f(epoch, model) -> dict`` called after each epoch
            (in eval mode), e.g. to measure validation accuracy; its results are
            collected in ``history["epochs"]``. A result with a true ``"stop"``
            ends training after that epoch (early stopping, :class:`KeepBest`).
        params: optional parameter groups for the optimiser (e.g. a smaller learning
            rate for a pre-trained encoder, :func:`ptutils.finetune.param_groups`);
            default: all of ``model.parameters()`` at ``lr``.

    Returns:
        ``{"loss": [mean loss per epoch], "epochs": [on_epoch_end results], "seconds": wall time}``.
    """
    n = _length(inputs)
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.dim() != 1:
        raise TypeError("labels must be a 1-D torch.long tensor of class indices")
    if len(labels) != n:
        raise ValueError(f"{n} inputs but {len(labels)} labels")
    g = torch.Generator().manual_seed(seed)
    opt = make_optimizer(optimizer, model.parameters() if params is None else params, lr=lr,
                         weight_decay=weight_decay)
    history, extra, t0 = [], [], time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for idx in _batches(n, batch_size, g):
            logits = _call(model, _index(inputs, idx))  # forward: (B, num_classes)
            loss = nn.functional.cross_entropy(logits, labels[idx])  # loss
            opt.zero_grad()
            loss.backward()  # backward: gradients of the loss
            opt.step()  # update: theta <- theta - lr * step
            total += loss.item() * len(idx)
        history.append(total / n)
        model.eval()
        if on_epoch_end is not None:
            extra.append(on_epoch_end(epoch, model))
        if log_every and (epoch + 1) % log_every == 0:
            more = "".join(f"  {k} {v:.4f}" for k, v in (extra[-1] if extra else {}).items())
            print(f"epoch {epoch + 1:3d}/{epochs}  loss {history[-1]:.4f}{more}")
        if extra and isinstance(extra[-1], dict) and extra[-1].get("stop"):
            break
    return {"loss": history, "epochs": extra, "seconds": time.perf_counter() - t0}


def make_optimizer(name: str, params, *, lr: float, weight_decay: float = 0.0):
    """``"sgd"`` (``theta -= lr * grad``), ``"adam"`` or ``"adamw"`` (decoupled weight decay)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {name!r}")


@torch.no_grad()
def predict(model: nn.Module, inputs, batch_size: int = 256) -> torch.Tensor:
    """Predicted class indices ``(N,)`` in evaluation mode."""
    model.eval()
    n = _length(inputs)
    out = [_call(model, _index(inputs, torch.arange(i, min(i + batch_size, n)))).argmax(-1)
           for i in range(0, n, batch_size)]
    return torch.cat(out)


class KeepBest:
    """An ``on_epoch_end`` callback for early stopping on validation data.

    After every epoch it scores the model with ``score(model)`` (for example accuracy
    on the validation sentences, never the test set) and keeps a copy of the weights
    of the best epoch so far (ties: the earlier epoch); :meth:`restore` loads them
    back. Works with :func:`train_classifier`, :func:`ptutils.finetune.finetune_hf`
    and :func:`ptutils.compression.train_student`.

    With ``patience=p`` it also asks :func:`train_classifier` to stop once ``p``
    epochs in a row have not beaten the best score (the other loops ignore the
    request and run all their epochs); ``patience=None`` never stops early.

    Attributes:
        best: the best score seen; epoch: its epoch (0-based); scores: every epoch's score.
    """

    def __init__(self, score, patience: int | None = None):
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be a positive number of epochs or None, got {patience}")
        self.score, self.patience = score, patience
        self.best, self.epoch, self.state, self.scores = float("-inf"), None, None, []

    def __call__(self, epoch: int, model: nn.Module) -> dict:
        import copy

        s = float(self.score(model))
        self.scores.append(s)
        if s > self.best:
            self.best, self.epoch = s, epoch
            self.state = copy.deepcopy(model.state_dict())
        if self.patience is not None:
            return {"val_acc": s, "stop": epoch - self.epoch >= self.patience}
        return {"val_acc": s}

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best epoch's weights into ``model`` (in eval mode) and return it."""
        if self.state is None:
            raise RuntimeError("no epoch has been scored yet")
        model.load_state_dict(self.state)
        return model.eval()

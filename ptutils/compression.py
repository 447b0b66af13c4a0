"""Making a trained model smaller or cheaper, and measuring what it costs.

* :func:`quantize_linear_int8`: dynamic int8 quantisation of every ``nn.Linear``
  (weights stored as 8-bit integers with a scale, activations quantised on the fly);
* :func:`magnitude_prune`: global unstructured magnitude pruning of the encoder's
  linear layers (the smallest weights set to zero, permanently);
* :func:`serialized_mb` and :func:`linear_sparsity`: what a compressed model weighs
  and how many of its linear weights are zero;
* :func:`train_student`: knowledge distillation, a small *student* fitted to a
  teacher's softened logits on a transfer set, plus the hard labels where known.

Each function returns a new model and leaves its argument untouched, so a chapter
can compare the original and every compressed copy on the same test sentences.
"""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .training import fit, shuffled


def quantize_linear_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantised to int8 (CPU inference).

    ``W ≈ s · W_int8`` with one scale ``s`` per tensor; embeddings and layer norms stay float32.
    """
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # PyTorch is moving this API to torchao; it still works
        warnings.filterwarnings("ignore", r"torch\.ao\.quantization is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other "
                                r"quantized tensor creation functions .* are deprecated", UserWarning)
        return quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)


def _encoder_linears(model: nn.Module) -> list[nn.Linear]:
    root = getattr(model, "encoder", model)
    return [m for m in root.modules() if isinstance(m, nn.Linear)]


def magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """A copy of ``model`` with the fraction ``amount`` of its encoder's linear weights set to zero.

    Global L1 (magnitude) pruning over all linear layers of ``model.encoder`` (or of
    ``model`` itself if it has no ``encoder``): the weights of smallest absolute value
    across *all* those layers are zeroed, biases untouched, and the zeros made permanent.
    """
    from torch.nn.utils import prune

    if not 0 <= amount < 1:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    pruned = copy.deepcopy(model)
    linears = [(m, "weight") for m in _encoder_linears(pruned)]
    if not linears:
        raise ValueError("the model has no linear layers to prune")
    prune.global_unstructured(linears, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in linears:
        prune.remove(m, name)  # make the zeros permanent (drop the mask and the hook)
    return pruned


def linear_sparsity(model: nn.Module) -> float:
    """Fraction of the encoder's linear weights that are exactly zero."""
    linears = _encoder_linears(model)
    zeros = sum(int((m.weight == 0).sum()) for m in linears)
    return zeros / sum(m.weight.numel() for m in linears)


def serialized_mb(model: nn.Module) -> float:
    """Size of ``torch.save(model.state_dict())`` in megabytes (10⁶ bytes): what a file would weigh."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell() / 1e6


def train_student(model: nn.Module, inputs: dict, teacher_logits, *, labels=None, labelled=None,
                  tau: float = 2.0, kd_weight: float = 0.9, epochs: int = 10, lr: float = 3e-3,
                  weight_decay: float = 0.01, batch_size: int = 32, seed: int = 0,
                  on_epoch_end=None, device=None) -> dict:
    """Distil a teacher into ``model``: fit its softened outputs on a transfer set, and the labels where known.

    On every mini-batch of the transfer set the loss is

    ``kd_weight · τ² · KL(softmax(z_t/τ) ‖ softmax(z_s/τ)) + (1 − kd_weight) · CE(y, z_s)``,

    the cross-entropy term taken over the labelled examples of the batch only (none:
    the term is zero). ``τ²`` keeps the gradient's scale independent of ``τ``.

    Args:
        model: the student; ``model(**batch)`` returns logits ``(B, C)``.
        inputs: a dict of tensors ``(N, ...)``, the transfer set (passed as keyword arguments).
        teacher_logits: ``(N, C)`` logits of the teacher on the same examples, fixed.
        labels: optional ``(N,)`` class labels (any value where not labelled).
        labelled: optional ``(N,)`` bool, which examples carry a real label.
        tau, kd_weight: temperature and weight of the distillation term.
        on_epoch_end: optional ``f(epoch, model) -> dict`` after each epoch (eval mode),
            e.g. :class:`ptutils.training.KeepBest`.

    Returns:
        :func:`ptutils.training.fit`'s history.

    Shapes:
        teacher_logits: ``(N, C)``; labels, labelled: ``(N,)``.
    """
    z_t = torch.as_tensor(np.asarray(teacher_logits), dtype=torch.float32)
    n = len(z_t)
    if any(len(v) != n for v in inputs.values()):
        raise ValueError(f"inputs and teacher_logits must have the same length ({n})")
    if not tau > 0 or not 0 <= kd_weight <= 1:
        raise ValueError(f"need tau > 0 and 0 <= kd_weight <= 1, got tau={tau}, kd_weight={kd_weight}")
    if (labels is None) != (labelled is None):
        raise ValueError("give labels and labelled together, or neither")
    y = torch.zeros(n, dtype=torch.long) if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
    has_y = torch.zeros(n, dtype=torch.bool) if labelled is None else torch.as_tensor(np.asarray(labelled), dtype=torch.bool)
    def step(model, batch):
        return distillation_step(model, batch, tau=tau, kd_weight=kd_weight)

    def batches(g):
        for idx in shuffled(n, batch_size, g):
            yield {k: v[idx] for k, v in inputs.items()}, z_t[idx], y[idx], has_y[idx]

    return fit(model, step, batches, epochs=epochs, lr=lr, weight_decay=weight_decay, seed=seed,
               on_epoch_end=on_epoch_end, device=device)


def distillation_step(model: nn.Module, batch, *, tau: float, kd_weight: float) -> torch.Tensor:
    """The distillation loss of one batch ``(inputs, teacher_logits, labels, labelled)``."""
    inputs, z_t, y, has_y = batch
    z_s = model(**inputs)  # (B, C)
    kd = F.kl_div(F.log_softmax(z_s / tau, -1), F.log_softmax(z_t / tau, -1), log_target=True,
                  reduction="batchmean") * tau * tau
    ce = F.cross_entropy(z_s[has_y], y[has_y]) if has_y.any() else z_s.sum() * 0
    return kd_weight * kd + (1 - kd_weight) * ce

"""Reusing a pre-trained encoder under a new task head.

Strategies, from cheapest to most flexible:

* ``"probe"``: freeze the encoder, train only the head (a linear probe);
* ``"partial"``: train the head and the last ``unfreeze_last`` layers of the encoder;
* ``"full"``: train everything, optionally with a smaller learning rate for the
  encoder than for the head (*discriminative learning rates*).

Weights move between models only through :func:`copy_weights`, which checks
every key and shape (never a silent ``load_state_dict(strict=False)``).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from .pretrained import mean_pool
from .transformer import load_state_dict_strict

STRATEGIES = ("probe", "partial", "full")


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy every parameter and buffer of ``src`` into ``dst``; raise if any key or shape differs."""
    load_state_dict_strict(dst, src.state_dict())


def load_report(model: nn.Module, state: dict) -> dict:
    """What ``model.load_state_dict(state, strict=False)`` would do, without doing it.

    Returns ``{"matched": [...], "missing_keys": [...], "unexpected_keys": [...],
    "shape_mismatches": [...]}``: the check the source article skipped.
    """
    own = model.state_dict()
    matched = sorted(k for k in own if k in state and state[k].shape == own[k].shape)
    return {
        "matched": matched,
        "missing_keys": sorted(set(own) - set(state)),
        "unexpected_keys": sorted(set(state) - set(own)),
        "shape_mismatches": sorted(k for k in own if k in state and state[k].shape != own[k].shape),
    }


def _layers(encoder: nn.Module) -> list[nn.Module]:
    return [m for m in encoder.modules() if any(True for _ in m.parameters(recurse=False))]


def apply_strategy(encoder: nn.Module, head: nn.Module, strategy: str, unfreeze_last: int = 1) -> int:
    """Set ``requires_grad`` for a fine-tuning strategy; return the number of trainable parameters."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    for p in encoder.parameters():
        p.requires_grad_(strategy == "full")
    if strategy == "partial":
        layers = _layers(encoder)
        if not 1 <= unfreeze_last <= len(layers):
            raise ValueError(f"unfreeze_last must be in 1..{len(layers)}, got {unfreeze_last}")
        for layer in layers[-unfreeze_last:]:
            for p in layer.parameters(recurse=False):
                p.requires_grad_(True)
    for p in head.parameters():
        p.requires_grad_(True)
    return sum(p.numel() for m in (encoder, head) for p in m.parameters() if p.requires_grad)


def param_groups(encoder: nn.Module, head: nn.Module, lr: float, encoder_lr_scale: float = 1.0) -> list[dict]:
    """Optimiser groups: the head at ``lr``, the trainable encoder parameters at ``lr * encoder_lr_scale``."""
    groups = [{"params": [p for p in head.parameters() if p.requires_grad], "lr": lr}]
    enc = [p for p in encoder.parameters() if p.requires_grad]
    if enc:
        groups.append({"params": enc, "lr": lr * encoder_lr_scale})
    return groups


class SequenceClassifier(nn.Module):
    """An encoder, mean pooling over real tokens, and a linear head.

    ``encoder(input_ids, attention_mask)`` must return hidden states
    ``(B, T, d_model)`` (a :class:`ptutils.TransformerEncoder` does).

    Shapes:
        input_ids, attention_mask: ``(B, T)``; output logits: ``(B, num_classes)``.
    """

    def __init__(self, encoder: nn.Module, d_model: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids, attention_mask)  # (B, T, d_model)
        pooled = mean_pool(hidden, attention_mask)  # (B, d_model)
        return self.head(self.dropout(pooled))  # (B, num_classes)


def finetune_hf(model, tokenizer, texts, labels, *, epochs: int = 4, lr: float = 5e-5,
                batch_size: int = 16, warmup_ratio: float = 0.1, weight_decay: float = 0.01,
                max_length: int = 64, seed: int = 0, log: bool = False) -> dict:
    """Fine-tune a Hugging Face ``...ForSequenceClassification`` model: the standard recipe.

    Mini-batches of shuffled examples; the labels are passed to the model, which
    returns the cross-entropy loss; AdamW with weight decay; the learning rate rises
    linearly over the first ``warmup_ratio`` of the steps and then decays linearly
    to zero; the model is put on ``ptutils.device()``.

    Returns:
        ``{"loss": [mean loss per epoch], "seconds": wall time}``.
    """
    from transformers import get_linear_schedule_with_warmup

    from .notebook import device as default_device

    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    device = default_device()
    model.to(device)
    labels = torch.as_tensor(labels, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    steps = epochs * -(-len(texts) // batch_size)
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    sched = get_linear_schedule_with_warmup(opt, int(warmup_ratio * steps), steps)
    history, t0 = [], time.perf_counter()
    model.train()
    for epoch in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(texts), generator=g).split(batch_size):
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            out = model(**batch, labels=labels[idx].to(device))  # labels given: out.loss is set
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            sched.step()
            total += out.loss.item() * len(idx)
        history.append(total / len(texts))
        if log:
            print(f"epoch {epoch + 1}/{epochs}  loss {history[-1]:.4f}  lr {sched.get_last_lr()[0]:.1e}")
    model.eval()
    return {"loss": history, "seconds": time.perf_counter() - t0}


@torch.no_grad()
def predict_hf(model, tokenizer, texts, batch_size: int = 64, max_length: int = 64) -> np.ndarray:
    """Predicted class indices for ``texts`` with a sequence-classification model."""
    device = next(model.parameters()).device
    model.eval()
    out = []
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        out.append(model(**batch).logits.argmax(-1).cpu())
    return torch.cat(out).numpy()

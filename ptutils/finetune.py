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

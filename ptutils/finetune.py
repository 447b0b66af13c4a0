"""Reusing an encoder under a new task head."""

from __future__ import annotations

import torch
from torch import nn

from .pretrained import mean_pool


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

"""Pooling: one vector for a whole sequence, from the vectors of its tokens.

Two ways in the book:

* :func:`mean_pool`: the average over the real (unpadded) tokens, the pooling
  all-MiniLM-L6-v2 was trained with (chapters 1, 7, 12, 14);
* :class:`AttentionPooling` (defined with the other attention code in
  :mod:`ptutils.attention`): a learned query attends over the tokens, so a classifier
  can weigh the words that matter (chapter 9).
"""

from __future__ import annotations

import torch

from .attention import AttentionPooling

__all__ = ["AttentionPooling", "mean_pool"]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the hidden states of the real (unpadded) tokens.

    Raises ``ValueError`` on mismatched shapes and on a row without any real token
    (its mean is undefined; a silent zero vector would look like a sentence).

    Shapes:
        hidden: ``(B, T, d_model)``; attention_mask: ``(B, T)`` (1/True at real tokens);
        output: ``(B, d_model)``.
    """
    if hidden.dim() != 3 or attention_mask.shape != hidden.shape[:2]:
        raise ValueError(f"need hidden (B, T, d_model) and attention_mask (B, T), got {tuple(hidden.shape)} "
                         f"and {tuple(attention_mask.shape)}")
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    counts = m.sum(1)  # (B, 1)
    if (counts == 0).any():
        raise ValueError("a row of attention_mask has no real token: nothing to average")
    return (hidden * m).sum(1) / counts

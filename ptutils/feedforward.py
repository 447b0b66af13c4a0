"""The position-wise feed-forward layer of the Transformer."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class PositionwiseFeedForward(nn.Module):
    """``FFN(x) = W2 · act(W1 · x + b1) + b2``, applied to every position alike.

    The second layer has **no** activation: the output is a plain affine map of
    the hidden layer (source article 000 wraps it in a second ReLU; that is wrong).
    The original Transformer uses ``act = ReLU``; BERT uses GELU.

    Args:
        d_model: input and output width.
        d_ff: hidden width (usually ``4 * d_model``).
        dropout: dropout on the hidden layer during training.
        activation: ``"relu"`` or ``"gelu"``.

    Shapes:
        x: ``(..., d_model)`` -> ``(..., d_model)``.
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.d_model, self.d_ff, self.activation = d_model, d_ff, activation
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have last dimension d_model={self.d_model}, got {tuple(x.shape)}")
        hidden = _ACTIVATIONS[self.activation](self.w_1(x))  # (..., d_ff)
        return self.w_2(self.dropout(hidden))  # (..., d_model)

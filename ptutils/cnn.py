"""A small convolutional network for 8x8 digit images (scikit-learn's ``load_digits``)."""

from __future__ import annotations

import torch
from torch import nn


def conv_encoder(channels: tuple[int, int] = (16, 32)) -> nn.Sequential:
    """Two 3x3 convolution layers, each followed by ReLU and 2x2 max-pooling.

    Shapes:
        x: ``(B, 1, 8, 8)`` -> ``(B, c1, 4, 4)`` -> output ``(B, c2, 2, 2)``.
    """
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c1, 4, 4)
        nn.Conv2d(c1, c2, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 2, 2)
    )


class DigitCNN(nn.Module):
    """Two convolution layers (:func:`conv_encoder`) and one linear classification layer.

    Shapes:
        x: ``(B, 1, 8, 8)`` or ``(B, 8, 8)`` floats in [0, 1]; output logits ``(B, num_classes)``.
    """

    def __init__(self, num_classes: int = 10, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        self.features = conv_encoder(channels)
        self.head = nn.Linear(channels[1] * 2 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)  # (B, 1, 8, 8)
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 8, 8):
            raise ValueError(f"expected images of shape (B, 1, 8, 8) or (B, 8, 8), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"images must be floating point, got {x.dtype}")
        return self.head(self.features(x).flatten(1))  # (B, num_classes)

"""Contrastive self-supervised pre-training (SimCLR-style) for small images.

Two random augmentations of the same image form a *positive* pair; the other
images of the batch are negatives. The NT-Xent loss pulls the projections of
positives together and pushes the rest apart. No labels are used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def augment(x: torch.Tensor, generator: torch.Generator, max_shift: int = 1,
            noise: float = 0.1, erase: float = 0.15) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels, Gaussian noise, and random pixel erasing.

    Shapes:
        x: ``(B, 8, 8)`` -> ``(B, 8, 8)``.
    """
    B, H, W = x.shape
    padded = F.pad(x, (max_shift,) * 4)  # (B, H + 2s, W + 2s)
    dx = torch.randint(0, 2 * max_shift + 1, (B,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (B,), generator=generator)
    rows = (dy[:, None] + torch.arange(H)[None])  # (B, H)
    cols = (dx[:, None] + torch.arange(W)[None])  # (B, W)
    out = padded[torch.arange(B)[:, None, None], rows[:, :, None], cols[:, None, :]]  # (B, H, W)
    out = out + noise * torch.randn(out.shape, generator=generator)
    return out * (torch.rand(out.shape, generator=generator) >= erase)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """The normalised-temperature cross-entropy loss of SimCLR.

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair; every other row of
    either is a negative for them.

    Shapes:
        z1, z2: ``(B, d)``; output: a scalar.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"z1 and z2 must both be (B, d), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    B = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, d)
    sim = z @ z.T / temperature  # (2B, 2B)
    sim.fill_diagonal_(float("-inf"))  # an example is not its own negative
    target = torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)])  # the index of each positive
    return F.cross_entropy(sim, target)


class ContrastiveModel(nn.Module):
    """An encoder (image -> features) and a projection head used only for the loss."""

    def __init__(self, encoder: nn.Module, d_features: int, d_proj: int = 64):
        super().__init__()
        self.encoder = encoder
        self.projection = nn.Sequential(nn.Linear(d_features, d_features), nn.ReLU(),
                                        nn.Linear(d_features, d_proj))

    def forward(self, x):
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.projection(self.encoder(x).flatten(1))


def contrastive_step(model: nn.Module, batch, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent of one batch ``(view1, view2)``: two augmentations of the same images."""
    view1, view2 = batch
    return nt_xent(model(view1), model(view2), temperature)


def pretrain_contrastive(model: ContrastiveModel, images: torch.Tensor, *, epochs: int = 100,
                         lr: float = 3e-3, batch_size: int = 256, temperature: float = 0.5,
                         seed: int = 0, log_every: int = 0, device=None) -> dict:
    """SimCLR pre-training on unlabelled ``(N, 8, 8)`` images by :func:`ptutils.training.fit`.

    Every batch is augmented twice (:func:`augment`); a final batch of a single image
    has no negatives and is skipped. AdamW with weight decay 1e-4 on weight matrices.
    Returns the history, whose ``"loss"`` is the NT-Xent per epoch.
    """
    from .training import fit, shuffled

    if images.dim() != 3:
        raise ValueError(f"images must be (N, H, W), got {tuple(images.shape)}")
    if len(images) < 2:
        raise ValueError("contrastive pre-training needs at least two images (one positive pair and a negative)")

    def batches(g):
        for idx in shuffled(len(images), batch_size, g):
            if len(idx) >= 2:
                x = images[idx]
                yield augment(x, g), augment(x, g)

    return fit(model, lambda m, b: contrastive_step(m, b, temperature), batches, epochs=epochs, lr=lr,
               weight_decay=1e-4, seed=seed, log_every=log_every, loss_name="NT-Xent", device=device)

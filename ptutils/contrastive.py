"""Contrastive self-supervised pre-training (SimCLR-style) for small images.

Two random augmentations of the same image form a *positive* pair; the other
images of the batch are negatives. The NT-Xent loss pulls the projections of
positives together and pushes the rest apart. No labels are used.
"""

from __future__ import annotations

import time

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


def pretrain_contrastive(model: ContrastiveModel, images: torch.Tensor, *, epochs: int = 100,
                         lr: float = 3e-3, batch_size: int = 256, temperature: float = 0.5,
                         seed: int = 0, log_every: int = 0) -> dict:
    """SimCLR pre-training on unlabelled ``(N, 8, 8)`` images; returns the loss per epoch."""
    if images.dim() != 3:
        raise ValueError(f"images must be (N, H, W), got {tuple(images.shape)}")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    history, t0 = [], time.perf_counter()
    model.train()
    for epoch in range(epochs):
        total, n = 0.0, 0
        for idx in torch.randperm(len(images), generator=g).split(batch_size):
            if len(idx) < 2:
                continue
            x = images[idx]
            loss = nt_xent(model(augment(x, g)), model(augment(x, g)), temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(idx), n + len(idx)
        history.append(total / max(n, 1))
        if log_every and (epoch + 1) % log_every == 0:
            print(f"epoch {epoch + 1:3d}/{epochs}  NT-Xent {history[-1]:.4f}")
    model.eval()
    return {"loss": history, "seconds": time.perf_counter() - t0}

"""Autoencoders for self-supervised pre-training on images.

An autoencoder is an encoder ``f`` and a decoder ``g`` trained so that
``g(f(x)) ≈ x``. The loss needs no labels: the input is its own target. Variants
make the task harder so that the encoder must learn more than an identity map:

* *denoising*: encode a noisy copy, reconstruct the clean input;
* *masking*: hide a random fraction of the pixels, reconstruct all of them.

After pre-training, the encoder is reused under a new head (:mod:`ptutils.finetune`).
"""

from __future__ import annotations

import torch
from torch import nn

from .cnn import conv_encoder


class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder for 8x8 images whose encoder is :func:`ptutils.cnn.conv_encoder`.

    Because the encoder is the same module type as ``DigitCNN.features``, its
    weights can be copied into a classifier key for key.

    Shapes:
        x: ``(B, 1, 8, 8)`` or ``(B, 8, 8)``; code: ``(B, c2, 2, 2)``; output: ``(B, 1, 8, 8)``.
    """

    def __init__(self, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        c1, c2 = channels
        self.encoder = conv_encoder(channels)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, kernel_size=2, stride=2), nn.ReLU(),  # (B, c1, 4, 4)
            nn.ConvTranspose2d(c1, 1, kernel_size=2, stride=2),  # (B, 1, 8, 8)
        )

    def forward(self, x):
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.decoder(self.encoder(x))


class MLPAutoencoder(nn.Module):
    """A fully connected autoencoder: 64 pixels -> hidden -> code -> hidden -> 64 pixels.

    Shapes:
        x: ``(B, 8, 8)`` or ``(B, 64)``; output: ``(B, 64)``.
    """

    def __init__(self, d_in: int = 64, d_hidden: int = 128, d_code: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d_in, d_hidden), nn.ReLU(),
                                     nn.Linear(d_hidden, d_code), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(d_code, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_in))

    def forward(self, x):
        return self.decoder(self.encoder(x))


def corrupt(x: torch.Tensor, kind: str, amount: float, generator: torch.Generator) -> torch.Tensor:
    """Corrupt a batch: ``"none"``, ``"noise"`` (add Gaussian noise of std ``amount``) or
    ``"mask"`` (zero a random fraction ``amount`` of the pixels)."""
    if kind == "none":
        return x
    if kind == "noise":
        return x + amount * torch.randn(x.shape, generator=generator)
    if kind == "mask":
        return x * (torch.rand(x.shape, generator=generator) >= amount)
    raise ValueError(f"corruption must be 'none', 'noise' or 'mask', got {kind!r}")


def reconstruction_step(model: nn.Module, batch) -> torch.Tensor:
    """Mean squared error between the reconstruction of the corrupted input and the clean one.

    ``batch`` is ``(corrupted, clean)``: the target is the input before corruption.
    """
    corrupted, clean = batch
    recon = model(corrupted)  # forward on the corrupted input
    return nn.functional.mse_loss(recon, clean.reshape(recon.shape))


def pretrain_autoencoder(model: nn.Module, images: torch.Tensor, *, epochs: int = 30, lr: float = 3e-3,
                         batch_size: int = 64, corruption: str = "none", amount: float = 0.3, seed: int = 0,
                         log_every: int = 0, device=None) -> dict:
    """Pre-train an autoencoder to reconstruct ``images`` from (optionally corrupted) copies; no labels.

    Each batch is corrupted afresh (:func:`corrupt`) and :func:`reconstruction_step`
    scores the reconstruction against the clean images; trained by
    :func:`ptutils.training.fit` (AdamW, no weight decay). Returns its history, whose
    ``"loss"`` is the mean reconstruction MSE per epoch.

    Shapes:
        images: ``(N, 8, 8)`` or ``(N, 1, 8, 8)`` floats.
    """
    from .training import fit, shuffled

    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError("images must be a floating-point tensor")
    if len(images) == 0:
        raise ValueError("no images to pre-train on")
    corrupt(images[:1], corruption, amount, torch.Generator())  # validate the kind early

    def batches(g):
        for idx in shuffled(len(images), batch_size, g):
            x = images[idx]
            yield corrupt(x, corruption, amount, g), x

    return fit(model, reconstruction_step, batches, epochs=epochs, lr=lr, seed=seed, log_every=log_every,
               loss_name="reconstruction MSE", device=device)

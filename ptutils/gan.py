"""A generative adversarial network (GAN) for 8x8 images, as a pre-training signal.

A *generator* ``G`` maps noise ``z`` to an image; a *discriminator* ``D`` outputs the
probability that an image is real. They play the minimax game

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

No labels are used: "real" means "from the unlabelled pool". The discriminator's
trunk is :func:`ptutils.cnn.conv_encoder`, the same module as ``DigitCNN.features``,
so its penultimate features can be probed, or copied into a classifier, like the
other encoders of the book.

Everything works on *logits* ``s`` with ``D(x) = sigmoid(s)``, so that
``log D = logsigmoid(s)`` and ``log(1 - D) = logsigmoid(-s)`` stay finite.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from .cnn import conv_encoder


def _check_images(x: torch.Tensor, name: str = "images") -> torch.Tensor:
    """``(B, 8, 8)`` or ``(B, 1, 8, 8)`` floats -> ``(B, 1, 8, 8)``; a clear error otherwise."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {x.dtype}")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 8, 8):
        raise ValueError(f"{name} must have shape (B, 8, 8) or (B, 1, 8, 8), got {tuple(x.shape)}")
    return x


def _check_logits(s: torch.Tensor, name: str) -> None:
    if not isinstance(s, torch.Tensor) or not s.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of logits")
    if s.dim() != 1 or len(s) == 0:
        raise ValueError(f"{name} must be a non-empty (B,) tensor of logits, got shape {tuple(s.shape)}")


class Generator(nn.Module):
    """Noise to an 8x8 image in [0, 1]: a linear layer to ``(c2, 2, 2)``, then two transposed convolutions.

    Shapes:
        z: ``(B, d_noise)``; output: ``(B, 1, 8, 8)``.
    """

    def __init__(self, d_noise: int = 16, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        if not isinstance(d_noise, int) or d_noise < 1:
            raise ValueError(f"d_noise must be a positive int, got {d_noise!r}")
        c1, c2 = channels
        self.d_noise = d_noise
        self.project = nn.Sequential(nn.Linear(d_noise, c2 * 2 * 2), nn.ReLU())  # (B, c2 * 4)
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, kernel_size=2, stride=2), nn.ReLU(),  # (B, c1, 4, 4)
            nn.ConvTranspose2d(c1, 1, kernel_size=2, stride=2), nn.Sigmoid(),  # (B, 1, 8, 8)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.d_noise:
            raise ValueError(f"z must have shape (B, {self.d_noise}), got {tuple(z.shape)}")
        h = self.project(z).reshape(len(z), -1, 2, 2)  # (B, c2, 2, 2)
        return self.deconv(h)  # (B, 1, 8, 8)


class Discriminator(nn.Module):
    """:func:`ptutils.cnn.conv_encoder` (``features``) and one linear layer to a real-vs-fake logit.

    ``features`` is the same module type as ``DigitCNN.features``, so
    ``copy_weights(D.features, clf.features)`` works, and ``D.features(x).flatten(1)``
    is the penultimate representation a probe reads.

    Shapes:
        x: ``(B, 8, 8)`` or ``(B, 1, 8, 8)``; output: logits ``(B,)``.
    """

    def __init__(self, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        self.features = conv_encoder(channels)
        self.head = nn.Linear(channels[1] * 2 * 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_images(x, "x")
        return self.head(self.features(x).flatten(1)).squeeze(1)  # (B,)


def value_function(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The minimax value ``V(D, G) = mean log D(x) + mean log(1 - D(G(z)))``, from logits.

    Shapes:
        real_logits: ``(B,)`` (on real images); fake_logits: ``(B',)`` (on generated ones); output: a scalar.
    """
    _check_logits(real_logits, "real_logits")
    _check_logits(fake_logits, "fake_logits")
    return F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """What the discriminator minimises: ``-V(D, G)``, the binary cross-entropy of real = 1, fake = 0."""
    return -value_function(real_logits, fake_logits)


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The *non-saturating* generator loss ``-mean log D(G(z))``.

    Minimising ``log(1 - D(G(z)))`` (the minimax form) has gradient ``-D(G(z))`` with
    respect to the logit, which vanishes while the discriminator easily rejects the
    fakes (early in training); ``-log D(G(z))`` has gradient ``D(G(z)) - 1``, close to
    ``-1`` exactly then. Both are minimised by the same fixed point.
    """
    _check_logits(fake_logits, "fake_logits")
    return -F.logsigmoid(fake_logits).mean()


def minimax_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side of the minimax game, ``mean log(1 - D(G(z)))`` (saturating; for comparison)."""
    _check_logits(fake_logits, "fake_logits")
    return F.logsigmoid(-fake_logits).mean()


def discriminator_step(D: nn.Module, G: nn.Module, real: torch.Tensor, z: torch.Tensor,
                       opt_D: torch.optim.Optimizer) -> float:
    """One update of ``D`` on real images and ``G(z)``; ``G`` receives no gradient (its output is detached)."""
    with torch.no_grad():
        fake = G(z)  # (B, 1, 8, 8), no graph back to G
    loss = discriminator_loss(D(real), D(fake))
    opt_D.zero_grad()
    loss.backward()
    opt_D.step()
    return loss.item()


def generator_step(D: nn.Module, G: nn.Module, z: torch.Tensor, opt_G: torch.optim.Optimizer) -> float:
    """One update of ``G`` by the non-saturating loss; ``D``'s parameters receive no gradient."""
    was = [p.requires_grad for p in D.parameters()]
    D.requires_grad_(False)  # the gradient flows *through* D into G, but not into D's weights
    try:
        loss = generator_loss(D(G(z)))
        opt_G.zero_grad()
        loss.backward()
        opt_G.step()
    finally:
        for p, r in zip(D.parameters(), was):
            p.requires_grad_(r)
    return loss.item()


def pretrain_gan(D: Discriminator, G: Generator, images: torch.Tensor, *, epochs: int = 20, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.5, 0.999), batch_size: int = 64, seed: int = 0,
                 keep_at: tuple[int, ...] = (), log_every: int = 0) -> dict:
    """Train a GAN on unlabelled ``images``: per batch, one discriminator step, then one generator step.

    Seeded with :func:`ptutils.repro.set_seed` (the batch order and the noise come from
    the generator it returns), so the same models, images and seed give the same run.
    Adam for both networks (``betas=(0.5, 0.999)``, the usual GAN setting), no weight decay.

    Returns:
        The history: ``"d_loss"`` and ``"g_loss"`` (mean per epoch), ``"d_real"`` and
        ``"d_fake"`` (the mean ``D(x)`` on real and ``D(G(z))`` on generated images per
        epoch, measured just after each discriminator step), ``"seconds"``, and
        ``"discriminators"``: for each epoch in ``keep_at``, a copy of ``D``'s state dict
        after that epoch (candidates for a training length chosen on validation data).

    Shapes:
        images: ``(N, 8, 8)`` or ``(N, 1, 8, 8)`` floats in [0, 1].
    """
    from .repro import set_seed
    from .training import shuffled

    images = _check_images(images)
    if len(images) == 0:
        raise ValueError("no images to train on")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not all(0 <= b < 1 for b in betas) or len(betas) != 2:
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    if not all(isinstance(e, int) and 1 <= e <= epochs for e in keep_at):
        raise ValueError(f"keep_at must list epochs between 1 and epochs={epochs}, got {keep_at!r}")
    if not isinstance(G, Generator) or not isinstance(D, Discriminator):
        raise TypeError("pretrain_gan expects a ptutils.gan.Discriminator and a ptutils.gan.Generator")
    g = set_seed(seed)
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    hist = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
    kept = {}
    t0 = time.perf_counter()
    for epoch in range(epochs):
        D.train()
        G.train()
        sums, n = dict.fromkeys(hist, 0.0), 0
        for idx in shuffled(len(images), batch_size, g):
            real = images[idx]  # (b, 1, 8, 8)
            z = torch.randn(len(idx), G.d_noise, generator=g)  # (b, d_noise)
            sums["d_loss"] += discriminator_step(D, G, real, z, opt_D) * len(idx)
            with torch.no_grad():
                sums["d_real"] += torch.sigmoid(D(real)).sum().item()
                sums["d_fake"] += torch.sigmoid(D(G(z))).sum().item()
            z = torch.randn(len(idx), G.d_noise, generator=g)
            sums["g_loss"] += generator_step(D, G, z, opt_G) * len(idx)
            n += len(idx)
        for key in hist:
            hist[key].append(sums[key] / n)
        if epoch + 1 in keep_at:
            kept[epoch + 1] = {k: v.detach().clone() for k, v in D.state_dict().items()}
        if log_every and (epoch + 1) % log_every == 0:
            print(f"epoch {epoch + 1:3d}: discriminator loss {hist['d_loss'][-1]:.3f}, "
                  f"generator loss {hist['g_loss'][-1]:.3f}, D(x) {hist['d_real'][-1]:.2f}, "
                  f"D(G(z)) {hist['d_fake'][-1]:.2f}")
    D.eval()
    G.eval()
    hist["seconds"] = time.perf_counter() - t0
    hist["discriminators"] = kept
    return hist


def sample(G: Generator, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` generated images ``(n, 8, 8)`` from noise drawn with its own seeded generator."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    z = torch.randn(n, G.d_noise, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G(z)[:, 0]

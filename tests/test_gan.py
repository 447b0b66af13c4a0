"""ptutils.gan: the losses against hand-computed values, which network each step updates, seeding, errors."""

import math

import pytest
import torch

import ptutils
from ptutils.checkpoint import copy_weights
from ptutils.gan import (Discriminator, Generator, discriminator_loss, discriminator_step, generator_loss,
                         generator_step, minimax_generator_loss, pretrain_gan, sample, value_function)


def images(n=128):
    x, _ = ptutils.load_digits_images()
    return torch.tensor(x[:n])


def params(m):
    return [p.detach().clone() for p in m.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# ----------------------------------------------------------------------------- losses
def test_value_function_and_losses_by_hand():
    log3 = math.log(3.0)
    real = torch.tensor([log3, 0.0])  # D(x) = 0.75 and 0.5
    fake = torch.tensor([-log3, 0.0, log3])  # D(G(z)) = 0.25, 0.5, 0.75
    v = (math.log(0.75) + math.log(0.5)) / 2 + (math.log(0.75) + math.log(0.5) + math.log(0.25)) / 3
    assert value_function(real, fake).item() == pytest.approx(v, abs=1e-6)
    assert discriminator_loss(real, fake).item() == pytest.approx(-v, abs=1e-6)
    assert generator_loss(fake).item() == pytest.approx(-(math.log(0.25) + math.log(0.5) + math.log(0.75)) / 3,
                                                        abs=1e-6)
    assert minimax_generator_loss(fake).item() == pytest.approx((math.log(0.75) + math.log(0.5) + math.log(0.25)) / 3,
                                                                abs=1e-6)
    # at D = 1/2 everywhere the value is -2 log 2 (the value of the game at its equilibrium)
    assert value_function(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(-2 * math.log(2), abs=1e-6)


def test_losses_stay_finite_for_confident_logits():
    big = torch.tensor([200.0, -200.0])
    for loss in (value_function(big, big), discriminator_loss(big, big), generator_loss(big),
                 minimax_generator_loss(big)):
        assert torch.isfinite(loss)


def test_non_saturating_loss_keeps_its_gradient_when_d_rejects_the_fakes():
    s = torch.tensor([-5.0], requires_grad=True)  # D(G(z)) = sigmoid(-5), about 0.0067
    (g_ns,) = torch.autograd.grad(generator_loss(s), s)
    (g_mm,) = torch.autograd.grad(minimax_generator_loss(s), s)
    d = torch.sigmoid(torch.tensor(-5.0)).item()
    assert g_ns.item() == pytest.approx(d - 1, abs=1e-6)  # about -0.993: a strong push up
    assert g_mm.item() == pytest.approx(-d, abs=1e-6)  # about -0.007: almost nothing
    assert abs(g_ns.item()) > 100 * abs(g_mm.item())


# ----------------------------------------------------------------------------- which network moves
def _nets():
    ptutils.set_seed(0)
    return Discriminator(), Generator()


def test_discriminator_step_changes_d_only_and_sends_no_gradient_to_g():
    D, G = _nets()
    x, z = images(32), torch.randn(32, G.d_noise)
    d0, g0 = params(D), params(G)
    discriminator_step(D, G, x, z, torch.optim.Adam(D.parameters(), lr=1e-2))
    assert same(params(G), g0) and not same(params(D), d0)
    assert all(p.grad is None for p in G.parameters())  # the fakes were detached


def test_generator_step_changes_g_only_and_restores_d():
    D, G = _nets()
    D.head.bias.requires_grad_(False)  # a partly frozen D comes back exactly as it was
    z = torch.randn(32, G.d_noise)
    d0, g0 = params(D), params(G)
    loss = generator_step(D, G, z, torch.optim.Adam(G.parameters(), lr=1e-2))
    assert math.isfinite(loss)
    assert same(params(D), d0) and not same(params(G), g0)
    assert all(p.grad is None for p in D.parameters())
    assert [p.requires_grad for p in D.parameters()] == [True, True, True, True, True, False]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


def test_generator_step_raises_the_fakes_score():
    D, G = _nets()
    z = torch.randn(64, G.d_noise)
    opt = torch.optim.Adam(G.parameters(), lr=1e-2)
    with torch.no_grad():
        before = torch.sigmoid(D(G(z))).mean().item()
    for _ in range(20):
        generator_step(D, G, z, opt)
    with torch.no_grad():
        assert torch.sigmoid(D(G(z))).mean().item() > before + 0.01  # a sign error would lower it


# ----------------------------------------------------------------------------- training loop
def _run(seed, epochs=3, keep_at=()):
    D, G = _nets()
    h = pretrain_gan(D, G, images(), epochs=epochs, seed=seed, keep_at=keep_at)
    return D, G, h


def test_pretrain_gan_is_deterministic_with_a_seed():
    D1, G1, h1 = _run(0)
    D2, G2, h2 = _run(0)
    _, G3, h3 = _run(1)
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert h1[key] == h2[key] and len(h1[key]) == 3
    assert same(params(G1), params(G2)) and same(params(D1), params(D2))
    assert h3["d_loss"] != h1["d_loss"] and not same(params(G3), params(G1))


def test_pretrain_gan_trains_both_networks_and_keeps_snapshots():
    D0, G0 = _nets()
    D, G, h = _run(0, epochs=4, keep_at=(1, 4))
    assert not same(params(D), params(D0)) and not same(params(G), params(G0))
    assert all(0 < d < 1 for d in h["d_real"] + h["d_fake"])
    assert h["d_real"][-1] > h["d_fake"][-1]  # D still tells real from fake on average
    assert sorted(h["discriminators"]) == [1, 4]
    last = h["discriminators"][4]
    assert all(torch.equal(last[k], v) for k, v in D.state_dict().items())
    assert not torch.equal(h["discriminators"][1]["features.0.weight"], last["features.0.weight"])
    out = sample(G, 5)
    assert out.shape == (5, 8, 8) and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, sample(G, 5)) and not torch.equal(out, sample(G, 5, seed=1))
    clf = ptutils.DigitCNN()
    copy_weights(D.features, clf.features)  # the discriminator's trunk is the classifier's trunk
    assert torch.equal(clf.features[0].weight, D.features[0].weight)
    assert D.features(images(3).unsqueeze(1)).flatten(1).shape == (3, 128)


# ----------------------------------------------------------------------------- hostile inputs
def test_hostile_inputs_are_rejected_with_clear_errors():
    D, G = _nets()
    x = images(16)
    with pytest.raises(TypeError, match="floating"):
        pretrain_gan(D, G, x.long(), epochs=1)
    with pytest.raises(TypeError, match="torch.Tensor"):
        pretrain_gan(D, G, x.numpy(), epochs=1)
    with pytest.raises(ValueError, match="shape"):
        pretrain_gan(D, G, x[:, :7, :7], epochs=1)
    with pytest.raises(ValueError, match="shape"):
        pretrain_gan(D, G, x.reshape(16, 64), epochs=1)
    with pytest.raises(ValueError, match="no images"):
        pretrain_gan(D, G, x[:0], epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        pretrain_gan(D, G, x, epochs=-1)
    with pytest.raises(ValueError, match="lr"):
        pretrain_gan(D, G, x, epochs=1, lr=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        pretrain_gan(D, G, x, epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="betas"):
        pretrain_gan(D, G, x, epochs=1, betas=(0.5, 1.0))
    with pytest.raises(ValueError, match="keep_at"):
        pretrain_gan(D, G, x, epochs=2, keep_at=(3,))
    with pytest.raises(TypeError, match="Discriminator"):
        pretrain_gan(G, D, x, epochs=1)  # the two networks swapped
    with pytest.raises(ValueError, match="z must have shape"):
        G(torch.randn(4, G.d_noise + 1))
    with pytest.raises(ValueError, match="x must have shape"):
        D(torch.rand(4, 2, 8, 8))
    with pytest.raises(TypeError, match="floating"):
        D(torch.ones(4, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="logits"):
        value_function(torch.zeros(3, 1), torch.zeros(3))
    with pytest.raises(ValueError, match="logits"):
        generator_loss(torch.zeros(0))
    with pytest.raises(TypeError, match="logits"):
        discriminator_loss(torch.zeros(3, dtype=torch.long), torch.zeros(3))
    with pytest.raises(ValueError, match="d_noise"):
        Generator(d_noise=0)
    with pytest.raises(ValueError, match="n must"):
        sample(G, 0)

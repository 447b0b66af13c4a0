import pytest
import torch

import ptutils
from ptutils.autoencoder import ConvAutoencoder, MLPAutoencoder, corrupt, pretrain_autoencoder
from ptutils.cnn import DigitCNN
from ptutils.contrastive import ContrastiveModel, augment, nt_xent, pretrain_contrastive
from ptutils.checkpoint import copy_weights, load_report
from ptutils.finetune import apply_strategy, param_groups
from ptutils.training import train_classifier


def images(n=256):
    x, y = ptutils.load_digits_images()
    return torch.tensor(x[:n]), torch.tensor(y[:n])


@pytest.mark.parametrize("corruption", ["none", "noise", "mask"])
def test_autoencoder_loss_falls_and_is_reproducible(corruption):
    x, _ = images()
    runs = []
    for _ in range(2):
        ptutils.set_seed(0)
        ae = ConvAutoencoder()
        runs.append(pretrain_autoencoder(ae, x, epochs=5, corruption=corruption, seed=0)["loss"])
    assert runs[0] == runs[1]
    assert runs[0][-1] < 0.7 * runs[0][0]
    assert ae(x[:3]).shape == (3, 1, 8, 8)


def test_mlp_autoencoder_and_errors():
    x, _ = images(64)
    ae = MLPAutoencoder()
    h = pretrain_autoencoder(ae, x, epochs=3)
    assert ae(x).shape == (64, 64) and len(h["loss"]) == 3 and h["loss"][-1] < h["loss"][0]
    with pytest.raises(ValueError, match="corruption"):
        pretrain_autoencoder(ae, x, corruption="blur")
    with pytest.raises(TypeError, match="floating"):
        pretrain_autoencoder(ae, x.long())
    with pytest.raises(ValueError, match="no images"):
        pretrain_autoencoder(ae, x[:0])
    g = torch.Generator().manual_seed(0)
    assert (corrupt(torch.ones(1000), "mask", 0.3, g) == 0).float().mean().item() == pytest.approx(0.3, abs=0.05)


def test_encoder_reuse_copies_every_weight():
    ae = ConvAutoencoder()
    clf = DigitCNN()
    copy_weights(ae.encoder, clf.features)
    for (k1, a), (k2, b) in zip(ae.encoder.state_dict().items(), clf.features.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(a, b)


def test_mismatched_checkpoints_are_reported():
    ae = ConvAutoencoder(channels=(8, 16))
    clf = DigitCNN()  # channels (16, 32)
    with pytest.raises(ValueError, match="shape mismatches"):
        copy_weights(ae.encoder, clf.features)
    # the source article's mistake: a whole autoencoder state into a classifier, strict=False
    report = load_report(clf, ConvAutoencoder().state_dict())
    assert report["matched"] == [] and "features.0.weight" in report["missing_keys"]
    assert "encoder.0.weight" in report["unexpected_keys"]
    with pytest.raises(ValueError, match="missing keys"):
        copy_weights(ConvAutoencoder(), clf)


def test_strategies_freeze_the_right_parameters():
    clf = DigitCNN()
    n_head = sum(p.numel() for p in clf.head.parameters())
    n_all = sum(p.numel() for p in clf.parameters())
    assert apply_strategy(clf.features, clf.head, "probe") == n_head
    assert apply_strategy(clf.features, clf.head, "full") == n_all
    n_last_conv = sum(p.numel() for p in clf.features[3].parameters())
    assert apply_strategy(clf.features, clf.head, "partial", unfreeze_last=1) == n_head + n_last_conv
    with pytest.raises(ValueError, match="strategy"):
        apply_strategy(clf.features, clf.head, "half")
    with pytest.raises(ValueError, match="unfreeze_last"):
        apply_strategy(clf.features, clf.head, "partial", unfreeze_last=5)


def test_probe_training_leaves_encoder_unchanged_and_lr_groups():
    x, y = images(128)
    clf = DigitCNN()
    before = {k: v.clone() for k, v in clf.features.state_dict().items()}
    apply_strategy(clf.features, clf.head, "probe")
    train_classifier(clf, x, y, epochs=2, params=param_groups(clf.features, clf.head, lr=1e-2))
    assert all(torch.equal(before[k], v) for k, v in clf.features.state_dict().items())
    apply_strategy(clf.features, clf.head, "full")
    groups = param_groups(clf.features, clf.head, lr=1e-2, encoder_lr_scale=0.1)
    assert [g["lr"] for g in groups] == [1e-2, pytest.approx(1e-3)]


def test_contrastive_pieces():
    g = torch.Generator().manual_seed(0)
    x, _ = images(64)
    a = augment(x, g)
    assert a.shape == x.shape and not torch.equal(a, x)
    z = torch.randn(8, 4)
    assert nt_xent(z, z).item() < nt_xent(z, torch.randn(8, 4)).item()
    with pytest.raises(ValueError, match=r"\(B, d\)"):
        nt_xent(z, z[:4])
    model = ContrastiveModel(DigitCNN().features, d_features=128)
    h = pretrain_contrastive(model, x, epochs=3, batch_size=32)
    assert len(h["loss"]) == 3 and h["loss"][-1] < h["loss"][0]

"""The LSTM sequence autoencoder and the classifier built on its encoder."""

import copy

import pytest
import torch

from ptutils.seq_autoencoder import (BOS, PAD, UNK, LSTMClassifier, LSTMSequenceAutoencoder, SequenceEncoder,
                                     make_windows, make_word_index, pretrain_sequence_autoencoder,
                                     reconstruction_accuracy, reconstruction_loss)
from ptutils.training import train_classifier


def test_word_index_and_windows():
    wi = make_word_index(["the", "cat", "sat"], max_words=2)
    assert wi == {"<pad>": PAD, "<unk>": UNK, "<bos>": BOS, "the": 3, "cat": 4}
    w = make_windows([["the", "cat", "sat", "the", "cat"], ["the"]], wi, length=2)
    assert w.tolist() == [[3, 4], [UNK, 3]]  # the short tail and the short document are dropped
    with pytest.raises(ValueError, match="reserved"):
        make_word_index(["<pad>", "a"])
    with pytest.raises(ValueError, match="no document"):
        make_windows([["a"]], wi, length=5)
    many = make_windows([["the"] * 100], wi, length=2, max_windows=7, seed=0)
    assert many.shape == (7, 2)


def test_encoder_state_ignores_trailing_padding():
    torch.manual_seed(0)
    enc = SequenceEncoder(10, 4, 6)
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    h, c = enc(ids)
    h2, c2 = enc(ids[:, :3])
    assert h.shape == (1, 1, 6) and torch.allclose(h, h2, atol=1e-6) and torch.allclose(c, c2, atol=1e-6)


def test_decoder_starts_from_h_and_c():
    torch.manual_seed(0)
    ae = LSTMSequenceAutoencoder(12, 4, 8)
    ids = torch.randint(3, 12, (3, 5))
    logits = ae(ids)
    assert logits.shape == (3, 5, 12)
    # recompute with the cell state zeroed: the output must change, so c is used
    h, c = ae.encoder(ids)
    dec_in = ae.encoder.embedding(torch.cat([torch.full_like(ids[:, :1], BOS), ids[:, :-1]], 1))
    out_h_only, _ = ae.decoder(dec_in, (h, torch.zeros_like(c)))
    out_both, _ = ae.decoder(dec_in, (h, c))
    assert torch.allclose(ae.out(out_both), logits)
    assert not torch.allclose(ae.out(out_h_only), logits)


def test_reconstruction_loss_ignores_padding_and_checks_shapes():
    logits = torch.randn(2, 3, 7)
    ids = torch.tensor([[4, 5, 0], [6, 0, 0]])
    manual = torch.nn.functional.cross_entropy(logits[ids != 0], ids[ids != 0])
    assert torch.allclose(reconstruction_loss(logits, ids), manual)
    with pytest.raises(ValueError, match="do not match"):
        reconstruction_loss(logits, ids[:, :2])


def test_bad_ids_are_rejected():
    enc = SequenceEncoder(10)
    with pytest.raises(TypeError, match="long tensor"):
        enc(torch.rand(2, 3))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        enc(torch.tensor([[1, 12]]))


def test_pretraining_learns_to_reconstruct_and_is_reproducible():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 13, (256, 6), generator=g)  # random "sentences" over 10 words

    def run():
        torch.manual_seed(0)
        ae = LSTMSequenceAutoencoder(13, 16, 64)
        before = reconstruction_accuracy(ae, ids)
        hist = pretrain_sequence_autoencoder(ae, ids, ids[:64], epochs=25, lr=1e-2, batch_size=32, seed=0)
        return ae, before, hist

    ae, before, hist = run()
    _, _, hist2 = run()
    assert hist["loss"] == hist2["loss"]
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    after = reconstruction_accuracy(ae, ids)
    # random sequences can only be reconstructed through the encoder's state (chance is 10%)
    assert before < 0.2 and after > 0.6


def test_classifier_reuses_the_pretrained_encoder_weights():
    torch.manual_seed(0)
    ae = LSTMSequenceAutoencoder(20, 8, 16)
    clf = LSTMClassifier(copy.deepcopy(ae.encoder), num_classes=2)
    for (name, p), (_, q) in zip(ae.encoder.state_dict().items(), clf.encoder.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    ids = torch.randint(3, 20, (40, 5))
    y = (ids == 3).any(1).long()
    hist = train_classifier(clf, ids, y, epochs=3, lr=1e-2, seed=0)
    assert len(hist["loss"]) == 3
    # fine-tuning changed the copy, not the autoencoder
    assert not torch.equal(clf.encoder.lstm.weight_ih_l0, ae.encoder.lstm.weight_ih_l0)

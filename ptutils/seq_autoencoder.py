"""An LSTM sequence autoencoder: pre-train on unlabelled text, then fine-tune its encoder.

The recipe of Dai and Le (2015), "Semi-supervised sequence learning": an LSTM
*encoder* reads a sentence into its final state ``(h, c)``; an LSTM *decoder*,
started from that state, reproduces the sentence word by word (teacher forcing:
it sees the true previous word). No labels are needed. Afterwards the embedding
and the encoder initialise a classifier, which is fine-tuned on the labelled data.

Source article 001 builds this model with an undefined ``hidden_dim``, gives the
decoder ``h`` without the cell state ``c``, and compares tensors of mismatched
shapes in the loss; here the decoder receives both parts of the state and the loss
flattens ``(B, T, V)`` logits against ``(B, T)`` targets, ignoring padding.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

PAD, UNK, BOS = 0, 1, 2
SPECIALS = ("<pad>", "<unk>", "<bos>")


def make_word_index(vocab_words, max_words: int | None = None) -> dict:
    """``{"<pad>": 0, "<unk>": 1, "<bos>": 2, word: 3, ...}`` for the first ``max_words`` words."""
    words = list(vocab_words)[:max_words]
    clash = set(SPECIALS) & set(words)
    if clash:
        raise ValueError(f"the vocabulary contains reserved tokens {sorted(clash)}")
    return {**{s: i for i, s in enumerate(SPECIALS)}, **{w: i + len(SPECIALS) for i, w in enumerate(words)}}


def make_windows(corpus, word_index: dict, length: int = 20, max_windows: int | None = None,
                 seed: int = 0) -> torch.Tensor:
    """Cut token lists into non-overlapping windows of ``length`` word ids.

    Args:
        corpus: a list of token lists (documents).
        word_index: from :func:`make_word_index`; unknown words map to ``<unk>``.
        length: window length; a document's last, shorter piece is dropped.
        max_windows: keep a random subset of this many windows (``None``: all).
        seed: seeds that subset.

    Returns:
        ``(N, length)`` long tensor.
    """
    rows = []
    for doc in corpus:
        ids = [word_index.get(w, UNK) for w in doc]
        rows += [ids[i:i + length] for i in range(0, len(ids) - length + 1, length)]
    if not rows:
        raise ValueError(f"no document has {length} tokens; nothing to pre-train on")
    out = torch.tensor(rows, dtype=torch.long)
    if max_windows is not None and max_windows < len(out):
        keep = np.random.default_rng(seed).permutation(len(out))[:max_windows]
        out = out[torch.from_numpy(np.sort(keep))]
    return out


def _check_ids(ids: torch.Tensor, vocab_size: int) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.dim() != 2:
        got = f"{ids.dtype} {tuple(ids.shape)}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"ids must be a (B, T) long tensor of word indices, got {got}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size}), got values in [{ids.min()}, {ids.max()}]")


class SequenceEncoder(nn.Module):
    """Embedding + one-layer LSTM; returns the final state ``(h, c)`` of each sequence.

    Padding (id 0) at the end of a row is skipped: the state is taken at the last
    real token, via a packed sequence.

    Shapes:
        ids: ``(B, T)`` long; h, c: ``(1, B, d_hidden)`` each.
    """

    def __init__(self, vocab_size: int, d_embed: int = 64, d_hidden: int = 128):
        super().__init__()
        self.vocab_size, self.d_hidden = vocab_size, d_hidden
        self.embedding = nn.Embedding(vocab_size, d_embed, padding_idx=PAD)
        self.lstm = nn.LSTM(d_embed, d_hidden, batch_first=True)

    def forward(self, ids):
        _check_ids(ids, self.vocab_size)
        lengths = (ids != PAD).sum(1).clamp(min=1).cpu()  # (B,)
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(ids), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (h, c) = self.lstm(packed)  # (1, B, d_hidden) each
        return h, c


class LSTMSequenceAutoencoder(nn.Module):
    """Encoder LSTM -> state ``(h, c)`` -> decoder LSTM that reproduces the input.

    The decoder reads ``<bos>, x_1, ..., x_{T-1}`` (teacher forcing) starting from
    the encoder's final ``(h, c)``, and predicts ``x_1, ..., x_T``. It shares the
    encoder's embedding table.

    Shapes:
        ids: ``(B, T)`` long; logits: ``(B, T, vocab_size)``.
    """

    def __init__(self, vocab_size: int, d_embed: int = 64, d_hidden: int = 128):
        super().__init__()
        self.encoder = SequenceEncoder(vocab_size, d_embed, d_hidden)
        self.decoder = nn.LSTM(d_embed, d_hidden, batch_first=True)
        self.out = nn.Linear(d_hidden, vocab_size)

    def forward(self, ids):
        h, c = self.encoder(ids)  # (1, B, d_hidden) each
        bos = torch.full_like(ids[:, :1], BOS)
        dec_in = self.encoder.embedding(torch.cat([bos, ids[:, :-1]], dim=1))  # (B, T, d_embed)
        dec_out, _ = self.decoder(dec_in, (h, c))  # (B, T, d_hidden): starts from both h and c
        return self.out(dec_out)  # (B, T, vocab_size)


def reconstruction_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the reconstruction over real (non-padding) tokens.

    Shapes:
        logits: ``(B, T, V)``; ids: ``(B, T)``.
    """
    if logits.shape[:2] != ids.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match targets {tuple(ids.shape)}")
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1),
                                       ignore_index=PAD)


@torch.no_grad()
def reconstruction_accuracy(model: LSTMSequenceAutoencoder, ids: torch.Tensor, batch_size: int = 256) -> float:
    """Share of real tokens that the decoder predicts correctly (teacher forcing)."""
    model.eval()
    right = total = 0
    for batch in ids.split(batch_size):
        pred = model(batch).argmax(-1)
        real = batch != PAD
        right += int(((pred == batch) & real).sum())
        total += int(real.sum())
    return right / total


def pretrain_sequence_autoencoder(model: LSTMSequenceAutoencoder, train_ids: torch.Tensor,
                                  val_ids: torch.Tensor | None = None, *, epochs: int = 5,
                                  lr: float = 3e-3, batch_size: int = 64, clip: float = 1.0,
                                  seed: int = 0, log: bool = False) -> dict:
    """Train the autoencoder to reproduce ``train_ids``; no labels are used.

    Adam with gradient-norm clipping (LSTMs need it). Returns
    ``{"loss": [...], "val_loss": [...], "seconds": ...}`` with one entry per epoch.
    """
    _check_ids(train_ids, model.encoder.vocab_size)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist, t0 = {"loss": [], "val_loss": []}, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total, n = 0.0, 0
        for idx in torch.randperm(len(train_ids), generator=g).split(batch_size):
            batch = train_ids[idx]
            loss = reconstruction_loss(model(batch), batch)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            total, n = total + loss.item() * len(idx), n + len(idx)
        hist["loss"].append(total / n)
        if val_ids is not None:
            model.eval()
            with torch.no_grad():
                hist["val_loss"].append(float(np.mean([reconstruction_loss(model(b), b).item()
                                                       for b in val_ids.split(256)])))
        if log:
            more = f"  held-out {hist['val_loss'][-1]:.3f}" if hist["val_loss"] else ""
            print(f"epoch {epoch + 1}/{epochs}  reconstruction loss {hist['loss'][-1]:.3f}{more}")
    model.eval()
    hist["seconds"] = time.perf_counter() - t0
    return hist


class LSTMClassifier(nn.Module):
    """A :class:`SequenceEncoder` and a linear head on its final hidden state.

    Build it around a pre-trained encoder (``LSTMClassifier(autoencoder.encoder)``)
    or a fresh one (``LSTMClassifier(SequenceEncoder(V))``): the same architecture,
    so the comparison isolates pre-training.

    Shapes:
        ids: ``(B, T)`` long; logits: ``(B, num_classes)``.
    """

    def __init__(self, encoder: SequenceEncoder, num_classes: int = 2, dropout: float = 0.3):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.d_hidden, num_classes)

    def forward(self, ids):
        h, _ = self.encoder(ids)  # (1, B, d_hidden)
        return self.head(self.dropout(h[0]))  # (B, num_classes)

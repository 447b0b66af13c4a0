"""Text classification from word vectors: encode token lists, then embed, pool and classify.

The model of the first project chapter (source article 000, done right):
``ids -> nn.Embedding (Word2Vec vectors or random) -> AttentionPooling ->
PositionwiseFeedForward-style head -> logits``.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import AttentionPooling
from .data import PAD, PAD_TOKEN, UNK, UNK_TOKEN


def encode_tokens(token_lists, word_to_index: dict, max_len: int = 40):
    """Turn token lists into a padded id tensor and its mask.

    Unknown words map to ``<unk>`` (index 1); padding is index 0. A sentence with
    no tokens becomes a single ``<unk>``, so every row has at least one real position.

    Args:
        token_lists: a list of lists of words.
        word_to_index: the mapping from :meth:`ptutils.word2vec.WordVectors.to_embedding`
            (or any mapping with ``<pad>`` = 0 and ``<unk>`` = 1).
        max_len: longer sentences are truncated.

    Returns:
        ``(ids, mask)``: ``(N, T)`` long and ``(N, T)`` bool, with ``T`` the longest
        (truncated) sentence.
    """
    if word_to_index.get(PAD_TOKEN) != PAD or word_to_index.get(UNK_TOKEN) != UNK:
        raise ValueError(f"word_to_index must map {PAD_TOKEN!r} to {PAD} and {UNK_TOKEN!r} to {UNK}")
    if isinstance(token_lists, str) or any(isinstance(t, str) for t in token_lists):
        raise TypeError("token_lists must be a list of token lists, e.g. [['a', 'film'], ...]")
    rows = [[word_to_index.get(w, UNK) for w in toks[:max_len]] or [UNK] for toks in token_lists]
    T = max(map(len, rows))
    ids = torch.full((len(rows), T), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    return ids, ids != PAD


class AttentionTextClassifier(nn.Module):
    """Embedding -> attention pooling -> feed-forward head -> class logits.

    Args:
        embedding: an ``nn.Embedding`` (e.g. from ``WordVectors.to_embedding``);
            row 0 must be padding.
        num_classes: number of classes.
        d_hidden: width of the head's hidden layer.
        dropout: dropout before the output layer.

    Shapes:
        ids: ``(B, T)`` long; mask: ``(B, T)`` bool; logits: ``(B, num_classes)``.
    """

    def __init__(self, embedding: nn.Embedding, num_classes: int = 2, d_hidden: int = 64,
                 dropout: float = 0.2):
        super().__init__()
        d = embedding.embedding_dim
        self.embedding = embedding
        self.pool = AttentionPooling(d)
        self.head = nn.Sequential(nn.Linear(d, d_hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(d_hidden, num_classes))  # no activation on the output

    def forward(self, ids, mask):
        if ids.dtype != torch.long or ids.dim() != 2:
            raise TypeError(f"ids must be a (B, T) long tensor of word indices, got {ids.dtype} {tuple(ids.shape)}")
        x = self.embedding(ids)  # (B, T, d)
        pooled, self.last_weights = self.pool(x, mask)  # (B, d), (B, T)
        return self.head(pooled)  # (B, num_classes)


def word_index(token_lists, min_count: int = 2) -> dict:
    """A model's own vocabulary: every word seen at least ``min_count`` times in ``token_lists``.

    For a classifier trained from scratch (random embeddings), built from the text it
    is trained on, so it owes nothing to a pre-trained model's vocabulary. Ordered by
    decreasing count; ``<pad>`` is 0 and ``<unk>`` is 1, as :func:`encode_tokens` expects.
    """
    from .word2vec import build_vocab

    vocab = build_vocab(token_lists, min_count=min_count)
    return {PAD_TOKEN: PAD, UNK_TOKEN: UNK, **{w: i + 2 for i, w in enumerate(vocab.words)}}

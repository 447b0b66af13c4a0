"""Word2Vec from scratch: skip-gram with negative sampling (SGNS) in PyTorch.

For every word $w$ in the corpus and every context word $c$ within a window around
it, SGNS raises $\\sigma(u_c \\cdot v_w)$ and lowers $\\sigma(u_n \\cdot v_w)$ for $k$
"negative" words $n$ drawn from the unigram distribution raised to the power 3/4.
The loss of one pair is

    L = -log σ(u_c·v_w) - Σ_n log σ(-u_n·v_w),

with gradients ``dL/dv_w = (σ(u_c·v_w) - 1) u_c + Σ_n σ(u_n·v_w) u_n`` and
``dL/du_c = (σ(u_c·v_w) - 1) v_w``, ``dL/du_n = σ(u_n·v_w) v_w``. Training applies
these by hand to mini-batches of pairs (sparse row updates with ``index_add_``),
which is several times faster on a CPU than autograd with a sparse optimiser.

The recipe follows Mikolov et al. (2013) and the reference C implementation:
frequent-word subsampling, a dynamic window, negatives from unigram^0.75, and a
learning rate that decays linearly to ``min_lr``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Vocab:
    """Words sorted by decreasing count, with their counts and an index."""

    words: list
    counts: np.ndarray

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return word in self.index


def build_vocab(sentences, min_count: int = 5) -> Vocab:
    """Count the words of ``sentences`` (lists of tokens) and keep those seen ``min_count`` times."""
    if isinstance(sentences, str) or (len(sentences) and isinstance(sentences[0], str)):
        raise TypeError("sentences must be a list of token lists, e.g. [['a', 'cat'], ['the', 'dog']]")
    counts = Counter(w for s in sentences for w in s)
    if not counts:
        raise ValueError("the corpus is empty: no tokens to learn from")
    kept = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
    if not kept:
        raise ValueError(f"min_count={min_count} leaves no vocabulary (the most frequent word occurs "
                         f"{counts.most_common(1)[0][1]} times)")
    return Vocab([w for w, _ in kept], np.array([c for _, c in kept], dtype=np.int64))


class WordVectors:
    """Trained word vectors with a vocabulary: ``wv["king"]``, ``most_similar``, ``similarity``.

    Shapes:
        vectors: ``(len(vocab), dim)`` float32.
    """

    def __init__(self, vocab: Vocab, vectors: np.ndarray):
        if vectors.shape[0] != len(vocab):
            raise ValueError(f"{vectors.shape[0]} vectors for {len(vocab)} words")
        self.vocab = vocab
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._unit = None

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.vocab)

    def __contains__(self, word) -> bool:
        return word in self.vocab

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self._id(word)]

    def _id(self, word: str) -> int:
        try:
            return self.vocab.index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary ({len(self.vocab)} words; "
                           "rare words are dropped by min_count)") from None

    @property
    def unit(self) -> np.ndarray:
        if self._unit is None:
            n = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = self.vectors / np.maximum(n, 1e-12)
        return self._unit

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(self.unit[self._id(a)] @ self.unit[self._id(b)])

    def most_similar(self, word, topn: int = 10) -> list[tuple[str, float]]:
        """The ``topn`` nearest words by cosine similarity to a word (excluded) or a vector."""
        if isinstance(word, str):
            exclude = {self._id(word)}
            v = self.unit[self._id(word)]
        else:
            exclude = set()
            v = np.asarray(word, dtype=np.float32)
            v = v / max(np.linalg.norm(v), 1e-12)
        sims = self.unit @ v
        order = np.argsort(-sims)
        return [(self.vocab.words[i], float(sims[i])) for i in order if i not in exclude][:topn]

    def to_gensim(self):
        """A gensim ``KeyedVectors`` with the same words and vectors."""
        from gensim.models import KeyedVectors

        kv = KeyedVectors(self.dim)
        kv.add_vectors(self.vocab.words, self.vectors)
        return kv

    @classmethod
    def from_gensim(cls, model) -> "WordVectors":
        """From a trained gensim ``Word2Vec`` (or its ``KeyedVectors``)."""
        kv = getattr(model, "wv", model)
        words = list(kv.index_to_key)
        counts = np.array([kv.get_vecattr(w, "count") if "count" in kv.expandos else 0 for w in words])
        return cls(Vocab(words, counts), np.asarray(kv.vectors))

    def to_embedding(self, freeze: bool = True):
        """An ``nn.Embedding`` holding these vectors, plus its word-to-row mapping.

        Row 0 is ``<pad>`` (zeros) and row 1 is ``<unk>`` (the mean vector); word ``i``
        of the vocabulary is row ``i + 2``.

        Returns:
            ``(embedding, word_to_index)``.
        """
        pad = np.zeros((1, self.dim), np.float32)
        unk = self.vectors.mean(0, keepdims=True)
        weight = torch.from_numpy(np.concatenate([pad, unk, self.vectors]))
        from .data import PAD, PAD_TOKEN, UNK, UNK_TOKEN

        emb = torch.nn.Embedding.from_pretrained(weight, freeze=freeze, padding_idx=PAD)
        mapping = {PAD_TOKEN: PAD, UNK_TOKEN: UNK, **{w: i + 2 for i, w in enumerate(self.vocab.words)}}
        return emb, mapping

    def evaluate_word_pairs(self, path) -> tuple[float, float]:
        """Spearman correlation with human similarity judgements, and the out-of-vocabulary rate.

        ``path`` is a tab-separated file ``word1 word2 score`` with ``#`` comments
        (``wordsim353.tsv``, ``simlex999.txt`` in gensim's test data).
        """
        _, spearman, oov = self.to_gensim().evaluate_word_pairs(str(path))
        return float(spearman[0]), float(oov) / 100.0


@dataclass
class Word2VecConfig:
    """Hyper-parameters; defaults follow gensim's ``Word2Vec`` (sg=1).

    ``batch_size`` pairs are updated at once; ``share_negatives`` consecutive pairs of a
    (shuffled) batch share their ``negative`` noise words, which keeps each pair's
    expected gradient unchanged and makes the negatives' work that many times
    smaller. ``share_negatives=1`` gives every pair its own negatives.
    """

    dim: int = 100
    window: int = 5
    negative: int = 5
    min_count: int = 5
    sample: float = 1e-3
    epochs: int = 5
    lr: float = 0.025
    min_lr: float = 1e-4
    batch_size: int = 4096
    share_negatives: int = 32
    seed: int = 0


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Probability of keeping each word under frequent-word subsampling (word2vec's formula).

    With ``t = sample * total``, a word seen ``c`` times is kept with probability
    ``min(1, (sqrt(c / t) + 1) * t / c)``; ``sample=0`` keeps everything.
    """
    if sample <= 0:
        return np.ones(len(counts))
    t = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / t) + 1) * t / counts)


def skipgram_pairs(ids: np.ndarray, sent: np.ndarray, window: int, rng: np.random.Generator):
    """All (center, context) pairs with word2vec's dynamic window.

    Each position draws a window ``b`` uniformly from 1..window; it pairs with the
    positions at distance <= b in the same sentence.

    Shapes:
        ids, sent: ``(N,)`` word ids and sentence numbers; output: two ``(P,)`` arrays.
    """
    b = rng.integers(1, window + 1, size=len(ids))
    centers, contexts = [], []
    for j in range(1, window + 1):
        same = (sent[j:] == sent[:-j]) if j < len(ids) else np.zeros(0, bool)
        fwd = same & (b[:-j] >= j)  # center i, context i + j
        bwd = same & (b[j:] >= j)  # center i + j, context i
        centers += [ids[:-j][fwd], ids[j:][bwd]]
        contexts += [ids[j:][fwd], ids[:-j][bwd]]
    return np.concatenate(centers), np.concatenate(contexts)


def sgns_loss_and_grads(v, u_pos, u_neg):
    """The skip-gram negative-sampling loss of a batch and its gradients, by hand.

    Pairs come in groups of ``G`` that share ``K`` negative words.

    Returns:
        ``(loss, dL/dv, dL/du_pos, dL/du_neg)``: the summed loss over the batch, and
        gradients with the shapes of ``v``, ``u_pos`` and ``u_neg``.

    Shapes:
        v, u_pos: ``(n_groups, G, d)`` centre and context vectors;
        u_neg: ``(n_groups, K, d)`` negative (noise) vectors.
    """
    s_pos = (v * u_pos).sum(-1)  # (n_groups, G)
    s_neg = torch.bmm(v, u_neg.transpose(1, 2))  # (n_groups, G, K)
    g_pos = torch.sigmoid(s_pos) - 1  # dL/ds_pos
    g_neg = torch.sigmoid(s_neg)  # dL/ds_neg
    grad_v = g_pos.unsqueeze(-1) * u_pos + torch.bmm(g_neg, u_neg)  # (n_groups, G, d)
    grad_u_pos = g_pos.unsqueeze(-1) * v  # (n_groups, G, d)
    grad_u_neg = torch.bmm(g_neg.transpose(1, 2), v)  # (n_groups, K, d)
    loss = -(F.logsigmoid(s_pos).sum() + F.logsigmoid(-s_neg).sum())
    return loss, grad_v, grad_u_pos, grad_u_neg


def train_word2vec(sentences, cfg: Word2VecConfig | None = None, *, log: bool = False, **kwargs):
    """Train skip-gram with negative sampling; return ``(WordVectors, history)``.

    Args:
        sentences: a list of token lists.
        cfg: a :class:`Word2VecConfig`, or keyword arguments for one.
        log: print one line per epoch (loss, words per second).

    Returns:
        The trained vectors (the input embeddings ``v``) and a dict with the mean
        loss per epoch, the words processed per second and the wall time.
    """
    if cfg is not None and kwargs:
        raise TypeError("pass a Word2VecConfig or keyword arguments, not both")
    cfg = cfg or Word2VecConfig(**kwargs)
    t0 = time.perf_counter()  # timed like gensim's constructor: vocabulary included
    vocab = build_vocab(sentences, cfg.min_count)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    ids = np.array([vocab.index[w] for s in sentences for w in s if w in vocab.index], dtype=np.int64)
    sent = np.array([i for i, s in enumerate(sentences) for w in s if w in vocab.index], dtype=np.int64)
    keep = keep_probabilities(vocab.counts, cfg.sample)
    noise = vocab.counts.astype(np.float64) ** 0.75
    # word2vec's table trick: a large array in which word i fills a share of slots
    # proportional to count_i^0.75; a uniform slot is then a draw from that distribution
    table = torch.from_numpy(np.repeat(np.arange(len(vocab)), np.round(noise / noise.sum() * 2_000_000)
                                       .astype(np.int64).clip(min=1)))

    V, d, K = len(vocab), cfg.dim, cfg.negative
    W_in = (torch.rand(V, d, generator=gen) - 0.5) / d  # v: the word vectors we keep
    W_out = torch.zeros(V, d)  # u: context vectors
    # estimate the pairs of all epochs for the linear learning-rate decay
    expected_pairs = cfg.epochs * len(ids) * float((keep[ids]).mean()) * (cfg.window + 1)
    done, history = 0, {"loss": [], "words_per_sec": None, "seconds": None}
    for epoch in range(cfg.epochs):
        mask = rng.random(len(ids)) < keep[ids]  # subsample frequent words
        c_np, o_np = skipgram_pairs(ids[mask], sent[mask], cfg.window, rng)
        perm = rng.permutation(len(c_np))
        centers = torch.from_numpy(c_np[perm])
        contexts = torch.from_numpy(o_np[perm])
        total_loss, n_pairs = 0.0, len(centers)
        for start in range(0, n_pairs, cfg.batch_size):
            c = centers[start:start + cfg.batch_size]  # (B,)
            o = contexts[start:start + cfg.batch_size]  # (B,)
            B = len(c)
            lr = max(cfg.min_lr, cfg.lr * (1 - done / expected_pairs))
            G = cfg.share_negatives if B % cfg.share_negatives == 0 else 1
            n_groups = B // G
            # each group of G pairs shares its K negatives: every pair still gets K draws
            # from the noise distribution, but the work on negatives shrinks G-fold
            neg = table[torch.randint(len(table), (n_groups, K), generator=gen)]  # (n_groups, K)
            v = W_in[c].view(n_groups, G, d)
            u_pos = W_out[o].view(n_groups, G, d)
            u_neg = W_out[neg]  # (n_groups, K, d)
            loss, grad_v, grad_u_pos, grad_u_neg = sgns_loss_and_grads(v, u_pos, u_neg)
            W_out.index_add_(0, o, grad_u_pos.view(B, d), alpha=-lr)  # u <- u - lr * dL/du
            W_out.index_add_(0, neg.reshape(-1), grad_u_neg.reshape(-1, d), alpha=-lr)
            W_in.index_add_(0, c, grad_v.view(B, d), alpha=-lr)  # v <- v - lr * dL/dv
            total_loss += float(loss)
            done += B
        history["loss"].append(total_loss / max(n_pairs, 1))
        if log:
            rate = (epoch + 1) * len(ids) / (time.perf_counter() - t0)
            print(f"epoch {epoch + 1}/{cfg.epochs}  loss {history['loss'][-1]:.4f}  "
                  f"{n_pairs:,} pairs  {rate:,.0f} words/s")
    history["seconds"] = time.perf_counter() - t0
    history["words_per_sec"] = cfg.epochs * len(ids) / history["seconds"]
    return WordVectors(vocab, W_in.numpy()), history


def gensim_word2vec(sentences, cfg: Word2VecConfig | None = None, workers: int = 2, **kwargs):
    """Train gensim's skip-gram ``Word2Vec`` with the same hyper-parameters; return ``(WordVectors, seconds)``."""
    from gensim.models import Word2Vec

    cfg = cfg or Word2VecConfig(**kwargs)
    t0 = time.perf_counter()
    model = Word2Vec(sentences, vector_size=cfg.dim, window=cfg.window, negative=cfg.negative,
                     min_count=cfg.min_count, sample=cfg.sample, epochs=cfg.epochs, alpha=cfg.lr,
                     min_alpha=cfg.min_lr, sg=1, hs=0, seed=cfg.seed, workers=workers)
    return WordVectors.from_gensim(model), time.perf_counter() - t0


def corpus_fingerprint(sentences) -> str:
    """SHA-256 (hex) of a tokenised corpus: every token in order and where each sentence ends.

    Two corpora get the same fingerprint only if they hold the same token lists, so
    a cached model keyed by it can never be answered for different text.
    """
    from .cache import fingerprint

    if isinstance(sentences, str) or (len(sentences) and isinstance(sentences[0], str)):
        raise TypeError("sentences must be a list of token lists, e.g. [['a', 'cat'], ['the', 'dog']]")
    flat = [w for s in sentences for w in s]
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    return fingerprint(fingerprint(flat) + fingerprint(lengths))


def word2vec_recipe(sentences, cfg: Word2VecConfig) -> dict:
    """The cache recipe of :func:`cached_word2vec`: the corpus fingerprint and every setting."""
    from dataclasses import asdict

    return {"what": "ptutils.word2vec.train_word2vec (skip-gram, negative sampling)",
            "config": asdict(cfg), "corpus": corpus_fingerprint(sentences),
            "sentences": len(sentences), "tokens": int(sum(len(s) for s in sentences))}


def cached_word2vec(sentences, cfg: Word2VecConfig | None = None, *, verbose: bool = True, **kwargs):
    """:func:`train_word2vec`, computed once per corpus and settings and then read from the cache.

    The cache key (:mod:`ptutils.cache`) hashes :func:`word2vec_recipe`: the corpus
    fingerprint (every token, every sentence boundary) and every field of ``cfg``,
    so changing one word of the corpus or one setting trains new vectors instead of
    loading stale ones. The vocabulary is rebuilt from ``sentences`` (it is a
    deterministic function of them) and checked against the stored word counts.

    Returns:
        ``(WordVectors, history)`` like :func:`train_word2vec`; ``history`` holds the
        loss per epoch and the training time of the run that made the vectors, and
        ``"key"``, the cache key.
    """
    from .cache import cached_arrays, recipe_key

    if cfg is not None and kwargs:
        raise TypeError("pass a Word2VecConfig or keyword arguments, not both")
    cfg = cfg or Word2VecConfig(**kwargs)
    recipe = word2vec_recipe(sentences, cfg)
    vocab = build_vocab(sentences, cfg.min_count)

    def compute():
        wv, hist = train_word2vec(sentences, cfg)
        return {"vectors": wv.vectors, "counts": wv.vocab.counts, "loss": np.asarray(hist["loss"]),
                "seconds": np.asarray(hist["seconds"])}

    arrays = cached_arrays("word2vec", recipe, compute, verbose=verbose)
    if not np.array_equal(arrays["counts"], vocab.counts):
        raise RuntimeError("the cached Word2Vec vectors do not match this corpus's vocabulary; "
                           "delete the cache file and run again")
    history = {"loss": arrays["loss"].tolist(), "seconds": float(arrays["seconds"]), "key": recipe_key(recipe)}
    return WordVectors(vocab, arrays["vectors"]), history

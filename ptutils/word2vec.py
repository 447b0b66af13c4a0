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

from .progress import Progress


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

    def __post_init__(self):
        at_least = {"dim": 1, "window": 1, "negative": 1, "min_count": 1, "epochs": 0, "batch_size": 1,
                    "share_negatives": 1}
        for name, low in at_least.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"Word2VecConfig.{name} must be a whole number >= {low}, got {v!r}")
        if not self.sample >= 0:
            raise ValueError(f"Word2VecConfig.sample must be >= 0 (0 keeps every word), got {self.sample!r}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ValueError(f"Word2VecConfig needs lr > 0 and 0 <= min_lr <= lr, got lr={self.lr!r}, "
                             f"min_lr={self.min_lr!r}")


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
    bar = Progress(total=cfg.epochs, desc="word2vec", unit="epoch")
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
        bar.update()
        bar.set_postfix(loss=history["loss"][-1])
        if log:
            rate = (epoch + 1) * len(ids) / (time.perf_counter() - t0)
            print(f"epoch {epoch + 1}/{cfg.epochs}  loss {history['loss'][-1]:.4f}  "
                  f"{n_pairs:,} pairs  {rate:,.0f} words/s")
    bar.close()
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


# --- GloVe: weighted least squares on the log co-occurrence counts --------------------------


def cooccurrence_matrix(sentences, vocab: Vocab, window: int = 5, weighting: str = "harmonic"):
    """Symmetric word-word co-occurrence counts ``X`` over a vocabulary, as a SciPy CSR matrix.

    ``X[i, j]`` adds up, over every position of word ``i`` and every position of word
    ``j`` at most ``window`` tokens away in the same sentence, ``1 / distance``
    (``weighting="harmonic"``, GloVe's choice) or ``1`` (``weighting="uniform"``: plain
    counts, what the chapter's ``context_counts`` loop counts for one word). Distances
    are measured in the text as written: a word outside the vocabulary still occupies
    its position, it only contributes no row or column.

    Shapes:
        output: ``(len(vocab), len(vocab))`` float64, symmetric.
    """
    from scipy.sparse import coo_matrix

    if isinstance(sentences, str) or (len(sentences) and isinstance(sentences[0], str)):
        raise TypeError("sentences must be a list of token lists, e.g. [['a', 'cat'], ['the', 'dog']]")
    if weighting not in ("harmonic", "uniform"):
        raise ValueError(f"weighting must be 'harmonic' or 'uniform', got {weighting!r}")
    if not (isinstance(window, (int, np.integer)) and window >= 1):
        raise ValueError(f"window must be a positive integer, got {window!r}")
    ids = np.array([vocab.index.get(w, -1) for s in sentences for w in s], dtype=np.int64)  # -1: OOV
    sent = np.array([k for k, s in enumerate(sentences) for _ in s], dtype=np.int64)
    rows, cols, vals = [], [], []
    for dist in range(1, min(window, max(len(ids) - 1, 0)) + 1):
        a, b = ids[:-dist], ids[dist:]  # word at i and word at i + dist
        ok = (sent[:-dist] == sent[dist:]) & (a >= 0) & (b >= 0)
        w = np.full(int(ok.sum()), 1.0 / dist if weighting == "harmonic" else 1.0)
        rows += [a[ok], b[ok]]  # both directions: X is symmetric
        cols += [b[ok], a[ok]]
        vals += [w, w]
    V = len(vocab)
    if not rows:
        return coo_matrix((V, V)).tocsr()
    X = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(V, V))
    return X.tocsr()  # duplicates are summed


def glove_weight(x, x_max: float = 100.0, alpha: float = 0.75):
    """GloVe's weighting function ``f(x) = min(1, (x / x_max) ** alpha)`` (Pennington et al., 2014).

    It is 0 at ``x = 0`` (pairs never seen carry no weight), grows as a power below
    ``x_max``, and caps at 1 so that the most frequent pairs do not dominate.
    """
    if x_max <= 0 or alpha <= 0:
        raise ValueError(f"x_max and alpha must be positive, got x_max={x_max}, alpha={alpha}")
    x = torch.as_tensor(x)
    if (x < 0).any():
        raise ValueError("co-occurrence counts must be non-negative")
    return torch.clamp(x / x_max, max=1.0) ** alpha


def glove_loss_and_grads(w, w_ctx, b, b_ctx, log_x, f):
    """GloVe's weighted least-squares loss over a batch of non-zero counts, and its gradients by hand.

    ``J = sum_k f_k (w_k · w~_k + b_k + b~_k - log X_k)^2`` over the batch's entries
    ``k = (i, j)``. With the residual ``e_k``, ``dJ/dw_k = 2 f_k e_k w~_k``,
    ``dJ/dw~_k = 2 f_k e_k w_k`` and ``dJ/db_k = dJ/db~_k = 2 f_k e_k``.

    Returns:
        ``(loss, dJ/dw, dJ/dw~, dJ/db, dJ/db~)``, gradients with their inputs' shapes.

    Shapes:
        w, w_ctx: ``(B, d)`` rows of the word and context vectors of the batch's entries;
        b, b_ctx, log_x, f: ``(B,)``.
    """
    e = (w * w_ctx).sum(-1) + b + b_ctx - log_x  # (B,) residuals
    g = 2 * f * e  # (B,) dJ/de
    loss = (f * e * e).sum()
    return loss, g.unsqueeze(-1) * w_ctx, g.unsqueeze(-1) * w, g, g


def glove_loss(X, w, w_ctx, b, b_ctx, x_max: float = 100.0, alpha: float = 0.75):
    """The full GloVe objective ``J`` of a co-occurrence matrix (dense array, tensor or SciPy sparse).

    Only non-zero entries count (``f(0) = 0``, and ``log 0`` is never taken).

    Shapes:
        X: ``(V, V)``; w, w_ctx: ``(V, d)``; b, b_ctx: ``(V,)``.
    """
    i, j, x = _nonzero_entries(X)
    w, w_ctx, b, b_ctx = (torch.as_tensor(t, dtype=torch.float64) for t in (w, w_ctx, b, b_ctx))
    V = X.shape[0]
    if w.shape[0] != V or w_ctx.shape[0] != V or b.shape != (V,) or b_ctx.shape != (V,):
        raise ValueError(f"parameters do not match X of shape {tuple(X.shape)}: w {tuple(w.shape)}, "
                         f"w~ {tuple(w_ctx.shape)}, b {tuple(b.shape)}, b~ {tuple(b_ctx.shape)}")
    x = torch.from_numpy(x)
    loss, *_ = glove_loss_and_grads(w[i], w_ctx[j], b[i], b_ctx[j], torch.log(x), glove_weight(x, x_max, alpha))
    return float(loss)


def _nonzero_entries(X):
    """``(i, j, x)`` NumPy arrays of the non-zero entries of a square, non-negative, finite matrix."""
    from scipy import sparse

    if sparse.issparse(X):
        X = X.tocoo()
        i, j, x = X.row.astype(np.int64), X.col.astype(np.int64), np.asarray(X.data, dtype=np.float64)
        shape = X.shape
    else:
        A = np.asarray(X.detach().cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float64)
        shape = A.shape
        if A.ndim != 2:
            raise ValueError(f"the co-occurrence matrix must be 2-D, got shape {shape}")
        i, j = np.nonzero(A)
        x = A[i, j]
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"the co-occurrence matrix must be square (words x words), got shape {tuple(shape)}")
    if not np.isfinite(x).all():
        raise ValueError("the co-occurrence matrix holds NaN or infinite counts")
    if (x < 0).any():
        raise ValueError("co-occurrence counts must be non-negative; found a negative entry")
    keep = x > 0
    if not keep.any():
        raise ValueError("the co-occurrence matrix has no positive entry: nothing to fit")
    return i[keep], j[keep], x[keep]


@dataclass
class GloVeConfig:
    """GloVe's hyper-parameters; the defaults are the paper's (``x_max=100``, ``alpha=3/4``,
    AdaGrad with learning rate 0.05, 50 passes for vectors under 300 dimensions).

    ``batch_size`` non-zero entries are updated at once (the reference code updates
    after every entry, in parallel threads).
    """

    dim: int = 100
    x_max: float = 100.0
    alpha: float = 0.75
    lr: float = 0.05
    epochs: int = 50
    batch_size: int = 16384
    seed: int = 0


def train_glove(X, vocab: Vocab | None = None, cfg: GloVeConfig | None = None, *, log: bool = False, **kwargs):
    """Fit GloVe to a co-occurrence matrix with AdaGrad; return ``(vectors, history)``.

    Each epoch visits the non-zero entries of ``X`` in a new random order, in batches:
    :func:`glove_loss_and_grads` gives the gradients of the batch's rows, which are
    summed per word (``index_add_``) and applied, to the rows the batch touches only,
    with the reference code's AdaGrad: ``θ <- θ - lr · g / sqrt(G)``, ``G`` the running
    sum of the squared *scaled* steps ``(lr · g)²``, started at 1. While ``G`` is near 1
    this is SGD with learning rate ``lr``; later it is ``g / sqrt(Σ g²)``, whatever ``lr``.
    The word vectors returned are ``w + w~``, the paper's choice.

    Args:
        X: ``(V, V)`` non-negative co-occurrence counts (SciPy sparse, array or tensor).
        vocab: the words of ``X``'s rows; with it the result is a :class:`WordVectors`,
            without it the tuple ``(w, w~, b, b~)`` of float64 tensors.
        cfg: a :class:`GloVeConfig`, or keyword arguments for one.
        log: print the loss every tenth epoch.

    Returns:
        The vectors and a history dict: ``"loss"`` (J per epoch, divided by the
        number of non-zero entries), ``"seconds"`` and ``"nonzero"``.
    """
    if cfg is not None and kwargs:
        raise TypeError("pass a GloVeConfig or keyword arguments, not both")
    cfg = cfg or GloVeConfig(**kwargs)
    t0 = time.perf_counter()
    i_np, j_np, x_np = _nonzero_entries(X)
    V = X.shape[0]
    if vocab is not None and len(vocab) != V:
        raise ValueError(f"X has {V} rows but the vocabulary has {len(vocab)} words")
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    d = cfg.dim
    W = (torch.rand(2 * V, d, generator=gen) - 0.5) / d  # rows 0..V-1: w, V..2V-1: w~
    bias = (torch.rand(2 * V, generator=gen) - 0.5) / d
    W_sq, bias_sq = torch.ones_like(W), torch.ones_like(bias)  # AdaGrad's sums of squared gradients
    i_all, j_all = torch.from_numpy(i_np), torch.from_numpy(j_np) + V
    x_all = torch.from_numpy(x_np).float()
    log_x_all, f_all = torch.log(x_all), glove_weight(x_all, cfg.x_max, cfg.alpha)
    n = len(x_np)
    history = {"loss": [], "seconds": None, "nonzero": n}
    bar = Progress(total=cfg.epochs, desc="glove", unit="epoch")
    for epoch in range(cfg.epochs):
        perm = torch.from_numpy(rng.permutation(n))
        total = 0.0
        for start in range(0, n, cfg.batch_size):
            k = perm[start:start + cfg.batch_size]
            i, j = i_all[k], j_all[k]  # (B,) rows of w and of w~
            loss, g_w, g_wc, g_b, g_bc = glove_loss_and_grads(W[i], W[j], bias[i], bias[j], log_x_all[k], f_all[k])
            rows, inv = torch.unique(torch.cat([i, j]), return_inverse=True)  # the rows the batch touches
            G = torch.zeros(len(rows), d).index_add_(0, inv, torch.cat([g_w, g_wc]))  # (R, d) summed per row
            Gb = torch.zeros(len(rows)).index_add_(0, inv, torch.cat([g_b, g_bc]))  # (R,)
            # the reference code's AdaGrad: it accumulates the squares of the *scaled* steps lr * g,
            # so theta <- theta - lr g / sqrt(1 + sum (lr g)^2) = theta - g / sqrt(1 / lr^2 + sum g^2)
            W_sq[rows] += (cfg.lr * G) ** 2
            bias_sq[rows] += (cfg.lr * Gb) ** 2
            W[rows] -= cfg.lr * G / W_sq[rows].sqrt()
            bias[rows] -= cfg.lr * Gb / bias_sq[rows].sqrt()
            total += float(loss)
        history["loss"].append(total / n)
        bar.update()
        bar.set_postfix(loss=history["loss"][-1])
        if log and ((epoch + 1) % 10 == 0 or epoch == 0 or epoch + 1 == cfg.epochs):
            print(f"epoch {epoch + 1}/{cfg.epochs}  J per entry {history['loss'][-1]:.4f}")
    bar.close()
    history["seconds"] = time.perf_counter() - t0
    w, w_ctx, b, b_ctx = W[:V], W[V:], bias[:V], bias[V:]
    if vocab is None:
        return (w, w_ctx, b, b_ctx), history
    return WordVectors(vocab, (w + w_ctx).numpy()), history


# --- paired comparisons of two sets of vectors on the same benchmark items -----------------


def word_pair_items(path, *vectors):
    """The pairs of a similarity benchmark that every one of ``vectors`` covers, with their human scores.

    Returns:
        ``(pairs, scores)``: a list of ``(word1, word2)`` (lower-cased) and a ``(P,)`` array.
    """
    from pathlib import Path

    pairs, scores = [], []
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        a, b, s = line.split("\t")[:3]
        a, b = a.lower(), b.lower()
        if all(a in v and b in v for v in vectors):
            pairs.append((a, b))
            scores.append(float(s))
    return pairs, np.array(scores)


def paired_spearman_difference(scores, sims_a, sims_b, *, n_boot: int = 2000, confidence: float = 0.95,
                               seed: int = 0) -> dict:
    """Spearman's ρ of A minus ρ of B against the same human scores, with a paired bootstrap interval.

    Both models rate the same word pairs, so each bootstrap sample draws pairs with
    replacement and recomputes *both* correlations on it; the interval is the
    percentile interval of the difference.

    Returns:
        ``{"diff", "low", "high", "a", "b", "n"}``.
    """
    from scipy.stats import rankdata

    scores, sims_a, sims_b = (np.asarray(t, dtype=np.float64) for t in (scores, sims_a, sims_b))
    if scores.ndim != 1 or scores.shape != sims_a.shape or scores.shape != sims_b.shape or len(scores) < 3:
        raise ValueError(f"scores and both similarity arrays must be paired 1-D arrays of at least 3 items, "
                         f"got shapes {scores.shape}, {sims_a.shape}, {sims_b.shape}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot}")

    def rho(idx):  # (m, P) resampled indices -> (m, 3) ranks' Pearson correlations
        r = [np.apply_along_axis(rankdata, 1, t[idx]) for t in (scores, sims_a, sims_b)]
        r = [x - x.mean(1, keepdims=True) for x in r]
        norm = [np.sqrt((x * x).sum(1)) for x in r]
        return ((r[0] * r[1]).sum(1) / (norm[0] * norm[1]), (r[0] * r[2]).sum(1) / (norm[0] * norm[2]))

    n = len(scores)
    ra, rb = rho(np.arange(n)[None])
    rng = np.random.default_rng(seed)
    a, b = rho(rng.integers(0, n, size=(n_boot, n)))
    ok = np.isfinite(a) & np.isfinite(b)  # a sample of tied scores has no correlation
    alpha = (1 - confidence) / 2
    low, high = np.quantile((a - b)[ok], [alpha, 1 - alpha])
    return {"diff": float(ra[0] - rb[0]), "low": float(low), "high": float(high), "a": float(ra[0]),
            "b": float(rb[0]), "n": n}


def analogy_answers(wv: WordVectors, path):
    """Answer every analogy question ``a : b :: c : ?`` whose four words ``wv`` knows (3CosAdd).

    The answer is the word whose unit vector is closest in cosine to
    ``unit(b) - unit(a) + unit(c)``, the three question words excluded (gensim's rule).

    Returns:
        ``(questions, predicted)``: a list of ``(a, b, c, d)`` (lower-cased) and a ``(Q,)``
        array of the predicted words' ids; ``predicted == [vocab.index[d] ...]`` marks the
        correct answers.
    """
    from pathlib import Path

    qs = []
    for line in Path(path).read_text().splitlines():
        if line.startswith(":") or not line.strip():
            continue
        q = tuple(line.lower().split())
        if len(q) == 4 and all(w in wv for w in q):
            qs.append(q)
    if not qs:
        return [], np.zeros(0, dtype=np.int64)
    ids = np.array([[wv.vocab.index[w] for w in q] for q in qs])  # (Q, 4)
    U = wv.unit
    pred = np.empty(len(qs), dtype=np.int64)
    for s in range(0, len(qs), 1024):
        q = ids[s:s + 1024]
        target = U[q[:, 1]] - U[q[:, 0]] + U[q[:, 2]]  # (q, d)
        sims = target @ U.T  # (q, V)
        np.put_along_axis(sims, q[:, :3], -np.inf, axis=1)
        pred[s:s + 1024] = sims.argmax(1)
    return qs, pred

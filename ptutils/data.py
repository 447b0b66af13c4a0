"""Offline data sets: everything here ships inside an installed package.

No function in this module touches the network. Where a reader online would use a
bigger data set, the chapter says which, behind ``ptutils.is_online()``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def gensim_data_path(name: str) -> Path:
    """Path of a file in gensim's shipped test data (e.g. ``"lee_background.cor"``)."""
    from gensim.test.utils import datapath

    path = Path(datapath(name))
    if not path.exists():
        raise FileNotFoundError(
            f"{name!r} is not in gensim's test data at {path.parent}; is gensim installed "
            "from a wheel (pip install -r requirements.txt)?"
        )
    return path


def load_polarity() -> tuple[list[str], np.ndarray]:
    """The 200 labelled movie-review sentences shipped with gensim (Pang & Lee polarity).

    Each line of ``pang_lee_polarity.cor`` (Latin-1 encoded) reads
    ``__label__pos <sentence>`` or ``__label__neg <sentence>``.

    Returns:
        ``(texts, labels)``: the sentences (lower-cased, tokens separated by spaces,
        as shipped) and an int array with 1 = positive, 0 = negative.
    """
    texts, labels = [], []
    raw = gensim_data_path("pang_lee_polarity.cor").read_text(encoding="latin-1")
    for lineno, line in enumerate(raw.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        tag, _, text = line.partition(" ")
        if tag not in ("__label__pos", "__label__neg") or not text:
            raise ValueError(f"pang_lee_polarity.cor line {lineno}: unexpected format {line[:40]!r}")
        texts.append(text.strip())
        labels.append(1 if tag == "__label__pos" else 0)
    return texts, np.asarray(labels, dtype=np.int64)


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 digit images, scaled to [0, 1].

    Returns:
        ``(images, labels)`` with shapes ``(1797, 8, 8)`` float32 and ``(1797,)`` int64.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


_TOKEN = None

#: Word-level special tokens and their indices, shared by every word vocabulary in the book
#: (:func:`ptutils.textclf.word_index`, :meth:`ptutils.word2vec.WordVectors.to_embedding`,
#: :func:`ptutils.seq_autoencoder.make_word_index`): padding is 0, unknown words are 1 and,
#: where a decoder needs it, the begin-of-sentence token is 2. (The WordPiece tokenizer of
#: chapter 8 has BERT's own, :data:`ptutils.mlm.WORDPIECE_SPECIALS`.)
PAD, UNK, BOS = 0, 1, 2
PAD_TOKEN, UNK_TOKEN, BOS_TOKEN = "<pad>", "<unk>", "<bos>"


def tokenize(text: str, *, remove_stopwords: bool = False) -> list[str]:
    """Lower-case, then split into word tokens with NLTK (no downloaded data needed).

    Lower-casing comes first, so that "The" and "the" are the same word and stop-word
    removal (scikit-learn's English list) catches both.
    """
    global _TOKEN
    if _TOKEN is None:
        from nltk.tokenize import RegexpTokenizer

        _TOKEN = RegexpTokenizer(r"[a-z]+(?:'[a-z]+)?")
    tokens = _TOKEN.tokenize(text.lower())
    if remove_stopwords:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        tokens = [t for t in tokens if t not in ENGLISH_STOP_WORDS]
    return tokens


def _wiki_tokenizer(text, token_min_len, token_max_len, lower):
    """``tokenize`` with the signature gensim's ``WikiCorpus`` expects (module level, so it pickles)."""
    return [t for t in tokenize(text) if token_min_len <= len(t) <= token_max_len]


def load_text_corpus(which: str = "all") -> list[list[str]]:
    """Unlabelled English text for word embeddings, as a list of token lists.

    ``"wiki"``: the 106 Wikipedia articles gensim ships
    (``enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``, read
    with gensim's ``WikiCorpus``, about 450k tokens), one token list per article;
    ``"lee"``: ``lee_background.cor``, 300 news stories (about 60k tokens), one per line;
    ``"all"``: both.
    """
    if which not in ("wiki", "lee", "all"):
        raise ValueError(f"which must be 'wiki', 'lee' or 'all', got {which!r}")
    out = []
    if which in ("wiki", "all"):
        from gensim.corpora.wikicorpus import WikiCorpus

        path = gensim_data_path("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")

        wc = WikiCorpus(str(path), dictionary={}, tokenizer_func=_wiki_tokenizer, processes=1, token_min_len=1)
        out += [list(t) for t in wc.get_texts()]
    if which in ("lee", "all"):
        text = gensim_data_path("lee_background.cor").read_text(encoding="utf-8")
        out += [tokenize(line) for line in text.splitlines() if line.strip()]
    return out


# --- The sentence-polarity benchmark (Pang & Lee 2005, "MR") ------------------------------

RT_POLARITY_FILES = {  # file -> (label, number of snippets, SHA-256 of the bytes)
    "rt-polarity.pos": (1, 5331, "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0"),
    "rt-polarity.neg": (0, 5331, "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca"),
}
RT_POLARITY_TEST_SIZE = 2000
#: Published accuracies on this benchmark (10-fold cross-validation over all 10,662
#: snippets, so not on the book's fixed test set), with their sources; quoted, not computed.
RT_POLARITY_PUBLISHED = {
    "NB-SVM, word bigrams": (0.794, "wang2012baselines"),
    "CNN, random word vectors": (0.761, "kim2014convolutional"),
    "CNN, frozen word2vec": (0.810, "kim2014convolutional"),
    "CNN, fine-tuned word2vec": (0.815, "kim2014convolutional"),
}


def rt_polarity_dir() -> Path:
    """The folder that ships the benchmark inside the package (``ptutils/datasets/rt-polarity``)."""
    return Path(__file__).resolve().parent / "datasets" / "rt-polarity"


def load_rt_polarity(folder=None) -> tuple[list[str], np.ndarray]:
    """The 10,662 snippets of the sentence-polarity benchmark, checksums verified.

    Positive snippets come first (5,331), then negative (5,331), in file order. The
    bytes are Windows-1252; they are decoded as such and split on ``"\\n"`` only (a
    Latin-1 decode plus ``splitlines()`` would break 23 snippets at U+0085).

    Args:
        folder: where ``rt-polarity.pos`` and ``rt-polarity.neg`` are; default: the copy
            shipped in the package.

    Returns:
        ``(texts, labels)``: 10,662 strings and an int64 array, 1 = positive, 0 = negative.

    Raises:
        FileNotFoundError: a file is missing. ValueError: a file's bytes are not the
        published ones (checksum), or it does not hold the expected number of snippets.
    """
    import hashlib

    folder = rt_polarity_dir() if folder is None else Path(folder)
    texts, labels = [], []
    for name, (label, count, sha) in RT_POLARITY_FILES.items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"the sentence-polarity benchmark file {path} is missing; it ships with "
                                    "ptutils (reinstall with pip install -e .)")
        raw = path.read_bytes()
        got = hashlib.sha256(raw).hexdigest()
        if got != sha:
            raise ValueError(f"{path} has been altered: SHA-256 {got[:12]}... is not the published "
                             f"{sha[:12]}...; restore the original file")
        lines = raw.decode("cp1252").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = [line.strip() for line in lines]
        if len(lines) != count or not all(lines):
            raise ValueError(f"{path}: expected {count} non-empty snippets, got {len(lines)}")
        texts += lines
        labels += [label] * count
    return texts, np.asarray(labels, dtype=np.int64)


class Benchmark:
    """The benchmark with the book's fixed split; one object every text chapter shares.

    Attributes:
        texts, labels: all snippets (10,662 in full mode) and their labels.
        test: indices of the fixed test set (2,000, stratified): never used for
            training, model selection or pre-training.
        pool: indices of everything else (8,662): the labelled pool and the
            unlabelled pre-training text.
        fast: whether this is fast mode's sub-sample (a stratified part of the same
            test set and pool, so fast and full mode never disagree about which
            sentence is a test sentence).
    """

    def __init__(self, texts, labels, test, pool, *, seed: int, fast: bool):
        self.texts, self.labels = texts, labels
        self.test, self.pool = np.asarray(test), np.asarray(pool)
        self.seed, self.fast = seed, fast
        if np.intersect1d(self.test, self.pool).size:
            raise AssertionError("test and pool overlap")

    def __repr__(self) -> str:
        return (f"Benchmark(sentence polarity: {len(self.test)} test, {len(self.pool)} pool, "
                f"{'fast sub-sample' if self.fast else 'full'})")

    def text(self, idx) -> list[str]:
        """The snippets at indices ``idx``."""
        return [self.texts[i] for i in np.asarray(idx)]

    def y(self, idx) -> np.ndarray:
        """The labels at indices ``idx``."""
        return self.labels[np.asarray(idx)]

    def split_pool(self, val_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Carve a stratified validation set of ``val_per_class`` per class out of the pool.

        Returns ``(train, val)`` index arrays; together they are the pool.
        """
        rng = np.random.default_rng([self.seed, 1, seed])
        val = []
        for c in (0, 1):
            members = self.pool[self.labels[self.pool] == c]
            if not 0 < val_per_class < len(members):
                raise ValueError(f"val_per_class must be in 1..{len(members) - 1}, got {val_per_class}")
            val.append(rng.permutation(members)[:val_per_class])
        val = np.sort(np.concatenate(val))
        return np.setdiff1d(self.pool, val), val

    def labelled(self, k: int, draw: int = 0, within=None) -> np.ndarray:
        """A draw of ``k`` labelled examples per class from ``within`` (default: the pool).

        Draws are *nested*: for the same ``draw``, the subset for ``k`` contains the
        subset for every smaller ``k``, so a learning curve adds labels rather than
        resampling them. A ``k`` larger than a class takes the whole class.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1 labelled examples per class, got {k}")
        within = self.pool if within is None else np.asarray(within)
        rng = np.random.default_rng([self.seed, 2, draw])
        out = []
        for c in (0, 1):
            members = np.sort(within[self.labels[within] == c])
            out.append(rng.permutation(members)[:k])
        return np.sort(np.concatenate(out))

    def fingerprint(self) -> str:
        """A hash of the texts, labels and split: part of every cached artefact's recipe."""
        from .cache import fingerprint

        return fingerprint("\n".join(self.texts) + "|" + fingerprint(self.labels) + "|"
                           + fingerprint(self.test) + "|" + fingerprint(self.pool))


def rt_polarity_benchmark(*, seed: int = 0, test_size: int = RT_POLARITY_TEST_SIZE,
                          fast: bool | None = None) -> Benchmark:
    """The sentence-polarity benchmark with the book's fixed, stratified test set.

    The test set is ``test_size`` snippets (half per class) drawn with
    ``numpy.random.default_rng(seed)``; the pool is the rest. In fast mode
    (``PTUTILS_FAST=1``, or ``fast=True``) both are cut to stratified sub-samples
    (400 test, 1,200 pool) *of the same split*, so tests run in seconds.
    """
    from .config import is_fast

    fast = is_fast() if fast is None else fast
    texts, labels = load_rt_polarity()
    if test_size % 2 or not 0 < test_size < len(texts):
        raise ValueError(f"test_size must be even and below {len(texts)}, got {test_size}")
    rng = np.random.default_rng(seed)
    test = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:test_size // 2]
                                   for c in (0, 1)]))
    pool = np.setdiff1d(np.arange(len(texts)), test)
    if fast:
        sub = np.random.default_rng([seed, 3])
        test = np.sort(np.concatenate([sub.permutation(test[labels[test] == c])[:200] for c in (0, 1)]))
        pool = np.sort(np.concatenate([sub.permutation(pool[labels[pool] == c])[:600] for c in (0, 1)]))
    return Benchmark(texts, labels, test, pool, seed=seed, fast=fast)

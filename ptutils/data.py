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

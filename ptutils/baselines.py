"""The two linear classifiers every text chapter compares against, written once.

* :func:`tfidf_classifier`: TF-IDF of word 1- and 2-grams + logistic regression, the
  classical baseline trained from scratch (Wang & Manning 2012 make the case that
  such baselines are strong on short sentiment snippets);
* :func:`linear_probe`: logistic regression on frozen features, such as the
  MiniLM sentence embeddings (:func:`ptutils.pretrained.minilm_embeddings`).

Both take their regularisation strength ``C`` from :func:`choose_C`, which scores a
grid on *validation* data; the test set is never consulted.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
#: TF-IDF's grid: ``(C, n-gram range)``; unigrams or uni+bigrams is a design choice made on validation too.
TFIDF_GRID = tuple((C, ng) for C in C_GRID for ng in ((1, 1), (1, 2)))


def tfidf_from(params):
    """``tfidf_classifier`` from a ``(C, ngram_range)`` pair of :data:`TFIDF_GRID`."""
    C, ngram_range = params
    return tfidf_classifier(C, ngram_range)


def tfidf_classifier(C: float = 10.0, ngram_range=(1, 2)):
    """An unfitted scikit-learn pipeline: TF-IDF (word n-grams) then logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=tuple(ngram_range)),
                         LogisticRegression(C=C, max_iter=2000))


def linear_probe(C: float = 1.0):
    """An unfitted logistic regression for frozen features (a *linear probe*)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=2000)


def choose_C(make: Callable, X_train, y_train, X_val, y_val, grid: Sequence[float] = C_GRID) -> tuple[float, dict]:
    """The ``C`` in ``grid`` with the best validation accuracy (ties: the smaller, simpler ``C``).

    Args:
        make: ``make(C)`` returns an unfitted classifier (``tfidf_classifier``, ``linear_probe``).
        X_train, y_train: what the classifier is fitted on.
        X_val, y_val: held-out data that scores each ``C``; never the test set.

    Returns:
        ``(best_C, {C: validation accuracy})``.
    """
    y_train, y_val = np.asarray(y_train), np.asarray(y_val)
    if len(y_val) == 0 or len(np.unique(y_train)) < 2:
        raise ValueError("choose_C needs validation examples and at least two classes in training")
    scores = {}
    for C in grid:
        clf = make(C).fit(X_train, y_train)
        scores[C] = float((clf.predict(X_val) == y_val).mean())
    best = max(scores.values())
    return min(C for C, s in scores.items() if s == best), scores


def fit_predict(make: Callable, X_train, y_train, X_test, *, X_val=None, y_val=None,
                grid: Sequence[float] = C_GRID) -> tuple[np.ndarray, float]:
    """Choose ``C`` on validation data (if given), fit on the training data, predict the test data.

    Returns:
        ``(test predictions, chosen C)``.
    """
    C = grid[len(grid) // 2] if X_val is None else choose_C(make, X_train, y_train, X_val, y_val, grid)[0]
    return np.asarray(make(C).fit(X_train, y_train).predict(X_test)), C

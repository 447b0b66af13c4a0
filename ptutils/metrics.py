"""Evaluation: repeated cross-validation with error bars."""

from __future__ import annotations

from typing import Callable

import numpy as np


def repeated_cv(fit_predict: Callable, labels, *, n_splits: int = 5, n_repeats: int = 10,
                seed: int = 0) -> np.ndarray:
    """Accuracy of ``fit_predict`` over repeated stratified k-fold cross-validation.

    Args:
        fit_predict: ``fit_predict(train_idx, test_idx, fold_seed) -> predicted labels``
            for the test indices; it trains on ``train_idx`` only.
        labels: the ``(N,)`` labels.
        n_splits, n_repeats: ``n_repeats`` shuffles of ``n_splits``-fold CV.
        seed: seeds the shuffles; fold ``i`` gets ``fold_seed = seed + i``.

    Returns:
        An array of ``n_splits * n_repeats`` test accuracies, one per fold.
    """
    from sklearn.model_selection import RepeatedStratifiedKFold

    y = np.asarray(labels)
    cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    scores = []
    for i, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y)):
        pred = np.asarray(fit_predict(tr, te, seed + i))
        if pred.shape != te.shape:
            raise ValueError(f"fit_predict returned {pred.shape} predictions for {te.shape} test items")
        scores.append(float((pred == y[te]).mean()))
    return np.asarray(scores)


def mean_std(scores) -> tuple[float, float]:
    """Mean and (sample) standard deviation of fold scores."""
    s = np.asarray(scores, dtype=float)
    return float(s.mean()), float(s.std(ddof=1)) if len(s) > 1 else 0.0

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


def classification_metrics(y_true, y_pred, positive: int = 1) -> dict:
    """Accuracy, precision, recall and F1 for binary labels (``positive`` is the class of interest).

    precision = TP / (TP + FP): of the examples predicted positive, the share that are;
    recall    = TP / (TP + FN): of the positive examples, the share that are found;
    F1 = 2 · precision · recall / (precision + recall). A ratio with a zero
    denominator is reported as 0.0.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}")
    if len(y_true) == 0:
        raise ValueError("no examples to evaluate")
    tp = int(((y_pred == positive) & (y_true == positive)).sum())
    fp = int(((y_pred == positive) & (y_true != positive)).sum())
    fn = int(((y_pred != positive) & (y_true == positive)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float((y_true == y_pred).mean()), "precision": precision, "recall": recall, "f1": f1}

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


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of examples of true class ``i`` predicted as class ``j``.

    Rows are true classes, columns predicted classes (scikit-learn's convention).
    For two classes with 1 = positive: ``C = [[TN, FP], [FN, TP]]``.

    Args:
        y_true, y_pred: 1-D integer labels ``0 .. num_classes - 1`` of equal length.
        num_classes: defaults to one more than the largest label seen.

    Shapes:
        output: ``(num_classes, num_classes)`` int64.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}")
    if len(y_true) == 0:
        raise ValueError("no examples to evaluate")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ValueError(f"{name} must hold non-negative integer class labels, got dtype {y.dtype}")
    k = int(max(y_true.max(), y_pred.max())) + 1 if num_classes is None else num_classes
    if max(y_true.max(), y_pred.max()) >= k:
        raise ValueError(f"a label is >= num_classes={k}")
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k).astype(np.int64)


def per_class_report(y_true, y_pred, num_classes: int | None = None) -> dict:
    """Precision, recall and F1 of every class (one-vs-rest), and their macro averages.

    The macro average weighs every class equally, so a rare class counts as much as
    a frequent one; accuracy weighs every *example* equally.

    Returns:
        A dict: ``precision``, ``recall``, ``f1`` and ``support`` (arrays of shape
        ``(K,)``, support = true examples per class), ``macro_f1`` and ``accuracy``
        (floats). A ratio with a zero denominator is 0.
    """
    C = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(C).astype(float)
    predicted, actual = C.sum(0), C.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual,
            "macro_f1": float(f1.mean()), "accuracy": float(tp.sum() / C.sum())}

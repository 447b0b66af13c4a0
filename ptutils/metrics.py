"""Evaluation: accuracy with intervals and paired tests, cross-validation, retrieval and box metrics, latency."""

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
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
            raise TypeError(f"{name} must hold integer class labels (e.g. 0/1), got dtype {y.dtype}"
                            f"{' (map label names such as pos/neg to 1/0 first)' if y.dtype.kind in 'USO' else ''}")
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


# --- Intervals and paired comparisons on a fixed test set ----------------------------------

def _z(confidence: float) -> float:
    from scipy.stats import norm

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(norm.ppf(0.5 + confidence / 2))


def _correct(y_true, y_pred) -> np.ndarray:
    """``(D, N)`` 0/1 array: whether each of D prediction rows is right on each of N examples."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array, got shape {y_true.shape}")
    if y_pred.ndim == 1:
        y_pred = y_pred[None]
    if y_pred.ndim != 2 or y_pred.shape[1] != len(y_true):
        raise ValueError(f"predictions must be (N,) or (draws, N) with N = {len(y_true)}, got {y_pred.shape}")
    if y_pred.dtype.kind not in "iub" or y_true.dtype.kind not in "iub":
        raise ValueError(f"labels and predictions must be integer class labels, got {y_true.dtype} and {y_pred.dtype}")
    return (y_pred == y_true[None]).astype(np.float64)


def accuracy_interval(y_true, y_pred, confidence: float = 0.95) -> dict:
    """Accuracy on a test set with its Wilson score interval.

    The interval answers "how much could the accuracy move if we had drawn another
    test set of the same size": it depends on the number of test examples ``n``,
    not on the model. (Wilson's interval stays inside [0, 1], unlike ``p ± z·SE``.)

    Returns:
        ``{"accuracy", "low", "high", "n"}``.
    """
    c = _correct(y_true, y_pred)
    if c.shape[0] != 1:
        raise ValueError("accuracy_interval takes one row of predictions; use paired_bootstrap for several draws")
    n, p, z = c.shape[1], float(c.mean()), _z(confidence)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"accuracy": p, "low": float(centre - half), "high": float(centre + half), "n": n}


def paired_bootstrap(y_true, pred_a, pred_b, *, n_boot: int = 4000, confidence: float = 0.95,
                     seed: int = 0) -> dict:
    """Accuracy of A minus accuracy of B on the *same* test examples, with a bootstrap interval.

    Pairing is the point: both models answered the same questions, so the
    difference is resampled question by question (a sentence both get right, or
    both get wrong, adds no noise). With several draws (rows: ``(D, N)`` arrays,
    row ``d`` of A paired with row ``d`` of B, e.g. different draws of the labelled
    training set), the bootstrap resamples the draws *and* the test examples, so
    the interval covers both sources of variation.

    Args:
        y_true: ``(N,)`` labels. pred_a, pred_b: ``(N,)`` or ``(D, N)`` predicted labels.

    Returns:
        ``{"diff", "low", "high", "a", "b", "n", "draws"}``: the mean difference in
        accuracy, its percentile interval, the two mean accuracies and the sizes.
    """
    ca, cb = _correct(y_true, pred_a), _correct(y_true, pred_b)
    if ca.shape != cb.shape:
        raise ValueError(f"A and B must be paired: shapes {ca.shape} and {cb.shape} differ")
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot}")
    d = ca - cb  # (D, N) in {-1, 0, 1}
    draws, n = d.shape
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for start in range(0, n_boot, 500):  # chunks keep memory small
        m = min(500, n_boot - start)
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=m)  # (m, N) test-example counts
        per_draw = w @ d.T / n  # (m, D)
        if draws > 1:
            v = rng.multinomial(draws, np.full(draws, 1.0 / draws), size=m)  # (m, D) draw counts
            stats[start:start + m] = (per_draw * v).sum(1) / draws
        else:
            stats[start:start + m] = per_draw[:, 0]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return {"diff": float(d.mean()), "low": float(low), "high": float(high), "a": float(ca.mean()),
            "b": float(cb.mean()), "n": n, "draws": draws}


def paired_mean_difference(a, b, *, n_boot: int = 4000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Mean of ``a - b`` over paired measurements (one pair per test example), with a bootstrap interval.

    For continuous per-example scores, where :func:`paired_bootstrap` is for right/wrong
    answers: e.g. how much deleting the tokens one explanation ranks highest moves a
    model's score, against deleting random tokens, sentence by sentence.

    Returns:
        ``{"diff", "low", "high", "a", "b", "n"}``.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) == 0:
        raise ValueError(f"a and b must be paired non-empty 1-D arrays, got shapes {a.shape} and {b.shape}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot}")
    d = a - b
    rng = np.random.default_rng(seed)
    stats = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(n_boot)])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return {"diff": float(d.mean()), "low": float(low), "high": float(high), "a": float(a.mean()),
            "b": float(b.mean()), "n": len(d)}


def mcnemar(y_true, pred_a, pred_b) -> dict:
    """McNemar's exact test: do A and B have the same error rate on these test examples?

    Only the discordant examples count: ``b`` = A right and B wrong, ``c`` = A wrong
    and B right. Under "no difference" each discordant example is a fair coin, so
    the two-sided p-value is a binomial tail.

    Returns:
        ``{"a_only", "b_only", "p_value"}``.
    """
    from scipy.stats import binomtest

    ca, cb = _correct(y_true, pred_a), _correct(y_true, pred_b)
    if ca.shape[0] != 1 or cb.shape[0] != 1:
        raise ValueError("mcnemar compares one row of predictions per model")
    a_only = int(((ca == 1) & (cb == 0)).sum())
    b_only = int(((ca == 0) & (cb == 1)).sum())
    p = 1.0 if a_only + b_only == 0 else float(binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p}


def mcnemar_bounds(acc_a: float, acc_b: float, n: int) -> dict:
    """The smallest and largest McNemar p-values two accuracies on the *same* ``n`` examples allow.

    For runs that kept only their accuracies, not their per-example answers: a paired
    test cannot be run, but the accuracies bound it. A and B disagree on at least
    ``|right_A - right_B|`` examples (if each is right wherever the other is, but for
    those) and on at most as many as their right and wrong answers allow. McNemar's
    exact test (:func:`mcnemar`) is computed for every number of disagreements in
    between. ``p_max < 0.05``: detectable whatever the answers were; ``p_min >= 0.05``:
    not detectable whatever they were; otherwise the accuracies cannot tell.

    Returns:
        ``{"p_min", "p_max", "discordant_min", "discordant_max"}``.
    """
    from scipy.stats import binomtest

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    right_a, right_b = round(acc_a * n), round(acc_b * n)
    for name, acc, right in (("acc_a", acc_a, right_a), ("acc_b", acc_b, right_b)):
        if not 0 <= acc <= 1 or abs(acc * n - right) > 1e-6 * n:
            raise ValueError(f"{name} = {acc} is not a count of right answers out of n = {n}")
    d = right_a - right_b  # a_only - b_only, whatever the answers
    ps, totals = [], []
    for b_only in range(max(0, -d), n + 1):
        a_only = b_only + d
        # A alone right needs A right and B wrong; B alone right needs B right and A wrong
        if a_only > min(right_a, n - right_b) or b_only > min(right_b, n - right_a):
            break
        m = a_only + b_only
        ps.append(1.0 if m == 0 else float(binomtest(a_only, m, 0.5).pvalue))
        totals.append(m)
    return {"p_min": min(ps), "p_max": max(ps), "discordant_min": totals[0], "discordant_max": totals[-1]}


def verdict(low: float, high: float, *, better: str = "better", worse: str = "worse",
            same: str = "no detectable difference") -> str:
    """The word the prose may use for a difference with interval ``[low, high]``.

    ``better`` if the whole interval is above zero, ``worse`` if it is below, and
    ``same`` if it contains zero (which means *not detected*, not *equal*).
    """
    if not low <= high:
        raise ValueError(f"interval must have low <= high, got [{low}, {high}]")
    if low > 0:
        return better
    if high < 0:
        return worse
    return same


def format_interval(low: float, high: float, *, points: bool = True) -> str:
    """``"[+1.2, +3.4] points"`` (``points=True``) or ``"[71.2%, 74.9%]"`` for a proportion."""
    if points:
        return f"[{100 * low:+.1f}, {100 * high:+.1f}] points"
    return f"[{low:.1%}, {high:.1%}]"


def mcnemar_power(y_true, pred_a, pred_b, n: int, *, n_sim: int = 2000, alpha: float = 0.05,
                  seed: int = 0) -> float:
    """How often a test set of only ``n`` examples would detect the difference between A and B.

    A simulation, not a formula: test sets of ``n`` examples are drawn with
    replacement from the given ones (each example keeps its pair "A right?",
    "B right?"), and McNemar's exact test (:func:`mcnemar`) is run on each. The
    result is the share of simulated test sets on which the test rejects "no
    difference" at level ``alpha`` *and* points the same way as the difference on
    all the given examples (or either way, if that difference is 0). It answers
    "could an ``n``-example test set have separated these two models?"; a share
    near ``alpha`` means the difference is invisible at that size.

    Args:
        y_true: ``(N,)`` labels. pred_a, pred_b: ``(N,)`` predicted labels of the two models.
        n: size of each simulated test set. n_sim: number of simulated test sets.

    Returns:
        The estimated power, a float in [0, 1].
    """
    from scipy.stats import binom

    ca, cb = _correct(y_true, pred_a), _correct(y_true, pred_b)
    if ca.shape[0] != 1 or cb.shape[0] != 1:
        raise ValueError("mcnemar_power compares one row of predictions per model")
    if n < 1 or n_sim < 1:
        raise ValueError(f"n and n_sim must be positive, got n={n}, n_sim={n_sim}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    d = (ca - cb)[0].astype(np.int8)  # (N,) in {-1, 0, 1}
    rng = np.random.default_rng(seed)
    a_only, b_only = np.empty(n_sim, np.int64), np.empty(n_sim, np.int64)
    rows = max(1, 2_000_000 // n)  # chunks keep memory small for large n
    for start in range(0, n_sim, rows):
        sample = d[rng.integers(0, len(d), size=(min(rows, n_sim - start), n))]  # (rows, n)
        a_only[start:start + len(sample)] = (sample == 1).sum(1)
        b_only[start:start + len(sample)] = (sample == -1).sum(1)
    m = a_only + b_only
    p = np.minimum(1.0, 2 * binom.cdf(np.minimum(a_only, b_only), m, 0.5))  # exact two-sided, p = 0.5
    p[m == 0] = 1.0
    sign = np.sign(d.sum())
    right_way = (np.sign(a_only - b_only) == sign) if sign else np.ones(n_sim, bool)
    return float(((p <= alpha) & right_way).mean())


# ---- Retrieval and localisation ------------------------------------------------------
def recall_at_k(S, k):
    """Recall@k: the share of queries whose right answer is among their ``k`` best-scored items.

    Row ``i`` of the similarity matrix ``S`` scores every item for query ``i``, and the
    right answer to query ``i`` is item ``i``. An item that ties with the right answer
    is counted as ranked above it, so a scorer that gives every item the same score
    has recall 0, not 1.

    Shapes:
        S: ``(n, n)``. Returns a float in [0, 1].
    """
    S = np.asarray(S)
    better = (S >= np.diag(S)[:, None]).sum(1) - 1  # items scoring at least as high, other than the answer
    return float((better < k).mean())


def box_iou(a, b):
    """Intersection over union of boxes ``(x0, y0, x1, y1)``: two boxes, or two arrays of boxes row by row.

    Shapes:
        a, b: ``(4,)`` or ``(N, 4)``. Returns a scalar or ``(N,)``; 0 where both boxes are empty.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def mask_iou(a, b) -> np.ndarray:
    """Intersection over union of boolean masks, image by image; 0 where both masks are empty.

    Shapes:
        a, b: ``(N, H, W)`` bool. Returns ``(N,)``.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"mask_iou needs two (N, H, W) masks of one shape, got {a.shape} and {b.shape}")
    return (a & b).sum((1, 2)) / np.maximum((a | b).sum((1, 2)), 1)


# ---- Cost -------------------------------------------------------------------------------
def latency_ms(predict_one: Callable, inputs, *, warmup: int = 5, clock: Callable[[], float] | None = None) -> float:
    """Median wall time of ``predict_one(x)`` over ``inputs``, one call at a time, in milliseconds.

    The first ``warmup`` inputs are run once first and not timed (lazy initialisation,
    caches and the allocator would otherwise count against the first call). Calls run
    under ``torch.no_grad()``, as inference does. The median, not the mean, so that one
    interruption by another process does not move the result. It measures this machine:
    compare models timed on the same one.

    Args:
        predict_one: classifies (or embeds) one input; called as ``predict_one(x)``.
        inputs: the inputs, each timed once.
        warmup: how many of them are run untimed first.
        clock: seconds as a float (default :func:`time.perf_counter`).
    """
    import time

    import torch

    clock = time.perf_counter if clock is None else clock
    inputs = list(inputs)
    if not inputs:
        raise ValueError("latency_ms needs at least one input to time")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    times = []
    with torch.no_grad():
        for x in inputs[:warmup]:
            predict_one(x)
        for x in inputs:
            t0 = clock()
            predict_one(x)
            times.append(clock() - t0)
    return 1e3 * float(np.median(times))


def block_bootstrap_mean(x, block: int, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict:
    """The mean of a sequence of per-item numbers with a bootstrap interval that resamples *blocks*.

    Neighbouring items of a text stream (per-character losses, say) are correlated, so
    resampling single items would give too narrow an interval; resampling consecutive
    blocks of ``block`` items keeps that correlation inside each block. A leftover
    shorter than a block is dropped from the resampling (not from ``mean``).

    Returns:
        ``{"mean", "low", "high", "blocks"}``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"x must be a non-empty 1-D sequence, got shape {x.shape}")
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    n_blocks = len(x) // block
    if n_blocks < 2:
        raise ValueError(f"{len(x)} items make {n_blocks} block(s) of {block}: need at least 2")
    means = x[:n_blocks * block].reshape(n_blocks, block).mean(1)
    rng = np.random.default_rng(seed)
    boot = means[rng.integers(0, n_blocks, size=(n_boot, n_blocks))].mean(1)
    a = (1 - confidence) / 2
    return {"mean": float(x.mean()), "low": float(np.quantile(boot, a)), "high": float(np.quantile(boot, 1 - a)),
            "blocks": n_blocks}

"""The one evaluation protocol every text chapter follows on the sentence-polarity benchmark.

1. A fixed, stratified test set of 2,000 sentences (:func:`ptutils.data.rt_polarity_benchmark`)
   that no training run, model choice or pre-training ever sees.
2. A fixed validation set carved from the pool (:func:`split`); every
   hyper-parameter and design choice is made on it.
3. Labelled training sets drawn from the rest of the pool, ``k`` per class, nested
   across ``k`` (:meth:`ptutils.data.Benchmark.labelled`), several draws where ``k``
   is small (:func:`draws_for`).
4. Accuracy with a 95 % interval on the test set; models compared *paired* on the
   same test sentences and the same draws (:func:`ptutils.metrics.paired_bootstrap`,
   :func:`ptutils.metrics.mcnemar`); the verdict word follows from the interval
   (:func:`ptutils.metrics.verdict`).

Settings that differ between fast mode (tests) and full mode (the book) are chosen
here, once, with :func:`ptutils.pick`.
"""

from __future__ import annotations

import numpy as np

from .config import pick

#: Validation sentences per class (carved from the pool, never trained on).
VAL_PER_CLASS: int = pick(full=250, fast=50)
#: Labels per class on the learning curves; ``None`` means "every training sentence".
LABEL_GRID: list = pick(full=[4, 16, 64, 256, 1024, None], fast=[4, 16, None])
#: Draws of the labelled set at each ``k`` for the cheap linear models.
LINEAR_DRAWS: int = pick(full=5, fast=2)
#: Labels per class of the book's reference fine-tuning run (shared by chapters 1, 7, 12, 15).
REFERENCE_K: int = pick(full=1024, fast=16)
#: Fine-tuning settings that override ``FINETUNE_DEFAULTS`` (fast mode only: a smoke test).
FAST_SETTINGS: dict = pick(full={}, fast={"epochs": 1, "max_length": 32, "min_steps": 0})


def split(bench) -> tuple[np.ndarray, np.ndarray]:
    """``(train_pool, val)``: the pool without the validation set, and the validation set."""
    return bench.split_pool(VAL_PER_CLASS, seed=0)


def draws_for(k, *, expensive: bool = False) -> int:
    """How many draws of the labelled set to average at ``k`` labels per class.

    Few labels make the result depend on *which* sentences were labelled, so small
    ``k`` gets more draws; "all labels" (``k=None``) has only one possible draw.
    ``expensive=True`` (training a Transformer or an LSTM) uses two draws at
    ``k <= 64`` and one above, to fit the book's time budget (a fresh-clone CI run
    under 45 minutes on 2 cores). Two draws still let the paired bootstrap resample
    draws as well as test sentences; they estimate the between-draw spread
    poorly, so the chapters that use them read the interval, not the spread.
    """
    if k is None:
        return 1
    if expensive:
        return pick(full=2 if k <= 64 else 1, fast=1)
    return LINEAR_DRAWS


def train_set(bench, k, draw: int = 0) -> np.ndarray:
    """The labelled training indices for ``k`` per class (``None``: all of the training pool)."""
    train_pool, _ = split(bench)
    return np.sort(train_pool) if k is None else bench.labelled(k, draw, within=train_pool)


def label(k) -> str:
    """How a ``k`` is printed: ``"16"`` or ``"all"``."""
    return "all" if k is None else str(k)


def tfidf_predictions(bench, train_idx) -> tuple[np.ndarray, float]:
    """TF-IDF + logistic regression fitted on ``train_idx``; ``C`` and the n-grams chosen on validation.

    Returns ``(test predictions, chosen (C, ngram_range))``.
    """
    from .baselines import TFIDF_GRID, fit_predict, tfidf_from

    _, val = split(bench)
    train_idx = np.asarray(train_idx)

    def compute():
        pred, (C, ngram) = fit_predict(tfidf_from, bench.text(train_idx), bench.y(train_idx),
                                       bench.text(bench.test), X_val=bench.text(val), y_val=bench.y(val),
                                       grid=TFIDF_GRID)
        return {"pred": pred, "choice": np.array([TFIDF_GRID.index((C, ngram))])}

    out = _cached_fit("tfidf-predictions", bench, train_idx, {"grid": [[C, list(ng)] for C, ng in TFIDF_GRID]},
                      compute)
    return out["pred"], TFIDF_GRID[int(out["choice"][0])]


def _cached_fit(name: str, bench, train_idx, settings: dict, compute) -> dict:
    """A fitted baseline's test predictions, shared by every chapter that asks for the same fit.

    The recipe holds everything the result depends on: the benchmark's texts, labels and split,
    the training rows, the validation rows that choose ``C``, the grid, scikit-learn's version and
    the source of this module and of :mod:`ptutils.baselines`; a corrupted or stale file is recomputed.
    """
    import sklearn

    from .cache import cached_arrays, code_fingerprint, fingerprint

    _, val = split(bench)
    recipe = {"bench": bench.fingerprint(), "train": fingerprint(np.asarray(train_idx, dtype=np.int64)),
              "val": fingerprint(np.asarray(val, dtype=np.int64)), "sklearn": sklearn.__version__,
              "code": code_fingerprint(__name__, "ptutils.baselines"), **settings}
    return cached_arrays(name, recipe, compute, verbose=False)


def fit_probe(bench, features, train_idx):
    """The book's linear probe, fitted: logistic regression on ``features[train_idx]``, ``C`` chosen on validation.

    Args:
        bench: the benchmark (its validation split scores each ``C`` of :data:`ptutils.baselines.C_GRID`).
        features: ``(len(bench.texts), d)`` frozen features, rows indexed like ``bench.texts``
            (e.g. :func:`ptutils.pretrained.benchmark_embeddings`).
        train_idx: the labelled rows it learns from.

    Returns:
        ``(fitted probe, chosen C, {C: validation accuracy})``.
    """
    from .baselines import choose_C, linear_probe

    _, val = split(bench)
    X, y = features[train_idx], bench.y(train_idx)
    C, scores = choose_C(linear_probe, X, y, features[val], bench.y(val))
    return linear_probe(C).fit(X, y), C, scores


def probe_predictions(bench, features, train_idx) -> tuple[np.ndarray, float]:
    """The test predictions of :func:`fit_probe` and its ``C`` (cached: chapters share the same fits)."""
    from .baselines import C_GRID
    from .cache import fingerprint

    features = np.asarray(features)
    train_idx = np.asarray(train_idx)

    def compute():
        probe, C, _ = fit_probe(bench, features, train_idx)
        return {"pred": np.asarray(probe.predict(features[bench.test])), "choice": np.array([C_GRID.index(C)])}

    out = _cached_fit("probe-predictions", bench, train_idx,
                      {"features": fingerprint(features), "grid": list(C_GRID)}, compute)
    return out["pred"], C_GRID[int(out["choice"][0])]


def reference_finetune(bench, *, verbose: bool = True, **settings) -> dict:
    """The book's reference run: all-MiniLM-L6-v2 fine-tuned on ``REFERENCE_K`` labels per class.

    Mean-pooling head, :data:`ptutils.finetune.FINETUNE_DEFAULTS` unless overridden,
    validation accuracy after the epochs :func:`ptutils.finetune.finetune_minilm` scores
    (about five per run), and the logits of the whole training pool
    (for distillation). Cached (:func:`ptutils.finetune.finetune_minilm`): the chapters
    that use it share one computation.
    """
    from .finetune import finetune_minilm

    train_pool, val = split(bench)
    settings = {**FAST_SETTINGS, **settings}
    return finetune_minilm(bench, train_set(bench, REFERENCE_K), val_idx=val, predict_idx=np.sort(train_pool),
                           verbose=verbose, **settings)


def finetune_at(bench, k, draw: int = 0, *, verbose: bool = True, **settings) -> dict:
    """Fine-tuned MiniLM at ``k`` labels per class (draw ``draw``), scored on validation; cached."""
    from .finetune import finetune_minilm

    if k == REFERENCE_K and draw == 0 and not settings:
        return reference_finetune(bench, verbose=verbose)
    _, val = split(bench)
    settings = {**FAST_SETTINGS, **settings}
    return finetune_minilm(bench, train_set(bench, k, draw), val_idx=val, verbose=verbose, **settings)

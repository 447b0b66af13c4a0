"""Tests for the evaluation tools chapters 11 and 14 add: the power of McNemar's test."""

import numpy as np
import pytest

from ptutils.metrics import mcnemar, mcnemar_power


def _pair(n, a_acc, b_acc, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < a_acc, y, 1 - y)
    b = np.where(rng.random(n) < b_acc, y, 1 - y)
    return y, a, b


def test_power_matches_a_loop_over_mcnemar():
    y, a, b = _pair(500, 0.8, 0.7)
    n, n_sim, alpha = 60, 300, 0.05
    rng = np.random.default_rng(3)
    idx = rng.integers(0, len(y), size=(n_sim, n))
    full = mcnemar(y, a, b)
    sign = np.sign(full["a_only"] - full["b_only"])
    hits = 0
    for row in idx:
        r = mcnemar(y[row], a[row], b[row])
        hits += r["p_value"] <= alpha and np.sign(r["a_only"] - r["b_only"]) == sign
    assert mcnemar_power(y, a, b, n, n_sim=n_sim, alpha=alpha, seed=3) == pytest.approx(hits / n_sim)


def test_power_grows_with_n_and_identical_models_are_never_separated():
    y, a, b = _pair(2000, 0.8, 0.7)
    powers = [mcnemar_power(y, a, b, n, n_sim=500) for n in (40, 400, 2000)]
    assert powers[0] < powers[1] < powers[2] and powers[2] > 0.95
    assert mcnemar_power(y, a, a, 200, n_sim=200) == 0.0


def test_no_difference_is_detected_at_most_alpha_often():
    y = np.zeros(1000, int)
    a = np.r_[np.zeros(500, int), np.ones(500, int)]  # right on the first half
    b = np.r_[np.ones(500, int), np.zeros(500, int)]  # right on the second half: same accuracy
    assert mcnemar_power(y, a, b, 100, n_sim=2000) <= 0.06


def test_power_rejects_bad_input():
    y, a, b = _pair(50, 0.8, 0.7)
    with pytest.raises(ValueError):
        mcnemar_power(y, a, b, 0)
    with pytest.raises(ValueError):
        mcnemar_power(y, a, b, 10, alpha=1.5)
    with pytest.raises(ValueError):
        mcnemar_power(y, np.stack([a, a]), b, 10)


def test_mcnemar_p_check_accepts_a_right_answer_and_rejects_a_wrong_one(capsys):
    import math

    from ptutils import check

    def right(b, c):
        m = b + c
        return 1.0 if m == 0 else min(1.0, 2 * sum(math.comb(m, i) for i in range(min(b, c) + 1)) / 2**m)

    def one_sided(b, c):
        m = b + c
        return 1.0 if m == 0 else sum(math.comb(m, i) for i in range(min(b, c) + 1)) / 2**m

    assert check("ch11.mcnemar_p", right, strict=False) is True
    assert check("ch11.mcnemar_p", one_sided, strict=False) is False
    assert "binomtest" in capsys.readouterr().out


def test_centred_predictions_check(capsys):
    from ptutils import check

    def right(margin, unlabelled_idx, idx):
        return (margin[idx] > np.median(margin[unlabelled_idx])).astype(int)

    def median_of_all(margin, unlabelled_idx, idx):  # reads every margin, not only the unlabelled ones
        return (margin[idx] > np.median(margin)).astype(int)

    assert check("ch14.centred_predictions", right, strict=False) is True
    assert check("ch14.centred_predictions", median_of_all, strict=False) is False
    assert "unlabelled_idx only" in capsys.readouterr().out

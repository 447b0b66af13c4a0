"""Self-checks for the coding exercises: ``check("ch01.nn_predict", nn_predict)``.

A check prints one line:

* ``[pass] ch01.nn_predict: ...`` when every public test case passes;
* ``[fail] ch01.nn_predict: ... Hint: ...`` on the first failing case, or when no
  check has that name;
* ``[todo] ch01.nn_predict: not attempted yet`` when the exercise still raises
  ``NotImplementedError`` (the student version's stub).

and returns ``True`` (pass), ``False`` (fail) or ``None`` (not attempted), so
"Run all" works on a student copy. In strict mode (``PTUTILS_STRICT=1``, set by
``make test`` and ``make book``; see :mod:`ptutils.config`) a ``[fail]`` also raises
:class:`CheckFailed`, so a wrong reference solution, a wrong check or a misspelled
check name fails the build; ``[todo]`` never raises.

A check is named after the exercise it checks (``chNN.<function>``, the chapter that
sets the exercise); the checks below are grouped by the concept they test. Each has a
known-good and a known-wrong answer in ``tests/test_checks.py``.
"""

from __future__ import annotations

import math
import traceback
from typing import Callable

from .. import config

_CHECKS: dict[str, tuple[Callable, str]] = {}


class CheckFailed(AssertionError):
    """Raised by :func:`check` in strict mode on ``[fail]``; the message is the printed line."""


def register(name: str, hint: str):
    """Register ``fn(obj)`` as the check called ``name``; ``fn`` raises AssertionError on failure."""

    def deco(fn):
        if name in _CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        _CHECKS[name] = (fn, hint)
        return fn

    return deco


def available() -> list[str]:
    """The names of all registered checks, sorted."""
    return sorted(_CHECKS)


def _run(name: str, obj) -> tuple[str, bool | None, BaseException | None]:
    """Run check ``name`` on ``obj``: (the line to print, the result, the exception behind a fail)."""
    if name not in _CHECKS:
        return f"[fail] {name}: no such check; known checks: {', '.join(available())}", False, None
    fn, hint = _CHECKS[name]
    try:
        detail = fn(obj)
    except NotImplementedError:
        return f"[todo] {name}: not attempted yet (replace the `raise NotImplementedError`)", None, None
    except AssertionError as e:
        return f"[fail] {name}: {e or 'a test case failed'}. Hint: {hint}", False, e
    except Exception as e:  # noqa: BLE001 - a student's bug must not stop "Run all"
        where = traceback.extract_tb(e.__traceback__)[-1]
        return f"[fail] {name}: raised {type(e).__name__}: {e} (line {where.lineno}). Hint: {hint}", False, e
    return f"[pass] {name}" + (f": {detail}" if detail else ""), True, None


def check(name: str, obj, *, strict: bool | None = None) -> bool | None:
    """Run the public test cases of exercise ``name`` against ``obj`` and print one line.

    Args:
        name: the check's name, e.g. ``"ch01.nn_predict"`` (see :func:`available`).
        obj: the student's answer, usually a function.
        strict: raise :class:`CheckFailed` on ``[fail]``; ``None`` (the default) follows
            ``PTUTILS_STRICT``. ``[todo]`` never raises.

    Returns:
        ``True`` (pass), ``False`` (fail, when not strict) or ``None`` (not attempted).
    """
    line, result, cause = _run(name, obj)
    print(line)
    if result is False and (config.STRICT if strict is None else strict):
        raise CheckFailed(line) from cause
    return result


def _close(a, b, tol=1e-6):
    return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)


# ======== Similarity, embeddings and pooling ==========================================
@register("ch01.nn_predict", "normalise the rows of both matrices, take the dot products (cosine "
          "similarities), and return the label of the most similar training row for each test row")
def _check_nn_predict(f):
    import numpy as np

    train_X = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.1]])
    train_y = np.array([0, 1, 2])
    test_X = np.array([[5.0, 0.5], [0.1, 0.2], [-1.0, -0.05], [0.0, -1.0], [1.0, 0.9]])
    got = np.asarray(f(train_X, train_y, test_X))
    # cosine, not Euclidean: [0.1, 0.2] is nearest [1, 0] in distance but [0, 2] in angle;
    # normalised, not a raw dot product: [1, 0.9] . [0, 2] = 1.8 beats [1, 0]'s 1, its angle does not
    expected = np.array([0, 1, 2, 0, 0])
    assert got.shape == (5,), f"expected 5 predictions, got shape {got.shape}"
    assert (got == expected).all(), f"nn_predict on the 5 test rows gave {got.tolist()}, expected {expected.tolist()}"
    return "5 cases, cosine similarity"


@register("ch09.masked_max", "fill the padded positions with -inf (masked_fill with ~mask and a trailing axis, "
          "not in place), then take the maximum over T; raise ValueError first if a row of mask is all False")
def _check_masked_max(f):
    import torch

    g = torch.Generator().manual_seed(0)
    x = -1.0 - torch.rand(3, 4, 5, generator=g)  # every real value lies in (-2, -1]
    mask = torch.tensor([[True, True, True, True], [True, False, False, False], [False, True, True, False]])
    x[~mask] = 10.0  # padding holds the largest values: it must never win
    before = x.clone()
    got = torch.as_tensor(f(x, mask), dtype=torch.float32)
    assert torch.equal(x, before), "x was modified in place; pool a copy (masked_fill, not masked_fill_)"
    assert got.shape == (3, 5), f"expected shape (B, d) = (3, 5), got {tuple(got.shape)}"
    for b in range(3):
        real = [x[b, t] for t in range(4) if mask[b, t]]
        expected = real[0]
        for v in real[1:]:
            expected = torch.maximum(expected, v)
        assert torch.allclose(got[b], expected), (
            f"row {b}: got {got[b].tolist()}, expected {expected.tolist()} (the largest real value of each feature; "
            "padding must not win, and a feature whose real values are all negative has a negative maximum)")
    empty = torch.tensor([[True, False], [False, False]])
    try:
        f(torch.zeros(2, 2, 3), empty)
    except ValueError:
        pass
    else:
        raise AssertionError("a row without any real token must raise ValueError (its maximum is undefined)")
    return "padding never wins, negative features, empty row refused"


@register("ch05.noise_distribution", "raise the counts to the power, then divide by their sum; return "
          "a float array that sums to 1")
def _check_noise(f):
    import numpy as np

    got = np.asarray(f(np.array([1, 16, 81]), 0.75), dtype=float)
    expected = np.array([1.0, 8.0, 27.0]) / 36.0
    assert got.shape == (3,), f"expected 3 probabilities, got shape {got.shape}"
    assert np.allclose(got, expected), f"noise_distribution([1, 16, 81], 0.75) should be {expected.round(4).tolist()}"
    got = np.asarray(f(np.array([5, 5]), 1.0), dtype=float)
    assert np.allclose(got, [0.5, 0.5]), "equal counts must give equal probabilities"
    return "2 cases"


@register("ch05.sgns_pair_loss", "-log sigmoid(u_pos . v) - sum over negatives of log sigmoid(-u_neg . v); "
          "torch.nn.functional.logsigmoid is numerically safe")
def _check_pair_loss(f):
    import torch

    v = torch.tensor([0.5, -1.0, 2.0])
    u_pos = torch.tensor([1.0, 0.0, 0.5])
    u_neg = torch.tensor([[0.2, 0.1, -0.3], [-1.0, 1.0, 0.0]])
    expected = -(torch.nn.functional.logsigmoid(u_pos @ v) + torch.nn.functional.logsigmoid(-(u_neg @ v)).sum())
    got = f(v, u_pos, u_neg)
    assert torch.allclose(torch.as_tensor(got, dtype=torch.float32), expected, atol=1e-5), \
        f"loss should be {expected.item():.5f}, got {float(got):.5f}"
    # scores of -150 (a badly placed pair): sigmoid underflows to 0 in float32, so log(sigmoid) is inf
    big = torch.as_tensor(f(-100 * v, u_pos, u_neg), dtype=torch.float32)
    expected = -(torch.nn.functional.logsigmoid(u_pos @ (-100 * v))
                 + torch.nn.functional.logsigmoid(-(u_neg @ (-100 * v))).sum())
    assert torch.isfinite(big), "the loss overflows for large scores: use logsigmoid"
    assert torch.allclose(big, expected, rtol=1e-4), f"for large scores the loss should be {expected.item():.2f}, " \
        f"got {big.item():.2f}"
    return "matches the formula, stable for large scores"


# ======== Attention and Transformer blocks ============================================
@register("ch02.causal_attention", "build a (T, T) lower-triangular bool mask and pass it to "
          "ptutils.scaled_dot_product_attention")
def _check_causal(f):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 4, generator=g) for _ in range(3))
    out = f(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.shape == ref.shape, f"output shape should be {tuple(ref.shape)}, got {tuple(out.shape)}"
    assert torch.allclose(out, ref, atol=1e-5), "output differs from a causal attention reference"
    return "matches F.scaled_dot_product_attention(is_causal=True)"


@register("ch04.split_heads", "view (B, T, d_model) as (B, T, h, d_k), then swap the T and h axes")
def _check_split_heads(f):
    import torch

    from ..attention import MultiHeadAttention

    for B, T, d_model, h in ((2, 3, 8, 2), (1, 5, 12, 4)):
        x = torch.arange(B * T * d_model, dtype=torch.float32).view(B, T, d_model)
        got = f(x, h)
        expected = MultiHeadAttention(d_model, h)._split(x)
        assert tuple(got.shape) == (B, h, T, d_model // h), \
            f"shape should be (B, h, T, d_k) = {(B, h, T, d_model // h)}, got {tuple(got.shape)}"
        assert torch.equal(got, expected), "right shape, wrong arrangement: head j must hold columns j*d_k:(j+1)*d_k"
    return "2 cases"


@register("ch04.layer_norm", "normalise over the last dimension: (x - mean) / sqrt(var + eps) with the "
          "*biased* variance (unbiased=False), then multiply by gamma and add beta")
def _check_layer_norm(f):
    import torch

    g = torch.Generator().manual_seed(0)
    for shape in ((3, 4), (2, 5, 8)):
        x = torch.randn(*shape, generator=g, dtype=torch.float64) * 3 + 1
        ln = torch.nn.LayerNorm(shape[-1], eps=1e-5).double()
        with torch.no_grad():
            ln.weight.uniform_(0.5, 1.5, generator=g)
            ln.bias.uniform_(-1, 1, generator=g)
        got = f(x, ln.weight.detach(), ln.bias.detach(), 1e-5)
        assert tuple(got.shape) == shape, f"shape should stay {shape}, got {tuple(got.shape)}"
        assert torch.allclose(got, ln(x).detach(), atol=1e-8), f"result differs from nn.LayerNorm for shape {shape}"
    return "matches nn.LayerNorm"


@register("ch02.encoder_block_params", "count weights and biases of W_q, W_k, W_v, W_o (each d_model x d_model), "
          "W_1 (d_model x d_ff), W_2 (d_ff x d_model), and two LayerNorms (2 * d_model each)")
def _check_block_params(f):
    from ..transformer import EncoderBlock

    cases = [(8, 2, 32), (64, 4, 256), (384, 12, 1536)]
    for d_model, h, d_ff in cases:
        expected = sum(p.numel() for p in EncoderBlock(d_model, h, d_ff).parameters())
        got = f(d_model, h, d_ff)
        assert got == expected, f"encoder_block_params({d_model}, {h}, {d_ff}) should be {expected}, got {got}"
    return f"{len(cases)} cases, up to MiniLM's size"


# ======== Optimisation: gradients, optimisers, schedules ==============================
@register("ch03.ce_grad", "the gradient of mean cross-entropy with respect to the logits is "
          "(softmax(logits) - one_hot(y)) / B")
def _check_ce_grad(f):
    import torch

    g = torch.Generator().manual_seed(0)
    for B, C in ((1, 2), (4, 3), (7, 10)):
        z = torch.randn(B, C, generator=g, dtype=torch.float64, requires_grad=True)
        y = torch.randint(0, C, (B,), generator=g)
        torch.nn.functional.cross_entropy(z, y).backward()
        got = f(z.detach(), y)
        assert tuple(got.shape) == (B, C), f"gradient shape should be {(B, C)}, got {tuple(got.shape)}"
        assert torch.allclose(torch.as_tensor(got, dtype=torch.float64), z.grad, atol=1e-8), \
            f"gradient for B={B}, C={C} differs from autograd's"
    return "matches autograd for 3 shapes"


@register("ch03.momentum_step", "v <- beta * v + grad; theta <- theta - lr * v (PyTorch's SGD momentum); "
          "return both new tensors")
def _check_momentum(f):
    import torch

    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    theta, v = p.detach().clone(), torch.zeros(3)
    for grad in (torch.tensor([0.3, -0.1, 0.2]), torch.tensor([0.1, 0.4, -0.5]), torch.tensor([-0.2, 0.0, 0.1])):
        p.grad = grad.clone()
        opt.step()
        theta, v = f(theta, v, grad, 0.1, 0.9)
        assert torch.allclose(theta, p.detach(), atol=1e-6), f"after a step theta is {theta.tolist()}, " \
            f"torch.optim.SGD gives {p.detach().tolist()}"
    return "3 steps match torch.optim.SGD(momentum=0.9)"


@register("ch07.warmup_factor", "during warm-up the factor is step / warmup_steps; afterwards it falls "
          "linearly from 1 at step=warmup_steps to 0 at step=total_steps")
def _check_warmup(f):
    import torch
    from transformers import get_linear_schedule_with_warmup

    for warm, total in ((10, 100), (0, 20), (5, 5 + 1)):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = get_linear_schedule_with_warmup(opt, warm, total)
        for step in range(total + 1):
            expected = sched.lr_lambdas[0](step)
            got = f(step, warm, total)
            assert abs(float(got) - expected) < 1e-9, \
                f"warmup_factor({step}, {warm}, {total}) should be {expected:.4f}, got {float(got):.4f}"
    return "matches transformers.get_linear_schedule_with_warmup"


# ======== Pre-training and training objectives ========================================
@register("ch06.mask_patches", "view x as (N, H/p, p, W/p, p); for each image rank torch.rand(P) scores drawn "
          "with the generator and hide the round(fraction * P) lowest; expand the (N, H/p, W/p) keep-mask with "
          "repeat_interleave and multiply; check H % p and W % p first")
def _check_mask_patches(f):
    import torch

    def blocks(t, p):  # (N, H, W) -> (N, number of squares, pixels per square), squares in row-major order
        n, h, w = t.shape
        return t.reshape(n, h // p, p, w // p, p).permute(0, 1, 3, 2, 4).reshape(n, (h // p) * (w // p), p * p)

    x = torch.rand(400, 8, 8) + 0.5  # no zeros before masking
    before = x.clone()
    for p, fraction, hidden in ((2, 0.25, 4), (4, 0.5, 2), (2, 0.0, 0), (8, 1.0, 1)):
        out = torch.as_tensor(f(x, p, fraction, torch.Generator().manual_seed(0)))
        assert torch.equal(x, before), "x was modified in place; return a masked copy"
        assert out.shape == x.shape, f"shape should stay {tuple(x.shape)}, got {tuple(out.shape)}"
        bo, bx = blocks(out, p), blocks(x, p)
        zero, same = (bo == 0).all(-1), (bo == bx).all(-1)
        assert bool((zero | same).all()), (
            f"patch={p}: every {p}x{p} square must be either all zero or unchanged; some are partly masked")
        counts = zero.sum(1)
        assert bool((counts == hidden).all()), (
            f"patch={p}, fraction={fraction}: each image should hide round(fraction * P) = {hidden} squares, "
            f"got between {int(counts.min())} and {int(counts.max())}")
        if 0 < hidden < zero.shape[1]:
            share = zero.float().mean(0)  # how often each square position is hidden, over 400 images
            assert float((share - hidden / zero.shape[1]).abs().max()) < 0.1, (
                f"patch={p}: some square positions are hidden far more often than others ({share.tolist()}); "
                "choose the squares at random, afresh for every image")
            assert len({tuple(r) for r in zero.tolist()}) > 1, "every image got the same mask; draw one per image"
    again = [torch.as_tensor(f(x, 2, 0.25, torch.Generator().manual_seed(s))) for s in (0, 0, 1)]
    assert torch.equal(again[0], again[1]), "use the generator so that the same seed gives the same mask"
    assert not torch.equal(again[0], again[2]), "a different seed should give a different mask"
    try:
        f(x[:2, :6, :6], 4, 0.5, torch.Generator().manual_seed(0))
    except ValueError:
        pass
    else:
        raise AssertionError("patch=4 does not divide a 6x6 image: raise ValueError")
    return "whole squares, exact count, random per image, reproducible, bad patch size refused"


@register("ch10.shift_right", "the decoder input is <bos> followed by the target without its last token: "
          "concatenate a column of bos ids with ids[:, :-1]")
def _check_shift_right(f):
    import torch

    ids = torch.tensor([[5, 6, 7], [8, 9, 0]])
    got = torch.as_tensor(f(ids, 2))
    expected = torch.tensor([[2, 5, 6], [2, 8, 9]])
    assert got.shape == ids.shape, f"expected shape {tuple(ids.shape)}, got {tuple(got.shape)}"
    assert torch.equal(got, expected), f"got {got.tolist()}, expected {expected.tolist()}"
    assert torch.equal(ids, torch.tensor([[5, 6, 7], [8, 9, 0]])), "the input ids were modified in place"
    return "2 rows, input unchanged"


@register("ch15.distillation_loss", "soften both with softmax(logits / tau); KL(teacher || student) = "
          "sum p_t (log p_t - log p_s), averaged over the batch, times tau**2")
def _check_distillation_loss(f):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    for tau in (1.0, 4.0):
        expected = F.kl_div(F.log_softmax(s / tau, -1), F.log_softmax(t / tau, -1), log_target=True,
                            reduction="batchmean") * tau * tau
        got = torch.as_tensor(f(s, t, tau), dtype=torch.float32)
        assert torch.isclose(got, expected, atol=1e-5), f"tau={tau}: expected {expected.item():.5f}, got {got.item():.5f}"
    assert abs(float(f(t, t, 2.0))) < 1e-6, "identical logits must give zero loss"
    return "tau = 1 and 4, zero for identical logits"


# ======== Evaluation and statistics ===================================================
@register("ch08.perplexity", "perplexity is exp(mean cross-entropy in nats); a uniform guess over V tokens "
          "has perplexity V")
def _check_perplexity(f):
    import math

    for loss in (0.0, 1.0, math.log(8000), 2.5):
        got = float(f(loss))
        assert math.isclose(got, math.exp(loss), rel_tol=1e-9), f"perplexity({loss}) should be {math.exp(loss):.4f}, got {got}"
    return "4 cases"


@register("ch10.token_accuracy", "compare predictions and targets only where the target is not padding, and "
          "divide by the number of real tokens")
def _check_token_accuracy(f):
    import torch

    target = torch.tensor([[4, 5, 0, 0], [6, 7, 8, 0]])
    pred = torch.tensor([[4, 9, 0, 0], [6, 7, 1, 3]])
    got = float(f(pred, target, 0))
    assert _close(got, 3 / 5), f"expected 3 of 5 real tokens right (0.6), got {got}"
    assert _close(float(f(target, target, 0)), 1.0), "a perfect prediction should score 1.0"
    return "padding excluded"


@register("ch09.oov_rate", "count every token (not every distinct word) and the share of them that is not in "
          "the vocabulary")
def _check_oov_rate(f):
    vocab = {"a", "film", "good"}
    cases = [([["a", "good", "film"]], 0.0), ([["a", "bad", "film"], ["bad"]], 0.5), ([["x"]], 1.0)]
    for token_lists, expected in cases:
        got = float(f(token_lists, vocab))
        assert _close(got, expected), f"oov_rate({token_lists}) should be {expected}, got {got}"
    return "3 cases, counted per token"


@register("ch11.precision_recall_f1", "precision = TP / (TP + FP), recall = TP / (TP + FN) (not the same "
          "formula!), F1 = 2PR / (P + R); return 0.0 where a denominator is 0")
def _check_prf(f):
    cases = [((8, 2, 4), (0.8, 8 / 12, 2 * 0.8 * (8 / 12) / (0.8 + 8 / 12))),
             ((0, 0, 5), (0.0, 0.0, 0.0)), ((3, 0, 0), (1.0, 1.0, 1.0))]
    for (tp, fp, fn), expected in cases:
        got = tuple(float(v) for v in f(tp, fp, fn))
        assert len(got) == 3, "return (precision, recall, f1)"
        assert all(_close(g, e) for g, e in zip(got, expected, strict=True)), \
            f"tp={tp}, fp={fp}, fn={fn}: expected {tuple(round(e, 4) for e in expected)}, got {tuple(round(g, 4) for g in got)}"
    return "3 cases incl. zero denominators"


@register("ch11.macro_f1", "compute F1 of every class one-vs-rest (that class positive, the rest negative), "
          "then take the plain mean over classes")
def _check_macro_f1(f):
    import numpy as np
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 60)
    p = np.where(rng.random(60) < 0.5, y, rng.integers(0, 4, 60))
    expected = f1_score(y, p, average="macro")
    got = float(f(y, p))
    assert _close(got, expected), f"expected {expected:.4f} (scikit-learn's macro F1), got {got:.4f}"
    return "matches sklearn.metrics.f1_score(average='macro')"


@register("ch11.mcnemar_p", "count the splits at least as lopsided as min(b, c) on the smaller side: "
          "sum comb(b + c, i) for i = 0..min(b, c), divide by 2**(b + c), double it, cap at 1; "
          "return 1.0 when there is no discordant example")
def _check_mcnemar_p(f):
    from scipy.stats import binomtest

    for b, c in ((0, 0), (5, 5), (0, 6), (30, 12), (249, 219), (3, 17)):
        expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
        got = float(f(b, c))
        assert _close(got, expected), f"b={b}, c={c}: expected {expected:.6g} (scipy.stats.binomtest), got {got:.6g}"
    return "6 cases, matches scipy.stats.binomtest"


@register("ch14.mean_reciprocal_rank", "the rank of query i's answer is 1 + the number of other items of row i "
          "that score at least as high as S[i, i] (a tie counts against the answer); average 1 / rank over the rows")
def _check_mean_reciprocal_rank(f):
    import numpy as np

    S = np.array([[0.9, 0.1, 0.0, 0.2], [0.8, 0.5, 0.1, 0.0], [0.4, 0.9, 0.3, 0.2], [0.1, 0.2, 0.3, 0.0]])
    ranks = [1, 2, 3, 4]  # where each row's answer (the diagonal) comes, by decreasing score
    expected = sum(1 / r for r in ranks) / 4
    got = float(f(S))
    assert _close(got, expected), f"answers ranked 1, 2, 3, 4 give MRR (1 + 1/2 + 1/3 + 1/4) / 4 = {expected:.4f}, got {got:.4f}"
    got = float(f(np.ones((5, 5))))
    assert _close(got, 1 / 5), f"five items tied with the answer rank it 5th (MRR 0.2), got {got:.4f}"
    got = float(f(np.eye(3)))
    assert _close(got, 1.0), f"every answer ranked first gives 1, got {got:.4f}"
    perm = np.random.default_rng(0).permutation(4)  # the items' order in a row must not matter
    got = float(f(S[perm][:, perm]))
    assert _close(got, expected), f"reordering queries and items together changed MRR to {got:.4f}"
    return "ranks 1-4, ties, perfect ranking, order of items"



# ======== Models and checkpoints: size, files, integrity ==============================
@register("ch12.count_parameters", "sum p.numel() over model.parameters(); with trainable_only, keep only "
          "the parameters whose requires_grad is True")
def _check_count_parameters(f):
    from torch import nn

    m = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3))
    m[0].weight.requires_grad_(False)
    assert int(f(m, False)) == 40 + 15, f"all parameters: expected 55, got {f(m, False)}"
    assert int(f(m, True)) == 15, f"trainable only: expected 15 (the embedding is frozen), got {f(m, True)}"
    return "frozen parameters excluded when asked"


@register("ch12.weights_megabytes", "multiply each parameter's numel() by its element_size() (4 bytes in "
          "float32, 2 in float16) and divide the total by 1e6")
def _check_weights_megabytes(f):
    import torch
    from torch import nn

    m = nn.Linear(1000, 250)  # 250,250 parameters
    assert _close(f(m), 250_250 * 4 / 1e6), f"float32: expected {250_250 * 4 / 1e6} MB, got {f(m)}"
    assert _close(f(m.to(torch.float16)), 250_250 * 2 / 1e6), "float16 weights take 2 bytes each"
    return "float32 and float16"


@register("ch13.sha256_file", "open the file in binary mode, feed it to hashlib.sha256() in chunks with "
          ".update(), and return .hexdigest()")
def _check_sha256_file(f):
    import hashlib
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "w.bin"
        data = bytes(range(256)) * 5000  # 1.28 MB: more than one chunk
        p.write_bytes(data)
        got = f(p)
        assert got == hashlib.sha256(data).hexdigest(), f"wrong digest {str(got)[:16]}..."
        p.write_bytes(data[:-1] + b"\x00")
        assert f(p) != got, "changing one byte must change the digest"
    return "1.28 MB file, one changed byte detected"


@register("ch13.safetensors_shapes", "read 8 bytes as a little-endian unsigned 64-bit integer n "
          "(int.from_bytes(b, 'little')), then n bytes of JSON; skip the '__metadata__' entry")
def _check_safetensors_shapes(f):
    import tempfile
    from pathlib import Path

    import torch
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.safetensors"
        save_file({"w": torch.zeros(3, 4), "b": torch.zeros(4)}, str(p), metadata={"format": "pt"})
        got = f(p)
        assert dict(got) == {"w": [3, 4], "b": [4]}, f"expected {{'w': [3, 4], 'b': [4]}}, got {got}"
    return "2 tensors, metadata skipped"


# ======== Applications: semi-supervised labels, detection, federated learning =========
@register("ch14.centred_predictions", "take the median of margin over the unlabelled indices (np.median), then "
          "return (margin[idx] > threshold) as integers 0/1")
def _check_centred_predictions(f):
    import numpy as np

    margin = np.array([0.3, -0.2, 0.1, 0.5, -0.4, 0.0, 0.2, -0.1])
    got = np.asarray(f(margin, np.arange(8), np.arange(8)))
    assert got.shape == (8,), f"expected one prediction per index in idx, got shape {got.shape}"
    assert list(got.astype(int)) == [1, 0, 1, 1, 0, 0, 1, 0], f"median 0.05: expected [1,0,1,1,0,0,1,0], got {list(got)}"
    got = np.asarray(f(margin, np.array([1, 4]), np.array([0, 1, 4])))
    assert list(got.astype(int)) == [1, 1, 0], "the threshold must come from unlabelled_idx only (median -0.3 here)"
    skewed = np.array([0.1, 0.2, 0.3, 5.0])  # one extreme margin moves the mean (1.4), not the median (0.25)
    got = np.asarray(f(skewed, np.arange(4), np.arange(4)))
    assert list(got.astype(int)) == [0, 0, 1, 1], f"margins {skewed.tolist()}: the median 0.25 splits them " \
        f"2 / 2, expected [0, 0, 1, 1], got {list(got)}"
    return "median over the unlabelled indices only"


@register("ch14.generalized_iou", "C is the smallest box holding both: min of the left/top edges, max of the "
          "right/bottom edges; GIoU = IoU - (area(C) - area(union)) / area(C), with area(union) = area(a) + "
          "area(b) - intersection")
def _check_generalized_iou(f):
    import numpy as np

    def cells(box):  # the unit cells of a 12x12 grid that an integer box covers
        grid = np.zeros((12, 12), bool)
        grid[box[1]:box[3], box[0]:box[2]] = True
        return grid

    def by_counting(a, b):  # areas counted cell by cell, an independent route to the same number
        ga, gb = cells(a), cells(b)
        c = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        union, area_c = (ga | gb).sum(), cells(c).sum()
        return (ga & gb).sum() / union - (area_c - union) / area_c

    cases = [((0, 0, 2, 2), (0, 0, 2, 2)), ((0, 0, 2, 2), (1, 1, 3, 3)), ((0, 0, 1, 1), (2, 0, 3, 1)),
             ((0, 0, 1, 1), (10, 10, 11, 11)), ((0, 0, 6, 6), (2, 2, 3, 3)), ((0, 0, 4, 2), (1, 1, 2, 5))]
    for a, b in cases:
        got, expected = float(f(a, b)), by_counting(a, b)
        assert _close(got, expected), f"generalized_iou({a}, {b}) should be {expected:.4f}, got {got:.4f}"
        assert _close(float(f(b, a)), expected), f"generalized_iou is symmetric: ({b}, {a}) gave {float(f(b, a)):.4f}"
    rng = np.random.default_rng(0)
    lo = rng.integers(0, 6, size=(20, 2, 2))
    boxes = np.concatenate([lo, lo + rng.integers(1, 6, size=(20, 2, 2))], axis=2)  # (20, 2 boxes, 4)
    got = np.asarray(f(boxes[:, 0], boxes[:, 1]), dtype=float)
    expected = np.array([by_counting(tuple(a), tuple(b)) for a, b in zip(boxes[:, 0], boxes[:, 1])])
    assert got.shape == (20,), f"two (20, 4) arrays of boxes should give 20 values, got shape {got.shape}"
    assert np.allclose(got, expected), "row by row: some of 20 random pairs of boxes differ from the expected value"
    return "identical, overlapping, disjoint near and far, nested, crossing, 20 random rows"


@register("ch15.client_drift", "flatten and concatenate each client's tensors into one vector, subtract the "
          "mean vector over clients, take each client's norm, and average the norms")
def _check_client_drift(f):
    import torch

    states = [{"w": torch.tensor([0.0, 0.0]), "b": torch.tensor([0.0])},
              {"w": torch.tensor([4.0, 0.0]), "b": torch.tensor([0.0])},
              {"w": torch.tensor([2.0, 0.0]), "b": torch.tensor([3.0])}]
    # mean = [2, 0, 1]; distances: sqrt(4+1), sqrt(4+1), sqrt(0+4) -> mean (2*sqrt(5)+2)/3
    expected = (2 * 5 ** 0.5 + 2) / 3
    got = float(f(states))
    assert _close(got, expected), f"expected {expected:.4f}, got {got:.4f} (all tensors of a client count together)"
    assert _close(float(f([states[0], states[0]])), 0.0), "identical clients have zero drift"
    return "3 clients, 2 tensors each"


# ======== Scaling out: all-reduce and memory ==========================================
@register("ch16.ring_allreduce", "cut each array into R chunks with np.array_split; in step s of the "
          "reduce-scatter rank r sends chunk (r - s) % R to rank (r + 1) % R, which adds it; in the all-gather "
          "rank r sends chunk (r + 1 - s) % R, which the next rank copies; count the elements each rank sends")
def _check_ring_allreduce(f):
    import numpy as np

    for R, n in ((2, 4), (3, 6), (5, 10)):
        rng = np.random.default_rng(R)
        xs = [rng.normal(size=n) for _ in range(R)]
        originals = [x.copy() for x in xs]
        out, sent = f(xs)
        assert len(out) == R and len(sent) == R, f"R = {R}: expected {R} results and {R} counts"
        total = sum(originals)
        for r, o in enumerate(out):
            assert np.allclose(np.asarray(o, dtype=float), total), f"R = {R}: rank {r} does not hold the sum"
        want = 2 * (R - 1) * n // R
        assert [int(c) for c in sent] == [want] * R, (
            f"R = {R}, n = {n}: each rank should send 2(R-1)/R x n = {want} elements, got {list(sent)}")
    return "R = 2, 3, 5: every rank holds the sum, 2(R-1)/R of the array sent"


@register("ch16.min_gpus", "16 bytes per parameter in all; each GPU can use gpu_gb * 1e9 * (1 - headroom) "
          "bytes; round the quotient up with math.ceil")
def _check_min_gpus(f):
    cases = {(7e9, 80, 0.25): 2, (124e6, 24, 0.25): 1, (70e9, 80, 0.25): 19, (70e9, 40, 0.0): 28,
             (1e9, 16, 0.0): 1}
    for (n, gb, h), want in cases.items():
        got = f(n, gb, headroom=h)
        assert int(got) == want and float(got) == want, (
            f"{n:.3g} parameters, {gb} GB GPUs, headroom {h}: expected {want} GPUs, got {got}")
    return "5 cases, exact fits and round-ups"

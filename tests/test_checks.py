"""The exercise checks themselves: each accepts a right answer and rejects a plausible wrong one.

For every registered check there is a reference answer (``GOOD``) that must pass and at least
one plausible student mistake (``WRONG``) that must fail; a new check without both fails
``test_every_check_has_a_good_and_a_wrong_answer``. Also: every check a notebook calls exists,
every check is called by the chapter its name points to, and strict mode raises where it must.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ptutils
from ptutils import config
from ptutils.classroom import checks
from ptutils.classroom.checks import CheckFailed, available, check

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([^"']+)["']""")

GOOD: dict[str, object] = {}
WRONG: dict[str, list] = {}


def good(name):
    def deco(fn):
        assert name not in GOOD, name
        GOOD[name] = fn
        return fn
    return deco


def wrong(name):
    def deco(fn):
        WRONG.setdefault(name, []).append(fn)
        return fn
    return deco


# ======== Similarity, embeddings and pooling
@good("ch01.nn_predict")
def nn_predict(train_X, train_y, test_X):
    a = train_X / np.linalg.norm(train_X, axis=1, keepdims=True)
    b = test_X / np.linalg.norm(test_X, axis=1, keepdims=True)
    return np.asarray(train_y)[(b @ a.T).argmax(axis=1)]


@wrong("ch01.nn_predict")
def nn_predict_euclidean(train_X, train_y, test_X):
    d = ((test_X[:, None, :] - train_X[None, :, :]) ** 2).sum(-1)
    return np.asarray(train_y)[d.argmin(axis=1)]


@wrong("ch01.nn_predict")
def nn_predict_unnormalised_dot(train_X, train_y, test_X):  # forgets to normalise the rows
    return np.asarray(train_y)[(test_X @ train_X.T).argmax(axis=1)]


@good("ch09.masked_max")
def masked_max(x, mask):
    if not mask.any(1).all():
        raise ValueError("a row without real tokens")
    return x.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values


@wrong("ch09.masked_max")
def masked_max_fills_zero(x, mask):  # padding as 0: wins wherever the real values are all negative
    if not mask.any(1).all():
        raise ValueError("a row without real tokens")
    return (x * mask.unsqueeze(-1)).max(1).values


@wrong("ch09.masked_max")
def masked_max_ignores_mask(x, mask):
    if not mask.any(1).all():
        raise ValueError("a row without real tokens")
    return x.max(1).values


@wrong("ch09.masked_max")
def masked_max_in_place(x, mask):  # right values, but overwrites the caller's tensor
    if not mask.any(1).all():
        raise ValueError("a row without real tokens")
    return x.masked_fill_(~mask.unsqueeze(-1), float("-inf")).max(1).values


@wrong("ch09.masked_max")
def masked_max_empty_row_gives_minus_inf(x, mask):  # an empty row silently becomes -inf
    return x.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values


@good("ch05.noise_distribution")
def noise_distribution(counts, power):
    w = np.asarray(counts, dtype=float) ** power
    return w / w.sum()


@wrong("ch05.noise_distribution")
def noise_distribution_normalise_first(counts, power):  # probabilities raised to the power: no longer sum to 1
    c = np.asarray(counts, dtype=float)
    return (c / c.sum()) ** power


@wrong("ch05.noise_distribution")
def noise_distribution_no_power(counts, power):
    c = np.asarray(counts, dtype=float)
    return c / c.sum()


@good("ch05.sgns_pair_loss")
def sgns_pair_loss(v, u_pos, u_neg):
    return -(F.logsigmoid(u_pos @ v) + F.logsigmoid(-(u_neg @ v)).sum())


@wrong("ch05.sgns_pair_loss")
def sgns_pair_loss_sign(v, u_pos, u_neg):  # negatives pushed towards v, not away
    return -(F.logsigmoid(u_pos @ v) + F.logsigmoid(u_neg @ v).sum())


@wrong("ch05.sgns_pair_loss")
def sgns_pair_loss_log_of_sigmoid(v, u_pos, u_neg):  # right formula, overflows: log(sigmoid(-large)) = log 0
    return -(torch.log(torch.sigmoid(u_pos @ v)) + torch.log(torch.sigmoid(-(u_neg @ v))).sum())


# ======== Attention and Transformer blocks
@good("ch02.causal_attention")
def causal_attention(q, k, v):
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    keep = torch.tril(torch.ones(T, T, dtype=torch.bool))
    return scores.masked_fill(~keep, float("-inf")).softmax(-1) @ v


@wrong("ch02.causal_attention")
def causal_attention_upper(q, k, v):  # attends to the future instead of the past
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    keep = torch.triu(torch.ones(T, T, dtype=torch.bool))
    return scores.masked_fill(~keep, float("-inf")).softmax(-1) @ v


@wrong("ch02.causal_attention")
def causal_attention_unscaled(q, k, v):  # forgets 1 / sqrt(d_k)
    T = q.shape[-2]
    keep = torch.tril(torch.ones(T, T, dtype=torch.bool))
    return (q @ k.transpose(-2, -1)).masked_fill(~keep, float("-inf")).softmax(-1) @ v


@good("ch04.split_heads")
def split_heads(x, h):
    B, T, d_model = x.shape
    return x.view(B, T, h, d_model // h).transpose(1, 2)


@wrong("ch04.split_heads")
def split_heads_plain_view(x, h):  # right shape, wrong arrangement
    B, T, d_model = x.shape
    return x.view(B, h, T, d_model // h)


@good("ch04.layer_norm")
def layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


@wrong("ch04.layer_norm")
def layer_norm_sample_variance(x, gamma, beta, eps):  # unbiased (sample) variance, torch.var's default
    return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) * gamma + beta


@wrong("ch04.layer_norm")
def layer_norm_first_axis(x, gamma, beta, eps):  # normalises over the batch (BatchNorm's axis)
    return (x - x.mean(0, keepdim=True)) / torch.sqrt(x.var(0, keepdim=True, unbiased=False) + eps) * gamma + beta


@good("ch02.encoder_block_params")
def encoder_block_params(d_model, num_heads, d_ff):
    attn = 4 * (d_model * d_model + d_model)
    ffn = d_model * d_ff + d_ff + d_ff * d_model + d_model
    return attn + ffn + 2 * 2 * d_model


@wrong("ch02.encoder_block_params")
def encoder_block_params_no_biases(d_model, num_heads, d_ff):
    return 4 * d_model * d_model + 2 * d_model * d_ff + 4 * d_model


@wrong("ch02.encoder_block_params")
def encoder_block_params_per_head(d_model, num_heads, d_ff):  # one d_model x d_model projection per head
    return encoder_block_params(d_model, num_heads, d_ff) + (num_heads - 1) * 3 * (d_model * d_model + d_model)


# ======== Optimisation
@good("ch03.ce_grad")
def ce_grad(logits, y):
    return (logits.softmax(-1) - F.one_hot(y, logits.shape[-1]).to(logits.dtype)) / logits.shape[0]


@wrong("ch03.ce_grad")
def ce_grad_of_the_sum(logits, y):  # forgets the 1 / B of the mean
    return logits.softmax(-1) - F.one_hot(y, logits.shape[-1]).to(logits.dtype)


@good("ch03.momentum_step")
def momentum_step(theta, v, grad, lr, beta):
    v = beta * v + grad
    return theta - lr * v, v


@wrong("ch03.momentum_step")
def momentum_step_ema(theta, v, grad, lr, beta):  # the (1 - beta) of an exponential average: not PyTorch's SGD
    v = beta * v + (1 - beta) * grad
    return theta - lr * v, v


@wrong("ch03.momentum_step")
def momentum_step_plain_sgd(theta, v, grad, lr, beta):
    return theta - lr * grad, beta * v + grad


@good("ch07.warmup_factor")
def warmup_factor(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


@wrong("ch07.warmup_factor")
def warmup_factor_decay_from_zero(step, warmup_steps, total_steps):  # decay measured from step 0
    if step < warmup_steps:
        return step / warmup_steps
    return max(0.0, 1 - step / total_steps)


@wrong("ch07.warmup_factor")
def warmup_factor_off_by_one(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


# ======== Pre-training and training objectives
def _patch_keep(n, h, w, patch, fraction, scores):
    rows, cols = h // patch, w // patch
    hidden = scores.argsort(1)[:, :round(fraction * rows * cols)]
    keep = torch.ones(n, rows * cols).scatter(1, hidden, 0.0).view(n, rows, cols)
    return keep.repeat_interleave(patch, 1).repeat_interleave(patch, 2)


@good("ch06.mask_patches")
def mask_patches(x, patch, fraction, generator):
    n, h, w = x.shape
    if h % patch or w % patch:
        raise ValueError("patch must divide the image")
    scores = torch.rand(n, (h // patch) * (w // patch), generator=generator)
    return x * _patch_keep(n, h, w, patch, fraction, scores)


@wrong("ch06.mask_patches")
def mask_patches_pixels(x, patch, fraction, generator):  # masks single pixels, not squares
    if x.shape[1] % patch or x.shape[2] % patch:
        raise ValueError("patch must divide the image")
    return x * (torch.rand(x.shape, generator=generator) >= fraction)


@wrong("ch06.mask_patches")
def mask_patches_same_for_all(x, patch, fraction, generator):  # one mask for the whole batch
    n, h, w = x.shape
    if h % patch or w % patch:
        raise ValueError("patch must divide the image")
    scores = torch.rand(1, (h // patch) * (w // patch), generator=generator).expand(n, -1)
    return x * _patch_keep(n, h, w, patch, fraction, scores)


@wrong("ch06.mask_patches")
def mask_patches_each_square_on_its_own(x, patch, fraction, generator):  # about, not exactly, fraction * P
    n, h, w = x.shape
    if h % patch or w % patch:
        raise ValueError("patch must divide the image")
    keep = (torch.rand(n, h // patch, w // patch, generator=generator) >= fraction).float()
    return x * keep.repeat_interleave(patch, 1).repeat_interleave(patch, 2)


@wrong("ch06.mask_patches")
def mask_patches_global_rng(x, patch, fraction, generator):  # ignores the generator: not reproducible
    n, h, w = x.shape
    if h % patch or w % patch:
        raise ValueError("patch must divide the image")
    return x * _patch_keep(n, h, w, patch, fraction, torch.rand(n, (h // patch) * (w // patch)))


@wrong("ch06.mask_patches")
def mask_patches_no_size_check(x, patch, fraction, generator):  # 6 // 4 = 1 square per side, the rest kept
    n, h, w = x.shape
    rows, cols = h // patch, w // patch
    scores = torch.rand(n, rows * cols, generator=generator)
    keep = torch.ones(n, h, w)
    keep[:, :rows * patch, :cols * patch] = _patch_keep(n, rows * patch, cols * patch, patch, fraction, scores)
    return x * keep


@good("ch10.shift_right")
def shift_right(ids, bos_id):
    return torch.cat([torch.full_like(ids[:, :1], bos_id), ids[:, :-1]], dim=1)


@wrong("ch10.shift_right")
def shift_right_left(ids, bos_id):  # drops the first token instead of the last
    return torch.cat([torch.full_like(ids[:, :1], bos_id), ids[:, 1:]], dim=1)


@wrong("ch10.shift_right")
def shift_right_in_place(ids, bos_id):  # right values, but overwrites the caller's tensor
    ids[:, 1:] = ids[:, :-1].clone()
    ids[:, 0] = bos_id
    return ids


@good("ch15.distillation_loss")
def distillation_loss(student_logits, teacher_logits, tau):
    p_t = F.softmax(teacher_logits / tau, -1)
    log_s = F.log_softmax(student_logits / tau, -1)
    return (p_t * (p_t.log() - log_s)).sum(-1).mean() * tau**2


@wrong("ch15.distillation_loss")
def distillation_loss_no_tau_squared(student_logits, teacher_logits, tau):
    return distillation_loss(student_logits, teacher_logits, tau) / tau**2


@wrong("ch15.distillation_loss")
def distillation_loss_reversed_kl(student_logits, teacher_logits, tau):  # KL(student || teacher)
    return distillation_loss(teacher_logits, student_logits, tau)


@wrong("ch15.distillation_loss")
def distillation_loss_elementwise_mean(student_logits, teacher_logits, tau):  # kl_div's reduction="mean"
    p_t = F.softmax(teacher_logits / tau, -1)
    return (p_t * (p_t.log() - F.log_softmax(student_logits / tau, -1))).mean() * tau**2  # also / n_classes


# ======== Evaluation and statistics
@good("ch08.perplexity")
def perplexity(mean_loss):
    return math.exp(mean_loss)


@wrong("ch08.perplexity")
def perplexity_in_bits(mean_loss):  # 2 ** loss, but the loss is in nats
    return 2**mean_loss


@good("ch10.token_accuracy")
def token_accuracy(pred, target, pad_id):
    real = target != pad_id
    return ((pred == target) & real).sum().item() / real.sum().item()


@wrong("ch10.token_accuracy")
def token_accuracy_counts_padding(pred, target, pad_id):
    return (pred == target).float().mean().item()


@wrong("ch10.token_accuracy")
def token_accuracy_divides_by_all(pred, target, pad_id):
    return ((pred == target) & (target != pad_id)).sum().item() / target.numel()


@good("ch09.oov_rate")
def oov_rate(token_lists, vocab):
    tokens = [t for toks in token_lists for t in toks]
    return sum(t not in vocab for t in tokens) / len(tokens)


@wrong("ch09.oov_rate")
def oov_rate_distinct_words(token_lists, vocab):  # counts each word type once
    words = {t for toks in token_lists for t in toks}
    return len(words - set(vocab)) / len(words)


@good("ch11.precision_recall_f1")
def precision_recall_f1(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@wrong("ch11.precision_recall_f1")
def precision_recall_f1_recall_uses_fp(tp, fp, fn):  # the same formula twice
    p = tp / (tp + fp) if tp + fp else 0.0
    return p, p, p


@wrong("ch11.precision_recall_f1")
def precision_recall_f1_no_zero_guard(tp, fp, fn):
    p, r = tp / (tp + fp), tp / (tp + fn)
    return p, r, 2 * p * r / (p + r)


@good("ch11.macro_f1")
def macro_f1(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for c in np.union1d(y_true, y_pred):
        scores.append(precision_recall_f1(int(((y_pred == c) & (y_true == c)).sum()),
                                          int(((y_pred == c) & (y_true != c)).sum()),
                                          int(((y_pred != c) & (y_true == c)).sum()))[2])
    return float(np.mean(scores))


@wrong("ch11.macro_f1")
def macro_f1_micro(y_true, y_pred):  # micro F1 = accuracy for single-label classes
    return float((np.asarray(y_true) == np.asarray(y_pred)).mean())


@wrong("ch11.macro_f1")
def macro_f1_weighted(y_true, y_pred):  # weights each class by its support
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.union1d(y_true, y_pred)
    f1 = [precision_recall_f1(int(((y_pred == c) & (y_true == c)).sum()), int(((y_pred == c) & (y_true != c)).sum()),
                              int(((y_pred != c) & (y_true == c)).sum()))[2] for c in classes]
    return float(np.average(f1, weights=[(y_true == c).sum() for c in classes]))


@good("ch11.mcnemar_p")
def mcnemar_p(b, c):
    m = b + c
    return 1.0 if m == 0 else min(1.0, 2 * sum(math.comb(m, i) for i in range(min(b, c) + 1)) / 2**m)


@wrong("ch11.mcnemar_p")
def mcnemar_p_one_sided(b, c):
    m = b + c
    return 1.0 if m == 0 else sum(math.comb(m, i) for i in range(min(b, c) + 1)) / 2**m


@wrong("ch11.mcnemar_p")
def mcnemar_p_uncapped(b, c):  # doubling can exceed 1
    m = b + c
    return 1.0 if m == 0 else 2 * sum(math.comb(m, i) for i in range(min(b, c) + 1)) / 2**m


@wrong("ch11.mcnemar_p")
def mcnemar_p_chi_square(b, c):  # the large-sample approximation, not the exact test
    from scipy.stats import chi2

    return 1.0 if b + c == 0 else float(chi2.sf((b - c) ** 2 / (b + c), 1))


@good("ch14.mean_reciprocal_rank")
def mean_reciprocal_rank(S):
    S = np.asarray(S)
    rank = (S >= np.diag(S)[:, None]).sum(1)  # the answer itself and every item scoring at least as high
    return float((1 / rank).mean())


@wrong("ch14.mean_reciprocal_rank")
def mean_reciprocal_rank_argsort(S):  # a tie with the right answer is counted in its favour
    S = np.asarray(S)
    return float(np.mean([1 / (1 + list(np.argsort(-row, kind="stable")).index(i)) for i, row in enumerate(S)]))


@wrong("ch14.mean_reciprocal_rank")
def mean_reciprocal_rank_of_mean_rank(S):  # 1 / mean rank, not the mean of 1 / rank
    S = np.asarray(S)
    return float(1 / (S >= np.diag(S)[:, None]).sum(1).mean())


@wrong("ch14.mean_reciprocal_rank")
def mean_reciprocal_rank_by_column(S):  # ranks the queries for each item instead of the items for each query
    S = np.asarray(S)
    return float((1 / (S >= np.diag(S)[None, :]).sum(0)).mean())


# ======== Models and checkpoints
@good("ch12.count_parameters")
def count_parameters(model, trainable_only=False):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@wrong("ch12.count_parameters")
def count_parameters_ignores_frozen_flag(model, trainable_only=False):
    return sum(p.numel() for p in model.parameters())


@wrong("ch12.count_parameters")
def count_parameters_counts_tensors(model, trainable_only=False):
    return len([p for p in model.parameters() if p.requires_grad or not trainable_only])


@good("ch12.weights_megabytes")
def weights_megabytes(model):
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6


@wrong("ch12.weights_megabytes")
def weights_megabytes_always_float32(model):
    return sum(p.numel() for p in model.parameters()) * 4 / 1e6


@wrong("ch12.weights_megabytes")
def weights_megabytes_mebibytes(model):
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


@good("ch13.sha256_file")
def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@wrong("ch13.sha256_file")
def sha256_file_first_chunk(path, chunk=1 << 20):  # the loop that reads once
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(chunk)).hexdigest()


@wrong("ch13.sha256_file")
def sha256_file_of_the_name(path):
    return hashlib.sha256(str(path).encode()).hexdigest()


@good("ch13.safetensors_shapes")
def safetensors_shapes(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


@wrong("ch13.safetensors_shapes")
def safetensors_shapes_keeps_metadata(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return {k: v.get("shape") if isinstance(v, dict) and "shape" in v else v for k, v in header.items()}


@wrong("ch13.safetensors_shapes")
def safetensors_shapes_big_endian(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "big")
        header = json.loads(f.read(n))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


# ======== Applications
@good("ch14.centred_predictions")
def centred_predictions(margin, unlabelled_idx, idx):
    return (margin[idx] > np.median(margin[unlabelled_idx])).astype(int)


@wrong("ch14.centred_predictions")
def centred_predictions_median_of_all(margin, unlabelled_idx, idx):  # reads every margin
    return (margin[idx] > np.median(margin)).astype(int)


@wrong("ch14.centred_predictions")
def centred_predictions_mean(margin, unlabelled_idx, idx):  # the mean moves with one extreme margin
    return (margin[idx] > np.mean(margin[unlabelled_idx])).astype(int)


@wrong("ch14.centred_predictions")
def centred_predictions_uncentred(margin, unlabelled_idx, idx):  # threshold 0: the bias the exercise removes
    return (margin[idx] > 0).astype(int)


def _areas(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    c = ((np.maximum(a[..., 2], b[..., 2]) - np.minimum(a[..., 0], b[..., 0]))
         * (np.maximum(a[..., 3], b[..., 3]) - np.minimum(a[..., 1], b[..., 1])))
    return inter, union, c


@good("ch14.generalized_iou")
def generalized_iou(a, b):
    inter, union, c = _areas(a, b)
    return inter / union - (c - union) / c


@wrong("ch14.generalized_iou")
def generalized_iou_is_iou(a, b):  # no penalty: every disjoint pair scores 0
    inter, union, _ = _areas(a, b)
    return inter / union


@wrong("ch14.generalized_iou")
def generalized_iou_over_union(a, b):  # divides the empty part of C by the union instead of by C
    inter, union, c = _areas(a, b)
    return inter / union - (c - union) / union


@wrong("ch14.generalized_iou")
def generalized_iou_intersection_box(a, b):  # C from the overlap's edges instead of the enclosing box's
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    inter, union, _ = _areas(a, b)
    c = np.abs((np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
               * (np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])))
    return inter / union - np.abs(c - union) / np.maximum(c, union)


@wrong("ch14.generalized_iou")
def generalized_iou_scalar_only(a, b):  # works for two boxes, not for two arrays of boxes
    a, b = tuple(np.asarray(a, dtype=float).ravel()[:4]), tuple(np.asarray(b, dtype=float).ravel()[:4])
    inter, union, c = _areas(a, b)
    return inter / union - (c - union) / c


@good("ch15.client_drift")
def client_drift(states):
    vecs = torch.stack([torch.cat([t.flatten().float() for t in s.values()]) for s in states])
    return (vecs - vecs.mean(0)).norm(dim=1).mean().item()


@wrong("ch15.client_drift")
def client_drift_per_tensor(states):  # averages the drift of each tensor separately
    out = []
    for key in states[0]:
        t = torch.stack([s[key].flatten().float() for s in states])
        out.append((t - t.mean(0)).norm(dim=1).mean())
    return torch.stack(out).mean().item()


@wrong("ch15.client_drift")
def client_drift_squared(states):  # mean squared distance
    vecs = torch.stack([torch.cat([t.flatten().float() for t in s.values()]) for s in states])
    return ((vecs - vecs.mean(0)) ** 2).sum(1).mean().item()


# ======== every check: one good and at least one wrong answer
def _stub(*args, **kwargs):
    raise NotImplementedError


# ======== Scaling out
def _ring(xs, all_gather=True):
    R = len(xs)
    chunks = [list(np.array_split(np.asarray(x, dtype=float).copy(), R)) for x in xs]
    sent = [0] * R
    for s in range(R - 1):  # reduce-scatter
        msgs = [(r, (r - s) % R, chunks[r][(r - s) % R].copy()) for r in range(R)]
        for r, c, data in msgs:
            chunks[(r + 1) % R][c] += data
            sent[r] += data.size
    for s in range(R - 1 if all_gather else 0):  # all-gather
        msgs = [(r, (r + 1 - s) % R, chunks[r][(r + 1 - s) % R].copy()) for r in range(R)]
        for r, c, data in msgs:
            chunks[(r + 1) % R][c] = data
            sent[r] += data.size
    return [np.concatenate(c) for c in chunks], sent


@good("ch16.ring_allreduce")
def ring_allreduce(xs):
    return _ring(xs)


@wrong("ch16.ring_allreduce")
def ring_allreduce_naive(xs):  # the sum is right, but every rank mails its whole array to every other
    total = sum(np.asarray(x, dtype=float) for x in xs)
    return [total.copy() for _ in xs], [(len(xs) - 1) * len(x) for x in xs]


@wrong("ch16.ring_allreduce")
def ring_allreduce_reduce_scatter_only(xs):  # stops after the reduce-scatter (counts doubled to look right)
    out, sent = _ring(xs, all_gather=False)
    return out, [2 * v for v in sent]


@good("ch16.min_gpus")
def min_gpus(n_params, gpu_gb, headroom=0.25):
    return math.ceil(16 * n_params / (gpu_gb * 1e9 * (1 - headroom)))


@wrong("ch16.min_gpus")
def min_gpus_floor(n_params, gpu_gb, headroom=0.25):  # rounds down: the model would not fit
    return int(16 * n_params // (gpu_gb * 1e9 * (1 - headroom)))


@wrong("ch16.min_gpus")
def min_gpus_weights_only(n_params, gpu_gb, headroom=0.25):  # counts 2 bytes of weights, forgets gradients and Adam
    return math.ceil(2 * n_params / (gpu_gb * 1e9 * (1 - headroom)))



def test_every_check_has_a_good_and_a_wrong_answer():
    assert sorted(GOOD) == available(), "checks without a reference answer here: " \
        f"{sorted(set(available()) - set(GOOD))}; answers for no check: {sorted(set(GOOD) - set(available()))}"
    assert sorted(WRONG) == available(), f"checks without a wrong answer here: {sorted(set(available()) - set(WRONG))}"


@pytest.mark.parametrize("name", available())
def test_good_answer_passes(name, capsys):
    assert name in GOOD, f"add a reference answer for {name} to tests/test_checks.py"
    assert check(name, GOOD[name], strict=False) is True, capsys.readouterr().out
    assert capsys.readouterr().out.startswith(f"[pass] {name}")


@pytest.mark.parametrize("name", available())
def test_wrong_answers_fail(name, capsys):
    assert WRONG.get(name), f"add a plausible wrong answer for {name} to tests/test_checks.py"
    for fn in WRONG[name]:
        assert check(name, fn, strict=False) is False, f"{fn.__name__} passes {name}"
        out = capsys.readouterr().out
        assert out.startswith(f"[fail] {name}: ") and "Hint: " in out, out
        with pytest.raises(CheckFailed):
            check(name, fn, strict=True)
        capsys.readouterr()


@pytest.mark.parametrize("name", available())
def test_stub_is_todo_and_never_raises(name, capsys):
    assert check(name, _stub, strict=False) is None
    assert check(name, _stub, strict=True) is None
    assert capsys.readouterr().out.count(f"[todo] {name}: not attempted yet") == 2


# ======== the notebooks and the registry agree
def _calls() -> dict[str, list[str]]:
    """Check names called in each chapter's code cells (teacher notebooks, so also the student ones)."""
    calls = {}
    for path in CHAPTERS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        src = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        calls[path.name] = CHECK_CALL.findall(src)
    return calls


def test_notebooks_call_checks():
    assert sum(len(v) for v in _calls().values()) >= len(available())


def test_every_check_a_notebook_calls_exists():
    unknown = {nb: sorted(set(names) - set(available())) for nb, names in _calls().items()}
    assert not {k: v for k, v in unknown.items() if v}


def test_every_check_is_called_by_its_chapter():
    """``chNN.x`` is called in chapter NN (the name says which exercise it checks), exactly once."""
    calls = _calls()
    for name in available():
        chapter = re.fullmatch(r"ch(\d\d)\.\w+", name)
        assert chapter, f"check name {name!r} is not chNN.<function>"
        where = [nb for nb, names in calls.items() for n in names if n == name]
        assert where and all(nb.startswith(chapter[1] + "_") for nb in where), (name, where)
        assert len(where) == 1, (name, where)


def test_check_name_pattern_finds_calls():  # the regex above must not silently match nothing
    assert CHECK_CALL.findall('ptutils.check("ch01.a", f)\ncheck( \'ch02.b\', g)') == ["ch01.a", "ch02.b"]


# ======== strict and non-strict
def test_strict_raises_on_fail_with_the_printed_line(capsys):
    with pytest.raises(CheckFailed) as e:
        check("ch08.perplexity", perplexity_in_bits, strict=True)
    line = capsys.readouterr().out.strip()
    assert str(e.value) == line and line.startswith("[fail] ch08.perplexity:")
    assert isinstance(e.value, AssertionError)


def test_strict_raises_on_an_unknown_name(capsys):
    with pytest.raises(CheckFailed, match=r"\[fail\] ch08\.perplexty: no such check"):
        check("ch08.perplexty", perplexity, strict=True)


def test_strict_raises_when_the_answer_crashes(capsys):
    def crash(loss):
        return 1 / 0

    with pytest.raises(CheckFailed, match="ZeroDivisionError") as e:
        check("ch08.perplexity", crash, strict=True)
    assert isinstance(e.value.__cause__, ZeroDivisionError)


def test_non_strict_never_raises(capsys):
    def crash(*a):
        raise RuntimeError("boom")

    assert check("ch08.perplexity", perplexity_in_bits, strict=False) is False
    assert check("ch08.perplexty", perplexity, strict=False) is False
    assert check("ch08.perplexity", crash, strict=False) is False
    out = capsys.readouterr().out
    assert out.count("[fail]") == 3 and "no such check" in out and "RuntimeError: boom" in out


@pytest.mark.parametrize("strict", [False, True])
def test_default_follows_PTUTILS_STRICT(monkeypatch, capsys, strict):
    monkeypatch.setattr(config, "STRICT", strict)
    if strict:
        with pytest.raises(CheckFailed):
            ptutils.check("ch08.perplexity", perplexity_in_bits)
    else:
        assert ptutils.check("ch08.perplexity", perplexity_in_bits) is False
    assert ptutils.check("ch08.perplexity", _stub) is None
    assert ptutils.check("ch08.perplexity", perplexity) is True


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_the_switch_parses_like_the_others(monkeypatch, value, expected):
    monkeypatch.setenv("PTUTILS_STRICT", value)
    assert config._flag("PTUTILS_STRICT") is expected
    monkeypatch.setenv("PTUTILS_STRICT", "maybe")
    with pytest.raises(ValueError, match="PTUTILS_STRICT"):
        config._flag("PTUTILS_STRICT")


def test_the_switch_is_read_from_the_environment():
    import os
    import subprocess
    import sys

    code = "import ptutils.config as c; print(c.STRICT, c.is_strict())"
    for value in ("1", "0"):
        env = {**os.environ, "PTUTILS_STRICT": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        assert out.split() == [str(value == "1")] * 2


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="registered twice"):
        checks.register("ch08.perplexity", "")(lambda f: None)


def test_make_runs_notebooks_strict():
    """Every Makefile recipe line that runs notebooks (nbval or jupyter-book) sets PTUTILS_STRICT=1."""
    lines = (ROOT / "Makefile").read_text().replace("\\\n", " ").splitlines()  # join continued lines
    runs = [ln for ln in lines if ln.startswith("\t") and ("--nbval" in ln or "jupyter-book build" in ln)]
    assert len(runs) >= 4, runs  # test, test-notebooks, book, student
    assert all("PTUTILS_STRICT=1" in ln for ln in runs), [ln for ln in runs if "PTUTILS_STRICT=1" not in ln]


def test_make_runs_notebooks_without_bars():
    """Every Makefile recipe line that executes notebooks for a page or a test asks for final lines,
    not bars (ptutils.progress): a built page and a tested notebook hold no progress bar."""
    lines = (ROOT / "Makefile").read_text().replace("\\\n", " ").splitlines()
    runs = [ln for ln in lines if ln.startswith("\t") and ("--nbval" in ln or "jupyter-book build" in ln)]
    assert len(runs) >= 4, runs
    assert all("PTUTILS_PROGRESS=line" in ln for ln in runs), [ln for ln in runs if "PTUTILS_PROGRESS=line" not in ln]

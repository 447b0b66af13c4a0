"""Causal language modelling: a counted bigram baseline, a small GPT built from the book's blocks,
and sampling.

Chapter 8 trains a character-level GPT on the book's offline corpus and compares it
with the bigram model on held-out text; both are scored by the same measure,
:func:`lm_loss` (mean cross-entropy in nats per predicted character).

Shapes: ``ids`` are 1-D int64 streams of token ids; batches are ``(B, T)``;
logits are ``(B, T, V)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import causal_mask
from .transformer import EncoderBlock

DOC_SEPARATOR = "\n"
"""The character that joins documents in a character stream (the model sees where one ends)."""


def _check_ids(ids, name: str = "ids", dim: int | None = None) -> None:
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(ids).__name__}")
    if ids.dtype != torch.int64:
        raise TypeError(f"{name} must hold int64 token ids (torch.long), got {ids.dtype}")
    if dim is not None and ids.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimension(s), got shape {tuple(ids.shape)}")


class CharTokenizer:
    """Characters as tokens: a vocabulary of the characters of a text, sorted.

    ``encode`` refuses a character outside the vocabulary (naming it) instead of
    mapping it silently to some other id.
    """

    def __init__(self, text: str):
        if not text:
            raise ValueError("cannot build a character vocabulary from an empty text")
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown!r}")
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= i < len(self.chars)]
        if bad:
            raise ValueError(f"ids outside the vocabulary of {len(self.chars)}: {bad[:5]}")
        return "".join(self.chars[i] for i in ids)


def char_splits(docs: list[str], *, val_fraction: float = 0.05, test_fraction: float = 0.05,
                seed: int = 0) -> tuple[CharTokenizer, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split whole documents into train / validation / test and encode each as one character stream.

    Documents are shuffled with ``seed`` and assigned to the splits until each has its
    share of *characters*; held-out text is therefore never a continuation of a
    training document. The vocabulary is that of the training documents, and a
    held-out character outside it is an error (no silent unknown token).

    Returns:
        ``(tokenizer, train_ids, val_ids, test_ids)``, each stream 1-D int64, documents
        joined by :data:`DOC_SEPARATOR`.
    """
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in (0, 1) with a sum below 1")
    docs = [d for d in docs if d]
    if len(docs) < 3:
        raise ValueError(f"need at least 3 non-empty documents, got {len(docs)}")
    order = torch.randperm(len(docs), generator=torch.Generator().manual_seed(seed)).tolist()
    total = sum(len(d) for d in docs)
    parts, filled = {"test": [], "val": [], "train": []}, 0
    for i in order:
        if filled < test_fraction * total or not parts["test"]:
            parts["test"].append(docs[i])
        elif filled < (test_fraction + val_fraction) * total or not parts["val"]:
            parts["val"].append(docs[i])
        else:
            parts["train"].append(docs[i])
        filled += len(docs[i])
    if not parts["train"]:
        raise ValueError("no documents left for training: use smaller held-out fractions")
    joined = {k: DOC_SEPARATOR.join(v) for k, v in parts.items()}
    tok = CharTokenizer(joined["train"])
    return tok, tok.encode(joined["train"]), tok.encode(joined["val"]), tok.encode(joined["test"])


class BigramLM:
    """The count-based baseline: ``p(b | a) = (count(a, b) + alpha) / (count(a) + alpha V)``.

    ``alpha`` is add-alpha smoothing (``alpha=1``: Laplace); choose it on validation text.
    """

    def __init__(self, vocab_size: int, alpha: float = 1.0):
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        if not alpha > 0:
            raise ValueError(f"alpha must be positive (a zero count would give probability 0), got {alpha}")
        self.vocab_size, self.alpha = vocab_size, alpha
        self.counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)

    def fit(self, ids: torch.Tensor) -> "BigramLM":
        """Count every adjacent pair ``(ids[t], ids[t + 1])``."""
        _check_ids(ids, dim=1)
        if len(ids) < 2:
            raise ValueError("need at least two tokens to count a pair")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"ids must lie in [0, {self.vocab_size})")
        V = self.vocab_size
        pairs = ids[:-1].long() * V + ids[1:].long()
        self.counts = torch.bincount(pairs, minlength=V * V).view(V, V).double()
        return self

    def log_probs(self) -> torch.Tensor:
        """``(V, V)``: row ``a`` holds ``log p(. | a)``."""
        smoothed = self.counts + self.alpha
        return (smoothed / smoothed.sum(1, keepdim=True)).log()

    def loss(self, ids: torch.Tensor) -> float:
        """Mean cross-entropy (nats) of predicting ``ids[1:]`` from the token before each."""
        return float(self.token_losses(ids).mean())

    def token_losses(self, ids: torch.Tensor) -> torch.Tensor:
        """``(len(ids) - 1,)``: the cross-entropy of each prediction ``ids[t]`` -> ``ids[t + 1]``."""
        _check_ids(ids, dim=1)
        if len(ids) < 2:
            raise ValueError("need at least two tokens to score a prediction")
        return -self.log_probs()[ids[:-1].long(), ids[1:].long()]

    def sample(self, start: int, length: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """``length`` tokens drawn one after the other, starting after token ``start``."""
        probs = F.softmax(self.log_probs() / _check_temperature(temperature), dim=-1)
        out, prev = [], int(start)
        for _ in range(length):
            prev = int(torch.multinomial(probs[prev], 1, generator=generator))
            out.append(prev)
        return torch.tensor(out, dtype=torch.long)


@dataclass
class GPTConfig:
    """The size of a :class:`GPT`. ``block_size``: the longest context it reads."""

    vocab_size: int
    block_size: int = 64
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    d_ff: int = 512
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "d_model", "num_heads", "num_layers", "d_ff"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}")


class GPT(nn.Module):
    """A decoder-only Transformer: the book's :class:`~ptutils.transformer.EncoderBlock` with a causal mask.

    Token and learned position embeddings, ``num_layers`` blocks whose self-attention
    lets position ``t`` see positions ``<= t`` only (:func:`ptutils.attention.causal_mask`),
    and an output layer that shares its weights with the token embedding (as GPT-2
    does). The blocks are post-norm like BERT's; GPT-2 moved the norm before each
    sub-layer, which matters for deep models, not for four layers.

    Shapes:
        ids: ``(B, T)`` with ``T <= block_size``; output logits: ``(B, T, vocab_size)``,
        where ``logits[:, t]`` predicts token ``t + 1``.
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.block_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(EncoderBlock(cfg.d_model, cfg.num_heads, cfg.d_ff, cfg.dropout, activation="gelu")
                                    for _ in range(cfg.num_layers))
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied: one matrix embeds and predicts tokens
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)  # GPT-2's initialisation
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(ids))  # (B, T, V)

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """The last block's output ``(B, T, d_model)``: position ``t`` summarises tokens ``<= t``."""
        _check_ids(ids, dim=2)
        T = ids.shape[1]
        if not 1 <= T <= self.cfg.block_size:
            raise ValueError(f"sequence length {T} must be between 1 and block_size={self.cfg.block_size}")
        if ids.min() < 0 or ids.max() >= self.cfg.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.cfg.vocab_size})")
        x = self.drop(self.tok(ids) + self.pos(torch.arange(T, device=ids.device)))  # (B, T, d_model)
        mask = causal_mask(T, device=ids.device)  # (T, T): t sees positions <= t
        for block in self.blocks:
            x, _ = block(x, mask=mask)
        return x


def causal_lm_loss(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of a ``(B, T + 1)`` batch: inputs ``ids[:, :-1]``, targets ``ids[:, 1:]``.

    Every position is a prediction (no masking): the causal mask, not the labels,
    keeps the model from seeing the token it predicts.
    """
    _check_ids(ids, dim=2)
    if ids.shape[1] < 2:
        raise ValueError(f"need windows of at least 2 tokens (an input and a target), got {ids.shape[1]}")
    logits = model(ids[:, :-1])  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def causal_lm_step(model, batch) -> torch.Tensor:
    """The step :func:`ptutils.training.fit` trains with: :func:`causal_lm_loss` of a batch of windows."""
    return causal_lm_loss(model, batch)


def random_windows(ids: torch.Tensor, n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` windows of ``length`` consecutive tokens at random offsets of the stream: ``(n, length)``."""
    _check_ids(ids, dim=1)
    if len(ids) < length:
        raise ValueError(f"stream of {len(ids)} tokens is shorter than one window of {length}")
    starts = torch.randint(len(ids) - length + 1, (n,), generator=generator)
    return ids[starts[:, None] + torch.arange(length)]


@torch.no_grad()
def lm_loss(model: nn.Module, ids: torch.Tensor, *, batch_size: int = 64) -> float:
    """Mean cross-entropy (nats) of ``model`` predicting every token of ``ids`` after the first.

    The mean of :func:`token_losses`: the same targets :meth:`BigramLM.loss` scores.
    """
    return float(token_losses(model, ids, batch_size=batch_size).mean())


@torch.no_grad()
def token_losses(model: nn.Module, ids: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
    """``(len(ids) - 1,)``: the cross-entropy of predicting ``ids[t + 1]``, in stream order.

    The stream is cut into consecutive windows of ``block_size + 1`` tokens that overlap
    by one, so each token from the second on is predicted exactly once (from the tokens
    before it in its window, up to ``block_size`` of them), aligned with
    :meth:`BigramLM.token_losses`.
    """
    _check_ids(ids, dim=1)
    if len(ids) < 2:
        raise ValueError("need at least two tokens to score a prediction")
    model.eval()
    T = model.cfg.block_size
    device = next(model.parameters()).device
    starts = list(range(0, len(ids) - 1, T))
    out = [None] * len(starts)
    full = [(n, s) for n, s in enumerate(starts) if s + T + 1 <= len(ids)]
    for i in range(0, len(full), batch_size):
        chunk = full[i:i + batch_size]
        w = torch.stack([ids[s:s + T + 1] for _, s in chunk]).to(device)  # (b, T + 1)
        logits = model(w[:, :-1])  # (b, T, V)
        loss = F.cross_entropy(logits.transpose(1, 2), w[:, 1:], reduction="none").cpu()  # (b, T)
        for (n, _), row in zip(chunk, loss, strict=True):
            out[n] = row
    if starts and out[-1] is None:  # the last, shorter window
        w = ids[starts[-1]:].to(device)[None]
        out[-1] = F.cross_entropy(model(w[:, :-1])[0], w[0, 1:], reduction="none").cpu()
    return torch.cat(out).double()


def _check_temperature(temperature: float) -> float:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive (use top_k=1 for greedy decoding), got {temperature}")
    return float(temperature)


@torch.no_grad()
def generate(model: GPT, prompt: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Extend a 1-D ``prompt`` by ``max_new_tokens`` tokens sampled one at a time.

    Each step reads the last ``block_size`` tokens, divides the logits of the next
    token by ``temperature`` (below 1: sharper, above 1: flatter), keeps the ``top_k``
    most likely tokens if given, and samples from the softmax. ``top_k=1`` is greedy
    decoding. Returns the prompt followed by the new tokens.
    """
    _check_ids(prompt, "prompt", dim=1)
    if len(prompt) == 0:
        raise ValueError("the prompt must hold at least one token")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    temperature = _check_temperature(temperature)
    if top_k is not None and not 1 <= top_k <= model.cfg.vocab_size:
        raise ValueError(f"top_k must be between 1 and the vocabulary size {model.cfg.vocab_size}, got {top_k}")
    model.eval()
    device = next(model.parameters()).device
    ids = prompt.long().to(device)
    for _ in range(max_new_tokens):
        logits = model(ids[-model.cfg.block_size:][None])[0, -1] / temperature  # (V,)
        if top_k is not None:
            kth = logits.topk(top_k).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = F.softmax(logits.float(), dim=-1).cpu()
        nxt = torch.multinomial(probs, 1, generator=generator).to(device)
        ids = torch.cat([ids, nxt])
    return ids.cpu()


def pretrain_causal_lm(model: GPT, train_ids: torch.Tensor, val_ids: torch.Tensor, *, steps: int,
                       eval_every: int, batch_size: int = 32, lr: float = 1e-3, warmup: int = 100,
                       weight_decay: float = 0.1, clip: float = 1.0, seed: int = 0, on_eval=None,
                       log: bool = False, device=None, accumulate: int = 1,
                       progress: str | None = "LM pre-training") -> dict:
    """Train ``model`` on random windows of ``train_ids`` by :func:`ptutils.training.fit`.

    ``steps`` optimiser steps in rounds of ``eval_every`` (fit's "epochs"); after each
    round the held-out loss on ``val_ids`` (:func:`lm_loss`) is recorded and
    ``on_eval(step, model)`` is called, e.g. to print a sample. AdamW (weight decay on
    weight matrices), linear warm-up over ``warmup`` steps then linear decay, gradient
    norm clipped at ``clip``. ``accumulate`` splits each batch into that many micro-batches
    (fit's gradient accumulation). Under ``torchrun`` the run is data-parallel (fit's
    docstring): ``batch_size`` is the global batch, and only rank 0 evaluates.

    Returns:
        fit's history with ``"loss"`` (mean training loss of each round), ``"val_loss"``
        and ``"step"`` (the steps after which they were measured), and
        ``"initial_val_loss"`` (before training).
    """
    from .training import fit, linear_warmup

    if steps < 1 or eval_every < 1 or steps % eval_every:
        raise ValueError(f"steps ({steps}) must be a positive multiple of eval_every ({eval_every})")
    if device is not None:
        model.to(device)
    initial = lm_loss(model, val_ids)
    length = model.cfg.block_size + 1

    def batches(g):
        for _ in range(eval_every):
            yield random_windows(train_ids, batch_size, length, g)

    def after_round(epoch, m):
        step = (epoch + 1) * eval_every
        if on_eval is not None:
            on_eval(step, m)
        return {"val_loss": lm_loss(m, val_ids), "step": step}

    hist = fit(model, causal_lm_step, batches, epochs=steps // eval_every, lr=lr, weight_decay=weight_decay,
               schedule=linear_warmup(steps, warmup), clip=clip, seed=seed, on_epoch_end=after_round,
               log_every=1 if log else 0, loss_name="train LM loss", device=device, accumulate=accumulate,
               progress=progress)
    hist["initial_val_loss"] = initial
    return hist




def normalise_text(text: str, tok: CharTokenizer) -> str:
    """Lower-case ``text`` and turn every character outside ``tok``'s vocabulary into a space
    (runs of spaces become one): how text from elsewhere (the benchmark's reviews, with
    capitals and punctuation) is fed to a model trained on the book's lower-case corpus."""
    out = "".join(c if c in tok.index else " " for c in text.lower())
    return " ".join(out.split()) or " "


@torch.no_grad()
def text_features(model: GPT, tok: CharTokenizer, texts, *, batch_size: int = 256) -> torch.Tensor:
    """Frozen sentence features from a :class:`GPT`: the mean of its hidden states over every character.

    Each text is normalised (:func:`normalise_text`) and cut into chunks of
    ``block_size`` characters, each read on its own; the features average the hidden
    states of all characters of all chunks.

    Shapes:
        output: ``(len(texts), d_model)`` float32.
    """
    model.eval()
    T, device = model.cfg.block_size, next(model.parameters()).device
    chunks, owner = [], []
    for i, t in enumerate(texts):
        ids = tok.encode(normalise_text(t, tok))
        for s in range(0, len(ids), T):
            chunks.append(ids[s:s + T])
            owner.append(i)
    sums = torch.zeros(len(texts), model.cfg.d_model)
    counts = torch.zeros(len(texts))
    order = sorted(range(len(chunks)), key=lambda j: len(chunks[j]))  # equal lengths batch together
    for i in range(0, len(order), batch_size):
        group = order[i:i + batch_size]
        by_len = {}
        for j in group:
            by_len.setdefault(len(chunks[j]), []).append(j)
        for length, js in by_len.items():
            h = model.hidden(torch.stack([chunks[j] for j in js]).to(device)).cpu()  # (n, length, d)
            for j, row in zip(js, h, strict=True):
                sums[owner[j]] += row.sum(0)
                counts[owner[j]] += length
    return sums / counts[:, None]

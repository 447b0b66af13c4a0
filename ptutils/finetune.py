"""Reusing a pre-trained encoder under a new task head.

Strategies, from cheapest to most flexible:

* ``"probe"``: freeze the encoder, train only the head (a linear probe);
* ``"partial"``: train the head and the last ``unfreeze_last`` layers of the encoder;
* ``"full"``: train everything, optionally with a smaller learning rate for the
  encoder than for the head (*discriminative learning rates*).

Weights move between models only through :func:`ptutils.checkpoint.copy_weights`, which checks
every key and shape (never a silent ``load_state_dict(strict=False)``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .pooling import mean_pool
from .training import epochs_for  # noqa: F401 (re-exported: the recipe's epoch rule)

STRATEGIES = ("probe", "partial", "full")


def _has_parameters(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def _layers(encoder: nn.Module) -> list[nn.Module]:
    """The encoder's layers, first to last, as ``"partial"`` counts them.

    A Transformer's layers are its blocks: the one ``nn.ModuleList`` of blocks it holds
    (``blocks`` in :class:`ptutils.TransformerEncoder`, ``encoder.layer`` in a Hugging
    Face ``BertModel``); its embeddings and BERT's pooler are not layers. Any other
    encoder (an ``nn.Sequential`` of convolutions) counts its children that have parameters.
    """
    stacks = {name: m for name, m in encoder.named_modules()
              if isinstance(m, nn.ModuleList) and len(m) and all(_has_parameters(b) for b in m)}
    outer = [name for name in stacks  # a ModuleList inside a block (heads, experts) is no stack of layers
             if not any(other != name and name.startswith(other + ".") for other in stacks)]
    if len(outer) > 1:
        raise ValueError(f"the encoder holds several stacks of layers {outer}: pass the part to unfreeze")
    if outer:
        return list(stacks[outer[0]])
    return [m for m in encoder.children() if _has_parameters(m)]


def apply_strategy(encoder: nn.Module, head: nn.Module, strategy: str, unfreeze_last: int = 1) -> int:
    """Set ``requires_grad`` for a fine-tuning strategy; return the number of trainable parameters.

    ``"partial"`` trains the head and the encoder's last ``unfreeze_last`` layers: for a
    Transformer, whole blocks (:func:`_layers`); everything below them stays frozen.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    for p in encoder.parameters():
        p.requires_grad_(strategy == "full")
    if strategy == "partial":
        layers = _layers(encoder)
        if not 1 <= unfreeze_last <= len(layers):
            raise ValueError(f"unfreeze_last must be in 1..{len(layers)} (the encoder's layers), got {unfreeze_last}")
        for layer in layers[-unfreeze_last:]:
            for p in layer.parameters():  # the whole layer, all its sub-modules
                p.requires_grad_(True)
    for p in head.parameters():
        p.requires_grad_(True)
    return sum(p.numel() for m in (encoder, head) for p in m.parameters() if p.requires_grad)


def param_groups(encoder: nn.Module, head: nn.Module, lr: float, encoder_lr_scale: float = 1.0) -> list[dict]:
    """Optimiser groups: the head at ``lr``, the trainable encoder parameters at ``lr * encoder_lr_scale``."""
    groups = [{"params": [p for p in head.parameters() if p.requires_grad], "lr": lr}]
    enc = [p for p in encoder.parameters() if p.requires_grad]
    if enc:
        groups.append({"params": enc, "lr": lr * encoder_lr_scale})
    return groups


class SequenceClassifier(nn.Module):
    """An encoder, mean pooling over real tokens, and a linear head.

    ``encoder(input_ids, attention_mask)`` must return hidden states
    ``(B, T, d_model)`` (a :class:`ptutils.TransformerEncoder` does).

    Shapes:
        input_ids, attention_mask: ``(B, T)``; output logits: ``(B, num_classes)``.
    """

    def __init__(self, encoder: nn.Module, d_model: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids, attention_mask)  # (B, T, d_model)
        pooled = mean_pool(hidden, attention_mask)  # (B, d_model)
        return self.head(self.dropout(pooled))  # (B, num_classes)


def hf_classification_step(model, batch) -> torch.Tensor:
    """The loss of a Hugging Face sequence classifier on one tokenised batch that carries ``labels``."""
    return model(**batch).loss  # labels given: the model computes the cross-entropy itself


def finetune_hf(model, tokenizer, texts, labels, *, epochs: int = 4, lr: float = 5e-5,
                batch_size: int = 16, warmup_ratio: float = 0.1, weight_decay: float = 0.01,
                max_length: int = 64, seed: int = 0, log: bool = False, on_epoch_end=None,
                group_by_length: bool = False, device=None, progress: str | None = "fine-tuning") -> dict:
    """Fine-tune a Hugging Face ``...ForSequenceClassification`` model: the standard recipe.

    Mini-batches of shuffled examples, tokenised on the fly and given their labels,
    so the model returns the cross-entropy loss (:func:`hf_classification_step`);
    AdamW with weight decay on weight matrices; the learning rate rises linearly over
    the first ``warmup_ratio`` of the steps and then decays linearly to zero
    (:func:`ptutils.training.linear_warmup`). Trained by :func:`ptutils.training.fit`,
    on ``ptutils.config.device()`` unless ``device`` says otherwise.

    Args:
        on_epoch_end: optional ``f(epoch, model) -> dict`` called after each epoch (in
            eval mode), e.g. validation accuracy; its numbers are recorded in the history.
        group_by_length: batch sentences of similar length together (in shuffled chunks
            of 50 batches, then the batches shuffled), as ``Trainer``'s ``group_by_length``
            does: less padding, the same examples per epoch, roughly half the time on
            short, varied sentences.
        progress: how :func:`ptutils.training.fit` names the run in its bar or final line
            (:mod:`ptutils.progress`); ``None``: silent.

    Returns:
        :func:`ptutils.training.fit`'s history.
    """
    from .config import device as default_device
    from .training import fit, linear_warmup

    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    labels = torch.as_tensor(labels, dtype=torch.long)
    steps = epochs * -(-len(texts) // batch_size)

    def batches(g):
        for idx in _epoch_batches(texts, batch_size, g, group_by_length):
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            batch["labels"] = labels[idx]
            yield batch

    return fit(model, hf_classification_step, batches, epochs=epochs, lr=lr, weight_decay=weight_decay,
               schedule=linear_warmup(steps, int(warmup_ratio * steps)), seed=seed,
               on_epoch_end=on_epoch_end, log_every=1 if log else 0,
               device=default_device() if device is None else device, progress=progress)


def _epoch_batches(texts, batch_size: int, g: torch.Generator, group_by_length: bool) -> list[torch.Tensor]:
    """One epoch's batches of indices: shuffled, or shuffled chunks sorted by length."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = torch.randperm(len(texts), generator=g)
    if not group_by_length:
        return list(order.split(batch_size))
    batches = []
    for chunk in order.split(batch_size * 50):
        lengths = torch.tensor([len(texts[i]) for i in chunk])
        batches += list(chunk[torch.argsort(lengths, descending=True, stable=True)].split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=g)]


@torch.no_grad()
def logits_hf(model, tokenizer, texts, batch_size: int = 64, max_length: int = 64) -> np.ndarray:
    """Class logits ``(len(texts), num_classes)`` of a sequence-classification model, in input order."""
    device = next(model.parameters()).device
    model.eval()
    texts = list(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths, little padding
    out = [None] * len(texts)
    for i in range(0, len(texts), batch_size):
        idx = order[i:i + batch_size]
        batch = tokenizer([texts[j] for j in idx], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        for j, row in zip(idx, model(**batch).logits.float().cpu(), strict=True):
            out[j] = row
    return torch.stack(out).numpy()


def predict_hf(model, tokenizer, texts, batch_size: int = 64, max_length: int = 64) -> np.ndarray:
    """Predicted class indices for ``texts`` with a sequence-classification model."""
    return logits_hf(model, tokenizer, texts, batch_size, max_length).argmax(-1)


class MeanPoolClassifier(nn.Module):
    """A Hugging Face encoder, mean pooling over real tokens, dropout and a linear head.

    This is the head all-MiniLM-L6-v2 was trained with (mean pooling), not BERT's
    ``[CLS]`` head, so fine-tuning starts from the representation the frozen probe
    uses. The call signature matches ``...ForSequenceClassification``: give
    ``labels`` and the output carries the cross-entropy ``loss``.

    Shapes:
        input_ids, attention_mask: ``(B, T)``; ``logits``: ``(B, num_classes)``.
    """

    def __init__(self, encoder: nn.Module, num_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
        from transformers.modeling_outputs import SequenceClassifierOutput

        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state  # (B, T, d_model)
        logits = self.head(self.dropout(mean_pool(hidden, attention_mask)))  # (B, num_classes)
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)  # what Trainer expects


FINETUNE_DEFAULTS = {"epochs": 3, "lr": 5e-5, "batch_size": 32, "warmup_ratio": 0.1,
                     "weight_decay": 0.01, "max_length": 64, "dropout": 0.1, "group_by_length": True,
                     "min_steps": 100}
"""The book's fine-tuning recipe. ``epochs`` is a minimum: with few labels an epoch is one
or two optimiser steps, so the run takes as many epochs as it needs for ``min_steps``
steps (few-shot fine-tuning recipes fix a number of steps for the same reason)."""


def finetune_minilm(bench, train_idx, *, val_idx=None, predict_idx=None, seed: int = 0,
                    head: str = "mean", verbose: bool = True, **settings) -> dict:
    """Fine-tune the packaged all-MiniLM-L6-v2 end to end on benchmark sentences; cached.

    The model is :class:`MeanPoolClassifier` on MiniLM, trained by :func:`finetune_hf`
    (AdamW, linear warm-up then decay). After every epoch it is scored on ``val_idx``;
    at the end it predicts the benchmark's test set and ``predict_idx`` (for
    example the unlabelled pool, as a teacher for distillation). Results are cached
    under a key that hashes the settings, the seed, the exact training indices and
    the benchmark's fingerprint (:mod:`ptutils.cache`), so chapters that ask for the
    same run share it and a changed run is never answered from a stale file.

    Args:
        bench: a :class:`ptutils.data.Benchmark`.
        train_idx: indices of the labelled training sentences (from the pool).
        val_idx: optional validation indices (from the pool), scored after each epoch.
        predict_idx: optional extra indices whose logits are returned.
        head: ``"mean"`` (:class:`MeanPoolClassifier`, how all-MiniLM-L6-v2 was trained) or
            ``"cls"`` (``AutoModelForSequenceClassification``: BERT's head on the ``[CLS]``
            position, through BERT's pooler).
        settings: any of :data:`FINETUNE_DEFAULTS`.

    Returns:
        A dict of arrays: ``test_logits`` ``(len(bench.test), 2)``, ``test_pred``,
        ``val_acc`` and ``val_epoch`` (validation accuracy after those epochs, about five of
        them; empty without ``val_idx``), ``predict_logits``,
        ``loss`` (per epoch) and ``seconds`` (training time, one number).
    """
    from .cache import cached_arrays, file_fingerprint, fingerprint
    from .pretrained import load_text_model, minilm_path
    from .repro import set_seed

    if head not in ("mean", "cls"):
        raise ValueError(f"head must be 'mean' or 'cls', got {head!r}")
    unknown = set(settings) - set(FINETUNE_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown fine-tuning settings {sorted(unknown)}; known: {sorted(FINETUNE_DEFAULTS)}")
    cfg = {**FINETUNE_DEFAULTS, **settings}
    train_idx = np.sort(np.asarray(train_idx, dtype=np.int64))  # the run depends on the set, not its order
    val_idx = np.asarray([] if val_idx is None else val_idx, dtype=np.int64)
    predict_idx = np.asarray([] if predict_idx is None else predict_idx, dtype=np.int64)
    test = set(bench.test.tolist())
    for name, idx in (("train_idx", train_idx), ("val_idx", val_idx), ("predict_idx", predict_idx)):
        if len(idx) and test & set(idx.tolist()) and name != "predict_idx":
            raise ValueError(f"{name} contains test sentences: the test set is never trained or tuned on")
    if len(train_idx) == 0:
        raise ValueError("train_idx is empty")
    if len(val_idx) and set(val_idx.tolist()) & set(train_idx.tolist()):
        raise ValueError("val_idx overlaps train_idx")
    recipe = {"what": "finetune all-MiniLM-L6-v2, mean-pool head", "settings": cfg, "seed": seed,
              "weights": file_fingerprint(minilm_path() / "model.safetensors"), "bench": bench.fingerprint(),
              "train": fingerprint(train_idx),
              "val": fingerprint(val_idx.astype(np.int64)), "predict": fingerprint(predict_idx.astype(np.int64))}
    if head != "mean":  # (the mean head's recipe predates this option; its key stays the same)
        recipe["head"] = head

    def compute():
        set_seed(seed)
        tokenizer, encoder = load_text_model("minilm")
        if head == "mean":
            model = MeanPoolClassifier(encoder, dropout=cfg["dropout"])
        else:
            from transformers import AutoModelForSequenceClassification

            from .config import is_online
            from .pretrained import model_source

            set_seed(seed)  # the new head's initialisation
            model = AutoModelForSequenceClassification.from_pretrained(
                model_source("minilm"), num_labels=2, local_files_only=not is_online(),
                hidden_dropout_prob=cfg["dropout"])
        texts, y = bench.text(train_idx), bench.y(train_idx)
        val_texts, val_y = bench.text(val_idx), bench.y(val_idx)

        n_epochs = epochs_for(len(texts), epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                              min_steps=cfg["min_steps"])
        every = max(1, n_epochs // 5)  # score validation at most about five times

        scored = []  # the epochs (from 1) at which validation was measured

        def score(epoch, m):
            if not len(val_idx) or ((epoch + 1) % every and epoch + 1 != n_epochs):
                return {}
            scored.append(epoch + 1)
            pred = predict_hf(m, tokenizer, val_texts, max_length=cfg["max_length"])
            return {"val_acc": float((pred == val_y).mean())}

        h = finetune_hf(model, tokenizer, texts, y, epochs=n_epochs, lr=cfg["lr"],
                        batch_size=cfg["batch_size"], warmup_ratio=cfg["warmup_ratio"],
                        weight_decay=cfg["weight_decay"], max_length=cfg["max_length"], seed=seed,
                        log=verbose, on_epoch_end=score, group_by_length=cfg["group_by_length"])
        test_logits = logits_hf(model, tokenizer, bench.text(bench.test), max_length=cfg["max_length"])
        extra = (logits_hf(model, tokenizer, bench.text(predict_idx), max_length=cfg["max_length"])
                 if len(predict_idx) else np.zeros((0, 2), np.float32))
        return {"test_logits": test_logits, "test_pred": test_logits.argmax(-1),
                "val_acc": np.array(h.get("val_acc", []), dtype=np.float64),
                "val_epoch": np.array(scored, dtype=np.int64),
                "predict_logits": extra, "loss": np.array(h["loss"]), "seconds": np.array(h["seconds"])}

    return cached_arrays("finetuned-minilm", recipe, compute, verbose=verbose)

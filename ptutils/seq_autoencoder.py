"""An LSTM sequence autoencoder: pre-train on unlabelled text, then fine-tune its encoder.

The recipe of Dai and Le (2015), "Semi-supervised sequence learning": an LSTM
*encoder* reads a sentence into its final state ``(h, c)``; an LSTM *decoder*,
started from that state, reproduces the sentence word by word (teacher forcing:
it sees the true previous word). No labels are needed. Afterwards the embedding
and the encoder initialise a classifier, which is fine-tuned on the labelled data.

Source article 001 builds this model with an undefined ``hidden_dim``, gives the
decoder ``h`` without the cell state ``c``, and compares tensors of mismatched
shapes in the loss; here the decoder receives both parts of the state and the loss
flattens ``(B, T, V)`` logits against ``(B, T)`` targets, ignoring padding.

On the sentence-polarity benchmark (chapter 10), :func:`benchmark_autoencoder`
pre-trains on the text of the unlabelled training pool (never a test sentence) and
caches the weights under their recipe; :func:`lstm_classifier_predictions` trains the
classifier on a labelled draw, fine-tuned from that autoencoder or from scratch with
a vocabulary of its own, its epoch chosen on the validation sentences.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .data import BOS, BOS_TOKEN, PAD, PAD_TOKEN, UNK, UNK_TOKEN

SPECIALS = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN)  # indices PAD, UNK, BOS


def make_word_index(vocab_words, max_words: int | None = None) -> dict:
    """``{"<pad>": 0, "<unk>": 1, "<bos>": 2, word: 3, ...}`` for the first ``max_words`` words."""
    words = list(vocab_words)[:max_words]
    clash = set(SPECIALS) & set(words)
    if clash:
        raise ValueError(f"the vocabulary contains reserved tokens {sorted(clash)}")
    return {**{s: i for i, s in enumerate(SPECIALS)}, **{w: i + len(SPECIALS) for i, w in enumerate(words)}}


def make_windows(corpus, word_index: dict, length: int = 20, max_windows: int | None = None,
                 seed: int = 0) -> torch.Tensor:
    """Cut token lists into non-overlapping windows of ``length`` word ids.

    Args:
        corpus: a list of token lists (documents).
        word_index: from :func:`make_word_index`; unknown words map to ``<unk>``.
        length: window length; a document's last, shorter piece is dropped.
        max_windows: keep a random subset of this many windows (``None``: all).
        seed: seeds that subset.

    Returns:
        ``(N, length)`` long tensor.
    """
    rows = []
    for doc in corpus:
        ids = [word_index.get(w, UNK) for w in doc]
        rows += [ids[i:i + length] for i in range(0, len(ids) - length + 1, length)]
    if not rows:
        raise ValueError(f"no document has {length} tokens; nothing to pre-train on")
    out = torch.tensor(rows, dtype=torch.long)
    if max_windows is not None and max_windows < len(out):
        keep = np.random.default_rng(seed).permutation(len(out))[:max_windows]
        out = out[torch.from_numpy(np.sort(keep))]
    return out


def _check_ids(ids: torch.Tensor, vocab_size: int) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.dim() != 2:
        got = f"{ids.dtype} {tuple(ids.shape)}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"ids must be a (B, T) long tensor of word indices, got {got}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size}), got values in [{ids.min()}, {ids.max()}]")


class SequenceEncoder(nn.Module):
    """Embedding + one-layer LSTM; returns the final state ``(h, c)`` of each sequence.

    Padding (id 0) at the end of a row is skipped: the state is taken at the last
    real token, via a packed sequence.

    Shapes:
        ids: ``(B, T)`` long; h, c: ``(1, B, d_hidden)`` each.
    """

    def __init__(self, vocab_size: int, d_embed: int = 64, d_hidden: int = 128):
        super().__init__()
        self.vocab_size, self.d_hidden = vocab_size, d_hidden
        self.embedding = nn.Embedding(vocab_size, d_embed, padding_idx=PAD)
        self.lstm = nn.LSTM(d_embed, d_hidden, batch_first=True)

    def forward(self, ids):
        _check_ids(ids, self.vocab_size)
        lengths = (ids != PAD).sum(1).clamp(min=1).cpu()  # (B,)
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(ids), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (h, c) = self.lstm(packed)  # (1, B, d_hidden) each
        return h, c


class LSTMSequenceAutoencoder(nn.Module):
    """Encoder LSTM -> state ``(h, c)`` -> decoder LSTM that reproduces the input.

    The decoder reads ``<bos>, x_1, ..., x_{T-1}`` (teacher forcing) starting from
    the encoder's final ``(h, c)``, and predicts ``x_1, ..., x_T``. It shares the
    encoder's embedding table.

    Shapes:
        ids: ``(B, T)`` long; logits: ``(B, T, vocab_size)``.
    """

    def __init__(self, vocab_size: int, d_embed: int = 64, d_hidden: int = 128):
        super().__init__()
        self.encoder = SequenceEncoder(vocab_size, d_embed, d_hidden)
        self.decoder = nn.LSTM(d_embed, d_hidden, batch_first=True)
        self.out = nn.Linear(d_hidden, vocab_size)

    def forward(self, ids):
        h, c = self.encoder(ids)  # (1, B, d_hidden) each
        bos = torch.full_like(ids[:, :1], BOS)
        dec_in = self.encoder.embedding(torch.cat([bos, ids[:, :-1]], dim=1))  # (B, T, d_embed)
        dec_out, _ = self.decoder(dec_in, (h, c))  # (B, T, d_hidden): starts from both h and c
        return self.out(dec_out)  # (B, T, vocab_size)


def reconstruction_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the reconstruction over real (non-padding) tokens.

    Shapes:
        logits: ``(B, T, V)``; ids: ``(B, T)``.
    """
    if logits.shape[:2] != ids.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match targets {tuple(ids.shape)}")
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1),
                                       ignore_index=PAD)


@torch.no_grad()
def reconstruction_accuracy(model: LSTMSequenceAutoencoder, ids: torch.Tensor, batch_size: int = 256) -> float:
    """Share of real tokens that the decoder predicts correctly (teacher forcing)."""
    model.eval()
    where = next(model.parameters()).device
    right = total = 0
    for batch in ids.split(batch_size):
        batch = trim_padding(batch).to(where)
        pred = model(batch).argmax(-1)
        real = batch != PAD
        right += int(((pred == batch) & real).sum())
        total += int(real.sum())
    return right / total


def trim_padding(ids: torch.Tensor) -> torch.Tensor:
    """Drop the columns at the end of a ``(B, T)`` batch that are padding in every row.

    Padding comes last in each row, so this changes no result (the encoder stops at
    each row's last real token, the loss ignores padding); it only saves the work of
    running the decoder and its output layer over empty positions.
    """
    longest = int((ids != PAD).sum(1).max()) if ids.numel() else 0
    return ids[:, :max(longest, 1)]


def batches_by_length(ids: torch.Tensor, batch_size: int, generator: torch.Generator) -> list:
    """Index batches of rows of similar length, the batches in random order.

    Rows are sorted by their number of real tokens (ties broken at random), cut into
    batches of ``batch_size``, and the batches shuffled. With :func:`trim_padding`
    a batch of short sentences then costs what short sentences cost.
    """
    lengths = (ids != PAD).sum(1).double()  # (N,)
    order = torch.argsort(lengths + torch.rand(len(ids), generator=generator, dtype=torch.float64) * 0.5)
    batches = list(order.split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


@torch.no_grad()
def mean_reconstruction_loss(model: LSTMSequenceAutoencoder, ids: torch.Tensor, batch_size: int = 256) -> float:
    """Cross-entropy per real token of ``ids`` (every real token weighs the same)."""
    model.eval()
    where = next(model.parameters()).device
    total, count = 0.0, 0
    for batch in ids.split(batch_size):
        batch = trim_padding(batch).to(where)
        n = int((batch != PAD).sum())
        total, count = total + reconstruction_loss(model(batch), batch).item() * n, count + n
    return total / count


def sequence_reconstruction_step(model: LSTMSequenceAutoencoder, ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of reproducing a batch of sentences ``ids`` (trimmed of all-padding columns)."""
    batch = trim_padding(ids)
    return reconstruction_loss(model(batch), batch)


def pretrain_sequence_autoencoder(model: LSTMSequenceAutoencoder, train_ids: torch.Tensor,
                                  val_ids: torch.Tensor | None = None, *, epochs: int = 5,
                                  lr: float = 3e-3, batch_size: int = 64, clip: float = 1.0,
                                  seed: int = 0, log: bool = False, by_length: bool = False,
                                  keep_best: bool = False, device=None) -> dict:
    """Train the autoencoder to reproduce ``train_ids``; no labels are used.

    :func:`sequence_reconstruction_step` by :func:`ptutils.training.fit`: Adam with
    gradient-norm clipping (LSTMs need it), no weight decay.

    Args:
        by_length: batch sentences of similar length together (:func:`batches_by_length`)
            instead of at random; much faster on padded sentences of varied length.
        keep_best: after training, restore the epoch with the lowest loss on
            ``val_ids`` (early stopping on held-out text, :class:`ptutils.training.KeepBest`).

    Returns:
        The history of :func:`ptutils.training.fit` with ``"loss"`` and (given ``val_ids``)
        ``"val_loss"`` per epoch, and ``"best_epoch"`` (from 1; the last epoch unless ``keep_best``).
    """
    from .training import KeepBest, fit, shuffled

    _check_ids(train_ids, model.encoder.vocab_size)
    if keep_best and val_ids is None:
        raise ValueError("keep_best needs val_ids to choose the epoch on")
    if val_ids is not None:
        _check_ids(val_ids, model.encoder.vocab_size)

    def batches(g):
        order = (batches_by_length(train_ids, batch_size, g) if by_length
                 else shuffled(len(train_ids), batch_size, g))
        for idx in order:
            yield train_ids[idx]

    keeper = None
    if val_ids is not None:
        keeper = KeepBest(lambda m: mean_reconstruction_loss(m, val_ids), name="val_loss", mode="min")
    hist = fit(model, sequence_reconstruction_step, batches, epochs=epochs, lr=lr, optimizer="adam",
               clip=clip, seed=seed, on_epoch_end=keeper, log_every=1 if log else 0,
               loss_name="reconstruction loss", device=device)
    hist.setdefault("val_loss", [])
    if keep_best:
        keeper.restore(model)
        hist["best_epoch"] = keeper.epoch + 1
    else:
        hist["best_epoch"] = hist["epochs_run"]
    return hist


class LSTMClassifier(nn.Module):
    """A :class:`SequenceEncoder` and a linear head on its final hidden state.

    Build it around a pre-trained encoder (``LSTMClassifier(autoencoder.encoder)``)
    or a fresh one (``LSTMClassifier(SequenceEncoder(V))``): the same architecture,
    so the comparison isolates pre-training.

    Shapes:
        ids: ``(B, T)`` long; logits: ``(B, num_classes)``.
    """

    def __init__(self, encoder: SequenceEncoder, num_classes: int = 2, dropout: float = 0.3):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.d_hidden, num_classes)

    def forward(self, ids):
        h, _ = self.encoder(ids)  # (1, B, d_hidden)
        return self.head(self.dropout(h[0]))  # (B, num_classes)


# --- On the sentence-polarity benchmark (chapter 10's project) -----------------------------

#: Settings of the book's sequence autoencoder on the benchmark (all part of its cache recipe).
AUTOENCODER_DEFAULTS: dict = {"d_embed": 64, "d_hidden": 128, "min_count": 2, "max_words": 8000,
                              "max_len": 40, "epochs": 12, "lr": 3e-3, "batch_size": 64, "clip": 1.0}
#: Settings of fine-tuning (or training from scratch) the LSTM classifier on labelled sentences.
CLASSIFIER_DEFAULTS: dict = {"lr": 3e-3, "epochs": 10, "min_steps": 200, "checks": 10, "batch_size": 32,
                             "weight_decay": 0.01, "dropout": 0.3}


def encode_texts(texts, word_index: dict, max_len: int = 40) -> torch.Tensor:
    """Tokenise texts (:func:`ptutils.data.tokenize`) and map them to a padded ``(N, T)`` id tensor.

    Words outside ``word_index`` become ``<unk>``; a text without tokens becomes a single
    ``<unk>``; sentences longer than ``max_len`` tokens are cut.
    """
    from .data import tokenize
    from .textclf import encode_tokens

    return encode_tokens([tokenize(t) for t in texts], word_index, max_len=max_len)[0]


def vocabulary_of(texts, *, min_count: int = 1, max_words: int | None = None) -> dict:
    """A word index (:func:`make_word_index`) of the words of ``texts`` seen at least ``min_count`` times.

    Words are ordered by decreasing count (ties alphabetically), so ``max_words`` keeps
    the most frequent ones.
    """
    from .data import tokenize
    from .word2vec import build_vocab

    return make_word_index(build_vocab([tokenize(t) for t in texts], min_count=min_count).words, max_words)


class PretrainedAutoencoder:
    """A pre-trained :class:`LSTMSequenceAutoencoder` with its vocabulary and how it was made.

    Attributes:
        model: the autoencoder (eval mode). word_index: its vocabulary.
        history: ``loss``, ``val_loss`` (per epoch), ``best_epoch``, ``seconds`` of pre-training.
        settings: the :data:`AUTOENCODER_DEFAULTS` it was made with.
        recipe: its cache recipe; ``key`` the cache key (part of every fine-tuned model's recipe).
    """

    def __init__(self, model, word_index, history, settings, recipe):
        from .cache import recipe_key

        self.model, self.word_index, self.history = model, word_index, history
        self.settings, self.recipe, self.key = settings, recipe, recipe_key(recipe)

    def __repr__(self) -> str:
        return (f"PretrainedAutoencoder({len(self.word_index):,} words, d_hidden={self.settings['d_hidden']}, "
                f"best epoch {self.history['best_epoch']} of {self.settings['epochs']}, key {self.key})")


def _state_arrays(model: nn.Module) -> dict:
    return {"w_" + k.replace(".", "_"): v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def _load_state_arrays(model: nn.Module, arrays: dict) -> None:
    state = {k: torch.from_numpy(np.array(arrays["w_" + k.replace(".", "_")])) for k in model.state_dict()}
    model.load_state_dict(state, strict=True)


def benchmark_autoencoder(bench, *, seed: int = 0, verbose: bool = True, **settings) -> PretrainedAutoencoder:
    """The sequence autoencoder pre-trained on the benchmark's unlabelled training pool; cached.

    The pre-training text is the *text* of the training pool
    (:func:`ptutils.protocol.split`: the pool without the validation sentences); no
    label is read and no test sentence is seen. The vocabulary is the pool's words
    seen ``min_count`` times (at most ``max_words``). The validation sentences are
    held out: their reconstruction loss is measured after every epoch and chooses the
    epoch that is kept (early stopping).

    The weights are stored with :func:`ptutils.cache.cached_arrays` under a recipe of
    every setting, the seed and the fingerprints of the benchmark and of both index
    sets, so a changed setting never loads a stale model.

    Args:
        bench: a :class:`ptutils.data.Benchmark`.
        settings: any of :data:`AUTOENCODER_DEFAULTS`.
    """
    from .cache import cached_arrays, fingerprint
    from .protocol import split
    from .repro import set_seed
    from .training import TRAINER_VERSION

    unknown = set(settings) - set(AUTOENCODER_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown autoencoder settings {sorted(unknown)}; known: {sorted(AUTOENCODER_DEFAULTS)}")
    cfg = {**AUTOENCODER_DEFAULTS, **settings}
    train_pool, val = split(bench)
    train_pool = np.sort(train_pool)
    if np.intersect1d(train_pool, bench.test).size or np.intersect1d(val, bench.test).size:
        raise AssertionError("pre-training text must not contain test sentences")
    word_index = vocabulary_of(bench.text(train_pool), min_count=cfg["min_count"], max_words=cfg["max_words"])
    recipe = {"what": "LSTM sequence autoencoder on the unlabelled training pool", "settings": cfg, "seed": seed,
              "bench": bench.fingerprint(), "text": fingerprint(train_pool.astype(np.int64)),
              "heldout": fingerprint(np.asarray(val, dtype=np.int64)), "tokenizer": "ptutils.data.tokenize",
              "trainer": TRAINER_VERSION}

    def make():
        set_seed(seed)
        return LSTMSequenceAutoencoder(len(word_index), cfg["d_embed"], cfg["d_hidden"])

    def compute():
        model = make()
        ids = encode_texts(bench.text(train_pool), word_index, cfg["max_len"])
        val_ids = encode_texts(bench.text(val), word_index, cfg["max_len"])
        h = pretrain_sequence_autoencoder(model, ids, val_ids, epochs=cfg["epochs"], lr=cfg["lr"],
                                          batch_size=cfg["batch_size"], clip=cfg["clip"], seed=seed,
                                          log=verbose, by_length=True, keep_best=True)
        return {**_state_arrays(model), "loss": np.array(h["loss"]), "val_loss": np.array(h["val_loss"]),
                "best_epoch": np.array(h["best_epoch"]), "seconds": np.array(h["seconds"])}

    arrays = cached_arrays("seq-autoencoder", recipe, compute, verbose=verbose)
    model = make()
    _load_state_arrays(model, arrays)
    history = {"loss": arrays["loss"].tolist(), "val_loss": arrays["val_loss"].tolist(),
               "best_epoch": int(arrays["best_epoch"]), "seconds": float(arrays["seconds"])}
    return PretrainedAutoencoder(model.eval(), word_index, history, cfg, recipe)


def train_with_validation(model: nn.Module, ids: torch.Tensor, y: torch.Tensor, val_ids: torch.Tensor, y_val,
                          *, lr: float, epochs: int, min_steps: int = 0, checks: int = 10, batch_size: int = 32,
                          weight_decay: float = 0.01, seed: int = 0) -> dict:
    """Train a classifier and keep the weights of the checkpoint with the best validation accuracy.

    The number of epochs is chosen on validation: the model is trained for at least
    ``epochs`` epochs and ``min_steps`` optimiser steps (an epoch of a few labelled
    sentences is a single step, :func:`ptutils.training.epochs_for`), validation
    accuracy is measured at about ``checks`` evenly spaced epochs
    (:class:`ptutils.training.KeepBest` with ``every``), and the best checkpoint
    (ties: the earliest) is restored.

    Returns:
        ``{"val_acc": [...], "val_epoch": [...], "best_epoch": ..., "epochs": ..., "seconds": ...}``.
    """
    from .training import KeepBest, epochs_for, predict, train_classifier

    total = epochs_for(len(ids), epochs=epochs, batch_size=batch_size, min_steps=min_steps)
    y_val = np.asarray(y_val)
    keeper = KeepBest(lambda m: float((predict(m, val_ids).numpy() == y_val).mean()),
                      every=max(1, total // checks), last=total)
    h = train_classifier(model, ids, y, epochs=total, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
                         seed=seed, on_epoch_end=keeper)
    keeper.restore(model)
    return {"val_acc": keeper.scores, "val_epoch": [e + 1 for e in keeper.scored], "best_epoch": keeper.epoch + 1,
            "epochs": total, "seconds": h["seconds"]}


def lstm_classifier_predictions(bench, train_idx, autoencoder: PretrainedAutoencoder, *, pretrained: bool,
                                seed: int = 0, verbose: bool = False, **settings) -> dict:
    """The LSTM classifier trained on ``train_idx``, from the pre-trained encoder or from scratch; cached.

    ``pretrained=True`` copies the autoencoder's embedding and encoder LSTM into an
    :class:`LSTMClassifier` and fine-tunes it with the autoencoder's vocabulary.
    ``pretrained=False`` builds the same architecture (the autoencoder's ``d_embed``,
    ``d_hidden``, ``max_len``) freshly initialised, with a vocabulary of its own: the
    words of its labelled training sentences (at most ``max_words``). Nothing it uses
    comes from pre-training, not even the word list. Both choose their number of
    epochs on the validation sentences (:func:`train_with_validation`) and then
    predict the test sentences once.

    Args:
        settings: any of :data:`CLASSIFIER_DEFAULTS`.

    Returns:
        A dict of arrays: ``test_pred`` ``(len(bench.test),)``, ``val_acc`` and
        ``val_epoch`` (the validation checkpoints), ``best_epoch``, ``seconds``.
    """
    from .cache import cached_arrays, fingerprint
    from .protocol import split
    from .repro import set_seed
    from .training import TRAINER_VERSION

    unknown = set(settings) - set(CLASSIFIER_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown classifier settings {sorted(unknown)}; known: {sorted(CLASSIFIER_DEFAULTS)}")
    cfg = {**CLASSIFIER_DEFAULTS, **settings}
    train_idx = np.sort(np.asarray(train_idx, dtype=np.int64))
    _, val = split(bench)
    if np.intersect1d(train_idx, bench.test).size:
        raise ValueError("train_idx contains test sentences: the test set is never trained or tuned on")
    if np.intersect1d(train_idx, val).size:
        raise ValueError("train_idx overlaps the validation sentences")
    arch = {k: autoencoder.settings[k] for k in ("d_embed", "d_hidden", "max_len", "max_words")}
    recipe = {"what": "LSTM classifier, " + ("fine-tuned sequence autoencoder" if pretrained else "from scratch"),
              "settings": cfg, "arch": arch, "seed": seed, "bench": bench.fingerprint(),
              "train": fingerprint(train_idx), "val": fingerprint(np.asarray(val, dtype=np.int64)),
              "trainer": TRAINER_VERSION}
    if pretrained:
        recipe["autoencoder"] = autoencoder.key

    def compute():
        if pretrained:
            word_index = autoencoder.word_index
            encoder = copy.deepcopy(autoencoder.model.encoder)
        else:
            word_index = vocabulary_of(bench.text(train_idx), min_count=1, max_words=arch["max_words"])
            set_seed(seed)
            encoder = SequenceEncoder(len(word_index), arch["d_embed"], arch["d_hidden"])
        set_seed(seed)
        model = LSTMClassifier(encoder, num_classes=2, dropout=cfg["dropout"])
        ids = encode_texts(bench.text(train_idx), word_index, arch["max_len"])
        val_ids = encode_texts(bench.text(val), word_index, arch["max_len"])
        h = train_with_validation(model, ids, torch.as_tensor(bench.y(train_idx)), val_ids, bench.y(val),
                                  lr=cfg["lr"], epochs=cfg["epochs"], min_steps=cfg["min_steps"],
                                  checks=cfg["checks"], batch_size=cfg["batch_size"],
                                  weight_decay=cfg["weight_decay"], seed=seed)
        from .training import predict

        test_pred = predict(model, encode_texts(bench.text(bench.test), word_index, arch["max_len"])).numpy()
        return {"test_pred": test_pred.astype(np.int64), "val_acc": np.array(h["val_acc"]),
                "val_epoch": np.array(h["val_epoch"]), "best_epoch": np.array(h["best_epoch"]),
                "seconds": np.array(h["seconds"])}

    return cached_arrays("lstm-classifier", recipe, compute, verbose=verbose)

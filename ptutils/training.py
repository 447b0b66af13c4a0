"""The training loop: forward, loss, backward, update, written out once and reused.

Every model in the book is trained by :func:`fit`. What differs between chapters is
the *step*, the function that maps one batch to a loss (cross-entropy of a
classifier, reconstruction error of an autoencoder, NT-Xent, masked-LM loss, ...),
and the *batches*, the function that lays out one epoch of data. :func:`fit` does
the rest, the same way for all of them:

1. put each batch on the model's device (and the model on ``device`` if one is given);
2. ``loss = step(model, batch)``, its gradient by back-propagation, an optional
   clip of the gradient norm;
3. the update ``theta <- theta - lr * step(grad)`` (AdamW's step by default; plain
   SGD would use the gradient itself), with weight decay on weight matrices only
   (:func:`make_optimizer`) and an optional learning-rate schedule;
4. after every epoch, in evaluation mode, an optional ``on_epoch_end(epoch, model)``
   whose numbers (validation loss or accuracy) are recorded next to the training loss.

The history is one format everywhere: ``{"loss": [...], <name>: [...], ...,
"epochs_run": n, "seconds": t}``, one entry per epoch in every list.
"""

from __future__ import annotations

import copy
import time
from contextlib import nullcontext
from typing import Callable, Iterable

import torch
from torch import nn

from .progress import Progress

#: Bumped whenever the training loop's arithmetic changes (a cached artefact trained by
#: :func:`fit` puts it in its recipe, so a local cache never serves a model the current
#: code would not train).
TRAINER_VERSION = "fit-1: AdamW, weight decay on parameters with dim >= 2"


def to_device(batch, device):
    """Move a batch (a tensor, or a dict/list/tuple of them; anything with ``.to``) to ``device``."""
    if isinstance(batch, torch.Tensor) or hasattr(batch, "to") and not isinstance(batch, nn.Module):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's parameters (the CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def batch_size_of(batch) -> int:
    """The number of examples in a batch: the length of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return len(batch)
    if isinstance(batch, dict) or hasattr(batch, "keys"):
        return batch_size_of(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)) and batch:
        return batch_size_of(batch[0])
    raise TypeError(f"cannot tell the size of a batch of type {type(batch).__name__}")


def decay_groups(params, weight_decay: float) -> list[dict]:
    """Optimiser groups that decay weight matrices and embeddings only.

    Parameters with two or more dimensions (the weights of linear, convolutional and
    embedding layers) get ``weight_decay``; vectors (biases, LayerNorm scales and
    shifts) get none: shrinking a bias or a normalisation gain towards zero is not a
    useful prior (nanoGPT's ``configure_optimizers`` makes the same split). ``params``
    may be parameters or groups (dicts with ``"params"``, e.g. a smaller learning rate
    for a pre-trained encoder); each group is split in two, keeping its other settings.
    Frozen parameters (``requires_grad=False``) are left out.
    """
    params = list(params)
    groups = params if params and isinstance(params[0], dict) else [{"params": params}]
    out = []
    for group in groups:
        ps = [p for p in group["params"] if p.requires_grad]
        rest = {k: v for k, v in group.items() if k != "params"}
        decay = [p for p in ps if p.dim() >= 2]
        no_decay = [p for p in ps if p.dim() < 2]
        if decay:
            out.append({**rest, "params": decay, "weight_decay": weight_decay})
        if no_decay:
            out.append({**rest, "params": no_decay, "weight_decay": 0.0})
    if not out:
        raise ValueError("no trainable parameters to optimise")
    return out


def make_optimizer(name: str, params, *, lr: float, weight_decay: float = 0.0):
    """``"sgd"`` (``theta -= lr * grad``), ``"adam"`` or ``"adamw"`` (decoupled weight decay).

    Weight decay applies to weight matrices only (:func:`decay_groups`).
    """
    if name not in ("sgd", "adam", "adamw"):
        raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {name!r}")
    groups = decay_groups(params, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.AdamW(groups, lr=lr)


def linear_warmup(total_steps: int, warmup_steps: int) -> Callable:
    """A schedule for :func:`fit`: the learning rate rises linearly from 0 over ``warmup_steps``
    optimiser steps, then falls linearly to 0 at ``total_steps`` (BERT's schedule)."""
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"need 0 <= warmup_steps <= total_steps and total_steps >= 1, "
                         f"got {warmup_steps} and {total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, factor)


def fit(model: nn.Module, step: Callable, batches: Callable[[torch.Generator], Iterable], *,
        epochs: int, lr: float, optimizer: str = "adamw", weight_decay: float = 0.0,
        params=None, schedule: Callable | None = None, clip: float | None = None, seed: int = 0,
        on_epoch_end: Callable | None = None, log_every: int = 0, loss_name: str = "loss",
        device=None, accumulate: int = 1, progress: str | None = None) -> dict:
    """Train ``model`` for ``epochs`` epochs; return its history.

    Args:
        model: the module to train (moved to ``device``).
        step: ``step(model, batch) -> loss``, a scalar tensor: the forward pass and the
            objective of one batch (e.g. :func:`classification_step`).
        batches: ``batches(generator)`` yields one epoch of batches (tensors, or tuples
            or dicts of tensors, on the CPU). It is called at the start of every epoch
            with the run's one random generator (seeded by ``seed``), which it may use
            for the order and for random corruption of the inputs.
        epochs, lr: the usual; ``optimizer``: ``"adamw"``, ``"adam"`` or ``"sgd"``.
        weight_decay: on weight matrices only (:func:`decay_groups`).
        params: optional parameters or parameter groups (default: ``model.parameters()``).
        schedule: optional ``schedule(optimizer) -> LR scheduler`` stepped after every
            update (e.g. :func:`linear_warmup`).
        clip: optional maximum gradient norm.
        on_epoch_end: optional ``f(epoch, model) -> dict`` called after each epoch in
            eval mode (e.g. :class:`KeepBest`); every number it returns is appended to
            ``history[name]``. A true ``"stop"`` ends training after that epoch.
        log_every: print a line every this many epochs (0 = silent).
        loss_name: what the log line calls the training loss.
        device: where to train; the model is moved there. Default: where the model's
            parameters already are (so a notebook's later cells find it where they left
            it; put it on :func:`ptutils.config.device` first to train on a GPU).
        accumulate: split every batch into this many equal micro-batches, whose
            gradients (each loss divided by ``accumulate``) add up before the one update:
            the same update as the whole batch, with the memory of a micro-batch.
        progress: a name for the run (e.g. ``"fine-tuning"``) to report its steps through
            :class:`ptutils.progress.Progress`: a bar with the time left (the total is known
            after the first epoch), or one final line in the book's builds. ``None``: silent.

    Under ``torchrun`` (``WORLD_SIZE`` set; :mod:`ptutils.distributed`) the same call trains
    data-parallel: it starts the process group (gloo on a CPU, nccl on GPUs, one per
    ``LOCAL_RANK``) unless the caller has, wraps the model in ``DistributedDataParallel``,
    and gives each rank its slice of every batch (:func:`ptutils.distributed.shard`), so
    ``batches`` stays what it is: every rank draws the same batches from the same seeded
    generator (a new order every epoch, the role ``DistributedSampler.set_epoch`` plays)
    and keeps its share. Gradients are all-reduced once per update (``no_sync`` on all but
    the last micro-batch), the epoch's loss is averaged over all ranks, and only rank 0
    prints and calls ``on_epoch_end`` (on ``model`` itself, not the wrapper); its numbers,
    ``"stop"`` included, are sent to every rank, so all ranks stop together. A process
    group that ``fit`` starts stays up until the process exits, so a second ``fit`` in the
    same script reuses it (:func:`ptutils.distributed.start` says why). Batch sizes must be divisible by
    ``WORLD_SIZE * accumulate`` (nothing is padded). Without ``WORLD_SIZE`` nothing of
    this happens.

    Returns:
        The history, a dict with ``"loss"`` (the mean training loss of each epoch), one
        list for each number ``on_epoch_end`` returns (e.g. ``"val_acc"``), ``"epochs_run"``
        (epochs trained) and ``"seconds"`` (wall time).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if not isinstance(accumulate, int) or accumulate < 1:
        raise ValueError(f"accumulate must be a positive whole number of micro-batches, got {accumulate!r}")
    from . import distributed

    w = distributed.world()
    if device is None:
        device = model_device(model)
    else:
        device = torch.device(device)
        model.to(device)
    if w is not None:  # under torchrun: one rank of a data-parallel run
        device = distributed.start(w, device)
        model.to(device)
    net = model if w is None else distributed.wrap(model, device)
    distributed.check_wrapped(net, w)
    bar = Progress(desc=progress, unit="step") if progress and (w is None or w.main) else None
    with bar if bar is not None else nullcontext():
        return _fit(model, net, w, step, batches, epochs=epochs, lr=lr, optimizer=optimizer,
                    weight_decay=weight_decay, params=params, schedule=schedule, clip=clip, seed=seed,
                    on_epoch_end=on_epoch_end, log_every=log_every, loss_name=loss_name, device=device,
                    accumulate=accumulate, bar=bar)


def _fit(model, net, w, step, batches, *, epochs, lr, optimizer, weight_decay, params, schedule, clip, seed,
         on_epoch_end, log_every, loss_name, device, accumulate, bar=None) -> dict:
    """:func:`fit`'s loop; ``net`` is ``model`` or its DDP wrapper, ``w`` the launch (or None), ``bar`` a
    :class:`ptutils.progress.Progress` (or None)."""
    from .distributed import shard

    main = w is None or w.main
    g = torch.Generator().manual_seed(seed)
    opt = make_optimizer(optimizer, model.parameters() if params is None else params, lr=lr,
                         weight_decay=weight_decay)
    sched = schedule(opt) if schedule is not None else None
    history, t0 = {"loss": []}, time.perf_counter()
    for epoch in range(epochs):
        net.train()
        total, n = 0.0, 0
        for batch in batches(g):
            if w is not None:
                batch = shard(batch, w.rank, w.size)  # this rank's share of the batch
            micro = [batch] if accumulate == 1 else [shard(batch, i, accumulate) for i in range(accumulate)]
            opt.zero_grad()
            for i, mb in enumerate(micro):
                last = i == len(micro) - 1
                with net.no_sync() if w is not None and not last else nullcontext():  # all-reduce once
                    loss = step(net, to_device(mb, device))  # forward and loss
                    if loss.dim() != 0:
                        raise ValueError(f"step must return a scalar loss, got shape {tuple(loss.shape)}")
                    (loss if accumulate == 1 else loss / accumulate).backward()  # backward: gradients
                size = batch_size_of(mb)
                total, n = total + loss.item() * size, n + size
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()  # update: theta <- theta - lr * step
            if sched is not None:
                sched.step()
            if bar is not None:
                bar.update()
        if w is not None:  # the epoch's loss over every rank's examples
            import torch.distributed as dist

            sums = torch.tensor([total, float(n)], dtype=torch.float64)
            dist.all_reduce(sums)
            total, n = sums[0].item(), int(sums[1].item())
        if n == 0:
            raise ValueError("an epoch had no batches: is the training set empty?")
        history["loss"].append(total / n)
        if bar is not None:
            if epoch == 0:
                bar.set_total(epochs * bar.n)  # every epoch has the first one's number of steps
            bar.set_postfix(**{loss_name: history["loss"][-1]})
            bar.summary = f"{epoch + 1}/{epochs} epochs, {bar.n} steps"
        model.eval()
        report = on_epoch_end(epoch, model) if on_epoch_end is not None and main else None
        report = report or {}
        if w is not None:  # rank 0's numbers (and its "stop") to every rank
            import torch.distributed as dist

            box = [report]
            dist.broadcast_object_list(box, src=0)
            report = box[0]
        for k, v in report.items():
            if k != "stop":
                history.setdefault(k, []).append(v)
        if main and log_every and (epoch + 1) % log_every == 0:
            more = "".join(f"  {k} {v:.4f}" for k, v in report.items() if k != "stop")
            print(f"epoch {epoch + 1:3d}/{epochs}  {loss_name} {history['loss'][-1]:.4f}{more}")
        if report.get("stop"):
            break
    model.eval()
    history["epochs_run"] = len(history["loss"])
    history["seconds"] = time.perf_counter() - t0
    return history


def shuffled(n: int, batch_size: int, generator: torch.Generator):
    """Index batches of a random permutation of ``range(n)`` (the usual epoch)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return torch.randperm(n, generator=generator).split(batch_size)


def _index(inputs, idx):
    if isinstance(inputs, dict):
        return {k: v[idx] for k, v in inputs.items()}
    return inputs[idx]


def _call(model, inputs):
    return model(**inputs) if isinstance(inputs, dict) else model(inputs)


def _length(inputs) -> int:
    if isinstance(inputs, dict):
        lengths = {k: len(v) for k, v in inputs.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"inputs of different lengths: {lengths}")
        return next(iter(lengths.values()))
    return len(inputs)


def classification_step(model: nn.Module, batch) -> torch.Tensor:
    """Cross-entropy of a classifier on one batch ``(inputs, labels)``."""
    inputs, labels = batch
    logits = _call(model, inputs)  # (B, num_classes)
    return nn.functional.cross_entropy(logits, labels)


def train_classifier(model: nn.Module, inputs, labels: torch.Tensor, *, epochs: int = 10,
                     lr: float = 1e-3, weight_decay: float = 0.01, batch_size: int = 32,
                     seed: int = 0, log_every: int = 0, optimizer: str = "adamw",
                     on_epoch_end=None, params=None, device=None) -> dict:
    """Train a classifier with cross-entropy (:func:`classification_step`) by :func:`fit`.

    Args:
        model: maps a batch of inputs to logits ``(B, num_classes)``.
        inputs: a tensor ``(N, ...)`` or a dict of tensors (passed as keyword arguments).
        labels: ``(N,)`` integer class labels.
        seed: seeds the batch order (the model's initialisation is the caller's).
        on_epoch_end, params, log_every, optimizer, device: as in :func:`fit`.

    Returns:
        :func:`fit`'s history.
    """
    n = _length(inputs)
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.dim() != 1:
        raise TypeError("labels must be a 1-D torch.long tensor of class indices")
    if len(labels) != n:
        raise ValueError(f"{n} inputs but {len(labels)} labels")

    def batches(g):
        for idx in shuffled(n, batch_size, g):
            yield _index(inputs, idx), labels[idx]

    return fit(model, classification_step, batches, epochs=epochs, lr=lr, optimizer=optimizer,
               weight_decay=weight_decay, params=params, seed=seed, on_epoch_end=on_epoch_end,
               log_every=log_every, device=device)


@torch.no_grad()
def predict(model: nn.Module, inputs, batch_size: int = 256) -> torch.Tensor:
    """Predicted class indices ``(N,)`` in evaluation mode (on the model's device; returned on the CPU)."""
    model.eval()
    n = _length(inputs)
    where = model_device(model)
    out = [_call(model, to_device(_index(inputs, torch.arange(i, min(i + batch_size, n))), where)).argmax(-1).cpu()
           for i in range(0, n, batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


class KeepBest:
    """An ``on_epoch_end`` callback for early stopping on validation data.

    After every ``every``-th epoch (and the last one, ``last``) it scores the model with
    ``score(model)`` (for example accuracy on the validation sentences, never the test
    set; ``mode="min"`` for a loss) and keeps a copy of the weights of the best epoch so
    far (ties: the earlier epoch); :meth:`restore` loads them back. Works with every loop built on :func:`fit`.

    With ``patience=p`` it also asks :func:`fit` to stop once ``p`` scored epochs in a
    row have not beaten the best score; ``patience=None`` never stops early.

    Attributes:
        best: the best score seen; epoch: its epoch (0-based); scores: every score;
        scored: the epochs (0-based) that were scored.
    """

    def __init__(self, score, patience: int | None = None, *, every: int = 1, last: int | None = None,
                 name: str = "val_acc", mode: str = "max"):
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be a positive number of epochs or None, got {patience}")
        if every < 1:
            raise ValueError(f"every must be a positive number of epochs, got {every}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' (accuracy) or 'min' (a loss), got {mode!r}")
        self.score, self.patience, self.every, self.last, self.name = score, patience, every, last, name
        self.sign = 1.0 if mode == "max" else -1.0
        self.best = float("-inf") if mode == "max" else float("inf")
        self.epoch, self.state, self.scores, self.scored = None, None, [], []

    def __call__(self, epoch: int, model: nn.Module) -> dict:
        if (epoch + 1) % self.every and epoch + 1 != self.last:
            return {}
        s = float(self.score(model))
        self.scores.append(s)
        self.scored.append(epoch)
        if self.sign * s > self.sign * self.best:
            self.best, self.epoch = s, epoch
            self.state = copy.deepcopy(model.state_dict())
        report = {self.name: s}
        if self.patience is not None:
            report["stop"] = len([e for e in self.scored if e > self.epoch]) >= self.patience
        return report

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best epoch's weights into ``model`` (in eval mode) and return it."""
        if self.state is None:
            raise RuntimeError("no epoch has been scored yet")
        model.load_state_dict(self.state)
        return model.eval()


def epochs_for(n_examples: int, *, epochs: int, batch_size: int, min_steps: int) -> int:
    """``epochs``, or more if that many epochs would make fewer than ``min_steps`` optimiser steps.

    An epoch of a few labelled examples is a single step; a fixed number of epochs
    would then barely move the weights.
    """
    if n_examples < 1 or batch_size < 1 or epochs < 1 or min_steps < 0:
        raise ValueError("n_examples, batch_size and epochs must be positive and min_steps non-negative")
    per_epoch = -(-n_examples // batch_size)
    return max(epochs, -(-min_steps // per_epoch))


def read_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in a TensorBoard log directory, read back from its event files.

    Reads the ``events.out.tfevents.*`` files directly inside ``logdir`` (the files a
    ``torch.utils.tensorboard.SummaryWriter(logdir)`` writes; sub-directories are other
    runs and are not read) with TensorBoard's ``EventAccumulator``, keeping every point
    (no down-sampling). Values come back as the event file stores them, 32-bit floats.

    Args:
        logdir: the directory (a ``str`` or path-like).

    Returns:
        ``{tag: [(step, value), ...]}``, each series in the order it was written.

    Raises:
        FileNotFoundError: ``logdir`` is not a directory, or holds no event file.
        ValueError: an event file from which no event can be read (not an event file,
            or a writer that was never flushed or closed).
    """
    import os
    from pathlib import Path

    if not isinstance(logdir, (str, os.PathLike)):
        raise TypeError(f"logdir must be a path, got {type(logdir).__name__}")
    path = Path(logdir)
    if not path.is_dir():
        raise FileNotFoundError(f"no TensorBoard log directory at {path}")
    files = sorted(p for p in path.glob("events.out.tfevents.*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no TensorBoard event file (events.out.tfevents.*) in {path}")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    for f in files:
        if next(iter(EventFileLoader(str(f)).Load()), None) is None:
            raise ValueError(f"{f}: no event could be read (not an event file, or a writer not yet flushed or closed)")
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    return {tag: [(int(e.step), float(e.value)) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}

"""One command, any scale: pre-train the book's small GPT (chapter 8) with :func:`ptutils.training.fit`.

The same command runs in one process, in two on a laptop's CPU, or on every GPU of a
cluster; only the launcher in front of it changes::

    python -m ptutils.train gpt --steps 200                                # one process
    torchrun --standalone --nproc_per_node 2 -m ptutils.train gpt --world-size 2
    torchrun --standalone --nproc_per_node 8 -m ptutils.train gpt --device cuda --world-size 8
    torchrun --nnodes 4 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        -m ptutils.train gpt --device cuda --world-size 32

``--batch-size`` is the *global* batch (every rank takes ``batch / world size`` of it,
split again into ``--accumulate`` micro-batches), so the run computes the same updates
at every scale and only its speed changes. ``--world-size`` states how many processes
were meant to run: a launch that started another number (``accelerate launch --cpu``
starts one) stops with the command that works instead of training something else.

Rank 0 prints one JSON line (world size, steps, seconds, steps and tokens per second,
bytes all-reduced per step, losses) and, with ``--out``, saves the model
(``model.safetensors`` and ``config.json``).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path


def _positive(kind=int):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return v
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ptutils.train",
                                description="Pre-train the book's small GPT; the same command under torchrun "
                                            "trains data-parallel.")
    sub = p.add_subparsers(dest="what", required=True)
    g = sub.add_parser("gpt", help="character-level GPT on the book's offline corpus (chapter 8)")
    g.add_argument("--corpus", choices=("lee", "wiki", "all"), default="lee",
                   help="gensim's text samples: lee (60k words), wiki (450k), all (default: lee)")
    g.add_argument("--steps", type=_positive(), default=200, help="optimiser steps (default 200)")
    g.add_argument("--eval-every", type=_positive(), default=None,
                   help="steps between validation losses (default: --steps, one at the end)")
    g.add_argument("--batch-size", type=_positive(), default=32,
                   help="global batch of windows per step, divisible by world size x accumulate (default 32)")
    g.add_argument("--accumulate", type=_positive(), default=1, help="micro-batches per step (default 1)")
    g.add_argument("--block-size", type=_positive(), default=64)
    g.add_argument("--d-model", type=_positive(), default=128)
    g.add_argument("--layers", type=_positive(), default=4)
    g.add_argument("--heads", type=_positive(), default=4)
    g.add_argument("--lr", type=_positive(float), default=3e-3)
    g.add_argument("--warmup", type=int, default=20, help="warm-up steps (default 20)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--val-chars", type=_positive(), default=5000, help="validation characters (default 5000)")
    g.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="cpu (default), cuda (one GPU per LOCAL_RANK), auto (ptutils.config.device())")
    g.add_argument("--world-size", type=_positive(), default=None,
                   help="the number of processes meant to run; any other number stops the run")
    g.add_argument("--out", type=Path, default=None, help="folder for model.safetensors and config.json (rank 0)")
    return p


def gpt(args) -> dict:
    """Pre-train the GPT as ``args`` says; return rank 0's summary (``{}`` on other ranks)."""
    import torch

    from .. import config, distributed, lm
    from ..data import load_text_corpus
    from ..repro import set_seed

    w = distributed.expect_world_size(args.world_size)
    size = 1 if w is None else w.size
    if args.batch_size % (size * args.accumulate):
        raise SystemExit(f"--batch-size {args.batch_size} is not divisible by world size {size} x --accumulate "
                         f"{args.accumulate}: every micro-batch must be the same size")
    every = args.eval_every or args.steps
    if args.steps % every:
        raise SystemExit(f"--steps {args.steps} must be a multiple of --eval-every {every}")
    device = torch.device("cpu") if args.device == "cpu" else (
        torch.device("cuda") if args.device == "cuda" else config.device())
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU is visible to this process")
    set_seed(args.seed)
    docs = [" ".join(words) for words in load_text_corpus(args.corpus)]
    tok, train_ids, val_ids, _ = lm.char_splits(docs, seed=0)
    cfg = lm.GPTConfig(vocab_size=len(tok), block_size=args.block_size, d_model=args.d_model,
                       num_heads=args.heads, num_layers=args.layers, d_ff=4 * args.d_model)
    model = lm.GPT(cfg)
    hist = lm.pretrain_causal_lm(model, train_ids, val_ids[:args.val_chars], steps=args.steps, eval_every=every,
                                 batch_size=args.batch_size, lr=args.lr, warmup=min(args.warmup, args.steps),
                                 seed=args.seed, device=device, accumulate=args.accumulate)
    if w is not None and not w.main:
        return {}
    secs = hist["seconds"]
    summary = {
        "world_size": size, "device": device.type, "threads": torch.get_num_threads(),
        "steps": args.steps, "batch_size": args.batch_size, "accumulate": args.accumulate,
        "seconds": secs, "steps_per_s": args.steps / secs,
        "tokens_per_s": args.steps * args.batch_size * args.block_size / secs,
        "parameters": sum(p.numel() for p in model.parameters()),
        "allreduce_bytes_per_step": distributed.gradient_bytes(model) if size > 1 else 0,
        "train_loss": hist["loss"][-1], "val_loss": hist["val_loss"][-1],
        "initial_val_loss": hist["initial_val_loss"],
    }
    if args.out is not None:
        from safetensors.torch import save_model

        args.out.mkdir(parents=True, exist_ok=True)
        save_model(model.cpu(), str(args.out / "model.safetensors"))
        (args.out / "config.json").write_text(json.dumps({"gpt": asdict(cfg), "chars": "".join(tok.chars),
                                                          "summary": summary}, indent=1))
    return summary


def main(argv=None) -> int:
    from ..distributed import LaunchError

    args = parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        summary = gpt(args)
    except LaunchError as e:  # a launch that would train something other than what was asked for
        raise SystemExit(f"ptutils.train: {e}") from None
    if summary:
        print(json.dumps(summary), flush=True)
    return 0

"""Run by tests/test_distributed.py under ``torchrun --standalone --nproc_per_node 2``: one tiny GPT
trained by ``ptutils.training.fit`` (DDP, then DDP with gradient accumulation) and by a hand loop
on FSDP2's ``fully_shard``; rank 0 saves what the test compares with one process.

Usage: ``torchrun ... tests/_distributed_worker.py OUT.pt``
"""

import sys

import torch
import torch.distributed as dist

from ptutils import distributed, lm
from ptutils.training import fit, linear_warmup, make_optimizer, shuffled

STEPS, BATCH = 5, 8
SETTINGS = dict(epochs=STEPS, lr=1e-2, optimizer="adamw", weight_decay=0.1, clip=1.0, seed=3)


def tiny_gpt() -> lm.GPT:
    torch.manual_seed(0)
    return lm.GPT(lm.GPTConfig(vocab_size=11, block_size=8, d_model=16, num_heads=2, num_layers=1, d_ff=32,
                               dropout=0.0))


def data() -> torch.Tensor:
    return torch.randint(0, 11, (32, 9), generator=torch.Generator().manual_seed(1))  # (N, T + 1)


def batches(g):
    """One batch of ``BATCH`` windows per "epoch", so the history has one loss per step."""
    ids = data()
    yield ids[shuffled(len(ids), BATCH, g)[0]]


def train_fit(accumulate: int = 1) -> tuple[torch.nn.Module, dict]:
    model = tiny_gpt()
    hist = fit(model, lm.causal_lm_step, batches, accumulate=accumulate,
               schedule=linear_warmup(STEPS, 2), **SETTINGS)
    return model, hist


def train_fsdp2() -> list[float]:
    """The same run by hand on FSDP2: parameters sharded over the two ranks, gathered for each forward."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    w = distributed.world()
    model = tiny_gpt()
    mesh = init_device_mesh("cpu", (w.size,))
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    opt = make_optimizer("adamw", model.parameters(), lr=SETTINGS["lr"], weight_decay=SETTINGS["weight_decay"])
    sched = linear_warmup(STEPS, 2)(opt)
    g, losses = torch.Generator().manual_seed(SETTINGS["seed"]), []
    for _ in range(STEPS):
        for batch in batches(g):
            loss = lm.causal_lm_step(model, distributed.shard(batch, w.rank, w.size))
            opt.zero_grad()
            loss.backward()  # gradients reduce-scattered: each rank keeps its shard's mean
            torch.nn.utils.clip_grad_norm_(model.parameters(), SETTINGS["clip"])
            opt.step()
            sched.step()
            mean = loss.detach().clone()
            dist.all_reduce(mean)
            losses.append(mean.item() / w.size)
    return losses


def main(out: str) -> None:
    w = distributed.world()
    assert w is not None and w.size == 2, "run me under torchrun --nproc_per_node 2"
    ddp, ddp_hist = train_fit()  # fit starts the process group and leaves it up for the next fit
    assert dist.is_initialized(), "fit ended the group it started: a second one would have to re-create it"
    acc, acc_hist = train_fit(accumulate=2)
    dist.destroy_process_group()
    # A group the caller starts, on a store of its own (torchrun's store still holds the first
    # group's entries, and re-creating the default group on it is the hang that
    # ptutils.distributed.start avoids): fit uses it and leaves it running.
    store = dist.FileStore(out + ".store", w.size)
    dist.init_process_group("gloo", store=store, rank=w.rank, world_size=w.size)
    again, again_hist = train_fit()
    assert dist.is_initialized()
    fsdp_losses = train_fsdp2()
    states = [None] * w.size
    dist.all_gather_object(states, {k: v.clone() for k, v in ddp.state_dict().items()})
    if w.main:
        torch.save({"ddp": ddp.state_dict(), "ddp_loss": ddp_hist["loss"], "acc": acc.state_dict(),
                    "acc_loss": acc_hist["loss"], "again": again.state_dict(), "fsdp_loss": fsdp_losses,
                    "rank1": states[1]}, out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])

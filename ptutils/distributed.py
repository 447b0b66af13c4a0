"""Data-parallel training over several processes, and the checks that catch a run that only looks parallel.

``torchrun --standalone --nproc_per_node N script.py`` starts ``N`` copies of a script
and tells each who it is through environment variables: ``WORLD_SIZE`` (how many
processes), ``RANK`` (this one's number, ``0 .. N-1``), ``LOCAL_RANK`` (its number on
this machine, which picks its GPU) and ``MASTER_ADDR``/``MASTER_PORT`` (where they meet).
:func:`ptutils.training.fit` reads them (:func:`world`): it starts the process group
(gloo on a CPU, nccl on GPUs; :func:`start`), wraps the model in
``DistributedDataParallel``, gives every rank its own equal slice of each batch
(:func:`shard`), and lets the gradients' all-reduce make every rank's update the
update of the whole batch.

Data-parallel training equals one process on the whole batch only if every rank
takes an equal share of it (the mean of equal-sized shards' mean losses is the whole
batch's mean loss) and no example is repeated to fill a short shard; :func:`shard`
therefore refuses a batch whose size the world size does not divide, where
``DistributedSampler`` would pad it with repeated examples.

Three launches look parallel and are not (:class:`LaunchError` names the fix):
``accelerate launch --cpu --num_processes 2`` starts *one* process
(:func:`expect_world_size`); under ``torchrun`` a plain ``Accelerator()`` on a machine
without a GPU runs every process on its own (:func:`check_accelerator`); and the
``Trainer`` under ``torchrun`` without ``use_cpu=True`` creates the process group but
never wraps the model (:func:`check_trainer`).
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import torch
from torch import nn


class LaunchError(RuntimeError):
    """A distributed launch that would train something other than what was asked for."""


@dataclass(frozen=True)
class World:
    """Who this process is in a ``torchrun`` launch: ``rank`` of ``size``, ``local_rank`` on its machine."""

    rank: int
    local_rank: int
    size: int

    @property
    def main(self) -> bool:
        """Rank 0: the one process that logs, evaluates and saves."""
        return self.rank == 0


def world() -> World | None:
    """The launch this process belongs to, read from ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``.

    Returns:
        A :class:`World`, or ``None`` when ``WORLD_SIZE`` is not set (an ordinary
        single process: nothing distributed happens).

    Raises:
        LaunchError: the variables are not whole numbers, or ``RANK`` is outside ``0 .. WORLD_SIZE-1``.
    """
    if "WORLD_SIZE" not in os.environ:
        return None
    try:
        size = int(os.environ["WORLD_SIZE"])
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as e:
        raise LaunchError(f"WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers: {e}") from None
    if size < 1 or not 0 <= rank < size:
        raise LaunchError(f"RANK={rank} is not in 0 .. WORLD_SIZE-1 = {size - 1}")
    return World(rank=rank, local_rank=local, size=size)


def is_main() -> bool:
    """True in a single process and in rank 0 of a distributed one (the process that may print and save)."""
    w = world()
    return w is None or w.main


def start(w: World, device=None) -> torch.device:
    """Join the process group of launch ``w`` (starting it if need be); return this rank's device.

    ``device`` of type ``cuda`` becomes ``cuda:LOCAL_RANK`` (one GPU per process) and the
    backend nccl; otherwise the device is the CPU and the backend gloo. A group that is
    already running (started by the caller, or by an earlier call) is used as it is.

    A group this function starts is left running and ended when the process exits
    (``atexit``), never destroyed in between: under ``torchrun`` a default group created
    again after ``destroy_process_group`` meets the first group's entries in torchrun's
    store, and the ranks may wait for each other forever or connect to a closed port
    (PyTorch issues 55967 and 74666; on torch 2.13 with gloo, 2 of 4 such launches hung
    here). So two ``fit`` calls in one script share one group; a script that ends the
    group itself and wants another must start it on a store of its own
    (``init_process_group(store=...)``), not on ``torchrun``'s again.

    Raises:
        LaunchError: the running group's size is not ``WORLD_SIZE``.
    """
    import torch.distributed as dist

    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(w.local_rank)
        device = torch.device("cuda", w.local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        atexit.register(_end_group)
    if dist.get_world_size() != w.size:
        raise LaunchError(f"WORLD_SIZE={w.size} but the process group has {dist.get_world_size()} processes")
    return device


def _end_group() -> None:
    """At exit: end the default process group if it is still running (a script may have ended it itself)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)``: ``device_ids=None`` on a CPU, this rank's GPU on CUDA.

    Wrapping broadcasts rank 0's parameters and buffers to every rank, so all ranks
    start from the same weights whatever their seeds.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(model, device_ids=ids)


def shard(batch, rank: int, size: int):
    """Rank ``rank``'s slice of a batch split into ``size`` equal consecutive parts.

    ``batch`` is a tensor (sliced along its first dimension) or a dict, list or tuple of
    them (each sliced alike); other values are passed unchanged.

    Raises:
        ValueError: the batch size is not divisible by ``size`` (an unequal split would
            weight the shards' examples unequally; padding would repeat examples).
    """
    from .training import batch_size_of

    n = batch_size_of(batch)
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"rank {rank} is not in 0 .. {size - 1}")
    if n % size:
        raise ValueError(f"a batch of {n} examples cannot be split into {size} equal parts: choose batch "
                         f"sizes (and a number of examples per epoch) divisible by {size} (world size x accumulation)")
    per = n // size
    return _slice(batch, slice(rank * per, (rank + 1) * per))


def _slice(batch, s: slice):
    if isinstance(batch, torch.Tensor):
        return batch[s]
    if isinstance(batch, dict) or hasattr(batch, "keys"):
        return {k: _slice(batch[k], s) for k in batch.keys()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_slice(v, s) for v in batch)
    return batch


def _launcher_num_processes() -> int | None:
    """The ``--num_processes`` of an ``accelerate launch`` that started this process (read from its parent's command line)."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    if "launch" not in argv or not any(a.endswith("accelerate") or "accelerate" in a for a in argv):
        return None
    m = re.search(r"--num_processes[= ](\d+)", " ".join(argv))
    return int(m.group(1)) if m else None


def expect_world_size(expected: int | None = None) -> World | None:
    """Stop unless this process is one of ``expected`` processes; return :func:`world`.

    ``expected`` defaults to what the launcher was asked for: ``WORLD_SIZE`` under
    ``torchrun``, the ``--num_processes`` of an ``accelerate launch`` parent.

    Raises:
        LaunchError: fewer or more processes than asked for, with the command that works.
    """
    w = world()
    asked = _launcher_num_processes() if expected is None else expected
    got = 1 if w is None else w.size
    if asked is not None and asked != got:
        via_accelerate = any(k.startswith("ACCELERATE_") for k in os.environ)
        fix = ("`accelerate launch --cpu --num_processes N` starts one process on a CPU: launch with "
               "`torchrun --standalone --nproc_per_node N ...` (with `Accelerator(cpu=True)` in the script, "
               "or ACCELERATE_USE_CPU=1)" if via_accelerate and w is None else
               f"launch with `torchrun --standalone --nproc_per_node {asked} ...`")
        raise LaunchError(f"asked for {asked} processes but this is one of {got}: {fix}")
    return w


def check_wrapped(model: nn.Module, w: World | None = None) -> None:
    """Stop unless ``model`` is wrapped for data parallelism when there is more than one process.

    Raises:
        LaunchError: a model that is not ``DistributedDataParallel`` (or FSDP) in a world of two or more.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    w = world() if w is None else w
    if w is None or w.size == 1:
        return
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover (older torch)
        FSDPModule = DDP
    if not isinstance(model, (DDP, FSDPModule)):
        raise LaunchError(f"{w.size} processes but the model is a plain {type(model).__name__}, not "
                          "DistributedDataParallel: every rank would train its own copy")


def check_accelerator(accelerator, model: nn.Module | None = None) -> None:
    """Stop unless an ``accelerate.Accelerator`` sees every process ``torchrun`` started (and wrapped ``model``).

    Raises:
        LaunchError: a plain ``Accelerator()`` under ``torchrun`` on a machine without a GPU
            (each process trains alone), naming ``Accelerator(cpu=True)``.
    """
    w = world()
    if w is not None and accelerator.num_processes != w.size:
        raise LaunchError(f"torchrun started {w.size} processes but the Accelerator sees {accelerator.num_processes}: "
                          "each would train its own copy. On a CPU create it as `Accelerator(cpu=True)` "
                          "(or set ACCELERATE_USE_CPU=1)")
    if model is not None:
        check_wrapped(model, w)


def check_trainer(trainer) -> None:
    """Stop unless a ``transformers.Trainer`` will train on every process ``torchrun`` started.

    Call it after creating the trainer and before ``trainer.train()``; add
    :func:`wrapped_check_callback` to also check, at the first step, that the model
    it trains is wrapped.

    Raises:
        LaunchError: under ``torchrun`` on a CPU without ``use_cpu=True`` the Trainer starts the
            process group but trains each process alone; the message names
            ``TrainingArguments(use_cpu=True, ddp_backend="gloo")``.
    """
    w = world()
    if w is not None and trainer.accelerator.num_processes != w.size:
        raise LaunchError(f"torchrun started {w.size} processes but the Trainer's accelerator sees "
                          f"{trainer.accelerator.num_processes}: the model would never be wrapped in DDP. On a CPU "
                          "pass `TrainingArguments(..., use_cpu=True, ddp_backend=\"gloo\")`")


def wrapped_check_callback(trainer):
    """A ``TrainerCallback`` that runs :func:`check_wrapped` on ``trainer.model_wrapped`` at the first step."""
    from transformers import TrainerCallback

    class WrappedCheck(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 0:
                check_wrapped(trainer.model_wrapped)

    return WrappedCheck()


def gradient_bytes(model: nn.Module) -> int:
    """The bytes one data-parallel step all-reduces: every trainable parameter's gradient, once.

    Tied parameters (one tensor under two names) count once, as DDP sends them once.
    """
    seen, total = set(), 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            total += p.numel() * p.element_size()
    return total


_LAUNCH_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
                "TORCHELASTIC_RUN_ID")


def launch(argv: list[str], nproc: int = 2, *, threads: int = 1, timeout: float = 600,
           env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python ARGV...`` as ``nproc`` processes under ``torchrun --standalone``; return the finished run.

    A Jupyter kernel is one process, so a notebook starts the ranks of a distributed
    run as a subprocess, exactly as a terminal would. ``argv`` is what follows
    ``python`` (a script and its arguments, or ``["-m", "module", ...]``). ``nproc=1``
    runs it as an ordinary process, with no ``torchrun`` and no ``WORLD_SIZE`` (the
    single-process baseline). ``threads`` sets ``OMP_NUM_THREADS`` for each process, so
    that ``nproc x threads`` threads share the machine's cores without oversubscribing.

    Raises:
        ValueError: ``nproc`` or ``threads`` below 1.
        RuntimeError: the run exited with an error; the message holds the end of its output.
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds (a hung rank);
            torchrun and every rank are killed first, so nothing is left running.
    """
    if not isinstance(nproc, int) or nproc < 1 or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"nproc and threads must be whole numbers >= 1, got {nproc!r} and {threads!r}")
    run_env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS}
    run_env.update(env or {})
    run_env["OMP_NUM_THREADS"] = str(threads)
    head = [sys.executable] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    cmd = [*head, *map(str, argv)]
    r = _run(cmd, env=run_env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} exited with {r.returncode}:\n{(r.stdout + r.stderr)[-3000:]}")
    return r


def _run(cmd: list[str], *, env: dict, timeout: float, cwd=None) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True, timeout=...)``, except that a timeout
    or an interrupt kills ``cmd`` *and every process it started* (:func:`_kill_tree`)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = _kill_tree(proc)
        raise subprocess.TimeoutExpired(cmd, timeout, output=out, stderr=err) from None
    except BaseException:  # KeyboardInterrupt (a notebook's stop button) ends the ranks too
        _kill_tree(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _parents() -> dict[int, int]:
    """Every process's parent: from ``/proc`` on Linux, from ``ps`` elsewhere (macOS)."""
    parent = {}
    if os.path.isdir("/proc"):
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass  # it ended while we looked
        return parent
    try:
        out = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return parent
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 2 and all(f.isdigit() for f in fields):
            parent[int(fields[0])] = int(fields[1])
    return parent


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, grandchildren, ...); ``[]`` where none can be listed."""
    parent = _parents()
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found += kids
        todo += kids
    return found


def _kill_tree(proc: subprocess.Popen) -> tuple[str, str]:
    """SIGKILL ``proc`` and every process below it; return what they had printed.

    ``torchrun`` starts each rank in a session of its own, so killing its process group
    (or only ``torchrun``) would leave hung ranks running, holding the cores and the
    output pipes, after the error. The tree is frozen first (SIGSTOP) and listed again
    until nothing new appears, so a process started meanwhile cannot slip away; then
    every frozen process is killed.
    """
    import signal

    def send(pid, sig):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    frozen: set[int] = set()
    for _ in range(10):
        new = {proc.pid, *_descendants(proc.pid)} - frozen
        if not new:
            break
        for pid in new:
            send(pid, signal.SIGSTOP)
        frozen |= new
    for pid in frozen:
        send(pid, signal.SIGKILL)
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired as e:  # a process outside our reach still holds the pipes
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait()
        text = [x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (e.output, e.stderr)]
        return text[0], text[1]

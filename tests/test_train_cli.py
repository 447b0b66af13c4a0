"""``python -m ptutils.train gpt``: the same command in one process and under torchrun gives the same run."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from ptutils import distributed

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["gpt", "--steps", "6", "--eval-every", "3", "--batch-size", "8", "--d-model", "32", "--layers", "1",
         "--heads", "2", "--block-size", "16", "--val-chars", "500", "--warmup", "2"]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "PTUTILS_FAST")}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return env


def run(*args, torchrun=False, check=True):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"] \
        if torchrun else [sys.executable, "-m"]
    # launch's runner: a timeout kills torchrun and its ranks, none is left holding the cores
    r = distributed._run([*launcher, "ptutils.train", *map(str, args)], cwd=ROOT, env=_env(), timeout=120)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def summary(r):
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"expected one JSON line (rank 0 only), got {r.stdout!r}"
    return lines[0]


def test_help_exits_0():
    r = run("gpt", "--help")
    assert "--world-size" in r.stdout and "--accumulate" in r.stdout


def test_two_processes_train_what_one_does(tmp_path):
    one = summary(run(*SMALL, "--out", tmp_path / "one"))
    two = summary(run(*SMALL, "--world-size", 2, "--out", tmp_path / "two", torchrun=True))
    acc = summary(run(*SMALL, "--accumulate", 2))
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert two["allreduce_bytes_per_step"] == 4 * one["parameters"] and one["allreduce_bytes_per_step"] == 0
    for other in (two, acc):
        for k in ("train_loss", "val_loss", "initial_val_loss"):
            assert other[k] == pytest.approx(one[k], rel=1e-5), k
    assert one["val_loss"] < one["initial_val_loss"]  # it trained
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)
    cfg = json.loads((tmp_path / "two" / "config.json").read_text())
    assert cfg["gpt"]["d_model"] == 32 and cfg["summary"]["world_size"] == 2


def test_a_launch_with_the_wrong_number_of_processes_stops():
    r = run(*SMALL, "--world-size", 2, check=False)
    assert r.returncode == 1 and "asked for 2 processes but this is one of 1" in r.stderr
    assert "torchrun --standalone --nproc_per_node 2" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, msg", [
    (["--batch-size", "6", "--accumulate", "4"], "not divisible by world size 1 x --accumulate 4"),
    (["--steps", "7"], "must be a multiple of --eval-every 3"),
    (["--steps", "0"], "expected a positive int"),
    (["--lr", "-1"], "expected a positive float"),
])
def test_bad_options_are_named(args, msg):
    r = run(*SMALL, *args, check=False)
    assert r.returncode != 0 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr

"""Data-parallel training equals one process, and the launches that only look parallel are stopped.

Two gloo processes on this CPU (``torchrun --standalone``, a free port of its own), each
run in a subprocess with a timeout; ``OMP_NUM_THREADS=1`` so two processes share two cores
without oversubscribing; dropout 0 so the comparison can be exact up to float rounding.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ptutils import distributed
from ptutils.training import fit

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# Parameters after five AdamW steps: two ranks vs one process differ only by the order of
# float additions (the all-reduce sums two half-batch gradients). Observed: <= 3e-8.
TOL = dict(rtol=1e-5, atol=1e-6)


def _env():
    env = {k: v for k, v in os.environ.items() if k not in
           ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "PTUTILS_FAST")}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    return env


def torchrun(*args, timeout=90):
    """``ptutils.distributed.launch`` on 2 ranks (the launcher the chapter uses); its stdout."""
    return distributed.launch(list(args), nproc=2, timeout=timeout,
                              env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PTUTILS_FAST": "0"}).stdout


def _worker():
    spec = importlib.util.spec_from_file_location("_distributed_worker", TESTS / "_distributed_worker.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "out.pt"
    torchrun(TESTS / "_distributed_worker.py", out)
    return torch.load(out, weights_only=True)


@pytest.fixture(scope="module")
def one_process():
    assert "WORLD_SIZE" not in os.environ
    w = _worker()
    model, hist = w.train_fit()
    return model.state_dict(), hist["loss"]


def test_ddp_equals_one_process_on_the_whole_batch(two_ranks, one_process):
    state, losses = one_process
    assert two_ranks["ddp"].keys() == state.keys()
    for k in state:
        torch.testing.assert_close(two_ranks["ddp"][k], state[k], **TOL, msg=f"parameter {k}")
    torch.testing.assert_close(torch.tensor(two_ranks["ddp_loss"]), torch.tensor(losses), **TOL)
    # and the run really moved the weights, so agreement is not agreement at initialisation
    start = _worker().tiny_gpt().state_dict()
    assert max((state[k] - start[k]).abs().max().item() for k in state) > 1e-3


def test_both_ranks_end_with_the_same_weights(two_ranks):
    for k, v in two_ranks["ddp"].items():
        assert torch.equal(two_ranks["rank1"][k], v), k


def test_accumulation_equals_the_whole_batch_with_and_without_ddp(two_ranks, one_process):
    state, losses = one_process
    acc_model, acc_hist = _worker().train_fit(accumulate=2)  # one process, two micro-batches of 4
    for k in state:
        torch.testing.assert_close(acc_model.state_dict()[k], state[k], **TOL, msg=f"1 process, {k}")
        torch.testing.assert_close(two_ranks["acc"][k], state[k], **TOL, msg=f"2 ranks x 2 micro-batches, {k}")
    torch.testing.assert_close(torch.tensor(acc_hist["loss"]), torch.tensor(losses), **TOL)
    torch.testing.assert_close(torch.tensor(two_ranks["acc_loss"]), torch.tensor(losses), **TOL)


def test_a_process_group_the_caller_started_is_used_and_left_running(two_ranks):
    for k, v in two_ranks["ddp"].items():
        torch.testing.assert_close(two_ranks["again"][k], v, **TOL)


def test_fsdp2_gives_the_losses_of_ddp(two_ranks):
    torch.testing.assert_close(torch.tensor(two_ranks["fsdp_loss"]), torch.tensor(two_ranks["ddp_loss"]), **TOL)


def test_without_world_size_nothing_distributed_happens(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.world() is None and distributed.is_main()
    distributed.check_wrapped(torch.nn.Linear(2, 2))  # a single process needs no wrapper
    import torch.distributed as dist

    model, _ = _worker().train_fit()
    assert not dist.is_initialized()


# --- the launches that look parallel and are not -------------------------------------------------

def test_plain_accelerator_under_torchrun_is_stopped():
    out = torchrun(TESTS / "_distributed_traps.py", "accelerator")
    assert out.count("TRAP") == 2 and "Accelerator(cpu=True)" in out, out


def test_accelerator_cpu_under_torchrun_wraps_the_model():
    out = torchrun(TESTS / "_distributed_traps.py", "accelerator-cpu")
    assert out.count("OK accelerator 2 DistributedDataParallel") == 2, out


def test_trainer_without_use_cpu_under_torchrun_is_stopped():
    out = torchrun(TESTS / "_distributed_traps.py", "trainer")
    assert out.count("TRAP") == 2 and 'use_cpu=True, ddp_backend="gloo"' in out, out


def test_the_traps_are_real_without_the_checks():
    """On the pinned accelerate/transformers each process sees a world of one and trains an unwrapped model.

    If a release fixes this, the test fails and the book's warning should be revisited.
    """
    out = torchrun(TESTS / "_distributed_traps.py", "unchecked")
    line = "OK unchecked accelerator 1 BertForSequenceClassification trainer 1 BertForSequenceClassification"
    assert out.count(line) == 2, out


def test_trainer_with_use_cpu_trains_one_model_on_two_ranks(tmp_path):
    out_file = tmp_path / "trainer.pt"
    torchrun(TESTS / "_distributed_traps.py", "trainer-cpu", out_file)
    saved = torch.load(out_file, weights_only=True)
    assert saved["world"] == 2 and saved["wrapped"] == "DistributedDataParallel"
    s0, s1 = saved["states"]
    start = _traps().tiny_classifier().state_dict()
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k
    assert max((s0[k].float() - start[k].float()).abs().max().item() for k in s0) > 1e-3


def _traps():
    spec = importlib.util.spec_from_file_location("_distributed_traps", TESTS / "_distributed_traps.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_accelerate_launch_cpu_starts_one_process_and_is_stopped():
    exe = Path(sys.executable).with_name("accelerate")
    cmd = [str(exe), "launch", "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", str(TESTS / "_distributed_traps.py"), "expect"]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("TRAP") == 1 and "torchrun --standalone --nproc_per_node" in r.stdout, r.stdout


def test_torchrun_world_passes_the_start_up_check():
    out = torchrun(TESTS / "_distributed_traps.py", "expect")
    assert out.count("OK world 2") == 2, out


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("env, msg", [
    ({"WORLD_SIZE": "two"}, "whole numbers"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "not in 0 .. WORLD_SIZE-1"),
    ({"WORLD_SIZE": "0"}, "not in 0"),
])
def test_world_rejects_bad_launch_variables(monkeypatch, env, msg):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(distributed.LaunchError, match=msg):
        distributed.world()


def test_expect_world_size_names_the_fix(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(distributed.LaunchError, match="torchrun --standalone --nproc_per_node 4"):
        distributed.expect_world_size(4)
    assert distributed.expect_world_size(1) is None


def test_an_unwrapped_model_in_a_world_of_two_is_stopped():
    with pytest.raises(distributed.LaunchError, match="every rank would train its own copy"):
        distributed.check_wrapped(torch.nn.Linear(2, 2), distributed.World(rank=0, local_rank=0, size=2))


def test_shard_splits_tensors_dicts_and_tuples_alike():
    x = torch.arange(12).reshape(6, 2)
    batch = {"x": x, "y": (x[:, 0], x[:, 1]), "name": "kept"}
    parts = [distributed.shard(batch, r, 3) for r in range(3)]
    assert torch.equal(torch.cat([p["x"] for p in parts]), x)
    assert all(p["name"] == "kept" and len(p["y"][0]) == 2 for p in parts)
    with pytest.raises(ValueError, match="cannot be split into 4 equal parts"):
        distributed.shard(x, 0, 4)
    with pytest.raises(ValueError, match="rank 3 is not in 0 .. 2"):
        distributed.shard(x, 3, 3)


def test_fit_rejects_bad_accumulation():
    w = _worker()
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="accumulate must be a positive whole number"):
            fit(w.tiny_gpt(), w.lm.causal_lm_step, w.batches, epochs=1, lr=1e-3, accumulate=bad)
    with pytest.raises(ValueError, match="cannot be split into 3 equal parts"):
        fit(w.tiny_gpt(), w.lm.causal_lm_step, w.batches, epochs=1, lr=1e-3, accumulate=3)


def test_gradient_bytes_counts_tied_weights_once():
    w = _worker()
    model = w.tiny_gpt()
    n = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert distributed.gradient_bytes(model) == 4 * n
    frozen = torch.nn.Linear(3, 3)
    frozen.weight.requires_grad_(False)
    assert distributed.gradient_bytes(frozen) == 3 * 4


def test_launch_reports_a_failed_run_and_refuses_bad_sizes():
    with pytest.raises(RuntimeError, match="exited with 3:\n.*boom"):
        distributed.launch(["-c", "import sys; print('boom'); sys.exit(3)"], nproc=1)
    r = distributed.launch(["-c", "import os; print(os.environ.get('WORLD_SIZE'), os.environ['OMP_NUM_THREADS'])"],
                           nproc=1, threads=2)
    assert r.stdout.split() == ["None", "2"]  # one plain process: no WORLD_SIZE
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="nproc and threads must be whole numbers"):
            distributed.launch(["-c", "pass"], nproc=bad)


def test_a_timed_out_launch_leaves_no_rank_running(tmp_path):
    """A hung run: torchrun *and* both ranks are killed, not only torchrun (whose ranks would
    otherwise keep two cores busy for the rest of the session)."""
    script = tmp_path / "hang.py"
    script.write_text("import os, pathlib, time, sys\n"
                      "pathlib.Path(sys.argv[1], os.environ['RANK']).write_text(str(os.getpid()))\n"
                      "time.sleep(600)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        distributed.launch([script, tmp_path], nproc=2, timeout=8)
    pids = [int((tmp_path / r).read_text()) for r in ("0", "1")]  # both ranks had started

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return not Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"

    assert not any(alive(p) for p in pids)

"""Run by tests/test_distributed.py under a launcher: the launches that look parallel and are not,
and the ones that are. Each mode prints one line the test reads: ``TRAP <message>`` when
:mod:`ptutils.distributed` stopped the run, ``OK ...`` when it went ahead.

Usage: ``torchrun --standalone --nproc_per_node 2 tests/_distributed_traps.py MODE [OUT]`` or
``accelerate launch --cpu --num_processes 2 tests/_distributed_traps.py expect``.

Modes:
    expect            :func:`ptutils.distributed.expect_world_size` with no argument
    accelerator       a plain ``Accelerator()`` (the trap under torchrun on a CPU)
    accelerator-cpu   ``Accelerator(cpu=True)`` (the fix): prepare the model, check it is wrapped
    trainer           ``TrainingArguments(use_cpu=False)`` under torchrun (the trap)
    trainer-cpu OUT   ``use_cpu=True, ddp_backend="gloo"`` (the fix): train, rank 0 saves both ranks' weights
    unchecked         the two traps without the checks, to show they are real: what each process sees
"""

import os
import sys

import torch

from ptutils import distributed


def tiny_classifier():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, num_labels=2,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(cfg)


class Toy(torch.utils.data.Dataset):
    def __init__(self, n=16):
        g = torch.Generator().manual_seed(5)
        self.ids = torch.randint(1, 50, (n, 8), generator=g)
        self.labels = torch.randint(0, 2, (n,), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def trainer(use_cpu: bool, out_dir: str):
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=out_dir, use_cpu=use_cpu, ddp_backend="gloo" if use_cpu else None,
                             per_device_train_batch_size=4, max_steps=3, learning_rate=1e-2, report_to=[],
                             save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=0,
                             dataloader_num_workers=0)
    t = Trainer(model=tiny_classifier(), args=args, train_dataset=Toy())
    return t


def main(mode: str, out: str | None) -> None:
    try:
        if mode == "expect":
            w = distributed.expect_world_size()
            print(f"OK world {1 if w is None else w.size}", flush=True)
        elif mode in ("accelerator", "accelerator-cpu"):
            from accelerate import Accelerator

            acc = Accelerator(cpu=mode == "accelerator-cpu")
            distributed.check_accelerator(acc)
            model = acc.prepare(tiny_classifier())
            distributed.check_accelerator(acc, model)
            print(f"OK accelerator {acc.num_processes} {type(model).__name__}", flush=True)
        elif mode in ("trainer", "trainer-cpu"):
            import tempfile

            with tempfile.TemporaryDirectory() as d:
                t = trainer(mode == "trainer-cpu", d)
                distributed.check_trainer(t)
                t.add_callback(distributed.wrapped_check_callback(t))
                t.train()
                import torch.distributed as dist

                state = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
                states = [None] * dist.get_world_size()
                dist.all_gather_object(states, state)
                if dist.get_rank() == 0:
                    torch.save({"states": states, "wrapped": type(t.model_wrapped).__name__,
                                "world": dist.get_world_size()}, out)
                print(f"OK trainer {dist.get_world_size()} {type(t.model_wrapped).__name__}", flush=True)
        elif mode == "unchecked":
            import tempfile

            from accelerate import Accelerator

            acc = Accelerator()
            model = acc.prepare(tiny_classifier())
            with tempfile.TemporaryDirectory() as d:
                t = trainer(False, d)
                t.train()
                print(f"OK unchecked accelerator {acc.num_processes} {type(model).__name__} "
                      f"trainer {t.accelerator.num_processes} {type(t.model_wrapped).__name__}", flush=True)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    except distributed.LaunchError as e:
        print(f"TRAP rank {os.environ.get('RANK', '-')}: {e}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)

"""Fine-tune all-MiniLM-L6-v2 on every training sentence of the benchmark (outside the book build).

    .venv/bin/python benchmarks/finetune_all.py          # about 20-25 minutes on 2 CPU cores

The book's chapters fine-tune on at most 1,024 labels per class to stay within their
time budget. This script runs the same recipe (``ptutils.finetune.FINETUNE_DEFAULTS``,
mean-pooling head, the validation split of ``ptutils.protocol``) on the whole training
pool, evaluates once on the fixed 2,000 test sentences, and prints a Markdown table
beside the published anchors on this benchmark. The run is cached like every other
(``ptutils.cache``), so a second call prints the same numbers at once.
"""

from __future__ import annotations

import platform

import torch

from ptutils import protocol
from ptutils.data import RT_POLARITY_PUBLISHED, rt_polarity_benchmark
from ptutils.finetune import FINETUNE_DEFAULTS, finetune_minilm
from ptutils.metrics import accuracy_interval, format_interval, paired_bootstrap, verdict
from ptutils.pretrained import benchmark_embeddings, offline_env



def main() -> None:
    offline_env()
    bench = rt_polarity_benchmark(fast=False)
    train_pool, val = protocol.split(bench)
    y = bench.y(bench.test)
    tr = protocol.train_set(bench, None)
    print(f"{len(tr)} training sentences, {len(val)} validation, {len(bench.test)} test; "
          f"{torch.get_num_threads()} threads on {platform.processor() or platform.machine()}")
    ft = finetune_minilm(bench, tr, val_idx=val, verbose=True)
    tfidf, _ = protocol.tfidf_predictions(bench, tr)
    probe, _ = protocol.probe_predictions(bench, benchmark_embeddings(bench), tr)
    ref = protocol.reference_finetune(bench, verbose=False)
    rows = [("fine-tuned MiniLM, all labels", ft["test_pred"]), ("fine-tuned MiniLM, 1,024 per class", ref["test_pred"]),
            ("MiniLM probe, all labels", probe), ("TF-IDF + LR, all labels", tfidf)]
    print(f"\nFine-tuning: {FINETUNE_DEFAULTS}; {float(ft['seconds']):.0f} s of training; "
          f"validation accuracy per epoch {[round(float(a), 4) for a in ft['val_acc']]}\n")
    print("| model | test accuracy (2,000 sentences) | 95 % interval |")
    print("|---|---:|---|")
    for name, p in rows:
        ci = accuracy_interval(y, p)
        print(f"| {name} | {ci['accuracy']:.1%} | {format_interval(ci['low'], ci['high'], points=False)} |")
    for name, (acc, source) in RT_POLARITY_PUBLISHED.items():
        print(f"| {name} (published: {source}, 10-fold CV) | {acc:.1%} | |")
    print()
    for name, p in rows[1:]:
        r = paired_bootstrap(y, ft["test_pred"], p)
        print(f"all-label fine-tuning − {name}: {100 * r['diff']:+.1f} points, {format_interval(r['low'], r['high'])} "
              f"({verdict(r['low'], r['high'])})")


if __name__ == "__main__":
    main()

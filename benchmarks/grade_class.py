"""Grading a class: copies of a chapter's reference solution, each in its own sandbox.

    .venv/bin/python benchmarks/grade_class.py [--chapter 02_core_concepts] [--copies 30] [--jobs 2]

Grades ``--copies`` copies of the chapter's reference notebook (every cell runs, as in a
complete submission) with its hidden tests, ``--jobs`` at a time, with the grader's default
limits, checks that every copy earns full marks, and prints one row for
``benchmarks/RESULTS.md``: the wall time for the class and per submission.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from ptutils.classroom import grade, student

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--chapter", default="02_core_concepts")
    p.add_argument("--source", type=Path, help="another notebook with hidden-test cells (default: the chapter's)")
    p.add_argument("--copies", type=int, default=30)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    src = args.source or ROOT / "notebooks" / f"{args.chapter}.ipynb"
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        hidden = d / "hidden.ipynb"
        nbformat.write(student.hidden_tests(nbformat.read(src, as_version=4)), hidden)
        subs = d / "subs"
        subs.mkdir()
        for i in range(args.copies):
            shutil.copy(src, subs / f"student_{i:03d}.ipynb")
        t0 = time.perf_counter()
        rc = grade.main([str(hidden), str(subs), "--out", str(d / "out"), "--jobs", str(args.jobs)])
        seconds = time.perf_counter() - t0
        with (d / "out" / "grades.csv").open() as f:
            rows = list(csv.DictReader(f))
    full = sum(float(r["total"]) == float(r["max"]) for r in rows)
    print(f"\n| chapter | copies | jobs | cores | full marks | wall s | s per submission |\n|---|---:|---:|---:|---:|---:|---:|\n"
          f"| {src.stem} | {args.copies} | {args.jobs} | {os.cpu_count()} | {full}/{len(rows)} | "
          f"{seconds:.0f} | {seconds / max(len(rows), 1):.1f} |")
    return rc if full == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())

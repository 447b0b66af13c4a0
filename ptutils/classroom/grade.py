"""Grade submitted notebooks with hidden tests.

    python -m ptutils.classroom.grade student/hidden/02_core_concepts.ipynb submissions/ [--out grades/]

For each ``*.ipynb`` in the submissions folder (one per student, named after the
student), the grader

1. starts a fresh kernel with the network switched off (``PTUTILS_ONLINE=0``,
   Hugging Face offline, HTTP proxies pointing at a closed local port) and in fast
   mode (``PTUTILS_FAST=1``), with the students' self-checks not strict (``PTUTILS_STRICT=0``:
   a ``[fail]`` prints, as in class; only the hidden tests score);
2. runs the student's cells in order, each with a time limit; a cell that raises,
   does not parse or runs too long is recorded and the next cell still runs;
3. appends the hidden tests and runs each one; a test that finishes without an
   error earns its points.

It writes ``grades.csv`` (one row per student, one column per hidden test, total)
and ``feedback/<student>.md``. Broken submissions (invalid files, syntax errors,
exceptions, infinite loops, deleted, reordered or renamed code, a dead kernel)
cost the student the points of the tests they break, never the grading run.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .student import HIDDEN_HEADER, HIDDEN_TAG


@dataclass
class HiddenTest:
    name: str
    points: float
    source: str


@dataclass
class Result:
    student: str
    scores: dict = field(default_factory=dict)
    messages: dict = field(default_factory=dict)
    cell_errors: list = field(default_factory=list)
    seconds: float = 0.0
    fatal: str = ""

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def load_hidden_tests(path: Path) -> list[HiddenTest]:
    nb = nbformat.read(path, as_version=4)
    tests = []
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        m = HIDDEN_HEADER.match(cell.source.splitlines()[0])
        if not m:
            raise ValueError(f"{path}: hidden test cell must start with '# hidden test: <name> (<n> points)'")
        tests.append(HiddenTest(m["name"], float(m["points"]), cell.source))
    if not tests:
        raise ValueError(f"{path}: no hidden tests found")
    names = [t.name for t in tests]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate hidden test names {names}")
    return tests


def grading_env() -> dict:
    env = dict(os.environ)
    env.update({
        "PTUTILS_FAST": "1", "PTUTILS_ONLINE": "0", "PTUTILS_STRICT": "0",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1", "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": "",
        "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0",
    })
    return env


def _error_of(cell, timeout: int) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            if out.get("ename") == "KeyboardInterrupt":  # nbclient interrupts a cell at its time limit
                return f"timed out after {timeout} s (interrupted)"
            return f"{out.get('ename')}: {out.get('evalue')}"[:300]
    return None


def grade_one(path: Path, tests: list[HiddenTest], *, cell_timeout: int = 120,
              total_timeout: int = 1800, kernel_name: str = "python3") -> Result:
    """Run one submission and its hidden tests in a fresh kernel; never raises."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    student = path.stem
    res = Result(student, scores={t.name: 0.0 for t in tests}, messages={t.name: "not run" for t in tests})
    t0 = time.perf_counter()
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the student's problem, not ours
        res.fatal = f"could not read the notebook: {type(e).__name__}: {e}"[:300]
        return res
    cells = [c for c in nb.cells if c.cell_type == "code" and HIDDEN_TAG not in c.metadata.get("tags", [])]
    for c in cells:
        c.outputs, c.execution_count = [], None
    test_cells = [nbformat.v4.new_code_cell(t.source) for t in tests]
    nb.cells = cells + test_cells
    with tempfile.TemporaryDirectory() as work:
        client = NotebookClient(nb, timeout=cell_timeout, allow_errors=True, interrupt_on_timeout=True,
                                kernel_name=kernel_name, resources={"metadata": {"path": work}})
        try:
            with client.setup_kernel(env=grading_env(), cwd=work):
                for i, cell in enumerate(cells):
                    if time.perf_counter() - t0 > total_timeout:
                        res.cell_errors.append((i, "skipped: the submission used up its total time"))
                        continue
                    try:
                        client.execute_cell(cell, i)
                    except CellTimeoutError:
                        res.cell_errors.append((i, f"timed out after {cell_timeout} s (interrupted)"))
                        continue
                    err = _error_of(cell, cell_timeout)
                    if err:
                        res.cell_errors.append((i, err))
                for j, (t, cell) in enumerate(zip(tests, test_cells, strict=True)):
                    try:
                        client.execute_cell(cell, len(cells) + j)
                    except CellTimeoutError:
                        res.messages[t.name] = f"timed out after {cell_timeout} s"
                        continue
                    err = _error_of(cell, cell_timeout)
                    if err:
                        res.messages[t.name] = err
                    else:
                        res.scores[t.name] = t.points
                        res.messages[t.name] = "passed"
        except DeadKernelError as e:
            res.fatal = f"the kernel died: {e}"[:300]
        except Exception as e:  # noqa: BLE001 - keep grading the other students
            res.fatal = f"grading error: {type(e).__name__}: {e}"[:300]
    res.seconds = time.perf_counter() - t0
    return res


def write_reports(results: list[Result], tests: list[HiddenTest], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    max_total = sum(t.points for t in tests)
    csv_path = out / "grades.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *[t.name for t in tests], "total", "max"])
        for r in results:
            w.writerow([r.student, *[r.scores[t.name] for t in tests], r.total, max_total])
    (out / "feedback").mkdir(exist_ok=True)
    for r in results:
        lines = [f"# Feedback for {r.student}", "", f"Score: {r.total:g} / {max_total:g}", ""]
        if r.fatal:
            lines += [f"**Your notebook could not be graded fully:** {r.fatal}", ""]
        lines += ["| test | points | result |", "|---|---:|---|"]
        lines += [f"| {t.name} | {r.scores[t.name]:g} / {t.points:g} | {r.messages[t.name]} |" for t in tests]
        if r.cell_errors:
            lines += ["", "Cells of your notebook that failed (counting code cells from 0):", ""]
            lines += [f"- cell {i}: {msg}" for i, msg in r.cell_errors]
        lines += ["", f"Graded in {r.seconds:.0f} s."]
        safe = re.sub(r"[^\w.\-]", "_", r.student)
        (out / "feedback" / f"{safe}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ptutils.classroom.grade", description=__doc__.split("\n\n")[0])
    p.add_argument("hidden", type=Path, help="notebook of hidden tests (from make student: student/hidden/)")
    p.add_argument("submissions", type=Path, help="folder of submitted notebooks, one per student")
    p.add_argument("--out", type=Path, default=Path("grades"), help="where to write grades.csv and feedback/")
    p.add_argument("--cell-timeout", type=int, default=120, help="seconds allowed per cell")
    p.add_argument("--total-timeout", type=int, default=1800, help="seconds allowed per submission")
    args = p.parse_args(argv)
    tests = load_hidden_tests(args.hidden)
    subs = sorted(args.submissions.glob("*.ipynb"))
    if not subs:
        print(f"no .ipynb files in {args.submissions}")
        return 2
    results = []
    for path in subs:
        r = grade_one(path, tests, cell_timeout=args.cell_timeout, total_timeout=args.total_timeout)
        print(f"{r.student:24s} {r.total:5g} / {sum(t.points for t in tests):g}  ({r.seconds:.0f} s)"
              + (f"  {r.fatal}" if r.fatal else ""))
        results.append(r)
    csv_path = write_reports(results, tests, args.out)
    print(f"wrote {csv_path} and {args.out / 'feedback'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

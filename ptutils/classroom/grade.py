"""Grade submitted notebooks with hidden tests, each submission in its own sandbox.

    ptutils-grade student/hidden/02_core_concepts.ipynb submissions/ [--out grades/] [--jobs 2]

``python -m ptutils.classroom.grade`` runs the same command.

For each ``*.ipynb`` in the submissions folder (one per student, named after the
student), the grader

1. starts a sandbox (:mod:`ptutils.classroom.sandbox`: bubblewrap, no network, read-only
   environment, resource limits) that sees only this student's code cells;
2. runs the student's cells there in a fresh kernel, in order, each with a time limit, in
   fast mode (``PTUTILS_FAST=1``), offline, with the students' self-checks not strict
   (``PTUTILS_STRICT=0``); a cell that raises, does not parse or runs too long is recorded
   and the next cell still runs;
3. runs, in that kernel, the first part of each hidden test: its inputs and the calls of
   the student's functions. The kernel hands back only what the functions returned, as plain
   data (:mod:`ptutils.classroom.plaindata`); anything else is a wrong answer;
4. decides every verdict in its own process: it runs the hidden test again with the
   student's functions replaced by the returned values, then the test's checks (the part
   after ``# checks``). Expected values are computed only here, never in the student's kernel.

A hidden-test cell (tag ``hidden-test``)::

    # hidden test: perplexity (1 point)
    got_ht = perplexity(math.log(50)), perplexity(0)
    # checks (the grader's process)
    assert abs(got_ht[0] - 50) < 1e-9 and got_ht[1] == 1

Above ``# checks``: inputs and calls (it runs in the student's kernel and in the grader;
it must not compute an expected value). Below: the checks (the grader only; they must not
call the student's functions). The student's functions are the names it calls that it does
not define; ``np``, ``torch``, ``nn``, ``F``, ``math``, ``hashlib`` and ``ptutils`` are
provided; import anything else in the cell. In the book the whole cell runs as it stands.

It writes ``grades.csv`` (one row per student, one column per hidden test, total)
and ``feedback/<student>.md``. Broken or hostile submissions (invalid files, syntax errors,
exceptions, infinite loops, deleted or renamed code, a dead kernel, a limit reached) cost the
student the points of the tests they break, never the grading run.

Exit codes:

* ``0``: every submission was graded;
* ``1``: some submissions could not be graded fully (a file that is not a notebook, a kernel
  that died, a submission stopped at its wall-time limit); they get the points of the tests
  that passed, ``grades.csv`` and their feedback are still written, and the line the grader
  prints for each of them says why;
* ``2``: bad usage, or grading cannot run: a wrong option or argument, a limit that is not
  positive (``--jobs 0``, ``--cell-timeout 0``, ...), a hidden-test notebook that is missing,
  not a notebook or holds no valid hidden test, a submissions folder that is missing or holds
  no ``.ipynb``, an ``--out`` folder that is the submissions folder or inside it (the next run
  would grade what it wrote), or no usable sandbox (bubblewrap missing or unable to start)
  without ``--unsafe-no-sandbox``; or an ``--out`` folder that cannot be written.

Each failure of the run is reported in one line on standard error that starts with
``ptutils-grade: error:``.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import csv
import importlib
import json
import math
import os
import queue
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..progress import Progress
from . import plaindata, sandbox
from .cli import UsageError as _CannotRun, inside as _inside, parse
from .runner import MIME
from .sandbox import Limits
from .student import HIDDEN_HEADER, HIDDEN_TAG

CHECKS = re.compile(r"^# checks\b.*$", re.MULTILINE)
PROVIDED = {"np": "numpy", "torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional",
            "math": "math", "hashlib": "hashlib", "ptutils": "ptutils"}
MAX_NOTEBOOK_BYTES = 50 * 2**20


@dataclass
class HiddenTest:
    name: str
    points: float
    source: str
    compute: str = ""
    checks: str = ""
    calls: tuple = ()      # the student's functions it calls
    provided: tuple = ()   # the names of PROVIDED it uses


@dataclass
class Result:
    student: str
    scores: dict = field(default_factory=dict)
    messages: dict = field(default_factory=dict)
    cell_errors: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    fatal: str = ""

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def _names(tree) -> tuple[set, set]:
    """(names the code defines, names it reads) anywhere in ``tree``."""
    stored, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (stored if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stored.add(node.name)
        elif isinstance(node, ast.alias):
            stored.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            stored.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            stored.add(node.name)
    return stored, loaded


def parse_hidden_test(source: str, where: str = "") -> HiddenTest:
    """Split a hidden-test cell into the part the kernel runs and the checks the grader runs."""
    first = source.splitlines()[0] if source.strip() else ""
    m = HIDDEN_HEADER.match(first)
    if not m:
        raise ValueError(f"{where}: hidden test cell must start with '# hidden test: <name> (<n> points)'")
    parts = CHECKS.split(source, maxsplit=1)
    if len(parts) != 2:
        raise ValueError(f"{where}: hidden test {m['name']!r} has no '# checks' line: above it the inputs and "
                         "the calls of the student's functions, below it the asserts (run by the grader)")
    compute, checks = parts
    try:
        ctree, ktree = ast.parse(compute), ast.parse(checks)
    except SyntaxError as e:
        raise ValueError(f"{where}: hidden test {m['name']!r} does not parse: {e}") from None
    stored_c, loaded_c = _names(ctree)
    stored_k, loaded_k = _names(ktree)
    free = loaded_c - stored_c - set(dir(builtins)) - set(PROVIDED)
    callees = {n.func.id for n in ast.walk(ctree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    bad = free - callees
    if bad:
        raise ValueError(f"{where}: hidden test {m['name']!r} reads {sorted(bad)}, which it does not define; "
                         f"the grader provides {sorted(PROVIDED)} (import anything else in the cell)")
    uses = {n.id for n in ast.walk(ctree) if isinstance(n, ast.Name) and n.id in free}
    as_callee = {n.func.id for n in ast.walk(ctree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    n_uses = sum(1 for n in ast.walk(ctree) if isinstance(n, ast.Name) and n.id in free)
    n_calls = sum(1 for n in ast.walk(ctree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                  and n.func.id in free)
    if n_uses != n_calls or not uses <= as_callee:
        raise ValueError(f"{where}: hidden test {m['name']!r} uses a student's function other than by calling it")
    if not free:
        raise ValueError(f"{where}: hidden test {m['name']!r} calls no student function above '# checks'")
    leaked = (loaded_k - stored_k - stored_c) & free
    if leaked:
        raise ValueError(f"{where}: hidden test {m['name']!r} calls {sorted(leaked)} below '# checks'; "
                         "call the student's functions above it")
    provided = tuple(sorted((loaded_c | loaded_k) & set(PROVIDED) - stored_c - stored_k))
    return HiddenTest(m["name"], float(m["points"]), source, compute, checks, tuple(sorted(free)), provided)


def load_hidden_tests(path: Path) -> list[HiddenTest]:
    nb = nbformat.read(path, as_version=4)
    tests = [parse_hidden_test(c.source, str(path)) for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    if not tests:
        raise ValueError(f"{path}: no hidden tests found")
    names = [t.name for t in tests]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate hidden test names {names}")
    return tests


def grading_env() -> dict:
    """The kernel's environment: offline, fast, not strict (starts from the teacher's, unless sandboxed)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update({
        "PTUTILS_FAST": "1", "PTUTILS_ONLINE": "0", "PTUTILS_STRICT": "0",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1", "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": "",
        "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    })
    return env


_KERNEL_SIDE = '''
def __ptutils_hidden_test(_test={test!r}, _src={src!r}, _calls={calls!r}, _provided={provided!r}):
    import importlib, json
    from IPython.display import display
    _pd = {{"__name__": "ptutils_plaindata"}}
    exec({plaindata!r}, _pd)
    calls, g, ns = [], globals(), {{}}
    for alias, mod in _provided:
        ns[alias] = importlib.import_module(mod)

    def record(name, f):
        def call(*args, **kwargs):
            try:
                value = f(*args, **kwargs)
            except BaseException as e:
                calls.append({{"name": name, "raised": (type(e).__name__ + ": " + str(e))[:500]}})
                raise
            try:
                calls.append({{"name": name, "value": _pd["encode"](value)}})
            except _pd["PlainDataError"] as e:
                calls.append({{"name": name, "refused": str(e)[:500]}})
            return value
        return call

    for name in _calls:
        if name in g:
            ns[name] = record(name, g[name])
    error = None
    try:
        exec(compile(_src, "<hidden test " + _test + ">", "exec"), ns)
    except BaseException as e:
        error = (type(e).__name__ + ": " + str(e))[:500]
    try:
        payload = json.dumps({{"test": _test, "calls": calls, "error": error}})
    except Exception as e:
        payload = json.dumps({{"test": _test, "calls": [], "error": "the answers could not be written: " + str(e)[:300]}})
    display({{{mime!r}: payload}}, raw=True)

__ptutils_hidden_test()
del __ptutils_hidden_test
'''


def kernel_code(t: HiddenTest) -> str:
    """What the student's kernel runs for one hidden test: inputs, calls, plain answers out."""
    return _KERNEL_SIDE.format(test=t.name, src=t.compute, calls=list(t.calls),
                               provided=[(a, PROVIDED[a]) for a in t.provided],
                               plaindata=Path(plaindata.__file__).read_text(encoding="utf-8"), mime=MIME)


class _NoAnswer(Exception):
    pass


def judge(t: HiddenTest, entry) -> tuple[float, str]:
    """Points and message for one test from the kernel's (untrusted) entry; decided here."""
    if not isinstance(entry, dict):
        return 0.0, "not run"
    if isinstance(entry.get("timeout"), str):
        return 0.0, _clean(entry["timeout"])
    payloads = entry.get("payloads")
    payloads = [p for p in payloads if isinstance(p, str)] if isinstance(payloads, list) else []
    if not payloads:
        err = entry.get("error")
        return 0.0, _clean(err) if isinstance(err, str) else "no answer came back from your kernel"
    data = None
    for payload in reversed(payloads):  # the last answer printed for this test (a thread may print others)
        try:
            d = json.loads(payload)
        except (ValueError, RecursionError):
            continue
        if isinstance(d, dict) and d.get("test") == t.name:
            data = d
            break
    if data is None:
        return 0.0, "the answer from your kernel is not valid JSON or names another test"
    if not isinstance(data.get("calls"), list):
        return 0.0, "the answer from your kernel is malformed"
    kernel_error = data.get("error") if isinstance(data.get("error"), str) else None
    queues: dict = {}
    for c in data["calls"]:
        if isinstance(c, dict) and c.get("name") in t.calls:
            queues.setdefault(c["name"], []).append(c)

    def proxy(name):
        def call(*_args, **_kwargs):
            q = queues.get(name, [])
            if not q:
                why = f" ({kernel_error})" if kernel_error else ""
                raise _NoAnswer(f"no answer from {name}: the test's code did not reach this call in your kernel{why}")
            c = q.pop(0)
            if isinstance(c.get("raised"), str):
                raise _NoAnswer(f"{name} raised {c['raised']}")
            if isinstance(c.get("refused"), str):
                raise _NoAnswer(f"wrong answer: {name} returned something the grader cannot read: {c['refused']}")
            if "value" not in c:
                raise _NoAnswer(f"the answer of {name} is malformed")
            try:
                return plaindata.decode(c["value"])
            except plaindata.PlainDataError as e:
                raise _NoAnswer(f"wrong answer: the value {name} returned is not plain data: {e}") from None
        return call

    ns = {"__name__": "__hidden_test__"}
    for alias in t.provided:
        ns[alias] = importlib.import_module(PROVIDED[alias])
    for name in t.calls:
        ns[name] = proxy(name)
    try:
        exec(compile(t.compute, f"<hidden test {t.name}>", "exec"), ns)
        exec(compile(t.checks, f"<hidden test {t.name}: checks>", "exec"), ns)
    except _NoAnswer as e:
        return 0.0, _clean(str(e))
    except AssertionError as e:
        return 0.0, "wrong answer" + (f": {_clean(str(e))}" if str(e) else "")
    except Exception as e:  # noqa: BLE001 - a value of the wrong kind fails the checks
        return 0.0, _clean(f"wrong answer ({type(e).__name__}: {e})")
    return t.points, "passed"


def _clean(s, n: int = 300) -> str:
    """One line of text, at most ``n`` characters (what the student's kernel said is untrusted)."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(s))[:n]


def _md(s) -> str:
    """Text safe in a Markdown table cell or list item."""
    s = _clean(s, 600)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("<", "&lt;")


_LIMIT_HINTS = [
    ("MemoryError", "memory_mb", "the memory limit ({} MB per process)"),
    ("File too large", "file_mb", "the file-size limit ({} MB)"),
    ("Errno 27", "file_mb", "the file-size limit ({} MB)"),
    ("Resource temporarily unavailable", "processes", "the process and thread limit ({})"),
    ("can't start new thread", "processes", "the process and thread limit ({})"),
    ("No space left on device", "tmp_mb", "the disk limit of its /tmp ({} MB)"),
]


def _hint(msg: str, limits: Limits) -> str:
    for needle, attr, text in _LIMIT_HINTS:
        if needle in msg:
            return f"{msg} [limit reached: {text.format(getattr(limits, attr))}]"
    return msg


def read_submission(path: Path) -> list[str]:
    """The code cells of one submission (hidden-test cells dropped); ValueError if unreadable."""
    if path.is_symlink() or not path.is_file():
        raise ValueError("not a regular file (a link or a folder)")
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
    nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    cells = []
    for c in nb.cells:
        if c.get("cell_type") == "code" and HIDDEN_TAG not in (c.get("metadata", {}).get("tags") or []):
            src = c.get("source", "")
            cells.append("".join(src) if isinstance(src, list) else str(src))
    return cells


def grade_one(path: Path, tests: list[HiddenTest], *, cell_timeout: int = 120, total_timeout: int = 1800,
              kernel_name: str = "python3", limits: Limits | None = None, unsafe: bool = False,
              worker: int = 0) -> Result:
    """Run one submission in its sandbox and judge its answers here; never raises."""
    limits = limits or Limits(cell_timeout=cell_timeout, total_timeout=total_timeout)
    student = path.stem
    res = Result(student, scores={t.name: 0.0 for t in tests}, messages={t.name: "not run" for t in tests})
    t0 = time.perf_counter()
    try:
        cells = read_submission(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the student's problem, not ours
        res.fatal = _clean(f"could not read the notebook: {type(e).__name__}: {e}")
        return res
    if not unsafe:
        ok, why = sandbox.usable()
        if not ok:
            res.fatal = _clean(f"not graded: no sandbox ({why})")
            return res
    job = {"cells": cells, "tests": [{"name": t.name, "code": kernel_code(t)} for t in tests],
           "cell_timeout": limits.cell_timeout, "total_timeout": limits.total_timeout,
           "answer_limit": int(limits.answer_mb * 2**20), "kernel": kernel_name, "env": grading_env()}
    if not unsafe:
        job["env"].update(HOME="/tmp", TMPDIR="/tmp")
    try:
        out, note = sandbox.run(job, limits, worker=worker, unsafe=unsafe)
    except Exception as e:  # noqa: BLE001 - keep grading the other students
        out, note = None, f"grading error: {type(e).__name__}: {e}"
    if unsafe:
        res.notes.append("graded without the sandbox (--unsafe-no-sandbox)")
    finished = isinstance(out, dict) and out.get("finished") is True
    if note and finished:
        res.notes.append(_clean(note))
    if not isinstance(out, dict):
        res.fatal = _clean(note or "no result came back from the sandbox")
        out = {}
    elif not finished:  # stopped from outside (the wall-time limit): the later cells and tests never ran
        res.fatal = _clean(note or "the grading of your notebook did not finish")
    cells_out = out.get("cells") if isinstance(out.get("cells"), list) else []
    for i, err in enumerate(cells_out[: len(cells)]):
        if isinstance(err, str):
            res.cell_errors.append((i, _clean(_hint(err, limits))))
    if isinstance(out.get("fatal"), str) and out["fatal"]:
        fatal = out["fatal"]
        if "died" in fatal:
            fatal += (f" (it may have reached the memory limit of {limits.memory_mb} MB or the CPU limit of "
                      f"{limits.cpu_s} s per process, or exited)")
        res.fatal = _clean(fatal, 500)
    printed = out.get("output_bytes")
    if type(printed) is int and printed > limits.output_mb * 2**20:
        res.notes.append(f"your notebook printed {printed / 2**20:.1f} MB, more than the {limits.output_mb:g} MB "
                         "allowed [limit reached: output]; printed output is not kept")
    answers = out.get("tests") if isinstance(out.get("tests"), dict) else {}
    for t in tests:
        pts, msg = judge(t, answers.get(t.name))
        res.scores[t.name], res.messages[t.name] = pts, _hint(msg, limits)
    res.seconds = time.perf_counter() - t0
    return res


def _safe_names(results: list[Result]) -> list[str]:
    """File names for the feedback: word characters only, unique."""
    seen, out = set(), []
    for r in results:
        base = re.sub(r"[^\w.\-]", "_", r.student).lstrip(".-")[:80] or "student"
        name, k = base, 1
        while name.lower() in seen:
            k += 1
            name = f"{base}_{k}"
        seen.add(name.lower())
        out.append(name)
    return out


def _csv_cell(s: str) -> str:
    """A student's name as a spreadsheet shows it, never as a formula."""
    s = re.sub(r"[\x00-\x1f\x7f]", "_", s)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def write_reports(results: list[Result], tests: list[HiddenTest], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    max_total = sum(t.points for t in tests)
    csv_path = out / "grades.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *[t.name for t in tests], "total", "max"])
        for r in results:
            w.writerow([_csv_cell(r.student), *[r.scores[t.name] for t in tests], r.total, max_total])
    (out / "feedback").mkdir(exist_ok=True)
    for r, safe in zip(results, _safe_names(results), strict=True):
        lines = [f"# Feedback for {_md(r.student[:120])}", "", f"Score: {r.total:g} / {max_total:g}", ""]
        if r.fatal:
            lines += [f"**Your notebook could not be graded fully:** {_md(r.fatal)}", ""]
        lines += ["| test | points | result |", "|---|---:|---|"]
        lines += [f"| {t.name} | {r.scores[t.name]:g} / {t.points:g} | {_md(r.messages[t.name])} |" for t in tests]
        if r.cell_errors:
            lines += ["", "Cells of your notebook that failed (counting code cells from 0):", ""]
            lines += [f"- cell {i}: {_md(msg)}" for i, msg in r.cell_errors]
        if r.notes:
            lines += ["", "Notes:", ""] + [f"- {_md(n)}" for n in r.notes]
        lines += ["", f"Graded in {r.seconds:.0f} s."]
        (out / "feedback" / f"{safe}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path


PROG = "ptutils-grade"


def _parser() -> argparse.ArgumentParser:
    d = Limits()
    doc = __doc__.split("\n\n")
    p = argparse.ArgumentParser(prog=PROG, description="\n\n".join(doc[:3]).replace("``", ""),
                                epilog=__doc__[__doc__.index("Exit codes:"):].strip().replace("``", ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("hidden", type=Path, help="notebook of hidden tests (from make student: student/hidden/)")
    p.add_argument("submissions", type=Path, help="folder of submitted notebooks, one per student")
    p.add_argument("--out", type=Path, default=Path("grades"),
                   help="where to write grades.csv and feedback/ (default %(default)s); not inside the submissions")
    p.add_argument("--cell-timeout", type=int, default=d.cell_timeout, help="seconds allowed per cell (default %(default)s)")
    p.add_argument("--total-timeout", type=int, default=d.total_timeout,
                   help="seconds allowed for a submission's cells (default %(default)s); its sandbox is killed at "
                        "this + --wall-margin + one cell timeout per hidden test")
    p.add_argument("--wall-margin", type=int, default=d.wall_margin_s, help="seconds (default %(default)s)")
    p.add_argument("--memory-mb", type=int, default=d.memory_mb, help="virtual memory per process, MB (default %(default)s)")
    p.add_argument("--processes", type=int, default=d.processes, help="processes and threads (default %(default)s)")
    p.add_argument("--cpu-seconds", type=int, default=d.cpu_s, help="CPU seconds per process (default %(default)s)")
    p.add_argument("--file-mb", type=int, default=d.file_mb, help="largest file written, MB (default %(default)s)")
    p.add_argument("--tmp-mb", type=int, default=d.tmp_mb, help="size of the sandbox's /tmp, MB (default %(default)s)")
    p.add_argument("--output-mb", type=float, default=d.output_mb, help="printed output reported over, MB (default %(default)s)")
    p.add_argument("--answer-mb", type=float, default=d.answer_mb, help="one test's answers, MB of JSON (default %(default)s)")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default %(default)s)")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="grade without bubblewrap: the students' code runs with your rights (verdicts are still "
                        "decided outside it, and the limits still apply)")
    return p


def _check_limits(args) -> None:
    for flag in ("cell_timeout", "total_timeout", "memory_mb", "processes", "cpu_seconds", "file_mb", "tmp_mb",
                 "output_mb", "answer_mb", "jobs"):
        v = getattr(args, flag)
        if not (v > 0 and math.isfinite(v)):
            raise _CannotRun(f"--{flag.replace('_', '-')} must be positive, not {v:g}")
    if args.wall_margin < 0:
        raise _CannotRun(f"--wall-margin must be 0 or more, not {args.wall_margin}")


def _check_inputs(args) -> tuple[list[HiddenTest], list[Path]]:
    """The hidden tests and the submissions; _CannotRun if grading cannot start."""
    h = args.hidden
    if not h.is_file():
        raise _CannotRun(f"hidden-test notebook {h} " + ("is not a file" if h.exists() else "does not exist"))
    try:
        tests = load_hidden_tests(h)
    except ValueError as e:  # its own checks (no hidden tests, a malformed one), not JSON, not a notebook
        msg = str(e) if str(e).startswith(str(h)) else f"{h}: not a notebook of hidden tests ({type(e).__name__}: {e})"
        raise _CannotRun(msg) from None
    except Exception as e:  # noqa: BLE001 - JSON that is not a notebook, an unreadable file
        raise _CannotRun(f"{h}: not a notebook of hidden tests ({type(e).__name__}: {e})") from None
    s = args.submissions
    if not s.is_dir():
        raise _CannotRun(f"submissions folder {s} " + ("is not a folder" if s.exists() else "does not exist"))
    subs = sorted(s.glob("*.ipynb"))
    if not subs:
        raise _CannotRun(f"no .ipynb files in {s}")
    if _inside(args.out, s):
        raise _CannotRun(f"--out {args.out} is the submissions folder {s} or inside it (the next run would grade "
                         "it); write the grades elsewhere")
    if args.out.exists() and not args.out.is_dir():
        raise _CannotRun(f"--out {args.out} exists and is not a folder")
    return tests, subs


def main(argv=None) -> int:
    """The command ``ptutils-grade``; returns the exit code (module doc)."""
    args = parse(_parser(), argv)
    if isinstance(args, int):  # --help (0) or a usage error (2), already printed by argparse
        return args
    try:
        _check_limits(args)
        tests, subs = _check_inputs(args)
        if not args.unsafe_no_sandbox:
            ok, why = sandbox.usable()
            if not ok:
                raise _CannotRun(f"refusing to grade without a sandbox: {why}; install bubblewrap (make setup does), "
                                 "or pass --unsafe-no-sandbox to run the students' code with your own rights")
    except _CannotRun as e:
        print(f"{PROG}: error: {_clean(e, 600)}", file=sys.stderr)
        return 2
    if args.unsafe_no_sandbox:
        print("WARNING: --unsafe-no-sandbox: the submissions run with your rights, with no isolation; "
              "use it only for code you trust.", file=sys.stderr)
    limits = Limits(memory_mb=args.memory_mb, processes=args.processes, cpu_s=args.cpu_seconds,
                    file_mb=args.file_mb, tmp_mb=args.tmp_mb, output_mb=args.output_mb, answer_mb=args.answer_mb,
                    cell_timeout=args.cell_timeout, total_timeout=args.total_timeout,
                    wall_margin_s=args.wall_margin)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"{PROG}: error: cannot write the grades to {args.out}: {_clean(e)}", file=sys.stderr)
        return 2
    max_total = sum(t.points for t in tests)
    workers: queue.Queue = queue.Queue()
    for i in range(args.jobs):
        workers.put(i)

    def one(path):
        w = workers.get()
        try:
            r = grade_one(path, tests, limits=limits, unsafe=args.unsafe_no_sandbox, worker=w)
        finally:
            workers.put(w)
        with lock:  # one line per submission, printed above the bar (the bar: a terminal's progress)
            bar.write(f"{_clean(r.student, 40):24s} {r.total:5g} / {max_total:g}  ({r.seconds:.0f} s)"
                      + (f"  not graded fully: {r.fatal}" if r.fatal else ""))
            bar.update()
        return r

    t0 = time.perf_counter()
    lock = threading.Lock()
    with Progress(total=len(subs), desc="grading", unit="submission") as bar, \
            ThreadPoolExecutor(max_workers=args.jobs) as ex:
        results = list(ex.map(one, subs))
    try:
        csv_path = write_reports(results, tests, args.out)
    except OSError as e:
        print(f"{PROG}: error: cannot write the grades to {args.out}: {_clean(e)}", file=sys.stderr)
        return 2
    partial = sum(1 for r in results if r.fatal)
    print(f"wrote {csv_path} and {args.out / 'feedback'}/ ({len(results)} submissions in "
          f"{time.perf_counter() - t0:.0f} s" + (f"; {partial} not graded fully" if partial else "") + ")")
    return 1 if partial else 0


if __name__ == "__main__":
    sys.exit(main())

"""The grader against students who try to cheat or break it (tests/hostile/), and its parts'
hostile inputs: the plain-data decoder, the hidden-test parser, the reports.

Each hostile submission is graded in one run beside honest ones: the cheater earns nothing it
did not compute, every honest student's grade is unchanged, and the run completes.
"""

import csv
import hashlib
import json
import math
import os
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from ptutils.classroom import grade, plaindata, sandbox
from ptutils.classroom.grade import Result, judge, main as grade_main, parse_hidden_test, write_reports

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "hostile"
PACKAGE = ROOT / "ptutils"

HIDDEN = [
    "# hidden test: add (2 points)\ngot = add(2, 3), add(-1, 1)\n# checks (the grader's process)\n"
    "# SECRET-CHECK-TOKEN: this line never enters a sandbox\nassert got == (5, 0)",
    "# hidden test: scale (1 point)\nx_ht = np.arange(6.0).reshape(2, 3)\ngot = scale(x_ht.copy(), 2.0)\n"
    "# checks (the grader's process)\n# SECRET-CHECK-TOKEN\nassert got.shape == (2, 3) and np.allclose(got, x_ht * 2)",
]
GOOD = ["import numpy as np", "def add(a, b):\n    return a + b", "def scale(x, k):\n    return x * k"]
FLAGS = ["--cell-timeout", "10", "--total-timeout", "40", "--wall-margin", "20", "--memory-mb", "1536", "--processes", "64",
         "--cpu-seconds", "60", "--file-mb", "8", "--tmp-mb", "128", "--output-mb", "1"]


def _write_nb(path: Path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


def _cells(py: Path) -> list[str]:
    """A ``# %%`` file as code cells (the text before the first marker is a comment)."""
    parts = py.read_text().split("# %%\n")
    return [p.strip("\n") for p in parts[1:]]


def _hidden(d: Path) -> Path:
    h = nbformat.v4.new_notebook()
    h.cells = [nbformat.v4.new_code_cell(s) for s in HIDDEN]
    nbformat.write(h, d / "hidden.ipynb")
    return d / "hidden.ipynb"


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


WEIRD = '=HYPERLINK("x"),evil|name\n"; drop'


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    ok, why = sandbox.usable()
    assert ok, f"the hostile suite needs bubblewrap (make setup installs it): {why}"
    d = tmp_path_factory.mktemp("hostile")
    hidden = _hidden(d)
    subs = d / "subs"
    subs.mkdir()
    for py in sorted(HOSTILE.glob("*.py")):
        _write_nb(subs / f"{py.stem}.ipynb", _cells(py))
    _write_nb(subs / "z_good.ipynb", GOOD)
    _write_nb(subs / f"{WEIRD}.ipynb", GOOD)       # a file name made to break the CSV and the feedback path
    _write_nb(subs / "a b.ipynb", GOOD)            # two names that clean up to the same feedback file
    _write_nb(subs / "a_b.ipynb", GOOD)
    (subs / "link.ipynb").symlink_to(hidden)       # a link to the hidden tests is not a submission
    before_subs, before_pkg = _digest(subs), _digest(PACKAGE)
    out = d / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the teacher's file")
    t0 = time.perf_counter()
    code = grade_main([str(hidden), str(subs), "--out", str(out), *FLAGS])
    assert code == 1  # the link is not a notebook it can read: not graded fully
    seconds = time.perf_counter() - t0
    with (out / "grades.csv").open(newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return {"rows": rows, "out": out, "subs": subs, "seconds": seconds, "before_subs": before_subs,
            "after_subs": _digest(subs), "before_pkg": before_pkg, "after_pkg": _digest(PACKAGE)}


def _feedback(run, name):
    return (run["out"] / "feedback" / f"{name}.md").read_text()


@pytest.mark.parametrize("student,total", [
    ("always_equal", 0), ("monkeypatch", 0), ("read_hidden", 0), ("writer", 0),
    ("background_thread", 1), ("memory_bomb", 3), ("huge_output", 2),
    ("z_good", 3), ("'" + WEIRD.replace("\n", "_"), 3), ("a b", 3), ("a_b", 3), ("link", 0),
])
def test_hostile_grades(hostile_run, student, total):
    rows = hostile_run["rows"]
    assert student in rows, sorted(rows)
    assert float(rows[student]["total"]) == total, rows[student]


def test_every_submission_graded_and_nothing_damaged(hostile_run):
    rows = hostile_run["rows"]
    assert len(rows) == len(list(HOSTILE.glob("*.py"))) + 5
    assert hostile_run["after_subs"] == hostile_run["before_subs"], "a submission changed another's notebook"
    assert hostile_run["after_pkg"] == hostile_run["before_pkg"], "a submission wrote into the package"
    out = hostile_run["out"]
    assert (out / "keep.txt").read_text() == "the teacher's file"
    assert not list(out.rglob("pwned*"))
    names = sorted(p.name for p in (out / "feedback").iterdir())
    assert len(names) == len(rows) and all(n.endswith(".md") and "\n" not in n for n in names), names


def test_fork_bomb_stopped_by_the_process_limit(hostile_run):
    """The bomb's processes stop at the process limit (the machine survives); either its cell is
    interrupted at the cell time limit and its later cells still earn their points, or, when the
    flooded kernel answers the interrupt late or not at all (both seen on the 2-core machine), its
    total time runs out or the submission is stopped at its wall-time limit, with no points. Either way the feedback says
    which limit stopped it, and the next student is graded."""
    fb = _feedback(hostile_run, "fork_bomb")
    total = float(hostile_run["rows"]["fork_bomb"]["total"])
    assert "cell 0: timed out after 10 s" in fb or "ran past its wall-time limit" in fb, fb
    assert total in (0, 3), fb  # never a partial or unearned score
    if "cell 1: skipped" not in fb and "ran past its wall-time limit" not in fb:
        assert total == 3, fb  # its honest cell ran: it earns its points
    assert float(hostile_run["rows"]["z_good"]["total"]) == 3


def test_limits_are_reported(hostile_run):
    mem = _feedback(hostile_run, "memory_bomb")
    assert "limit reached: the memory limit (1536 MB" in mem, mem
    huge = _feedback(hostile_run, "huge_output")
    assert "more than the 1 MB allowed" in huge and "file-size limit (8 MB)" in huge, huge
    assert "too large" in huge, huge


def test_cheats_get_clear_messages(hostile_run):
    eq = _feedback(hostile_run, "always_equal")
    assert "cannot read" in eq and "YesFloat" in eq and "YesArray" in eq, eq
    mp = _feedback(hostile_run, "monkeypatch")
    assert "no answer from add" in mp and "passed" not in mp, mp
    bt = _feedback(hostile_run, "background_thread")
    assert "| add | 0 / 2 |" in bt and "| scale | 1 / 1 | passed |" in bt, bt


def test_feedback_cannot_be_forged_into_the_table(hostile_run):
    rows = hostile_run["rows"]
    weird = next(k for k in rows if "HYPERLINK" in k)
    assert weird.startswith("'=")  # a spreadsheet shows it as text, not a formula
    for p in (hostile_run["out"] / "feedback").iterdir():
        table = [ln for ln in p.read_text().splitlines() if ln.startswith("| ")]
        assert all(ln.count("|") - ln.count("\\|") == 4 for ln in table), (p.name, table)


def test_the_suite_is_quick(hostile_run):
    assert hostile_run["seconds"] < 200, hostile_run["seconds"]  # 120 s measured on 2 cores; the fork bomb is capped at 80 s


def test_without_the_sandbox_the_hidden_checks_are_found(tmp_path):
    """The read_hidden submission is a real attack: with --unsafe-no-sandbox it finds the hidden
    notebook through the grader's command line and earns full marks; the sandbox is what stops it."""
    import subprocess
    import sys

    hidden = _hidden(tmp_path)
    subs = tmp_path / "subs"
    subs.mkdir()
    _write_nb(subs / "read_hidden.ipynb", _cells(HOSTILE / "read_hidden.py"))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "ptutils.classroom.grade", str(hidden), str(subs), "--out", str(out),
                        "--unsafe-no-sandbox", *FLAGS], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with (out / "grades.csv").open() as f:
        assert float(next(csv.DictReader(f))["total"]) == 3


def test_refuses_without_a_sandbox_unless_told(tmp_path, monkeypatch, capsys):
    hidden = _hidden(tmp_path)
    subs = tmp_path / "subs"
    subs.mkdir()
    _write_nb(subs / "ana.ipynb", GOOD)
    monkeypatch.setattr(sandbox, "usable", lambda: (False, "bwrap is not installed"))
    assert grade_main([str(hidden), str(subs), "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ptutils-grade: error: refusing to grade") and "--unsafe-no-sandbox" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "o1").exists()
    assert grade_main([str(hidden), str(subs), "--out", str(tmp_path / "o2"), "--unsafe-no-sandbox"]) == 0
    assert "WARNING" in capsys.readouterr().err
    with (tmp_path / "o2" / "grades.csv").open() as f:
        assert float(next(csv.DictReader(f))["total"]) == 3


def test_sandbox_sees_only_its_job(tmp_path):
    """What a cell can see and do in the sandbox: its own job, no network, read-only trees."""
    probe = ("import os, socket\nseen = sorted(os.listdir('/'))\n"
             "def look():\n    try:\n        socket.create_connection(('1.1.1.1', 53), timeout=2); net = 'open'\n"
             "    except OSError as e:\n        net = type(e).__name__\n"
             "    try:\n        open(os.path.join(os.path.dirname(np.__file__), 'x'), 'w'); ro = 'writable'\n"
             "    except OSError:\n        ro = 'read-only'\n"
             "    return seen, net, ro, os.getuid(), len(os.listdir('/proc'))")
    hidden = tmp_path / "h.ipynb"
    h = nbformat.v4.new_notebook()
    h.cells = [nbformat.v4.new_code_cell("# hidden test: look (1 point)\ngot = look()\n# checks\nprint(got)\n"
                                         "assert False")]
    nbformat.write(h, hidden)
    _write_nb(tmp_path / "s.ipynb", ["import numpy as np", probe])
    seen = {}
    real = grade.judge

    def spy(t, entry):
        seen["calls"] = json.loads(entry["payloads"][-1])["calls"]
        return real(t, entry)

    grade.judge = spy
    try:
        grade.grade_one(tmp_path / "s.ipynb", grade.load_hidden_tests(hidden), limits=sandbox.Limits(cell_timeout=20))
    finally:
        grade.judge = real
    listing, net, ro, uid, n_proc = plaindata.decode(seen["calls"][0]["value"])
    assert "in" in listing and "out" in listing and "home" not in listing, listing
    assert net != "open" and ro == "read-only"
    if os.geteuid() == 0:
        assert uid >= sandbox.BASE_UID


# ---------------------------------------------------------------- plain data, hostile inputs
def test_plain_data_round_trip():
    values = [None, True, 3, -2.5, math.inf, "ü", [1, [2]], (1, "a"), {"a": (1, 2)}, {1, 2},
              {"__tuple__": 1}, np.arange(6).reshape(2, 3), np.float64(0.25), np.bool_(True),
              torch.arange(4.0, requires_grad=True) * 2, torch.tensor(3), torch.zeros(2, dtype=torch.bfloat16)]
    for v in values:
        back = plaindata.decode(json.loads(json.dumps(plaindata.encode(v))))
        if isinstance(v, torch.Tensor):
            assert isinstance(back, torch.Tensor) and back.dtype == v.dtype and torch.equal(back, v.detach())
        elif isinstance(v, np.ndarray):
            assert type(back) is np.ndarray and back.dtype == v.dtype and (back == v).all()
        else:
            assert back == v and type(back) is type(v), (v, back)


class _Yes:
    def __eq__(self, other):
        return True


class _F(float):
    pass


@pytest.mark.parametrize("value", [
    _Yes(), _F(1.0), np.zeros(2).view(type("A", (np.ndarray,), {})), {1: 2}, lambda: 1,
    (x for x in range(2)), np.array(["a"]), np.zeros(2, dtype=object), torch.zeros(1, dtype=torch.complex64),
    [0] * 2_000_000, "x" * 200_000, 10 ** 500, Path("/etc/passwd"), bytes(3), [_Yes()], {"a": {1, _F(2.0)}},
], ids=lambda v: type(v).__name__)
def test_encode_refuses_what_is_not_plain(value):
    with pytest.raises(plaindata.PlainDataError):
        plaindata.encode(value)


def test_encode_refuses_deep_nesting():
    v = []
    for _ in range(100):
        v = [v]
    with pytest.raises(plaindata.PlainDataError):
        plaindata.encode(v)


@pytest.mark.parametrize("data", [
    {"__array__": "numpy", "dtype": "object", "shape": [1], "data": [1]},
    {"__array__": "numpy", "dtype": "float32", "shape": [2], "data": [1]},
    {"__array__": "numpy", "dtype": "float32", "shape": [1], "data": ["1"]},
    {"__array__": "numpy", "dtype": "float32", "shape": [10**7], "data": []},
    {"__array__": "numpy", "dtype": "int64", "shape": [1], "data": [2**70]},
    {"__array__": "pickle", "dtype": "float32", "shape": [], "data": 1},
    {"__array__": "numpy", "dtype": "float32", "shape": [1], "data": [1], "extra": 1},
    {"__array__": "numpy", "dtype": "float32", "shape": "1", "data": [1]},
    {"__tuple__": 5}, {"__set__": [[1]]}, {"__dict__": 3}, {"__tuple__": [], "x": 1},
    "x" * 200_000, [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
    list(range(1_000_001)),
], ids=lambda d: str(d)[:40])
def test_decode_refuses_malformed(data):
    with pytest.raises(plaindata.PlainDataError):
        plaindata.decode(data)


def test_judge_on_forged_or_broken_results():
    t = parse_hidden_test(HIDDEN[0])
    def entry(calls, test="add"):
        return {"payloads": [json.dumps({"test": test, "calls": calls})]}

    ok = entry([{"name": "add", "value": 5}, {"name": "add", "value": 0}])
    assert judge(t, ok) == (2.0, "passed")
    forged_later = {"payloads": ok["payloads"] + [json.dumps({"test": "scale", "calls": []}), "{"]}
    assert judge(t, forged_later) == (2.0, "passed")  # answers printed for another test do not count
    for entry in (None, "x", {}, {"payloads": ["{"]}, {"payloads": "[]"}, {"payloads": [json.dumps({"calls": 1})]},
                  entry([{"name": "add", "value": 5}, {"name": "add", "value": 0}], test="scale"),
                  entry(1), entry([{"name": "add"}]),
                  entry([{"name": "add", "value": {"__tuple__": [5, 0]}}]),
                  entry([{"name": "other", "value": 5}, {"name": "add", "value": 0}]),
                  entry([{"name": "add", "value": {"__array__": "x"}}] * 2)):
        pts, msg = judge(t, entry)
        assert pts == 0 and msg, (entry, msg)


# ---------------------------------------------------------------- the hidden-test format
@pytest.mark.parametrize("source,why", [
    ("assert add(1, 2) == 3", "must start"),
    ("# hidden test: add (1 point)\nassert add(1, 2) == 3", "no '# checks'"),
    ("# hidden test: add (1 point)\nx = 1\n# checks\nassert add(x, 2) == 3", "calls no student"),
    ("# hidden test: add (1 point)\ngot = add(1, 2)\n# checks\nassert got == add(1, 2)", "below '# checks'"),
    ("# hidden test: add (1 point)\ngot = add(limit, 2)\n# checks\nassert got", "which it does not define"),
    ("# hidden test: add (1 point)\ngot = add(1)\nf = add\n# checks\nassert got", "other than by calling"),
    ("# hidden test: add (1 point)\ngot = add(1,\n# checks\nassert got", "does not parse"),
])
def test_hidden_test_format_is_checked(source, why):
    with pytest.raises(ValueError, match=why):
        parse_hidden_test(source)


def test_hidden_test_parts():
    t = parse_hidden_test(HIDDEN[1])
    assert t.calls == ("scale",) and t.provided == ("np",)
    assert "SECRET" not in t.compute and "SECRET" in t.checks
    assert "SECRET" not in grade.kernel_code(t)


def test_reports_survive_hostile_names_and_messages(tmp_path):
    t = parse_hidden_test(HIDDEN[0])
    rs = [Result("-x", scores={"add": 0.0}, messages={"add": "a | b\nc"}, fatal="f|g"),
          Result("-x", scores={"add": 2.0}, messages={"add": "passed"}), Result("..", scores={"add": 0.0},
                                                                                 messages={"add": "m"})]
    write_reports(rs, [t], tmp_path)
    with (tmp_path / "grades.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert [r[0] for r in rows[1:]] == ["'-x", "'-x", ".."]
    files = sorted(p.name for p in (tmp_path / "feedback").iterdir())
    assert len(files) == 3 and all(not n.startswith(".") for n in files), files


def test_a_loop_that_ignores_interrupts_is_stopped_by_the_wall_time(tmp_path):
    """A cell that ignores the interrupt outlives its cell time limit; the wall-time limit kills
    the sandbox, the student's feedback says so, and the next student is graded."""
    hidden = _hidden(tmp_path)
    subs = tmp_path / "subs"
    subs.mkdir()
    _write_nb(subs / "a_stubborn.ipynb", [*GOOD, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                                 "while True:\n    pass"])
    _write_nb(subs / "b_good.ipynb", GOOD)
    out = tmp_path / "out"
    t0 = time.perf_counter()
    assert grade_main([str(hidden), str(subs), "--out", str(out), *FLAGS, "--cell-timeout", "3",
                       "--total-timeout", "4", "--wall-margin", "2"]) == 1  # a_stubborn: not graded fully
    assert time.perf_counter() - t0 < 40
    with (out / "grades.csv").open() as f:
        rows = {r["student"]: float(r["total"]) for r in csv.DictReader(f)}
    assert rows == {"a_stubborn": 0, "b_good": 3}, rows
    fb = _feedback({"out": out}, "a_stubborn")
    assert "wall-time limit" in fb and "could not be graded fully" in fb, fb


def test_cpu_limit_stops_a_busy_kernel(tmp_path):
    hidden = _hidden(tmp_path)
    subs = tmp_path / "subs"
    subs.mkdir()
    _write_nb(subs / "busy.ipynb", [*GOOD, "while True:\n    pass"])
    out = tmp_path / "out"
    assert grade_main([str(hidden), str(subs), "--out", str(out), *FLAGS, "--cpu-seconds", "4",
                       "--cell-timeout", "30"]) == 1  # its kernel died: not graded fully
    fb = _feedback({"out": out}, "busy")
    assert "died" in fb and "CPU limit of 4 s" in fb, fb


def test_make_student_refuses_a_hidden_test_that_compares_in_the_kernel():
    from ptutils.classroom import student

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("# hidden test: add (1 point)\nassert add(1, 2) == 3")
    cell.metadata["tags"] = ["hidden-test"]
    nb.cells = [cell]
    with pytest.raises(ValueError, match="no '# checks' line"):
        student.hidden_tests(nb)
    cell.source = "# hidden test: add (1 point)\ngot = add(1, 2)\n# checks\nassert got == 3"
    assert len(student.hidden_tests(nb).cells) == 1

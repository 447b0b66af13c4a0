"""Student versions carry no solutions, and the grader survives broken submissions."""

import ast
import csv
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from ptutils.classroom import student as classroom
from ptutils.classroom.grade import grade_one, load_hidden_tests, main as grade_main

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_stub_keeps_indentation_and_code_around():
    code = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\nprint(f)"
    out = classroom.stub_solutions(code)
    assert out == "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError\n\nprint(f)"
    ast.parse(out)
    with pytest.raises(ValueError, match="without ### BEGIN"):
        classroom.stub_solutions("### END SOLUTION")
    with pytest.raises(ValueError, match="without ### END"):
        classroom.stub_solutions("### BEGIN SOLUTION\nx = 1")


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    classroom.build(ROOT / "notebooks", out)
    return out


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_student_version_has_no_solutions(path, student_dir):
    ref = nbformat.read(path, as_version=4)
    stu = nbformat.read(student_dir / "notebooks" / path.name, as_version=4)
    assert classroom.leaked(stu, ref) == []
    text = "\n".join(c.source for c in stu.cells)
    assert classroom.solution_fragments(ref), "the chapter has no solutions to remove?"
    assert "raise NotImplementedError" in text
    for marker in ("### BEGIN SOLUTION", "{solution-start}", "{solution-end}", "# hidden test:"):
        assert marker not in text
    n_ex = sum(c.source.count("{exercise-start}") for c in ref.cells if c.cell_type == "markdown")
    assert text.count("**Exercise.**") == n_ex, "exercises must stay"  # plain Markdown for Jupyter
    tm = TransformerManager()
    for c in stu.cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None
            ast.parse(tm.transform_cell(c.source))  # stubs are valid Python at their indentation


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_hidden_tests_are_extracted(path, student_dir):
    tests = load_hidden_tests(student_dir / "hidden" / path.name)
    assert tests and all(t.points > 0 for t in tests)


def test_leak_detection_can_fail():
    ref = nbformat.read(CHAPTERS[1], as_version=4)
    stu = classroom.student_version(ref)
    stu.cells.append(nbformat.v4.new_markdown_cell(classroom.solution_fragments(ref)[0]))
    assert classroom.leaked(stu, ref)


# ---------------------------------------------------------------- the grader
HIDDEN = [
    "# hidden test: add (2 points)\ngot = add(2, 3), add(-1, 1)\n# checks\nassert got == (5, 0)",
    "# hidden test: mul (1 point)\ngot = mul(4, 5)\n# checks\nassert got == 20",
]
GOOD = ["def add(a, b):\n    return a + b", "def mul(a, b):\n    return a * b"]


def _nb(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    d = tmp_path_factory.mktemp("grading")
    hidden = d / "hidden.ipynb"
    h = nbformat.v4.new_notebook()
    h.cells = [nbformat.v4.new_code_cell(s) for s in HIDDEN]
    nbformat.write(h, hidden)
    subs = d / "subs"
    subs.mkdir()
    _nb(subs / "good.ipynb", GOOD)
    _nb(subs / "stub.ipynb", ["def add(a, b):\n    raise NotImplementedError", "def mul(a, b):\n    raise NotImplementedError"])
    _nb(subs / "syntax.ipynb", ["def add(a, b)\n    return a + b", GOOD[1]])
    _nb(subs / "exception.ipynb", ["1 / 0", *GOOD])
    _nb(subs / "loop.ipynb", [GOOD[0], "while True:\n    pass", GOOD[1]])
    _nb(subs / "deleted.ipynb", [GOOD[1]])
    _nb(subs / "reordered.ipynb", ["print(add(1, 2))", GOOD[1], GOOD[0]])
    _nb(subs / "renamed.ipynb", ["def plus(a, b):\n    return a + b", GOOD[1]])
    _nb(subs / "cheat.ipynb", [*GOOD, "import sys\nsys.exit(0)"])
    _nb(subs / "killer.ipynb", [*GOOD, "import os\nos._exit(1)"])
    (subs / "corrupt.ipynb").write_text("{ this is not json")
    out = d / "out"
    # exit code 1: corrupt (not JSON) and killer (its kernel dies) could not be graded fully
    assert grade_main([str(hidden), str(subs), "--out", str(out), "--cell-timeout", "5"]) == 1
    with (out / "grades.csv").open() as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return rows, out


@pytest.mark.parametrize("student,total", [
    ("good", 3), ("stub", 0), ("syntax", 1), ("exception", 3), ("loop", 3), ("deleted", 1),
    ("reordered", 3), ("renamed", 1), ("corrupt", 0), ("killer", 0),
])
def test_grades(graded, student, total):
    rows, _ = graded
    assert float(rows[student]["total"]) == total, rows[student]
    assert float(rows[student]["max"]) == 3


def test_kernel_exit_does_not_stop_grading(graded):
    rows, _ = graded
    assert "cheat" in rows  # sys.exit in a cell: graded, not crashed
    assert len(rows) == 11
    assert "died" in (graded[1] / "feedback" / "killer.md").read_text()


def test_feedback_explains(graded):
    _, out = graded
    loop = (out / "feedback" / "loop.md").read_text()
    assert "timed out" in loop and "3 / 3" in loop
    stub = (out / "feedback" / "stub.md").read_text()
    assert "NotImplementedError" in stub and "0 / 3" in stub
    assert "could not read" in (out / "feedback" / "corrupt.md").read_text()


def test_reference_chapter_gets_full_marks_and_student_version_zero(student_dir, tmp_path):
    """End to end on a real chapter: the reference solution earns every point, the stubs none."""
    name = "02_core_concepts.ipynb"
    tests = load_hidden_tests(student_dir / "hidden" / name)
    full = sum(t.points for t in tests)
    ref = grade_one(ROOT / "notebooks" / name, tests, cell_timeout=300)
    assert ref.total == full, ref.messages
    stub = grade_one(student_dir / "notebooks" / name, tests, cell_timeout=300)
    assert stub.total == 0 and all("NotImplementedError" in m for m in stub.messages.values())


def test_every_subpackage_is_packaged():
    """A wheel (pip or Colab install) holds only the packages pyproject.toml lists."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ptutils").rglob("__init__.py")}
    assert found <= listed, f"not packaged: {sorted(found - listed)}"


def test_commands_run_as_modules():
    """``python -m ptutils.classroom`` and ``python -m ptutils.classroom.grade`` start (usage / --help);
    they are the commands ``ptutils-student`` and ``ptutils-grade`` (tests/test_classroom_cli.py)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-W", "error", "-m", "ptutils.classroom"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage: ptutils-student" in r.stderr and "Traceback" not in r.stderr, r
    r = subprocess.run([sys.executable, "-W", "error", "-m", "ptutils.classroom", "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "python -m ptutils.classroom runs the same command" in r.stdout, r
    r = subprocess.run([sys.executable, "-W", "error", "-m", "ptutils.classroom.grade", "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "python -m ptutils.classroom.grade runs the same command" in r.stdout, r


def test_grading_is_never_strict(monkeypatch):
    """A student's own ``check`` cell prints ``[fail]`` under the grader, as in class, even when the
    teacher's shell (``make test``) sets ``PTUTILS_STRICT=1``; only the hidden tests score."""
    from ptutils.classroom.grade import grading_env

    monkeypatch.setenv("PTUTILS_STRICT", "1")
    assert grading_env()["PTUTILS_STRICT"] == "0"

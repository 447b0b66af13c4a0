"""The classroom's two commands, ``ptutils-student`` and ``ptutils-grade`` (pyproject.toml's scripts):
their ``--help``, their exit codes (0 done, 1 not everything passed or was graded fully, 2 bad usage or
cannot run) and their one-line error messages, never a traceback.

The installed commands run as subprocesses (each starts PyTorch, a few seconds); the other error
cases call the same ``main`` in this process, which would raise here where the command would
print a traceback.
"""

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ptutils.classroom import grade, sandbox, student

BIN = Path(sys.executable).parent
HIDDEN = [
    "# hidden test: add (2 points)\ngot = add(2, 3), add(-1, 1)\n# checks\nassert got == (5, 0)",
    "# hidden test: mul (1 point)\ngot = mul(4, 5)\n# checks\nassert got == 20",
]
GOOD = ["def add(a, b):\n    return a + b", "def mul(a, b):\n    return a * b"]
CHAPTER = ["def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION"]


def _command(name: str) -> Path:
    path = BIN / name
    assert path.is_file(), f"{path} is missing: install the package (pip install --no-deps -e .; make setup does)"
    return path


def _run(name: str, *args, cwd=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([str(_command(name)), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def _write_nb(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def _one_error(err: str, prog: str, *needles: str) -> None:
    """``err`` is one line, ``<prog>: error: ...``, naming each needle, and no traceback."""
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)


def _argparse_error(err: str, prog: str, needle: str) -> None:
    """argparse's own error: the usage, then one line ``<prog>: error: ...``."""
    assert "Traceback" not in err, err
    assert err.startswith(f"usage: {prog}"), err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{prog}: error: ") and needle in last, err


# ---------------------------------------------------------------- the installed commands
@pytest.mark.parametrize("name,options", [
    ("ptutils-student", ["notebooks", "out", "--site", "--values", "Exit codes", "python -m ptutils.classroom"]),
    ("ptutils-grade", ["hidden", "submissions", "--out", "--jobs", "--cell-timeout", "--total-timeout",
                       "--memory-mb", "--unsafe-no-sandbox", "Exit codes", "python -m ptutils.classroom.grade"]),
])
def test_help(name, options):
    r = _run(name, "--help")
    assert r.returncode == 0 and not r.stderr, r
    assert r.stdout.startswith(f"usage: {name} "), r.stdout
    for option in options:
        assert option in r.stdout, option
    assert "2: bad usage" in r.stdout


def test_student_command_error_is_one_line(tmp_path):
    r = _run("ptutils-student", tmp_path / "missing", tmp_path / "out")
    assert r.returncode == 2 and not r.stdout, r
    _one_error(r.stderr, "ptutils-student", "does not exist")


def test_grade_command_error_is_one_line(tmp_path):
    (tmp_path / "hidden.ipynb").write_text("{ not json")
    (tmp_path / "subs").mkdir()
    r = _run("ptutils-grade", tmp_path / "hidden.ipynb", tmp_path / "subs")
    assert r.returncode == 2 and not r.stdout, r
    _one_error(r.stderr, "ptutils-grade", "hidden.ipynb", "not a notebook of hidden tests")


def test_grade_command_one_good_one_broken_submission(tmp_path):
    """One submission graded, one that is not JSON: exit 1, and grades.csv and feedback are written."""
    hidden = tmp_path / "hidden.ipynb"
    h = nbformat.v4.new_notebook()
    h.cells = [nbformat.v4.new_code_cell(s) for s in HIDDEN]
    nbformat.write(h, hidden)
    subs = tmp_path / "subs"
    subs.mkdir()
    _write_nb(subs / "good.ipynb", GOOD)
    (subs / "broken.ipynb").write_text("{ this is not json")
    out = tmp_path / "grades"
    r = _run("ptutils-grade", hidden, subs, "--out", out, "--cell-timeout", "20", timeout=300)
    assert r.returncode == 1, r
    assert "Traceback" not in r.stderr, r.stderr
    assert "not graded fully" in r.stdout and "1 not graded fully" in r.stdout, r.stdout
    with (out / "grades.csv").open() as f:
        rows = {row["student"]: float(row["total"]) for row in csv.DictReader(f)}
    assert rows == {"broken": 0, "good": 3}, rows
    assert "could not be graded fully" in (out / "feedback" / "broken.md").read_text()
    assert "3 / 3" in (out / "feedback" / "good.md").read_text()


# ---------------------------------------------------------------- ptutils-student, bad usage (2) and failed checks (1)
@pytest.fixture
def chapters(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    _write_nb(src / "01_x.ipynb", CHAPTER)
    return src


def _student(capsys, *args):
    code = student.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_student_bad_option(chapters, tmp_path, capsys):
    for args, needle in (([chapters, tmp_path / "out", "--site"], "--site: expected one argument"),
                         ([chapters], "required: out"),
                         ([chapters, tmp_path / "out", "--colour"], "unrecognized arguments: --colour")):
        code, _, err = _student(capsys, *args)
        assert code == 2, args
        _argparse_error(err, "ptutils-student", needle)


def test_student_input_folder_missing(tmp_path, capsys):
    code, _, err = _student(capsys, tmp_path / "nowhere", tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-student", "input folder", "nowhere", "does not exist")


def test_student_input_is_a_file(chapters, tmp_path, capsys):
    code, _, err = _student(capsys, chapters / "01_x.ipynb", tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-student", "is not a folder")


def test_student_input_without_notebooks(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = _student(capsys, tmp_path / "empty", tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-student", "no .ipynb files in", "empty")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["same", "inside", "site-inside"])
def test_student_output_inside_the_input(chapters, tmp_path, capsys, where):
    out = {"same": chapters, "inside": chapters / "student"}.get(where, tmp_path / "out")
    extra = ["--site", chapters / "site"] if where == "site-inside" else []
    code, _, err = _student(capsys, chapters, out, *extra)
    assert code == 2
    _one_error(err, "ptutils-student", "is the input folder", "or inside it")
    assert sorted(p.name for p in chapters.iterdir()) == ["01_x.ipynb"]


@pytest.mark.parametrize("text,needle", [
    ("{ not json", "NotJSONError"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}', "ValidationError"),
    ("[]", "is not a valid notebook"),
])
def test_student_invalid_notebook(chapters, tmp_path, capsys, text, needle):
    (chapters / "02_bad.ipynb").write_text(text)
    code, _, err = _student(capsys, chapters, tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-student", "02_bad.ipynb", "is not a valid notebook", needle)


def test_student_chapter_that_fails_its_checks(chapters, tmp_path, capsys):
    _write_nb(chapters / "02_open.ipynb", ["def f():\n    ### BEGIN SOLUTION\n    return 1"])
    code, _, err = _student(capsys, chapters, tmp_path / "out")
    assert code == 1
    _one_error(err, "ptutils-student", "BEGIN SOLUTION without ### END SOLUTION")


def test_student_done(chapters, tmp_path, capsys):
    code, out, err = _student(capsys, chapters, tmp_path / "out")
    assert code == 0 and not err and "wrote 1 student notebooks" in out
    assert (tmp_path / "out" / "notebooks" / "01_x.ipynb").is_file()


# ---------------------------------------------------------------- ptutils-grade, bad usage or cannot run (2)
@pytest.fixture
def grading(tmp_path):
    hidden = tmp_path / "hidden.ipynb"
    h = nbformat.v4.new_notebook()
    h.cells = [nbformat.v4.new_code_cell(s) for s in HIDDEN]
    nbformat.write(h, hidden)
    subs = tmp_path / "subs"
    subs.mkdir()
    _write_nb(subs / "ana.ipynb", GOOD)
    return hidden, subs


def _grade(capsys, *args):
    code = grade.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_grade_bad_option(grading, capsys):
    hidden, subs = grading
    for args, needle in (([hidden], "required: submissions"),
                         ([hidden, subs, "--jobs", "two"], "--jobs: invalid int value"),
                         ([hidden, subs, "--colour"], "unrecognized arguments: --colour")):
        code, _, err = _grade(capsys, *args)
        assert code == 2, args
        _argparse_error(err, "ptutils-grade", needle)


@pytest.mark.parametrize("flag,value", [("--jobs", "0"), ("--cell-timeout", "0"), ("--total-timeout", "-5"),
                                        ("--memory-mb", "0"), ("--output-mb", "0"), ("--wall-margin", "-1")])
def test_grade_limits_must_be_positive(grading, tmp_path, capsys, flag, value):
    hidden, subs = grading
    code, _, err = _grade(capsys, hidden, subs, "--out", tmp_path / "out", flag, value)
    assert code == 2
    _one_error(err, "ptutils-grade", flag, value)
    assert not (tmp_path / "out").exists()


def test_grade_hidden_tests_missing(grading, tmp_path, capsys):
    _, subs = grading
    code, _, err = _grade(capsys, tmp_path / "nowhere.ipynb", subs, "--out", tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-grade", "hidden-test notebook", "nowhere.ipynb", "does not exist")


@pytest.mark.parametrize("text,needle", [
    ("{ not json", "NotJSONError"),
    ("[]", "not a notebook of hidden tests"),
])
def test_grade_hidden_tests_not_a_notebook(grading, tmp_path, capsys, text, needle):
    hidden, subs = grading
    hidden.write_text(text)
    code, _, err = _grade(capsys, hidden, subs, "--out", tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-grade", "hidden.ipynb", needle)


@pytest.mark.parametrize("cells,needle", [
    ([], "no hidden tests found"),
    (["x = 1"], "must start with '# hidden test"),  # a chapter, say, instead of its hidden tests
])
def test_grade_no_hidden_tests(grading, tmp_path, capsys, cells, needle):
    hidden, subs = grading
    _write_nb(hidden, cells)
    code, _, err = _grade(capsys, hidden, subs, "--out", tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-grade", "hidden.ipynb", needle)


def test_grade_submissions_missing(grading, tmp_path, capsys):
    hidden, _ = grading
    code, _, err = _grade(capsys, hidden, tmp_path / "nobody", "--out", tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-grade", "submissions folder", "nobody", "does not exist")


def test_grade_submissions_not_a_folder(grading, tmp_path, capsys):
    hidden, subs = grading
    code, _, err = _grade(capsys, hidden, subs / "ana.ipynb", "--out", tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-grade", "ana.ipynb", "is not a folder")


def test_grade_submissions_without_notebooks(grading, tmp_path, capsys):
    hidden, _ = grading
    (tmp_path / "empty").mkdir()
    code, _, err = _grade(capsys, hidden, tmp_path / "empty", "--out", tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-grade", "no .ipynb files in", "empty")


@pytest.mark.parametrize("inside", [False, True])
def test_grade_out_inside_the_submissions(grading, capsys, inside):
    hidden, subs = grading
    out = subs / "grades" if inside else subs
    code, _, err = _grade(capsys, hidden, subs, "--out", out)
    assert code == 2
    _one_error(err, "ptutils-grade", "is the submissions folder", "or inside it")
    assert sorted(p.name for p in subs.iterdir()) == ["ana.ipynb"]


def test_grade_out_is_a_file(grading, tmp_path, capsys):
    hidden, subs = grading
    (tmp_path / "out").write_text("the teacher's file")
    code, _, err = _grade(capsys, hidden, subs, "--out", tmp_path / "out")
    assert code == 2
    _one_error(err, "ptutils-grade", "exists and is not a folder")


def test_grade_without_a_sandbox(grading, tmp_path, capsys, monkeypatch):
    """No usable bubblewrap: exit 2 (it was 3), nothing graded, unless --unsafe-no-sandbox
    (graded in tests/test_classroom_hostile.py)."""
    hidden, subs = grading
    monkeypatch.setattr(sandbox, "usable", lambda: (False, "bwrap is not installed"))
    code, out, err = _grade(capsys, hidden, subs, "--out", tmp_path / "out")
    assert code == 2 and not out
    _one_error(err, "ptutils-grade", "refusing to grade without a sandbox", "bwrap is not installed",
               "--unsafe-no-sandbox")
    assert not (tmp_path / "out").exists()

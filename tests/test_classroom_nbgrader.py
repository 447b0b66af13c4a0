"""The chapters as nbgrader source notebooks (``ptutils-student --nbgrader``), graded by the pinned
nbgrader offline and by ``ptutils-grade``: the same points for the reference solution and for the
unmodified student release; nbgrader's own protection of locked and test cells; and the trust-model
difference the book describes (nbgrader's tests run in the student's kernel).

Everything lives in ``tmp_path``: the course folder with its ``nbgrader_config.py`` and sqlite
gradebook, and the Jupyter and IPython folders (``JUPYTER_CONFIG_DIR`` and the others), so
nothing is read from or written to the home folder. nbgrader runs as ``python -m nbgrader`` with
this environment's ``bin`` first on ``PATH`` (nbgrader calls the ``alembic`` command).

nbgrader comes with the ``classroom`` extra, not ``test``: without it these tests are skipped
(its modules are imported with ``importlib``, after the skip).
"""

import copy
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from ptutils.classroom import nbgrader_source, student
from ptutils.classroom.grade import grade_one, load_hidden_tests

pytest.importorskip("nbgrader", reason="nbgrader comes with the classroom extra: pip install -e '.[classroom]'")

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "02_core_concepts.ipynb"   # the chapter tests/test_classroom.py grades end to end
TIMES: dict = {}


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    home = tmp / "jupyter-home"
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl")):
        env[var] = str(home / sub)
    env.update(PTUTILS_FAST="1", PTUTILS_STRICT="0", PTUTILS_PROGRESS="line", OMP_NUM_THREADS="1",
               PYTHONHASHSEED="0")
    return env


def _nbgrader(course: Path, env: dict, *args) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
    return r


_SCORES = """
import json, sys
from nbgrader.api import Gradebook
out = {}
with Gradebook(sys.argv[1]) as gb:
    for s in gb.find_assignment(sys.argv[2]).submissions:
        out[s.student.id] = {"score": s.score, "max": s.max_score,
                             "grades": {g.name: [g.score, g.needs_manual_grade] for nb in s.notebooks for g in nb.grades}}
print(json.dumps(out))
"""


def _scores(course: Path, env: dict, assignment: str) -> dict:
    """Each student's total, max and per-cell grades, read from the gradebook (in a subprocess: nbgrader
    calls ``alembic`` when it opens one)."""
    r = subprocess.run([sys.executable, "-c", _SCORES, f"sqlite:///{course / 'gradebook.db'}", assignment],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def _submit(course: Path, assignment: str, who: str, nb) -> Path:
    folder = course / "submitted" / who / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    nbformat.write(nb, path)
    return path


def _ptutils_grade(paths: dict, hidden: Path) -> dict:
    """``ptutils-grade``'s result (sandboxed, as by default) for each ``{student: notebook}``."""
    tests = load_hidden_tests(hidden)
    return {who: grade_one(path, tests, cell_timeout=300) for who, path in paths.items()}


def _grade_both(course: Path, env: dict, name: str, paths: dict, hidden: Path, what: str) -> tuple[dict, dict]:
    """``nbgrader autograde`` of every submission, and ptutils-grade of the same notebooks meanwhile
    (two processes, one core each): ``(nbgrader's scores, ptutils-grade's results)``."""
    from concurrent.futures import ThreadPoolExecutor

    def autograde():
        t0 = time.perf_counter()
        _nbgrader(course, env, "autograde", name)
        TIMES[f"nbgrader autograde, {len(paths)} submissions of {what}"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as ex:
        done = ex.submit(autograde)
        t1 = time.perf_counter()
        book = _ptutils_grade(paths, hidden)
        TIMES[f"ptutils-grade, the same {len(paths)} submissions (meanwhile)"] = time.perf_counter() - t1
        done.result()
    TIMES[f"both graders on {what}, wall time"] = time.perf_counter() - t0
    return _scores(course, env, name), book


def _test_cells(nb) -> list:
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]


# ---------------------------------------------------------------- the generated source notebooks
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``ptutils-student notebooks OUT --nbgrader COURSE`` for every chapter."""
    tmp = tmp_path_factory.mktemp("built")
    t0 = time.perf_counter()
    assert student.main([str(ROOT / "notebooks"), str(tmp / "student"), "--nbgrader", str(tmp / "course")]) == 0
    TIMES["ptutils-student --nbgrader, 16 chapters"] = time.perf_counter() - t0
    return tmp


def _chapters():
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", _chapters(), ids=lambda p: p.stem)
def test_source_points_are_the_hidden_tests_points(built, path):
    """One nbgrader test cell per hidden test, ``grade_id`` its name and the points its header gives;
    answers in prose are worth 0, so the notebook's total is the hidden tests' total."""
    MetadataValidator = importlib.import_module("nbgrader.nbgraderformat").MetadataValidator

    source = nbformat.read(built / "course" / "source" / path.stem / path.name, as_version=4)
    MetadataValidator().validate_nb(source)  # nbgrader's own check: valid metadata, unique grade ids
    tests = load_hidden_tests(built / "student" / "hidden" / path.name)
    tests_points = {nbgrader_source.test_grade_id(t.name): t.points for t in tests}
    pts = nbgrader_source.points(source)
    assert {k: v for k, v in pts.items() if not k.startswith("answer-")} == tests_points
    assert sum(pts.values()) == sum(t.points for t in tests) > 0
    for c in source.cells:
        meta = c.metadata["nbgrader"]
        assert meta["schema_version"] == 3
        if c in _test_cells(source):
            assert meta["locked"] and not meta["solution"] and "### BEGIN HIDDEN TESTS" in c.source
        elif meta["grade"]:  # an answer in prose: nbgrader's manually graded answer
            assert c.cell_type == "markdown" and meta["solution"] and meta["points"] == 0
            assert c.source.startswith("### BEGIN SOLUTION\n") and c.source.endswith("\n### END SOLUTION")
        elif meta["solution"]:
            assert c.cell_type == "code" and not meta["locked"]
        else:
            assert meta["locked"]
    assert (built / "course" / "nbgrader_config.py").is_file()


def _release(source):
    """What ``nbgrader generate_assignment`` hands out, made here with nbgrader's own preprocessors."""
    pps = importlib.import_module("nbgrader.preprocessors")
    nb, res = copy.deepcopy(source), {}
    for pp in (pps.LockCells(), pps.ClearSolutions(), pps.ClearOutput(), pps.ClearHiddenTests()):
        nb, res = pp.preprocess(nb, res)
    return nb


@pytest.mark.parametrize("path", _chapters(), ids=lambda p: p.stem)
def test_release_carries_no_solution(built, path):
    """nbgrader's ClearSolutions and ClearHiddenTests leave none of the chapter's solutions nor any
    hidden test's code in the release, and every test cell keeps only its header."""
    ref = nbformat.read(path, as_version=4)
    source = nbformat.read(built / "course" / "source" / path.stem / path.name, as_version=4)
    release = _release(source)
    assert student.leaked(release, ref) == []
    text = "\n".join(c.source for c in release.cells)
    for marker in ("BEGIN HIDDEN TESTS", "run_hidden_test", "# checks"):
        assert marker not in text
    for c in _test_cells(release):
        assert c.source.splitlines()[0].startswith("# hidden test: ")
        assert len(c.source.splitlines()) == 2


def test_nbgrader_folder_inside_the_chapters_is_refused(tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(nbformat.read(ROOT / "notebooks" / CHAPTER, as_version=4), src / CHAPTER)
    assert student.main([str(src), str(tmp_path / "out"), "--nbgrader", str(src / "course")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ptutils-student: error: the --nbgrader folder") and err.count("\n") == 1, err


def test_test_source_keeps_any_test_text():
    """A hidden test whose text a raw triple-quoted string cannot hold still reaches the kernel intact."""
    import ast

    for src in ("# hidden test: a (1 point)\ngot = f(1)\n# checks\nassert got == '''x'''",
                "# hidden test: a (1 point)\ngot = f('\\\\')\n# checks\nassert got\n"):
        code = nbgrader_source.test_source(src)
        call = next(n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)
                    and getattr(n.func, "attr", "") == "run_hidden_test")
        assert ast.literal_eval(call.args[1]) == src


# ---------------------------------------------------------------- nbgrader and ptutils-grade on a real chapter
@pytest.fixture(scope="module")
def chapter_graded(tmp_path_factory):
    """One chapter through nbgrader (generate_assignment, autograde) and ptutils-grade: the reference
    (the source notebook itself, solutions in) and the unmodified release, as two students."""
    tmp = tmp_path_factory.mktemp("chapter")
    course, env, name = tmp / "course", _env(tmp), Path(CHAPTER).stem
    nb = nbformat.read(ROOT / "notebooks" / CHAPTER, as_version=4)
    source_path = nbgrader_source.write_source(nb, course, CHAPTER, student.chapter_index(ROOT / "notebooks"))
    nbgrader_source.write_config(course)
    t0 = time.perf_counter()
    _nbgrader(course, env, "generate_assignment", name)
    TIMES["nbgrader generate_assignment"] = time.perf_counter() - t0
    release = nbformat.read(course / "release" / name / CHAPTER, as_version=4)
    subs = {"reference": _submit(course, name, "reference", nbformat.read(source_path, as_version=4)),
            "unmodified": _submit(course, name, "unmodified", release)}
    hidden = tmp / "hidden.ipynb"
    nbformat.write(student.hidden_tests(nb), hidden)
    nbg, book = _grade_both(course, env, name, subs, hidden, name)
    return nbg, book, load_hidden_tests(hidden), course


def test_nbgrader_and_ptutils_grade_agree_on_a_chapter(chapter_graded):
    nbg, book, tests, _ = chapter_graded
    full = sum(t.points for t in tests)
    print("\nscores (nbgrader, ptutils-grade):",
          {who: (nbg[who]["score"], book[who].total) for who in ("reference", "unmodified")}, f"of {full:g}")
    assert book["reference"].total == full, book["reference"].messages
    for who in ("reference", "unmodified"):
        assert nbg[who]["max"] == full
        assert nbg[who]["score"] == book[who].total, (who, nbg[who], book[who].messages)
        for t in tests:  # test by test, not only in total
            assert nbg[who]["grades"][nbgrader_source.test_grade_id(t.name)][0] == book[who].scores[t.name]
    assert book["unmodified"].total == 0
    assert all("NotImplementedError" in m for m in book["unmodified"].messages.values())


def test_autograde_restores_the_hidden_tests(chapter_graded):
    """The release's test cells hold only their headers; nbgrader puts the test code back from the
    gradebook before it runs the notebook, and the failing tests show the student's error."""
    *_, course = chapter_graded
    name = Path(CHAPTER).stem
    graded = nbformat.read(course / "autograded" / "unmodified" / name / CHAPTER, as_version=4)
    source = nbformat.read(course / "source" / name / CHAPTER, as_version=4)
    want = {c.metadata.nbgrader["grade_id"]: c.source for c in _test_cells(source)}
    got = {c.metadata.nbgrader["grade_id"]: c for c in _test_cells(graded)}
    assert {k: c.source for k, c in got.items()} == want
    for c in got.values():
        assert [o.get("ename") for o in c.outputs if o.output_type == "error"] == ["NotImplementedError"]


# ---------------------------------------------------------------- hostile students, on a tiny chapter
TINY = [
    ("markdown", "# A tiny chapter\n\nTwo exercises."),
    ("code", "import ptutils"),
    ("markdown", "```{exercise-start}\n:label: ex-add\n```\nWrite `add(a, b)`.\n```{exercise-end}\n```\n\n"
                 "```{solution-start} ex-add\n:class: dropdown\n```"),
    ("code", "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION"),
    ("test", "# hidden test: add (2 points)\ngot_ht = add(2, 3), add(-1, 1)\n# checks\nassert got_ht == (5, 0)"),
    ("markdown", "Addition is commutative.\n\n```{solution-end}\n```\n\n```{exercise-start}\n:label: ex-mul\n```\n"
                 "Write `mul(a, b)`.\n```{exercise-end}\n```\n\n```{solution-start} ex-mul\n```"),
    ("code", "def mul(a, b):\n    ### BEGIN SOLUTION\n    return a * b\n    ### END SOLUTION"),
    ("test", "# hidden test: mul (1 point)\ngot_ht = mul(4, 5)\n# checks\nassert got_ht == 20"),
    ("markdown", "```{solution-end}\n```\n\nThe end."),
]
CHEAT = ("import ptutils.classroom.nbgrader_source as _m\n"
         "_m.run_hidden_test = lambda *args, **kwargs: None  # every hidden test now 'passes' in this kernel")


def _tiny_chapter(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, src in TINY:
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            c = nbformat.v4.new_code_cell(src)
            if kind == "test":
                c.metadata["tags"] = ["hidden-test", "remove-cell"]
            nb.cells.append(c)
    folder.mkdir(parents=True)
    path = folder / "01_tiny.ipynb"
    nbformat.write(nb, path)
    return path


def _by_id(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    course, env, name = tmp / "course", _env(tmp), "01_tiny"
    _tiny_chapter(tmp / "notebooks")
    assert student.main([str(tmp / "notebooks"), str(tmp / "student"), "--nbgrader", str(course)]) == 0
    _nbgrader(course, env, "generate_assignment", name)
    source = nbformat.read(course / "source" / name / f"{name}.ipynb", as_version=4)
    release = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)

    subs = {"reference": source, "unmodified": release}
    # answers nothing, and rewrites the locked test cell of `add`: its own code, unlocked, 100 points
    edited = copy.deepcopy(release)
    cell = edited.cells[_by_id(edited, "add")]
    cell.source = "add = lambda a, b: a + b  # 'passes' the test"
    cell.metadata.nbgrader.update(locked=False, points=100.0)
    cell.metadata.pop("editable", None)
    subs["edits_test"] = edited
    # the correct solutions, and the test cell of `add` deleted
    deleted = copy.deepcopy(source)
    deleted.cells.pop(_by_id(deleted, "add"))
    subs["deletes_test"] = deleted
    # answers nothing, and deletes the test it would fail
    stub_deleted = copy.deepcopy(release)
    stub_deleted.cells.pop(_by_id(stub_deleted, "add"))
    # answers nothing, and switches off the hidden tests in its own kernel
    cheat = copy.deepcopy(release)
    next(c for c in cheat.cells if c.source.startswith("def add")).source += "\n\n" + CHEAT
    subs["patches_kernel"] = cheat
    paths = {who: _submit(course, name, who, nb) for who, nb in subs.items()}
    nbg, book = _grade_both(course, env, name, paths, tmp / "student" / "hidden" / f"{name}.ipynb", "a tiny chapter")
    # nbgrader's default, without the OverwriteCells.add_missing_cells the generated config turns on
    _submit(course, name, "deletes_test_default", deleted)
    _submit(course, name, "stub_deletes_test_default", stub_deleted)
    t0 = time.perf_counter()
    _nbgrader(course, env, "autograde", name, "--student=*_default", "--OverwriteCells.add_missing_cells=False")
    TIMES["nbgrader autograde, 2 more submissions of the tiny chapter"] = time.perf_counter() - t0
    nbg_default = {who: v for who, v in _scores(course, env, name).items() if who.endswith("_default")}
    return nbg, nbg_default, book, course


def test_hostile_submissions(hostile):
    is_locked = importlib.import_module("nbgrader.utils").is_locked
    nbg, nbg_default, book, course = hostile
    got = {who: (nbg[who]["score"], book[who].total) for who in nbg}
    print("\nscores (nbgrader, ptutils-grade) of 3:", got, "; nbgrader's default (no add_missing_cells):",
          {who: (v["score"], v["grades"]["add"]) for who, v in nbg_default.items()})
    assert all(nbg[who]["max"] == 3 for who in nbg)
    assert got["reference"] == (3, 3) and got["unmodified"] == (0, 0)
    # an edited locked test cell: nbgrader restores its code and points from the gradebook (checksum) and
    # runs the real test
    assert got["edits_test"] == (0, 0)
    graded = nbformat.read(course / "autograded" / "edits_test" / "01_tiny" / "01_tiny.ipynb", as_version=4)
    cell = graded.cells[_by_id(graded, "add")]
    assert "run_hidden_test" in cell.source and cell.metadata.nbgrader["points"] == 2 and is_locked(cell)
    # a deleted test cell: with the generated config (OverwriteCells.add_missing_cells) nbgrader adds it
    # back and runs it
    assert got["deletes_test"] == (3, 3)
    graded = nbformat.read(course / "autograded" / "deletes_test" / "01_tiny" / "01_tiny.ipynb", as_version=4)
    assert "was missing from the submission" in graded.cells[_by_id(graded, "add")].source
    # with nbgrader's default the deleted cell is not run: the test scores 0 and is flagged for the teacher
    # to grade by hand, whether the student's answer was right or not
    assert {who: (v["score"], v["grades"]["add"]) for who, v in nbg_default.items()} == {
        "deletes_test_default": (1, [0, True]), "stub_deletes_test_default": (0, [0, True])}
    # the trust model: nbgrader's tests run in the student's kernel, which the student's code can change;
    # the book's grader judges outside the kernel and is not fooled
    assert got["patches_kernel"] == (3, 0)


def test_report_times():
    """Not a check: the times of the steps above (pytest -s shows them)."""
    print("\n" + "\n".join(f"{k}: {v:.1f} s" for k, v in TIMES.items()))

"""The chapters as nbgrader *source* notebooks, for teachers whose course already runs nbgrader.

    ptutils-student notebooks/ student/ --nbgrader student/nbgrader

writes, for every chapter ``NN_topic.ipynb``, ``<course>/source/NN_topic/NN_topic.ipynb``
(the assignment ``NN_topic`` with one notebook of the same name) and, if the course folder has
none, a starting ``<course>/nbgrader_config.py``. ``nbgrader generate_assignment NN_topic`` then
makes the release, and ``nbgrader autograde NN_topic`` grades what the students submit.

Every cell gets nbgrader's metadata (schema version 3):

* a code cell with a ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region: an *autograded
  answer* (``solution``, not graded); nbgrader replaces the region with its stub
  (``# YOUR CODE HERE`` / ``raise NotImplementedError()``) at the same indentation;
* a solution-only code cell (between ``{solution-start}`` and ``{solution-end}``, without
  markers, such as a measurement the exercise asks for): an autograded answer whose whole
  source nbgrader replaces with its stub;
* solution prose (the Markdown between ``{solution-start}`` and ``{solution-end}``, the MyST
  directives dropped): a *manually graded answer* worth 0 points, its text wrapped in
  ``### BEGIN SOLUTION`` / ``### END SOLUTION``, which nbgrader replaces with
  ``YOUR ANSWER HERE``; the teacher reads the students' answers in the formgrader, and the
  score stays the book's (the prose exercises earn no points there either);
* a hidden-test cell (tag ``hidden-test``, ``# hidden test: <name> (<points> points)``): an
  *autograder test* worth its points, ``grade_id`` its name, locked; everything below its
  header is a ``### BEGIN HIDDEN TESTS`` region, so the release shows only the header and
  nbgrader puts the code back when it grades (:func:`test_source`);
* every other cell: *read-only* (locked), so nbgrader restores it if a student edits it.

Markdown reads in plain Jupyter (the handout's rewrite, :mod:`ptutils.classroom.plain`), and
``glue`` calls print, as in ``student/notebooks``.

The trust model is nbgrader's, not the book's grader's. :mod:`ptutils.classroom.grade` runs a
submission in a bubblewrap sandbox, takes back only plain data, and decides every verdict in its
own process. nbgrader runs the test cells *in the student's kernel*, after the student's code:
:func:`run_hidden_test` makes the same calls, passes the answers through the same plain-data
encoder and decoder and asserts the same checks, so an honest submission gets the same points
from both, but a student's code can change what the asserts see (replace ``torch.allclose``,
say). nbgrader's own protections are its checksums: a locked or test cell that a student edits
is put back from the gradebook before grading.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import importlib
import io
import re
import warnings
from pathlib import Path

import nbformat

from . import plain
from .student import BEGIN, HIDDEN_HEADER, SOL_END, SOL_START, is_hidden_test, stub_solutions

SCHEMA_VERSION = 3
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"  # nbgrader's ClearSolutions.code_stub (python)
GRADE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
# nbgrader's delimiters: it treats any line that contains one as a marker, so public text must not
NBGRADER_DELIMITERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                       "BEGIN MARK SCHEME", "END MARK SCHEME")
TEST_NOTE = "# nbgrader runs this test when it grades your notebook; its code is hidden."

CONFIG = '''\
"""nbgrader configuration for a course made of the book's chapters (written by ptutils-student --nbgrader).

Edit freely: ptutils-student writes this file only when the course folder has none.
"""
import os

c = get_config()  # noqa: F821 - provided by nbgrader
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
# the gradebook, inside the course folder (nbgrader's default is the same file)
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db")

# The kernels that autograde starts inherit this process's environment: the chapters run as
# ptutils-grade runs them (fast mode, offline, the students' own checks not strict).
os.environ.update({env!r})

# seconds per cell (nbgrader's default, 30, is short for a chapter's training cells)
c.Execute.timeout = {timeout}
# a grade cell that a student deleted is put back (with a note) and run, rather than missing
c.OverwriteCells.add_missing_cells = True
'''
GRADING_ENV = {"PTUTILS_FAST": "1", "PTUTILS_STRICT": "0", "PTUTILS_ONLINE": "0", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg"}


def _split_markdown(text: str, inside: bool) -> tuple[list[tuple[bool, str]], bool]:
    """The runs of a Markdown cell as ``(is_solution_prose, text)``, the solution directives dropped
    (as :func:`ptutils.classroom.student._strip_solution_prose` drops them), and whether the cell
    ends inside a solution."""
    runs: list[tuple[bool, list[str]]] = [(inside, [])]
    lines, i = text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if SOL_START.match(line) or SOL_END.match(line):
            opening = bool(SOL_START.match(line))
            i += 1
            if opening:
                while i < len(lines) and lines[i].strip() != "```":  # the directive's options
                    i += 1
                i += 1
            elif i < len(lines) and lines[i].strip() == "```":
                i += 1
            inside = opening
            runs.append((inside, []))
            continue
        runs[-1][1].append(line)
        i += 1
    out = [(sol, "\n".join(ls).strip("\n")) for sol, ls in runs]
    return [(sol, t) for sol, t in out if t.strip()], inside


def test_grade_id(name: str) -> str:
    """A hidden test's nbgrader ``grade_id``: its name, with characters nbgrader refuses made ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name)


def test_source(source: str) -> str:
    """The nbgrader test cell for a hidden-test cell: the header, then a hidden region that runs
    the test's unchanged text in the student's kernel with :func:`run_hidden_test`."""
    header = source.splitlines()[0]
    literal = "r'''" + source + "'''"
    try:
        ok = ast.literal_eval(literal) == source
    except (SyntaxError, ValueError):
        ok = False
    if not ok:  # the text holds ''' or ends in a backslash: an exact, if less readable, literal
        literal = repr(source)
    return "\n".join([
        header,
        TEST_NOTE,
        "### BEGIN HIDDEN TESTS",
        "import ptutils.classroom.nbgrader_source as _ptutils_nbgrader",
        "try:",
        f"    _ptutils_nbgrader.run_hidden_test(globals(), {literal})",
        "finally:",
        "    del _ptutils_nbgrader",
        "### END HIDDEN TESTS",
    ])


def run_hidden_test(namespace: dict, source: str) -> None:
    """Run one hidden test in the student's kernel, the way nbgrader needs it: raise when the
    test fails (nbgrader then gives 0 points), return quietly when it passes (all its points).

    As in :mod:`ptutils.classroom.grade`: the part above ``# checks`` runs in a namespace of its
    own with the provided modules (``np``, ``torch``, ...) and the student's functions from
    ``namespace``, each answer passed through the plain-data encoder and decoder (anything that is
    not plain data is a wrong answer); then the checks run there. Nothing the test defines lands
    in the student's namespace. Warnings and standard error are silenced while it runs, since
    nbgrader counts any output on standard error as a failed test and the book's grader does not.
    """
    from . import plaindata
    from .grade import PROVIDED, parse_hidden_test

    t = parse_hidden_test(source, "hidden test")
    ns = {"__name__": "__hidden_test__"}
    for alias in t.provided:
        ns[alias] = importlib.import_module(PROVIDED[alias])

    def answer(name, f):
        def call(*args, **kwargs):
            value = f(*args, **kwargs)
            try:
                return plaindata.decode(plaindata.encode(value))
            except plaindata.PlainDataError as e:
                raise AssertionError(f"wrong answer: {name} returned something the grader cannot read: {e}") from None
        return call

    for name in t.calls:
        if name in namespace:  # else calling it is a NameError: no answer, no points
            ns[name] = answer(name, namespace[name])
    # nbgrader fails a test cell that writes to stderr (the book's grader does not): the test's
    # warnings are recorded, not printed, and its stderr is held, so the two graders agree.
    with warnings.catch_warnings(record=True), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(t.compute, f"<hidden test {t.name}>", "exec"), ns)
        exec(compile(t.checks, f"<hidden test {t.name}: checks>", "exec"), ns)


def _meta(kind: str, grade_id: str, points: float | None = None) -> dict:
    grade = kind in ("test", "answer")
    meta = {"grade": grade, "solution": kind in ("solution", "answer_code", "answer"),
            "locked": kind in ("text", "readonly", "test"), "grade_id": grade_id,
            "schema_version": SCHEMA_VERSION}
    if grade:
        meta["points"] = float(points or 0)
    return meta


def _kinds(nb) -> list[tuple[str, object]]:
    """``(kind, cell)`` for the source notebook: Markdown split into public text and solution
    prose; kinds ``text``, ``answer`` (prose), ``solution`` (markers), ``answer_code``
    (solution-only code), ``test`` and ``readonly``."""
    out, inside = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            runs, inside = _split_markdown(cell.source, inside)
            for k, (sol, text) in enumerate(runs):
                c = copy.deepcopy(cell)
                c.source = text
                if k:
                    c["id"] = f"{cell.get('id', 'cell')}-{k}"
                out.append(("answer" if sol else "text", c))
            continue
        c = copy.deepcopy(cell)
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
        if is_hidden_test(cell):
            kind = "test"
        elif c.cell_type == "code" and BEGIN in c.source:
            kind = "solution"
        elif c.cell_type == "code" and inside:
            kind = "answer_code"
        else:
            kind = "readonly"
        out.append((kind, c))
    if inside:
        raise ValueError("a {solution-start} has no matching {solution-end}")
    return out


def source_notebook(nb, name: str | None = None, index: plain.Index | None = None, values: dict | None = None):
    """The nbgrader source notebook of a chapter notebook (module doc). ValueError if it cannot be
    made: unpaired solution markers, a malformed hidden test, nbgrader's delimiters in public text,
    or grade_ids that clash."""
    from .grade import parse_hidden_test

    kinds = _kinds(nb)
    # the Markdown as the handout has it; glue notes point at the code the release keeps
    printing = other = False
    for _, c in kinds:
        if c.cell_type == "code" and not is_hidden_test(c):
            new = plain.student_glue_source(c.source)
            printing |= new != c.source
            other |= "myst_nb" in new
            c.source = new
    printing &= not other

    def view(student: bool):
        v = copy.deepcopy(nb)
        v.cells = []
        for kind, c in kinds:
            c = copy.deepcopy(c)
            if student and kind == "solution":
                c.source = stub_solutions(c.source)
            elif student and kind == "answer_code":
                c.source = CODE_STUB
            elif kind == "test":
                c.source = ""
            v.cells.append(c)
        return plain.plain_notebook(v, name=name, index=index, printing=printing, values=values)

    public, full = view(True), view(False)
    out = copy.deepcopy(nb)
    out.cells = []
    ids = set()
    for i, (kind, c) in enumerate(kinds):
        c = copy.deepcopy(c)
        cid = c.get("id") or f"cell-{i}"
        points = None
        if c.cell_type == "markdown":
            c.source = (full if kind == "answer" else public).cells[i].source
            raw = plain.raw_roles(c.source)
            if raw:
                raise ValueError(f"glue roles that plain Jupyter cannot show: {raw[:3]}")
        if kind == "test":
            header = HIDDEN_HEADER.match(c.source.splitlines()[0]) if c.source.strip() else None
            if not header:
                raise ValueError(f"hidden-test cell must start with '# hidden test: <name> (<n> points)': "
                                 f"{c.source.splitlines()[:1]}")
            parse_hidden_test(c.source, "hidden-test cell")
            grade_id, points = test_grade_id(header["name"]), float(header["points"])
            c.source = test_source(c.source)
        elif kind == "answer":
            grade_id = f"answer-{cid}"
            c.source = "### BEGIN SOLUTION\n" + c.source + "\n### END SOLUTION"
        elif kind in ("solution", "answer_code"):
            grade_id = f"solution-{cid}"
        else:
            grade_id = f"cell-{cid}"
            bad = [d for d in NBGRADER_DELIMITERS if d in c.source]
            if bad:
                raise ValueError(f"cell {cid} holds {bad[0]!r}, which nbgrader would take for a marker")
        if not GRADE_ID.match(grade_id) or grade_id in ids:
            raise ValueError(f"grade_id {grade_id!r} is not valid or not unique")
        ids.add(grade_id)
        c.metadata["nbgrader"] = _meta(kind, grade_id, points)
        out.cells.append(c)
    return out


def points(nb) -> dict[str, float]:
    """``{grade_id: points}`` of the graded cells of an nbgrader notebook."""
    return {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"])
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}


def write_config(course_dir: Path, timeout: int = 300) -> Path | None:
    """Write ``<course_dir>/nbgrader_config.py`` (module doc) unless there is one; return its path if written."""
    path = Path(course_dir) / "nbgrader_config.py"
    if path.exists():
        return None
    path.write_text(CONFIG.format(env=GRADING_ENV, timeout=timeout), encoding="utf-8")
    return path


def write_source(nb, course_dir: Path, name: str, index: plain.Index | None = None,
                 values: dict | None = None) -> Path:
    """Write the source notebook of chapter ``name`` (``NN_topic.ipynb``) into ``<course_dir>/source/NN_topic/``."""
    stem = Path(name).stem
    folder = Path(course_dir) / "source" / stem
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.ipynb"
    nbformat.write(source_notebook(nb, name, index, values), path)
    return path

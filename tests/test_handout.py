"""The class hand-out (``python -m ptutils.classroom.handout``), without installing it: what the
archive holds and leaves out, the exercise audit, byte-identical builds, pins in step with
requirements.txt, the leak check and the command's exit codes; and the course plan of
book/for-teachers.md, which must show what :func:`handout.course_plan` computes.

``tests/doors/test_handout.py`` installs the archive into a new environment and runs a chapter there.
"""

import ast
import csv
import hashlib
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch

from ptutils.classroom import handout, student
from ptutils.classroom.handout import DECISIONS, KEEP, REPLACE, WITHHOLD, Decision

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TEACHER_ONLY = {"grade.py", "sandbox.py", "runner.py", "student.py", "plain.py", "plaindata.py", "handout.py",
                "nbgrader_source.py", "__main__.py"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Student notebooks written afresh from the chapters, and the hand-out built from them."""
    tmp = tmp_path_factory.mktemp("handout")
    student.build(NOTEBOOKS, tmp / "student")
    out = tmp / "student" / "handout.zip"
    assert handout.main([str(tmp / "student"), str(out), "--reference", str(NOTEBOOKS)]) == 0
    with zipfile.ZipFile(out) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist()}
    return tmp, out, entries


def _files(entries, prefix="handout/"):
    assert all(k.startswith(prefix) for k in entries), sorted(entries)[:3]
    return {k[len(prefix):]: v for k, v in entries.items()}


def test_the_archive_holds_the_notebooks_the_package_its_data_pins_and_a_readme(built):
    _, out, entries = built
    files = _files(entries)
    assert {"README.md", "requirements.txt", "pyproject.toml"} <= set(files)
    assert sorted(p for p in files if p.startswith("notebooks/")) == \
        sorted(f"notebooks/{p.name}" for p in NOTEBOOKS.glob("*.ipynb"))
    for name in ("rt-polarity.pos", "rt-polarity.neg", "README.md"):  # the data ships, unchanged
        rel = f"ptutils/datasets/rt-polarity/{name}"
        assert files[rel] == (ROOT / rel).read_bytes(), rel
    modules = {p for p in files if p.endswith(".py")}
    assert {"ptutils/__init__.py", "ptutils/classroom/checks.py", "ptutils/classroom/glue.py",
            "ptutils/train/__init__.py"} <= modules
    print(f"{out.stat().st_size / 1e6:.2f} MB, {len(files)} files")


def test_nothing_of_the_teachers_is_in_it(built):
    files = _files(built[2])
    assert not [p for p in files if p.split("/")[0] == "hidden" or "/hidden/" in p]
    assert not [p for p in files if p.startswith("ptutils/classroom/") and Path(p).name in TEACHER_ONLY]
    assert not [p for p in files if "__pycache__" in p or p.endswith(".pyc")]
    for path, data in files.items():
        if path.endswith(".ipynb"):
            nb = nbformat.reads(data.decode(), as_version=4)
            assert not [c for c in nb.cells if student.is_hidden_test(c)], path
        text = data.decode(errors="replace")
        for marker in handout.MARKERS:
            assert marker not in text, (path, marker)


def test_entries_are_sorted_with_fixed_dates_and_two_builds_are_byte_identical(built, tmp_path):
    tmp, out, _ = built
    with zipfile.ZipFile(out) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {handout.DATE}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    again = tmp_path / "handout.zip"  # the same name: it is the folder inside
    assert handout.main([str(tmp / "student"), str(again), "--reference", str(NOTEBOOKS)]) == 0
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(out.read_bytes()).hexdigest()


def test_requirements_are_the_student_closure_pinned_as_requirements_txt_pins_it(built):
    pin = handout._pin_tool(ROOT)
    shipped = pin.read_pins(_write(built[0] / "req.txt", _files(built[2])["requirements.txt"]))
    assert shipped == handout.student_pins(ROOT)
    everything = pin.read_pins(ROOT / "requirements.txt")
    assert {n: everything.get(n) for n in shipped} == shipped, "a pin differs from requirements.txt"
    assert {"torch", "nbval", "jupyterlab", "ipykernel", "myst-nb"} <= set(shipped)
    assert not {"nbgrader", "jupyter-book", "playwright"} & set(shipped), "teacher's or book-building packages"


def test_pyproject_installs_the_copy_with_the_repositorys_dependencies_and_no_commands(built):
    shipped = tomllib.loads(_files(built[2])["pyproject.toml"].decode())
    repo = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert shipped["project"]["dependencies"] == repo["project"]["dependencies"]
    assert shipped["project"]["name"] == "ptutils" and "scripts" not in shipped["project"]
    assert shipped["tool"]["setuptools"] == {k: repo["tool"]["setuptools"][k] for k in ("packages", "package-data")}


def test_readme_says_how_to_set_up_check_and_hand_in(built):
    text = _files(built[2])["README.md"].decode()
    assert "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e ." in text
    assert ".venv/bin/jupyter lab notebooks" in text
    m = re.search(r"PTUTILS_FAST=1 \.venv/bin/python -m pytest --nbval-lax --nbval-current-env (notebooks/\S+\.ipynb)", text)
    assert m and f"handout/{m.group(1)}" in built[2], "the self-check command names a notebook of the archive"
    for line in ("[pass]", "[fail]", "[todo]", "What to hand in"):
        assert line in text


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ---- the exercise audit ----------------------------------------------------------------------


def _solution_functions() -> set[str]:
    """``chNN.<name>`` of every function a chapter's solutions define (around the markers, or in
    solution-only code cells)."""
    out = set()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb, inside = nbformat.read(path, as_version=4), False
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                for line in cell.source.splitlines():
                    inside = bool(student.SOL_START.match(line)) or (inside and not student.SOL_END.match(line))
                continue
            if student.is_hidden_test(cell) or not (student.BEGIN in cell.source or inside):
                continue
            code = "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line
                             for line in cell.source.splitlines())
            out |= {f"ch{path.name[:2]}.{n.name}" for n in ast.parse(code).body
                    if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return out


def test_every_function_a_solution_defines_has_a_decision():
    assert set(DECISIONS) == _solution_functions()
    assert {d.action for d in DECISIONS.values()} <= {KEEP, REPLACE, WITHHOLD}
    for name, d in DECISIONS.items():
        assert d.reason, name
        assert (d.body is not None) == (d.action == REPLACE), name
        assert d.library or d.action == KEEP, name


def test_every_library_function_the_audit_names_exists():
    files = handout.package_files(ROOT)
    for name, d in DECISIONS.items():
        if d.library:
            assert handout.function_source(files, d.library), name


def _solution_regions() -> dict[str, list[str]]:
    """``chNN.<function>``: the lines between a function's solution markers (stripped, longer than 12)."""
    out = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or student.BEGIN not in cell.source:
                continue
            code = "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line
                             for line in cell.source.splitlines())
            lines = code.splitlines()
            for node in ast.parse(code).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    body = lines[node.lineno - 1:]  # the END comment lies after the last statement
                    begin = [i for i, line in enumerate(body) if line.strip() == student.BEGIN]
                    if begin and begin[0] < node.end_lineno - node.lineno + 1:
                        end = next(i for i in range(begin[0], len(body)) if body[i].strip() == student.END)
                        region = [s.strip() for s in body[begin[0] + 1:end]]
                        out[f"ch{path.name[:2]}.{node.name}"] = [s for s in region if len(s) > 12]
    return out


def _whole_answers(files: dict[str, bytes]) -> list[str]:
    """The exercises whose every solution line is a line of the package's modules in ``files``."""
    package = {line.strip() for k, v in files.items() if k.startswith("ptutils/") and k.endswith(".py")
               for line in v.decode(errors="replace").splitlines()}
    return [name for name, lines in _solution_regions().items() if lines and all(line in package for line in lines)]


def test_no_exercise_has_its_whole_answer_in_the_student_package(built):
    """A student who reads the hand-out's ptutils/ finds no exercise's answer there line for line:
    every solution keeps at least one line of its own."""
    assert {"ch06.mask_patches", "ch09.masked_max", "ch14.mean_reciprocal_rank",
            "ch14.generalized_iou"} <= set(_solution_regions())
    assert _whole_answers(_files(built[2])) == []


def test_the_whole_answer_check_can_fail(built):
    """The check is not vacuous: a package function that holds a solution's lines is caught."""
    files = _files(built[2])
    lines = _solution_regions()["ch09.masked_max"]
    planted = files["ptutils/pooling.py"] + ("\n\ndef _planted(x, mask):\n" + "".join(f"    {s}\n" for s in lines)).encode()
    assert _whole_answers({**files, "ptutils/pooling.py": planted}) == ["ch09.masked_max"]


def _body_lines(source: str) -> list[str]:
    node = ast.parse(source).body[0]
    first = node.body[1] if isinstance(node.body[0], ast.Expr) and len(node.body) > 1 else node.body[0]
    lines = source.splitlines()[first.lineno - 1:]
    return [s for s in (line.strip() for line in lines) if len(s) > 12]


def test_replaced_and_withheld_functions_lose_their_bodies(built):
    files = _files(built[2])
    original = handout.package_files(ROOT)
    for name, d in DECISIONS.items():
        if d.action not in (REPLACE, WITHHOLD):
            continue
        rel, _ = handout._split_name(d.library, original)
        body = _body_lines(handout.function_source(original, d.library))
        replacement = d.body or ""
        gone = [line for line in body if line not in replacement]
        assert gone, name
        now = handout.function_source(files, d.library)
        assert not [line for line in gone if line in now], f"{name}: the archive's {d.library} keeps its body"
        kept = [line for line in gone if line in files[rel].decode() and line not in handout.GENERIC_LINES]
        assert not kept, f"{name}: the archive's {rel} still holds {kept[:2]}"


def _archive_function(files, library, namespace):
    src = handout.function_source({k: v for k, v in files.items()}, library)
    exec(compile(src, library, "exec"), namespace)
    return namespace[library.rsplit(".", 1)[1]]


def test_replacements_give_the_same_results_as_the_library(built, tmp_path):
    from typing import Callable

    import ptutils

    files = _files(built[2])
    fp = _archive_function(files, "ptutils.cache.file_fingerprint", {"hashlib": hashlib, "Path": Path})
    for data in (b"", b"x", bytes(range(256)) * 9000):
        p = _write(tmp_path / "f.bin", data)
        assert fp(p) == ptutils.cache.file_fingerprint(p) == hashlib.sha256(data).hexdigest()
    warm = _archive_function(files, "ptutils.training.linear_warmup", {"torch": torch, "Callable": Callable})
    for total, w in ((100, 10), (20, 0), (6, 5), (1, 1)):
        ours = [ptutils.training.linear_warmup(total, w), warm(total, w)]
        scheds = [f(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)) for f in ours]
        for step in range(total + 2):
            assert scheds[0].lr_lambdas[0](step) == scheds[1].lr_lambdas[0](step), (total, w, step)
    for bad in ((0, 0), (10, 11), (10, -1)):
        with pytest.raises(ValueError):
            warm(*bad)


TOY = {"ptutils/__init__.py": b"from . import m\n",
       "ptutils/m.py": b'def f(x):\n    """Add one."""\n    y = x + 1  # the answer\n    return y\n\n\ndef g(x):\n    return 2 * x\n'}


def test_withholding_leaves_a_stub_that_names_the_exercise():
    toy = {**TOY, "ptutils/__init__.py": b""}
    out = handout.apply_decisions(toy, {}, {"ch99.f": Decision(WITHHOLD, "toy", "ptutils.m.f")})
    text = out["ptutils/m.py"].decode()
    assert "x + 1" not in text and '"""Add one."""' in text and "return 2 * x" in text
    ns = {}
    exec(text, ns)
    with pytest.raises(NotImplementedError, match=r"ptutils\.m\.f .*exercise ch99\.f"):
        ns["f"](1)


def test_withholding_a_function_that_other_code_calls_fails():
    toy = {**TOY, "ptutils/n.py": b"from .m import f\n"}
    with pytest.raises(handout.HandoutError, match="cannot withhold ptutils.m.f: ptutils/n.py"):
        handout.apply_decisions(toy, {}, {"ch99.f": Decision(WITHHOLD, "toy", "ptutils.m.f")})
    with pytest.raises(handout.HandoutError, match="not defined"):
        handout.apply_decisions(TOY, {}, {"ch99.h": Decision(KEEP, "toy", "ptutils.m.h")})


def test_the_copy_must_not_import_a_module_it_leaves_out():
    copy = {"ptutils/__init__.py": b"from . import a\nfrom .classroom import grade\n", "ptutils/a.py": b"",
            "ptutils/classroom/__init__.py": b""}
    assert handout.missing_imports(copy, {"ptutils", "ptutils.a", "ptutils.classroom", "ptutils.classroom.grade"}) \
        == ["ptutils/__init__.py: ptutils.classroom.grade"]
    assert handout.missing_imports(handout.package_files(ROOT), handout.repository_modules(ROOT)) == []


# ---- the leak check --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference():
    return handout._reference(NOTEBOOKS)


def test_the_leak_check_passes_the_archive_and_finds_what_is_slipped_in(built, reference):
    files = _files(built[2])
    assert handout.leaks(files, reference) == []
    ch13 = reference["13_sharing_models.ipynb"]
    line = next(f for f in student.solution_fragments(ch13) if "int.from_bytes" in f)
    hidden = handout.hidden_fragments(ch13)[0]
    slipped = {**files, "ptutils/display.py": files["ptutils/display.py"] + f"\n# {line}\n".encode(),
               "README.md": files["README.md"] + f"\n{hidden}\n\n### BEGIN SOLUTION\n".encode()}
    found = handout.leaks(slipped, reference)
    assert any(f.startswith("ptutils/display.py: solution line of 13_sharing_models") for f in found), found
    assert any(f.startswith("README.md: hidden-test line of 13_sharing_models") for f in found), found
    assert "README.md: marker '### BEGIN SOLUTION'" in found
    nb = nbformat.reads(files["notebooks/13_sharing_models.ipynb"].decode(), as_version=4)
    cell = nbformat.v4.new_code_cell("# hidden test: x (1 point)\nx = 1\n# checks\nassert x")
    cell.metadata["tags"] = ["hidden-test"]
    nb.cells.append(cell)
    found = handout.leaks({"notebooks/13_sharing_models.ipynb": nbformat.writes(nb).encode()}, reference)
    assert "notebooks/13_sharing_models.ipynb: a hidden-test cell" in found


def test_a_kept_function_may_hold_its_exercises_lines_and_nothing_else_may(reference):
    files = handout.apply_decisions(handout.package_files(ROOT))
    body = handout.function_source(files, "ptutils.metrics.box_iou")
    assert handout.leaks({"ptutils/metrics.py": files["ptutils/metrics.py"]}, reference) == []
    elsewhere = {**files, "ptutils/display.py": files["ptutils/display.py"] + b"\n" + body.encode()}
    found = handout.leaks(elsewhere, reference)
    assert any(f.startswith("ptutils/display.py: solution line of 14_applications") for f in found), found


# ---- the command -----------------------------------------------------------------------------


def _one_error(err: str, *needles: str) -> None:
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith(f"{handout.PROG}: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)


def test_help_exits_0_and_names_the_exit_codes():
    out = subprocess.run([sys.executable, "-m", "ptutils.classroom.handout", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "Exit codes:" in out.stdout and "--chapters" in out.stdout, out.stdout


def test_chosen_chapters_only(built, tmp_path):
    tmp, _, _ = built
    out = tmp_path / "week2.zip"
    assert handout.main([str(tmp / "student"), str(out), "--chapters", "02", "04_attention_transformer",
                         "--reference", str(NOTEBOOKS)]) == 0
    names = zipfile.ZipFile(out).namelist()
    assert sorted(n for n in names if n.endswith(".ipynb")) == \
        ["week2/notebooks/02_core_concepts.ipynb", "week2/notebooks/04_attention_transformer.ipynb"]
    readme = zipfile.ZipFile(out).read("week2/README.md").decode()
    assert "02_core_concepts.ipynb" in readme and "01_background" not in readme


def test_bad_usage_exits_2_with_one_line(built, tmp_path, capsys):
    tmp, _, _ = built
    st, ref = str(tmp / "student"), ["--reference", str(NOTEBOOKS)]
    cases = [
        ([str(tmp_path / "nowhere"), str(tmp_path / "h.zip"), *ref], ["does not exist", "make student"]),
        ([st, str(tmp / "student" / "notebooks" / "h.zip"), *ref], ["would lie in", "notebooks"]),
        ([st, str(tmp / "student" / "hidden" / "h.zip"), *ref], ["would lie in", "hidden"]),
        ([st, str(tmp_path / "h.tar"), *ref], ["must end in .zip"]),
        ([st, str(tmp_path / "h.zip"), "--chapters", "99", *ref], ["no chapter '99'"]),
        ([st, str(tmp_path / "h.zip"), "--reference", str(tmp_path)], ["no chapters in the reference folder"]),
    ]
    empty = tmp_path / "empty"
    (empty / "notebooks").mkdir(parents=True)
    cases.append(([str(empty), str(tmp_path / "h.zip"), *ref], ["no student notebooks"]))
    for argv, needles in cases:
        assert handout.main(argv) == 2, argv
        _one_error(capsys.readouterr().err, *needles)
    assert not (tmp_path / "h.zip").exists()
    broken = tmp_path / "broken"
    (broken / "notebooks").mkdir(parents=True)
    (broken / "notebooks" / "02_core_concepts.ipynb").write_text("{not json")
    assert handout.main([str(broken), str(tmp_path / "h.zip"), *ref]) == 2
    _one_error(capsys.readouterr().err, "is not a valid notebook")


def test_a_student_notebook_with_a_solution_left_in_exits_1(built, tmp_path, capsys):
    tmp, _, _ = built
    bad = tmp_path / "student"
    (bad / "notebooks").mkdir(parents=True)
    nb = nbformat.read(NOTEBOOKS / "08_masked_language_modelling.ipynb", as_version=4)  # the chapter itself
    nbformat.write(nb, bad / "notebooks" / "08_masked_language_modelling.ipynb")
    assert handout.main([str(bad), str(tmp_path / "h.zip"), "--reference", str(NOTEBOOKS)]) == 1
    _one_error(capsys.readouterr().err, "would be handed out", "08_masked_language_modelling.ipynb")
    assert not (tmp_path / "h.zip").exists()


# ---- the course plan on the teachers' page -------------------------------------------------


def test_the_teachers_page_shows_the_course_plan_as_computed():
    page = (ROOT / "book" / "for-teachers.md").read_text()
    want = handout.course_plan(NOTEBOOKS, ROOT / "benchmarks" / "RESULTS.md")
    assert ",".join(handout.PLAN_HEADER) in page, "book/for-teachers.md has no course-plan table"
    assert want in page, f"update the course plan in book/for-teachers.md to:\n{want}"


def test_points_from_the_hidden_tests_equal_points_from_the_chapters(built):
    tmp, _, _ = built
    assert handout.points(tmp / "student" / "hidden") == handout.points(NOTEBOOKS)
    assert all(n > 0 and p > 0 for n, p in handout.points(NOTEBOOKS).values())


def test_measured_times_come_from_results_md():
    times = handout.measured_times(ROOT / "benchmarks" / "RESULTS.md")
    assert set(range(1, 16)) <= set(times), "RESULTS.md's cold make book row lists chapters 1-15"
    assert all(re.fullmatch(r"\d+(,\d{3})* s", full) for full, _ in times.values())


def _schedule(page: str, title: str) -> dict[int, list[int]]:
    """``{week: [chapters]}`` of the schedule table (a csv-table) after the line starting with ``title``."""
    lines = page.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    start = next(i for i in range(start, len(lines)) if lines[i] == "week,chapters") + 1
    weeks = {}
    for row in csv.reader(lines[start:lines.index("```", start)]):
        weeks[int(row[0])] = [int(c) for c in row[1].split(",")]
    return weeks


def test_the_schedules_put_every_chapter_after_the_chapters_it_refers_to():
    page = (ROOT / "book" / "for-teachers.md").read_text()
    back = {int(stem[:2]): chs for stem, chs in handout.refers_back(NOTEBOOKS).items()}
    eight, fourteen = _schedule(page, "Eight weeks"), _schedule(page, "Fourteen weeks")
    assert sorted(eight) == list(range(1, 9)) and sorted(fourteen) == list(range(1, 15))
    assert sorted(c for chs in fourteen.values() for c in chs) == sorted(back), "14 weeks: every chapter once"
    for weeks in (eight, fourteen):
        when = {c: w for w, chs in weeks.items() for c in chs}
        assert len(when) == sum(map(len, weeks.values())), "a chapter twice"
        for c, w in when.items():
            late = [b for b in back[c] if b in when and when[b] > w]
            assert not late, f"chapter {c} in week {w} comes before chapters {late} it refers to"

"""Tests that keep the book honest: clean notebooks, a complete table of contents,
and "build it" cells that are the library's code, not a drifting copy."""

import ast
import importlib
import inspect
import json
import pkgutil
import re
import textwrap
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: The one form of a "build it" marker: the cell's first line, exactly this, nothing after the name.
SYNC = re.compile(r"^# ptutils: (ptutils(?:\.[A-Za-z_]\w*)+\.[A-Za-z_]\w*)$")
#: Anything that looks like an attempt at a marker (checked to be exactly SYNC on the first line).
MARKER_LIKE = re.compile(r"#\s*ptutils\s*:", re.IGNORECASE)


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell):
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    nb = load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in code_cells(nb):
        assert not cell.get("outputs"), f"{path.name}: a code cell has outputs; strip them"
        assert cell.get("execution_count") is None, f"{path.name}: execution counts not stripped"
    assert not any("widgets" in k for k in nb["metadata"]), "widget state committed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_chapter_pattern(path):
    nb = load(path)
    first = source(nb["cells"][0])
    assert re.match(r"\(ch-[\w-]+\)=\n# ", first), f"{path.name}: must open with a (ch-...)= label and a title"
    code = code_cells(nb)
    colab = code[0]
    assert 'if "google.colab" in sys.modules:' in source(colab), f"{path.name}: first code cell must be the Colab install"
    assert {"remove-cell", "nbval-skip"} <= set(colab["metadata"].get("tags", [])), "Colab cell must be hidden and skipped"
    assert "ptutils.setup_notebook(seed=" in source(code[1]), f"{path.name}: second code cell must call setup_notebook"
    md = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    for heading in ("## Summary", "## Exercises", "## References"):
        assert heading in md, f"{path.name}: missing {heading!r}"
    assert md.count("{exercise-start}") >= 3, f"{path.name}: fewer than 3 exercises"
    assert md.count("{exercise-start}") == md.count("{exercise-end}")
    assert md.count("{solution-start}") == md.count("{solution-end}")
    assert "sys.path" not in "\n".join(source(c) for c in code), "import ptutils, never edit sys.path"
    assert "os.environ" not in "\n".join(source(c) for c in code), "switches are read in ptutils.config only"


def test_every_notebook_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"file:\s*(\S+)", toc))
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in listed, f"{path.name} is not in _toc.yml"
    for entry in listed:
        assert (ROOT / f"{entry}.ipynb").exists() or (ROOT / f"{entry}.md").exists(), f"_toc.yml lists missing {entry}"


def _strip_docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def normalised(code: str) -> str:
    """The AST of ``code`` without docstrings: comments, blank lines and docstrings may differ."""
    return ast.dump(_strip_docstrings(ast.parse(textwrap.dedent(code))))


def _is_check_call(node) -> bool:
    """``ptutils.check(...)`` as a statement of its own."""
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "check"
            and isinstance(node.value.func.value, ast.Name) and node.value.func.value.id == "ptutils")


def marked_code(cell_body: str) -> str:
    """The AST (as :func:`normalised`) of a marked cell's code without its trailing ``ptutils.check(...)``
    calls: an exercise that asks for a library function checks the answer in the same cell, so that
    the check survives into the student version."""
    tree = ast.parse(textwrap.dedent(cell_body))
    while tree.body and _is_check_call(tree.body[-1]):
        tree.body.pop()
    return ast.dump(_strip_docstrings(tree))


def marked_object(dotted: str):
    """The function or class a marker ``ptutils.<module>.<name>`` names; LookupError saying why not.

    The module must be the one that *defines* the object (not one that re-exports it),
    so that the marker tells a reader where the code lives.
    """
    module_name, _, name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise LookupError(f"{module_name} is not an importable ptutils module") from None
    obj = getattr(module, name, None)
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        raise LookupError(f"{module_name} has no function or class {name!r}")
    if obj.__module__ != module_name:
        raise LookupError(f"{name} is defined in {obj.__module__}, not in {module_name}: name the defining module")
    return obj


GRADER_INTERNALS = {"ptutils.classroom.sandbox", "ptutils.classroom.runner", "ptutils.classroom.plaindata"}
"""The grader's machinery: it runs outside the chapters and no chapter shows it, so a chapter's own
``run`` or ``encode`` is not a re-typed copy of it."""


def public_library_names() -> dict:
    """Every public function or class name a ptutils module exports -> the modules exporting it."""
    import ptutils

    names = {}
    modules = [ptutils] + [importlib.import_module(m.name) for m in pkgutil.walk_packages(ptutils.__path__, "ptutils.")
                           if not m.name.endswith("__main__") and m.name not in GRADER_INTERNALS]
    for module in modules:
        exported = {n for n, o in vars(module).items()
                    if (inspect.isfunction(o) or inspect.isclass(o))
                    and (module is ptutils or o.__module__ == module.__name__)}
        exported |= set(getattr(module, "__all__", ()))
        for n in exported:
            if not n.startswith("_"):
                names.setdefault(n, []).append(module.__name__)
    return names


def defined_names(code: str) -> list[str]:
    """Names a cell binds with ``def``/``class`` at notebook level (inside if/for/with/try too, not nested)."""
    tree = ast.parse(TransformerManager().transform_cell(code))  # IPython syntax (%magic) becomes Python
    found = []

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.append(node.name)
                continue  # a def inside a function or class body is local to it
            for field in ("body", "orelse", "finalbody"):
                visit(getattr(node, field, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                visit(handler.body)
            for case in getattr(node, "cases", []) or []:
                visit(case.body)

    visit(tree.body)
    return found


def cell_problems(code: str, public: dict) -> list:
    """What is wrong with one code cell's markers and definitions (an empty list if nothing)."""
    problems, marked = [], None
    for i, line in enumerate(code.splitlines()):
        if not MARKER_LIKE.search(line):
            continue
        m = SYNC.match(line)
        if i != 0:
            problems.append(f"line {i + 1}: a '# ptutils:' marker must be the cell's first line, got {line!r}")
        elif not m:
            problems.append(f"loose marker {line!r}: write exactly '# ptutils: ptutils.<module>.<name>'")
        else:
            try:
                marked_object(m.group(1))
                marked = m.group(1).rpartition(".")[2]
            except LookupError as e:
                problems.append(f"marker {line!r}: {e}")
    for name in defined_names(code):
        if name in public and name != marked:
            problems.append(f"def/class {name!r} shadows the library's {' and '.join(f'{m}.{name}' for m in public[name])}: "
                            "mark the cell '# ptutils: ptutils.<module>.<name>' if it is the library code, rename it, "
                            "or use the library object")
    return problems


SYNC_CELLS = [
    (path.name, m.group(1), source(cell))
    for path in NOTEBOOKS
    for cell in code_cells(load(path))
    if (m := SYNC.match(source(cell).splitlines()[0] if source(cell) else ""))
]


def test_there_are_build_it_cells():
    assert SYNC_CELLS, "no '# ptutils: <name>' cells found"


@pytest.mark.parametrize("nb,name,code", SYNC_CELLS, ids=[f"{n}:{o}" for n, o, _ in SYNC_CELLS])
def test_build_it_cell_is_the_library_code(nb, name, code):
    obj = marked_object(name)
    body = "\n".join(code.splitlines()[1:])
    assert marked_code(body) == normalised(inspect.getsource(obj)), (
        f"{nb}: the cell marked '# ptutils: {name}' differs from the library source; "
        "update one to match the other"
    )


def test_sync_check_can_fail():
    """The comparison is not vacuous: a one-token change is detected."""
    import ptutils.feedforward as ff
    src = inspect.getsource(ff.PositionwiseFeedForward)
    assert normalised(src) == normalised(src.replace('"""', "'''"))
    assert normalised(src) != normalised(src.replace("self.w_2(self.dropout(hidden))",
                                                     "torch.relu(self.w_2(self.dropout(hidden)))"))


def test_a_marked_cell_may_end_with_its_check_and_nothing_else():
    import ptutils.feedforward as ff
    src = inspect.getsource(ff.PositionwiseFeedForward)
    lib = normalised(src)
    assert marked_code(src) == lib
    assert marked_code(src + '\nptutils.check("ch02.ffn", PositionwiseFeedForward)\n') == lib
    assert marked_code(src + "\nprint(PositionwiseFeedForward)\n") != lib, "only a check call may follow"
    assert marked_code('ptutils.check("ch02.ffn", PositionwiseFeedForward)\n' + src) != lib, "...and only after"
    assert marked_code(src + '\nx = ptutils.check("ch02.ffn", PositionwiseFeedForward)\n') != lib


PUBLIC = public_library_names()


def test_public_names_are_found():
    assert {"ptutils.feedforward", "ptutils"} <= set(PUBLIC["PositionwiseFeedForward"])
    assert "ptutils.repro" in PUBLIC["set_seed"] or "ptutils" in PUBLIC["set_seed"]
    assert not any(n.startswith("_") for n in PUBLIC)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_markers_are_exact_and_no_cell_shadows_the_library(path):
    """A marker is exactly '# ptutils: ptutils.<module>.<name>' on a cell's first line, naming a real
    object; a notebook def/class with the name of a public library object is marked as that object."""
    problems = [f"{path.name} code cell {i}: {p}" for i, cell in enumerate(code_cells(load(path)))
                for p in cell_problems(source(cell), PUBLIC)]
    assert not problems, "\n".join(problems)


GOOD = "# ptutils: ptutils.feedforward.PositionwiseFeedForward\nclass PositionwiseFeedForward:\n    pass\n"


@pytest.mark.parametrize("code", [
    "#ptutils: ptutils.feedforward.PositionwiseFeedForward\nx = 1",           # no space after '#'
    "# ptutils:ptutils.feedforward.PositionwiseFeedForward\nx = 1",           # no space after ':'
    "# ptutils: ptutils.feedforward.PositionwiseFeedForward  \nx = 1",        # trailing blanks
    "# PTUTILS: ptutils.feedforward.PositionwiseFeedForward\nx = 1",          # case
    "# ptutils: feedforward.PositionwiseFeedForward\nx = 1",                  # package left out
    "# ptutils: ptutils.feedforward.PositionwiseFeedForward (the FFN)\nx = 1",  # words after the name
    "# ptutils: ptutils.feedforward.NoSuchThing\nx = 1",                      # names nothing
    "# ptutils: ptutils.no_such_module.PositionwiseFeedForward\nx = 1",       # no such module
    "# ptutils: ptutils.PositionwiseFeedForward\nx = 1",                      # a re-export, not the module
    "# ptutils: ptutils.feedforward.PositionwiseFeedForward.forward\nx = 1",  # a method: not <module>.<name>
    "# ptutils: ptutils.feedforward.torch\nx = 1",                            # a module attribute, not code
    "import torch\n# ptutils: ptutils.feedforward.PositionwiseFeedForward\nx = 1",  # not the first line
    GOOD + "# ptutils: ptutils.feedforward.PositionwiseFeedForward\n",       # a second marker
])
def test_a_loose_marker_is_reported(code):
    assert cell_problems(code, PUBLIC), f"not reported: {code!r}"


@pytest.mark.parametrize("code", [
    "def set_seed(seed):\n    pass",                                  # a public ptutils function
    "class PositionwiseFeedForward:\n    pass",                       # a public class, no marker
    "if True:\n    def set_seed(seed):\n        pass",                # inside a block, still notebook level
    "try:\n    pass\nexcept Exception:\n    def set_seed(seed):\n        pass",
    "%time x = 1\ndef set_seed(seed):\n    pass",                     # IPython syntax in the cell
    "# ptutils: ptutils.feedforward.PositionwiseFeedForward\ndef set_seed(seed):\n    pass",  # marked as another
])
def test_a_shadowing_definition_is_reported(code):
    problems = cell_problems(code, PUBLIC)
    assert any("shadows" in p for p in problems), f"not reported: {code!r}"


@pytest.mark.parametrize("code", [
    GOOD,
    "def my_helper(x):\n    return x",
    "def outer():\n    def set_seed(seed):\n        pass\n    return set_seed",  # local to outer
    "x = 1  # ptutils does the rest",
    "%%time\nx = 1",
])
def test_a_clean_cell_is_not_reported(code):
    assert cell_problems(code, PUBLIC) == []


# ----------------------------------------------------------------------------- cross-references
# The website build fails on an undefined label too, but only after executing every notebook;
# these checks read the sources in a second, for every chapter.
ROLE = re.compile(r"\{(ref|numref|eq)\}`([^`]+)`")
GLUE_ROLE = re.compile(r"\{glue:(?:text|)\}`([\w-]+)")
GLUE_CALL = re.compile(r"""\b(glue\w*)\(\s*(f?)(["'])(.+?)\3""")  # glue(...) and helpers such as glue_diff(...)


def _cells_of(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        src = cell["source"]
        yield cell, "".join(src) if isinstance(src, list) else src


def _labels() -> set[str]:
    """Every label the book defines: (label)= targets, $$ (label) equations, figure names, exercise labels."""
    labels = set()
    for page in NOTEBOOKS:
        for cell, src in _cells_of(page):
            if cell["cell_type"] == "markdown":
                labels |= set(re.findall(r"^\((\S+)\)=\s*$", src, re.M))
                labels |= set(re.findall(r"^\$\$ \((\S+)\)\s*$", src, re.M))
                labels |= set(re.findall(r"^:label: (\S+)", src, re.M))
            fig = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
            if "name" in fig:
                labels.add(fig["name"])
    for md in sorted((ROOT / "book").glob("*.md")):
        labels |= set(re.findall(r"^\((\S+)\)=\s*$", md.read_text(encoding="utf-8"), re.M))
    return labels


def _target(text: str) -> str:
    m = re.search(r"<([^>]+)>$", text)  # {ref}`words <label>`
    return m.group(1) if m else text


def _glued(path) -> list[re.Pattern]:
    """The names a notebook glues, as patterns: an f-string name's {...} parts match any word, and a
    chapter's helper (``glue_diff("ch15_gap", ...)``) may glue the name with suffixes."""
    out = []
    for cell, src in _cells_of(path):
        if cell["cell_type"] == "code":
            for func, is_f, _, name in GLUE_CALL.findall(src):
                parts = re.split(r"\{[^}]*\}", name) if is_f else [name]
                tail = "$" if func == "glue" else "[\\w-]*$"
                out.append(re.compile("[\\w-]+".join(map(re.escape, parts)) + tail))
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_reference_exists(path):
    labels = _labels()
    refs = [(role, _target(t)) for cell, src in _cells_of(path) if cell["cell_type"] == "markdown"
            for role, t in ROLE.findall(src)]
    missing = sorted({f"{role}:{t}" for role, t in refs if t not in labels})
    assert not missing, f"{path.name} refers to labels that do not exist: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_glue_role_is_glued_in_its_notebook(path):
    glued = _glued(path)
    used = {n for cell, src in _cells_of(path) if cell["cell_type"] == "markdown" for n in GLUE_ROLE.findall(src)}
    missing = sorted(n for n in used if not any(g.match(n) for g in glued))
    assert not missing, f"{path.name}: glue names used in the prose but never glued: {missing}"


def test_the_reference_and_glue_checks_can_fail():
    labels = _labels()
    assert {"ch-training", "eq-ce", "eq-ch03-conv", "fig-ch03-curves"} <= labels  # the scan finds labels
    assert "ch-no-such-chapter" not in labels and "eq-ch03-no-such" not in labels
    assert _target("the probe exercise <ch10-ex-probe>") == "ch10-ex-probe" and "ch10-ex-probe" in labels
    ch3 = ROOT / "notebooks" / "03_training_loop.ipynb"
    glued = _glued(ch3)
    assert any(g.match("ch03_conv_max_diff") for g in glued) and not any(g.match("ch03_no_such") for g in glued)
    ch8 = [g for g in _glued(ROOT / "notebooks" / "08_masked_language_modelling.ipynb")]
    assert any(g.match("ch08_mask_model_loss") for g in ch8)  # from glue(f"ch08_{kind}_model_loss", ...)
    assert not any(g.match("ch09_mask_model_loss") for g in ch8)
    ch15 = _glued(ROOT / "notebooks" / "15_trends_and_challenges.ipynb")
    assert any(g.match("ch15_gap") for g in ch15)  # glued by the chapter's glue_diff helper

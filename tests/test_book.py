"""Tests that keep the book honest: clean notebooks, a complete table of contents,
and "build it" cells that are the library's code, not a drifting copy."""

import ast
import importlib
import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SYNC = re.compile(r"^# ptutils: ([\w.]+)\s*$")


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


def resolve(dotted: str):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


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
    obj = resolve(name)
    body = "\n".join(code.splitlines()[1:])
    assert normalised(body) == normalised(inspect.getsource(obj)), (
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

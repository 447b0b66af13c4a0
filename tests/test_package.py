"""The package's shape: every module reachable from ``import ptutils``, no name shadowing a module."""

import ast
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ptutils

ROOT = Path(__file__).resolve().parents[1]


def _modules():
    return sorted(m.name for m in pkgutil.walk_packages(ptutils.__path__, "ptutils.") if not m.name.endswith("__main__"))


def test_every_module_is_reachable_from_import_ptutils():
    """A fresh interpreter: after ``import ptutils`` alone, ``ptutils.X.Y`` works for every module."""
    code = ("import ptutils, functools, operator\n"
            "mods = %r\n"
            "missing = [m for m in mods if not hasattr(functools.reduce(getattr, m.split('.')[1:-1], ptutils), m.split('.')[-1])]\n"
            "print(missing)" % _modules())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"not reachable from `import ptutils`: {out}"


def test_no_exported_name_shadows_a_module():
    """``ptutils.attention`` is the module (not a function of the same name), and so on for every module."""
    import types

    for name in _modules():
        parts = name.split(".")
        parent = ptutils
        for p in parts[1:-1]:
            parent = getattr(parent, p)
        obj = getattr(parent, parts[-1])
        assert isinstance(obj, types.ModuleType), f"{name} is shadowed by {type(obj).__name__} {obj!r}"
    m = __import__("ptutils.attention", fromlist=["AttentionPooling"])
    assert m.AttentionPooling.__name__ == "AttentionPooling"


def test_api_page_names_only_reachable_modules():
    text = (ROOT / "book" / "api.md").read_text()
    named = re.findall(r"automodule:: (ptutils[\w.]*)", text)
    assert named and set(named) <= set(_modules()) | {"ptutils"}
    undocumented = set(_modules()) - set(named) - {"ptutils.classroom.__main__"}
    assert not undocumented, f"modules missing from book/api.md: {sorted(undocumented)}"


def test_all_lists_only_real_names():
    for name in ptutils.__all__:
        assert hasattr(ptutils, name), name


@pytest.mark.parametrize("path", sorted((ROOT / "ptutils").rglob("*.py")), ids=lambda p: p.name)
def test_concept_modules_do_not_import_the_notebook_layer(path):
    """Concept modules do not depend on notebook set-up (device and switches live in config)."""
    if path.name in ("notebook.py", "__init__.py") or "classroom" in path.parts:
        return
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("notebook", "ptutils.notebook"):
            pytest.fail(f"{path.name} imports from the notebook set-up module")

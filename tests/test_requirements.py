"""The package says what it needs: pyproject.toml declares it, requirements.txt pins exactly that.

requirements.txt is generated from pyproject.toml by tools/pin_requirements.py (the closure of
the dependencies and every extra, at the installed versions); these tests fail when the two
drift apart, when code imports a package nothing declares, or when a pin needs a newer Python
than ``requires-python`` admits.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("pin_requirements", ROOT / "tools" / "pin_requirements.py")
pin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pin)

PINS = pin.read_pins(ROOT / "requirements.txt")


def test_requirements_txt_is_the_resolved_set_of_pyproject():
    want = pin.closure(pin.roots())
    assert sorted(set(PINS) - set(want)) == [], "pinned, but nothing in pyproject.toml needs it"
    assert sorted(set(want) - set(PINS)) == [], "needed by pyproject.toml, but not pinned"
    moved = {n: (PINS[n], want[n]) for n in PINS if want[n] != PINS[n]}
    assert not moved, f"pinned version != installed version (pin, installed): {moved}"
    assert (ROOT / "requirements.txt").read_text() == pin.render(PINS), \
        "requirements.txt is not in the generated form: run tools/pin_requirements.py"


def test_every_declared_requirement_admits_its_pin():
    for req in pin.roots():
        name = canonicalize_name(req.name)
        assert name in PINS, f"{req} is declared but not pinned"
        assert req.specifier.contains(PINS[name], prereleases=True), f"{req} does not admit the pin {PINS[name]}"


def test_requires_python_admits_no_python_the_base_pins_refuse():
    """A pip user on the oldest Python that ``requires-python`` admits can install the tested base
    set. (Extras may need more: soupsieve, under the book's beautifulsoup, wants 3.11.5.)"""
    floor = pin.project()["requires-python"]
    assert floor.startswith(">="), floor
    oldest = floor[2:].strip()
    refuse = {}
    for name in pin.closure(pin.roots(extras=[])):
        needs = metadata.distribution(name).metadata.get("Requires-Python")
        if needs and not SpecifierSet(needs).contains(oldest + ".0"):
            refuse[name] = needs
    assert not refuse, f"requires-python {floor} admits Python {oldest}, which these pins refuse: {refuse}"


def _third_party_imports(paths) -> set[str]:
    std = set(sys.stdlib_module_names)
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found |= {n.split(".")[0] for n in names} - std
    return found - {"ptutils", "_distributed_traps", "_distributed_worker", "conftest"}


def _undeclared(modules: set[str], extras: list[str]) -> list[str]:
    have = set(pin.closure(pin.roots(extras=extras)))
    providers = metadata.packages_distributions()
    missing = []
    for mod in sorted(modules):
        dists = {canonicalize_name(d) for d in providers.get(mod, [])}
        if not dists & have:
            missing.append(f"{mod} (from {sorted(dists) or 'no installed distribution'})")
    return missing


def test_the_package_imports_only_what_its_base_dependencies_bring():
    mods = _third_party_imports(sorted((ROOT / "ptutils").rglob("*.py")))
    assert {"torch", "transformers", "nbformat", "gensim"} <= mods  # the scan sees real imports
    assert _undeclared(mods, extras=[]) == []


def test_the_library_tests_need_only_the_test_extra():
    mods = _third_party_imports(sorted((ROOT / "tests").glob("*.py")))
    assert {"pytest", "sentence_transformers"} <= mods
    assert _undeclared(mods, extras=["test"]) == []


def test_the_scan_catches_an_undeclared_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\nimport jupyterlab\nfrom torch import nn\nfrom . import x\n")
    mods = _third_party_imports([f])
    assert mods == {"jupyterlab", "torch"}
    assert _undeclared(mods, extras=[]) == ["jupyterlab (from ['jupyterlab'])"]


def test_pins_are_checked_for_form(tmp_path):
    bad = tmp_path / "requirements.txt"
    bad.write_text("torch==2.13.0\nnumpy>=2\n")
    with pytest.raises(ValueError, match="name==version"):
        pin.read_pins(bad)
    bad.write_text("torch==2.13.0\nTorch==2.13.0\n")
    with pytest.raises(ValueError, match="twice"):
        pin.read_pins(bad)


def test_extras_resolve_and_the_dev_extra_is_all_of_them():
    table = pin.project()["optional-dependencies"]
    assert {"test", "book", "classroom", "lab", "dev"} <= set(table)
    dev = {str(r) for r in pin.roots(extras=["dev"])}
    every = {str(r) for r in pin.roots()}
    assert dev == every
    with pytest.raises(KeyError, match="no extra"):
        pin.roots(extras=["nonexistent"])
    assert Requirement("jupyter-book>=1.0.4,<2") in [Requirement(r) for r in table["book"]]

"""The book build cannot show outputs of an older library: the execution cache is keyed on it.

``tools/build_cache.py`` hashes the library and clears Jupyter Book's execution cache
when the hash changes (see its docstring). These tests pin what goes into the key,
what ``prepare``/``finish`` do, that the Makefile's ``book`` target uses them, and, end
to end on a one-page book, that a library change reaches the built page.
"""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_cache", ROOT / "tools" / "build_cache.py")
build_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_cache)


@pytest.fixture
def book(tmp_path):
    """A small copy of the repository's layout: library, package data, requirements, pages."""
    for rel, text in {
        "ptutils/__init__.py": "from .core import answer\n",
        "ptutils/core.py": "def answer():\n    return 41\n",
        "ptutils/datasets/toy/data.txt": "a b c\n",
        "requirements.txt": "torch==2.13.0\n",
        "notebooks/01_x.ipynb": "{}\n",
        "book/intro.md": "# Intro\n",
        "tests/test_x.py": "def test(): pass\n",
        "README.md": "readme\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def key(root):
    return build_cache.library_key(root, environment=False)


@pytest.mark.parametrize("rel", ["ptutils/core.py", "ptutils/__init__.py", "ptutils/datasets/toy/data.txt",
                                 "requirements.txt"])
def test_a_library_change_changes_the_key(book, rel):
    before = key(book)
    (book / rel).write_text((book / rel).read_text() + "# changed\n")
    assert key(book) != before, f"changing {rel} must change the build key"


def test_a_new_or_renamed_library_file_changes_the_key(book):
    before = key(book)
    (book / "ptutils" / "extra.py").write_text("")
    added = key(book)
    assert added != before
    (book / "ptutils" / "extra.py").rename(book / "ptutils" / "other.py")
    assert key(book) not in (before, added), "the key hashes file names, not only contents"


@pytest.mark.parametrize("rel", ["notebooks/01_x.ipynb", "book/intro.md", "tests/test_x.py", "README.md",
                                 "ptutils/__pycache__/core.cpython-311.pyc", "ptutils/.DS_Store"])
def test_unrelated_files_do_not_change_the_key(book, rel):
    before = key(book)
    (book / rel).parent.mkdir(parents=True, exist_ok=True)
    (book / rel).write_text("something else\n")
    assert key(book) == before, f"{rel} is not library code; the notebooks' own cells are jupyter-cache's key"


def test_the_key_is_deterministic_and_covers_the_environment(book):
    assert key(book) == key(book)
    assert build_cache.library_key(book) == build_cache.library_key(book)
    assert build_cache.library_key(book) != key(book)
    env = build_cache.environment_description()
    assert env.startswith("python ") and re.search(r"^torch==", env, re.M), "installed versions are part of the key"
    assert not re.search(r"^ptutils==", env, re.M | re.I)


def test_an_exported_switch_changes_the_key(book, monkeypatch):
    monkeypatch.delenv("PTUTILS_ONLINE", raising=False)
    before = build_cache.library_key(book)
    monkeypatch.setenv("PTUTILS_ONLINE", "1")
    assert build_cache.library_key(book) != before, "outputs made online are not offline outputs"
    assert key(book) == key(book)  # environment=False ignores it


def test_the_repository_key_covers_modules_and_package_data():
    files = {p.relative_to(ROOT).as_posix() for p in build_cache.library_files(ROOT)}
    assert {"ptutils/__init__.py", "ptutils/mlm.py", "requirements.txt"} <= files
    assert any(f.startswith("ptutils/datasets/") for f in files), "package data is library too"
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


def fill_build_dir(build):
    for name in (".jupyter_cache", ".doctrees", "html"):
        (build / name).mkdir(parents=True, exist_ok=True)
        (build / name / "entry").write_text("x")


def test_prepare_clears_the_caches_only_when_the_library_changed(book):
    build = book / "_build"
    fill_build_dir(build)
    assert build_cache.prepare(book, build), "no key stored yet: the old cache is of unknown origin"
    assert not (build / ".jupyter_cache").exists() and not (build / ".doctrees").exists()
    assert (build / "html" / "entry").exists(), "the site itself is rewritten by Sphinx, not deleted"
    assert build_cache.stored_key(build) == build_cache.library_key(book)

    fill_build_dir(build)
    assert not build_cache.prepare(book, build), "warm build, nothing changed: keep the cache"
    assert (build / ".jupyter_cache" / "entry").exists() and (build / ".doctrees" / "entry").exists()

    (book / "notebooks" / "01_x.ipynb").write_text('{"changed": 1}\n')
    assert not build_cache.prepare(book, build), "a changed notebook is jupyter-cache's business"

    (book / "ptutils" / "core.py").write_text("def answer():\n    return 42\n")
    assert build_cache.prepare(book, build)
    assert not (build / ".jupyter_cache").exists() and not (build / ".doctrees").exists()


def test_finish_forgets_the_key_if_the_library_changed_during_the_build(book):
    build = book / "_build"
    build_cache.prepare(book, build)
    assert build_cache.finish(book, build) and build_cache.stored_key(build) is not None
    (book / "ptutils" / "core.py").write_text("def answer():\n    return 43\n")  # edited mid-build
    assert not build_cache.finish(book, build)
    assert build_cache.stored_key(build) is None
    fill_build_dir(build)
    assert build_cache.prepare(book, build), "the next build starts from an empty cache"


def test_the_command_line(book, tmp_path, capsys):
    assert build_cache.main(["bogus"]) == 2
    assert build_cache.main(["prepare", str(tmp_path / "b")]) == 0
    assert build_cache.main(["finish", str(tmp_path / "b")]) == 0
    assert "build cache:" in capsys.readouterr().out


def makefile_recipe(target):
    text = (ROOT / "Makefile").read_text()
    m = re.search(rf"^{target}:.*\n((?:\t.*\n|[ \t]*\\?\n)*)", text, re.M)
    assert m, f"no {target} target in the Makefile"
    return m.group(1)


@pytest.mark.parametrize("target, build_dir", [("book", "_build"), ("site-fast", "$(FAST_SITE)/_build")])
def test_make_book_keys_the_cache_on_the_library(target, build_dir):
    """make book (full mode) and make site-fast (CI's fast-mode site) both key their cache on the library."""
    recipe = makefile_recipe(target)
    prepare, build, finish = (recipe.find(s) for s in (f"build_cache.py prepare {build_dir}", "jupyter-book build",
                                                        f"build_cache.py finish {build_dir}"))
    assert -1 not in (prepare, build, finish), recipe
    assert prepare < build < finish, "prepare before the build, finish after it"
    assert re.search(r"jupyter-book build[^\n]*;[^\n]*status=\$\$\?", recipe), \
        "finish must run after a failed build too (it forgets a key the build may have outlived)"


JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"


@pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="jupyter-book is not installed next to this Python")
def test_a_library_change_reaches_the_built_page(tmp_path):
    """End to end: without ``prepare`` the page keeps the old output; with it, the new one."""
    (tmp_path / "ptutils").mkdir()
    (tmp_path / "ptutils" / "value.txt").write_text("first-value")
    (tmp_path / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: cache\n  timeout: 120\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Page"},
                    {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": "print(open('ptutils/value.txt').read())"}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "page.ipynb").write_text(json.dumps(nb))
    html = tmp_path / "_build" / "html" / "page.html"

    def build():
        r = subprocess.run([str(JUPYTER_BOOK), "build", ".", "--builder", "html"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        return html.read_text()

    build_cache.prepare(tmp_path, tmp_path / "_build")
    assert "first-value" in build()
    (tmp_path / "ptutils" / "value.txt").write_text("second-value")
    assert "first-value" in build(), "the failure this guards against: a library change alone is not noticed"
    assert build_cache.prepare(tmp_path, tmp_path / "_build")
    page = build()
    assert "second-value" in page and "first-value" not in page
    shutil.rmtree(tmp_path / "_build", ignore_errors=True)

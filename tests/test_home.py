"""The book's public home lives in one place (``_config.yml``'s ``repository.url``).

``tools/set_home.py`` writes it into the site's buttons and every chapter's Colab cell; these
tests fail when any of them, or any page, names another home.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("set_home", ROOT / "tools" / "set_home.py")
set_home = importlib.util.module_from_spec(spec)
spec.loader.exec_module(set_home)

#: Installing the book from a repository: the one kind of URL that must be the home.
INSTALL_RE = re.compile(r"git\+(https?://[^\s\"'`)>]+)|BOOK_HOME = \"([^\"]*)\"")


def pages(root: Path) -> list[Path]:
    return sorted([*root.glob("book/*.md"), root / "README.md", root / "_config.yml",
                   *root.glob("notebooks/*.ipynb")])


def other_homes(root: Path) -> list[str]:
    """Every page that installs the book from a URL that is not the configured home."""
    home = set_home.read_home(root)
    found = []
    for path in pages(root):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        for url in (a or b for a, b in INSTALL_RE.findall(text)):
            if url not in (home, "{BOOK_HOME}"):
                found.append(f"{path.relative_to(root)}: installs from {url}, the home is {home or '(none)'}")
        if "ptutils/pretrained-models-book" in text:  # the placeholder that was never a real repository
            found.append(f"{path.relative_to(root)}: names the placeholder github.com/ptutils/pretrained-models-book")
    return found


def test_every_place_agrees_with_the_configured_home():
    assert set_home.problems(ROOT) == []


def test_no_page_installs_the_book_from_another_home():
    assert other_homes(ROOT) == []


def test_the_colab_cell_is_the_first_code_cell_and_installs_from_the_home():
    cell = set_home.colab_cell("https://github.com/owner/repo")
    assert 'BOOK_HOME = "https://github.com/owner/repo"' in cell
    assert '%pip install -q "ptutils @ git+{BOOK_HOME}"' in cell
    assert 'BOOK_HOME = ""' in set_home.colab_cell("")


@pytest.fixture()
def book(tmp_path):
    """A copy of the configuration and the notebooks, to change."""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".*"))
    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "book" / "setup.md", tmp_path / "book" / "setup.md")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def test_setting_a_home_writes_every_place_and_back(book):
    set_home.set_home("https://github.com/owner/repo", book)
    assert set_home.read_home(book) == "https://github.com/owner/repo"
    assert set_home.problems(book) == []
    config = (book / "_config.yml").read_text()
    assert 'colab_url: "https://colab.research.google.com"' in config
    assert "use_repository_button: true" in config
    assert other_homes(book) == []
    set_home.set_home("", book)
    assert set_home.problems(book) == []
    assert (book / "_config.yml").read_text() == (ROOT / "_config.yml").read_text()
    for path in (book / "notebooks").glob("*.ipynb"):  # byte for byte: nothing else in a notebook moves
        assert path.read_bytes() == (ROOT / "notebooks" / path.name).read_bytes(), path.name


def test_a_notebook_with_another_home_is_caught(book):
    path = sorted((book / "notebooks").glob("*.ipynb"))[3]
    nb = json.loads(path.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["source"] = set_home.colab_cell("https://github.com/someone/else").splitlines(keepends=True)
    path.write_text(json.dumps(nb, indent=1))
    found = set_home.problems(book)
    assert len(found) == 1 and path.name in found[0]
    assert any("someone/else" in line for line in other_homes(book))


def test_a_config_button_without_a_home_is_caught(book):
    config = book / "_config.yml"
    config.write_text(config.read_text().replace("use_repository_button: false", "use_repository_button: true"))
    assert any("use_repository_button" in line for line in set_home.problems(book))


def test_a_page_that_installs_from_elsewhere_is_caught(book):
    page = book / "book" / "setup.md"
    page.write_text(page.read_text() + '\n```bash\npip install "ptutils @ git+https://github.com/x/y"\n```\n')
    assert any("setup.md" in line and "x/y" in line for line in other_homes(book))


@pytest.mark.parametrize("url", ["http://github.com/a/b", "https://github.com/a/b/", "https://github.com/a/b.git x",
                                 "https://gitlab.com/a/b", "github.com/a/b", "https://github.com/a"])
def test_a_url_that_cannot_be_the_home_is_refused(book, url):
    with pytest.raises(ValueError, match="not a GitHub repository URL"):
        set_home.set_home(url, book)
    assert set_home.problems(book) == []  # nothing was half-written


def test_the_command_line(book, capsys):
    assert set_home.main([], book) == 0
    assert set_home.main(["https://github.com/owner/repo"], book) == 0
    assert set_home.main([], book) == 0
    assert set_home.main(["not a url"], book) == 2
    assert "not a GitHub repository URL" in capsys.readouterr().err
    nb = sorted((book / "notebooks").glob("*.ipynb"))[0]
    nb.write_text(nb.read_text().replace("owner/repo", "owner/other"))
    assert set_home.main([], book) == 1
    assert "01_" in capsys.readouterr().err
    (book / "_config.yml").unlink()
    assert set_home.main([], book) == 2
    with pytest.raises(SystemExit) as exit_:
        set_home.main(["--help"], book)
    assert exit_.value.code == 0

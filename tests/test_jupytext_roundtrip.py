"""Editing a chapter as text with jupytext gives back the committed notebook exactly.

The README's commands ("Editing a chapter as text"):

    jupytext --to md:myst notebooks/NN.ipynb -o /tmp/NN.md
    jupytext --update --to ipynb /tmp/NN.md -o notebooks/NN.ipynb

The first command reads the repository's jupytext.toml, which it finds from the notebook's folder.
The second finds no configuration, because the text copy lives outside the repository.
``--update`` takes what the text form does not hold (cell ids, ``language_info``) from the committed
notebook. The helpers below do what the CLI does, through jupytext's Python API, with the
configuration looked up the same way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.combine import combine_inputs_with_outputs
from jupytext.config import find_jupytext_configuration_file, load_jupytext_config
from jupytext.formats import long_form_one_format

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONFIG = ROOT / "jupytext.toml"
JUPYTEXT = Path(sys.executable).with_name("jupytext")
FMT = "md:myst"


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    """Keep out any jupytext.toml in the user's or the system's config folders. jupytext falls back
    to those when no folder above the file holds a configuration, as happens for the text copy."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-user-config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "no-system-config"))


def _ends_with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"  # as the CLI writes files


def to_text(ipynb: Path) -> str:
    """`jupytext --to md:myst ipynb -o ...`: the text the CLI writes."""
    config = load_jupytext_config(str(ipynb.resolve()))
    nb = jupytext.read(ipynb, fmt={"extension": ".ipynb"}, config=config)
    return _ends_with_newline(jupytext.writes(nb, fmt=long_form_one_format(FMT), config=config))


def to_ipynb(md: Path, ipynb: Path) -> str:
    """`jupytext --update --to ipynb md -o ipynb`: the file the CLI writes over ``ipynb``."""
    config = load_jupytext_config(str(md.resolve()))
    fmt = {"extension": ".md"}
    text_nb = jupytext.read(md, fmt=fmt, config=config)
    nb = combine_inputs_with_outputs(text_nb, jupytext.read(ipynb), fmt=fmt)
    return _ends_with_newline(jupytext.writes(nb, fmt={"extension": ".ipynb"}, config=config))


def chapter_copy(tmp_path: Path, nb: nbformat.NotebookNode, name: str = "99_x.ipynb") -> Path:
    """A repository-shaped folder in tmp_path (jupytext.toml, notebooks/NAME) holding ``nb``."""
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(CONFIG, repo / "jupytext.toml")
    path = repo / "notebooks" / name
    nbformat.write(nb, path)
    return path


def round_trip(tmp_path: Path, ipynb: Path) -> tuple[str, dict]:
    """Both documented commands, the text copy outside the repository: (text, notebook JSON)."""
    text = to_text(ipynb)
    md = tmp_path / "text" / (ipynb.stem + ".md")
    md.parent.mkdir(exist_ok=True)
    md.write_text(text, encoding="utf-8")
    return text, json.loads(to_ipynb(md, ipynb))


def content(nb) -> list:
    """What the text form must hold on its own: each cell's type, source and metadata."""
    return [(c["cell_type"], "".join(c["source"]), c["metadata"]) for c in nb["cells"]]


def test_the_commands_read_the_repository_configuration_one_way_and_none_the_other(tmp_path):
    assert find_jupytext_configuration_file(str(NOTEBOOKS[0])) == str(CONFIG)
    assert load_jupytext_config(str(tmp_path / "01.md")) is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_chapter_survives_the_round_trip_exactly(path, tmp_path):
    committed = json.loads(path.read_text(encoding="utf-8"))
    text, back = round_trip(tmp_path, path)
    assert text.startswith("---\njupytext:\n") and "format_name: myst" in text
    assert "jupytext_version" not in text, "jupytext.toml keeps the release out of the header"
    # The text alone holds every cell with its metadata (tags, mystnb captions); --update adds only the ids.
    assert content(jupytext.reads(text, FMT)) == content(nbformat.from_dict(committed))
    for i, (want, got) in enumerate(zip(committed["cells"], back["cells"])):
        assert got == want, f"{path.name}: cell {i} ({want['id']}) changed in the round trip"
    assert back == committed
    for cell in back["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def _run(*args, cwd):
    done = subprocess.run([str(JUPYTEXT), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_the_documented_commands_give_back_the_committed_file_byte_for_byte(tmp_path):
    chapter = NOTEBOOKS[0]
    path = chapter_copy(tmp_path, nbformat.read(chapter, as_version=4), chapter.name)
    assert path.read_bytes() == chapter.read_bytes()
    repo, md = path.parents[1], tmp_path / "text" / "01.md"
    md.parent.mkdir()
    _run("--to", "md:myst", f"notebooks/{chapter.name}", "-o", str(md), cwd=repo)
    assert md.read_text(encoding="utf-8") == to_text(chapter), "the API helpers do what the CLI does"
    _run("--update", "--to", "ipynb", str(md), "-o", f"notebooks/{chapter.name}", cwd=repo)
    assert path.read_bytes() == chapter.read_bytes()
    # Without --update the file is replaced: jupytext invents new cell ids and drops language_info.
    _run("--to", "ipynb", str(md), "-o", f"notebooks/{chapter.name}", cwd=repo)
    plain = json.loads(path.read_text(encoding="utf-8"))
    committed = json.loads(chapter.read_text(encoding="utf-8"))
    assert [c["id"] for c in plain["cells"]] != [c["id"] for c in committed["cells"]]
    assert "language_info" not in plain["metadata"]
    assert content(plain) == content(committed)


def test_an_edit_in_the_text_keeps_every_other_cell_and_its_id(tmp_path):
    chapter = NOTEBOOKS[0]
    committed = json.loads(chapter.read_text(encoding="utf-8"))
    path = chapter_copy(tmp_path, nbformat.read(chapter, as_version=4), chapter.name)
    text = to_text(path)
    assert text.count("# Why pre-training\n") == 1
    text = text.replace("# Why pre-training\n", "# Why pre-train\n")
    # A new code cell between the title cell and the Colab cell.
    text = text.replace("\n```{code-cell}\n", "\n```{code-cell}\n:tags: [hide-input]\n\nnew = 1\n```\n\n```{code-cell}\n", 1)
    md = tmp_path / "01.md"
    md.write_text(text, encoding="utf-8")
    path.write_text(to_ipynb(md, path), encoding="utf-8")
    back = nbformat.read(path, as_version=4)
    nbformat.validate(back)
    new = [c for c in back.cells if c.source == "new = 1"]
    assert len(new) == 1 and new[0].metadata == {"tags": ["hide-input"]}
    assert new[0].outputs == [] and new[0].execution_count is None
    old = [c for c in back.cells if c is not new[0]]
    assert [c.id for c in old] == [c["id"] for c in committed["cells"]]
    assert new[0].id not in {c["id"] for c in committed["cells"]}
    assert old[0].source.startswith("(ch-background)=\n# Why pre-train\n")
    assert [c.source for c in old[1:]] == ["".join(c["source"]) for c in committed["cells"][1:]]


HOSTILE_MARKDOWN = [
    # Lines that other text forms take for cell markers: `%% md`, `%% code ...`, and the percent format's `# %%`.
    "%% md\n%% code tags=a,b\n%% code meta={\"x\": 1}\n# %%\n# %% [markdown]\nText after them.",
    # A MyST code cell shown in a fenced block: four backticks, or tildes, around it.
    "An example cell:\n\n````markdown\n```{code-cell}\n:tags: [hide-input]\nprint(1)\n```\n+++\n````\n\nAfter it.",
    "~~~text\n```{code-cell} ipython3\nx = 1\n```\n%% code\n+++ {\"tags\": []}\n---\n~~~",
    # Markdown that looks like YAML front matter, and a directive with options.
    "---\ntitle: not a header\n---\n\n```{figure} x.png\n:name: fig-x\n\nCaption.\n```",
]


def _hostile_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nb.cells.append(nbformat.v4.new_markdown_cell("(ch-x)=\n# X"))
    for i, source in enumerate(HOSTILE_MARKDOWN):
        # Markdown-cell metadata too: the old tool dropped it.
        nb.cells.append(nbformat.v4.new_markdown_cell(source, metadata={"tags": ["remove-cell"], "n": i}))
        nb.cells.append(nbformat.v4.new_code_cell("pass", metadata={"tags": ["hidden-test"]}))
    nb.cells.append(nbformat.v4.new_code_cell(
        "# %%\nx = 1\n# %% [markdown]\ns = '''\n```{code-cell}\n```\n+++\n'''",
        metadata={"mystnb": {"figure": {"caption": "A caption: with `code`, $x$ and a {glue:text}`n` role.",
                                        "name": "fig-x"}}, "tags": ["hide-input", "remove-cell"]}))
    nb.cells.append(nbformat.v4.new_code_cell("%time x = 2\n!echo {x}"))
    for i, cell in enumerate(nb.cells):
        cell.id = f"h{i:03d}"
    return nb


def test_hostile_markdown_and_code_survive_the_round_trip(tmp_path):
    path = chapter_copy(tmp_path, _hostile_notebook())
    text, back = round_trip(tmp_path, path)
    assert back == json.loads(path.read_text(encoding="utf-8"))
    assert content(jupytext.reads(text, FMT)) == content(_hostile_notebook())


@pytest.mark.parametrize("cell, became", [
    # A top-level `+++` line is MyST's cell break: the cell is split in two.
    (nbformat.v4.new_markdown_cell("Text\n\n+++\n\nMore"), [("markdown", "Text"), ("markdown", "More")]),
    # A top-level {code-cell} fence in a Markdown cell is a code cell in MyST text.
    (nbformat.v4.new_markdown_cell("```{code-cell}\nprint(3)\n```"), [("code", "print(3)")]),
    # Blank lines at the start of a cell, and newlines at its end, are dropped (a code cell loses one).
    (nbformat.v4.new_markdown_cell("\nText\n\n"), [("markdown", "Text")]),
    (nbformat.v4.new_code_cell("\nx = 1\n\n"), [("code", "x = 1\n")]),
])
def test_what_the_text_form_cannot_hold(cell, became, tmp_path):
    """The limits listed in the README. No chapter contains these (the round-trip test above would fail
    for it). If this test fails, jupytext now keeps the construct: update the README."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("intro"), cell,
                                         nbformat.v4.new_code_cell("pass")])
    _, back = round_trip(tmp_path, chapter_copy(tmp_path, nb))
    assert [(c["cell_type"], "".join(c["source"])) for c in back["cells"][1:-1]] == became

"""Student notebooks read in plain Jupyter and Colab: no raw MyST roles, glued values named.

The website fills ``{glue:text}`name:fmt``` with a computed number; a notebook opened
outside it would show the role itself. ``python -m ptutils.classroom`` replaces each glue
role by ``**[`name`]**`` and a note saying which code cell prints the value, and the other
MyST roles by text (``ptutils.classroom.plain``); the site copy keeps the MyST.
"""

import re
from pathlib import Path

import nbformat
import pytest

from ptutils.classroom import plain
from ptutils.classroom import student as classroom
from ptutils.classroom.glue import glue

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
GLUE_ROLE = re.compile(r"\{glue(?::\w*)?\}`(?:[^`:]*::)?([^`:]+)")


def _nb(*cells):
    """A notebook from ("md"|"code", source[, metadata]) tuples."""
    nb = nbformat.v4.new_notebook()
    for kind, source, *meta in cells:
        c = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        if meta:
            c.metadata.update(meta[0])
        nb.cells.append(c)
    return nb


def _md(source, *code, index=None):
    """The plain version of one Markdown cell placed after the given code cells."""
    nb = plain.plain_notebook(_nb(*[("code", c) for c in code], ("md", source)), "x.ipynb", index)
    return nb.cells[-1].source


# ---------------------------------------------------------------- the real chapters
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    classroom.build(ROOT / "notebooks", out, site_dir=out / "site")
    return out


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_handout_markdown_has_no_raw_roles(path, built):
    ref = classroom.student_version(nbformat.read(path, as_version=4))
    hand = nbformat.read(built / "notebooks" / path.name, as_version=4)
    site = nbformat.read(built / "site" / path.name, as_version=4)
    md = [c.source for c in hand.cells if c.cell_type == "markdown"]
    for text in md:
        assert "{glue" not in text, text[:300]
        assert plain.raw_roles(text, plain.REPLACED_ROLES) == [], text[:300]
        for marker in ("{footbibliography}", "{exercise-start}", "{exercise-end}", "{mermaid}"):
            assert marker not in text
        assert not re.search(r"^\s*\([\w\-]+\)=\s*$", text, re.M), "a (label)= target is left"
        if "**[`" in text:  # every placeholder is explained in its cell
            assert "*The values in **[brackets]** appear when you run the notebook:" in text
    names = [n for c in ref.cells if c.cell_type == "markdown" for n in GLUE_ROLE.findall(c.source)]
    joined = "\n".join(md)
    assert all(f"**[`{n}`]**" in joined for n in names), "a glued value lost its placeholder"
    # the site copy is the student version with its MyST kept: the site fills in the values
    assert [c.source for c in site.cells] == [c.source for c in ref.cells]
    # code: only the glue import differs, and it points at the printing glue
    for a, b in zip(ref.cells, hand.cells):
        if a.cell_type == "code" and a.source != b.source:
            assert b.source == plain.student_glue_source(a.source) and plain.SHIM_IMPORT in b.source


def test_chapters_have_glue_roles_to_replace():
    """The test above checks something: the chapters do glue values into their prose."""
    n = sum(len(GLUE_ROLE.findall(c.source)) for p in CHAPTERS
            for c in nbformat.read(p, as_version=4).cells if c.cell_type == "markdown")
    assert n > 100


def test_glue_sources_agree_with_a_chapter():
    """On a real chapter every literal ``glue("name", ...)`` is found in the cell that has it."""
    nb = nbformat.read(ROOT / "notebooks" / "02_core_concepts.ipynb", as_version=4)
    src = plain.glue_sources(nb)
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            for _, name in plain.LITERAL_GLUE.findall(c.source):
                assert src[name] == {i}


# ---------------------------------------------------------------- the substitution, hostile inputs
GLUE_CELL = 'from myst_nb import glue\nglue("ch01_std", s, display=False)\nglue("ch01_n", n, display=False)'


def test_role_with_format_becomes_placeholder_and_note():
    out = _md("The spread is {glue:text}`ch01_std:.1%` over folds.", GLUE_CELL)
    assert out.startswith("The spread is **[`ch01_std`]** over folds.")
    assert out.endswith("*The values in **[brackets]** appear when you run the notebook: "
                        "`ch01_std` is computed by the code cell above.*")


def test_two_roles_on_a_line_and_the_other_glue_roles():
    out = _md("From {glue:text}`ch01_n:,` to {glue:text}`ch01_std:.2f`; {glue}`ch01_n`, "
              "{glue:}`ch01_n`, {glue:any}`ch01_n` and {glue:md}`ch01_std`.", GLUE_CELL)
    first = out.split("\n")[0]
    assert first == ("From **[`ch01_n`]** to **[`ch01_std`]**; **[`ch01_n`]**, **[`ch01_n`]**, "
                     "**[`ch01_n`]** and **[`ch01_std`]**.")
    assert "`ch01_n` and `ch01_std` are computed by the code cell above" in out


def test_roles_in_code_are_left_alone():
    src = ("Write ``{glue:text}`name:.1%` `` in the prose, or `{glue:text}` followed by the name.\n\n"
           "```markdown\nThe value is {glue:text}`ch01_std:.1%`.\n```\n\n"
           "```{code-block} md\n{glue:text}`ch01_std`\n```")
    out = _md(src, GLUE_CELL)
    assert out == src  # nothing replaced, so no note either
    assert plain.raw_roles(src) == []


def test_malformed_roles_are_left_and_reported():
    for src in ("An unclosed {glue:text}`ch01_std:.1% role.",
                "An empty {glue:text}`` role, then prose.",
                "A role across lines {glue:text}`ch01\n_std` here."):
        out = _md(src, GLUE_CELL)
        assert out == src
        assert plain.raw_roles(out), src


def test_malformed_role_stops_the_build(tmp_path):
    (tmp_path / "src").mkdir()
    nbformat.write(_nb(("code", GLUE_CELL), ("md", "Broken: {glue:text}`ch01_std:.1%")),
                   tmp_path / "src" / "01_x.ipynb")
    with pytest.raises(RuntimeError, match="glue roles"):
        classroom.build(tmp_path / "src", tmp_path / "out")


def test_role_then_code_span_on_one_line():
    out = _md("{glue:text}`ch01_n` sentences, see `glue()` and {glue:text}`ch01_std:.0%`.", GLUE_CELL)
    assert out.split("\n")[0] == "**[`ch01_n`]** sentences, see `glue()` and **[`ch01_std`]**."


def test_roles_inside_a_directive_body_are_replaced_but_options_kept():
    src = "```{exercise-start}\n:label: ch01-ex\n```\n**Check** {glue:text}`ch01_n` rows.\n```{exercise-end}\n```"
    out = _md(src, GLUE_CELL)
    assert out.startswith("**Exercise.**\n**Check** **[`ch01_n`]** rows.")
    assert "{exercise" not in out and ":label:" not in out


def test_glue_figure_directive():
    src = "```{glue:figure} ch01_fig\n:name: fig-x\n\nAccuracy at {glue:text}`ch01_n` labels.\n```"
    out = _md(src, 'glue("ch01_fig", fig, display=False)\nglue("ch01_n", 3, display=False)')
    assert out.startswith("**[figure `ch01_fig`]** Accuracy at **[`ch01_n`]** labels.")
    assert plain.raw_roles(src) and not plain.raw_roles(out)


def test_where_the_value_comes_from():
    nb = _nb(("md", "# Data"), ("code", 'glue("a_n", 1, display=False)'), ("md", "# Model"),
             ("code", "x = 1"), ("code", 'for k in ks:\n    glue(f"a_{k}_acc", 1, display=False)'),
             ("code", "y = 2"),
             ("md", "{glue:text}`a_n` and {glue:text}`a_small_acc` and {glue:text}`a_nowhere`"),
             ("md", "Early: {glue:text}`a_late`"), ("code", 'glue("a_late", 1, display=False)'))
    out = plain.plain_notebook(nb, "x.ipynb")
    note = out.cells[6].source.split("\n")[-1]
    assert "`a_n` is computed by a code cell above, in “Data”" in note
    assert "`a_small_acc` is computed by a code cell above" in note
    assert "`a_nowhere` is not computed in this version of the notebook" in note
    assert "`a_late` is computed by the code cell below" in out.cells[7].source


def test_glue_names_read_through_helpers_loops_and_assignments():
    helper = ('def glue_diff(key, d):\n    glue(key, d, display=False)\n    glue(f"{key}_ci", d, display=False)\n'
              'glue_diff("a_gaps", 1)\nglue_diff(f"a_{name}_gain", 2)')
    loop = ('for name, key in (("MiniLM", "strong"), ("TF-IDF", "weak")):\n    glue(f"a_{key}_tau", 1)\n'
            'for x, y in pairs:\n    k = f"a_{x[:3]}_{y[:3]}"\n    glue(k, 1)')
    magic = '%time glue(f"a_{z}_magic", 1)\nglue("a_plain", 2)'
    broken = 'glue(f"a_{q}_broken", 1)\nif True print(1)'
    src = plain.glue_sources(_nb(("code", helper), ("code", loop), ("code", broken)))
    assert src["a_gaps"] == src["a_gaps_ci"] == src["a_x_gain_ci"] == {0}  # through the helper's calls
    assert src["a_strong_tau"] == {1} and src["a_weak_tau"] == {1}
    assert src["a_sal_att"] == {1}  # x[:3]: at most three characters, so "a_saliency_att" is not it
    assert src["a_middle_tau"] == set()  # a loop over literals: strong and weak only
    assert src["a_q_broken"] == {2}  # not Python: its f-string read from the text
    assert src["a_saliency_att"] == set()
    # a glue call inside a magic is invisible to the syntax tree: that cell could glue any name
    src = plain.glue_sources(_nb(("code", helper), ("code", magic)))
    assert src["a_plain"] == {1} and src["a_k_magic"] == {1} and src["a_gaps"] == {0, 1}


def test_a_cell_that_starts_a_section_is_in_it():
    nb = _nb(("md", "# Data"), ("code", "x = 1"), ("md", "## Results\n\nIt is {glue:text}`a_r`."),
             ("code", 'glue("a_r", 1, display=False)'), ("md", "Still results; {glue:text}`a_r`.\n\n## Next"))
    out = plain.plain_notebook(nb)
    assert "`a_r` is computed by the code cell below." in out.cells[2].source
    assert "`a_r` is computed by the code cell above." in out.cells[4].source


def test_glue_sources_are_sound_when_unsure():
    nb = _nb(("code", 'glue("a_x", 1)'), ("code", 'glue(f"a_{k}_ci", 1)'), ("code", "def g(key):\n    glue(key, 1)"),
             ("code", 'glue(f"{key}", 1)'))
    src = plain.glue_sources(nb)
    assert src["a_x"] == {0}
    assert src["a_small_ci"] == {1, 2, 3}  # the pattern, and the two cells whose names cannot be read
    assert src["other"] == {2, 3}


def test_other_roles_become_text():
    idx = plain.Index(labels={"ch-ft": ("07_ft.ipynb", "Fine-tuning"), "sec-here": ("x.ipynb", "Here")},
                      bib={"pang2005": ("Pang and Lee", "2005", "Seeing stars"),
                           "kim2014": ("Kim", "2014", "CNNs")})
    src = ("See {ref}`ch-ft`, {ref}`the section <sec-here>`, {ref}`missing-label`, "
           "[the chapter](ch-ft), a {term}`probe <linear probe>`, a {term}`tokenizer`, "
           "{doc}`notation <../book/notation>`, {eq}`eq-ce`, {footcite}`pang2005,kim2014`, "
           "{footcite:t}`kim2014` and {footcite}`unknown`.\n\n(sec-x)=\n## Next\n\n```{footbibliography}\n```")
    out = _md(src, index=idx)
    assert out.startswith("See [Fine-tuning](07_ft.ipynb), the section, the section “missing-label”, "
                          "[the chapter](07_ft.ipynb), a probe, a tokenizer, notation, (eq-ce), "
                          "(Pang and Lee, 2005; Kim, 2014), Kim (2014) and [unknown].\n\n## Next\n\n")
    assert "- Pang and Lee (2005). *Seeing stars*." in out and "- [unknown]" in out
    assert plain.raw_roles(out, plain.REPLACED_ROLES) == []


def test_numref_points_at_the_figure():
    nb = _nb(("code", "plot()", {"mystnb": {"figure": {"name": "fig-a", "caption": "A."}}}),
             ("md", "{numref}`fig-a` shows it."))
    assert plain.plain_notebook(nb).cells[1].source == "the figure above shows it."


def test_parse_bib():
    bib = plain.parse_bib((ROOT / "book" / "references.bib").read_text())
    assert bib["vaswani2017attention"] == ("Vaswani et al.", "2017", "Attention Is All You Need")
    assert bib["devlin2019bert"][2].startswith("BERT: Pre-training")


# ---------------------------------------------------------------- the printing glue
def test_student_glue_prints_and_glues(capsys, monkeypatch):
    import myst_nb
    import numpy as np

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: calls.append((a, k)))
    glue("ch99_x", np.float64(0.123456789), display=False)
    glue("ch99_s", "better than", display=False)
    glue("ch99_shown", 3)  # display=True: myst-nb shows it, nothing printed
    assert capsys.readouterr().out.splitlines() == ["ch99_x = 0.123457", "ch99_s = better than"]
    assert [a[0] for a, _ in calls] == ["ch99_x", "ch99_s", "ch99_shown"]  # and myst-nb glued each
    assert calls[0][1] == {"display": False} and calls[2][1] == {"display": True}


def test_glue_import_rewrite_only_touches_the_import():
    code = "from myst_nb import glue\nx = 'from myst_nb import glue'\n    from myst_nb import glue\n"
    out = plain.student_glue_source(code)
    assert out.splitlines()[0] == plain.SHIM_IMPORT
    assert out.splitlines()[1] == "x = 'from myst_nb import glue'"
    assert out.splitlines()[2] == "    " + plain.SHIM_IMPORT


def test_note_says_computed_when_the_glue_does_not_print():
    stu = _nb(("code", "import myst_nb\nmyst_nb.glue('ch01_n', 3, display=False)"), ("md", "{glue:text}`ch01_n`"))
    assert "is computed by the code cell above" in classroom.handout_version(stu).cells[1].source
    stu.cells[0].source = "from myst_nb import glue\nglue('ch01_n', 3, display=False)"
    assert "is printed by the code cell above" in classroom.handout_version(stu).cells[1].source
    stu.cells.insert(1, nbformat.v4.new_code_cell("from myst_nb import glue as g"))
    assert "is computed by a code cell above" in classroom.handout_version(stu).cells[2].source


def test_cli_site_option(tmp_path):
    (tmp_path / "src").mkdir()
    nbformat.write(_nb(("code", GLUE_CELL), ("md", "{glue:text}`ch01_n` rows.")), tmp_path / "src" / "01_x.ipynb")
    assert classroom.main([str(tmp_path / "src"), str(tmp_path / "out"), "--site", str(tmp_path / "site")]) == 0
    hand = nbformat.read(tmp_path / "out" / "notebooks" / "01_x.ipynb", as_version=4)
    site = nbformat.read(tmp_path / "site" / "01_x.ipynb", as_version=4)
    assert hand.cells[1].source.startswith("**[`ch01_n`]** rows.")
    assert "is printed by the code cell above" in hand.cells[1].source
    assert site.cells[1].source == "{glue:text}`ch01_n` rows."
    assert classroom.main([str(tmp_path / "src"), str(tmp_path / "out"), "--site"]) == 2


# ---------------------------------------------------------------- the build's values, as an option
def _fake_build(tmp_path, code=GLUE_CELL):
    """A project with one chapter and a 'make book' build of it: executed copy, glue values, key."""
    import importlib.util
    import json
    import shutil

    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "build_cache.py", root / "tools" / "build_cache.py")
    nb = _nb(("code", GLUE_CELL), ("md", "Spread {glue:text}`ch01_std:.1%` over {glue:text}`ch01_n:,` rows; "
                                         "{glue:text}`ch01_missing`."))
    nbformat.write(nb, root / "notebooks" / "01_x.ipynb")
    ex = root / "_build" / "jupyter_execute" / "notebooks"
    ex.mkdir(parents=True)
    nb.cells[0].source = code
    nbformat.write(nb, ex / "01_x.ipynb")
    (ex / "01_x.glue.json").write_text(json.dumps({
        "ch01_std": {"data": {"text/plain": "0.03421"}, "output_type": "display_data"},
        "ch01_n": {"data": {"text/plain": "10662"}, "output_type": "display_data"}}))
    spec = importlib.util.spec_from_file_location("bc", root / "tools" / "build_cache.py")
    bc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bc)
    (root / "_build" / ".ptutils_hash").write_text(bc.library_key(root) + "\n")
    return root


def test_values_from_a_current_build_fill_the_text(tmp_path):
    root = _fake_build(tmp_path)
    classroom.build(root / "notebooks", tmp_path / "out", values_from=root / "_build")
    md = nbformat.read(tmp_path / "out" / "notebooks" / "01_x.ipynb", as_version=4).cells[1].source
    assert md.startswith("Spread 3.4% over 10,662 rows; **[`ch01_missing`]**.")
    assert "`ch01_missing` is not computed in this version of the notebook" in md  # no value: a placeholder
    assert "The other numbers were computed when the book was built" in md
    assert "`ch01_std` and `ch01_n` are printed by the code cell above" in md


@pytest.mark.parametrize("stale", ["code", "library"])
def test_values_from_a_stale_build_are_not_used(tmp_path, stale, capsys):
    root = _fake_build(tmp_path, code=GLUE_CELL + "\nglue('ch01_new', 1)" if stale == "code" else GLUE_CELL)
    if stale == "library":
        (root / "requirements.txt").write_text("torch\n")  # part of the library key
    classroom.build(root / "notebooks", tmp_path / "out", values_from=root / "_build")
    md = nbformat.read(tmp_path / "out" / "notebooks" / "01_x.ipynb", as_version=4).cells[1].source
    assert md.startswith("Spread **[`ch01_std`]** over **[`ch01_n`]** rows")
    assert ("code changed" if stale == "code" else "library or its environment") in capsys.readouterr().out

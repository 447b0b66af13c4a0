"""Student versions of the chapters, and the hidden tests a teacher grades with.

    ptutils-student notebooks/ student/ [--site student/site/notebooks] [--values _build] [--nbgrader student/nbgrader]

``python -m ptutils.classroom`` runs the same command. It writes, for every chapter
``notebooks/NN_topic.ipynb``:

* ``student/notebooks/NN_topic.ipynb``: the chapter with every solution removed.
  Code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
  ``raise NotImplementedError`` at the same indentation; solution prose and
  solution-only code cells (inside ``{solution-start}`` ... ``{solution-end}``) are
  dropped; hidden-test cells are dropped; outputs are cleared.
  Its Markdown reads in plain Jupyter and Colab: every glue role (a number the website
  fills in) becomes a bracketed name and a note saying which code cell prints it, and the
  other MyST roles become text (:mod:`ptutils.classroom.plain`); its ``glue`` calls print
  what they glue (:mod:`ptutils.classroom.glue`).
* ``student/hidden/NN_topic.ipynb``: the chapter's hidden-test cells (tag
  ``hidden-test``), for :mod:`ptutils.classroom.grade`.
* with ``--nbgrader DIR``, also ``DIR/source/NN_topic/NN_topic.ipynb``: the chapter as an
  nbgrader source notebook (solution, answer and test cells with nbgrader's metadata, points
  from the hidden tests), and ``DIR/nbgrader_config.py`` if ``DIR`` has none
  (:mod:`ptutils.classroom.nbgrader_source`).

``--values _build`` fills in, instead of placeholders, the numbers the last ``make book``
computed, for each chapter whose code and library have not changed since (checked; the
others keep their placeholders). ``--site DIR`` also writes the student notebooks with their MyST kept (glue roles and
all) into ``DIR``, for a Jupyter Book site built from them (``make student``): the site
fills in the values itself, so it must not get the placeholders.

Exit codes:

* ``0``: every student notebook and its hidden tests were written;
* ``1``: a chapter failed its checks: solution text or a glue role survives in its student
  notebook, its solution markers do not pair up, a hidden-test cell is malformed, or (with
  ``--nbgrader``) nbgrader would misread it (its delimiters in public text, clashing grade ids);
* ``2``: bad usage: a wrong option or argument, an input folder that is missing or holds no
  ``.ipynb``, an output (``--site``, ``--nbgrader``) folder that is the input folder or inside
  it, or a chapter that is not a valid notebook (not JSON, or not nbformat).

Each failure is reported in one line on standard error that starts with ``ptutils-student: error:``.

A hidden-test cell is a code cell tagged ``hidden-test`` whose first line is
``# hidden test: <name> (<points> points)``, with the inputs and the calls of the student's
functions above a ``# checks`` line and the asserts below it (:mod:`ptutils.classroom.grade`). In the book it runs against the
reference solution, so every build proves that the reference earns full marks.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

from . import plain
from .cli import UsageError as _UsageError, check_notebook, inside as _inside, one_line as _one_line, parse

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_TAG = "hidden-test"
HIDDEN_HEADER = re.compile(r"^# hidden test: (?P<name>[\w.\-]+) \((?P<points>\d+(?:\.\d+)?) points?\)\s*$")
SOL_START = re.compile(r"^```\{solution-start\}")
SOL_END = re.compile(r"^```\{solution-end\}")


def stub_solutions(code: str) -> str:
    """Replace each BEGIN/END SOLUTION region with ``raise NotImplementedError``, same indentation."""
    out, inside = [], False
    for line in code.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError("nested ### BEGIN SOLUTION")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}raise NotImplementedError")
        elif stripped == END:
            if not inside:
                raise ValueError("### END SOLUTION without ### BEGIN SOLUTION")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("### BEGIN SOLUTION without ### END SOLUTION")
    return "\n".join(out)


def _strip_solution_prose(text: str, inside: bool) -> tuple[str, bool]:
    """Drop solution-start/end directives and everything between them from Markdown."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if SOL_START.match(line):
            inside = True
            i += 1
            while i < len(lines) and lines[i].strip() != "```":  # the directive's options
                i += 1
            i += 1
            continue
        if SOL_END.match(line):
            inside = False
            i += 1
            if i < len(lines) and lines[i].strip() == "```":
                i += 1
            continue
        if not inside:
            out.append(line)
        i += 1
    return "\n".join(out).strip("\n"), inside


def is_hidden_test(cell) -> bool:
    return cell.cell_type == "code" and HIDDEN_TAG in cell.metadata.get("tags", [])


def student_version(nb):
    """Return the student notebook for a chapter notebook (see the module doc)."""
    nb = copy.deepcopy(nb)
    cells, inside = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text, inside = _strip_solution_prose(cell.source, inside)
            if text.strip():
                cell.source = text
                cells.append(cell)
            continue
        if is_hidden_test(cell):
            continue
        has_markers = BEGIN in cell.source
        if inside and not has_markers:
            continue  # solution-only code
        if cell.cell_type == "code":
            cell.source = stub_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    if inside:
        raise ValueError("a {solution-start} has no matching {solution-end}")
    nb.cells = cells
    return nb


def hidden_tests(nb):
    """A notebook of the chapter's hidden-test cells (outputs cleared)."""
    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata))
    for cell in nb.cells:
        if is_hidden_test(cell):
            if not HIDDEN_HEADER.match(cell.source.splitlines()[0]):
                raise ValueError(f"hidden-test cell must start with '# hidden test: <name> (<n> points)': "
                                 f"{cell.source.splitlines()[0]!r}")
            from .grade import parse_hidden_test  # the grader's format: calls above '# checks', asserts below

            parse_hidden_test(cell.source, "hidden-test cell")
            c = nbformat.v4.new_code_cell(cell.source)
            c.metadata["tags"] = [HIDDEN_TAG]
            out.cells.append(c)
    return out


def solution_fragments(nb) -> list[str]:
    """Lines of solution code and prose that occur nowhere else in the chapter.

    These must not survive in a student version; lines shared with the rest of the
    chapter (``ptutils.set_seed(seed)``, say) prove nothing and are left out.
    """
    frags, public, inside = [], [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if SOL_START.match(line):
                    inside = True
                elif SOL_END.match(line):
                    inside = False
                elif not line.startswith((":", "```")):
                    (frags if inside else public).append(line.strip())
            continue
        if is_hidden_test(cell):
            continue
        region = False
        for line in cell.source.splitlines():
            s = line.strip()
            if s == BEGIN:
                region = True
            elif s == END:
                region = False
            elif region or (inside and BEGIN not in cell.source):
                frags.append(s)
            else:
                public.append(s)
    public_text = "\n".join(public)
    return [f for f in frags if len(f) > 12 and f not in public_text]


def leaked(student, reference) -> list[str]:
    """Solution fragments of ``reference`` that survive in ``student``."""
    text = "\n".join(c.source for c in student.cells)
    bad = [f for f in solution_fragments(reference) if f in text]
    for marker in (BEGIN, END, "{solution-start}", "{solution-end}"):
        if marker in text:
            bad.append(marker)
    return bad


def handout_version(student, name: str | None = None, index: plain.Index | None = None,
                    values: dict | None = None):
    """The notebook handed to students: ``student`` (from :func:`student_version`) with Markdown
    that reads without Jupyter Book and ``glue`` calls that print (module doc); ``values``
    (:func:`ptutils.classroom.plain.built_values`) fills in the numbers a book build computed."""
    nb = copy.deepcopy(student)
    printing, other = False, False
    for cell in nb.cells:
        if cell.cell_type == "code":
            new = plain.student_glue_source(cell.source)
            printing |= new != cell.source
            other |= "myst_nb" in new  # glue imported some other way: that glue does not print
            cell.source = new
    printing &= not other
    return plain.plain_notebook(nb, name=name, index=index, printing=printing, values=values)


def chapter_index(src_dir: Path) -> plain.Index:
    """Titles, figures and references of the chapters in ``src_dir`` and the book's pages beside it."""
    src_dir = Path(src_dir)
    book = src_dir.resolve().parent / "book"
    return plain.index_notebooks(sorted(src_dir.glob("*.ipynb")), bib=book / "references.bib",
                                 pages=sorted(book.glob("*.md")))


def build(src_dir: Path, out_dir: Path, site_dir: Path | None = None,
          values_from: Path | None = None, nbgrader_dir: Path | None = None) -> list[Path]:
    """Write student and hidden-test notebooks for every chapter; raise if a solution leaks
    or a glue role survives. ``site_dir``: also write the student notebooks with MyST kept.
    ``values_from``: a Jupyter Book build directory (``_build``) whose glued values fill in
    the numbers of each chapter whose build is current (else that chapter gets placeholders).
    ``nbgrader_dir``: also write each chapter as an nbgrader source notebook into this course folder
    (:mod:`ptutils.classroom.nbgrader_source`)."""
    written = []
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    (out_dir / "hidden").mkdir(parents=True, exist_ok=True)
    if site_dir is not None:
        Path(site_dir).mkdir(parents=True, exist_ok=True)
    index = chapter_index(src_dir)
    if nbgrader_dir is not None:
        from . import nbgrader_source

        Path(nbgrader_dir).mkdir(parents=True, exist_ok=True)
        nbgrader_source.write_config(nbgrader_dir)
    for path in sorted(Path(src_dir).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        student = student_version(nb)
        bad = leaked(student, nb)
        if bad:
            raise RuntimeError(f"{path.name}: solution text survives in the student version: {bad[:3]}")
        values = None
        if values_from is not None:
            values, why = plain.built_values(values_from, path, root=Path(src_dir).resolve().parent)
            print(f"{path.name}: " + ("numbers from the build" if values is not None else f"placeholders ({why})"))
        handout = handout_version(student, path.name, index, values)
        raw = [r for c in handout.cells if c.cell_type == "markdown" for r in plain.raw_roles(c.source)]
        if raw:
            raise RuntimeError(f"{path.name}: glue roles the student version cannot show: {raw[:3]}")
        nbformat.write(handout, out_dir / "notebooks" / path.name)
        if site_dir is not None:
            nbformat.write(student, Path(site_dir) / path.name)
        nbformat.write(hidden_tests(nb), out_dir / "hidden" / path.name)
        if nbgrader_dir is not None:
            from . import nbgrader_source

            try:
                nbgrader_source.write_source(nb, nbgrader_dir, path.name, index, values)
            except ValueError as e:
                raise ValueError(f"{path.name}: no nbgrader source notebook: {e}") from None
        written.append(out_dir / "notebooks" / path.name)
    return written


PROG = "ptutils-student"


def _parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    epilog = __doc__[__doc__.index("Exit codes:"):].split("\nA hidden-test cell")[0].strip()
    p = argparse.ArgumentParser(prog=PROG, description="\n\n".join(doc[:2]) + "\n\n" + doc[2].split(" It writes")[0].replace("``", ""),
                                epilog=epilog.replace("``", ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", type=Path, help="folder of the chapters (NN_topic.ipynb), e.g. notebooks")
    p.add_argument("out", type=Path, help="where to write notebooks/ (the student versions) and hidden/ (the "
                                          "hidden tests), e.g. student; not the chapters' folder nor inside it")
    p.add_argument("--site", type=Path, metavar="DIR",
                   help="also write the student notebooks with their MyST kept into DIR, for a Jupyter Book site")
    p.add_argument("--values", type=Path, metavar="BUILD_DIR",
                   help="fill in the numbers a 'make book' build (_build) computed, for each chapter whose build "
                        "is current (the others keep their placeholders)")
    p.add_argument("--nbgrader", type=Path, metavar="DIR",
                   help="also write each chapter as an nbgrader source notebook into the course folder DIR "
                        "(DIR/source/NN_topic/NN_topic.ipynb), and DIR/nbgrader_config.py if it has none")
    return p


def _check_usage(src: Path, out: Path, site: Path | None, course: Path | None = None) -> None:
    """Raise _UsageError unless ``src`` holds readable notebooks and the outputs lie outside it."""
    if not src.is_dir():
        raise _UsageError(f"input folder {src} " + ("is not a folder" if src.exists() else "does not exist"))
    paths = sorted(src.glob("*.ipynb"))
    if not paths:
        raise _UsageError(f"no .ipynb files in {src}")
    for name, folder in (("output folder", out), ("--site folder", site), ("--nbgrader folder", course)):
        if folder is not None and _inside(folder, src):
            raise _UsageError(f"the {name} {folder} is the input folder {src} or inside it; write it elsewhere")
    for path in paths:
        check_notebook(path)


def main(argv=None) -> int:
    """The command ``ptutils-student``; returns the exit code (module doc)."""
    args = parse(_parser(), argv)
    if isinstance(args, int):  # --help (0) or a usage error (2), already printed by argparse
        return args
    try:
        _check_usage(args.notebooks, args.out, args.site, args.nbgrader)
    except _UsageError as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    try:
        written = build(args.notebooks, args.out, args.site, args.values, args.nbgrader)
    except (RuntimeError, ValueError) as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: error: cannot write the student notebooks: {_one_line(e)}", file=sys.stderr)
        return 2
    site = args.site
    also = f"; with MyST kept, for a site, to {site}" if site else ""
    if args.nbgrader:
        also += f"; nbgrader source notebooks to {args.nbgrader / 'source'}"
    print(f"wrote {len(written)} student notebooks and their hidden tests to {args.out}{also}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Show the library's real source in a notebook ("read it" cells)."""

from __future__ import annotations

import inspect
import textwrap


def source_of(obj) -> str:
    """The source text of a function, class or method, dedented."""
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as e:
        raise TypeError(f"cannot show the source of {obj!r}: {e}") from None


def qualified_name(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def show_source(obj, *, display: bool = True):
    """Display the source of ``obj`` as a highlighted code block, with where it lives.

    In Jupyter, Colab and on the website this renders as Markdown; in a plain
    terminal it prints the code. Returns the ``IPython.display.Markdown`` object
    when ``display`` is False.
    """
    from IPython.display import Markdown
    from IPython.display import display as ipy_display

    src = source_of(obj)
    try:
        lines, start = inspect.getsourcelines(obj)
        module = inspect.getmodule(obj).__name__.replace(".", "/")
        where = f" ({module}.py, lines {start}-{start + len(lines) - 1})"
    except (TypeError, OSError):
        where = ""
    md = Markdown(f"Source of `{qualified_name(obj)}`{where}:\n\n```python\n{src.rstrip()}\n```\n")
    if not display:
        return md
    ipy_display(md)
    return None


def markdown_table(rows: list[dict], *, display: bool = True):
    """Show a list of dicts (one per row, the same keys) as a Markdown table.

    Renders as a table in Jupyter, Colab and on the website (MyST).
    """
    from IPython.display import Markdown
    from IPython.display import display as ipy_display

    if not rows:
        raise ValueError("no rows to show")
    cols = list(rows[0])
    if any(list(r) != cols for r in rows):
        raise ValueError("every row must have the same keys, in the same order")
    cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r[c]) for c in cols) + " |" for r in rows]
    md = Markdown("\n".join(lines))
    if not display:
        return md
    ipy_display(md)
    return None

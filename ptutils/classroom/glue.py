"""``glue`` for student notebooks: glue as Jupyter Book does, and print what was glued.

In the book a cell ends with ``glue("ch01_minilm_std", std, display=False)`` and the
prose shows the value. A student notebook opened in Jupyter or Colab has no website to
show it, so its Markdown names the value and says which code cell prints it
(:mod:`ptutils.classroom.plain`), and the student version imports this ``glue`` instead
of myst-nb's: it prints ``ch01_minilm_std = 0.0342`` and then glues as before (when
myst-nb is installed), so the notebook still builds with Jupyter Book.
"""

from __future__ import annotations

from typing import Any


def glue(name: str, variable: Any, display: bool = True) -> None:
    """Print ``name = value`` and glue ``variable`` under ``name`` (``myst_nb.glue``).

    With ``display=True`` myst-nb already shows the value, so nothing is printed; the
    printed text is the value as the website shows it before formatting (a fraction, not
    a percentage).
    """
    if not display:
        value = variable
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            value = value.item()  # numpy / torch scalars: 0.5, not np.float64(0.5)
        if isinstance(value, float):
            text = f"{value:.6g}"
        else:
            text = value if isinstance(value, str) else repr(value)
        print(f"{name} = {text}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab without myst-nb: printing is all a student needs
        return
    myst_glue(name, variable, display=display)

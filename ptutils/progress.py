"""Progress that fits the place: a bar where a person watches, one line where a page is built.

Every loop of the library that can run longer than about ten seconds (training with
:func:`ptutils.training.fit` when given ``progress=``, fine-tuning, embedding many sentences,
Word2Vec and GloVe, grading a class) reports through :class:`Progress`. How it reports is the
``PTUTILS_PROGRESS`` switch (:func:`ptutils.config.progress_style`):

``bar`` (default)
    a tqdm bar with the total, the rate and the time left: ``tqdm.auto`` picks a widget in
    local Jupyter (with ipywidgets) and text on stderr in a terminal.
``line``
    no bar; when the loop ends, one short line on stdout that is the same on every run
    (counts only, no times), e.g. ``fine-tuning: 3/3 epochs, 96 steps``. The Makefile sets
    it for ``make book`` and ``make test``, so the website and the tested notebooks hold
    no bar: a bar in an executed page is a frozen snapshot of a moment, and its times
    change on every build.
"""

from __future__ import annotations

import sys

from . import config


class Progress:
    """A counter that draws a bar or prints a final line, by :func:`ptutils.config.progress_style`.

    Use it as a context manager: ``with Progress(total=n, desc="embedding", unit="batch") as p:``
    then ``p.update()`` per item. ``total`` may be unknown (None) at first and set later
    (:meth:`set_total`), e.g. after a training loop's first epoch has counted its batches.
    """

    def __init__(self, total: int | None = None, *, desc: str, unit: str = "it", file=None, style: str | None = None):
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise ValueError(f"total must be a whole number >= 0 or None, got {total!r}")
        self.style = config.progress_style() if style is None else style
        if self.style not in ("bar", "line"):
            raise ValueError(f"style must be 'bar' or 'line', got {self.style!r}")
        self.total, self.n, self.desc, self.unit = total, 0, desc, unit
        self.summary: str | None = None
        self._bar = None
        if self.style == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=file, leave=True, dynamic_ncols=True)

    def update(self, k: int = 1) -> None:
        self.n += k
        if self._bar is not None:
            self._bar.update(k)

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def set_postfix(self, **values) -> None:
        """Numbers shown after the bar (e.g. the last epoch's loss); not in the final line."""
        if self._bar is not None:
            self._bar.set_postfix({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in values.items()},
                                  refresh=False)

    def write(self, message: str) -> None:
        """Print a line without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    def line(self) -> str:
        """The final line: counts only, so it is the same on every run."""
        if self.summary is not None:
            return f"{self.desc}: {self.summary}"
        return f"{self.desc}: {self.n}/{self.total} {self.unit}" if self.total is not None else f"{self.desc}: {self.n} {self.unit}"

    def close(self, *, final: bool = True) -> None:
        """End the bar; in ``line`` style print the final line (unless ``final`` is false: the loop failed)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.style == "line":
            if final:
                print(self.line(), file=sys.stdout, flush=True)
            self.style = "closed"

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.close(final=kind is None)


def trainer_arguments() -> dict:
    """Keyword arguments for ``transformers.TrainingArguments`` that make the Trainer's own bar
    follow the same switch: ``{"disable_tqdm": True}`` in ``line`` style, ``{}`` otherwise."""
    return {"disable_tqdm": config.progress_style() == "line"}

"""The book's switches, read once, in one place.

``PTUTILS_FAST``
    ``1`` runs every notebook in *fast mode*: tiny epochs and sub-samples, so the
    whole book executes under test in minutes. Unset or ``0`` is *full mode*, the
    mode the website is built in.
``PTUTILS_ONLINE``
    ``1`` lets notebooks use the real online path (model hub, dataset servers).
    Unset or ``0`` keeps everything offline, on data and weights that installed
    packages ship. This is the default, and the only mode CI uses.
``PTUTILS_STRICT``
    ``1`` makes an exercise self-check (:func:`ptutils.check`) raise
    :class:`ptutils.classroom.checks.CheckFailed` on ``[fail]`` or an unknown check
    name, so a wrong reference solution fails ``make test`` and ``make book``. An
    exercise not attempted yet (``[todo]``) never raises. Unset or ``0``, the default
    for students, a check only prints its line, so "Run all" goes on.

``PTUTILS_PROGRESS``
    How a long loop reports (:mod:`ptutils.progress`). ``bar``, the default, draws a tqdm
    bar (total, rate, time left): a widget in local Jupyter, text in a terminal. ``line``
    prints one short, deterministic line when the loop ends, and no bar: what the
    website build and the tests use (the Makefile sets it), so a built page holds no bar.

Notebooks never read the environment themselves; they call :func:`pick` and
:func:`is_online`.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"environment variable {name}={raw!r}: expected 0/1 (or true/false)")


def _choice(name: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ValueError(f"environment variable {name}={raw!r}: expected one of {', '.join(choices)}")
    return raw


FAST: bool = _flag("PTUTILS_FAST")
ONLINE: bool = _flag("PTUTILS_ONLINE")
STRICT: bool = _flag("PTUTILS_STRICT")
PROGRESS: str = _choice("PTUTILS_PROGRESS", ("bar", "line"))


def is_fast() -> bool:
    """Return True in fast (test) mode, False in full (book) mode."""
    return FAST


def is_online() -> bool:
    """Return True if the reader has switched on the online path (``PTUTILS_ONLINE=1``)."""
    return ONLINE


def is_strict() -> bool:
    """Return True if exercise checks raise on failure (``PTUTILS_STRICT=1``: the book's tests)."""
    return STRICT


def progress_style() -> str:
    """``"bar"`` (tqdm bars, the default) or ``"line"`` (one final line; the book's builds and tests)."""
    return PROGRESS


def mode() -> str:
    """A one-word description of the current mode: ``"fast"`` or ``"full"``."""
    return "fast" if FAST else "full"


def pick(*, full: T, fast: T) -> T:
    """Choose a setting by mode: ``epochs = pick(full=20, fast=2)``.

    Args:
        full: value used when building the book (full mode).
        fast: value used under test (``PTUTILS_FAST=1``).
    """
    return fast if FAST else full


def device():
    """Where models run: ``cuda`` if a GPU is available, else ``cpu``.

    Returns a :class:`torch.device`. :func:`ptutils.finetune.finetune_hf` trains here;
    :func:`ptutils.training.fit` trains wherever the model is (move it here first to use
    a GPU) and moves every batch to it.
    """
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cache_dir():
    """A git-ignored folder for artefacts a chapter may reuse (``.ptutils_cache`` at the repository
    root when run from a checkout, else under the user's home); created on first use."""
    from pathlib import Path

    here = Path(__file__).resolve().parents[1]
    root = here if (here / "pyproject.toml").exists() else Path.home()
    path = root / ".ptutils_cache"
    path.mkdir(exist_ok=True)
    return path

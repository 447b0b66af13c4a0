"""The classroom: what serves the exercises, apart from the concepts the book teaches.

* :mod:`ptutils.classroom.checks`: the exercises' self-checks, grouped by the concept
  they test; notebooks call them as ``ptutils.check("ch01.nn_predict", nn_predict)``.
* :mod:`ptutils.classroom.student`: student versions of the chapters (solutions
  stubbed) and the hidden tests a teacher grades with: the command
  ``ptutils-student notebooks student`` (also ``python -m ptutils.classroom notebooks student``).
* :mod:`ptutils.classroom.plain`: student notebooks' Markdown without MyST roles (glued
  values named, with the cell that prints them), so they read in Jupyter and Colab;
  :mod:`ptutils.classroom.glue` is the ``glue`` those notebooks import, which prints.
* :mod:`ptutils.classroom.handout`: the class hand-out, one archive of student notebooks, a
  student copy of the package and pinned requirements that installs without the repository
  (``python -m ptutils.classroom.handout student student/handout.zip``);
* :mod:`ptutils.classroom.nbgrader_source`: the same chapters as nbgrader source notebooks
  (``ptutils-student notebooks student --nbgrader student/nbgrader``), for teachers who grade with nbgrader;
* :mod:`ptutils.classroom.cli`: what the three commands share (exit codes, one-line errors);
* :mod:`ptutils.classroom.grade`: the grader, the command
  ``ptutils-grade student/hidden/02_core_concepts.ipynb submissions/`` (also
  ``python -m ptutils.classroom.grade``);
  each submission runs in a bubblewrap sandbox (:mod:`ptutils.classroom.sandbox`, which starts
  :mod:`ptutils.classroom.runner`), hands back plain data (:mod:`ptutils.classroom.plaindata`),
  and the verdicts are decided in the grader's process.

``student``, ``grade``, ``plain``, ``glue``, ``handout``, ``nbgrader_source`` and ``cli`` are imported on first use (``ptutils.classroom.grade`` works
after ``import ptutils``), so that notebooks do not load nbformat and
``python -m ptutils.classroom.grade`` runs the module once.
"""

import importlib

from . import checks
from .checks import available, check, register

__all__ = ["available", "check", "checks", "cli", "glue", "grade", "handout", "nbgrader_source", "plain", "register",
           "student"]

_LAZY = ("student", "grade", "plain", "glue", "handout", "nbgrader_source", "cli")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

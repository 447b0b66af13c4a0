"""What the classroom's commands share: ``ptutils-student``, ``ptutils-grade`` and the hand-out writer.

Each ends with exit code 0 (done), 1 (done, but some inputs failed) or 2 (bad usage), and says
why in one line on stderr (``PROG: error: ...``), never with a traceback.
"""

from __future__ import annotations

from pathlib import Path


class UsageError(Exception):
    """Bad usage, or the command cannot run: exit code 2."""


def inside(path: Path, folder: Path) -> bool:
    """True if ``path`` is ``folder`` or lies in it (symbolic links resolved)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or path.is_relative_to(folder)


def one_line(s, n: int = 600) -> str:
    """A message on one line, at most ``n`` characters."""
    return " ".join(str(s).split())[:n]


def parse(parser, argv):
    """``parser.parse_args(argv)``, or argparse's exit code (0 for ``--help``, 2 for a usage error,
    which argparse has already printed) instead of raising ``SystemExit``."""
    try:
        return parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2


def check_notebook(path: Path) -> None:
    """Raise :class:`UsageError` unless ``path`` reads as a valid notebook."""
    import nbformat

    try:
        nbformat.validate(nbformat.read(path, as_version=4))
    except Exception as e:  # noqa: BLE001 - not JSON, not a notebook, an unreadable file
        raise UsageError(f"{path} is not a valid notebook ({type(e).__name__}: {e})") from None

"""Key the book's execution cache on the library, so that `make book` cannot show stale outputs.

    python tools/build_cache.py prepare _build   # before `jupyter-book build`
    python tools/build_cache.py finish _build    # after it, whether it succeeded or not

Jupyter Book's ``execute_notebooks: cache`` (jupyter-cache) re-runs a notebook only when
its code cells or kernelspec change: it hashes nothing else. Every chapter imports
``ptutils``, so a change in the library (or in the pinned requirements) would leave a
local build showing outputs, and glued numbers, that the current code no longer produces.
Sphinx adds a second layer of staleness: it re-reads only the sources whose files
changed, so an unchanged notebook is not even looked up in the execution cache.

``prepare`` therefore computes :func:`library_key` (a hash of everything under
``ptutils/``, package data included, of ``requirements.txt``, of the installed
distributions and of the ``PTUTILS_*`` switches in the environment) and compares
it with the key stored in ``<build>/.ptutils_hash``. When they differ it deletes the execution cache (``<build>/.jupyter_cache``) and Sphinx's
saved environment (``<build>/.doctrees``), so every notebook is re-read and re-executed,
then stores the new key: every entry the build adds to the empty cache is made by this
library. When they agree (the warm case) it does nothing but hash about a megabyte.

``finish`` hashes again. If the library changed while the book was building, the cache
may hold outputs of two versions; it deletes the stored key (the next build starts
clean) and exits with status 1.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

PACKAGE = "ptutils"
EXTRA_FILES = ("requirements.txt",)
KEY_FILE = ".ptutils_hash"
#: What ``prepare`` deletes when the key changes: the execution cache and Sphinx's environment.
STALE_DIRS = (".jupyter_cache", ".doctrees")
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def library_files(root) -> list[Path]:
    """The files whose contents the book's outputs depend on besides the notebooks, sorted.

    Everything under ``ptutils/`` (modules and package data such as the benchmark's
    sentences) except byte-code and editor or tool caches, plus ``requirements.txt``.
    """
    root = Path(root)
    files = []
    for path in sorted((root / PACKAGE).rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not SKIP_DIRS.intersection(rel.parts) and path.suffix not in SKIP_SUFFIXES \
                and not path.name.startswith("."):
            files.append(path)
    files += [root / name for name in EXTRA_FILES if (root / name).is_file()]
    return files


def environment_description() -> str:
    """The Python version, every installed distribution with its version, and the ``PTUTILS_*`` switches.

    The library itself is excluded from the distributions (an editable install's
    metadata says nothing of its code, which :func:`library_files` covers). The switches
    are those set in the environment that runs ``prepare`` (exported by the user, say
    ``PTUTILS_ONLINE=1``); the Makefile's own settings on the build line are constants.
    """
    dists = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                    if d.metadata["Name"] and d.metadata["Name"].lower() != PACKAGE}, key=str.lower)
    switches = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("PTUTILS_"))
    return "\n".join([f"python {sys.version}", *dists, *switches])


def library_key(root, *, environment: bool = True) -> str:
    """SHA-256 (hex) of the library's files (paths and bytes) and, by default, of the environment."""
    root = Path(root)
    h = hashlib.sha256()
    for path in library_files(root):
        data = path.read_bytes()
        name = path.relative_to(root).as_posix().encode()
        h.update(len(name).to_bytes(8, "little") + name + len(data).to_bytes(8, "little") + data)
    if environment:
        h.update(b"\0environment\0" + environment_description().encode())
    return h.hexdigest()


def stored_key(build_dir) -> str | None:
    path = Path(build_dir) / KEY_FILE
    return path.read_text().strip() if path.is_file() else None


def prepare(root, build_dir) -> bool:
    """Clear the execution cache if it was made by another library; return whether it was cleared."""
    build_dir = Path(build_dir)
    key, old = library_key(root), stored_key(build_dir)
    if key == old:
        print(f"build cache: library unchanged (key {key[:12]}); cached notebook outputs are kept")
        return False
    for name in STALE_DIRS:
        shutil.rmtree(build_dir / name, ignore_errors=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / KEY_FILE).write_text(key + "\n")
    why = "no library key stored" if old is None else f"library changed (key {old[:12]} -> {key[:12]})"
    print(f"build cache: {why}; cleared {', '.join(STALE_DIRS)}: every notebook is executed again")
    return True


def finish(root, build_dir) -> bool:
    """After a build: True if the library is the one ``prepare`` keyed; otherwise forget the key."""
    build_dir = Path(build_dir)
    if library_key(root) == stored_key(build_dir):
        return True
    (build_dir / KEY_FILE).unlink(missing_ok=True)
    print("build cache: the library changed while the book was building; its outputs may mix two "
          "versions. The next `make book` executes every notebook again.", file=sys.stderr)
    return False


def report_times(build_dir) -> None:
    """Print each cached notebook's execution time (jupyter-cache records it), longest first,
    so a build log (CI's included) says where the time went."""
    cache = Path(build_dir) / ".jupyter_cache"
    if not cache.is_dir():
        return
    try:
        from jupyter_cache import get_cache

        rows = [(r.data.get("execution_seconds"), Path(r.uri).name)
                for r in get_cache(str(cache)).list_cache_records() if r.data]
    except Exception as e:  # a report only: never fail a build over it
        print(f"build cache: could not read execution times ({type(e).__name__}: {e})", file=sys.stderr)
        return
    rows = sorted((t, n) for t, n in rows if isinstance(t, (int, float)))[::-1]
    if rows:
        print(f"execution times (s), {sum(t for t, _ in rows):.0f} in all: "
              + ", ".join(f"{n.split('_')[0]} {t:.0f}" for t, n in rows))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("prepare", "finish"):
        print(__doc__.strip().splitlines()[0], "\nusage: python tools/build_cache.py prepare|finish BUILD_DIR",
              file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[1]
    command, build_dir = argv
    if command == "prepare":
        prepare(root, build_dir)
        return 0
    report_times(build_dir)
    return 0 if finish(root, build_dir) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Artefacts computed once and reused: keyed by what made them, never by a name alone.

An expensive result (MiniLM embeddings of the benchmark, a pre-trained model) is
stored in the git-ignored cache (:func:`ptutils.config.cache_dir`) under a key that
hashes its *recipe*: every setting that changes the result, plus fingerprints of
the data and of the weights it was computed from. A chapter that changes one
setting gets a different key, so it can never load a stale artefact; the stored
recipe and a checksum of the stored bytes are verified again on every load, so a
corrupted or hand-copied file is recomputed, not trusted.

The two entry points:

* :func:`cached_array` / :func:`cached_arrays` for NumPy arrays (one ``.npz`` file per key);
* :func:`cached_model_dir` / :func:`finish_model_dir` for ``save_pretrained`` folders.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

KEY_LENGTH = 16  # hex characters of the SHA-256 used in file names


def fingerprint(obj) -> str:
    """SHA-256 (hex) of data: bytes, a string, a NumPy array, or a list of strings.

    Lists of strings are hashed with their lengths, so ``["ab", "c"]`` and
    ``["a", "bc"]`` differ.
    """
    h = hashlib.sha256()
    if isinstance(obj, bytes):
        h.update(obj)
    elif isinstance(obj, str):
        h.update(obj.encode("utf-8"))
    elif isinstance(obj, np.ndarray):
        h.update(str(obj.dtype).encode() + str(obj.shape).encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (list, tuple)) and all(isinstance(s, str) for s in obj):
        for s in obj:
            b = s.encode("utf-8")
            h.update(len(b).to_bytes(8, "little") + b)
    else:
        raise TypeError(f"cannot fingerprint {type(obj).__name__}; pass bytes, str, an array or a list of str")
    return h.hexdigest()


def file_fingerprint(path) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _canonical(recipe: dict) -> str:
    if not isinstance(recipe, dict) or not recipe:
        raise TypeError("recipe must be a non-empty dict of the settings that determine the artefact")
    try:
        return json.dumps(recipe, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"recipe must hold only JSON values (str, int, float, bool, None, lists, dicts): {e}") from e


def recipe_key(recipe: dict) -> str:
    """The cache key of a recipe: the first characters of the SHA-256 of its canonical JSON."""
    return hashlib.sha256(_canonical(recipe).encode()).hexdigest()[:KEY_LENGTH]


def _check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"artefact name must be letters, digits, '-' or '_', got {name!r}")


def artefact_path(name: str, recipe: dict, suffix: str = ".npz") -> Path:
    """Where the artefact ``name`` made by ``recipe`` lives in the cache."""
    from .config import cache_dir

    _check_name(name)
    return cache_dir() / f"{name}-{recipe_key(recipe)}{suffix}"


def _load_verified(path: Path, recipe: dict):
    """The stored arrays if ``path`` holds exactly this recipe's intact artefact, else ``(None, why)``."""
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:  # the file closes even if np.load fails
            stored_recipe = str(f["__recipe__"])
            sums = json.loads(str(f["__checksums__"]))
            arrays = {k: f[k] for k in f.files if not k.startswith("__")}
    except Exception as e:  # noqa: BLE001 - any unreadable file is recomputed
        return None, f"unreadable ({type(e).__name__})"
    if stored_recipe != _canonical(recipe):
        return None, "made by a different recipe"
    if set(sums) != set(arrays) or any(fingerprint(arrays[k]) != sums[k] for k in arrays):
        return None, "checksum mismatch (corrupted)"
    return arrays, ""


def cached_arrays(name: str, recipe: dict, compute: Callable[[], dict], *, verbose: bool = True) -> dict:
    """Load the named arrays made by ``recipe`` from the cache, or ``compute()`` and store them.

    Args:
        name: a short label for the file name (``"minilm-embeddings"``).
        recipe: every setting and data fingerprint that determines the result.
        compute: called with no arguments when there is no valid stored copy; returns
            a dict of numeric NumPy arrays (keys: identifiers).
        verbose: print one line saying whether the artefact was loaded or computed.

    Returns:
        The dict of arrays (loaded and verified, or freshly computed).
    """
    path = artefact_path(name, recipe)
    why = "not cached yet"
    if path.exists():
        arrays, why = _load_verified(path, recipe)
        if arrays is not None:
            if verbose:
                print(f"cache: loaded {name} (key {recipe_key(recipe)})")
            return arrays
    arrays = compute()
    if not isinstance(arrays, dict) or not arrays:
        raise TypeError(f"compute() for {name!r} must return a non-empty dict of NumPy arrays")
    for k, a in arrays.items():
        if not (isinstance(k, str) and k.isidentifier()) or k.startswith("__"):
            raise TypeError(f"compute() for {name!r}: array names must be identifiers, got {k!r}")
        if not isinstance(a, np.ndarray) or a.dtype == object:
            raise TypeError(f"compute() for {name!r} must return numeric NumPy arrays; {k!r} is {type(a).__name__}")
    sums = json.dumps({k: fingerprint(a) for k, a in arrays.items()})
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez(f, __recipe__=np.array(_canonical(recipe)), __checksums__=np.array(sums), **arrays)
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    if verbose:
        print(f"cache: computed {name} ({why}); stored under key {recipe_key(recipe)}")
    return arrays


def cached_array(name: str, recipe: dict, compute: Callable[[], np.ndarray], *, verbose: bool = True) -> np.ndarray:
    """Like :func:`cached_arrays` for a single array: load it, or ``compute()`` and store it."""
    def wrapped():
        a = compute()
        if not isinstance(a, np.ndarray) or a.dtype == object:
            raise TypeError(f"compute() for {name!r} must return a numeric NumPy array, got {type(a).__name__}")
        return {"array": a}

    return cached_arrays(name, recipe, wrapped, verbose=verbose)["array"]


MODEL_RECIPE_FILE = "ptutils_recipe.json"


def cached_model_dir(name: str, recipe: dict) -> Path:
    """A cache folder for a model made by ``recipe`` (write into it with ``save_pretrained``).

    Call :func:`finish_model_dir` after saving; :func:`has_model` then says whether
    the folder holds a complete model made by exactly this recipe.
    """
    path = artefact_path(name, recipe, suffix="")
    path.mkdir(parents=True, exist_ok=True)
    return path


def finish_model_dir(path, recipe: dict) -> None:
    """Mark a saved model folder complete: record its recipe and the checksum of every file."""
    path = Path(path)
    files = {p.name: file_fingerprint(p) for p in sorted(path.iterdir()) if p.is_file() and p.name != MODEL_RECIPE_FILE}
    if not files:
        raise FileNotFoundError(f"{path} holds no files; save the model before finishing the folder")
    (path / MODEL_RECIPE_FILE).write_text(json.dumps({"recipe": json.loads(_canonical(recipe)), "files": files},
                                                     indent=1, sort_keys=True))


def has_model(path, recipe: dict) -> bool:
    """Whether ``path`` holds a finished model made by ``recipe``, every file intact."""
    path = Path(path)
    marker = path / MODEL_RECIPE_FILE
    if not marker.exists():
        return False
    try:
        meta = json.loads(marker.read_text())
    except ValueError:
        return False
    stored = meta.get("recipe") if isinstance(meta, dict) else None
    if not isinstance(stored, dict) or not stored or _canonical(stored) != _canonical(recipe):
        return False
    files = meta.get("files") or {}
    return bool(files) and all((path / f).is_file() and file_fingerprint(path / f) == s for f, s in files.items())


_PACKAGE_DIR = Path(__file__).resolve().parent


def _module_file(name: str) -> Path | None:
    """The source file of the ptutils module ``name``, found on disk (nothing is imported), or None."""
    parts = name.split(".")
    if parts[0] != "ptutils":
        return None
    base = _PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def library_modules(*names: str) -> list[str]:
    """The named ptutils modules and every ptutils module they import, directly or not, sorted.

    Read from the source (``import`` statements anywhere in the file, including the lazy
    ones inside functions), so nothing is imported to find them.
    """
    import ast

    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            raise ImportError(f"{name} is not a ptutils module with a source file")
        seen.add(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found = []
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                found = [base] + [f"{base}.{a.name}" for a in node.names]  # `from . import x`: x may be a module
            for f in found:
                if (f == "ptutils" or f.startswith("ptutils.")) and f not in seen and _module_file(f) is not None:
                    todo.append(f)
    return sorted(seen)


def code_fingerprint(*names: str) -> str:
    """SHA-256 (hex) of the source of the named ptutils modules and of every ptutils module they import.

    Put it in the recipe of an artefact that library code *makes* (a pre-trained model),
    so that changing that code changes the key: the cache can then never return what an
    older version of the training code made.
    """
    h = hashlib.sha256()
    for name in library_modules(*names):
        data = _module_file(name).read_bytes()
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()

"""The class hand-out: one archive that students install and run on their own, with no solutions.

    python -m ptutils.classroom.handout student student/handout.zip [--chapters 02 05] [--reference notebooks]

``student`` is the folder ``ptutils-student notebooks student`` (``make student``) wrote. The
archive holds one folder, named after the archive (``handout/``), with:

* ``notebooks/``: the student notebooks of the chosen chapters (``student/notebooks``; all by
  default). Never ``student/hidden``;
* ``ptutils/``: the package the notebooks import, with the data it ships (the sentence-polarity
  benchmark). It is a student copy: of :mod:`ptutils.classroom` only the self-checks and the
  printing ``glue`` are in it (the grader, its sandbox and the student-version writer are the
  teacher's), and every library function that answers an exercise is handled as
  :data:`DECISIONS` says (kept, with the reason; replaced by a dependency's equivalent; or
  withheld, a stub that names the exercise);
* ``pyproject.toml``, so that ``pip install -e .`` installs that copy, and ``requirements.txt``:
  the pinned versions students need (:func:`student_pins`: pyproject's dependencies and its
  ``[lab]`` and ``[test]`` extras, pinned as ``requirements.txt`` pins them);
* ``README.md`` for students: set-up in two commands, the self-checks, what to hand in.

Entries are sorted and have fixed timestamps and permissions, so the same inputs give the same
bytes. The command fails if any file of the archive holds a line of a reference solution or of
a hidden test, or a solution or hidden-test marker (:func:`leaks`); the chapters with their
solutions (``--reference``, default ``notebooks``) say what those lines are. A line may appear
only inside a library function that :data:`DECISIONS` keeps for that exercise, or where
:data:`GENERIC_LINES` says why it gives nothing away.

Exit codes:

* ``0``: the archive was written;
* ``1``: a check failed: a solution line, hidden-test line or marker would be handed out; a
  decision names a library function that is not there, or withholds one that other code calls;
  the student copy of the package imports a module it leaves out;
* ``2``: bad usage: a wrong option or argument, a student or reference folder that is missing or
  holds no notebooks, a chapter that is not there, an output that is not a ``.zip`` or lies in
  ``student/notebooks`` or ``student/hidden``, a notebook that is not valid, or an output that
  cannot be written.

Each failure is reported in one line on standard error that starts with
``ptutils.classroom.handout: error:``.

:func:`course_plan` computes the course plan of ``book/for-teachers.md`` (points from the hidden
tests, measured times from ``benchmarks/RESULTS.md``, the earlier chapters each one refers to);
``tests/test_handout.py`` checks that the page shows it.
"""

from __future__ import annotations

import argparse
import ast
import csv
import importlib.util
import io
import re
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .cli import UsageError as _UsageError, check_notebook, inside as _inside, one_line as _one_line, parse
from .student import BEGIN, END, HIDDEN_HEADER, SOL_END, SOL_START, is_hidden_test, leaked, solution_fragments, \
    student_version

PROG = "ptutils.classroom.handout"

# ---------------------------------------------------------------------------------------------
# The exercise audit: for every function a chapter's solution defines, whether the package
# holds its answer, and what the student copy does about it.

KEEP = "keep"  # no package function answers it, or the one that comes close stays, for the reason given
REPLACE = "replace"  # the student copy's function keeps its name, docstring and results; its body calls a
#                      dependency's equivalent instead of the hand-written code that is the answer
WITHHOLD = "withhold"  # the student copy's function raises NotImplementedError naming the exercise


@dataclass(frozen=True)
class Decision:
    """What the hand-out does about one exercise (a function a chapter's solution defines)."""

    action: str
    reason: str
    library: str | None = None  # the package function that answers it or comes close: "ptutils.metrics.box_iou"
    body: str | None = None  # REPLACE: the new body (after the docstring), indented as a function body


_SHA_BODY = '''\
with Path(path).open("rb") as stream:  # the standard library's chunked digest (Python 3.11+)
    return hashlib.file_digest(stream, "sha256").hexdigest()
'''
_WARMUP_BODY = '''\
if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
    raise ValueError(f"need 0 <= warmup_steps <= total_steps and total_steps >= 1, "
                     f"got {warmup_steps} and {total_steps}")
from transformers import get_linear_schedule_with_warmup

return lambda opt: get_linear_schedule_with_warmup(opt, warmup_steps, total_steps)
'''

#: The audit, one entry per function defined in a chapter's solutions (``chNN.<name>``;
#: ``tests/test_handout.py`` checks that none is missing).
DECISIONS: dict[str, Decision] = {
    "ch01.nn_predict": Decision(KEEP, "no package function does it (the baselines use scikit-learn)"),
    "ch01.bigger_transformer": Decision(KEEP, "calls the chapter's own small_transformer with other settings"),
    "ch02.encoder_block_params": Decision(
        KEEP, "the exercise asks for the formula; counting an instantiated block (ptutils.EncoderBlock or "
              "torch.nn.TransformerEncoderLayer) also gives the number, with or without the package",
        "ptutils.transformer.EncoderBlock"),
    "ch02.causal_attention": Decision(
        KEEP, "the exercise asks students to combine ptutils.causal_mask and ptutils.scaled_dot_product_attention, "
              "which the chapter builds", "ptutils.attention.scaled_dot_product_attention"),
    "ch03.ce_grad": Decision(KEEP, "no package function does it"),
    "ch03.momentum_step": Decision(KEEP, "no package function does it (the library uses torch.optim)"),
    "ch04.layer_norm": Decision(KEEP, "no package function does it (the library uses nn.LayerNorm)"),
    "ch04.split_heads": Decision(
        KEEP, "the chapter shows the same reshape in its minimal multi-head attention; the library's is a private "
              "method of MultiHeadAttention", "ptutils.attention.MultiHeadAttention"),
    "ch05.noise_distribution": Decision(
        KEEP, "the chapter shows train_word2vec's source, with its counts ** 0.75, on purpose; the exercise "
              "generalises it", "ptutils.word2vec.train_word2vec"),
    "ch05.sgns_pair_loss": Decision(
        KEEP, "the chapter shows the library's batched loss and gradients on purpose; the exercise asks for one "
              "pair's loss", "ptutils.word2vec.sgns_loss_and_grads"),
    "ch06.mask_patches": Decision(
        KEEP, "no package function masks squares; corrupt(x, 'mask', ...) masks single pixels (the exercise "
              "contrasts the two)", "ptutils.autoencoder.corrupt"),
    "ch06.neighbour_guess": Decision(KEEP, "a measurement in the solution; no package function does it"),
    "ch07.warmup_factor": Decision(
        REPLACE, "linear_warmup's inner factor was the answer line by line; fine-tuning and pre-training need "
                 "linear_warmup, so the student copy builds it on transformers.get_linear_schedule_with_warmup "
                 "(the self-check's reference), with the same values", "ptutils.training.linear_warmup",
        body=_WARMUP_BODY),
    "ch08.perplexity": Decision(KEEP, "no package function does it"),
    "ch09.masked_max": Decision(
        KEEP, "no package function does it (mean_pool and AttentionPooling average the tokens)"),
    "ch09.oov_rate": Decision(KEEP, "no package function does it"),
    "ch09.small_corpus_predictions": Decision(KEEP, "an experiment on the chapter's own models"),
    "ch10.shift_right": Decision(
        KEEP, "the shift is one line inside LSTMSequenceAutoencoder.forward, which the chapter shows on purpose; "
              "no function to call", "ptutils.seq_autoencoder.LSTMSequenceAutoencoder"),
    "ch10.token_accuracy": Decision(
        KEEP, "reconstruction_accuracy needs a model and counts differently (batches, teacher forcing); not a "
              "function of predictions", "ptutils.seq_autoencoder.reconstruction_accuracy"),
    "ch10.state_features": Decision(KEEP, "an experiment on the chapter's own encoder"),
    "ch11.precision_recall_f1": Decision(
        KEEP, "classification_metrics takes labels, not counts; its formulas are the chapter's, and the "
              "self-check's hint states them", "ptutils.metrics.classification_metrics"),
    "ch11.macro_f1": Decision(
        KEEP, "per_class_report gives it from labels, and so does scikit-learn's f1_score(average='macro'), "
              "which the self-check names; leaving ours out would hide nothing", "ptutils.metrics.per_class_report"),
    "ch11.mcnemar_p": Decision(
        KEEP, "mcnemar takes predictions and calls scipy.stats.binomtest, which the self-check names; the "
              "exercise asks for the sum", "ptutils.metrics.mcnemar"),
    "ch12.count_parameters": Decision(KEEP, "no package function does it (apply_strategy counts as a side effect)"),
    "ch12.weights_megabytes": Decision(
        KEEP, "gradient_bytes counts the trainable parameters only, in bytes; serialized_mb measures a file",
        "ptutils.distributed.gradient_bytes"),
    "ch13.sha256_file": Decision(
        REPLACE, "file_fingerprint was the answer line by line; the caches need it, so the student copy calls the "
                 "standard library's hashlib.file_digest, with the same values", "ptutils.cache.file_fingerprint",
        body=_SHA_BODY),
    "ch13.safetensors_shapes": Decision(KEEP, "no package function does it"),
    "ch14.mean_reciprocal_rank": Decision(
        KEEP, "recall_at_k, which the chapter calls, counts the items ranked before the answer with the same rule "
              "for ties; it returns the share found within k, and no package function averages 1 / rank",
        "ptutils.metrics.recall_at_k"),
    "ch14.generalized_iou": Decision(
        KEEP, "box_iou, which the chapter calls, computes the intersection and union GIoU starts from; the "
              "enclosing box, the exercise's new part, is in no package function", "ptutils.metrics.box_iou"),
    "ch14.centred_predictions": Decision(KEEP, "no package function does it"),
    "ch15.client_drift": Decision(KEEP, "no package function does it"),
    "ch15.distillation_loss": Decision(
        KEEP, "distillation_step needs a model and a batch and mixes in cross-entropy; not a function of logits",
        "ptutils.compression.distillation_step"),
    "ch15.prune_ffn_units": Decision(
        KEEP, "structured pruning; the library prunes by magnitude, unstructured", "ptutils.compression.magnitude_prune"),
    "ch16.ring_allreduce": Decision(KEEP, "no package function does it"),
    "ch16.min_gpus": Decision(KEEP, "no package function does it"),
}

#: Reference-solution lines that the student package may hold outside a kept function, and why.
GENERIC_LINES: dict[str, str] = {
    "import torch.nn.functional as F": "an import, of the module several library files use the same way",
    "g = torch.Generator().manual_seed(0)": "a seeded generator; the self-checks seed theirs with the same line",
    "pruned = copy.deepcopy(model)": "magnitude_prune copies the model the same way; the pruning is the exercise",
    "return pruned": "as above",
    "y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)": "the argument conversion of several metrics",
    "h = hashlib.sha256()": "the cache's fingerprints of objects and recipes hash this way; reading a file in "
                            "chunks is the exercise",
    "return h.hexdigest()": "as above",
}

#: Markers that must appear in no file of the archive.
MARKERS = (BEGIN, END, "{solution-start}", "{solution-end}", "# hidden test:")

# ---------------------------------------------------------------------------------------------
# The student copy of the package

#: Of ptutils.classroom, what students need: the self-checks (ptutils.check) and the printing glue.
CLASSROOM_FOR_STUDENTS = ("__init__.py", "checks.py", "glue.py")
#: pyproject's extras whose pins the hand-out's requirements.txt includes, beside the base dependencies:
#: JupyterLab to work in, and [test]'s nbval for running a notebook as the grader does.
STUDENT_EXTRAS = ("lab", "test")
REQUIREMENTS_HEADER = ("# Generated by ptutils.classroom.handout from pyproject.toml (its dependencies and the "
                       "[lab] and [test] extras),\n# pinned at the versions the book is tested with "
                       "(requirements.txt).\n")
DATE = (1980, 1, 1, 0, 0, 0)  # zip's earliest timestamp: every entry gets it, so builds are byte-identical


class HandoutError(RuntimeError):
    """A check failed: exit code 1."""


def _project(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())


def _pin_tool(root: Path):
    path = root / "tools" / "pin_requirements.py"
    spec = importlib.util.spec_from_file_location("_ptutils_pin_requirements", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def student_pins(root: Path) -> dict[str, str]:
    """The pins students need: the closure of pyproject's dependencies and :data:`STUDENT_EXTRAS`,
    at the installed versions (``tools/pin_requirements.py``, which writes requirements.txt)."""
    pin = _pin_tool(root)
    return pin.closure(pin.roots(root, extras=list(STUDENT_EXTRAS)))


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_files(root: Path) -> dict[str, bytes]:
    """The student copy's files (path in the archive -> bytes) before any decision is applied:
    pyproject's packages and package data, without the teacher's modules of ptutils.classroom."""
    tool = _project(root).get("tool", {}).get("setuptools", {})
    out = {}
    for package in tool.get("packages", ["ptutils"]):
        folder = root / package.replace(".", "/")
        for path in sorted(folder.glob("*.py")):
            if package == "ptutils.classroom" and path.name not in CLASSROOM_FOR_STUDENTS:
                continue
            out[path.relative_to(root).as_posix()] = path.read_bytes()
        for pattern in tool.get("package-data", {}).get(package, []):
            for path in sorted(folder.glob(pattern)):
                if path.is_file():
                    out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def _find_def(tree: ast.Module, qualname: str):
    body, node = tree.body, None
    for part in qualname.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return node


def _split_name(library: str, files: dict[str, bytes]) -> tuple[str, str]:
    """``ptutils.metrics.box_iou`` -> (``ptutils/metrics.py``, ``box_iou``); the longest module prefix wins."""
    parts = library.split(".")
    for k in range(len(parts) - 1, 0, -1):
        for rel in ("/".join(parts[:k]) + ".py", "/".join(parts[:k]) + "/__init__.py"):
            if rel in files:
                return rel, ".".join(parts[k:])
    raise HandoutError(f"{library}: no such module in the package")


def function_source(files: dict[str, bytes], library: str) -> str:
    """The source text of ``library`` (a function or class) in ``files``."""
    rel, qual = _split_name(library, files)
    text = files[rel].decode()
    node = _find_def(ast.parse(text), qual)
    if node is None:
        raise HandoutError(f"{library}: not defined in {rel}")
    return ast.get_source_segment(text, node, padded=True)


def replace_body(text: str, qualname: str, body: str) -> str:
    """``text`` with the body of function ``qualname`` replaced by ``body`` (its docstring kept)."""
    tree = ast.parse(text)
    node = _find_def(tree, qualname)
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise HandoutError(f"{qualname} is not a function")
    lines = text.splitlines(keepends=True)
    first = node.body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    start = first.end_lineno if has_doc else first.lineno - 1  # index of the first line replaced
    indent = " " * (node.col_offset + 4)
    new = "".join(indent + line if line.strip() else "\n" for line in body.splitlines(keepends=True))
    if not new.endswith("\n"):
        new += "\n"
    return "".join(lines[:start]) + new + "".join(lines[node.end_lineno:])


def _stub(exercise: str, library: str) -> str:
    return (f'raise NotImplementedError("{library} is left out of the student copy of ptutils: it is the answer '
            f'to exercise {exercise}")\n')


def _callers(files: dict[str, bytes], notebooks: dict[str, bytes], library: str) -> list[str]:
    """The files (package modules and notebooks) that use the name of ``library``'s last part,
    the function's own source aside."""
    rel, qual = _split_name(library, files)
    name = qual.split(".")[-1]
    word = re.compile(rf"\b{re.escape(name)}\b")
    out = []
    for path, data in {**files, **notebooks}.items():
        if not path.endswith((".py", ".ipynb")):
            continue
        text = data.decode()
        if path == rel:
            text = text.replace(function_source(files, library), "")
        if word.search(text):
            out.append(path)
    return out


def apply_decisions(files: dict[str, bytes], notebooks: dict[str, bytes] | None = None,
                    decisions: dict[str, Decision] | None = None) -> dict[str, bytes]:
    """The student copy: ``files`` with every REPLACE and WITHHOLD decision applied. A decision that
    names a function that is not there, or withholds one that other code or a notebook calls, raises
    :class:`HandoutError`."""
    decisions = DECISIONS if decisions is None else decisions
    files = dict(files)
    for exercise, d in sorted(decisions.items()):
        if d.library is None:
            continue
        function_source(files, d.library)  # raises if it is gone: the audit is out of date
        if d.action not in (REPLACE, WITHHOLD):
            continue
        if d.action == WITHHOLD:
            users = _callers(files, notebooks or {}, d.library)
            if users:
                raise HandoutError(f"{exercise}: cannot withhold {d.library}: {', '.join(users[:4])} use it; "
                                   "keep it, with a reason, or change the exercise")
        rel, qual = _split_name(d.library, files)
        body = d.body if d.action == REPLACE else _stub(exercise, d.library)
        text = replace_body(files[rel].decode(), qual, body)
        compile(text, rel, "exec")
        files[rel] = text.encode()
    return files


def missing_imports(files: dict[str, bytes], modules_in_repository: set[str]) -> list[str]:
    """Imports of package modules that the copy leaves out, as ``file: module``
    (``modules_in_repository``: every module name of the repository's package)."""
    modules = {_module_name(Path(p)) for p in files if p.endswith(".py")}
    out = []
    for path, data in sorted(files.items()):
        if not path.endswith(".py"):
            continue
        me = _module_name(Path(path))
        here = me if path.endswith("__init__.py") else me.rpartition(".")[0]
        for node in ast.walk(ast.parse(data.decode())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                if base.split(".")[0] != "ptutils":
                    continue
                targets.append(base)  # from .pkg import name: name may be a module of pkg
                targets += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules_in_repository]
            elif isinstance(node, ast.Import):
                targets += [a.name for a in node.names if a.name.split(".")[0] == "ptutils"]
            out += [f"{path}: {t}" for t in targets if t not in modules]
    return out


def repository_modules(root: Path) -> set[str]:
    """Every module name of the repository's ptutils package."""
    return {_module_name(p.relative_to(root)) for p in (root / "ptutils").rglob("*.py")}


# ---------------------------------------------------------------------------------------------
# What must not be handed out


def _chapter(name: str) -> str:
    return name[:2]


def hidden_fragments(nb) -> list[str]:
    """Lines of the chapter's hidden tests that its student version does not show (imports aside)."""
    shown = "\n".join(c.source for c in student_version(nb).cells)
    out = []
    for cell in nb.cells:
        if is_hidden_test(cell):
            out += [s for s in (line.strip() for line in cell.source.splitlines())
                    if len(s) > 12 and s not in shown and not s.startswith(("# checks", "import ", "from "))]
    return out


def _reference(reference: Path) -> dict[str, nbformat.NotebookNode]:
    return {p.name: nbformat.read(p, as_version=4) for p in sorted(Path(reference).glob("*.ipynb"))}


def leaks(files: dict[str, bytes], reference: dict[str, nbformat.NotebookNode],
          decisions: dict[str, Decision] | None = None) -> list[str]:
    """Solution lines, hidden-test lines and markers that would be handed out, as ``file: what``.

    A notebook is checked against its own chapter (as ``ptutils-student`` checks it); every other
    file against every chapter, except a line inside a function that a KEEP decision of that
    chapter names, or a line of :data:`GENERIC_LINES`.
    """
    decisions = DECISIONS if decisions is None else decisions
    frags = {name: (solution_fragments(nb), hidden_fragments(nb)) for name, nb in reference.items()}
    kept: dict[tuple[str, str], list[str]] = {}  # (chapter, file) -> the kept functions' sources there
    for exercise, d in decisions.items():
        if d.library and d.action == KEEP:
            try:
                rel = _split_name(d.library, files)[0]
                kept.setdefault((exercise[2:4], rel), []).append(function_source(files, d.library))
            except HandoutError:
                pass
    out = []
    for path, data in sorted(files.items()):
        try:
            text = data.decode()
        except UnicodeDecodeError:
            continue
        out += [f"{path}: marker {m!r}" for m in MARKERS if m in text]
        if path.endswith(".ipynb"):
            nb = nbformat.reads(text, as_version=4)
            out += [f"{path}: a hidden-test cell" for c in nb.cells if is_hidden_test(c)]
            ref = reference.get(Path(path).name)
            if ref is not None:
                out += [f"{path}: solution line {f!r}" for f in leaked(nb, ref) if f not in MARKERS]
                cells = "\n".join(c.source for c in nb.cells)
                out += [f"{path}: hidden-test line {f!r}" for f in frags[Path(path).name][1] if f in cells]
            continue
        for name, (solution, hidden) in frags.items():
            allowed = kept.get((_chapter(name), path), [])
            for f in dict.fromkeys(solution):
                n = text.count(f)
                if n and f not in GENERIC_LINES and n > sum(s.count(f) for s in allowed):
                    out.append(f"{path}: solution line of {name} {f!r}")
            out += [f"{path}: hidden-test line of {name} {f!r}" for f in dict.fromkeys(hidden) if f in text]
    return out

# ---------------------------------------------------------------------------------------------
# Points, times and links between chapters: the course plan of book/for-teachers.md


def points(folder: Path) -> dict[str, tuple[int, float]]:
    """``{chapter file stem: (hidden tests, points)}`` from the hidden-test cells of the notebooks in
    ``folder`` (``student/hidden`` or the chapters themselves: the same cells)."""
    out = {}
    for path in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        heads = [HIDDEN_HEADER.match(c.source.splitlines()[0]) for c in nb.cells if is_hidden_test(c)]
        out[path.stem] = (len(heads), sum(float(h["points"]) for h in heads if h))
    return out


def _labels(nb) -> set[str]:
    text = "\n".join(c.source for c in nb.cells)
    return (set(re.findall(r"^\(([\w-]+)\)=", text, re.M)) | set(re.findall(r"^:(?:label|name): ([\w-]+)", text, re.M))
            | set(re.findall(r'label="([\w-]+)"', text)))


def _references(nb) -> set[str]:
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return {re.sub(r".*<([^>]+)>$", r"\1", t) for t in re.findall(r"\{(?:ref|numref|eq)\}`([^`]*)`", text)}


def refers_back(reference: Path) -> dict[str, list[int]]:
    """``{chapter file stem: the earlier chapters (numbers) whose sections, figures or equations it refers to}``."""
    nbs = {p.stem: nbformat.read(p, as_version=4) for p in sorted(Path(reference).glob("*.ipynb"))}
    where = {label: int(stem[:2]) for stem, nb in nbs.items() for label in _labels(nb)}
    return {stem: sorted({where[r] for r in _references(nb) if r in where and where[r] < int(stem[:2])})
            for stem, nb in nbs.items()}


#: Library calls that compute an artefact once and cache it on disk (in the hand-out's folder) for
#: every chapter that makes the same call: the first such chapter a student runs pays for it.
SHARED_ARTEFACTS = {
    "benchmark_embeddings": "MiniLM embeddings",
    "finetune_at": "fine-tuned MiniLMs",
    "reference_finetune": "fine-tuned MiniLMs",
    "tiny_bert(": "tiny BERT",
}


def measured_times(results: Path) -> dict[int, tuple[str, str]]:
    """``{chapter: (full mode, fast mode)}`` as ``benchmarks/RESULTS.md`` records them (``"801 s"``;
    ``""`` where it has none): full mode from the first (the most recent) cold ``make book`` row that
    lists each chapter's time, chapter 16 from its own section."""
    text = Path(results).read_text()
    out: dict[int, tuple[str, str]] = {}
    row = re.search(r"^\| `make book`, cold \(no execution cache, no artefacts\) \| [\d,]+ s \| chapters (.*?) \|$",
                    text, re.M)
    if row:
        for ch, secs in re.findall(r"(\d+): (?:≈ )?(\d+(?:,\d{3})*)", row.group(1)):
            out[int(ch)] = (f"{secs} s", "")
    for ch, full, fast in re.findall(r"Chapter (\d+): (\d+(?:,\d{3})*) s in full mode, (\d+(?:,\d{3})*) s in fast mode",
                                     text):
        out[int(ch)] = (f"{full} s", f"{fast} s")
    return out


PLAN_HEADER = ("chapter", "graded exercises", "points", "full mode", "fast mode", "refers back to", "shares (cached)")


def csv_table(rows: list[tuple]) -> str:
    """A MyST ``csv-table`` directive of ``rows`` (the first is the header): a table of data,
    which the book's typed-number scan reads as data, not prose."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return "```{csv-table}\n:header-rows: 1\n\n" + buf.getvalue() + "```"


def course_plan(reference: Path, results: Path) -> str:
    """The course-plan table of ``book/for-teachers.md`` (a MyST csv-table)."""
    pts, back, times = points(reference), refers_back(reference), measured_times(results)
    rows = [PLAN_HEADER]
    for stem in sorted(pts):
        ch = int(stem[:2])
        src = "\n".join(c.source for c in nbformat.read(Path(reference) / f"{stem}.ipynb", as_version=4).cells
                        if c.cell_type == "code")
        shares = sorted({what for call, what in SHARED_ARTEFACTS.items() if call in src})
        full, fast = times.get(ch, ("", ""))
        n, p = pts[stem]
        rows.append((stem, n, f"{p:g}", full or "not measured", fast or "not measured",
                     ", ".join(map(str, back[stem])) or "none: stands alone", "; ".join(shares) or "-"))
    return csv_table(rows)


# ---------------------------------------------------------------------------------------------
# The archive


def _toml_list(items) -> str:
    return "[\n" + "".join(f"    {_toml_str(i)},\n" for i in items) + "]"


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def student_pyproject(root: Path) -> str:
    """pyproject.toml for the hand-out's folder: the repository's name, version and dependencies, its
    packages and package data; no extras and no commands (the teacher's)."""
    proj, tool = _project(root)["project"], _project(root).get("tool", {}).get("setuptools", {})
    data = tool.get("package-data", {})
    return ("# The student copy of ptutils (ptutils.classroom.handout): pip install -e . (README.md)\n"
            "[build-system]\n"
            f"requires = {_toml_list(_project(root)['build-system']['requires'])}\n"
            f"build-backend = {_toml_str(_project(root)['build-system']['build-backend'])}\n\n"
            "[project]\n"
            f"name = {_toml_str(proj['name'])}\n"
            f"version = {_toml_str(proj['version'])}\n"
            f"description = {_toml_str(proj.get('description', ''))}\n"
            f"requires-python = {_toml_str(proj['requires-python'])}\n"
            f"dependencies = {_toml_list(proj['dependencies'])}\n\n"
            "[tool.setuptools]\n"
            f"packages = {_toml_list(tool.get('packages', ['ptutils']))}\n\n"
            "[tool.setuptools.package-data]\n"
            + "".join(f"{_toml_str(k)} = {_toml_list(v)}\n" for k, v in sorted(data.items())))


def readme(folder: str, chapters: list[str], pts: dict[str, tuple[int, float]], python: str) -> str:
    """The students' README.md."""
    example = chapters[0]
    table = "\n".join(f"| `{c}.ipynb` | {pts.get(c, (0, 0))[0]} | {pts.get(c, (0, 0))[1]:g} |" for c in chapters)
    return f"""# The exercises, ready to run

This folder holds the book's chapters as notebooks with their exercises left for you to do
(`notebooks/`), the `ptutils` package they import (`ptutils/`, with the data the chapters read) and the
exact versions of everything else they need (`requirements.txt`). Once installed, nothing needs a network.

## Set up (once)

You need Python {python} or newer. In this folder (`{folder}/`), run

```bash
python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e .
.venv/bin/jupyter lab notebooks
```

The first command makes an environment in `.venv/` and installs everything into it (PyTorch is the
largest download; on Linux, adding `--extra-index-url https://download.pytorch.org/whl/cpu` to it gets
the smaller CPU-only build). The second opens the chapters in JupyterLab; from then on it is the only
command you need. On Windows, write `py -m venv .venv` and `.venv\\Scripts\\pip` and `.venv\\Scripts\\jupyter`.

## Exercises and self-checks

A coding exercise is a function whose body is `raise NotImplementedError`: replace that line with
your code. The cell ends with a self-check, such as `ptutils.check("ch02.causal_attention", causal_attention)`,
which prints one line each time the cell runs:

- `[pass] ...`: your function passes the public test cases;
- `[fail] ... Hint: ...`: a case failed; the line says which, and gives a hint;
- `[todo] ...`: not attempted yet.

A `[pass]` is not your grade: your teacher grades with other test cases, which you do not see.
Other exercises ask for a written answer; write it where your teacher asks (a Markdown cell of the
notebook, or a separate document).

Before you hand a chapter in, check that it runs from top to bottom as the grader runs it, in a
fresh kernel and in *fast mode* (`PTUTILS_FAST=1`: small data and few epochs, so it takes minutes):

```bash
PTUTILS_FAST=1 .venv/bin/python -m pytest --nbval-lax --nbval-current-env notebooks/{example}.ipynb
```

It prints `passed` when every cell ran without an error; a cell that raises costs points. To work in
fast mode in JupyterLab too, start it with `PTUTILS_FAST=1 .venv/bin/jupyter lab notebooks`.

## What to hand in

The chapter's notebook from `notebooks/`, with your code in it and saved, named as your teacher asks
(the grader takes one notebook per student, usually named after you: `ana.ipynb`). Keep the names of
the exercise functions, and do not delete or reorder cells: the grader runs your cells in order, each
with a time limit, and then calls your functions with its own test cases.

| chapter | graded exercises | points |
|---|---:|---:|
{table}

`ptutils/` is a copy of the book's library for students: the teacher's grading tools are not in it.
"""


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that the permissions below are read
            info.external_attr = 0o100644 << 16
            zf.writestr(info, entries[name], compresslevel=9)
    return buf.getvalue()


def _select(notebooks_dir: Path, chapters: list[str] | None) -> list[Path]:
    paths = sorted(notebooks_dir.glob("*.ipynb"))
    if not chapters:
        return paths
    out = []
    for c in chapters:
        hit = [p for p in paths if p.stem == c or p.stem.split("_")[0] == c.zfill(2)]
        if not hit:
            raise _UsageError(f"no chapter {c!r} in {notebooks_dir} (have {', '.join(p.stem[:2] for p in paths)})")
        out += [p for p in hit if p not in out]
    return sorted(out)


def build(student: Path, out: Path, reference: Path, chapters: list[str] | None = None) -> dict[str, bytes]:
    """Write the hand-out archive ``out`` from ``student/notebooks`` (module doc); return its entries
    (path -> bytes). Raises :class:`HandoutError` if something would leak or the audit is out of date."""
    root = Path(reference).resolve().parent
    folder = re.sub(r"[^\w.-]", "_", Path(out).stem) or "handout"
    chosen = _select(Path(student) / "notebooks", chapters)
    notebooks = {f"notebooks/{p.name}": p.read_bytes() for p in chosen}
    files = apply_decisions(package_files(root), notebooks)
    missing = missing_imports(files, repository_modules(root))
    if missing:
        raise HandoutError(f"the student copy imports modules it leaves out: {'; '.join(missing[:4])}")
    pts = points(reference)
    python = _project(root)["project"]["requires-python"].lstrip(">=~ ")
    pins = student_pins(root)
    entries = {**files, **notebooks,
               "requirements.txt": (REQUIREMENTS_HEADER + "".join(f"{n}=={pins[n]}\n" for n in sorted(pins))).encode(),
               "pyproject.toml": student_pyproject(root).encode(),
               "README.md": readme(folder, [p.stem for p in chosen], pts, python).encode()}
    bad = leaks(entries, _reference(reference))
    if bad:
        raise HandoutError(f"{len(bad)} thing(s) would be handed out that must not be: {'; '.join(bad[:3])}")
    entries = {f"{folder}/{k}": v for k, v in entries.items()}
    data = _zip_bytes(entries)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(out)
    return entries


# ---------------------------------------------------------------------------------------------
# The command


def _parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    epilog = __doc__[__doc__.index("Exit codes:"):].split("\n:func:`course_plan`")[0].strip()
    p = argparse.ArgumentParser(prog=PROG, description=doc[0] + "\n\n" + doc[1].strip(),
                                epilog=epilog.replace("``", ""), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("student", type=Path, help="the folder ptutils-student wrote (make student: student)")
    p.add_argument("out", type=Path, help="the archive to write, e.g. student/handout.zip; not inside "
                                          "student/notebooks or student/hidden")
    p.add_argument("--chapters", nargs="+", metavar="NN", help="only these chapters (02 or 02_core_concepts); "
                                                               "default: all")
    p.add_argument("--reference", type=Path, default=Path("notebooks"),
                   help="the chapters with their solutions, which say what must not be handed out (default: notebooks)")
    return p


def _check_usage(args) -> None:
    student, out, reference = args.student, args.out, args.reference
    if not student.is_dir():
        raise _UsageError(f"student folder {student} " + ("is not a folder" if student.exists() else
                                                            "does not exist; run ptutils-student (make student) first"))
    nbdir = student / "notebooks"
    if not nbdir.is_dir() or not sorted(nbdir.glob("*.ipynb")):
        raise _UsageError(f"no student notebooks in {nbdir}; run ptutils-student (make student) first")
    if not reference.is_dir() or not sorted(reference.glob("*.ipynb")):
        raise _UsageError(f"no chapters in the reference folder {reference} (the chapters with their solutions, "
                          "which the leak check needs)")
    if not (reference.resolve().parent / "pyproject.toml").is_file():
        raise _UsageError(f"no pyproject.toml beside {reference}: the reference folder must be the repository's notebooks/")
    if out.suffix != ".zip":
        raise _UsageError(f"the archive {out} must end in .zip")
    for folder in (nbdir, student / "hidden", reference):
        if _inside(out, folder):
            raise _UsageError(f"the archive {out} would lie in {folder}; write it elsewhere, e.g. {student / 'handout.zip'}")
    if out.is_dir():
        raise _UsageError(f"the archive {out} is a folder")
    for path in _select(nbdir, args.chapters):
        check_notebook(path)


def main(argv=None) -> int:
    """The command; returns the exit code (module doc)."""
    args = parse(_parser(), argv)
    if isinstance(args, int):  # --help (0) or a usage error (2), already printed by argparse
        return args
    try:
        _check_usage(args)
    except _UsageError as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    try:
        entries = build(args.student, args.out, args.reference, args.chapters)
    except HandoutError as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: error: cannot write {args.out}: {_one_line(e)}", file=sys.stderr)
        return 2
    n = sum(1 for k in entries if k.endswith(".ipynb"))
    print(f"wrote {args.out}: {n} student notebooks, the student copy of ptutils, requirements.txt, README.md "
          f"({len(entries)} files, {args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

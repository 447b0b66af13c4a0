"""Paired designs are analysed paired, choices are made on validation, and no hidden default changes an experiment.

Issue 16, part 2. Each test failed before its fix: ``mcnemar_bounds`` did not exist;
chapters 1, 3 and 6 trained with ``train_classifier``'s weight decay without
saying so (chapter 3's SGD exercise then compared a decayed SGD with an undecayed Adam);
chapter 6 summarised its paired draws as mean ± SD per method and chose its design
variants and fine-tuning strategy by test accuracy; chapter 3 put "± SD" next to a
baseline; chapter 7 read a paired gap off one accuracy's unpaired Wilson half-width.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from ptutils.metrics import mcnemar, mcnemar_bounds

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells(path, kind):
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def code_trees(path):
    for src in cells(path, "code"):
        src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            yield ast.parse(src)
        except SyntaxError:  # a Colab cell with an indented magic
            continue


def chapter(prefix):
    return next(p for p in CHAPTERS if p.name.startswith(prefix))


# ---------------------------------------------------------------- mcnemar_bounds
def test_mcnemar_bounds_are_the_extremes_over_every_set_of_answers():
    n = 6
    y = np.ones(n, dtype=int)
    extremes = {}
    for a in itertools.product((0, 1), repeat=n):
        for b in itertools.product((0, 1), repeat=n):
            p = mcnemar(y, np.array(a), np.array(b))["p_value"]
            key = (sum(a), sum(b))
            lo, hi = extremes.get(key, (1.0, 0.0))
            extremes[key] = (min(lo, p), max(hi, p))
    for (ra, rb), (lo, hi) in extremes.items():
        r = mcnemar_bounds(ra / n, rb / n, n)
        assert r["p_min"] == pytest.approx(lo) and r["p_max"] == pytest.approx(hi), (ra, rb)
        assert r["discordant_min"] == abs(ra - rb)


def test_mcnemar_bounds_reject_accuracies_that_are_not_counts():
    with pytest.raises(ValueError, match="not a count"):
        mcnemar_bounds(0.3333, 0.5, 10)
    with pytest.raises(ValueError, match="n must be"):
        mcnemar_bounds(0.5, 0.5, 0)


# ---------------------------------------------------------------- hidden defaults
@pytest.mark.parametrize("prefix", ["01", "03", "06"])
def test_every_train_classifier_call_names_its_weight_decay(prefix):
    """``train_classifier`` decays weight matrices by default; an experiment says so in the cell.

    (Chapters 12 and 15 still rely on the default; not yet re-run with it written out.)
    """
    path = chapter(prefix)
    missing = []
    for tree in code_trees(path):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if name in ("train_classifier", "train_student") and "weight_decay" not in {k.arg for k in node.keywords}:
                    missing.append(f"line {node.lineno} of a cell: {name}(...)")
    assert not missing, f"{path.name}: weight_decay left to the default in {missing}"


# ---------------------------------------------------------------- unpaired summaries of paired designs
SD_GLUE = re.compile(r"±\s*\{glue:text\}`(ch\d\d_\w*(?:std|sd|halfwidth)\w*)")


@pytest.mark.parametrize("prefix", ["01", "03", "06", "07"])
def test_no_paired_comparison_is_summarised_as_plus_minus_a_spread(prefix):
    hits = [m.group(1) for md in cells(chapter(prefix), "markdown") for m in SD_GLUE.finditer(md)]
    assert not hits, f"chapter {prefix} reads a comparison off a per-arm ± spread: {hits}"


def _calls(path, name):
    return [node for tree in code_trees(path) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == name]


@pytest.mark.parametrize("prefix", ["03", "06"])
def test_digit_chapters_compare_methods_with_the_paired_bootstrap(prefix):
    assert _calls(chapter(prefix), "paired_bootstrap"), f"chapter {prefix} has no paired comparison"


def test_chapter6_keeps_no_per_method_standard_deviation():
    src = "\n".join(cells(chapter("06"), "code"))
    assert "np.std(" not in src and "ddof=1" not in src


def _names(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def test_chapter6_design_choices_are_scored_on_validation_not_test():
    """The pre-training length, the probe kind and the strategy demo read ``val``; only the experiment reads ``test``."""
    path = chapter("06")
    src = "\n".join(cells(path, "code"))
    assert re.search(r"pool_fit,\s*val\s*=\s*train_test_split\(pool", src), "no validation split carved from the pool"
    scored = 0
    for tree in code_trees(path):
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and _names(node.value) and any(
                    {"val_acc", "acc_ns"} & _names(t) for t in node.targets):
                assert "test" not in _names(node.value) and "val" in _names(node.value), ast.unparse(node)[:120]
                scored += 1
            if isinstance(node, ast.For) and "strategy" in _names(node.target):
                assert "test" not in _names(node) and "val" in _names(node), "strategies scored on the test set"
    assert scored >= 2, "the variants and the shift exercise are not scored on validation"
    assert re.search(r"simclr_epochs,\s*probe_kind\s*=\s*max\(val_acc", src), "the variants are not chosen on validation"


def test_chapter7_bounds_the_paired_test_instead_of_an_unpaired_halfwidth():
    path = chapter("07")
    assert _calls(path, "mcnemar_bounds")
    assert not any("ch07_val_halfwidth" in md for md in cells(path, "markdown"))


def test_chapter1_reads_the_labels_saved_as_the_bracket_the_grid_supports():
    """Not one ratio read off a power-of-four grid near chance: both ends of the bracket, glued, with intervals."""
    md = "\n".join(cells(chapter("01"), "markdown"))
    for name in ("ch01_k_before", "ch01_k_match", "ch01_saving_low", "ch01_saving_high",
                 "ch01_tfidf_before_int", "ch01_tfidf_match_int", "ch01_grid_step"):
        assert f"`{name}" in md, name

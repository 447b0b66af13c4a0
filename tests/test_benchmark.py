"""The sentence-polarity benchmark: loader, fixed split, cache, intervals and paired tests."""

import shutil

import numpy as np
import pytest

from ptutils import cache
from ptutils.data import Benchmark, load_rt_polarity, rt_polarity_benchmark, rt_polarity_dir
from ptutils.metrics import accuracy_interval, format_interval, mcnemar, paired_bootstrap, verdict


# --- loader ---------------------------------------------------------------------------------

def test_loader_returns_exactly_the_published_snippets():
    texts, labels = load_rt_polarity()
    assert len(texts) == 10662 and labels.shape == (10662,) and labels.dtype == np.int64
    assert (labels == 1).sum() == 5331 and (labels == 0).sum() == 5331
    assert all(t and t == t.strip() and "\n" not in t for t in texts)
    # the cp1252 trap: an ellipsis survives as U+2026, no U+0085 (NEXT LINE) anywhere
    assert any("\u2026" in t for t in texts) and not any("\x85" in t for t in texts)
    assert texts[0].startswith("the rock is destined")  # first positive snippet


def test_loader_fails_clearly_on_missing_or_altered_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="rt-polarity.pos"):
        load_rt_polarity(tmp_path)
    for f in rt_polarity_dir().glob("rt-polarity.*"):
        shutil.copy(f, tmp_path / f.name)
    load_rt_polarity(tmp_path)  # an exact copy loads
    neg = tmp_path / "rt-polarity.neg"
    raw = bytearray(neg.read_bytes())
    raw[100] ^= 1  # one flipped bit
    neg.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="altered"):
        load_rt_polarity(tmp_path)
    neg.write_bytes(bytes(raw[:-200]))  # truncated
    with pytest.raises(ValueError, match="altered"):
        load_rt_polarity(tmp_path)


def test_split_is_fixed_stratified_and_disjoint():
    b = rt_polarity_benchmark(fast=False)
    again = rt_polarity_benchmark(fast=False)
    assert np.array_equal(b.test, again.test) and np.array_equal(b.pool, again.pool)
    assert len(b.test) == 2000 and len(b.pool) == 8662
    assert b.y(b.test).sum() == 1000
    assert np.intersect1d(b.test, b.pool).size == 0
    assert np.array_equal(np.union1d(b.test, b.pool), np.arange(10662))
    other = rt_polarity_benchmark(fast=False, seed=1)
    assert not np.array_equal(other.test, b.test)
    assert b.fingerprint() == again.fingerprint() != other.fingerprint()


def test_fast_mode_is_a_subsample_of_the_same_split():
    full, fast = rt_polarity_benchmark(fast=False), rt_polarity_benchmark(fast=True)
    assert set(fast.test) <= set(full.test) and set(fast.pool) <= set(full.pool)
    assert len(fast.test) == 400 and len(fast.pool) == 1200 and fast.y(fast.test).sum() == 200


def test_labelled_draws_are_nested_stratified_and_inside_the_pool():
    b = rt_polarity_benchmark(fast=False)
    small, big = b.labelled(4, draw=3), b.labelled(64, draw=3)
    assert set(small) <= set(big) and len(big) == 128 and b.y(big).sum() == 64
    assert set(big) <= set(b.pool)
    assert not np.array_equal(b.labelled(64, draw=0), big)
    assert np.array_equal(b.labelled(64, draw=3), big)
    train, val = b.split_pool(500)
    assert len(val) == 1000 and b.y(val).sum() == 500
    assert np.intersect1d(train, val).size == 0 and set(train) | set(val) == set(b.pool)
    assert set(b.labelled(16, within=train)) <= set(train)
    everything = b.labelled(10**6)
    assert np.array_equal(everything, b.pool)
    with pytest.raises(ValueError, match="k must be"):
        b.labelled(0)
    with pytest.raises(ValueError, match="val_per_class"):
        b.split_pool(0)


def test_benchmark_refuses_an_overlapping_split():
    with pytest.raises(AssertionError, match="overlap"):
        Benchmark(["a", "b"], np.array([0, 1]), [0], [0, 1], seed=0, fast=False)


# --- cache ----------------------------------------------------------------------------------

@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    import ptutils.config as config

    monkeypatch.setattr(config, "cache_dir", lambda: tmp_path)
    return tmp_path


def test_cache_reuses_only_the_same_recipe(tmp_cache):
    calls = []

    def compute(value):
        def f():
            calls.append(value)
            return np.full(3, value, dtype=np.float32)
        return f

    r = {"what": "x", "lr": 0.1, "texts": cache.fingerprint(["a", "b"])}
    assert cache.cached_array("thing", r, compute(1.0))[0] == 1.0
    assert cache.cached_array("thing", dict(r), compute(2.0))[0] == 1.0  # same recipe: loaded
    assert calls == [1.0]
    changed = dict(r, lr=0.2)  # a changed recipe can never load the stale artefact
    assert cache.cached_array("thing", changed, compute(3.0))[0] == 3.0
    other_texts = dict(r, texts=cache.fingerprint(["a", "c"]))
    assert cache.cached_array("thing", other_texts, compute(4.0))[0] == 4.0
    assert calls == [1.0, 3.0, 4.0]


def test_cache_recomputes_corrupted_or_substituted_files(tmp_cache):
    r1, r2 = {"v": 1}, {"v": 2}
    cache.cached_array("a", r1, lambda: np.arange(5.0))
    cache.cached_array("a", r2, lambda: np.arange(5.0) * 10)
    p1, p2 = cache.artefact_path("a", r1), cache.artefact_path("a", r2)
    shutil.copy(p2, p1)  # someone copies another recipe's file over this one
    assert cache.cached_array("a", r1, lambda: np.arange(5.0) + 100)[0] == 100
    p1.write_bytes(p1.read_bytes()[:50])  # truncated
    assert cache.cached_array("a", r1, lambda: np.arange(5.0) + 200)[0] == 200
    # an intact archive whose array was edited in place fails its checksum
    with np.load(p1) as f:
        parts = {k: f[k] for k in f.files}
    parts["array"] = parts["array"] + 1
    np.savez(p1, **parts)
    assert cache.cached_array("a", r1, lambda: np.arange(5.0) + 300)[0] == 300


def test_cache_rejects_bad_recipes_names_and_results(tmp_cache):
    for bad in ({}, {"f": lambda: 0}, {"x": float("nan")}, None):
        with pytest.raises(TypeError, match="recipe"):
            cache.recipe_key(bad)
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="artefact name"):
            cache.artefact_path(bad, {"v": 1})
    with pytest.raises(TypeError, match="numeric NumPy array"):
        cache.cached_array("b", {"v": 1}, lambda: [1, 2])
    for bad in (lambda: {}, lambda: {"x": [1, 2]}, lambda: {"bad name": np.zeros(2)}, lambda: {"__recipe__": np.zeros(2)}):
        with pytest.raises(TypeError, match="compute"):
            cache.cached_arrays("c", {"v": 1}, bad)
    two = cache.cached_arrays("d", {"v": 1}, lambda: {"x": np.zeros(2), "y": np.ones(3)}, verbose=False)
    again = cache.cached_arrays("d", {"v": 1}, lambda: 1 / 0, verbose=False)  # loaded: compute not called
    assert set(again) == {"x", "y"} and np.array_equal(again["y"], two["y"])
    assert cache.recipe_key({"a": 1, "b": 2}) == cache.recipe_key({"b": 2, "a": 1})
    assert cache.fingerprint(["ab", "c"]) != cache.fingerprint(["a", "bc"])


def test_model_dir_is_trusted_only_when_finished_by_its_recipe(tmp_cache):
    r = {"model": "tiny", "steps": 10}
    d = cache.cached_model_dir("tiny-model", r)
    assert not cache.has_model(d, r)
    with pytest.raises(FileNotFoundError, match="no files"):
        cache.finish_model_dir(d, r)
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"weights")
    assert not cache.has_model(d, r)  # saved but not finished (a crash mid-save)
    cache.finish_model_dir(d, r)
    assert cache.has_model(d, r)
    assert not cache.has_model(d, dict(r, steps=11))
    assert cache.cached_model_dir("tiny-model", dict(r, steps=11)) != d
    (d / "model.safetensors").write_bytes(b"weightz")  # corrupted after finishing
    assert not cache.has_model(d, r)
    (d / cache.MODEL_RECIPE_FILE).write_text("not json")
    assert not cache.has_model(d, r)


# --- intervals and paired tests -------------------------------------------------------------

def test_wilson_interval_matches_statsmodels_formula():
    y = np.array([1] * 100)
    pred = np.array([1] * 80 + [0] * 20)
    r = accuracy_interval(y, pred)
    assert r["accuracy"] == 0.8 and r["n"] == 100
    # Wilson 95 % for 80/100 (Newcombe 1998): [0.7112, 0.8666]
    assert abs(r["low"] - 0.7112) < 5e-4 and abs(r["high"] - 0.8666) < 5e-4
    perfect = accuracy_interval(y, y)
    assert perfect["high"] == pytest.approx(1.0) and perfect["low"] < 1.0
    wide, narrow = accuracy_interval(y[:20], pred[:20] * 0 + 1), accuracy_interval(np.ones(2000, int), np.r_[np.ones(1600, int), np.zeros(400, int)])
    assert narrow["high"] - narrow["low"] < 0.04 < wide["high"] - wide["low"]


def test_paired_bootstrap_sees_a_real_difference_and_not_a_fake_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    a = np.where(rng.random(2000) < 0.85, y, 1 - y)
    b = np.where(rng.random(2000) < 0.75, y, 1 - y)
    r = paired_bootstrap(y, a, b)
    assert r["low"] > 0.05 and r["diff"] == pytest.approx((a == y).mean() - (b == y).mean())
    assert verdict(r["low"], r["high"]) == "better"
    assert verdict(*[-x for x in (r["high"], r["low"])]) == "worse"
    same = paired_bootstrap(y, a, a.copy())
    assert same["diff"] == same["low"] == same["high"] == 0
    assert verdict(same["low"], same["high"]) == "no detectable difference"
    # a model that differs from A on 20 examples, 10 it gets right and 10 it gets wrong:
    # equally accurate, and the interval straddles 0
    c = a.copy()
    flip = np.r_[np.flatnonzero(a == y)[:10], np.flatnonzero(a != y)[:10]]
    c[flip] = 1 - c[flip]
    r = paired_bootstrap(y, a, c)
    assert r["low"] < 0 < r["high"]


def test_paired_bootstrap_over_draws_is_wider_when_draws_disagree():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    good = np.stack([np.where(rng.random(1000) < 0.8, y, 1 - y) for _ in range(5)])
    steady = np.stack([np.where(rng.random(1000) < 0.7, y, 1 - y) for _ in range(5)])
    shaky = np.stack([np.where(rng.random(1000) < p, y, 1 - y) for p in (0.5, 0.9, 0.55, 0.85, 0.7)])
    r_steady, r_shaky = paired_bootstrap(y, good, steady), paired_bootstrap(y, good, shaky)
    assert r_steady["draws"] == 5
    assert (r_shaky["high"] - r_shaky["low"]) > 2 * (r_steady["high"] - r_steady["low"])


def test_mcnemar_counts_discordant_pairs():
    y = np.zeros(30, int)
    a = np.zeros(30, int)
    b = np.zeros(30, int)
    b[:10] = 1  # B wrong on 10 that A gets right
    a[10:12] = 1  # A wrong on 2 that B gets right
    r = mcnemar(y, a, b)
    assert (r["a_only"], r["b_only"]) == (10, 2)
    from scipy.stats import binomtest
    assert r["p_value"] == pytest.approx(binomtest(10, 12, 0.5).pvalue)
    assert mcnemar(y, a, a)["p_value"] == 1.0


@pytest.mark.parametrize("bad", [
    (np.array([0, 1]), np.array([0, 1, 1])),  # wrong length
    (np.array([]), np.array([])),  # empty
    (np.array([0.0, 1.0]), np.array([0.0, 1.0])),  # float labels
    (np.array(["pos", "neg"]), np.array(["pos", "neg"])),  # strings
])
def test_interval_functions_reject_bad_input(bad):
    with pytest.raises(ValueError):
        accuracy_interval(*bad)
    with pytest.raises(ValueError):
        paired_bootstrap(bad[0], bad[1], bad[1])


def test_paired_bootstrap_requires_pairs_and_verdict_an_interval():
    y = np.array([0, 1, 1, 0])
    with pytest.raises(ValueError, match="paired"):
        paired_bootstrap(y, np.stack([y, y]), y)
    with pytest.raises(ValueError, match="low <= high"):
        verdict(0.1, -0.1)
    assert format_interval(0.012, 0.034) == "[+1.2, +3.4] points"
    assert format_interval(0.7, 0.75, points=False) == "[70.0%, 75.0%]"


def test_minilm_embeddings_cache_key_follows_texts_and_settings(tmp_cache):
    from ptutils.pretrained import load_text_model, minilm_embeddings, sentence_embeddings

    texts = ["a fine film .", "dull , dull , dull ."]
    e1 = minilm_embeddings(texts, verbose=False)
    tok, model = load_text_model("minilm")
    assert np.abs(e1 - sentence_embeddings(texts, tok, model)).max() < 1e-5
    assert len(list(tmp_cache.glob("minilm-embeddings-*.npz"))) == 1
    e2 = minilm_embeddings(texts[::-1], verbose=False)  # other texts: another key, right order
    assert np.allclose(e2, e1[::-1], atol=1e-5)
    minilm_embeddings(texts, max_length=8, verbose=False)
    assert len(list(tmp_cache.glob("minilm-embeddings-*.npz"))) == 3

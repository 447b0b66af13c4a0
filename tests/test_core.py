import subprocess
import sys

import numpy as np
import pytest
import torch

import ptutils


def _config_in(env: dict) -> str:
    code = "import ptutils.config as c; print(c.mode(), c.is_online(), c.pick(full=20, fast=2))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=False)


@pytest.mark.parametrize("fast,online,expected", [
    ("1", "0", "fast False 2"), ("0", "", "full False 20"), ("", "1", "full True 20"),
])
def test_switches(fast, online, expected):
    import os
    env = dict(os.environ, PTUTILS_FAST=fast, PTUTILS_ONLINE=online)
    r = _config_in(env)
    assert r.stdout.strip() == expected, r.stderr


def test_bad_switch_value_is_an_error():
    import os
    r = _config_in(dict(os.environ, PTUTILS_FAST="maybe"))
    assert r.returncode != 0 and "PTUTILS_FAST" in r.stderr


def test_set_seed_reproduces():
    ptutils.set_seed(3)
    a = (torch.randn(3), np.random.rand(2))
    ptutils.set_seed(3)
    b = (torch.randn(3), np.random.rand(2))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    g1, g2 = ptutils.set_seed(5), ptutils.set_seed(5)
    assert torch.equal(torch.rand(2, generator=g1), torch.rand(2, generator=g2))
    with pytest.raises(ValueError, match="non-negative"):
        ptutils.set_seed(-1)


def test_setup_notebook_reports(capsys):
    info = ptutils.setup_notebook(seed=1)
    out = capsys.readouterr().out
    assert info["seed"] == 1 and info["mode"] in out and "torch" in out


def test_show_source_has_the_real_code():
    md = ptutils.show_source(ptutils.scaled_dot_product_attention, display=False)
    assert "def scaled_dot_product_attention" in md.data
    assert "ptutils/attention.py" in md.data
    with pytest.raises(TypeError, match="cannot show"):
        ptutils.show_source(3, display=False)


def test_polarity_loader():
    texts, labels = ptutils.load_polarity()
    assert len(texts) == len(labels) == 200
    assert set(labels.tolist()) == {0, 1} and labels.sum() == 100
    assert not any(t.startswith("__label__") for t in texts)


def test_digits_loader():
    x, y = ptutils.load_digits_images()
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (1797,)


def test_missing_data_file_is_named():
    from ptutils.data import gensim_data_path
    with pytest.raises(FileNotFoundError, match="no_such_file"):
        gensim_data_path("no_such_file.txt")

"""ptutils.checkpoint and ptutils.pooling: loading that names every mismatch; pooling that refuses empty rows."""

import pytest
import torch
from torch import nn

from ptutils.checkpoint import copy_weights, load_report, load_state_dict_strict
from ptutils.pooling import mean_pool


def _model():
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))


def test_strict_load_names_every_problem():
    m, state = _model(), _model().state_dict()
    load_state_dict_strict(m, state)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), state.values(), strict=True))
    bad = dict(state)
    bad["0.weight"] = bad["0.weight"].double()  # would be converted silently by load_state_dict
    with pytest.raises(ValueError, match=r"dtype mismatches \['0.weight: checkpoint torch.float64"):
        load_state_dict_strict(m, bad)
    bad = {**state, "0.bias": [0.0] * 4}
    with pytest.raises(ValueError, match=r"not tensors \['0.bias'\]"):
        load_state_dict_strict(m, bad)
    bad = {k: v for k, v in state.items() if k != "1.weight"}
    bad["extra"] = torch.zeros(1)
    bad["2.weight"] = torch.zeros(3, 4)
    with pytest.raises(ValueError) as e:
        load_state_dict_strict(m, bad)
    assert "missing keys ['1.weight']" in str(e.value) and "unexpected keys ['extra']" in str(e.value)
    assert "2.weight: checkpoint (3, 4) vs model (2, 4)" in str(e.value)
    with pytest.raises(TypeError, match="state_dict"):
        load_state_dict_strict(m, list(state.items()))


def test_copy_weights_and_report():
    a, b = _model(), _model()
    copy_weights(a, b)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="missing keys"):
        copy_weights(nn.Linear(3, 4), b)
    report = load_report(b, {"0.weight": torch.zeros(4, 3), "0.bias": torch.zeros(5), "x": torch.zeros(1)})
    assert report["matched"] == ["0.weight"] and report["shape_mismatches"] == ["0.bias"]
    assert report["unexpected_keys"] == ["x"] and "2.weight" in report["missing_keys"]


def test_mean_pool_averages_real_tokens_and_refuses_empty_rows():
    h = torch.arange(12.0).reshape(1, 3, 4).repeat(2, 1, 1)  # (2, 3, 4)
    m = torch.tensor([[1, 1, 0], [1, 0, 0]])
    out = mean_pool(h, m)
    torch.testing.assert_close(out, torch.stack([h[0, :2].mean(0), h[1, 0]]))
    with pytest.raises(ValueError, match="no real token"):
        mean_pool(h, torch.tensor([[1, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        mean_pool(h, m[:, :2])

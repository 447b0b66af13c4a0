"""FedAvg's average equals Flower's (its function and its strategy) on the same client updates;
the clients' shares, the array conversions, and the inputs that must be refused."""

import numpy as np
import pytest
import torch

import ptutils  # noqa: F401  (before flwr, as in every chapter: it switches Flower's telemetry off)
from flwr.common import FitRes, Status, Code, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedAvg
from flwr.server.strategy.aggregate import aggregate

from ptutils import DigitCNN, federated


def _states(k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = DigitCNN().state_dict()
    return [{n: t + torch.randn(t.shape, generator=g) for n, t in base.items()} for _ in range(k)]


def test_a_hand_computed_average():
    a, b = {"w": torch.tensor([0.0, 4.0])}, {"w": torch.tensor([3.0, 0.0])}
    out = federated.fedavg_average([a, b], [1, 2])  # weights 1/3, 2/3
    torch.testing.assert_close(out["w"], torch.tensor([2.0, 4 / 3]))
    assert a["w"].tolist() == [0.0, 4.0]  # inputs untouched


def test_equals_flowers_aggregate_and_its_fedavg_strategy():
    states, sizes = _states(), [37, 100, 5, 58]
    ours = federated.to_arrays(federated.fedavg_average(states, sizes))
    theirs = aggregate([(federated.to_arrays(s), n) for s, n in zip(states, sizes)])
    res = [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(federated.to_arrays(s)), n, {}))
           for s, n in zip(states, sizes)]
    params, _ = FedAvg().aggregate_fit(1, res, [])
    for a, b, c in zip(ours, theirs, parameters_to_ndarrays(params)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-6)
    # and it is not a trivially equal answer: the unweighted mean differs
    plain = [np.mean([federated.to_arrays(s)[i] for s in states], axis=0) for i in range(len(ours))]
    assert max(float(np.abs(a - p).max()) for a, p in zip(ours, plain)) > 0.1


def test_one_client_is_its_own_average_and_equal_sizes_give_the_mean():
    states = _states(3)
    for k in states[0]:
        torch.testing.assert_close(federated.fedavg_average(states[:1], [7])[k], states[0][k])
        torch.testing.assert_close(federated.fedavg_average(states, [5, 5, 5])[k],
                                   sum(s[k] for s in states) / 3)


@pytest.mark.parametrize("states, sizes, err, msg", [
    ([], [], ValueError, "at least one"),
    ([{"w": torch.zeros(2)}] * 2, [1], ValueError, "2 states but 1 sizes"),
    ([{"w": torch.zeros(2)}] * 2, [1, 0], ValueError, "whole numbers >= 1"),
    ([{"w": torch.zeros(2)}] * 2, [1, 2.5], ValueError, "whole numbers >= 1"),
    ([{"w": torch.zeros(2)}] * 2, [1, True], ValueError, "whole numbers >= 1"),
    ([{"w": torch.zeros(2)}, {"v": torch.zeros(2)}], [1, 1], ValueError, "missing \\['w'\\], extra \\['v'\\]"),
    ([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}], [1, 1], ValueError, "shape \\(3,\\)"),
    ([{"n": torch.tensor(3)}, {"n": torch.tensor(4)}], [1, 1], TypeError, "not a floating-point"),
    ([{"w": np.zeros(2)}, {"w": np.zeros(2)}], [1, 1], TypeError, "numpy.ndarray, not a torch tensor"),
    ([{"w": torch.zeros(2)}, {"w": torch.zeros(2, dtype=torch.float64)}], [1, 1], TypeError, "one dtype"),
    ([{"a": torch.zeros(1), "b": torch.zeros(1)}, {"b": torch.zeros(1), "a": torch.zeros(1)}], [1, 1],
     ValueError, "different order"),
])
def test_bad_inputs_are_refused_by_name(states, sizes, err, msg):
    with pytest.raises(err, match=msg):
        federated.fedavg_average(states, sizes)


@pytest.mark.parametrize("non_iid", [False, True])
def test_split_clients_deals_every_example_once(non_iid):
    labels = np.repeat(np.arange(10), 30)
    pool = np.random.default_rng(1).permutation(300)[:200]
    parts = federated.split_clients(labels, pool, 10, non_iid=non_iid, seed=3)
    assert len(parts) == 10 and sorted(np.concatenate(parts).tolist()) == sorted(pool.tolist())
    classes = [len(set(labels[p].tolist())) for p in parts]
    if non_iid:
        assert max(classes) <= 4  # two shards of a sorted pool: a few classes each
    else:
        assert min(classes) >= 5
    again = federated.split_clients(labels, pool, 10, non_iid=non_iid, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_split_clients_refuses_impossible_splits():
    with pytest.raises(ValueError, match="too few"):
        federated.split_clients(np.zeros(5), np.arange(5), 10)
    with pytest.raises(ValueError, match="two shards"):
        federated.split_clients(np.zeros(15), np.arange(15), 10, non_iid=True)
    with pytest.raises(ValueError, match="n_clients"):
        federated.split_clients(np.zeros(5), np.arange(5), 0)
    with pytest.raises(ValueError, match="n_clients"):
        federated.split_clients(np.zeros(5), np.arange(5), True)
    with pytest.raises(ValueError, match="boolean mask"):
        federated.split_clients(np.zeros(30), np.ones(30, dtype=bool), 3)
    with pytest.raises(ValueError, match="integer indices"):
        federated.split_clients(np.zeros(30), np.arange(30.0), 3)
    with pytest.raises(ValueError, match="more than once"):
        federated.split_clients(np.zeros(30), np.r_[np.arange(29), 0], 3)


def test_arrays_round_trip_and_refuse_another_models_weights():
    state = _states(1)[0]
    back = federated.from_arrays(federated.to_arrays(state), state)
    assert list(back) == list(state)
    for k in state:
        assert torch.equal(back[k], state[k])
    arrays = federated.to_arrays(state)
    with pytest.raises(ValueError, match="not this model's"):
        federated.from_arrays(arrays[:-1], state)
    with pytest.raises(ValueError, match="has shape"):
        federated.from_arrays(arrays[::-1], state)  # the right arrays in the wrong order
    with pytest.raises(TypeError, match="float64"):
        federated.from_arrays([a.astype(np.float64) for a in arrays], state)  # never a silent cast


def test_flower_telemetry_is_off_once_ptutils_is_imported():
    import os

    import flwr.supercore.telemetry as telemetry

    assert os.environ["FLWR_TELEMETRY_ENABLED"] == "0" and telemetry.FLWR_TELEMETRY_ENABLED == "0"

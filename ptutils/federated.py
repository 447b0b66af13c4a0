"""Federated averaging (FedAvg): the server's one line of arithmetic, and the clients' shares of the data.

In each round of FedAvg the server sends the current weights to the clients, each
client trains on its own data, and the server replaces the weights by the average of
the clients' weights, weighted by how many examples each holds (chapter 15,
eq-fedavg). :func:`fedavg_average` is that average; :func:`split_clients` deals a pool
of examples out to simulated clients, IID or non-IID; :func:`to_arrays` and
:func:`from_arrays` turn a ``state_dict`` into the list of NumPy arrays a Flower client
sends (Flower's ``NDArrays``) and back, so the same clients run on Flower's engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch

# Flower reports usage to its servers unless told not to, and reads the variable once, when
# it is imported; `import ptutils` comes first in every chapter. (A reader's own setting wins.)
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")


def fedavg_average(states: Sequence[Mapping[str, torch.Tensor]], sizes: Sequence[int]) -> dict[str, torch.Tensor]:
    """The FedAvg update: ``sum_k n_k / sum_j n_j * theta_k``, entry by entry.

    Args:
        states: one ``state_dict`` per client, all with the same keys, shapes and
            floating-point dtypes.
        sizes: how many training examples each client holds (its weight ``n_k``).

    Returns:
        A new ``state_dict`` (the clients' tensors are not changed).

    Raises:
        ValueError: no clients, ``len(sizes) != len(states)``, a size that is not a
            whole number >= 1, or states with different keys or shapes.
        TypeError: a tensor that is not floating point (an average of integer
            counters would be silently truncated when loaded back).
    """
    if len(states) == 0:
        raise ValueError("fedavg_average needs at least one client's state")
    if len(sizes) != len(states):
        raise ValueError(f"{len(states)} states but {len(sizes)} sizes: one size per client")
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"client sizes must be whole numbers >= 1 (examples held), got {n!r}")
    keys = list(states[0])
    for i, s in enumerate(states):
        if list(s) != keys:
            missing, extra = set(keys) - set(s), set(s) - set(keys)
            what = (f"missing {sorted(missing)}, extra {sorted(extra)}" if missing or extra
                    else "the same entries in a different order")
            raise ValueError(f"client {i}'s state has other entries than client 0's ({what}): not the same model")
        for k in keys:
            t = s[k]
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"client {i}'s {k!r} is a {type(t).__module__}.{type(t).__name__}, "
                                "not a torch tensor (federated.from_arrays converts Flower's arrays)")
            if not t.is_floating_point():
                raise TypeError(f"client {i}'s {k!r} is {t.dtype}, not a floating-point tensor: "
                                "FedAvg averages weights only")
            ref = states[0][k]
            if t.shape != ref.shape:
                raise ValueError(f"client {i}'s {k!r} has shape {tuple(t.shape)}, client 0's "
                                 f"{tuple(ref.shape)}: not the same model")
            if t.dtype != ref.dtype:
                raise TypeError(f"client {i}'s {k!r} is {t.dtype}, client 0's {ref.dtype}: "
                                "convert every client to one dtype first")
    total = sum(int(n) for n in sizes)
    return {k: sum(s[k] * (int(n) / total) for s, n in zip(states, sizes)) for k in keys}


def split_clients(labels: np.ndarray, pool: np.ndarray, n_clients: int = 10, *, non_iid: bool = False,
                  seed: int = 0) -> list[np.ndarray]:
    """Deal the examples ``pool`` (indices into ``labels``) out to ``n_clients`` clients.

    IID: each client a random, equal-as-possible share. Non-IID: the pool sorted by
    label is cut into ``2 * n_clients`` shards and each client gets two random shards,
    so it sees mostly two classes (as when each hospital sees different patients).
    Every example goes to exactly one client.

    Raises:
        ValueError: ``pool`` not a 1-D array of distinct integer indices, ``n_clients``
            not a whole number >= 1, or too few examples for every client to hold some.
    """
    pool = np.asarray(pool)
    if pool.ndim != 1 or not np.issubdtype(pool.dtype, np.integer):
        raise ValueError(f"pool must be a 1-D array of integer indices, got shape {pool.shape} and dtype "
                         f"{pool.dtype} (a boolean mask? use np.flatnonzero(mask))")
    if len(np.unique(pool)) != len(pool):
        raise ValueError("pool holds an index more than once: every example must go to exactly one client")
    if isinstance(n_clients, bool) or not isinstance(n_clients, (int, np.integer)) or n_clients < 1:
        raise ValueError(f"n_clients must be a whole number >= 1, got {n_clients!r}")
    if len(pool) < (2 * n_clients if non_iid else n_clients):
        raise ValueError(f"{len(pool)} examples are too few for {n_clients} clients"
                         f"{' of two shards each' if non_iid else ''}")
    rng = np.random.default_rng(seed)
    if not non_iid:
        return np.array_split(rng.permutation(pool), n_clients)
    order = pool[np.argsort(np.asarray(labels)[pool], kind="stable")]  # sorted by class
    shards = np.array_split(order, 2 * n_clients)
    pick = rng.permutation(2 * n_clients)
    return [np.concatenate([shards[pick[2 * k]], shards[pick[2 * k + 1]]]) for k in range(n_clients)]


def to_arrays(state: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
    """A ``state_dict`` as a list of NumPy arrays in its key order (what a Flower client sends)."""
    return [t.detach().cpu().numpy().copy() for t in state.values()]


def from_arrays(arrays: Sequence[np.ndarray], like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`to_arrays`: arrays back into a ``state_dict`` shaped like ``like``.

    Raises:
        ValueError: a different number of arrays than ``like`` has entries, or an array
            whose shape is not its entry's (arrays from another model; arrays in another
            order are caught only where the shapes differ).
        TypeError: an array whose dtype is not its entry's (nothing is cast silently).
    """
    if len(arrays) != len(like):
        raise ValueError(f"{len(arrays)} arrays for a state with {len(like)} entries: not this model's weights")
    out = {}
    for (k, ref), a in zip(like.items(), arrays):
        a = np.asarray(a)
        if tuple(a.shape) != tuple(ref.shape):
            raise ValueError(f"array for {k!r} has shape {tuple(a.shape)}, the model's is {tuple(ref.shape)}")
        t = torch.from_numpy(a.copy())
        if t.dtype != ref.dtype:
            raise TypeError(f"array for {k!r} is {a.dtype}, the model's entry is {ref.dtype}")
        out[k] = t
    return out

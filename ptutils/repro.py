"""Seeding: the one helper every notebook and test uses."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def set_seed(seed: int = 0, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch, and return a seeded ``torch.Generator``.

    Args:
        seed: the seed (a non-negative integer).
        deterministic: also ask PyTorch for deterministic kernels where it has them
            (``warn_only``, so an op without one still runs).

    Returns:
        A ``torch.Generator`` seeded with ``seed``, for code that wants its own stream
        (data loaders, samplers) without disturbing the global one.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    g = torch.Generator()
    g.manual_seed(seed)
    return g

"""Moving weights between models: strictly, or with a report of what would be skipped.

A pre-trained model is only as good as the weights that actually arrive in it.
``model.load_state_dict(state, strict=False)``, the line many tutorials use, skips
every key it cannot place without saying so, and a model that "loaded" can be half
random. Everything in the book that loads or copies weights goes through this module:

* :func:`load_state_dict_strict` loads a state dict and raises, naming every missing
  key, unexpected key, shape mismatch and dtype mismatch;
* :func:`copy_weights` copies one module's weights into another of the same layout;
* :func:`load_report` says what a non-strict load *would* do, without doing it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["copy_weights", "load_report", "load_state_dict_strict"]


def load_state_dict_strict(model: nn.Module, state: dict) -> None:
    """Load ``state`` into ``model``, raising a readable ``ValueError`` on any mismatch.

    Unlike a bare ``load_state_dict(strict=False)``, nothing is silently skipped or
    converted: missing keys, unexpected keys, values that are not tensors, shape
    mismatches and dtype mismatches are all reported by name.
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict of tensors (a state_dict), got {type(state).__name__}")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    common = sorted(set(own) & set(state))
    not_tensors = [k for k in common if not isinstance(state[k], torch.Tensor)]
    common = [k for k in common if k not in not_tensors]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in common if state[k].shape != own[k].shape]
    dtypes = [f"{k}: checkpoint {state[k].dtype} vs model {own[k].dtype}"
              for k in common if state[k].shape == own[k].shape and state[k].dtype != own[k].dtype]
    parts = []
    if missing:
        parts.append(f"missing keys {missing}")
    if unexpected:
        parts.append(f"unexpected keys {unexpected}")
    if not_tensors:
        parts.append(f"values that are not tensors {not_tensors}")
    if shapes:
        parts.append(f"shape mismatches {shapes}")
    if dtypes:
        parts.append(f"dtype mismatches {dtypes}")
    if parts:
        raise ValueError("checkpoint does not match the model: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy every parameter and buffer of ``src`` into ``dst``; raise if any key, shape or dtype differs."""
    load_state_dict_strict(dst, src.state_dict())


def load_report(model: nn.Module, state: dict) -> dict:
    """What ``model.load_state_dict(state, strict=False)`` would do, without doing it.

    Returns ``{"matched": [...], "missing_keys": [...], "unexpected_keys": [...],
    "shape_mismatches": [...]}``: the check the source article skipped.
    """
    own = model.state_dict()
    matched = sorted(k for k in own if k in state and state[k].shape == own[k].shape)
    return {
        "matched": matched,
        "missing_keys": sorted(set(own) - set(state)),
        "unexpected_keys": sorted(set(state) - set(own)),
        "shape_mismatches": sorted(k for k in own if k in state and state[k].shape != own[k].shape),
    }

"""Plain data across the sandbox wall: a strict encoder (kernel side) and decoder (grader side).

A hidden test's verdict is decided in the grader's process, never in the student's kernel.
The kernel only calls the student's function and hands back what it returned, as JSON made
of numbers, booleans, strings, ``None``, lists, tuples, sets and dicts with ``str`` keys;
NumPy and PyTorch arrays travel as ``{"__array__": kind, "dtype", "shape", "data"}``.
Anything else (an object whose ``__eq__`` always answers ``True``, a subclass of ``float``,
a generator, a module) is refused: :class:`PlainDataError`, which the grader reports as a
wrong answer.

:func:`encode` runs in the student's kernel, so the student can replace it; that only lets
them hand back other plain data. The guarantee comes from :func:`decode`, which runs in the
grader: it accepts exactly the shapes above, within size limits, and builds fresh NumPy
arrays, tensors and Python objects from them, so nothing the student defined reaches the
comparison. This file imports neither NumPy nor PyTorch at module level: the grader's runner
executes its source in the kernel without importing ``ptutils``.
"""

from __future__ import annotations

import math
import sys

MAX_ELEMENTS = 1_000_000     # numbers and strings in one answer, arrays' elements included
MAX_DEPTH = 32
MAX_STR = 100_000            # characters in one string
MAX_INT_DIGITS = 400
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "bfloat16", "float32", "float64")
TAGS = ("__array__", "__tuple__", "__set__", "__dict__")


class PlainDataError(ValueError):
    """A value that is not plain data, or plain data over the limits."""


def _type_name(x) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__


def _budget(max_elements: int):
    """A counter ``spend(n)`` that raises :class:`PlainDataError` once more than ``max_elements`` are spent."""
    left = [max_elements]

    def spend(n):
        left[0] -= n
        if left[0] < 0:
            raise PlainDataError(f"the value is too large (more than {max_elements:,} numbers or strings)")

    return spend


def encode(obj, *, max_elements: int = MAX_ELEMENTS):
    """``obj`` as JSON-ready plain data; :class:`PlainDataError` for anything else."""
    spend = _budget(max_elements)

    def enc(x, depth):
        if depth > MAX_DEPTH:
            raise PlainDataError(f"the value is nested more than {MAX_DEPTH} levels deep")
        t = type(x)
        if x is None or t is bool:
            spend(1)
            return x
        if t is int:
            spend(1)
            if abs(x) >= 10 ** MAX_INT_DIGITS:
                raise PlainDataError(f"an integer has more than {MAX_INT_DIGITS} digits")
            return x
        if t is float:
            spend(1)
            return x
        if t is str:
            spend(1)
            if len(x) > MAX_STR:
                raise PlainDataError(f"a string is longer than {MAX_STR:,} characters")
            return x
        if t is list:
            return [enc(v, depth + 1) for v in x]
        if t is tuple:
            return {"__tuple__": [enc(v, depth + 1) for v in x]}
        if t in (set, frozenset):
            return {"__set__": [enc(v, depth + 1) for v in x]}
        if t is dict:
            out = {}
            for k, v in x.items():
                if type(k) is not str:
                    raise PlainDataError(f"a dict key is a {_type_name(k)}, not a str")
                out[k] = enc(v, depth + 1)
            if any(k in TAGS for k in out):
                return {"__dict__": out}
            return out
        np = sys.modules.get("numpy")
        if np is not None and t is np.ndarray:
            return _array("numpy", str(x.dtype), list(x.shape), x.tolist(), spend, x.size)
        if np is not None and isinstance(x, np.generic) and t.__module__ == "numpy":  # np.float64(0.5) ...
            return _array("numpy-scalar", str(x.dtype), [], x.tolist(), spend, 1)
        torch = sys.modules.get("torch")
        if torch is not None and t in (torch.Tensor, torch.nn.Parameter):
            v = x.detach().cpu()
            dtype = str(v.dtype).removeprefix("torch.")
            if dtype == "bfloat16":
                data = v.float().tolist()
            else:
                data = v.tolist()
            return _array("torch", dtype, list(v.shape), data, spend, v.numel())
        if torch is not None and t is torch.Size:
            return {"__tuple__": [enc(int(v), depth + 1) for v in x]}
        raise PlainDataError(
            f"it is a {_type_name(x)}; the grader reads only numbers, booleans, strings, None, lists, "
            "tuples, sets, dicts with str keys, NumPy arrays and PyTorch tensors")

    return enc(obj, 0)


def _array(kind, dtype, shape, data, spend, size):
    if dtype not in DTYPES:
        raise PlainDataError(f"a {kind} array of dtype {dtype}; the grader reads {', '.join(DTYPES)}")
    spend(max(int(size), 1))
    return {"__array__": kind, "dtype": dtype, "shape": shape, "data": data}


def decode(data, *, max_elements: int = MAX_ELEMENTS):
    """Rebuild a value from :func:`encode`'s output, trusting nothing in it.

    ``data`` is what ``json.loads`` gave. Every container is rebuilt, arrays are made by
    NumPy or PyTorch from nested lists of numbers, and any other shape of input (an unknown
    tag, a key that is not a string, a number that is neither int nor float, a shape that
    does not match its data) raises :class:`PlainDataError`.
    """
    spend = _budget(max_elements)

    def dec(x, depth):
        if depth > MAX_DEPTH:
            raise PlainDataError(f"the value is nested more than {MAX_DEPTH} levels deep")
        t = type(x)
        if x is None or t in (bool, int, float, str):
            spend(1)
            if t is str and len(x) > MAX_STR:
                raise PlainDataError(f"a string is longer than {MAX_STR:,} characters")
            if t is int and abs(x) >= 10 ** MAX_INT_DIGITS:
                raise PlainDataError(f"an integer has more than {MAX_INT_DIGITS} digits")
            return x
        if t is list:
            return [dec(v, depth + 1) for v in x]
        if t is not dict:
            raise PlainDataError(f"unexpected {_type_name(x)} in the answer")
        keys = set(x)
        if "__array__" in keys:
            return _dec_array(x, spend)
        if keys == {"__tuple__"} and type(x["__tuple__"]) is list:
            return tuple(dec(v, depth + 1) for v in x["__tuple__"])
        if keys == {"__set__"} and type(x["__set__"]) is list:
            items = [dec(v, depth + 1) for v in x["__set__"]]
            try:
                return set(items)
            except TypeError as e:
                raise PlainDataError(f"a set holds an unhashable value: {e}") from None
        if keys == {"__dict__"} and type(x["__dict__"]) is dict:
            x = x["__dict__"]
        elif keys & set(TAGS):
            raise PlainDataError(f"malformed tagged value with keys {sorted(keys)[:5]}")
        out = {}
        for k, v in x.items():
            if type(k) is not str:
                raise PlainDataError("a dict key is not a str")
            out[k] = dec(v, depth + 1)
        return out

    return dec(data, 0)


def _dec_array(x, spend):
    if set(x) != {"__array__", "dtype", "shape", "data"}:
        raise PlainDataError("malformed array")
    kind, dtype, shape, data = x["__array__"], x["dtype"], x["shape"], x["data"]
    if kind not in ("numpy", "numpy-scalar", "torch") or type(dtype) is not str or dtype not in DTYPES:
        raise PlainDataError(f"an array of kind {kind!r} and dtype {dtype!r}")
    if type(shape) is not list or len(shape) > MAX_DEPTH or not all(type(n) is int and 0 <= n for n in shape):
        raise PlainDataError("an array's shape is not a list of non-negative ints")
    size = math.prod(shape)
    spend(max(size, 1))

    def check(d, dims):  # nested lists exactly matching the shape, numbers at the leaves
        if not dims:
            if type(d) not in (bool, int, float):
                raise PlainDataError("an array holds something that is not a number")
            if type(d) is int and abs(d) >= 2 ** 64:
                raise PlainDataError("an array holds an integer out of range")
            return
        if type(d) is not list or len(d) != dims[0]:
            raise PlainDataError("an array's data does not match its shape")
        for v in d:
            check(v, dims[1:])

    check(data, shape)
    import numpy as np

    if dtype == "bfloat16":
        arr = np.array(data, dtype="float32").reshape(shape)
    else:
        arr = np.array(data, dtype=dtype).reshape(shape)
    if kind == "numpy-scalar":
        if shape != []:
            raise PlainDataError("a NumPy scalar with a shape")
        return arr[()]
    if kind == "numpy":
        return arr
    import torch

    t = torch.from_numpy(arr.copy())
    return t.to(torch.bfloat16) if dtype == "bfloat16" else t

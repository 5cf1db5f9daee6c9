"""Argument checks shared by the public functions of sw_ref: one wording, one place.

A wrong kind of argument raises ``TypeError`` (text where a number belongs, a complex
or boolean tensor, integer weights where halving must stay exact, a config that is not
an ``ArrayConfig``); a wrong value raises ``ValueError`` (NaN, inf, a step or threshold
out of range, an empty tensor where values are needed, a wrong shape or axis). Every
message starts with the argument's name, so a caller knows which one to fix.

Arrays may be numpy arrays or torch tensors (or anything ``numpy.asarray`` takes); the
checks read them without copying a CPU tensor.
"""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

__all__ = [
    "array_config",
    "axis_index",
    "finite",
    "integer_data",
    "nonnegative",
    "nonnegative_values",
    "positive",
    "positive_values",
    "real_data",
]


def _as_numpy(x, name: str) -> np.ndarray:
    """A numpy view of x (a torch tensor, array or nested list); TypeError if it is none."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach()
        if t.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16
            t = t.float()
        return t.cpu().numpy()
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise TypeError(
            f"{name} must be an array of numbers, got {type(x).__name__}: {exc}"
        ) from None
    return a


def _kind(x, name: str) -> str:
    """numpy's dtype kind of x: 'f' float, 'i'/'u' integer, 'b' bool, 'c' complex, ..."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        if x.is_complex():
            return "c"
        if x.dtype == torch.bool:
            return "b"
        return "f" if x.is_floating_point() else "i"
    return _as_numpy(x, name).dtype.kind


def real_data(x, name: str, *, integers: bool = True, empty: bool = True):
    """Check that x holds finite real numbers; return x unchanged.

    ``integers=False`` refuses integer dtypes (TypeError): for operations whose result
    would be truncated back to integers. ``empty=False`` refuses a tensor without
    elements (ValueError): for operations that need at least one value.
    """
    kind = _kind(x, name)
    if kind not in "fiu":
        what = {"c": "complex values", "b": "booleans"}.get(kind)
        raise TypeError(f"{name} must hold real numbers, got {what or _as_numpy(x, name).dtype}")
    if not integers and kind != "f":
        raise TypeError(
            f"{name} must be a floating-point tensor, got integers (convert it, e.g. "
            f"{name}.float(), so that halves and fractions are kept)"
        )
    a = _as_numpy(x, name)
    if not empty and a.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)}); it needs at least one value")
    if kind == "f" and a.size and not np.isfinite(a).all():
        n_nan = int(np.isnan(a).sum())
        n_inf = int((~np.isfinite(a)).sum()) - n_nan
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} inf value(s); it must hold finite "
            "numbers (no NaN or inf)"
        )
    return x


def integer_data(x, name: str) -> np.ndarray:
    """x as an int64 numpy array; floats must be whole numbers, anything else TypeError."""
    kind = _kind(x, name)
    a = _as_numpy(x, name)
    if kind == "f":
        if not np.isfinite(a).all() or np.any(a != np.round(a)):
            raise ValueError(f"{name} must be whole numbers (integer codes or values)")
        if a.size and np.abs(a).max() >= 2.0**63:
            raise ValueError(f"{name} must fit in int64")
    elif kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {a.dtype}")
    elif kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} must fit in int64")
    return a.astype(np.int64)


def _scalar(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(value, "ndim", None) == 0 and _kind(value, name) in "fiu":
        return float(value)  # a 0-d numpy array or torch tensor
    raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r:.60}")


def finite(value, name: str) -> float:
    """A finite real number of any sign (a zero point), as float."""
    v = _scalar(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v}")
    return v


def positive(value, name: str) -> float:
    """A finite real number > 0 (a step, a scale, a clipping threshold alpha), as float."""
    v = _scalar(value, name)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {v}")
    return v


def nonnegative(value, name: str) -> float:
    """A finite real number >= 0 (a clipping threshold: 0 clips everything to 0)."""
    v = _scalar(value, name)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    return v


def _values(x, name: str, scalar_check, ok, allowed: str):
    if isinstance(x, numbers.Real) or getattr(x, "ndim", 1) == 0:
        scalar_check(x, name)
        return x
    real_data(x, name)
    a = _as_numpy(x, name)
    bad = ~ok(a)
    if bad.any():
        raise ValueError(f"{name} must hold {allowed}, found {a[bad].ravel()[0].item()}")
    return x


def positive_values(x, name: str):
    """A number or an array whose elements are all finite and > 0 (per-channel steps).

    Returned unchanged.
    """
    return _values(x, name, positive, lambda a: a > 0, "finite numbers > 0")


def nonnegative_values(x, name: str):
    """A number or an array of finite numbers >= 0 (per-channel thresholds, channel peaks)."""
    return _values(x, name, nonnegative, lambda a: a >= 0, "finite numbers >= 0")


def axis_index(axis, ndim: int, name: str = "axis") -> int:
    """``axis`` as an index in 0..ndim-1 (negative counts from the end)."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} must be in {-ndim}..{ndim - 1} for {ndim}-d data, got {axis}")
    return int(axis) % ndim


def array_config(cfg, name: str = "cfg"):
    """``cfg`` if it is an ``hw.params.ArrayConfig``, else TypeError."""
    from hw.params import ArrayConfig

    if not isinstance(cfg, ArrayConfig):
        raise TypeError(f"{name} must be an hw.params.ArrayConfig, got {type(cfg).__name__}")
    return cfg

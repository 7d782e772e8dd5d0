"""Argument checks shared by the public functions: one wording for every module.

Every check raises ``ValueError`` whose message names the argument, says what was expected
and shows what was got. Numbers must be real and finite (``bool`` is not a number, ``nan``
and ``inf`` are never an option value). :func:`check_finite` scans a tensor's values, which
waits for the device: call it once per public call, never inside a per-step loop or a
``forward`` that training runs.
"""

from __future__ import annotations

import math
import numbers
import operator

import torch


def broadcast_shape(*shapes) -> tuple[int, ...] | None:
    """The broadcast of ``shapes``, or ``None`` if they do not broadcast.

    Plain Python: ``torch.broadcast_shapes`` costs ~60 us a call, too much for a check that
    runs in every attention forward.
    """
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for shape in shapes:
        for i, n in enumerate(shape, start=ndim - len(shape)):
            if n != 1:
                if out[i] not in (1, n):
                    return None
                out[i] = n
    return tuple(out)


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    low, high = (None if b is None else f"{b:g}" for b in (low, high))
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def check_number(value, name: str, *, low=None, high=None, low_open: bool = False,
                 high_open: bool = False, none_ok: bool = False) -> float | None:
    """``value`` as a float, raising unless it is a finite real number in the given range
    (or ``None``, returned as is, when ``none_ok``)."""
    if none_ok and value is None:
        return None
    expected = f"a finite number {_range_text(low, high, low_open, high_open)}".rstrip() + (" or None" if none_ok else "")
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.dtype == torch.bool:
        value = value.item()
    if type(value) is not float and type(value) is not int and (  # fast path first: ABC checks are slow
            isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise ValueError(f"{name} must be {expected}, got {_show(value)}")
    out = float(value)
    bad = not math.isfinite(out)
    if low is not None:
        bad = bad or out < low or (low_open and out == low)
    if high is not None:
        bad = bad or out > high or (high_open and out == high)
    if bad:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return out


def _int_text(low, high) -> str:
    if high is None and low == 1:
        return "a positive int"
    if high is None and low == 0:
        return "a non-negative int"
    if low is None and high is None:
        return "an int"
    return f"an int {_range_text(low, high, False, False)}"


def check_int(value, name: str, *, low=None, high=None) -> int:
    """``value`` as an int, raising unless it is an integer (not a bool, not a float) in ``[low, high]``."""
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        raise ValueError(f"{name} must be {_int_text(low, high)}, got {_show(value)}")
    try:
        out = operator.index(value)  # int, NumPy and one-element integer tensors; not 2.0 or "2"
    except (TypeError, RuntimeError):
        raise ValueError(f"{name} must be {_int_text(low, high)}, got {_show(value)}") from None
    if (low is not None and out < low) or (high is not None and out > high):
        raise ValueError(f"{name} must be {_int_text(low, high)}, got {out}")
    return out


def check_bool(value, name: str) -> bool:
    """``value`` unchanged, raising unless it is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {_show(value)}")
    return value


def check_choice(value, name: str, choices) -> str:
    """``value`` unchanged, raising unless it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {_show(value)}")
    return value


def check_tensor(value, name: str, *, floating: bool = False) -> torch.Tensor:
    """``value`` unchanged, raising unless it is a tensor (of a floating dtype, when asked)."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def check_finite(value: torch.Tensor, name: str) -> torch.Tensor:
    """``value`` unchanged, raising when it holds NaN or inf (one device sync: boundary use only)."""
    if value.is_floating_point() or value.is_complex():
        finite = torch.isfinite(value.detach())
        if not bool(finite.all()):
            nans = int(torch.isnan(value).sum())
            infs = int(value.numel() - finite.sum()) - nans
            raise ValueError(f"{name} must be finite, got {nans} NaN and {infs} inf value(s) "
                             f"in a tensor of shape {tuple(value.shape)}")
    return value

"""Comparing a student's result with the expected one, and naming the likely mistake.

``mismatch(expected, actual)`` says what differs (type, shape, dtype, device or values) or
``None`` when the result is right. It never raises: a result whose ``__eq__``, ``__len__``
or ``__repr__`` misbehaves is itself the mistake reported. ``generic_cause`` recognises
mistakes every numeric exercise can make -- a flipped sign, a constant factor or offset, a
missing or extra square root, transposed or shifted entries, NaN -- from the numbers alone;
each exercise adds its own specific diagnostics on top (see ``core.Exercise``).
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 120
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 8


def safe_text(x: Any, limit: int = 300) -> str:
    """``str(x)``, shortened, even when ``x.__str__`` raises."""
    try:
        text = str(x)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001  (a student's object may raise anything, SystemExit included)
        text = f"<{type(x).__name__} object whose str() raised>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def brief(x: Any, limit: int = 6) -> str:
    """A short printout of a value: a few entries of a tensor, never the whole thing; never raises."""
    try:
        if isinstance(x, torch.Tensor):
            if x.is_meta or x.layout != torch.strided:
                return f"a {x.layout} tensor on {x.device} (shape {tuple(x.shape)}, {x.dtype})"
            flat = x.detach().reshape(-1)[:limit].cpu()
            values = flat.tolist() if not flat.is_complex() else [complex(v) for v in flat]
            shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values)
            more = ", ..." if x.numel() > limit else ""
            return f"tensor([{shown}{more}]) (shape {tuple(x.shape)}, {x.dtype})"
        if isinstance(x, np.ndarray):
            flat = x.reshape(-1)[:limit].tolist()
            more = ", ..." if x.size > limit else ""
            return f"array([{', '.join(_REPR.repr(v) for v in flat)}{more}]) (shape {x.shape}, {x.dtype})"
        if type(x) is float:
            return f"{x:.6g}"
        if type(x) is int and abs(x) >= 10**30:
            return f"an int of about {int(x.bit_length() * math.log10(2)) + 1} digits"
        return _REPR.repr(x)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001
        return f"<{type(x).__name__} object whose repr() raised>"


def type_name(x: Any) -> str:
    if x is None:
        return "None"
    if isinstance(x, torch.Tensor):
        return "torch.Tensor"
    if isinstance(x, np.ndarray):
        return "numpy.ndarray"
    return type(x).__name__


@dataclass
class Mismatch:
    """What differs: ``kind`` is one of "wrong type", "wrong shape", "wrong dtype",
    "wrong device", "wrong value"; ``expected``/``actual`` are the parts that differ."""

    kind: str
    text: str
    expected: Any = None
    actual: Any = None


def _number(x: Any) -> float | None:
    """A Python or NumPy number, or a 0-dim tensor or array, as a float; else ``None``."""
    if type(x) is bool or isinstance(x, np.bool_):
        return None
    if isinstance(x, (int, float, np.integer, np.floating)):
        return float(x)
    if isinstance(x, (np.ndarray, torch.Tensor)) and x.ndim == 0 and not x.dtype == torch.bool:
        if isinstance(x, torch.Tensor) and (x.is_complex() or x.is_meta):
            return None
        return float(x.item())
    return None


def _tensor_mismatch(expected: torch.Tensor, actual: Any, atol: float, rtol: float, where: str) -> Mismatch | None:
    if not isinstance(actual, torch.Tensor):
        hint = " (use torch operations, or torch.as_tensor at the end)" if isinstance(actual, np.ndarray) else ""
        return Mismatch("wrong type", f"{where} should be a torch.Tensor, got {type_name(actual)}: "
                        f"{brief(actual)}{hint}", expected, actual)
    if actual.is_meta or actual.layout != torch.strided:
        return Mismatch("wrong type", f"{where} should be an ordinary (dense) tensor, got {brief(actual)}",
                        expected, actual)
    if tuple(actual.shape) != tuple(expected.shape):
        return Mismatch("wrong shape", f"{where} has the wrong shape: expected {tuple(expected.shape)}, "
                        f"got {tuple(actual.shape)}", expected, actual)
    if actual.dtype != expected.dtype:
        return Mismatch("wrong dtype", f"{where} has the wrong dtype: expected {expected.dtype}, got "
                        f"{actual.dtype}", expected, actual)
    if actual.device != expected.device:
        return Mismatch("wrong device", f"{where} is on the wrong device: expected {expected.device}, got "
                        f"{actual.device} (create new tensors on the inputs' device, e.g. device=x.device)",
                        expected, actual)
    e, a = expected.detach().cpu(), actual.detach().cpu()
    if e.dtype == torch.bool or not (e.is_floating_point() or e.is_complex()):
        bad = e != a
    else:
        e64, a64 = e.to(torch.complex128 if e.is_complex() else torch.float64), a.to(
            torch.complex128 if a.is_complex() else torch.float64)
        same_inf = torch.isinf(e64) & (e64 == a64)
        bad = ~(same_inf | torch.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True))
    if not bool(bad.any()):
        return None
    idx = tuple(int(i) for i in bad.nonzero()[0].tolist())
    at = f" at index {list(idx)}" if idx else ""
    return Mismatch(
        "wrong value",
        f"{where} has wrong values ({int(bad.sum())} of {bad.numel()} entries differ){at}: "
        f"expected {e[idx].item():.6g}, got {a[idx].item():.6g}\n"
        f"    expected: {brief(expected)}\n    got:      {brief(actual)}",
        expected, actual,
    )


def _mismatch(expected: Any, actual: Any, atol: float, rtol: float, where: str) -> Mismatch | None:
    if actual is None and expected is not None:
        return Mismatch("wrong type", f"{where} is None: did your function forget to `return` its result?",
                        expected, actual)
    if isinstance(expected, tuple):
        if not isinstance(actual, (tuple, list)):
            return Mismatch("wrong type", f"{where} should be a tuple of {len(expected)} items, got "
                            f"{type_name(actual)}: {brief(actual)}", expected, actual)
        items = tuple(actual)
        if len(items) != len(expected):
            return Mismatch("wrong type", f"{where} should have {len(expected)} items, got {len(items)}",
                            expected, actual)
        for i, (e, a) in enumerate(zip(expected, items, strict=True)):
            found = _mismatch(e, a, atol, rtol, f"{where}[{i}]")
            if found:
                return found
        return None
    if isinstance(expected, torch.Tensor):
        return _tensor_mismatch(expected, actual, atol, rtol, where)
    if isinstance(expected, np.ndarray):
        if isinstance(actual, torch.Tensor):
            actual = actual.detach().cpu().numpy()
        if not isinstance(actual, np.ndarray):
            return Mismatch("wrong type", f"{where} should be a numpy array, got {type_name(actual)}", expected, actual)
        return _tensor_mismatch(torch.from_numpy(expected), torch.from_numpy(np.array(actual)), atol, rtol, where)
    if type(expected) is int:
        if type(actual) is bool or not isinstance(actual, (int, np.integer)):
            value = _number(actual)
            extra = f" {value:.6g}" if value is not None else f": {brief(actual)}"
            hint = "; use integer arithmetic (* and //, not /), or int(...)" if isinstance(actual, float) else ""
            return Mismatch("wrong type", f"{where} should be an int, got {type_name(actual)}{extra}{hint}",
                            expected, actual)
        if int(actual) != expected:
            return Mismatch("wrong value", f"{where} is wrong: expected {expected}, got {brief(int(actual))}",
                            expected, int(actual))
        return None
    if type(expected) is float:
        value = _number(actual)
        if value is None:
            return Mismatch("wrong type", f"{where} should be a number (float), got {type_name(actual)}: "
                            f"{brief(actual)}", expected, actual)
        if math.isnan(expected) and math.isnan(value):
            return None
        if not (value == expected or math.isclose(value, expected, rel_tol=rtol, abs_tol=atol)):
            return Mismatch("wrong value", f"{where} is wrong: expected {expected:.6g}, got {value:.6g}",
                            expected, value)
        return None
    if type(expected) is str:
        if type(actual) is not str:
            return Mismatch("wrong type", f"{where} should be a str, got {type_name(actual)}: {brief(actual)}",
                            expected, actual)
        if actual != expected:
            return Mismatch("wrong value", f"{where} is wrong: expected {expected!r}, got {brief(actual)}",
                            expected, actual)
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return Mismatch("wrong type", f"{where} should be a list, got {type_name(actual)}: {brief(actual)}",
                            expected, actual)
        items = list(list.__iter__(actual))  # a list subclass's own __iter__ is not trusted
        if len(items) != len(expected) or any(_mismatch(e, a, atol, rtol, where) for e, a in
                                              zip(expected, items, strict=False)):
            return Mismatch("wrong value", f"{where} is wrong:\n    expected: {brief(expected)}\n"
                            f"    got:      {brief(items)}", expected, items)
        return None
    equal = expected.__eq__(actual)
    if equal is not True:
        return Mismatch("wrong value", f"{where} is wrong: expected {brief(expected)}, got {brief(actual)}",
                        expected, actual)
    return None


def mismatch(expected: Any, actual: Any, atol: float = 1e-5, rtol: float = 1e-4,
             where: str = "the result") -> Mismatch | None:
    """``None`` when ``actual`` matches ``expected``; otherwise what differs. Never raises."""
    try:
        return _mismatch(expected, actual, atol, rtol, where)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001  (the student's object raised while being compared)
        return Mismatch("wrong type", f"{where} ({type_name(actual)}) could not be compared with the expected "
                        f"{type_name(expected)}: {type(err).__name__}: {safe_text(err)}", expected, actual)


def compare(expected: Any, actual: Any, atol: float, rtol: float, where: str = "the result") -> str | None:
    """The text of :func:`mismatch`, or ``None``."""
    found = mismatch(expected, actual, atol, rtol, where)
    return found.text if found else None


def matches(expected: Any, actual: Any) -> bool:
    """Loose equality used to recognise a known wrong answer."""
    return mismatch(expected, actual, atol=1e-5, rtol=1e-4) is None


# ---------------------------------------------------------------------------- generic causes


def as_floats(x: Any) -> np.ndarray | None:
    """A real tensor, array or number as a float64 array; ``None`` for anything else."""
    try:
        if isinstance(x, torch.Tensor):
            if x.is_meta or x.layout != torch.strided or x.is_complex():
                return None
            return x.detach().cpu().to(torch.float64).numpy()
        if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
            return x.astype(np.float64)
        value = _number(x)
        return None if value is None else np.array(value)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001
        return None


def _close(a: np.ndarray, b: np.ndarray, scale: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-4, atol=1e-6 * scale + 1e-12, equal_nan=False))


def _factor_note(r: float) -> str:
    notes = [(2.0, "a missing or extra factor ½ or 2?"), (0.5, "a missing or extra factor ½ or 2?"),
             (math.log(2), "natural log vs log base 2?"), (1 / math.log(2), "natural log vs log base 2?"),
             (math.log(10), "natural log vs log base 10?"), (1 / math.log(10), "natural log vs log base 10?")]
    for value, note in notes:
        if math.isclose(r, value, rel_tol=1e-4):
            return f" ({note})"
    for x, word in ((r, "summed where the mean is needed"), (1 / r, "averaged where the sum is needed")):
        if x >= 2.5 and math.isclose(x, round(x), rel_tol=1e-6):
            return f" ({word}, over {round(x)} items?)"
    return ""


def _shape_cause(e: np.ndarray, a: np.ndarray) -> str | None:
    if e.ndim == 0 and a.size == 1:
        return ("the result should be a single number with shape (); yours has shape "
                f"{a.shape}: drop the extra dimension (.squeeze(), or reduce without keepdim=True)")
    if e.ndim == 0 and a.ndim >= 1:
        return (f"the result should be one number (shape ()), yours has shape {a.shape}: reduce it "
                "(.mean() or .sum(), as the formula says) over the batch")
    if a.ndim == 0 and e.ndim >= 1:
        return (f"you reduced everything to one number; the result has one value per row, shape {e.shape}: "
                "reduce over the last dimension only")
    if a.size == e.size and a.ndim == e.ndim + 1 and 1 in a.shape:
        return "an extra dimension of size 1 (keepdim=True, or a missing .squeeze(-1)?)"
    if sorted(a.shape) == sorted(e.shape) and a.shape != e.shape:
        if a.ndim >= 2 and a.shape[:-2] == e.shape[:-2] and a.shape[-2:] == e.shape[-2:][::-1]:
            if _close(np.swapaxes(a, -1, -2), e, max(1.0, float(np.nanmax(np.abs(e))) if e.size else 1.0)):
                return "your result is transposed: the last two dimensions are swapped"
        return f"the dimensions are in the wrong order: expected shape {e.shape}, got {a.shape}"
    if a.ndim == e.ndim - 1 and e.shape[:-1] == a.shape:
        return (f"the last dimension is missing (expected shape {e.shape}, got {a.shape}): you reduced over "
                "a dimension that should stay")
    if a.ndim == e.ndim and a.ndim >= 1 and a.shape[:-1] == e.shape[:-1] and a.shape[-1] != e.shape[-1]:
        return (f"the last dimension has size {a.shape[-1]}, expected {e.shape[-1]}: check which tensor "
                "you multiplied by last, or the axis you reduced")
    return None


def generic_cause(expected: Any, actual: Any, others: list[tuple[Any, Any]] | None = None) -> str | None:
    """A mistake recognisable from the numbers alone, as a sentence; ``None`` when none fits.

    ``others`` holds ``(expected, actual)`` of the other cases: a constant factor or offset in
    a single number is only claimed when every case shows the same one.
    """
    e, a = as_floats(expected), as_floats(actual)
    if e is None or a is None:
        return None
    if e.shape != a.shape:
        return _shape_cause(e, a)
    if e.size == 0:
        return None
    if np.isnan(a).any() and not np.isnan(e[np.isnan(a)]).all():
        return ("your result has NaN where the expected value is finite: a 0/0, a log of a negative number, "
                "inf − inf or 0·inf (check masking and logs of zero)")
    if np.isinf(a).any() and not np.isinf(e[np.isinf(a)]).all():
        return ("your result has inf where the expected value is finite: an exp that overflows or a log of 0 "
                "(subtract the maximum first, or use a log-space function such as logsumexp or softplus)")
    finite = np.isfinite(e) & np.isfinite(a)
    if not finite.any():
        return None
    e, a = e[finite], a[finite]
    scale = float(np.abs(e).max()) or 1.0
    pairs = [(as_floats(x), as_floats(y)) for x, y in (others or [])]
    pairs = [(x, y) for x, y in pairs if x is not None and y is not None and x.shape == y.shape]

    many = np.unique(np.round(e / scale, 6)).size >= 2  # enough distinct values to tell a pattern by itself

    def holds(test) -> bool:
        """``test(expected, actual)`` holds here, and on every other case unless this one shows a pattern."""
        if not test(e, a):
            return False
        if many:
            return True
        others_ok = [test(x[np.isfinite(x)], y[np.isfinite(x)]) for x, y in pairs if np.isfinite(y[np.isfinite(x)]).all()]
        return bool(others_ok) and all(others_ok)

    def close(x, y, wanted) -> bool:
        return _close(y, wanted(x), max(float(np.abs(x).max()) if x.size else 1.0, 1e-12))

    if np.abs(e).max() > 1e-12 and holds(lambda x, y: close(x, y, lambda v: -v)):
        return "the sign is flipped: your result is minus the expected one"
    nonzero = np.abs(e) > 1e-9 * scale
    if nonzero.any():
        r = float(np.median(a[nonzero] / e[nonzero]))
        if np.isfinite(r) and abs(r - 1) > 1e-3 and r != 0 and holds(lambda x, y: close(x, y, lambda v: r * v)):
            return f"your result is {r:.4g} times the expected one, on every entry{_factor_note(r)}"
    if (e >= 0).all() and not _close(a, e, scale):
        if holds(lambda x, y: (x >= 0).all() and close(x, y, np.square)):
            return "your result is the square of the expected one: a missing square root?"
        if holds(lambda x, y: (x >= 0).all() and close(x, y, np.sqrt)):
            return "your result is the square root of the expected one: an extra square root, or a variance vs a std?"
    offset = float(np.median(a - e))
    if abs(offset) > 1e-6 * scale and holds(lambda x, y: _close(y, x + offset, max(float(np.abs(x).max()), 1.0))):
        return f"your result is the expected one plus a constant {offset:.4g}: a missing or extra additive term"
    full_e, full_a = as_floats(expected), as_floats(actual)
    if full_e.ndim >= 2 and full_e.shape[-1] == full_e.shape[-2] and np.isfinite(full_e).all():
        if _close(np.swapaxes(full_a, -1, -2), full_e, scale) and not _close(full_a, full_e, scale):
            return "your result is transposed: the last two dimensions are swapped"
    if full_e.ndim >= 1 and np.isfinite(full_e).all() and np.isfinite(full_a).all():
        for dim in range(full_e.ndim):
            n = full_e.shape[dim]
            if n < 3:
                continue
            head = [slice(None)] * full_e.ndim
            tail = [slice(None)] * full_e.ndim
            head[dim], tail[dim] = slice(0, n - 1), slice(1, n)
            if _close(full_a[tuple(tail)], full_e[tuple(head)], scale) or _close(
                    full_a[tuple(head)], full_e[tuple(tail)], scale):
                return (f"your result is the expected one shifted by one position along dimension {dim}: "
                        "an off-by-one index?")
        if many and _close(np.sort(full_a, axis=None), np.sort(full_e, axis=None), scale):
            return "the right values in the wrong places: an index, a sort or an axis is mixed up"
    return None

"""Running a student's function so that nothing it does can break the checker or the notebook.

:func:`run` calls the function on private copies of a case's inputs and returns an
:class:`Outcome`: the value, or the exception it raised (``SystemExit`` included; only
``KeyboardInterrupt`` passes, so the stop button still works), what it printed, and which
input it changed in place. Global state a function can change by accident (the default
dtype, grad mode, warning filters, the random generators, the thread count) is restored
afterwards, so a check leaves the notebook as it found it. :class:`OpRecorder` watches the
tensor operations of one call, for checks that cannot be read from the output alone.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

PRINT_LIMIT = 2000  # characters of a student's printout kept for the verdict


@dataclass
class Outcome:
    """What one call of the student's function did."""

    value: Any = None
    error: BaseException | None = None
    printed: str = ""
    changed: tuple[str, str] | None = None  # (which input changed and how, what to do instead)


def clone(obj: Any) -> Any:
    """Private copies of inputs. Modules and generators are shared on purpose (their weights are
    the test); :func:`run` checks that the student's function leaves them unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, tuple):
        return tuple(clone(o) for o in obj)
    if isinstance(obj, list):
        return [clone(o) for o in obj]
    if isinstance(obj, dict):
        return {k: clone(v) for k, v in obj.items()}
    if isinstance(obj, (torch.nn.Module, torch.Generator)):
        return obj
    return copy.deepcopy(obj)


# ---------------------------------------------------------------------------- inputs left unchanged

_TENSOR_ADVICE = ("use out-of-place operations (masked_fill, not masked_fill_; x = x * 2, not x *= 2), "
                  "or .clone() the tensor before editing it")


def _snapshot(obj: Any, depth: int = 0) -> Any:
    if isinstance(obj, torch.Tensor):
        return ("tensor", obj.detach().clone())
    if isinstance(obj, np.ndarray):
        return ("array", obj.copy())
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [_snapshot(o, depth) for o in obj])
    if isinstance(obj, dict):
        return ("dict", {k: _snapshot(v, depth) for k, v in obj.items()})
    if isinstance(obj, (set, frozenset)):
        return ("set", frozenset(obj))
    if isinstance(obj, torch.nn.Module):
        state = {name: t.detach().clone() for name, t in obj.state_dict(keep_vars=True).items()}
        grads = {name: None if p.grad is None else p.grad.detach().clone() for name, p in obj.named_parameters()}
        return ("module", state, grads)
    if depth < 2 and hasattr(obj, "__dict__") and not isinstance(obj, type) and not callable(obj):
        return ("object", {k: _snapshot(v, depth + 1) for k, v in vars(obj).items()})
    return ("value",)


def _same_tensor(before: torch.Tensor, after: Any) -> bool:
    if not isinstance(after, torch.Tensor) or after.shape != before.shape or after.dtype != before.dtype:
        return False
    a = after.detach()
    if a.device != before.device:
        return False
    if before.is_floating_point() or before.is_complex():
        return bool(((before == a) | (torch.isnan(before) & torch.isnan(a))).all())
    return bool(torch.equal(before, a))


def _changed(snap: Any, obj: Any, path: str) -> tuple[str, str] | None:
    kind = snap[0]
    if kind == "tensor":
        if not _same_tensor(snap[1], obj):
            return f"the tensor `{path}`", _TENSOR_ADVICE
        return None
    if kind == "array":
        if not (isinstance(obj, np.ndarray) and obj.shape == snap[1].shape
                and np.array_equal(obj, snap[1], equal_nan=snap[1].dtype.kind in "fc")):
            return f"the array `{path}`", "use out-of-place operations, or .copy() the array before editing it"
        return None
    if kind in ("list", "tuple"):
        if len(obj) != len(snap[1]):
            return (f"the {kind} `{path}` (its length went from {len(snap[1])} to {len(obj)})",
                    "build a new list instead of appending to or removing from the caller's")
        for i, (s, o) in enumerate(zip(snap[1], obj, strict=True)):
            found = _changed(s, o, f"{path}[{i}]")
            if found:
                return found
        return None
    if kind == "dict":
        if set(obj) != set(snap[1]):
            return f"the dict `{path}`", "copy it first (dict(...)) and edit the copy"
        for key, s in snap[1].items():
            found = _changed(s, obj[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if kind == "set":
        if set(obj) != snap[1]:
            added = sorted(map(repr, set(obj) - snap[1]))[:3]
            what = f" (it gained {', '.join(added)})" if added else ""
            return (f"the set `{path}`{what}",
                    "copy it first (known = set(facts)) and add to the copy")
        return None
    if kind == "module":
        state = obj.state_dict(keep_vars=True)
        for name, before in snap[1].items():
            if name not in state or not _same_tensor(before, state[name]):
                return (f"the weights of `{path}` ({name})",
                        "do not train or edit the module inside the function")
        for name, p in obj.named_parameters():
            before = snap[2].get(name)
            if (before is None) != (p.grad is None) or (before is not None and not _same_tensor(before, p.grad)):
                return (f"the gradients of `{path}` ({name}.grad)",
                        "take gradients with torch.autograd.grad(..., create_graph=True) instead of "
                        ".backward(), which adds into the module's .grad")
        return None
    if kind == "object":
        for key, s in snap[1].items():
            if not hasattr(obj, key):
                return f"`{path}` (its attribute {key} was deleted)", "do not edit the objects you are given"
            found = _changed(s, getattr(obj, key), f"{path}.{key}")
            if found:
                return found
        return None
    return None


def parameter_names(fn: Callable, count: int) -> list[str]:
    """Names of ``fn``'s first ``count`` positional parameters, ``argument N`` where unknown."""
    names = [f"argument {i + 1}" for i in range(count)]
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for i, p in enumerate(params[:count]):
            names[i] = p.name
    except (TypeError, ValueError):
        pass
    return names


# ---------------------------------------------------------------------------- calling


class _Capture(io.TextIOBase):
    """Keeps the first ``PRINT_LIMIT`` characters written; counts the rest."""

    def __init__(self):
        self.kept: list[str] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = PRINT_LIMIT - self.size
        if room > 0:
            self.kept.append(text[:room])
        self.size += len(text)
        return len(text)

    def text(self) -> str:
        kept = "".join(self.kept)
        return kept + (f"\n... ({self.size - len(kept)} more characters)" if self.size > len(kept) else "")


@contextlib.contextmanager
def _global_state_kept():
    """Restore what a student's function may change globally by accident."""
    dtype, grad, threads = torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads()
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        np.random.set_state(np_state)
        random.setstate(py_state)


def run(fn: Callable, args: tuple, kwargs: dict, watch: Any = None) -> Outcome:
    """Call ``fn`` on copies of ``args``/``kwargs``; never raises (except ``KeyboardInterrupt``).

    ``watch`` is an optional context manager entered around the call only (an OpRecorder).
    """
    outcome = Outcome()
    try:
        args, kwargs = clone(args), clone(kwargs)
        before = _snapshot((args, kwargs))
    except Exception as err:  # noqa: BLE001  (inputs are the checker's own; this is a checker bug)
        raise RuntimeError(f"could not copy the inputs: {err!r}") from err
    capture = _Capture()
    try:
        with _global_state_kept(), contextlib.redirect_stdout(capture), contextlib.redirect_stderr(capture):
            with watch if watch is not None else contextlib.nullcontext():
                outcome.value = fn(*args, **kwargs)
            if inspect.isgenerator(outcome.value) or inspect.iscoroutine(outcome.value):
                outcome.value.close()
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001  (SystemExit from sys.exit() is the student's mistake too)
        outcome.error = err
    outcome.printed = capture.text()
    try:
        names = parameter_names(fn, len(args))
        for i, (snap, obj) in enumerate(zip(before[1][0][1], args, strict=True)):
            outcome.changed = outcome.changed or _changed(snap, obj, names[i])
        for key, snap in before[1][1][1].items():
            outcome.changed = outcome.changed or _changed(snap, kwargs[key], key)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001  (an input the function replaced by something odd)
        outcome.changed = outcome.changed or ("one of its inputs", "leave the inputs unchanged")
    return outcome


class OpRecorder(TorchDispatchMode):
    """Records every tensor operation of a call: its name, input shapes and largest output."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, list[tuple[int, ...]]]] = []
        self.largest = 0
        self.largest_shape: tuple[int, ...] = ()
        self.largest_op = ""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func.overloadpacket.__name__)
        shapes = [tuple(t.shape) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        self.calls.append((name, shapes))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.numel() > self.largest:
                self.largest, self.largest_shape, self.largest_op = t.numel(), tuple(t.shape), name
        return out

"""The checking engine behind ``check``, ``hint`` and ``solution``.

An :class:`Exercise` names a reference function from the package, a generator of test
cases (fresh random inputs plus fixed edge cases) and *diagnostics*: known mistakes, each
with the specific message a student sees when their answer matches it. ``check`` runs the
student's function on every case, compares with the reference and prints one friendly
verdict; it never lets a traceback from the checker itself reach the student.
"""

from __future__ import annotations

import copy
import math
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

REGISTRY: dict[str, Exercise] = {}
NOT_ATTEMPTED = "not attempted yet"


@dataclass
class Case:
    """One input to check: ``fn(*args, **kwargs)``; ``expected`` when the reference needs more."""

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    expected: Any = None
    info: dict = field(default_factory=dict)  # extra facts for diagnostics (e.g. the model)


@dataclass
class Variant:
    """A known wrong answer: if the student's output equals ``fn(case)``, show ``message``."""

    message: str
    fn: Callable[[Case], Any]


Diagnostic = Callable[[Case, Any, Any], "str | None"]  # (case, expected, actual) -> message


@dataclass
class Exercise:
    """One exercise. ``reference(*case.args, **case.kwargs)`` gives the expected output."""

    id: str
    title: str
    function: str  # the name the student writes, e.g. "causal_attention"
    notebook: str  # solution notebook file name under exercises/solutions/
    reference: Callable[..., Any]
    cases: Callable[[torch.Generator, torch.device], list[Case]]
    variants: list[Variant] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    extra_checks: list[Diagnostic] = field(default_factory=list)  # run after the values match
    error_hints: list[tuple[str, str]] = field(default_factory=list)  # (text in the error, likely cause)
    hints: list[str] = field(default_factory=list)
    explanation: str = ""
    atol: float = 1e-5
    rtol: float = 1e-4

    def expected(self, case: Case) -> Any:
        if case.expected is not None:
            return case.expected
        return self.reference(*_clone(case.args), **_clone(case.kwargs))


def register(exercise: Exercise) -> Exercise:
    if exercise.id in REGISTRY:
        raise ValueError(f"exercise id {exercise.id!r} is registered twice")
    if len(exercise.hints) < 2:
        raise ValueError(f"exercise {exercise.id} needs at least two hint levels")
    REGISTRY[exercise.id] = exercise
    return exercise


def _sort_key(exercise_id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in exercise_id.split("."))


def exercise_ids() -> list[str]:
    """Every registered exercise id, in book order."""
    return sorted(REGISTRY, key=_sort_key)


def get(exercise_id: str) -> Exercise:
    """The exercise with this id; a ``ValueError`` listing the valid ids otherwise."""
    if not isinstance(exercise_id, str) or exercise_id not in REGISTRY:
        raise ValueError(
            f"exercise_id must be one of the registered ids {', '.join(exercise_ids())}; got {exercise_id!r}"
        )
    return REGISTRY[exercise_id]


# ---------------------------------------------------------------------------- results


@dataclass
class CheckResult:
    """What ``check`` found. Truthy only when every case passed."""

    exercise_id: str
    status: str  # "passed", "failed" or "not attempted"
    message: str
    case: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def attempted(self) -> bool:
        return self.status != "not attempted"

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult({self.exercise_id!r}, {self.status!r})"


# ---------------------------------------------------------------------------- comparing


def _clone(obj: Any) -> Any:
    """Deep copy of inputs so a student's in-place edit cannot change the reference's inputs."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, tuple):
        return tuple(_clone(o) for o in obj)
    if isinstance(obj, list):
        return [_clone(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, (torch.nn.Module, torch.Generator)):
        return obj  # modules are shared on purpose (their weights are the test)
    return copy.deepcopy(obj)


def brief(x: Any, limit: int = 6) -> str:
    """A short printout of a value: a few entries of a tensor, not the whole thing."""
    if isinstance(x, torch.Tensor):
        flat = x.detach().float().cpu().reshape(-1)
        shown = ", ".join(f"{v:.4g}" for v in flat[:limit].tolist())
        more = ", ..." if flat.numel() > limit else ""
        return f"tensor([{shown}{more}]) (shape {tuple(x.shape)}, {x.dtype})"
    if isinstance(x, np.ndarray):
        return brief(torch.from_numpy(np.asarray(x, dtype=np.float64)), limit)
    if isinstance(x, float):
        return f"{x:.6g}"
    text = repr(x)
    return text if len(text) < 160 else text[:157] + "..."


def _as_float(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float, np.floating, np.integer)):
        return float(x)
    if isinstance(x, (np.ndarray, torch.Tensor)) and x.ndim == 0:
        return float(x.item())
    return None


def compare(expected: Any, actual: Any, atol: float, rtol: float, where: str = "the result") -> str | None:
    """``None`` when ``actual`` matches ``expected``; otherwise what differs, briefly."""
    if isinstance(expected, tuple):
        if not isinstance(actual, (tuple, list)):
            return f"{where} should be a tuple of {len(expected)} items, got {type(actual).__name__}"
        if len(actual) != len(expected):
            return f"{where} should have {len(expected)} items, got {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problem = compare(e, a, atol, rtol, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(actual, torch.Tensor):
            return f"{where} should be a torch.Tensor, got {type(actual).__name__}"
        if actual.shape != expected.shape:
            return f"{where} has the wrong shape: expected {tuple(expected.shape)}, got {tuple(actual.shape)}"
        if actual.dtype != expected.dtype:
            return f"{where} has the wrong dtype: expected {expected.dtype}, got {actual.dtype}"
        if actual.device != expected.device:
            return f"{where} is on the wrong device: expected {expected.device}, got {actual.device}"
        e, a = expected.detach().cpu(), actual.detach().cpu()
        if e.dtype == torch.bool or not e.is_floating_point():
            bad = e != a
        else:
            e64, a64 = e.double(), a.double()
            same_inf = torch.isinf(e64) & (e64 == a64)
            bad = ~(same_inf | torch.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True))
        if bad.any():
            idx = tuple(int(i) for i in bad.nonzero()[0].tolist())
            at = f" at index {list(idx)}" if idx else ""
            return (
                f"{where} has wrong values ({int(bad.sum())} of {bad.numel()} entries differ){at}: "
                f"expected {e[idx].item():.6g}, got {a[idx].item():.6g}\n"
                f"    expected: {brief(expected)}\n    got:      {brief(actual)}"
            )
        return None
    if isinstance(expected, np.ndarray):
        return compare(torch.from_numpy(expected), torch.as_tensor(np.asarray(actual)), atol, rtol, where)
    if isinstance(expected, float):
        value = _as_float(actual)
        if value is None:
            return f"{where} should be a number (float), got {type(actual).__name__}: {brief(actual)}"
        if math.isnan(expected) and math.isnan(value):
            return None
        if not math.isclose(value, expected, rel_tol=rtol, abs_tol=atol):
            return f"{where} is wrong: expected {expected:.6g}, got {value:.6g}"
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{where} should be a list, got {type(actual).__name__}"
        if actual != expected:
            return f"{where} is wrong:\n    expected: {brief(expected)}\n    got:      {brief(actual)}"
        return None
    if actual != expected:
        return f"{where} is wrong: expected {brief(expected)}, got {brief(actual)}"
    return None


def matches(expected: Any, actual: Any) -> bool:
    """Loose equality used to recognise a known wrong answer."""
    try:
        return compare(expected, actual, atol=1e-5, rtol=1e-4) is None
    except Exception:  # a diagnostic must never break the verdict
        return False


# ---------------------------------------------------------------------------- the student's errors


def _student_location(err: BaseException, fn: Callable) -> str:
    """``line N of your function`` for the deepest frame of the student's own code."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return ""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == code.co_filename]
    if not frames:
        return ""
    last = frames[-1]
    line = f": {last.line.strip()}" if last.line else ""
    return f" (line {last.lineno - code.co_firstlineno + 1} of {fn.__name__}{line})"


def _diagnose(exercise: Exercise, case: Case, expected: Any, actual: Any, others) -> str | None:
    """The message of the known mistake that explains ``actual``, if any.

    Structural diagnostics look at the failing case alone. A variant must reproduce the
    failing output; when several do (a coincidence on one case), the one that also
    reproduces the student's outputs on every other case wins.
    """
    for diagnostic in exercise.diagnostics:
        try:
            message = diagnostic(case, expected, actual)
        except Exception:
            message = None
        if message:
            return message

    def reproduces(variant: Variant, c: Case, a: Any) -> bool:
        try:
            return matches(variant.fn(c), a)
        except Exception:
            return False

    candidates = [v for v in exercise.variants if reproduces(v, case, actual)]
    if len(candidates) > 1:
        pairs = others()
        scores = [sum(reproduces(v, c, a) for c, a in pairs) for v in candidates]
        return candidates[scores.index(max(scores))].message
    return candidates[0].message if candidates else None


# ---------------------------------------------------------------------------- the public API


def check(exercise_id: str, fn: Any, *, seed: int | None = None, device=None, quiet: bool = False) -> CheckResult:
    """Check ``fn`` against the package's reference for ``exercise_id``; print and return the verdict.

    Cases are fresh random inputs (a new ``seed`` each call unless given; a failure names
    it so you can repeat the run) plus fixed edge cases. ``device`` defaults to
    ``aigc_course.get_device()``.
    """
    exercise = get(exercise_id)
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    if device is None:
        from aigc_course.runtime import get_device

        device = get_device()
    device = torch.device(device)
    header = f"Exercise {exercise.id} ({exercise.title})"

    def finish(status: str, message: str, case: str | None = None) -> CheckResult:
        if not quiet:
            print(message)
        return CheckResult(exercise.id, status, message, case)

    if not callable(fn):
        return finish("failed", f"{header}: check expects your function {exercise.function}, got {brief(fn)}")
    try:
        generator = torch.Generator().manual_seed(seed)
        cases = exercise.cases(generator, device)
    except Exception as err:  # a bug in the checker must not look like the student's fault
        return finish("failed", f"{header}: the checker could not build its test cases ({err!r}); please report this")
    for number, case in enumerate(cases, 1):
        label = f"case {number}/{len(cases)} '{case.name}' (seed={seed})"
        try:
            expected = exercise.expected(case)
        except Exception as err:
            return finish("failed", f"{header}: the reference failed on {label} ({err!r}); please report this")
        try:
            actual = fn(*_clone(case.args), **_clone(case.kwargs))
        except NotImplementedError:
            return finish(
                "not attempted",
                f"{header}: {NOT_ATTEMPTED}. Replace the `raise NotImplementedError(...)` in "
                f"{exercise.function} with your code, then run this cell again; "
                f'hint("{exercise.id}") gives a first hint.',
            )
        except Exception as err:
            where = _student_location(err, fn)
            likely = next((m for text, m in exercise.error_hints if text in str(err)), None)
            return finish(
                "failed",
                f"✗ {header}: your function raised {type(err).__name__}: {err}{where}\n"
                f"  on {label}." + (f"\n  Likely cause: {likely}" if likely else ""),
                case.name,
            )
        problem = compare(expected, actual, exercise.atol, exercise.rtol)
        if problem is None:
            for extra in exercise.extra_checks:
                try:
                    problem = extra(case, expected, actual)
                except Exception:
                    problem = None
                if problem:
                    break
            if problem is None:
                continue
            return finish("failed", f"✗ {header} failed on {label}:\n  {problem}", case.name)
        def others(failing: Case = case) -> list[tuple[Case, Any]]:
            pairs = []
            for other in cases:
                if other is not failing:
                    try:
                        pairs.append((other, fn(*_clone(other.args), **_clone(other.kwargs))))
                    except Exception:
                        continue
            return pairs

        likely = _diagnose(exercise, case, expected, actual, others)
        text = f"✗ {header} failed on {label}:\n  {problem}"
        if likely:
            text += f"\n  Likely cause: {likely}"
        else:
            text += f'\n  hint("{exercise.id}") may help.'
        return finish("failed", text, case.name)
    return finish("passed", f"✓ {header}: all {len(cases)} cases passed.")


def hint(exercise_id: str, level: int = 1) -> None:
    """Print hint number ``level`` (1 = gentlest) for ``exercise_id``."""
    exercise = get(exercise_id)
    if isinstance(level, bool) or not isinstance(level, int) or level < 1:
        raise ValueError(f"level must be an int >= 1, got {level!r}")
    last = len(exercise.hints)
    text = exercise.hints[min(level, last) - 1]
    more = (
        f'(hint {min(level, last)} of {last}; hint("{exercise.id}", {level + 1}) says more)'
        if level < last
        else f'(last hint; solution("{exercise.id}") shows a solution)'
    )
    print(f"Hint for exercise {exercise.id} ({exercise.title}): {text}\n{more}")


def solutions_dir() -> Path:
    """``exercises/solutions`` of the repository checkout the package is installed from."""
    return Path(__file__).resolve().parents[2] / "exercises" / "solutions"


def solution_code(exercise_id: str) -> str | None:
    """The solution cell of ``exercise_id`` from its solution notebook, markers removed."""
    from aigc_course.exercises.build import exercise_cells

    exercise = get(exercise_id)
    path = solutions_dir() / exercise.notebook
    if not path.exists():
        return None
    return exercise_cells(path).get(exercise_id, {}).get("solution")


def solution(exercise_id: str) -> None:
    """Print the worked solution of ``exercise_id``: why it works, then the code."""
    exercise = get(exercise_id)
    code = solution_code(exercise_id)
    print(f"Solution to exercise {exercise.id} ({exercise.title})\n")
    if exercise.explanation:
        print(exercise.explanation + "\n")
    if code is None:
        print(f"(The code is in exercises/solutions/{exercise.notebook} of the course repository.)")
    else:
        print(code)

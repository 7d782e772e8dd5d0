"""The checking engine behind ``check``, ``hint`` and ``solution``.

An :class:`Exercise` names a reference function from the package, a generator of test
cases (fresh random inputs plus fixed edge cases), *diagnostics* and *variants* (known
mistakes, each with the specific message a student sees when their answer matches it) and
*probes* (checks that watch the function run, for a parameter its output cannot show was
ignored). ``check`` computes every expected value first, then runs the student's function
on private copies of each case's inputs (:mod:`.sandbox`), compares (:mod:`.judging`) and
returns one :class:`CheckResult`. Whatever the student's function or arguments do, ``check``
reports it as a message; it never shows a traceback of its own.
"""

from __future__ import annotations

import inspect
import random
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc_course.exercises import judging, sandbox
from aigc_course.exercises.judging import brief, compare, matches, safe_text  # noqa: F401  (used by chapters)

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
    probe: Probe | None = None  # set on the cases a probe builds


@dataclass
class Variant:
    """A known wrong answer: if the student's output equals ``fn(case)``, show ``message``."""

    message: str
    fn: Callable[[Case], Any]


@dataclass
class Probe:
    """Watches the student's function on one more case, for what its output cannot show.

    ``watch()`` makes a fresh context manager entered around the call (for example a
    :class:`~.sandbox.OpRecorder`); once the values are right, ``verdict(case, watcher)``
    returns the message of the mistake seen, or ``None``. ``parameter`` names what it guards.
    """

    parameter: str
    case: Callable[[torch.Generator, torch.device], Case]
    watch: Callable[[], Any]
    verdict: Callable[[Case, Any], str | None]


Diagnostic = Callable[[Case, Any, Any], "str | None"]  # (case, expected, actual) -> message


@dataclass
class Exercise:
    """One exercise. ``reference(*case.args, **case.kwargs)`` gives the expected output.

    ``title`` is the one copy of the exercise's title: the generated student notebook and
    book page take it from here.
    """

    id: str
    title: str
    function: str  # the name the student writes, e.g. "causal_attention"
    reference: Callable[..., Any] | None
    cases: Callable[[torch.Generator, torch.device], list[Case]]
    variants: list[Variant] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    extra_checks: list[Diagnostic] = field(default_factory=list)  # run after the values match
    probes: list[Probe] = field(default_factory=list)
    error_hints: list[tuple[str, str]] = field(default_factory=list)  # (text in the error, likely cause)
    hints: list[str] = field(default_factory=list)
    explanation: str = ""
    atol: float = 1e-5
    rtol: float = 1e-4

    def expected(self, case: Case) -> Any:
        if case.expected is not None:
            return case.expected
        return self.reference(*sandbox.clone(case.args), **sandbox.clone(case.kwargs))


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


def _unknown_id(exercise_id: Any) -> str:
    return (f"exercise_id must be one of the registered ids {', '.join(exercise_ids())} (a str such as "
            f'"3.1.1"); got {brief(exercise_id)}')


def get(exercise_id: str) -> Exercise:
    """The exercise with this id; a ``ValueError`` listing the valid ids otherwise."""
    if not isinstance(exercise_id, str) or exercise_id not in REGISTRY:
        raise ValueError(_unknown_id(exercise_id))
    return REGISTRY[exercise_id]


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult:
    """What ``check`` found. Truthy only when every case passed.

    ``status`` is "passed", "failed", "not attempted" or "error" (a fault of the checker, not
    the student's). For a failure, ``problem`` says what kind: "bad argument" (to ``check``
    itself), "raised", "wrong type", "wrong shape", "wrong dtype", "wrong device", "wrong
    value", "changed input", "ignored parameter" or "failed check"; ``likely_cause`` is the
    known mistake recognised, if any, and ``case`` the failing case. ``to_dict()`` gives
    the fields as plain data, for a grader.
    """

    exercise_id: str
    status: str
    message: str
    problem: str | None = None
    likely_cause: str | None = None
    case: str | None = None
    seed: int | None = None
    cases_passed: int = 0
    cases_total: int = 0

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

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


# ---------------------------------------------------------------------------- arguments of check()


def _bad_argument(exercise_id: Any, fn: Any, seed: Any, device: Any, quiet: Any) -> str | None:
    """What is wrong with the arguments of ``check``, in the student's terms; ``None`` if nothing."""
    if not isinstance(exercise_id, str) or exercise_id not in REGISTRY:
        return _unknown_id(exercise_id)
    exercise = REGISTRY[exercise_id]
    call = f'check("{exercise.id}", {exercise.function})'
    if isinstance(fn, str):
        return (f"fn must be your function itself, not its name: write {call} (no quotes around "
                f"{exercise.function}); got the str {brief(fn)}")
    if not callable(fn):
        more = " (pass the function, not its result: no parentheses after its name)" if fn is not None else ""
        return f"fn must be your function {exercise.function}, as in {call}; got {brief(fn)}{more}"
    if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn):
        kind = "contains `yield`" if inspect.isgeneratorfunction(fn) else "is `async`"
        return (f"your function {exercise.function} {kind}, so calling it does not compute a result; "
                "use `return` in an ordinary `def`")
    if seed is not None and (type(seed) is not int or seed < 0):
        return (f"seed must be a non-negative int or None (None draws fresh random cases), "
                f"as in {call[:-1]}, seed=3); got {brief(seed)} ({type(seed).__name__})")
    if type(quiet) is not bool:
        return f"quiet must be True or False; got {brief(quiet)} ({type(quiet).__name__})"
    if device is not None:
        return _bad_device(device)
    return None


def _bad_device(device: Any) -> str | None:
    if not isinstance(device, (str, torch.device)):
        return (f"device must be a device name such as 'cpu' or 'cuda' (or leave it out to use "
                f"aigc_course.get_device()); got {brief(device)} ({type(device).__name__})")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        return f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps'; got {brief(device)}, which torch does not know"
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index is not None and parsed.index >= count):
            return (f"device={brief(str(device))} is not available on this machine ({count} CUDA device(s)); "
                    "leave device out to use aigc_course.get_device()")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            return f"device={brief(str(device))} is not available on this machine; leave device out"
    elif parsed.type != "cpu":
        return f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps'; got {brief(str(device))}"
    return None


# ---------------------------------------------------------------------------- the student's errors


def _student_frames(err: BaseException, fn: Callable) -> list[traceback.FrameSummary]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    return [f for f in traceback.extract_tb(err.__traceback__) if f.filename == code.co_filename]


def _student_location(err: BaseException, fn: Callable) -> str:
    """``line N of your function`` for the deepest frame of the student's own code."""
    frames = _student_frames(err, fn)
    if not frames:
        return ""
    last = frames[-1]
    line = f": {last.line.strip()}" if last.line else ""
    first = fn.__code__.co_firstlineno
    name = getattr(fn, "__name__", "your function")
    return f" (line {last.lineno - first + 1} of {name}{line})"


def _not_attempted(err: BaseException, fn: Callable, exercise: Exercise) -> bool:
    """The skeleton's own ``raise NotImplementedError`` -- not one raised by a library inside."""
    if not isinstance(err, NotImplementedError):
        return False
    if safe_text(err).startswith(f"Exercise {exercise.id}"):
        return True
    tb = traceback.extract_tb(err.__traceback__)
    code = getattr(fn, "__code__", None)
    return bool(tb) and code is not None and tb[-1].filename == code.co_filename and tb[-1].name == code.co_name


def _diagnose(exercise: Exercise, case: Case, expected: Any, actual: Any, others) -> str | None:
    """The message of the known mistake that explains ``actual``, if any.

    A variant that reproduces the failing output is the strongest evidence; when several do
    (a coincidence on one case), the one that also reproduces the student's outputs on every
    other case wins. Then the exercise's structural diagnostics look at the failing case, and
    last the mistakes any numeric answer can make (sign, factor, square root, ...).
    """
    def reproduces(variant: Variant, c: Case, a: Any) -> bool:
        numbers = judging.as_floats(a if not isinstance(a, (tuple, list)) or not a else a[0])
        if numbers is not None and numbers.size and not np.isfinite(numbers).any():
            return False  # two all-NaN outputs agreeing says nothing about the mistake
        try:
            return matches(variant.fn(c), a)
        except Exception:  # noqa: BLE001  (a diagnostic must never break the verdict)
            return False

    candidates = [v for v in exercise.variants if reproduces(v, case, actual)]
    if len(candidates) > 1:
        pairs = others()
        scores = [sum(reproduces(v, c, a) for c, _, a in pairs) for v in candidates]
        return candidates[scores.index(max(scores))].message
    if candidates:
        return candidates[0].message
    for diagnostic in exercise.diagnostics:
        try:
            message = diagnostic(case, expected, actual)
        except Exception:  # noqa: BLE001
            message = None
        if message:
            return message
    found = judging.mismatch(expected, actual, exercise.atol, exercise.rtol)
    if found is None or found.kind not in ("wrong value", "wrong shape"):
        return None
    try:
        pairs = [(e, a) for _, e, a in others()] if found.expected is expected else []
        return judging.generic_cause(found.expected, found.actual, pairs)
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------- the public API


def _printed(outcome: sandbox.Outcome) -> str:
    if not outcome.printed.strip():
        return ""
    lines = outcome.printed.rstrip().splitlines()
    shown = "\n".join(f"    {line[:200]}" for line in lines[:8])
    more = f"\n    ... ({len(lines) - 8} more lines)" if len(lines) > 8 else ""
    return f"\n  Your function printed:\n{shown}{more}"


def _run_case(exercise: Exercise, fn: Callable, case: Case, expected: Any, others, header: str,
              label: str) -> tuple | None:
    """``None`` when ``fn`` passes ``case``; else (status, problem, message, likely cause)."""
    watcher = case.probe.watch() if case.probe else None
    outcome = sandbox.run(fn, case.args, case.kwargs, watch=watcher)
    printed = _printed(outcome)
    err = outcome.error
    if err is not None:
        if _not_attempted(err, fn, exercise):
            return ("not attempted", None,
                    f"{NOT_ATTEMPTED}. Replace the `raise NotImplementedError(...)` in {exercise.function} with "
                    f'your code, then run this cell again; hint("{exercise.id}") gives a first hint.', None)
        message = safe_text(err)
        if isinstance(err, SystemExit):
            likely = "sys.exit() or exit() stops the whole program; return a value instead"
        else:
            likely = next((m for text, m in exercise.error_hints if text in message), None)
        text = (f"your function raised {type(err).__name__}: {message}{_student_location(err, fn)}"
                + (f"\n  Likely cause: {likely}" if likely else ""))
        return ("failed", "raised", f"✗ {header}: {text}\n  on {label}.{printed}", likely)
    if outcome.changed:
        what, advice = outcome.changed
        text = (f"your function changed its input: {what} is different after the call. The caller's inputs "
                f"must stay unchanged: {advice}.")
        return ("failed", "changed input", f"✗ {header} failed on {label}:\n  {text}{printed}",
                f"changed {what} in place")
    found = judging.mismatch(expected, outcome.value, exercise.atol, exercise.rtol)
    if found is not None:
        likely = _diagnose(exercise, case, expected, outcome.value, others)
        text = found.text + (f"\n  Likely cause: {likely}" if likely else f'\n  hint("{exercise.id}") may help.')
        return ("failed", found.kind, f"✗ {header} failed on {label}:\n  {text}{printed}", likely)
    for extra in exercise.extra_checks:
        try:
            problem = extra(case, expected, outcome.value)
        except Exception:  # noqa: BLE001
            problem = None
        if problem:
            return ("failed", "failed check", f"✗ {header} failed on {label}:\n  {problem}{printed}",
                    problem)
    if case.probe is not None:
        try:
            problem = case.probe.verdict(case, watcher)
        except Exception:  # noqa: BLE001
            problem = None
        if problem:
            return ("failed", "ignored parameter",
                    f"✗ {header}: the values are right, but on {label}\n  {problem}{printed}", problem)
    return None


def check(exercise_id: str, fn: Any, *, seed: int | None = None, device=None, quiet: bool = False) -> CheckResult:
    """Check ``fn`` against the package's reference for ``exercise_id``; print and return the verdict.

    Cases are fresh random inputs (a new ``seed`` each call unless given; a failure names
    it so you can repeat the run) plus fixed edge cases. ``device`` defaults to
    ``aigc_course.get_device()``. Your function must leave its inputs unchanged.
    """
    try:
        result = _check(exercise_id, fn, seed, device, quiet)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001  (a bug of the checker must not look like the student's)
        result = CheckResult(safe_text(exercise_id), "error",
                             f"The checker itself failed ({type(err).__name__}: {safe_text(err)}); "
                             "please report this to the course.")
    if quiet is not True:
        try:
            print(result.message)
        except Exception:  # noqa: BLE001  (sys.stdout replaced or closed by the student's code)
            pass
    return result


def _check(exercise_id: Any, fn: Any, seed: Any, device: Any, quiet: Any) -> CheckResult:
    problem = _bad_argument(exercise_id, fn, seed, device, quiet)
    if problem:
        return CheckResult(safe_text(exercise_id), "failed", f"✗ check() could not run: {problem}",
                           problem="bad argument")
    exercise = REGISTRY[exercise_id]
    header = f"Exercise {exercise.id} ({exercise.title})"
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    if device is None:
        from aigc_course.runtime import get_device

        try:
            device = get_device()
        except (RuntimeError, ValueError) as err:
            return CheckResult(exercise.id, "failed", f"✗ check() could not run: {err}", problem="bad argument",
                               seed=seed)
    device = torch.device(device)

    def report(status: str, message: str, **fields) -> CheckResult:
        return CheckResult(exercise.id, status, message, seed=seed, **fields)

    try:
        generator = torch.Generator().manual_seed(seed)
        cases = exercise.cases(generator, device)
        cases += [probe.case(generator, device) for probe in exercise.probes]
        for case, probe in zip(cases[len(cases) - len(exercise.probes):], exercise.probes, strict=True):
            case.probe = probe
    except Exception as err:  # noqa: BLE001  (a bug in the checker must not look like the student's fault)
        return report("error", f"{header}: the checker could not build its test cases ({err!r}); please report this")
    expected_values = []
    for number, case in enumerate(cases, 1):  # every expected value first: no student code has run yet
        try:
            expected_values.append(exercise.expected(case))
        except Exception as err:  # noqa: BLE001
            return report("error", f"{header}: the reference failed on case {number} '{case.name}' ({err!r}); "
                          "please report this")
    total = len(cases)
    outputs: dict[int, Any] = {}

    def others(failing: int) -> Callable[[], list[tuple[Case, Any, Any]]]:
        def collect() -> list[tuple[Case, Any, Any]]:
            pairs = []
            for i, other in enumerate(cases):
                if i == failing or other.probe is not None:
                    continue
                if i not in outputs:
                    outcome = sandbox.run(fn, other.args, other.kwargs)
                    outputs[i] = None if outcome.error else outcome.value
                if outputs[i] is not None:
                    pairs.append((other, expected_values[i], outputs[i]))
            return pairs

        return collect

    for index, (case, expected) in enumerate(zip(cases, expected_values, strict=True)):
        label = f"case {index + 1}/{total} '{case.name}' (seed={seed})"
        verdict = _run_case(exercise, fn, case, expected, others(index), header, label)
        if verdict is None:
            continue
        status, problem, text, likely = verdict
        if status == "not attempted":
            return report(status, f"{header}: {text}", cases_total=total)
        return report(status, text, problem=problem, likely_cause=likely, case=case.name, cases_passed=index,
                      cases_total=total)
    return report("passed", f"✓ {header}: all {total} cases passed.", cases_passed=total, cases_total=total)


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
    """The solution cell of ``exercise_id`` from the solution notebooks, markers removed."""
    from aigc_course.exercises.notebooks import find_solution

    get(exercise_id)
    return find_solution(solutions_dir(), exercise_id)


def solution(exercise_id: str) -> None:
    """Print the worked solution of ``exercise_id``: why it works, then the code."""
    exercise = get(exercise_id)
    code = solution_code(exercise_id)
    print(f"Solution to exercise {exercise.id} ({exercise.title})\n")
    if exercise.explanation:
        print(exercise.explanation + "\n")
    if code is None:
        print("(The code is in the solution notebooks, exercises/solutions/, of the course repository.)")
    else:
        print(code)

"""The grader's code that runs inside a student's kernel, after the student's notebook has run.

``scripts/grade.py`` never imports this file: it sends its text to the kernel with a fresh
random nonce, once the student's cells have run, into a private namespace. The student's code
therefore never saw it and cannot predict the names it uses. Results go back in the kernel's
execute reply (``user_expressions``), never through a file, stdout or the notebook, and carry
the nonce.

``setup`` notes what the notebook changed in the course's modules, then drops every
``aigc_course`` module and imports a fresh copy from the grader's own checkout (checking where
each one came from), so a notebook that replaced ``aigc_course.exercises.check``, an entry of
the registry or a reference implementation is graded by the real checker anyway. ``grade``
looks the student's function up by the name the registry gives, checks it with the fresh
checker on the grader's seed, then checks a deliberately wrong *canary* the same way: if the
canary passes, something in this process makes wrong answers pass and the result is worthless.
It also notes whether the student's function changed the fresh modules while it was checked.
"""

import importlib
import json
import sys
import types

_STATE = {}


def _fingerprint(value):
    """What identifies a module-level function or class: the object and, for functions, its code."""
    return (id(value), id(getattr(value, "__code__", None)))


def _course_modules():
    return {name: module for name, module in list(sys.modules.items())
            if (name == "aigc_course" or name.startswith("aigc_course.")) and isinstance(module, types.ModuleType)}


def _snapshot():
    """Every module-level function and class of the course's modules, and the registry's entries."""
    seen = {}
    for name, module in _course_modules().items():
        for attr, value in list(vars(module).items()):
            if isinstance(value, (types.FunctionType, type)):
                seen[f"{name}.{attr}"] = _fingerprint(value)
    registry = _STATE["exercises"].REGISTRY
    for exercise_id, exercise in list(registry.items()):
        fields = tuple(id(getattr(exercise, f, None)) for f in ("reference", "cases", "variants", "diagnostics",
                                                                 "extra_checks", "probes", "atol", "rtol"))
        seen[f"REGISTRY[{exercise_id!r}]"] = (id(exercise), fields)
    return seen


def _same_code(old, new):
    old_code, new_code = getattr(old, "__code__", None), getattr(new, "__code__", None)
    if old_code is None or new_code is None:
        return old_code is new_code
    return (old_code.co_code == new_code.co_code and old_code.co_filename == new_code.co_filename
            and old_code.co_firstlineno == new_code.co_firstlineno)


def _changes(old_modules, fresh_modules):
    """Functions of the course's modules that the notebook replaced (compared with a fresh import)."""
    changed = []
    for name, old in old_modules.items():
        fresh = fresh_modules.get(name)
        if fresh is None:
            continue
        for attr, new in vars(fresh).items():
            if not isinstance(new, types.FunctionType):
                continue
            current = vars(old).get(attr)
            if not _same_code(current, new):
                changed.append(f"{name}.{attr}")
    old_registry = getattr(old_modules.get("aigc_course.exercises.core"), "REGISTRY", None)
    fresh_registry = fresh_modules["aigc_course.exercises.core"].REGISTRY
    if isinstance(old_registry, dict):
        for exercise_id, exercise in fresh_registry.items():
            old = old_registry.get(exercise_id)
            if old is None or not _same_code(getattr(old, "reference", None), exercise.reference) \
                    or not _same_code(getattr(old, "cases", None), exercise.cases):
                changed.append(f"REGISTRY[{exercise_id!r}]")
    return sorted(set(changed))


def setup(nonce, package_dir):
    """Import a fresh checker from ``package_dir``; returns the reply as JSON text."""
    reply = {"nonce": nonce, "ok": False, "changed": [], "error": None}
    try:
        old_modules = _course_modules()
        for name in old_modules:
            del sys.modules[name]
        parent = package_dir.rsplit("/", 1)[0]
        if parent in sys.path:
            sys.path.remove(parent)
        sys.path.insert(0, parent)
        importlib.invalidate_caches()
        exercises = importlib.import_module("aigc_course.exercises")
        fresh = _course_modules()
        strays = [name for name, module in fresh.items()
                  if not str(getattr(module, "__file__", "") or "").startswith(package_dir + "/")]
        if strays:
            reply["error"] = (f"the fresh import of the course's modules did not come from {package_dir}: "
                              f"{', '.join(sorted(strays)[:5])}")
            return json.dumps(reply)
        _STATE["exercises"] = exercises
        _STATE["core"] = importlib.import_module("aigc_course.exercises.core")
        _STATE["check"] = exercises.check
        _STATE["snapshot"] = _snapshot()
        reply["changed"] = _changes(old_modules, fresh)
        reply["ok"] = True
    except BaseException as err:  # noqa: BLE001  (the notebook may have broken anything)
        reply["error"] = f"{type(err).__name__}: {err}"[:500]
    return json.dumps(reply)


def _canary(*args, **kwargs):
    return None  # a wrong answer for every exercise: the checker must reject it


def grade(nonce, exercise_id, function_name, seed, namespace):
    """Check the student's ``function_name`` from ``namespace``; returns the reply as JSON text."""
    reply = {"nonce": nonce, "exercise_id": exercise_id, "found": False, "result": None,
             "canary_passed": None, "changed": [], "error": None}
    try:
        check = _STATE["check"]
        fn = namespace.get(function_name)
        if fn is None or not callable(fn):
            reply["error"] = (f"the notebook defines no function {function_name}"
                              + (f" ({function_name} is a {type(fn).__name__})" if fn is not None else ""))
            return json.dumps(reply)
        reply["found"] = True
        result = check(exercise_id, fn, seed=seed, quiet=True)
        if type(result) is not _STATE["core"].CheckResult:
            reply["error"] = f"check returned a {type(result).__name__}, not a CheckResult"
            return json.dumps(reply)
        reply["result"] = result.to_dict()
        canary = check(exercise_id, _canary, seed=seed, quiet=True)
        reply["canary_passed"] = getattr(canary, "status", None) == "passed"
        now, before = _snapshot(), _STATE["snapshot"]
        reply["changed"] = sorted(k for k in before if now.get(k) != before[k])
    except BaseException as err:  # noqa: BLE001
        if isinstance(err, KeyboardInterrupt):
            raise  # the grader's time limit: the parent reports it
        reply["error"] = f"the grading code failed in this kernel ({type(err).__name__}: {err})"[:500]
    return json.dumps(reply)

"""Exercises with automatic checks: ``from aigc_course.exercises import check, hint, solution``.

``check("3.1.1", causal_attention)`` runs your function against the package's own
implementation on fresh random inputs and edge cases and prints a verdict (and returns a
:class:`CheckResult` that is truthy when every case passed). ``hint(id, level)`` gives hints in
increasing detail; ``solution(id)`` shows the worked solution. ``exercise_ids()`` lists every id.

Each chapter's exercises are registered by a module ``ch*.py`` of this package, imported here.
The student notebooks and book pages are generated from ``exercises/solutions/`` by the
repository's ``scripts/build_exercises.py`` (``make exercises``), not by this package.
"""

import importlib
import pkgutil

from aigc_course.exercises.core import (
    NOT_ATTEMPTED,
    REGISTRY,
    CheckResult,
    check,
    exercise_ids,
    hint,
    solution,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("ch")):
    importlib.import_module(f"{__name__}.{_module}")  # registers the chapter's exercises

__all__ = ["NOT_ATTEMPTED", "REGISTRY", "CheckResult", "check", "exercise_ids", "hint", "solution"]

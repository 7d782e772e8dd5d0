"""Exercises with automatic checks: ``from aigc_course.exercises import check, hint, solution``.

``check("3.1.1", causal_attention)`` runs your function against the package's own
implementation on fresh random inputs and edge cases and prints a verdict (and returns a
result that is truthy when every case passed). ``hint(id, level)`` gives hints in increasing
detail; ``solution(id)`` shows the worked solution. ``exercise_ids()`` lists every id.

Instructors: ``python -m aigc_course.exercises build`` regenerates the student notebooks and
the book pages from ``exercises/solutions/``; ``check-built`` fails when they are stale.
"""

from aigc_course.exercises import ch1, ch2, ch3_1, ch3_1_4, ch3_2, ch3_3, ch3_4, ch4_1, ch4_2, ch4_4  # noqa: F401  (registers the exercises)
from aigc_course.exercises.core import (
    NOT_ATTEMPTED,
    REGISTRY,
    CheckResult,
    check,
    exercise_ids,
    hint,
    solution,
)

__all__ = ["NOT_ATTEMPTED", "REGISTRY", "CheckResult", "check", "exercise_ids", "hint", "solution"]

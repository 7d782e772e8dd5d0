"""``python -m aigc_course.exercises list``: every exercise id and title, from the registry.

``python -m aigc_course.exercises grade ...`` hands its arguments to the repository's grader,
``scripts/grade.py`` (``make grade``): grading is repository tooling, so the package only finds
and runs that script and imports none of its dependencies.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from aigc_course.exercises import REGISTRY, exercise_ids

MOVED = {
    "build": "make exercises  (python scripts/build_chapters.py)",
    "check-built": "python scripts/build_chapters.py --check",
    "book-config": "python scripts/build_exercises.py book-config OUT",
}
GRADER = Path(__file__).resolve().parents[2] / "scripts" / "grade.py"


def grade(argv: list[str]) -> int:
    """Run ``scripts/grade.py`` of the checkout this package is installed from, with ``argv``."""
    if not GRADER.is_file():
        print("grading is repository tooling: run `python scripts/grade.py` (or `make grade`) in a clone of "
              f"the course repository (no {GRADER} next to this installed package)", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("aigc_course_grade_script", GRADER)
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # its dataclasses look their module up there
    spec.loader.exec_module(script)
    return script.main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in MOVED:
        print(f"`python -m aigc_course.exercises {argv[0]}` moved out of the package (it is repository "
              f"tooling); run: {MOVED[argv[0]]}", file=sys.stderr)
        return 2
    if argv and argv[0] == "grade":
        return grade(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m aigc_course.exercises", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print every exercise id and title")
    sub.add_parser("grade", help="grade students' notebooks: runs the repository's scripts/grade.py "
                                 "(python -m aigc_course.exercises grade --help)")
    parser.parse_args(argv)
    for exercise_id in exercise_ids():
        print(f"{exercise_id}  {REGISTRY[exercise_id].title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m aigc_course.exercises list``: every exercise id and title, from the registry."""

from __future__ import annotations

import argparse
import sys

from aigc_course.exercises import REGISTRY, exercise_ids

MOVED = {
    "build": "make exercises  (python scripts/build_chapters.py)",
    "check-built": "python scripts/build_chapters.py --check",
    "book-config": "python scripts/build_exercises.py book-config OUT",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in MOVED:
        print(f"`python -m aigc_course.exercises {argv[0]}` moved out of the package (it is repository "
              f"tooling); run: {MOVED[argv[0]]}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m aigc_course.exercises", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print every exercise id and title")
    parser.parse_args(argv)
    for exercise_id in exercise_ids():
        print(f"{exercise_id}  {REGISTRY[exercise_id].title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m aigc_course.exercises {build,check-built,list,book-config OUT}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from aigc_course.exercises import REGISTRY, exercise_ids
from aigc_course.exercises.build import build, stale

ROOT = Path(__file__).resolve().parents[2]


def student_book_config(out: Path) -> None:
    """Write ``_config.yml`` with sphinx-exercise's ``hide_solutions`` on (the student edition).

    The execution cache is the main build's, so the student build re-runs no notebook that
    the main build already ran.
    """
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["title"] = f"{config['title']} (student edition)"
    config.setdefault("execute", {})["cache"] = str(ROOT / "_build" / ".jupyter_cache")
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    extensions = config["sphinx"].get("local_extensions") or {}
    for name, path in extensions.items():  # jupyter-book resolves them from the config's folder
        extensions[name] = str(ROOT / path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_course.exercises", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="write exercises/student/*.ipynb and the chapters' exercises.md pages")
    sub.add_parser("check-built", help="exit 1 if the generated files are out of date")
    sub.add_parser("list", help="print every exercise id and title")
    config = sub.add_parser("book-config", help="write the student edition's book config (hide_solutions)")
    config.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        written = build(ROOT)
        for path in written:
            print(f"wrote {path.relative_to(ROOT)}")
        print(f"{len(written)} file(s) changed" if written else "everything up to date")
        return 0
    if args.command == "check-built":
        out_of_date = stale(ROOT)
        for path in out_of_date:
            print(f"{path.relative_to(ROOT)} is out of date")
        if out_of_date:
            print("run: make exercises  (python -m aigc_course.exercises build)")
            return 1
        print("student notebooks and exercise pages are up to date")
        return 0
    if args.command == "list":
        for exercise_id in exercise_ids():
            print(f"{exercise_id}  {REGISTRY[exercise_id].title}")
        return 0
    student_book_config(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

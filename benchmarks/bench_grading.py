"""Grading a class: 30 submissions of one chapter's exercises, target <= 5 min on 2 CPU cores.

    .venv/bin/python benchmarks/bench_grading.py [--chapter ch3_1_attention.ipynb] [--students 30]

Builds a class from the real student and solution notebooks -- a third solved, a third with one
wrong answer, a sixth not attempted, a sixth with a cell that raises -- and grades it with
``scripts/grade.py`` (two notebooks at a time, one thread each, the default sandbox), then prints
the wall time against the target, the time per notebook, the CPU time the kernels and the
grader used (the machine is shared, so wall times grow with other jobs' load; half the CPU time
is what two otherwise idle cores would need) and what the report says. A notebook that
hits the time limit would add up to ``--timeout`` seconds to one worker; none of these does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import grade  # noqa: E402
import nbformat  # noqa: E402

from aigc_course.exercises.notebooks import find_solution  # noqa: E402

TARGET_SECONDS = 300


def build_class(chapter: str, students: int, folder: Path) -> dict[str, int]:
    exercises = grade.course_exercises()[chapter]
    solutions = {e.id: find_solution(ROOT / "exercises" / "solutions", e.id) for e in exercises}
    kinds = {"solved": 0, "one wrong answer": 0, "not attempted": 0, "a cell raises": 0}
    for number in range(students):
        nb = nbformat.read(str(ROOT / "exercises" / "student" / chapter), as_version=4)
        kind = ["solved", "one wrong answer", "solved", "not attempted", "one wrong answer", "a cell raises"][number % 6]
        kinds[kind] += 1
        if kind != "not attempted":
            for e in exercises:
                index = next(i for i, c in enumerate(nb.cells) if f'NotImplementedError("Exercise {e.id}:' in c.source)
                nb.cells[index].source = solutions[e.id]
        if kind == "one wrong answer":  # the last exercise returns its first argument unchanged
            last = exercises[-1]
            index = next(i for i, c in enumerate(nb.cells) if f"def {last.function}(" in c.source)
            head = nb.cells[index].source.split("\n")[0]
            first = head.split("(")[1].split(":")[0].split(",")[0].strip()
            nb.cells[index].source = f"{head}\n    return {first}"
        if kind == "a cell raises":
            nb.cells.insert(3, nbformat.v4.new_code_cell('raise ValueError("a cell left broken")'))
        path = folder / f"student{number:02d}" / chapter
        path.parent.mkdir(parents=True)
        nbformat.write(nb, str(path))
    return kinds


def _own_cpu_seconds() -> float:
    """CPU time of the grader's own process (each kernel's is in its record's timings)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapter", default="ch3_1_attention.ipynb")
    parser.add_argument("--students", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        folder, out = Path(tmp) / "submissions", Path(tmp) / "report"
        kinds = build_class(args.chapter, args.students, folder)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        start = time.perf_counter()
        own = _own_cpu_seconds()
        code = grade.main([str(folder), "--out", str(out), "--workers", "2"])
        wall = time.perf_counter() - start
        own = _own_cpu_seconds() - own
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    records = report["notebooks"]
    statuses: dict[str, int] = {}
    for r in records:
        for e in r["exercises"].values():
            statuses[e["status"]] = statuses.get(e["status"], 0) + 1
    per = [r["seconds"] for r in records]
    phases = {k: sum(r["timings"].get(k, 0) for r in records) / len(records)
              for k in ("kernel start", "cells", "checks")}
    print(f"\nclass: {args.students} submissions of {args.chapter}: "
          + ", ".join(f"{n} {k}" for k, n in kinds.items()))
    print(f"machine: {os.cpu_count()} CPU cores, load average {load:.1f} when the run started; "
          f"sandbox: {report['meta']['sandbox'].split(':')[0]}")
    print(f"{'measure':<44} {'value':>12} {'target':>10}")
    print(f"{'wall time, whole class (one report)':<44} {wall:>10.1f} s {'<= 300 s':>10}  "
          + ("met" if wall <= TARGET_SECONDS else "MISSED"))
    print(f"{'per notebook: mean / max':<44} {sum(per) / len(per):>6.1f} / {max(per):.1f} s")
    print(f"{'  of which kernel start / cells / checks':<44} "
          + " / ".join(f"{phases[k]:.1f}" for k in ("kernel start", "cells", "checks")) + " s")
    kernels = sum(r["timings"].get("kernel cpu", 0.0) for r in records)
    print(f"{'CPU time (user + sys): kernels / grader':<44} {kernels:>6.1f} / {own:.1f} s")
    print(f"{'  per notebook; whole class / 2 cores':<44} {kernels / len(records):>6.1f} s; "
          f"{(kernels + own) / 2:.1f} s   (the wall time of 2 otherwise idle cores, at best)")
    print(f"{'exercise results':<44} " + ", ".join(f"{n} {k}" for k, n in sorted(statuses.items())))
    print(f"{'total points / possible':<44} {sum(r['score'] for r in records):g} / "
          f"{sum(r['max_score'] for r in records):g}")
    print(f"grader exit status {code}")


if __name__ == "__main__":
    main()

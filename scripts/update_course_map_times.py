"""Record the measured CPU time of every chapter notebook for the home page's course map.

The chapter notebooks are those of the chapter list ``_data/chapters.yml``.

``make execute`` (scripts/execute_notebooks.py, part of ``make test``) or ``make notebooks``
(nbval, tests/nbtiming.py) runs every notebook and writes each one's wall time to
``_build/notebook_times.json``. This script copies the chapter notebooks'
times into ``_data/cpu_times.json`` with the date and the machine they were measured on. The
book's ``{cpu-time}`` role (``_ext/course_map.py``) sums them per chapter; the strict build
and ``tests/test_book_pages.py`` fail when a chapter notebook has no measured time, so the
course map cannot silently go stale. Usage, on a machine without a GPU (or AIGC_DEVICE=cpu):

    make execute && .venv/bin/python scripts/update_course_map_times.py

After adding one chapter, time only its notebooks and merge them into the existing file:

    .venv/bin/python scripts/execute_notebooks.py chapters/<new chapter>
    .venv/bin/python scripts/update_course_map_times.py --merge
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
from course_map import DATA, chapter_notebooks  # noqa: E402  (the book's extension owns the chapter list and the data path)

SOURCE = ROOT / "_build" / "notebook_times.json"
TARGET = ROOT / DATA


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ran_on_cpu(device: str) -> bool:
    """nbtiming records AIGC_DEVICE, or "auto": then the notebooks used CUDA if torch saw it."""
    if device == "cpu":
        return True
    if device != "auto":
        return False
    import torch

    return not torch.cuda.is_available()


def record(source: Path, target: Path, note: str, root: Path = ROOT, merge: bool = False) -> dict:
    measured = json.loads(source.read_text(encoding="utf-8"))
    if not ran_on_cpu(measured["device"]):
        raise SystemExit(f"{source} was measured with device={measured['device']!r} on a machine "
                         "with a GPU; rerun with AIGC_DEVICE=cpu make notebooks")
    times = {k: round(v, 1) for k, v in measured["seconds"].items() if k.startswith("chapters/")}
    machine = f"{cpu_model()}, {os.cpu_count()} cores"
    if merge and target.exists():
        old = json.loads(target.read_text(encoding="utf-8"))
        times = {**old["seconds"], **times}
        if old["machine"] != machine:
            machine = f"{old['machine']} and {machine}"
        note = "; ".join(filter(None, [old.get("note"), note]))
    missing = [nb for nb in sorted(chapter_notebooks(root)) if nb not in times]
    if missing and not merge:
        raise SystemExit(f"{source} has no time for {missing}: run the full `make notebooks`, "
                         "or time those notebooks and use --merge")
    if missing:  # the strict build and tests/test_book_pages.py keep failing until they are timed
        print(f"still no time for {missing}", file=sys.stderr)
    when = dt.datetime.fromtimestamp(source.stat().st_mtime, dt.UTC).date().isoformat()
    data = {
        "measured": when,
        "machine": machine,
        "threads": "one CPU thread per notebook (OMP_NUM_THREADS=1, as in make test)",
        "note": note,
        "seconds": dict(sorted(times.items())),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="nbtiming's JSON (default: %(default)s)")
    parser.add_argument("--note", default="", help="anything a reader should know about the run")
    parser.add_argument("--merge", action="store_true",
                        help="keep the recorded times of notebooks this run did not time")
    args = parser.parse_args()
    data = record(args.source, TARGET, args.note, merge=args.merge)
    print(f"wrote {TARGET.relative_to(ROOT)}: {len(data['seconds'])} notebooks, "
          f"{sum(data['seconds'].values()):.0f} s in all, measured {data['measured']} on {data['machine']}")


if __name__ == "__main__":
    main()

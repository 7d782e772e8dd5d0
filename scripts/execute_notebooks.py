"""Execute every notebook once, several at a time, and cache the book's for the strict build.

``make test`` and ``make book`` run this before ``jupyter-book build``. Each notebook runs in a
fresh kernel, in its own folder, exactly as the book build would run it (jupyter-cache's
``single_nb_execution``, the function myst-nb calls), and fails on the first error, as nbval's
lax mode does. The book's notebooks (those under ``chapters/``) are stored in the book's
execution cache, ``_build/.jupyter_cache``, so the build that follows finds every one of them
already executed and runs none again: each notebook costs one execution per ``make test``,
not two (one by nbval, one by the book).

Notebooks go to the workers longest first (LPT scheduling, times from the last run), which keeps
two workers busy to the end. A notebook whose code cells match a cached execution is not run
again. Wall times go to ``_build/notebook_times.json``, the file
``scripts/update_course_map_times.py`` reads, and a table is printed with the 90-second budget.

    python scripts/execute_notebooks.py [PATH ...] [--workers N] [--force]

Instructors who prefer nbval run the same notebooks with ``make notebooks``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BOOK_DIR = ROOT / "chapters"
CACHE_DIR = ROOT / "_build" / ".jupyter_cache"
TIMES_FILE = ROOT / "_build" / "notebook_times.json"
RECORDED_TIMES = ROOT / "_data" / "cpu_times.json"
BUDGET_SECONDS = 90.0
TIMEOUT_SECONDS = 300  # per cell, as _config.yml's execute.timeout


def find_notebooks(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        path = path.resolve()
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif path.suffix == ".ipynb" and path.is_file():
            found.append(path)
        else:
            raise SystemExit(f"execute_notebooks: {path} is neither a folder nor a notebook")
    return sorted(set(found))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def expected_seconds() -> dict[str, float]:
    """The last measured time of each notebook, to start the longest first."""
    times: dict[str, float] = {}
    for source in (RECORDED_TIMES, TIMES_FILE):
        if source.exists():
            times.update(json.loads(source.read_text(encoding="utf-8")).get("seconds", {}))
    return times


def in_book(path: Path) -> bool:
    return BOOK_DIR in path.parents


def execute(path_str: str) -> tuple[str, float, nbformat.NotebookNode | None, str | None]:
    """Run one notebook in a fresh kernel in its folder; returns (path, seconds, executed nb, error)."""
    from jupyter_cache.executors.utils import single_nb_execution

    path = Path(path_str)
    start = time.perf_counter()
    try:
        nb = nbformat.read(str(path), as_version=4)
        result = single_nb_execution(nb, cwd=str(path.parent), timeout=TIMEOUT_SECONDS,
                                     allow_errors=False, meta_override=True)
    except Exception:  # a kernel that fails to start, an unreadable notebook
        return path_str, time.perf_counter() - start, None, traceback.format_exc()
    if result.err is not None:
        return path_str, result.time, None, result.exc_string
    return path_str, result.time, result.nb, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "chapters", ROOT / "exercises"])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="notebooks run at once (default: one per CPU core)")
    parser.add_argument("--force", action="store_true", help="re-run notebooks that are already cached")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")

    # one notebook per core: a kernel without a thread count would take every core
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.workers)))
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    notebooks = find_notebooks(args.paths)
    cache = get_cache(str(CACHE_DIR))
    todo: list[Path] = []
    for path in notebooks:
        if not args.force and in_book(path):
            try:
                cache.match_cache_notebook(nbformat.read(str(path), as_version=4))
                print(f"cached   {relative(path)}")
                continue
            except KeyError:
                pass
        todo.append(path)
    guess = expected_seconds()
    todo.sort(key=lambda p: -guess.get(relative(p), BUDGET_SECONDS))

    times: dict[str, float] = {}
    failures: dict[str, str] = {}
    wall = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(execute, str(p)) for p in todo]
        for future in as_completed(futures):
            path_str, seconds, nb, error = future.result()
            path = Path(path_str)
            times[relative(path)] = round(seconds, 1)
            if error is not None:
                failures[relative(path)] = error
                print(f"FAILED   {relative(path)} ({seconds:.1f} s)", flush=True)
                continue
            if in_book(path):  # the book build reads it from here instead of running it again
                cache.cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": seconds}),
                                            check_validity=False, overwrite=True)
            print(f"ran      {relative(path)} ({seconds:.1f} s)", flush=True)
    wall = time.perf_counter() - wall

    if times:
        device = os.environ.get("AIGC_DEVICE", "auto")
        previous = json.loads(TIMES_FILE.read_text(encoding="utf-8"))["seconds"] if TIMES_FILE.exists() else {}
        TIMES_FILE.parent.mkdir(parents=True, exist_ok=True)
        TIMES_FILE.write_text(json.dumps({"device": device, "seconds": dict(sorted({**previous, **times}.items()))},
                                         indent=2) + "\n", encoding="utf-8")
        width = max(len(k) for k in times)
        print(f"\nnotebook wall times (device: {device}, {args.workers} at a time, "
              f"budget {BUDGET_SECONDS:.0f} s on CPU)")
        for name, seconds in sorted(times.items()):
            flag = "  OVER BUDGET" if seconds > BUDGET_SECONDS else ""
            print(f"{name:<{width}}  {seconds:7.1f} s{flag}")
        print(f"{'sum':<{width}}  {sum(times.values()):7.1f} s   (wall {wall:.1f} s)")
    for name, error in failures.items():
        print(f"\n==== {name} failed ====\n{error}", file=sys.stderr)
    if failures:
        print(f"\n{len(failures)} of {len(todo)} notebook(s) failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

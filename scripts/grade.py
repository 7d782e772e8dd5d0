"""Grade a class's exercise notebooks: run each in a sandboxed kernel, re-check every exercise.

    python scripts/grade.py SUBMISSION... [--out DIR] [--timeout S] [--workers N]
    make grade SUBMISSIONS="submissions/" OUT=_build/grade

A SUBMISSION is a notebook or a folder of them: ``submissions/alice/ch3_1_attention.ipynb``
(one folder per student, as a GitHub Classroom clone gives, at any depth) or
``submissions/alice.ipynb``. The chapter is read from the file name (``--chapter`` names it
otherwise) and the exercises to grade come from the course's own solution notebook and exercise
registry, not from the submission. For each notebook, two at a time on two cores:

1. its code cells run in order in a fresh kernel (``scripts/grade_kernel.py``: no network,
   course files read-only, working folder a temporary copy), with a time limit for the whole
   notebook; a cell that raises does not stop the later ones, as a student's "Run all" with
   errors allowed would not;
2. in that kernel, the grader's own code (``scripts/grade_in_kernel.py``) imports a fresh copy
   of the checker and runs ``check(id, fn, seed=...)`` on each exercise's function, on a fresh
   seed the grader draws, with a time limit per exercise.

Nothing the notebook stored or printed counts: outputs saved in the file are never read for the
grade (a notebook edited to show "passed" gets no credit), the student's own check cells do not
matter (a deleted one is noted, and the exercise is still graded), and a crash, a time-out or a
dead kernel is reported for that notebook while the others are graded. The report -- grades.csv
(one row per notebook, one column per exercise), results.csv (one row per notebook and exercise,
with the checker's message), report.json and a self-contained report.html with totals -- goes to
``--out``. ``--exercise ID --require-pass`` grades one exercise and exits 1 unless it passed:
that is how the generated GitHub Classroom tests (``.github/classroom/``) call it.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "scripts"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import grade_report  # noqa: E402
from grade_kernel import Kernel, Reply, make_sandbox  # noqa: E402

SOLUTIONS = ROOT / "exercises" / "solutions"
KERNEL_CODE = ROOT / "scripts" / "grade_in_kernel.py"
KERNEL_START_SECONDS = 120  # starting a kernel and importing nothing yet: not part of the time limit
INTERRUPT_GRACE_SECONDS = 10
# What a kernel may see of the grader's environment (no tokens or credentials). Its HOME, caches
# and IPython profile are fresh folders of its own, so it reads no startup file or user site of the
# instructor's and leaves none behind for the next notebook.
PASSED_ENV = ("PATH", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "AIGC_DEVICE",
              "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "LD_LIBRARY_PATH")


@dataclass(frozen=True)
class ExerciseInfo:
    id: str
    function: str
    title: str
    points: float = 1.0


@dataclass
class Submission:
    student: str
    path: Path
    chapter: str | None = None  # the solution notebook's file name, e.g. "ch3_1_attention.ipynb"
    notebook: dict | None = None  # read once, before any student code runs
    problem: str | None = None  # why it cannot be graded
    seeds: dict[str, int] = field(default_factory=dict)


def course_exercises() -> dict[str, list[ExerciseInfo]]:
    """Each chapter notebook's exercises, in notebook order, from the solution notebooks and the registry."""
    from aigc_course.exercises.core import get
    from aigc_course.exercises.notebooks import exercise_cells

    chapters = {}
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        chapters[path.name] = [ExerciseInfo(i, get(i).function, get(i).title) for i in exercise_cells(path)]
    return chapters


# ---------------------------------------------------------------------------- finding submissions


def _student_name(notebook: Path, given: Path, chapters: dict) -> str:
    """``subs/alice/.../ch3_1_attention.ipynb`` -> alice; ``subs/alice.ipynb`` -> alice."""
    if given.is_dir():
        parts = notebook.relative_to(given).parts
        if len(parts) > 1:
            return parts[0]
        return notebook.stem if notebook.name not in chapters else given.resolve().name
    if notebook.name not in chapters:
        return notebook.stem
    generic = {"student", "exercises", "solutions", "submissions", "submitted"}
    for parent in notebook.resolve().parents:
        if parent.name and parent.name not in generic:
            return parent.name
    return notebook.stem


def _chapter_of(notebook: dict | None, path: Path, chapters: dict, chosen: str | None) -> str | None:
    if chosen:
        return chosen
    if path.name in chapters:
        return path.name
    ids = set()
    for cell in (notebook or {}).get("cells", []):
        if cell.get("cell_type") == "markdown":
            match = re.match(r"\s*## Exercise (\d+(?:\.\d+)+)", _source(cell))
            if match:
                ids.add(match.group(1))
    owners = [name for name, exercises in chapters.items() if ids & {e.id for e in exercises}]
    return owners[0] if len(owners) == 1 else None


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def find_submissions(paths: list[Path], chapters: dict, chosen: str | None) -> list[Submission]:
    """Every notebook to grade. In a folder, a notebook that is no exercise notebook (a book chapter
    of a cloned repository, say) is skipped, and with ``chosen`` only that chapter's are taken."""
    found: list[Submission] = []
    skipped = 0
    for given in paths:
        if given.is_dir():
            notebooks = sorted(p for p in given.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            if not notebooks:
                raise SystemExit(f"grade: no notebooks (*.ipynb) under {given}")
            if chosen and any(p.name == chosen for p in notebooks):
                notebooks = [p for p in notebooks if p.name == chosen]
        elif given.is_file():
            notebooks = [given]
        else:
            raise SystemExit(f"grade: submission {given} is neither a notebook nor a folder")
        for path in notebooks:
            sub = Submission(_student_name(path, given, chapters), path)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
                    raise ValueError("it has no list of cells")
                sub.notebook = data
            except (OSError, UnicodeDecodeError, ValueError) as err:
                sub.problem = f"unreadable: not a Jupyter notebook ({str(err)[:200]})"
            sub.chapter = _chapter_of(sub.notebook, path, chapters, chosen)
            if given.is_dir() and sub.chapter is None and sub.problem is None:
                skipped += 1
                continue
            if sub.chapter is None and sub.problem is None:
                sub.problem = ("unknown chapter: name the file like the course's notebook (e.g. "
                               f"{next(iter(chapters))}) or pass --chapter")
            found.append(sub)
    if skipped:
        print(f"skipped {skipped} notebook(s) that are no exercise notebook of the course (neither named like "
              "one nor with its '## Exercise' headings)")
    if not found:
        raise SystemExit("grade: none of the notebooks given is an exercise notebook of the course")
    names = [(s.student, s.chapter) for s in found]
    for sub in found:  # two notebooks that would share a row get their paths as names
        if names.count((sub.student, sub.chapter)) > 1:
            sub.student = str(sub.path)
    return found


# ---------------------------------------------------------------------------- grading one notebook


def _first_line(source: str) -> str:
    line = next((s.strip() for s in source.splitlines() if s.strip()), "")
    return line if len(line) <= 60 else line[:57] + "..."


def _check_cells(cells: list[dict], exercises: list[ExerciseInfo]) -> dict[int, str]:
    """Cell index -> exercise id, for the cells that call ``check("<id>", ...)``."""
    found = {}
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        for info in exercises:
            if re.search(r"""\bcheck\(\s*["']""" + re.escape(info.id) + r"""["']""", _source(cell)):
                found[index] = info.id
    return found


def _claimed_passes(cells: list[dict], exercises: list[ExerciseInfo]) -> set[str]:
    """Exercises whose saved outputs show the checker's "passed" line (never credited; only noted)."""
    text = []
    for cell in cells:
        for output in cell.get("outputs", []) or []:
            if isinstance(output, dict):
                value = output.get("text") or (output.get("data") or {}).get("text/plain") or ""
                text.append("".join(value) if isinstance(value, list) else str(value))
    joined = "\n".join(text)
    return {e.id for e in exercises if f"✓ Exercise {e.id} " in joined}


def _read_reply(reply: Reply, nonce: str) -> dict | None:
    """The grader's JSON from the execute reply, if it is there and carries this run's nonce."""
    try:
        data = json.loads(ast.literal_eval(reply.expressions.get("out", "")))
    except (ValueError, SyntaxError, TypeError):
        return None
    return data if isinstance(data, dict) and data.get("nonce") == nonce else None


class Grader:
    """Grades submissions with one configuration; :meth:`grade` is safe to call from several threads."""

    def __init__(self, chapters: dict[str, list[ExerciseInfo]], sandbox, scratch: Path, timeout: float,
                 check_timeout: float, threads: int, only: set[str] | None):
        import aigc_course

        self.chapters, self.sandbox, self.scratch = chapters, sandbox, scratch
        self.timeout, self.check_timeout, self.only = timeout, check_timeout, only
        self.package_dir = str(Path(aigc_course.__file__).resolve().parent)
        self.kernel_code = KERNEL_CODE.read_text(encoding="utf-8")
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), MPLBACKEND="Agg",
                   PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", PYTHONPATH=str(Path(self.package_dir).parent))
        self.env = env
        self.font_caches = _matplotlib_font_caches()
        self._counter = 0
        self._lock = threading.Lock()

    def _private_env(self, private: Path) -> dict[str, str]:
        env = dict(self.env)
        for name, folder in (("HOME", "home"), ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "matplotlib"),
                             ("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config")):
            (private / folder).mkdir(parents=True, exist_ok=True)
            env[name] = str(private / folder)
        for cache in self.font_caches:  # else matplotlib rebuilds its font list in every kernel
            shutil.copy(cache, private / "matplotlib" / cache.name)
        return env

    def exercises_of(self, sub: Submission) -> list[ExerciseInfo]:
        exercises = self.chapters.get(sub.chapter or "", [])
        return [e for e in exercises if self.only is None or e.id in self.only]

    def grade(self, sub: Submission) -> dict:
        start = time.perf_counter()
        exercises = self.exercises_of(sub)
        record = {"student": sub.student, "path": str(sub.path), "notebook": sub.chapter, "status": "ran",
                  "detail": "", "cell_errors": [], "notes": [], "timings": {},
                  "exercises": {e.id: {"status": "not graded", "points": 0.0, "max_points": e.points,
                                       "function": e.function, "title": e.title, "seed": sub.seeds.get(e.id),
                                       "message": ""} for e in exercises}}
        if sub.problem:
            record["status"], record["detail"] = sub.problem.split(":")[0], sub.problem
            self._finish(record, exercises, start, "the notebook could not be graded: " + sub.problem)
            return record
        with self._lock:
            self._counter += 1
            private = self.scratch / f"{self._counter:03d}"
        workdir = private / "work"
        workdir.mkdir(parents=True)
        cells = sub.notebook["cells"]
        (workdir / sub.path.name).write_text(json.dumps(_stripped(sub.notebook)), encoding="utf-8")
        kernel = Kernel(self.sandbox, workdir, private, self._private_env(private))
        try:
            try:
                clock = time.perf_counter()
                kernel.start(KERNEL_START_SECONDS)
                record["timings"]["kernel start"] = round(time.perf_counter() - clock, 1)
            except Exception as err:  # noqa: BLE001
                record["status"], record["detail"] = "not run", f"the kernel did not start ({err})"
                self._finish(record, exercises, start, record["detail"])
                return record
            clock = time.perf_counter()
            usable = self._run_cells(kernel, cells, exercises, record)
            record["timings"]["cells"] = round(time.perf_counter() - clock, 1)
            if usable:
                clock = time.perf_counter()
                self._check_all(kernel, sub, exercises, record)
                record["timings"]["checks"] = round(time.perf_counter() - clock, 1)
            else:
                self._finish(record, exercises, start, f"not graded: {record['detail']}")
        finally:
            cpu = kernel.cpu_seconds()
            if cpu is not None:
                record["timings"]["kernel cpu"] = round(cpu, 1)
            kernel.close()
            shutil.rmtree(private, ignore_errors=True)
        self._notes(cells, exercises, record)
        self._finish(record, exercises, start, None)
        return record

    # -- running the student's cells

    def _run_cells(self, kernel: Kernel, cells: list[dict], exercises, record) -> bool:
        """Run every code cell with the notebook's time limit; ``False`` when the kernel is unusable."""
        check_cells = _check_cells(cells, exercises)
        deadline = time.monotonic() + self.timeout
        for index, cell in enumerate(cells):
            if cell.get("cell_type") != "code" or not _source(cell).strip():
                continue
            where = f"cell {index + 1} (`{_first_line(_source(cell))}`)"
            reply = kernel.execute(_source(cell), max(deadline - time.monotonic(), 0.01))
            if reply.status == "dead":
                record["status"] = "kernel died"
                record["detail"] = (f"the kernel died in {where}: the notebook exited the process or crashed "
                                    "it (os._exit, a segfault, out of memory); no exercise could be graded")
                return False
            if reply.status == "timeout":
                record["status"] = "timed out"
                record["detail"] = (f"{where} was still running when the notebook's time limit "
                                    f"({self.timeout:g} s) ran out; later cells were not run")
                if not kernel.interrupt(INTERRUPT_GRACE_SECONDS):
                    record["detail"] += " and the kernel did not stop when interrupted"
                    return False
                return True
            if reply.status == "error":
                expected = index in check_cells and reply.ename == "AssertionError"
                if not expected:  # a failing check's own assert is how a wrong answer shows; not a crash
                    record["cell_errors"].append({"cell": index + 1, "source": _first_line(_source(cell)),
                                                  "error": f"{reply.ename}: {reply.evalue}"[:300]})
        if record["cell_errors"]:
            first = record["cell_errors"][0]
            record["status"] = "errors"
            record["detail"] = (f"{len(record['cell_errors'])} cell(s) raised; first: cell {first['cell']} "
                                f"(`{first['source']}`): {first['error']}")
        return True

    # -- the grader's checks, in the same kernel

    def _send(self, kernel: Kernel, code: str, nonce: str, timeout: float) -> tuple[Reply, dict | None]:
        reply = kernel.execute(code, timeout, store_history=False,
                               user_expressions={"out": f"__aigc_grader_{nonce}['out']"})
        return reply, (_read_reply(reply, nonce) if reply.status == "ok" else None)

    def _check_all(self, kernel: Kernel, sub: Submission, exercises, record) -> None:
        nonce = secrets.token_hex(16)
        space = f"__aigc_grader_{nonce}"
        setup = (f"{space} = {{}}\nexec(compile({self.kernel_code!r}, '<course grader>', 'exec'), {space})\n"
                 f"{space}['out'] = {space}['setup']({nonce!r}, {self.package_dir!r})")
        reply, data = self._send(kernel, setup, nonce, self.check_timeout)
        if data is None or not data.get("ok"):
            why = (data or {}).get("error") or _reply_problem(reply)
            self._give_up(record, f"the grader could not set up its checker in this kernel ({why})")
            return
        if data["changed"]:
            record["notes"].append("the notebook replaced parts of the course's checker or references ("
                                   + ", ".join(data["changed"][:6]) + "); they were ignored: a fresh copy graded it")
        for info in exercises:
            entry = record["exercises"][info.id]
            code = (f"{space}['out'] = {space}['grade']({nonce!r}, {info.id!r}, {info.function!r}, "
                    f"{sub.seeds[info.id]!r}, globals())")
            reply, data = self._send(kernel, code, nonce, self.check_timeout)
            if reply.status == "timeout":
                entry.update(status="timed out", message=f"checking {info.function} took longer than "
                             f"{self.check_timeout:g} s (an endless loop?)")
                if not kernel.interrupt(INTERRUPT_GRACE_SECONDS):
                    self._give_up(record, "the kernel stopped answering while an exercise was checked")
                    return
                continue
            if data is None:
                self._give_up(record, f"the grader's reply could not be read ({_reply_problem(reply)})")
                return
            if data["canary_passed"]:
                record["status"] = "tampered"
                record["detail"] = (f"after the notebook ran, the checker in its kernel accepted a deliberately "
                                    f"wrong answer to exercise {info.id}: the notebook changed how answers are "
                                    "compared, so nothing from this kernel is credited")
                for other in record["exercises"].values():
                    other.update(status="not graded", points=0.0, message=record["detail"])
                return
            if data["error"] and not data["found"]:
                entry.update(status="missing", message=data["error"])
                continue
            if data["error"]:
                entry.update(status="not graded", message=data["error"])
                continue
            result = data["result"]
            entry.update({k: result.get(k) for k in ("message", "problem", "likely_cause", "case", "seed",
                                                      "cases_passed", "cases_total")})
            entry["status"] = {"error": "checker error"}.get(result["status"], result["status"])
            if data["changed"]:
                entry.update(status="tampered", message=(
                    f"while {info.function} was being checked it replaced parts of the checker ("
                    + ", ".join(data["changed"][:6]) + "); this exercise is not credited"))
            elif result["status"] == "passed":
                entry["points"] = info.points

    def _give_up(self, record, why: str) -> None:
        for entry in record["exercises"].values():
            if entry["status"] == "not graded" and not entry["message"]:
                entry["message"] = why
        record["notes"].append(why)

    # -- notes and totals

    def _notes(self, cells, exercises, record) -> None:
        checked = set(_check_cells(cells, exercises).values())
        missing = [e.id for e in exercises if e.id not in checked]
        if missing:
            record["notes"].append(f"the check cell of exercise {', '.join(missing)} is missing (the grader's own "
                                   "check graded it anyway)")
        claimed = sorted(i for i in _claimed_passes(cells, exercises) if record["exercises"][i]["status"] != "passed")
        if claimed:
            record["notes"].append(f"its saved outputs show exercise {', '.join(claimed)} passing, but the "
                                   "grader's check did not pass (saved outputs are never credited)")

    def _finish(self, record, exercises, start, message: str | None) -> None:
        if message:
            for entry in record["exercises"].values():
                if not entry["message"]:
                    entry["message"] = message
        record["score"] = sum(e["points"] for e in record["exercises"].values())
        record["max_score"] = sum(e.points for e in exercises)
        record["seconds"] = round(time.perf_counter() - start, 1)


def _matplotlib_font_caches() -> list[Path]:
    try:
        import matplotlib
    except ImportError:
        return []
    return sorted(Path(matplotlib.get_cachedir()).glob("fontlist-*.json"))


def _reply_problem(reply: Reply) -> str:
    if reply.status == "ok":
        return "no reply carrying this run's nonce: the notebook may have changed the kernel"
    if reply.status == "error":
        return f"{reply.ename}: {reply.evalue}"[:300]
    return {"timeout": "no reply in time", "dead": "the kernel died"}.get(reply.status, reply.status)


def _stripped(notebook: dict) -> dict:
    """The working copy the kernel may see: the cells' code, no saved outputs."""
    copy = json.loads(json.dumps(notebook))
    for cell in copy.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return copy


# ---------------------------------------------------------------------------- the whole class


def course_fingerprint(package_dir: Path) -> dict[str, str]:
    """sha256 of every file of the course package and of the grader, to notice a notebook changing them."""
    files = [p for p in sorted(package_dir.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    files += sorted((ROOT / "scripts").glob("grade*.py"))
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def protected_folders(candidates: list[Path], writable: Path) -> list[Path]:
    """The folders a kernel gets read-only: those this user could write, except any holding ``writable``."""
    keep: list[Path] = []
    writable = writable.resolve()
    for path in sorted({p.resolve() for p in candidates if p.is_dir()}, key=lambda p: len(p.parts)):
        if path == writable or path in writable.parents or not os.access(path, os.W_OK):
            continue
        if not any(k == path or k in path.parents for k in keep):
            keep.append(path)
    return keep


def parse_points(items: list[str], chapters: dict) -> dict[str, float]:
    known = {e.id for exercises in chapters.values() for e in exercises}
    points = {}
    for item in items:
        exercise_id, _, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if exercise_id not in known or number < 0:
            raise SystemExit(f"grade: --points must be ID=POINTS with a known exercise id and a number >= 0; got {item!r}")
        points[exercise_id] = number
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/grade.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", nargs="+", type=Path, help="notebooks, or folders of them")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "grade", help="report folder")
    parser.add_argument("--chapter", help="the chapter notebook every submission is, e.g. ch3_1_attention.ipynb")
    parser.add_argument("--exercise", action="append", default=None, metavar="ID",
                        help="grade only this exercise (repeatable)")
    parser.add_argument("--points", action="append", default=[], metavar="ID=POINTS",
                        help="points for an exercise (default 1 each)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds for all of one notebook's cells (default 120)")
    parser.add_argument("--check-timeout", type=float, default=60.0,
                        help="seconds for checking one exercise (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="notebooks graded at once (default 2)")
    parser.add_argument("--seed", type=int, default=None,
                        help="draw the check seeds from this seed (default: fresh random seeds)")
    parser.add_argument("--sandbox", choices=("auto", "unshare", "guard"), default="auto",
                        help="how kernels are isolated (default: unshare when the system allows it)")
    parser.add_argument("--require-pass", action="store_true",
                        help="exit 1 unless every graded exercise of every submission passed")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1; got {args.workers}")
    if args.timeout <= 0 or args.check_timeout <= 0:
        parser.error("--timeout and --check-timeout must be positive numbers of seconds")

    wall = time.perf_counter()
    chapters = course_exercises()
    chosen = None
    if args.chapter:
        chosen = args.chapter if args.chapter.endswith(".ipynb") else args.chapter + ".ipynb"
        if chosen not in chapters:
            parser.error(f"--chapter must be one of {', '.join(chapters)}; got {args.chapter!r}")
    known = {e.id for exercises in chapters.values() for e in exercises}
    only = set(args.exercise) if args.exercise else None
    if only and only - known:
        parser.error(f"--exercise must be registered exercise ids; unknown: {', '.join(sorted(only - known))}")
    points = parse_points(args.points, chapters)
    chapters = {name: [ExerciseInfo(e.id, e.function, e.title, points.get(e.id, 1.0)) for e in exercises]
                for name, exercises in chapters.items()}
    submissions = find_submissions(args.submissions, chapters, chosen)
    seeds = random.Random(args.seed) if args.seed is not None else random.SystemRandom()
    for sub in submissions:  # drawn up front, in a fixed order, so --seed repeats a run exactly
        sub.seeds = {e.id: seeds.randrange(1, 2**31) for e in chapters.get(sub.chapter or "", [])}

    import aigc_course

    package_dir = Path(aigc_course.__file__).resolve().parent
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="aigc-grade-"))
    submitted = [p if p.is_dir() else p.parent for p in args.submissions]
    read_only = protected_folders([ROOT, package_dir.parent, Path(sys.prefix), *map(Path, sys.path[1:]), out,
                                   Path.home(), *submitted], writable=scratch)
    try:
        sandbox = make_sandbox(args.sandbox, read_only, scratch)
        threads = max(1, (os.cpu_count() or 1) // args.workers)
        grader = Grader(chapters, sandbox, scratch, args.timeout, args.check_timeout, threads, only)
        before = course_fingerprint(package_dir)
        print(f"grading {len(submissions)} notebook(s), {args.workers} at a time, {threads} thread(s) each; "
              f"sandbox: {sandbox.describe()}", flush=True)
        records, tampered_files = [], None
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = {pool.submit(grader.grade, sub): sub for sub in submissions}
            for future in as_completed(futures):
                record = future.result()
                records.append(record)
                print(f"  {record['student']:<24} {record['notebook'] or '?':<26} "
                      f"{record['score']:g}/{record['max_score']:g}  {record['status']}  ({record['seconds']} s)",
                      flush=True)
                if tampered_files is None and course_fingerprint(package_dir) != before:
                    tampered_files = record["student"]
                    for other in futures:
                        other.cancel()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if tampered_files is not None:
        print(f"grade: the course's own files changed while {tampered_files}'s notebook (or one graded at the "
              "same time) ran; no report was written, because no result of this run can be trusted. Restore "
              f"the checkout (git status) and grade again with the unshare sandbox.", file=sys.stderr)
        return 3
    wall = time.perf_counter() - wall
    meta = {"sandbox": sandbox.describe(), "timeout": args.timeout, "check_timeout": args.check_timeout,
            "workers": args.workers, "seconds": round(wall, 1), "seed": args.seed,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    records.sort(key=lambda r: (r["notebook"] or "", r["student"]))
    written = grade_report.write_reports(out, records, chapters, meta)
    if len(records) <= 3:  # a single student's run (GitHub Classroom): show the checker's messages
        for record in records:
            print(grade_report.text_summary(record))
    print(f"graded {len(records)} notebook(s) in {wall:.1f} s ({args.workers} at a time); wrote "
          + ", ".join(str(p.relative_to(out.parent)) if out.parent in p.parents else str(p) for p in written))
    if args.require_pass:
        return 0 if all(e["status"] == "passed" for r in records for e in r["exercises"].values()) and all(
            r["exercises"] for r in records) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

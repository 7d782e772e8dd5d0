"""Generate the student notebooks and the book's exercise pages from the solution notebooks.

The solution notebooks in ``exercises/solutions/`` are the only hand-written copy (their
conventions are in ``aigc_course/exercises/notebooks.py``); each exercise's title comes from
its registration in ``aigc_course/exercises/ch*.py``, and which chapter's page a notebook feeds
comes from ``_data/chapters.yml``. The student edition replaces each solution with
``raise NotImplementedError(...)`` and drops the hidden tests.

``outputs(root, chapters)`` is every generated file and its text; ``scripts/build_chapters.py``
writes them (``make exercises``) and checks them. ``python scripts/build_exercises.py
book-config OUT`` writes the student edition's book configuration (``make book-student``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aigc_course.exercises.core import get  # noqa: E402  (the registry: titles and function names)
from aigc_course.exercises.notebooks import (  # noqa: E402
    BEGIN,
    BEGIN_HIDDEN,
    END,
    END_HIDDEN,
    exercise_cells,
    heading_id,
    strip_markers,
)

GENERATOR = "make exercises"


def student_source(source: str, exercise_id: str | None) -> str:
    """A code cell's student edition: solutions become ``raise NotImplementedError``, hidden tests go."""
    out, inside, hidden = [], False, False
    for number, line in enumerate(source.splitlines(), 1):
        key = line.strip()
        if key == BEGIN:
            if exercise_id is None:
                raise ValueError(f"{BEGIN} at line {number} is not under an '## Exercise <id>' heading")
            indent = line[: len(line) - len(line.lstrip())]
            title = get(exercise_id).title
            out.append(f'{indent}raise NotImplementedError("Exercise {exercise_id}: {title} -- your code here")')
            inside = True
        elif key == END:
            if not inside:
                raise ValueError(f"{END} at line {number} has no matching {BEGIN}")
            inside = False
        elif key == BEGIN_HIDDEN:
            hidden = True
        elif key == END_HIDDEN:
            hidden = False
        elif not inside and not hidden:
            out.append(line)
    if inside or hidden:
        raise ValueError(f"unclosed marker in exercise {exercise_id}: every BEGIN needs its END")
    return "\n".join(out)


def heading(exercise_id: str) -> str:
    return f"## Exercise {exercise_id}: {get(exercise_id).title}"


def exercises_of(path: Path) -> dict[str, dict[str, str]]:
    """Every exercise of a solution notebook: statement, solution, skeleton and title, validated."""
    found = exercise_cells(path)
    for exercise_id, parts in found.items():
        exercise = get(exercise_id)  # the heading must name a registered exercise
        parts["title"] = exercise.title
        parts["solution"] = strip_markers(parts["source"])
        parts["skeleton"] = student_source(parts["source"], exercise_id)
        if f"def {exercise.function}(" not in parts["solution"]:
            raise ValueError(f"{path.name}: exercise {exercise_id}'s solution must define {exercise.function}()")
    return found


def student_notebook(path: Path) -> str:
    """The student edition of the solution notebook at ``path``, as notebook JSON text."""
    nb = nbformat.read(str(path), as_version=4)
    current = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            exercise_id = heading_id(cell.source, path.name)
            if exercise_id:
                current = exercise_id
                cell.source = heading(exercise_id) + "".join(cell.source.partition("\n")[1:])
        elif cell.cell_type == "code":
            cell.source = student_source(cell.source, current)
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(nb) + "\n"


def page_title(path: Path) -> str:
    """The solution notebook's own title (its first line, a '# ' heading), used for the book page."""
    nb = nbformat.read(str(path), as_version=4)
    first = nb.cells[0].source.partition("\n")[0] if nb.cells else ""
    if nb.cells[0].cell_type != "markdown" or not first.startswith("# "):
        raise ValueError(f"{path.name}: the first cell must be a markdown cell starting with '# <title>'")
    return first[2:].strip()


def mid_sentence(title: str) -> str:
    """A title as it reads inside a sentence: "The mel filterbank" -> "the mel filterbank", but
    names and acronyms keep their capitals ("RMSNorm", "TF-IDF vectors", "Griffin–Lim: ...")."""
    first_word = title.split(maxsplit=1)[0]
    if any(ch.isupper() for ch in first_word[1:]):
        return title
    return title[:1].lower() + title[1:]


def _fence(code: str) -> str:
    return f"```python\n{code.strip()}\n```"


def book_page(path: Path) -> str:
    """The MyST page of one chapter's exercises (sphinx-exercise directives)."""
    student = f"exercises/student/{path.name}"
    found = exercises_of(path)
    titles = [mid_sentence(parts["title"]) for parts in found.values()]
    topics = " and ".join([", ".join(titles[:-1]), titles[-1]] if len(titles) > 1 else titles)
    lines = [
        f"# {page_title(path)}",
        "",
        f"<!-- Generated by `{GENERATOR}` from exercises/solutions/{path.name} and the exercise "
        "registry; edit those, not this page. -->",
        "",
        f"**What you will learn:** to write {topics} yourself, checked against the package.",
        "",
        "**Run this chapter:** work these exercises in JupyterLab: run `make lab` in a clone of the",
        f"repository and open `{student}`. Each exercise has a check cell that runs your function",
        "against the package's own implementation on fresh random inputs and on edge cases, and says",
        "which case failed and why. `hint(id, level)` gives hints in increasing detail and",
        "`solution(id)` shows the solution. Solutions are also below, folded; try the exercise first.",
        "",
    ]
    for exercise_id, parts in found.items():
        exercise = get(exercise_id)
        label = "ex-" + exercise_id.replace(".", "-")
        lines += [
            f"::::{{exercise}} {exercise_id} {parts['title']}",
            f":label: {label}",
            "",
            parts["statement"],
            "",
            _fence(parts["skeleton"]),
            "",
            f'Check it with `check("{exercise_id}", {exercise.function})`.',
            "::::",
            "",
            f"::::{{solution}} {label}",
            ":class: dropdown",
            "",
            exercise.explanation,
            "",
            _fence(parts["solution"]),
            "::::",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def outputs(root: Path, pages: dict[str, str]) -> dict[Path, str]:
    """Every generated exercise file and its text.

    ``pages`` maps each solution notebook's file name to the document of its book page, e.g.
    ``{"ch1_ai_1_0.ipynb": "chapters/01_background/exercises"}`` (from the chapter list). Every
    solution notebook must feed one page, and no exercise may appear in two notebooks.
    """
    root = Path(root)
    solutions = root / "exercises" / "solutions"
    found = {p.name for p in solutions.glob("*.ipynb")}
    if found - set(pages):
        raise ValueError(f"solution notebooks that no chapter of _data/chapters.yml lists as its `exercises`: "
                         f"{sorted(found - set(pages))}")
    files: dict[Path, str] = {}
    owner: dict[str, str] = {}
    for notebook, page in pages.items():
        path = solutions / notebook
        for exercise_id in exercise_cells(path):
            if exercise_id in owner:
                raise ValueError(f"exercise {exercise_id} appears in {owner[exercise_id]} and in {notebook}")
            owner[exercise_id] = notebook
        files[root / "exercises" / "student" / notebook] = student_notebook(path)
        files[root / f"{page}.md"] = book_page(path)
    return files


def student_book_config(out: Path, root: Path = ROOT) -> None:
    """Write ``_config.yml`` with sphinx-exercise's ``hide_solutions`` on (the student edition).

    The execution cache is the main build's, so the student build re-runs no notebook that
    the main build already ran.
    """
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config["title"] = f"{config['title']} (student edition)"
    config.setdefault("execute", {})["cache"] = str(root / "_build" / ".jupyter_cache")
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    extensions = config["sphinx"].get("local_extensions") or {}
    for name, path in extensions.items():  # jupyter-book resolves them from the config's folder
        extensions[name] = str(root / path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    config = sub.add_parser("book-config", help="write the student edition's book config (hide_solutions)")
    config.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    student_book_config(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

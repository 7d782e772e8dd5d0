"""Reading the solution notebooks: exercise headings, solution cells and their markers.

The solution notebooks in ``exercises/solutions/`` are the only hand-written copy of the
exercises' statements and solutions. In them:

* a markdown cell starting ``## Exercise 3.1.2`` opens exercise ``3.1.2`` (its title is the
  registry's, added to the generated student notebook and book page);
* the next code cell holding ``### BEGIN SOLUTION`` / ``### END SOLUTION`` is its solution;
* lines between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` (nbgrader's
  convention) are dropped from the student edition: they assert that the check passed.

``solution(id)`` reads the code from here. The generator of the student notebooks and book
pages (``scripts/build_exercises.py``) is repository tooling and lives outside the package.
Notebooks are read as JSON, so the package needs no notebook library.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HEADING = re.compile(r"^## Exercise (\d+(?:\.\d+)+)(.*)$")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def cells(path: Path) -> list[tuple[str, str]]:
    """``(cell_type, source)`` of every cell of the notebook at ``path``."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in nb["cells"]]


def heading_id(markdown: str, where: str = "") -> str | None:
    """The exercise id a markdown cell opens, or ``None``; a title after the id is an error."""
    match = HEADING.match(markdown.partition("\n")[0].strip())
    if not match:
        return None
    if match.group(2).strip():
        raise ValueError(
            f"{where}: write the heading as '## Exercise {match.group(1)}' without a title: the title "
            f"comes from the exercise's registration (title=...) and is added to the generated files; "
            f"got {match.group(0)!r}")
    return match.group(1)


def strip_markers(source: str) -> str:
    """Solution code as the book shows it: marker and hidden-test lines removed."""
    out, hidden = [], False
    for line in source.splitlines():
        key = line.strip()
        if key == BEGIN_HIDDEN:
            hidden = True
        elif key == END_HIDDEN:
            hidden = False
        elif key not in (BEGIN, END) and not hidden:
            out.append(line)
    return "\n".join(out)


def exercise_cells(path: Path) -> dict[str, dict[str, str]]:
    """``{id: {"statement", "source"}}`` for every exercise of a solution notebook, in order.

    ``source`` is the solution cell as written, markers included.
    """
    path = Path(path)
    found: dict[str, dict[str, str]] = {}
    current = None
    for kind, source in cells(path):
        if kind == "markdown":
            exercise_id = heading_id(source, path.name)
            if exercise_id:
                if exercise_id in found:
                    raise ValueError(f"{path.name}: exercise {exercise_id} appears twice")
                current = exercise_id
                found[current] = {"statement": source.partition("\n")[2].strip()}
        elif kind == "code" and BEGIN in source:
            if current is None or "source" in found[current]:
                raise ValueError(f"{path.name}: a solution cell has no '## Exercise <id>' heading above it")
            found[current]["source"] = source
    for exercise_id, parts in found.items():
        if "source" not in parts:
            raise ValueError(f"{path.name}: exercise {exercise_id} has no solution cell")
    return found


def find_solution(folder: Path, exercise_id: str) -> str | None:
    """The solution code of ``exercise_id`` from the notebooks in ``folder``; ``None`` if absent."""
    for path in sorted(Path(folder).glob("*.ipynb")):
        try:
            found = exercise_cells(path)
        except (ValueError, KeyError, json.JSONDecodeError):
            continue
        if exercise_id in found:
            return strip_markers(found[exercise_id]["source"])
    return None

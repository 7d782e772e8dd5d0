"""Generate the student notebooks and the book's exercise pages from the solution notebooks.

The solution notebooks in ``exercises/solutions/`` are the only hand-written copy. In them:

* a markdown cell starting ``## Exercise 3.1.2: Title`` opens exercise ``3.1.2``;
* the next code cell holding ``### BEGIN SOLUTION`` / ``### END SOLUTION`` is its solution;
  the student edition replaces the marked lines with ``raise NotImplementedError(...)``;
* lines between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` (nbgrader's
  convention) are dropped from the student edition: they assert that the check passed.

``build(root)`` writes ``exercises/student/*.ipynb`` and each chapter's ``exercises.md``;
``stale(root)`` lists the files that differ from what ``build`` would write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from aigc_course.exercises.core import get

HEADING = re.compile(r"^## Exercise (\d+(?:\.\d+)+): (.+)$")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


@dataclass(frozen=True)
class Page:
    """Where a solution notebook's exercises appear in the book."""

    notebook: str
    page: str  # path of the generated MyST page, relative to the repository root
    title: str


PAGES = [
    Page("ch1_ai_1_0.ipynb", "chapters/01_background/exercises.md", "1 Exercises: AI 1.0 and AI 2.0 (练习)"),
    Page("ch2_concepts.ipynb", "chapters/02_concepts/exercises.md", "2 Exercises: core concepts (练习)"),
    Page("ch3_1_attention.ipynb", "chapters/03_1_transformer/exercises.md",
         "3.1 Exercises: attention and decoding (练习)"),
    Page("ch3_1_4_alignment.ipynb", "chapters/03_1_4_training_strategies/exercises.md",
         "3.1.4 Exercises: training strategies (练习)"),
    Page("ch3_2_gan.ipynb", "chapters/03_2_gan/exercises.md", "3.2 Exercises: GAN losses (练习)"),
    Page("ch3_3_diffusion.ipynb", "chapters/03_3_diffusion/exercises.md",
         "3.3 Exercises: diffusion (练习)"),
    Page("ch3_4_vae.ipynb", "chapters/03_4_vae/exercises.md",
         "3.4 Exercises: the variational autoencoder (练习)"),
    Page("ch4_1_attention_math.ipynb", "chapters/04_1_attention_math/exercises.md",
         "4.1 Exercises: the mathematics of attention (练习)"),
    Page("ch4_2_gan_math.ipynb", "chapters/04_2_gan_math/exercises.md",
         "4.2 Exercises: the GAN objective (练习)"),
    Page("ch4_4_diffusion_math.ipynb", "chapters/04_4_diffusion_math/exercises.md",
         "4.4 Exercises: the diffusion posterior and SNR (练习)"),
]


def _strip_markers(source: str) -> str:
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


def student_source(source: str, exercise_id: str | None) -> str:
    """A code cell's student edition: solutions become ``raise NotImplementedError``, hidden tests go."""
    out, inside, hidden = [], False, False
    for number, line in enumerate(source.splitlines(), 1):
        key = line.strip()
        if key == BEGIN:
            if exercise_id is None:
                raise ValueError(f"{BEGIN} at line {number} is not under an '## Exercise <id>: <title>' heading")
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


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def exercise_cells(path: Path) -> dict[str, dict[str, str]]:
    """``{id: {"title", "statement", "solution", "skeleton"}}`` for every exercise in a notebook."""
    found: dict[str, dict[str, str]] = {}
    current = None
    for cell in read(path).cells:
        if cell.cell_type == "markdown":
            first, _, rest = cell.source.partition("\n")
            match = HEADING.match(first.strip())
            if match:
                current = match.group(1)
                if current in found:
                    raise ValueError(f"{path.name}: exercise {current} appears twice")
                found[current] = {"title": match.group(2).strip(), "statement": rest.strip()}
        elif cell.cell_type == "code" and BEGIN in cell.source:
            if current is None or "solution" in found[current]:
                raise ValueError(f"{path.name}: a solution cell has no '## Exercise <id>: <title>' heading above it")
            found[current]["solution"] = _strip_markers(cell.source)
            found[current]["skeleton"] = student_source(cell.source, current)
    for exercise_id, parts in found.items():
        exercise = get(exercise_id)  # the heading must name a registered exercise
        if "solution" not in parts:
            raise ValueError(f"{path.name}: exercise {exercise_id} has no solution cell")
        if f"def {exercise.function}(" not in parts["solution"]:
            raise ValueError(f"{path.name}: exercise {exercise_id}'s solution must define {exercise.function}()")
        if exercise.notebook != path.name:
            raise ValueError(f"exercise {exercise_id} is registered in {exercise.notebook}, found in {path.name}")
    return found


def student_notebook(path: Path) -> str:
    """The student edition of the solution notebook at ``path``, as notebook JSON text."""
    nb = read(path)
    current = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = HEADING.match(cell.source.partition("\n")[0].strip())
            current = match.group(1) if match else current
        elif cell.cell_type == "code":
            cell.source = student_source(cell.source, current)
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(nb) + "\n"


def _fence(code: str) -> str:
    return f"```python\n{code.strip()}\n```"


def book_page(root: Path, page: Page) -> str:
    """The MyST page of one chapter's exercises (sphinx-exercise directives)."""
    path = root / "exercises" / "solutions" / page.notebook
    student = f"exercises/student/{page.notebook}"
    found = exercise_cells(path)
    titles = [f"{parts['title'][0].lower()}{parts['title'][1:]}" for parts in found.values()]
    topics = " and ".join([", ".join(titles[:-1]), titles[-1]] if len(titles) > 1 else titles)
    lines = [
        f"# {page.title}",
        "",
        "<!-- Generated by `python -m aigc_course.exercises build` from "
        f"exercises/solutions/{page.notebook}; edit that notebook, not this page. -->",
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


def outputs(root: Path) -> dict[Path, str]:
    """Every generated file and the text it should hold."""
    root = Path(root)
    solutions = root / "exercises" / "solutions"
    found = {p.name for p in solutions.glob("*.ipynb")}
    known = {p.notebook for p in PAGES}
    if found - known:
        raise ValueError(f"solution notebooks without a book page in PAGES: {sorted(found - known)}")
    files: dict[Path, str] = {}
    for page in PAGES:
        path = solutions / page.notebook
        if not path.exists():
            continue
        files[root / "exercises" / "student" / page.notebook] = student_notebook(path)
        files[root / page.page] = book_page(root, page)
    return files


def stale(root: Path) -> list[Path]:
    """Generated files that are missing or differ from what :func:`build` would write."""
    return [
        path for path, text in outputs(root).items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def build(root: Path) -> list[Path]:
    """Write every generated file that changed; returns the paths written."""
    written = []
    for path, text in outputs(root).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written

"""Write every file generated from the chapter list ``_data/chapters.yml``, or check them.

    python scripts/build_chapters.py           # write what changed (make chapters, make exercises)
    python scripts/build_chapters.py --check   # exit 1 and list what is out of date (make lint)

From the chapter list (read by ``_ext/course_map.py``) it writes ``_toc.yml``; the course map
table in ``chapters/intro.md`` (between its two marker comments), with the release the book is
built with; each chapter's ``exercises.md`` page and ``exercises/student/*.ipynb``
(``scripts/build_exercises.py``); the install cell at the top of every notebook
(``scripts/install_cell.py``: on Colab it installs ``aigc-course==<version>``); and it drops
from ``_data/cpu_times.json`` the times of notebooks no longer listed. CPU times are
measurements, so a notebook without one is reported, not invented: time it with
``scripts/execute_notebooks.py chapters/<folder>`` and ``scripts/update_course_map_times.py --merge``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT / "_ext", ROOT / "scripts"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import build_exercises  # noqa: E402
import install_cell  # noqa: E402
from course_map import CHAPTERS, DATA, ChapterList, chapter_notebooks, load_chapters  # noqa: E402

TOC_HEADER = (f"# Generated from {CHAPTERS} by `make chapters` (scripts/build_chapters.py); "
              "edit that file, not this one.\n")
MAP_BEGIN = (f"<!-- The course map is generated from {CHAPTERS} by `make chapters`; "
             "edit that file, not this table. -->")
MAP_END = "<!-- End of the generated course map. -->"
INTRO = Path("chapters") / "intro.md"


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid double-quoted YAML string


def toc(chapters: ChapterList) -> str:
    """``_toc.yml`` for Jupyter Book 1.x: one part per part, each chapter's pages as its sections."""
    lines = [TOC_HEADER.rstrip(), "format: jb-book", f"root: {chapters.root}", "parts:"]
    for part in chapters.parts:
        lines.append(f"  - caption: {_quoted(part.caption)}")
        if part.chapters:
            lines.append("    numbered: false")
        lines.append("    chapters:")
        for chapter in part.chapters:
            lines.append(f"      - file: {chapter.index}")
            if chapter.documents:
                lines.append("        sections:")
                lines += [f"          - file: {doc}" for doc in chapter.documents]
        lines += [f"      - file: {name}" for name in part.files]
    return "\n".join(lines) + "\n"


def course_map(chapters: ChapterList) -> str:
    """The course map table of the home page: section, chapter, what runs, measured CPU time."""
    rows = ["| Section | Chapter | What runs | CPU time |", "|---|---|---|---|"]
    for chapter in chapters.chapters:
        if "|" in chapter.runs:
            raise ValueError(f"{CHAPTERS} ({chapter.folder}): `runs` may not contain '|' (it is a table cell)")
        rows.append(f"| {chapter.section} | {{doc}}`{chapter.folder}/index` | {chapter.runs} | "
                    f"{{cpu-time}}`{chapter.folder}` |")
    return "\n".join(rows)


def release_note(version: str) -> str:
    """The course map's line naming the release of the package the book is built with."""
    return (f"This book is built with release {version} of the course's package: a notebook launched on "
            f"Colab installs exactly that release in its first cell (`pip install "
            f"{install_cell.DISTRIBUTION}=={version}`); Binder and a clone of the repository use the "
            "repository's own copy.")


def intro_with_course_map(root: Path, chapters: ChapterList, version: str | None = None) -> str:
    text = (root / INTRO).read_text(encoding="utf-8")
    if text.count(MAP_BEGIN) != 1 or text.count(MAP_END) != 1 or text.index(MAP_BEGIN) > text.index(MAP_END):
        raise ValueError(f"{INTRO} must hold the course map between the lines\n{MAP_BEGIN}\nand\n{MAP_END}")
    head, rest = text.split(MAP_BEGIN)
    tail = rest.split(MAP_END)[1]
    version = install_cell.package_version() if version is None else version
    return f"{head}{MAP_BEGIN}\n\n{course_map(chapters)}\n\n{release_note(version)}\n\n{MAP_END}{tail}"


def _cpu_times(root: Path) -> dict:
    path = root / DATA
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"seconds": {}}


def missing_times(root: Path) -> list[str]:
    """Notebooks of the chapter list without a measured CPU time."""
    seconds = _cpu_times(root)["seconds"]
    return [nb for nb in chapter_notebooks(root) if nb not in seconds]


def generated(root: Path, version: str | None = None) -> dict[Path, str]:
    """Every file generated from the chapter list and the text it should hold.

    ``version`` is the package release the notebooks' install cell and the course map name
    (default: ``__version__`` of this repository's ``aigc_course``).
    """
    root = Path(root)
    version = install_cell.package_version() if version is None else version
    chapters = load_chapters(root)
    files = {root / "_toc.yml": toc(chapters), root / INTRO: intro_with_course_map(root, chapters, version)}
    pages = {c.exercises: c.exercises_page for c in chapters.chapters if c.exercises}
    # the student notebooks are made from the solutions as they are on disk, so the install cell
    # is added to them here too (it has no solution markers: both orders give the same notebook)
    for path, text in build_exercises.outputs(root, pages).items():
        files[path] = install_cell.with_install_cell(text, version) if path.suffix == ".ipynb" else text
    for path in install_cell.notebooks(root):
        files[path] = install_cell.with_install_cell(path.read_text(encoding="utf-8"), version)
    data = _cpu_times(root)
    listed = set(chapter_notebooks(root))
    if (root / DATA).exists() and set(data["seconds"]) - listed:
        data["seconds"] = {nb: t for nb, t in data["seconds"].items() if nb in listed}
        files[root / DATA] = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    return files


def stale(root: Path) -> list[Path]:
    """Generated files that are missing or differ from what :func:`build` would write."""
    return [path for path, text in generated(root).items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def build(root: Path) -> list[Path]:
    """Write every generated file that changed; returns the paths written."""
    written = []
    for path, text in generated(root).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")
    args = parser.parse_args(argv)
    try:
        out_of_date = stale(root) if args.check else build(root)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    untimed = missing_times(root)
    for path in out_of_date:
        print(f"{path.relative_to(root)} {'is out of date' if args.check else 'written'}")
    for notebook in untimed:
        print(f"{notebook} has no measured CPU time in {DATA}")
    if untimed:
        print("time them: .venv/bin/python scripts/execute_notebooks.py chapters/<folder> && "
              ".venv/bin/python scripts/update_course_map_times.py --merge")
    if args.check:
        if out_of_date:
            print("run: make chapters  (python scripts/build_chapters.py)")
        elif not untimed:
            print(f"everything generated from {CHAPTERS} is up to date")
        return 1 if out_of_date or untimed else 0
    print(f"{len(out_of_date)} file(s) written" if out_of_date else "everything up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

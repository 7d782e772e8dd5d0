"""Sphinx extension and the book's one chapter list: the course map's CPU time per chapter.

``_data/chapters.yml`` lists the book's parts and chapters; :func:`load_chapters` reads and
validates it (``scripts/build_chapters.py`` writes ``_toc.yml``, the course map and the exercise
pages from it). In chapters/intro.md, ``{cpu-time}`03_1_transformer``` renders the measured CPU
time of all the notebooks of that chapter (for example "1 min 54 s, 6 notebooks"), and
``{{ cpu_times_measured }}`` says when and on what machine they were measured. The numbers come
from ``_data/cpu_times.json``, which ``scripts/update_course_map_times.py`` writes from a
``make execute`` run. A chapter with a notebook that has no measured time is a build warning,
so the strict build (-W) fails rather than show a stale or partial time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
DATA = Path("_data") / "cpu_times.json"
CHAPTERS = Path("_data") / "chapters.yml"
SECTION = re.compile(r"^# (\d+(?:\.\d+)*) \S")
_CHAPTER_KEYS = {"folder", "runs", "pages", "exercises"}


@dataclass(frozen=True)
class Chapter:
    """One entry of ``_data/chapters.yml``, with what follows from its folder."""

    folder: str
    section: str  # the article's section number, from the title of the folder's index.md
    runs: str
    pages: tuple[str, ...]  # documents in reading order, e.g. "chapters/01_background/1_2_aigc_landscape"
    exercises: str | None  # solution notebook under exercises/solutions/, if the chapter has exercises

    @property
    def index(self) -> str:
        return f"chapters/{self.folder}/index"

    @property
    def exercises_page(self) -> str | None:
        return f"chapters/{self.folder}/exercises" if self.exercises else None

    @property
    def documents(self) -> list[str]:
        """The chapter's sections in the table of contents: its pages, then its exercises."""
        return [*self.pages, *([self.exercises_page] if self.exercises else [])]


@dataclass(frozen=True)
class Part:
    caption: str
    chapters: tuple[Chapter, ...] = ()
    files: tuple[str, ...] = ()  # plain pages, such as the back matter


@dataclass(frozen=True)
class ChapterList:
    root: str
    parts: tuple[Part, ...]

    @property
    def chapters(self) -> list[Chapter]:
        return [c for part in self.parts for c in part.chapters]


def _chapter(root: Path, entry: dict, where: str) -> Chapter:
    if not isinstance(entry, dict) or not isinstance(entry.get("folder"), str):
        raise ValueError(f"{where}: each chapter needs `folder: <name under chapters/>`; got {entry!r}")
    unknown = set(entry) - _CHAPTER_KEYS
    if unknown:
        raise ValueError(f"{where} ({entry['folder']}): unknown keys {sorted(unknown)}; "
                         f"expected {sorted(_CHAPTER_KEYS)}")
    folder = root / "chapters" / entry["folder"]
    index = folder / "index.md"
    if not index.is_file():
        raise ValueError(f"{where}: chapters/{entry['folder']}/index.md does not exist")
    title = index.read_text(encoding="utf-8").partition("\n")[0]
    match = SECTION.match(title)
    if not match:
        raise ValueError(f"{where}: the title of chapters/{entry['folder']}/index.md must start with the "
                         f"article's section number, as in '# 3.1 Title (中文标题)'; got {title!r}")
    if not isinstance(entry.get("runs"), str) or not entry["runs"].strip():
        raise ValueError(f"{where} ({entry['folder']}): `runs` (one line for the course map) is missing")
    if "pages" in entry:
        names = entry["pages"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{where} ({entry['folder']}): `pages` must be a list of page names")
    else:
        names = sorted({p.stem for p in folder.iterdir() if p.suffix in (".ipynb", ".md")} - {"index", "exercises"})
    for name in names:
        if not any((folder / f"{name}{suffix}").is_file() for suffix in (".ipynb", ".md")):
            raise ValueError(f"{where} ({entry['folder']}): page {name!r} has no .ipynb or .md file")
    exercises = entry.get("exercises")
    if exercises is not None and not (root / "exercises" / "solutions" / str(exercises)).is_file():
        raise ValueError(f"{where} ({entry['folder']}): exercises/solutions/{exercises} does not exist")
    return Chapter(entry["folder"], match.group(1), " ".join(entry["runs"].split()),
                   tuple(f"chapters/{entry['folder']}/{name}" for name in names), exercises)


def load_chapters(root: Path) -> ChapterList:
    """Read and validate ``_data/chapters.yml``; a ``ValueError`` names what is wrong and where."""
    data = yaml.safe_load((root / CHAPTERS).read_text(encoding="utf-8"))
    parts, seen = [], set()
    for number, part in enumerate(data.get("parts") or [], 1):
        where = f"{CHAPTERS}, part {number}"
        if not isinstance(part, dict) or not isinstance(part.get("caption"), str):
            raise ValueError(f"{where}: each part needs a `caption`")
        chapters = tuple(_chapter(root, entry, where) for entry in part.get("chapters") or [])
        files = tuple(part.get("files") or [])
        for chapter in chapters:
            if chapter.folder in seen:
                raise ValueError(f"{where}: chapter {chapter.folder} is listed twice")
            seen.add(chapter.folder)
        for name in files:
            if not any((root / f"{name}{suffix}").is_file() for suffix in (".md", ".ipynb")):
                raise ValueError(f"{where}: {name} has no .md or .ipynb file")
        parts.append(Part(part["caption"], chapters, files))
    return ChapterList(data["root"], tuple(parts))


def chapter_notebooks(root: Path) -> list[str]:
    """Every notebook page of the chapter list, as ``chapters/<folder>/<name>.ipynb``."""
    return [f"{doc}.ipynb" for chapter in load_chapters(root).chapters for doc in chapter.pages
            if (root / f"{doc}.ipynb").is_file()]


def format_seconds(seconds: float) -> str:
    """``"1 min 55 s"`` with no-break spaces, so a narrow table column never splits a time."""
    seconds = round(seconds)
    minutes, rest = divmod(seconds, 60)
    text = f"{minutes} min {rest} s" if minutes else f"{rest} s"
    return text.replace(" ", "\u00a0")


def _load(root: Path) -> dict:
    path = root / DATA
    if not path.exists():
        return {"seconds": {}, "measured": None}
    return json.loads(path.read_text(encoding="utf-8"))


def cpu_time_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    env = inliner.document.settings.env
    root = Path(env.app.confdir)
    env.note_dependency(str(root / DATA))
    env.note_dependency(str(root / CHAPTERS))
    data = _load(root)
    folder = text.strip()
    notebooks = [nb for nb in chapter_notebooks(root) if nb.startswith(f"chapters/{folder}/")]
    missing = [nb for nb in notebooks if nb not in data["seconds"]]
    location = (env.docname, lineno)
    if not notebooks:
        logger.warning("cpu-time: %s lists no notebooks under chapters/%s/", CHAPTERS, folder, location=location)
        return [nodes.Text("no notebooks")], []
    if missing:
        logger.warning(
            "cpu-time: no measured CPU time for %s; run `make execute` and then "
            "`.venv/bin/python scripts/update_course_map_times.py` (its docstring shows how to "
            "time one new chapter and --merge it)", ", ".join(missing), location=location,
        )
        return [nodes.Text("not measured")], []
    total = sum(data["seconds"][nb] for nb in notebooks)
    if str(env.config.language or "").startswith("zh"):  # the Chinese edition (scripts/i18n.py)
        return [nodes.Text(f"{format_seconds(total)}，{len(notebooks)} 个笔记本")], []
    plural = "s" if len(notebooks) > 1 else ""
    return [nodes.Text(f"{format_seconds(total)}, {len(notebooks)} notebook{plural}")], []


def _on_config_inited(app: Sphinx, config) -> None:
    data = _load(Path(app.confdir))
    if data.get("measured"):
        note = f"measured on {data['measured']}, {data['machine']}"
        if data.get("note"):
            note += f"; {data['note']}"
    else:
        note = "not measured yet"
    config.myst_substitutions = {**config.myst_substitutions, "cpu_times_measured": note}


def setup(app: Sphinx) -> dict:
    app.add_role("cpu-time", cpu_time_role)
    app.connect("config-inited", _on_config_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1.0"}

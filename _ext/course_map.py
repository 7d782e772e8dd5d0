"""Sphinx extension: the course map's CPU time per chapter, from measured timings.

In chapters/intro.md, ``{cpu-time}`03_1_transformer``` renders the measured CPU time of all
the notebooks of chapter ``chapters/03_1_transformer`` listed in ``_toc.yml`` (for example
"1 min 54 s, 6 notebooks"), and ``{{ cpu_times_measured }}`` says when and on what machine
they were measured. The numbers come from ``_data/cpu_times.json``, which
``scripts/update_course_map_times.py`` writes from a ``make notebooks`` run. A chapter with a
notebook that has no measured time is a build warning, so the strict build (-W) fails rather
than show a stale or partial time.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
DATA = Path("_data") / "cpu_times.json"


def toc_notebooks(root: Path) -> list[str]:
    """Every ``_toc.yml`` entry that is a notebook, as ``chapters/<folder>/<name>.ipynb``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    found = []

    def walk(entries):
        for entry in entries or []:
            if "file" in entry and (root / f"{entry['file']}.ipynb").exists():
                found.append(f"{entry['file']}.ipynb")
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return found


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
    env.note_dependency(str(root / "_toc.yml"))
    data = _load(root)
    folder = text.strip()
    notebooks = [nb for nb in toc_notebooks(root) if nb.startswith(f"chapters/{folder}/")]
    missing = [nb for nb in notebooks if nb not in data["seconds"]]
    location = (env.docname, lineno)
    if not notebooks:
        logger.warning("cpu-time: _toc.yml lists no notebooks under chapters/%s/", folder, location=location)
        return [nodes.Text("no notebooks")], []
    if missing:
        logger.warning(
            "cpu-time: no measured CPU time for %s; run `make notebooks` and then "
            "`.venv/bin/python scripts/update_course_map_times.py` (its docstring shows how to "
            "time one new chapter and --merge it)", ", ".join(missing), location=location,
        )
        return [nodes.Text("not measured")], []
    total = sum(data["seconds"][nb] for nb in notebooks)
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

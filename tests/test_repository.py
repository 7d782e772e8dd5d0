"""Checks on the book as a whole: TOC, notebooks, configuration."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.check_notebooks_stripped import notebooks_under, unstripped_cells

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


def resolve(docname: str) -> Path | None:
    for suffix in (".md", ".ipynb"):
        path = ROOT / f"{docname}{suffix}"
        if path.exists():
            return path
    return None


def test_every_toc_entry_has_a_file():
    missing = [doc for doc in toc_files() if resolve(doc) is None]
    assert not missing, f"_toc.yml lists documents with no .md or .ipynb file: {missing}"


def test_every_chapter_notebook_is_in_the_toc():
    listed = {resolve(doc) for doc in toc_files()}
    orphans = [str(p.relative_to(ROOT)) for p in notebooks_under(ROOT / "chapters") if p not in listed]
    assert not orphans, f"notebooks under chapters/ missing from _toc.yml: {orphans}"


def test_toc_has_no_duplicates():
    files = toc_files()
    assert len(files) == len(set(files))


def test_parts_follow_the_article_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    numbers = [int(m.group(1)) for p in toc["parts"] if (m := re.match(r"Part (\d+)", p["caption"]))]
    assert numbers == sorted(numbers) and numbers[0] == 1
    assert all(CJK.search(p["caption"]) for p in toc["parts"] if p["caption"].startswith("Part"))


@pytest.mark.parametrize("path", notebooks_under(ROOT / "chapters", ROOT / "exercises"), ids=lambda p: p.name)
def test_notebook_is_stripped_and_well_formed(path):
    assert not unstripped_cells(path), f"{path} has outputs; run nbstripout"
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and "".join(first["source"]).startswith("# ")
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "assert " in code, f"{path} has no assert cell"
    unpickling = ("torch." + "load(", "pickle")  # split so repository greps do not flag this line
    assert not any(word in code for word in unpickling), f"{path} unpickles; use aigc_course.pretrained"


def test_chapter_titles_carry_the_chinese_section_title():
    for index in sorted((ROOT / "chapters").glob("*/index.md")):
        title = index.read_text(encoding="utf-8").splitlines()[0]
        assert title.startswith("# ") and CJK.search(title), f"{index}: title lacks the Chinese section title"


def test_no_external_images_in_sources():
    pattern = re.compile(r"!\[[^\]]*\]\((https?:)?//|<img[^>]+src=[\"']https?:")
    offenders = []
    for path in list((ROOT / "chapters").rglob("*.md")) + notebooks_under(ROOT / "chapters", ROOT / "exercises"):
        if pattern.search(path.read_text(encoding="utf-8")):
            offenders.append(str(path))
    assert not offenders


def test_dependency_ranges_and_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    book = project["optional-dependencies"]["book"]
    assert "jupyter-book>=1.0.4.post1,<2" in book
    assert any(d.startswith("torch>=") for d in project["dependencies"])
    pins = (ROOT / ".ci" / "constraints.txt").read_text().splitlines()
    assert "torch==2.13.0" in pins
    assert any(p.startswith("jupyter-book==1.") for p in pins)


def test_book_config_is_strict_friendly():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["execute"]["timeout"] > 0
    assert config["only_build_toc_files"] is True
    assert {".venv/*", "_build/*"} <= set(config["exclude_patterns"])
    assert {"sphinx_exercise", "sphinx_togglebutton"} <= set(config["sphinx"]["extra_extensions"])
    assert config["launch_buttons"]["binderhub_url"] and config["launch_buttons"]["colab_url"]
    assert (ROOT / config["bibtex_bibfiles"][0]).exists()


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()

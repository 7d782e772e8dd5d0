"""Checks on the book as a whole: TOC, notebooks, configuration."""

from __future__ import annotations

import json
import re
import shutil
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import torch
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


# ---------------------------------------------------------------------------- the one chapter list

sys.path.insert(0, str(ROOT / "_ext"))
sys.path.insert(0, str(ROOT / "scripts"))
import build_chapters  # noqa: E402  (repository tooling lives in scripts/)
import update_course_map_times  # noqa: E402
from course_map import chapter_notebooks, load_chapters  # noqa: E402


def test_files_generated_from_the_chapter_list_are_up_to_date(capsys):
    assert build_chapters.stale(ROOT) == [], "run: make chapters"
    assert build_chapters.main(["--check"]) == 0, capsys.readouterr().out


def test_every_chapter_folder_is_in_the_chapter_list():
    listed = {c.folder for c in load_chapters(ROOT).chapters}
    folders = {p.parent.name for p in (ROOT / "chapters").glob("*/index.md")}
    assert folders == listed


def _test_repository(tmp_path: Path) -> Path:
    """A copy of the files the chapter list drives, to change freely."""
    repo = tmp_path / "repo"
    for name in ("_data", "chapters", "exercises/solutions"):
        shutil.copytree(ROOT / name, repo / name)
    shutil.copy(ROOT / "_toc.yml", repo / "_toc.yml")
    build_chapters.build(repo)  # the student notebooks, as in a clone
    assert build_chapters.stale(repo) == []
    return repo


def _notebook(path: Path, *cells: tuple[str, str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


NEW_ENTRY = """  - caption: "Part 10 · A new part (新的部分)"
    chapters:
      - folder: 10_new_topic
        runs: A demonstration that the chapter list drives the book
        exercises: ch10_new_topic.ipynb
"""


def test_adding_a_chapter_is_a_folder_plus_one_entry(tmp_path, monkeypatch, capsys):
    from aigc_course.exercises.core import REGISTRY, Case, Exercise

    repo = _test_repository(tmp_path)
    # the exercise of the new chapter: its registration and its solution notebook
    monkeypatch.setitem(REGISTRY, "10.1", Exercise(
        id="10.1", title="Add one", function="add_one", reference=lambda x: x + 1,
        cases=lambda gen, device: [Case("a tensor", (torch.randn(3, generator=gen),))],
        hints=["Add 1.", "return x + 1"]))
    _notebook(repo / "exercises" / "solutions" / "ch10_new_topic.ipynb",
              ("md", "# 10 Exercises: a new topic (新的部分)\n\nOne exercise."),
              ("code", "from aigc_course.exercises import check"),
              ("md", "## Exercise 10.1\n\nWrite `add_one(x)`."),
              ("code", "def add_one(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION"),
              ("code", 'result = check("10.1", add_one)\nassert result or not result.attempted'))
    # step 1: the folder
    folder = repo / "chapters" / "10_new_topic"
    folder.mkdir()
    (folder / "index.md").write_text("# 10 A new topic (新的部分)\n\n**What you will learn:** x.\n\n"
                                     "**Run this chapter:** y.\n", encoding="utf-8")
    _notebook(folder / "10_1_demo.ipynb", ("md", "# 10.1 A demo (演示)"), ("code", "assert 1 + 1 == 2"))
    # step 2: one entry in the chapter list
    chapters_yml = repo / "_data" / "chapters.yml"
    text = chapters_yml.read_text(encoding="utf-8")
    chapters_yml.write_text(text.replace('  - caption: "Back matter"', NEW_ENTRY + '  - caption: "Back matter"'),
                            encoding="utf-8")
    assert build_chapters.main(["--check"], root=repo) == 1  # everything generated is now stale
    capsys.readouterr()

    assert build_chapters.main([], root=repo) == 0
    out = capsys.readouterr().out
    toc = yaml.safe_load((repo / "_toc.yml").read_text(encoding="utf-8"))
    new_part = next(p for p in toc["parts"] if p["caption"].startswith("Part 10"))
    assert new_part["chapters"] == [{"file": "chapters/10_new_topic/index", "sections": [
        {"file": "chapters/10_new_topic/10_1_demo"}, {"file": "chapters/10_new_topic/exercises"}]}]
    assert toc["parts"][-1]["caption"] == "Back matter"
    intro = (repo / "chapters" / "intro.md").read_text(encoding="utf-8")
    assert ("| 10 | {doc}`10_new_topic/index` | A demonstration that the chapter list drives the book | "
            "{cpu-time}`10_new_topic` |") in intro
    page = (folder / "exercises.md").read_text(encoding="utf-8")
    assert page.startswith("# 10 Exercises: a new topic (新的部分)") and "::::{exercise} 10.1 Add one" in page
    student = (repo / "exercises" / "student" / "ch10_new_topic.ipynb").read_text(encoding="utf-8")
    assert "## Exercise 10.1: Add one" in student and "NotImplementedError" in student and "x + 1" not in student
    # the CPU time is a measurement: the check names the notebook until it is timed and merged
    assert "chapters/10_new_topic/10_1_demo.ipynb has no measured CPU time" in out
    assert build_chapters.main(["--check"], root=repo) == 1
    timed = tmp_path / "notebook_times.json"
    timed.write_text(json.dumps({"device": "cpu", "seconds": {"chapters/10_new_topic/10_1_demo.ipynb": 1.5}}))
    update_course_map_times.record(timed, repo / "_data" / "cpu_times.json", "", root=repo, merge=True)
    assert "chapters/10_new_topic/10_1_demo.ipynb" in chapter_notebooks(repo)
    assert build_chapters.main(["--check"], root=repo) == 0, capsys.readouterr().out


def test_removing_a_chapter_drops_its_cpu_times(tmp_path):
    repo = _test_repository(tmp_path)
    chapters_yml = repo / "_data" / "chapters.yml"
    data = yaml.safe_load(chapters_yml.read_text(encoding="utf-8"))
    data["parts"][3]["chapters"] = [c for c in data["parts"][3]["chapters"] if c["folder"] != "04_3_vae_math"]
    chapters_yml.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    build_chapters.build(repo)
    times = json.loads((repo / "_data" / "cpu_times.json").read_text(encoding="utf-8"))["seconds"]
    assert not any("04_3_vae_math" in nb for nb in times) and times
    assert "04_3_vae_math" not in (repo / "_toc.yml").read_text(encoding="utf-8")
    assert "04_3_vae_math" not in (repo / "chapters" / "intro.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("change", "message"), [
    ({"folder": "99_missing"}, "99_missing/index.md does not exist"),
    ({"runs": ""}, "`runs`"),
    ({"pages": ["no_such_page"]}, "'no_such_page' has no .ipynb or .md file"),
    ({"exercises": "nope.ipynb"}, "exercises/solutions/nope.ipynb does not exist"),
    ({"colour": "red"}, "unknown keys ['colour']"),
])
def test_a_bad_chapter_entry_is_named(tmp_path, change, message):
    repo = _test_repository(tmp_path)
    chapters_yml = repo / "_data" / "chapters.yml"
    data = yaml.safe_load(chapters_yml.read_text(encoding="utf-8"))
    data["parts"][0]["chapters"][0].update(change)
    chapters_yml.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)):
        load_chapters(repo)


def test_a_chapter_title_must_carry_its_section_number(tmp_path):
    repo = _test_repository(tmp_path)
    (repo / "chapters" / "01_background" / "index.md").write_text("# Background\n", encoding="utf-8")
    with pytest.raises(ValueError, match="section number"):
        load_chapters(repo)

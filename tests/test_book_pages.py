"""Checks on the book's pages that need no build: orientation lines, course map, offline assets.

The rendered book itself is checked in a browser by tests/browser (``make test-browser``).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_repository import ROOT, resolve, toc_files

sys.path.insert(0, str(ROOT / "_ext"))
import course_map  # noqa: E402  (the book's Sphinx extensions live in _ext/)
import offline_assets  # noqa: E402

LEARN = re.compile(r"\*\*What you will learn:\*\*\s+\S")
RUN = re.compile(r"\*\*Run this chapter:\*\*\s+\S")


def introduction(path) -> str:
    """The part of a page a reader sees first: a notebook's first cell, a page's text before
    its first section heading."""
    if path.suffix == ".ipynb":
        return "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
    return re.split(r"^## ", path.read_text(encoding="utf-8"), maxsplit=1, flags=re.MULTILINE)[0]


@pytest.mark.parametrize("doc", toc_files())
def test_every_page_says_what_you_will_learn_and_how_to_run_it(doc):
    path = resolve(doc)
    assert path is not None, f"{doc} has no source"
    intro = introduction(path)
    missing = [name for name, rx in (("**What you will learn:**", LEARN), ("**Run this chapter:**", RUN))
               if not rx.search(intro)]
    assert not missing, (
        f"{path.relative_to(ROOT)} lacks {' and '.join(missing)} near its top "
        "(a notebook: in its first cell; exercise pages: scripts/build_exercises.py writes them)"
    )


# "3.1.4a Reward modelling (奖励模型)": the section number from the article's outline (a letter
# when several pages share a section), then a title, then the article's Chinese title in brackets
TITLE = re.compile(r"# \d+(\.\d+)*[a-z]? \S.* \(.*[\u4e00-\u9fff].*\)")
UNNUMBERED = {"chapters/intro", "chapters/instructors", "chapters/glossary", "chapters/references"}


@pytest.mark.parametrize("doc", [doc for doc in toc_files() if doc not in UNNUMBERED])
def test_every_page_title_carries_its_section_number_and_chinese_title(doc):
    path = resolve(doc)
    assert path is not None, f"{doc} has no source"
    title = next((line for line in introduction(path).splitlines() if line.startswith("# ")), "")
    assert TITLE.fullmatch(title.strip()), (
        f"{path.relative_to(ROOT)}: title {title!r} should read '# <section> <title> (<the article's Chinese title>)'"
    )


def chapter_folders() -> list[str]:
    return [doc.split("/")[1] for doc in toc_files() if re.fullmatch(r"chapters/[^/]+/index", doc)]


def test_course_map_lists_every_chapter_with_its_section_number_and_cpu_time():
    rows = [line for line in (ROOT / "chapters" / "intro.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| ")]
    for folder in chapter_folders():
        row = next((r for r in rows if f"{{doc}}`{folder}/index`" in r), None)
        assert row, f"the course map in chapters/intro.md has no row for {folder}"
        assert re.match(r"\| \d+(\.\d+)* ", row), f"course map row for {folder} lacks the article's section number"
        assert f"{{cpu-time}}`{folder}`" in row, f"course map row for {folder} lacks {{cpu-time}}`{folder}`"


def test_every_book_notebook_has_a_measured_cpu_time():
    data = json.loads((ROOT / course_map.DATA).read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["measured"]) and data["machine"]
    missing = [nb for nb in course_map.chapter_notebooks(ROOT) if nb not in data["seconds"]]
    assert not missing, (
        f"no measured CPU time for {missing}: run `make notebooks`, then "
        "`.venv/bin/python scripts/update_course_map_times.py`"
    )
    assert all(seconds > 0 for seconds in data["seconds"].values())


def test_course_map_time_format():
    nbsp = "\u00a0"
    assert course_map.format_seconds(42.4) == f"42{nbsp}s"
    assert course_map.format_seconds(114.6) == f"1{nbsp}min{nbsp}55{nbsp}s"
    assert course_map.format_seconds(600) == f"10{nbsp}min{nbsp}0{nbsp}s"


def test_math_and_widget_scripts_come_from_the_build():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    sphinx = config["sphinx"]
    assert "offline_assets" in sphinx["local_extensions"]
    assert "://" not in sphinx["config"]["mathjax_path"]
    scripts = sphinx["config"]["nb_ipywidgets_js"]
    assert scripts and not any("://" in path for path in scripts)
    targets = {asset.target for asset in offline_assets.ASSETS}
    assert sphinx["config"]["mathjax_path"].split("/")[1] in targets
    for asset in offline_assets.ASSETS + offline_assets.TEST_ASSETS:
        assert re.fullmatch(r"\d+\.\d+\.\d+", asset.version), f"{asset.name} must be pinned exactly"
        assert asset.integrity.startswith("sha512-"), f"{asset.name} needs its registry sha512"


def test_make_test_runs_the_browser_test_after_the_book():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ntest: ", 1)[1].split("\n\n", 1)[0]
    assert recipe.index("book-strict") < recipe.index("$(BROWSER_TEST)")
    assert "tests/browser" in makefile.split("\nBROWSER_TEST := ", 1)[1].splitlines()[0]
    assert "--ignore=tests/browser" in makefile.split("\nunit: ", 1)[1].split("\n\n", 1)[0]
    assert "apt-get install" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_student_edition_finds_the_book_extensions(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from build_exercises import student_book_config

    out = tmp_path / "student.yml"
    student_book_config(out)
    config = yaml.safe_load(out.read_text(encoding="utf-8"))
    for name, path in config["sphinx"]["local_extensions"].items():
        assert (Path(path) / f"{name}.py").is_file(), f"the student config cannot find {name} at {path}"


def test_update_course_map_times_records_and_merges(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import update_course_map_times as update

    notebooks = course_map.chapter_notebooks(ROOT)
    source, target = tmp_path / "times.json", tmp_path / "cpu_times.json"
    source.write_text(json.dumps({"device": "cpu", "seconds": {nb: 2.0 for nb in notebooks}}))
    data = update.record(source, target, "first run")
    assert set(data["seconds"]) == set(notebooks) and data["note"] == "first run"
    source.write_text(json.dumps({"device": "cpu", "seconds": {notebooks[0]: 7.25}}))
    with pytest.raises(SystemExit, match="has no time for"):
        update.record(source, target, "")  # a partial run must not replace the file
    merged = update.record(source, target, "", merge=True)
    assert merged["seconds"][notebooks[0]] == 7.2 and merged["seconds"][notebooks[-1]] == 2.0
    source.write_text(json.dumps({"device": "cuda", "seconds": {}}))
    with pytest.raises(SystemExit, match="GPU"):
        update.record(source, target, "")


def test_cpu_time_role_sums_a_chapters_notebooks_from_the_chapter_list():
    from types import SimpleNamespace

    def role(language):
        env = SimpleNamespace(app=SimpleNamespace(confdir=str(ROOT)), docname="chapters/intro",
                              note_dependency=lambda path: None, config=SimpleNamespace(language=language))
        inliner = SimpleNamespace(document=SimpleNamespace(settings=SimpleNamespace(env=env)))
        return course_map.cpu_time_role("cpu-time", "", "03_2_gan", 1, inliner)

    nodes, messages = role("en")
    seconds = json.loads((ROOT / course_map.DATA).read_text(encoding="utf-8"))["seconds"]
    chapter = next(c for c in course_map.load_chapters(ROOT).chapters if c.folder == "03_2_gan")
    total = sum(seconds[f"{doc}.ipynb"] for doc in chapter.pages)
    assert nodes[0].astext() == f"{course_map.format_seconds(total)}, {len(chapter.pages)} notebooks"
    assert not messages
    nodes, _ = role("zh_CN")  # the Chinese edition
    assert nodes[0].astext() == f"{course_map.format_seconds(total)}，{len(chapter.pages)} 个笔记本"


# --- What the rendered book shows of a notebook's code -------------------------------------------
# myst-nb tags that keep a cell's source out of the reading: nbval still runs the cell.
HIDDEN_TAGS = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
# A visible cell whose asserts are meant to be read carries this tag (say why in a comment).
TEACH_TAG = "teach"
# Tolerances of an identity (|a - b| < 1e-6) are not thresholds.
TOLERANCE = 1e-3
# Chapters whose notebooks are being rewritten on another branch when this rule was added.
PENDING_REWRITE: set[str] = set()


def code_cells(notebook: str):
    """(index, source, tags) of every code cell of a notebook."""
    cells = json.loads((ROOT / notebook).read_text(encoding="utf-8"))["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            yield index, "".join(cell["source"]), set(cell.get("metadata", {}).get("tags", []))


def numeric_literals(node):
    """Magnitudes of the numbers written in an operand: ``0.9``, ``-1.5``, ``0.5 * x``, ``x + 0.1``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        yield abs(node.value)
    elif isinstance(node, ast.UnaryOp):
        yield from numeric_literals(node.operand)
    elif isinstance(node, ast.BinOp):
        yield from numeric_literals(node.left)
        yield from numeric_literals(node.right)


def is_threshold_assert(statement: ast.stmt) -> bool:
    """An ``assert`` that orders (<, <=, >, >=) a result against a number written in the code,
    larger than a floating-point tolerance: ``acc >= 0.9``, ``loss < 0.5 * first``, ``1.5 < bpc < 3``.
    That is a regression check on a measured result, which nbval needs and a reader does not."""
    if not isinstance(statement, ast.Assert):
        return False
    for node in ast.walk(statement.test):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE) for op in node.ops):
            if any(v > TOLERANCE for operand in (node.left, *node.comparators) for v in numeric_literals(operand)):
                return True
    return False


def regression_clutter(source: str) -> list[str]:
    """Why a visible cell reads as a test rather than as the lesson: it is nothing but asserts,
    or one of its top-level statements is a threshold assert (asserts nested in a loop that
    prints the same numbers are part of that demonstration and are not counted)."""
    body = ast.parse(source).body
    if body and all(isinstance(s, ast.Assert) for s in body):
        return ["the cell is nothing but assert statements"]
    return [f"threshold assert: {ast.unparse(s)[:100]}" for s in body if is_threshold_assert(s)]


def test_regression_clutter_rule():
    assert regression_clutter("assert a == b\nassert torch.allclose(x, y)")  # asserts only
    assert regression_clutter("y = f(x)\nprint(y)\nassert acc >= 0.9")
    assert regression_clutter("y = f(x)\nassert loss[-1] < 0.5 * loss[0]")
    assert regression_clutter("y = f(x)\nassert 1.5 < bpc < 3.0")
    assert not regression_clutter("y = f(x)\nassert torch.allclose(y, y_by_hand, atol=1e-5)")
    assert not regression_clutter("y = f(x)\nassert abs(gap - kl) < 1e-9 and y.shape == (2, 3)")
    assert not regression_clutter("for r in rows:\n    print(r)\n    assert r > 0.5")


@pytest.mark.parametrize("notebook", [
    pytest.param(nb, marks=pytest.mark.xfail(reason="rewritten on another branch; tag its checks on merge",
                                             strict=False)) if nb in PENDING_REWRITE else nb
    for nb in course_map.chapter_notebooks(ROOT)])
def test_visible_cells_teach_and_regression_asserts_are_hidden(notebook):
    """Regression checks run under nbval but are tagged ``remove-cell`` so the book hides them; the
    asserts a reader sees state an identity (a value equal to its formula, a shape)."""
    problems = [f"cell {index}: {why}" for index, source, tags in code_cells(notebook)
                if not tags & HIDDEN_TAGS and TEACH_TAG not in tags for why in regression_clutter(source)]
    assert not problems, (
        f"{notebook}: move these checks to a cell of their own tagged 'remove-cell' (or tag a cell "
        f"'{TEACH_TAG}' whose asserts a reader should see):\n  " + "\n  ".join(problems)
    )


# --- Alt text: every figure a notebook draws has a short description -------------------------------
# A cell draws a figure when its own code (not a function it only defines) calls one of these,
# or calls, or hands to ``interact``, a function of the notebook whose body does.
PYPLOT_DRAWING = {"show", "subplots", "figure", "imshow", "plot", "bar", "barh", "hist", "scatter", "subplot", "matshow"}
COURSE_DRAWING = {"show_images", "plot_loss", "scatter_2d"}  # aigc_course.plotting; and every draw_*


def _calls(tree, *, into_functions: bool):
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if not into_functions and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Call):
                yield child
            stack.append(child)


def _draws(calls, drawing_functions: set[str]) -> bool:
    for call in calls:
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "plt" \
                and func.attr in PYPLOT_DRAWING:
            return True
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in COURSE_DRAWING or name.startswith("draw_") or name in drawing_functions:
            return True
        if any(isinstance(arg, ast.Name) and arg.id in drawing_functions for arg in call.args):
            return True  # interact(draw, ...)
    return False


def figure_cells(notebook: str) -> list[int]:
    """Indices of the code cells of a notebook that draw a figure (see the rule above)."""
    drawing_functions: set[str] = set()
    found = []
    for index, source, _ in code_cells(notebook):
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and _draws(_calls(node, into_functions=True), drawing_functions):
                drawing_functions.add(node.name)
        if _draws(_calls(tree, into_functions=False), drawing_functions):
            found.append(index)
    return found


def test_figure_cells_rule(tmp_path, monkeypatch):
    cells = ["def show(x):\n    plt.plot(x)\n    plt.show()",  # defines, draws nothing
             "show(1)", "interact(show, x=IntSlider(description='x'))", "fig = show_images(images)",
             "draw_taxonomy()", "y = f(x)\nprint(y)"]
    notebook = {"cells": [{"cell_type": "code", "source": s, "metadata": {}} for s in cells]}
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    assert figure_cells("nb.ipynb") == [1, 2, 3, 4]


@pytest.mark.parametrize("notebook", [
    pytest.param(nb, marks=pytest.mark.xfail(reason="rewritten on another branch; add its alt text on merge",
                                             strict=False)) if nb in PENDING_REWRITE else nb
    for nb in course_map.chapter_notebooks(ROOT)])
def test_every_figure_has_alt_text(notebook):
    """myst-nb reads ``metadata.mystnb.image.alt`` of a cell for the alt of the images it outputs;
    without it a screen reader reads the image's file path aloud."""
    cells = json.loads((ROOT / notebook).read_text(encoding="utf-8"))["cells"]
    missing = []
    for index in figure_cells(notebook):
        alt = cells[index].get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt", "")
        if not 10 <= len(alt.strip()) <= 400:
            missing.append(f"cell {index}: alt {alt!r}")
    assert not missing, (f"{notebook}: figures need a short description (10-400 characters) in the cell "
                         "metadata mystnb.image.alt:\n  " + "\n  ".join(missing))


def test_the_bibliography_parses_and_every_citation_resolves():
    """A missing brace in references.bib stops the book build at its first step; check it here,
    with the parser sphinxcontrib-bibtex uses, together with every {cite} key the pages use."""
    from pybtex.database import parse_file

    entries = parse_file(ROOT / "chapters" / "references.bib").entries
    cited = set()
    for path in list((ROOT / "chapters").rglob("*.md")) + list((ROOT / "chapters").rglob("*.ipynb")):
        for keys in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", path.read_text(encoding="utf-8")):
            cited |= {k.strip() for k in keys.split(",")}
    assert cited, "no citations found: the pattern is wrong"
    assert not cited - set(entries), f"cited but not in references.bib: {sorted(cited - set(entries))}"


def test_bibliography_entries_become_list_items():
    import accessibility

    body = '<div role="list" class="citation-list">\n<div class="citation" id="id1" role="doc-biblioentry">'
    fixed = accessibility.fix_bibliography_roles(body)
    assert 'role="listitem"' in fixed and "doc-biblioentry" not in fixed and 'role="list"' in fixed

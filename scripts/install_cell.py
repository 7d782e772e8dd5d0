"""The first code cell of every notebook: install the course's release on a hosted service.

A notebook launched on Colab starts in a runtime without ``aigc_course``. Its first code cell
installs the release the book was built with (``pip install aigc-course==<version>``), the way
d2l's notebooks do. Locally, on Binder and in CI the package is already importable, so the
cell does nothing. The cell carries two tags: ``remove-cell``, so the rendered book hides it, and
``install-course``, which is how this module finds it again.

``scripts/build_chapters.py`` (``make chapters``) puts the cell into every notebook under
``chapters/`` and ``exercises/solutions/`` (the student notebooks are generated from those), and
``--check`` (``make lint``) fails while a notebook lacks it or names another version. The version
is ``__version__`` in ``aigc_course/__init__.py``, read without importing the package.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "aigc-course"  # the name on PyPI; the import name is aigc_course
TAG = "install-course"
HIDE = "remove-cell"
SKIP_PARTS = {".ipynb_checkpoints", "_build", ".venv"}


def package_version(root: Path = ROOT) -> str:
    """``__version__`` of ``<root>/aigc_course/__init__.py`` (the one place the version lives)."""
    path = Path(root) / "aigc_course" / "__init__.py"
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    raise ValueError(f"{path} must assign the version as a string literal: __version__ = \"X.Y.Z\"")


def cell_source(version: str) -> str:
    """The install cell's code for release ``version``."""
    return (
        "# On a hosted service without the course's package (Colab), install the release this book\n"
        "# was built with. Locally, on Binder and in CI the package is installed and nothing runs.\n"
        "import importlib.util\n"
        "import os\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'hosted = "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ\n'
        'if hosted and importlib.util.find_spec("aigc_course") is None:\n'
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "{DISTRIBUTION}=={version}"],\n'
        "                   check=True)\n"
        "    importlib.invalidate_caches()"
    )


def notebooks(root: Path = ROOT) -> list[Path]:
    """The hand-written notebooks that carry the cell: chapters and exercise solutions."""
    root = Path(root)
    found = [*sorted((root / "chapters").rglob("*.ipynb")), *sorted((root / "exercises" / "solutions").glob("*.ipynb"))]
    return [p for p in found if not SKIP_PARTS.intersection(p.relative_to(root).parts)]


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _is_install_cell(cell) -> bool:
    return TAG in (cell.get("metadata", {}).get("tags") or [])


def problem(nb: dict, version: str) -> str | None:
    """What is wrong with the notebook's install cell (``None`` when it is right)."""
    tagged = [i for i, c in enumerate(nb["cells"]) if _is_install_cell(c)]
    code = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    if not tagged:
        return f"has no install cell (a code cell tagged {TAG!r})"
    if len(tagged) > 1:
        return f"has {len(tagged)} install cells (cells {tagged})"
    cell = nb["cells"][tagged[0]]
    if cell["cell_type"] != "code" or tagged[0] != code[0]:
        return f"its install cell (cell {tagged[0]}) is not the first code cell"
    if HIDE not in (cell.get("metadata", {}).get("tags") or []):
        return f"its install cell is not tagged {HIDE!r}, so the book would show it"
    if _source(cell) != cell_source(version):
        return f"its install cell does not install {DISTRIBUTION}=={version} as the generator writes it"
    if cell.get("outputs") or cell.get("execution_count") is not None:
        return "its install cell has outputs"
    return None


def with_install_cell(text: str, version: str) -> str:
    """The notebook JSON ``text`` with the current install cell as its first code cell.

    A notebook that already has it comes back unchanged, byte for byte; otherwise every cell
    tagged ``install-course`` is removed and the current cell goes before the first code cell
    (after the title and any other leading markdown). Cell ids are renumbered 0, 1, ... as
    ``nbstripout`` writes them.
    """
    if problem(json.loads(text), version) is None:
        return text
    import nbformat  # only to write a notebook (the release workflow's checks need no nbformat)

    nb = nbformat.reads(text, as_version=4)
    nb.cells = [c for c in nb.cells if not _is_install_cell(c)]
    cell = nbformat.v4.new_code_cell(cell_source(version), metadata={"tags": [HIDE, TAG]})
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, cell)
    for number, each in enumerate(nb.cells):  # cell ids as nbstripout writes them, so it changes nothing
        if nb.nbformat_minor >= 5:
            each["id"] = str(number)
        else:
            each.pop("id", None)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"

"""Fail when a notebook is stored with outputs or execution counts (run nbstripout).

Usage: ``python -m tests.check_notebooks_stripped DIR [DIR ...]``. Also used by
``tests/test_repository.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SKIP_PARTS = {".ipynb_checkpoints", "_build", ".venv"}


def notebooks_under(*roots: str | Path) -> list[Path]:
    found = []
    for root in roots:
        for path in sorted(Path(root).rglob("*.ipynb")):
            if not SKIP_PARTS.intersection(path.parts):
                found.append(path)
    return found


def unstripped_cells(path: Path) -> list[int]:
    """Indices of code cells that carry outputs or an execution count."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [
        i for i, cell in enumerate(nb.get("cells", []))
        if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def main(argv: list[str]) -> int:
    bad = {str(p): cells for p in notebooks_under(*(argv or ["chapters", "exercises"])) if (cells := unstripped_cells(p))}
    for path, cells in bad.items():
        print(f"{path}: outputs stored in code cells {cells}; run: .venv/bin/nbstripout {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

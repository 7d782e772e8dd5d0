"""A README-style model card for each shipped checkpoint, written from what the repository records.

Everything on a card comes from a file, none of it is typed: the registry entry (description,
training script, sha256 and size), the checkpoint's ``config.json`` (architecture, data,
training settings, measured time and metrics) and the data table in ``LICENSE-DATA.md`` (where
the training data comes from and its licence). Front matter follows the Hugging Face Hub's
card format (YAML between ``---`` lines).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aigc_course import pretrained

#: The data table of the repository's LICENSE-DATA.md; an installed wheel carries the same file
#: among its licence files (pyproject.toml's license-files), where :func:`data_sources` finds it.
DATA_LICENCES = Path(__file__).resolve().parents[2] / "LICENSE-DATA.md"


def _installed_licence_text() -> str | None:
    """LICENSE-DATA.md from the installed distribution's metadata, if there is one."""
    from importlib import metadata

    try:
        files = metadata.distribution("aigc-course").files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "LICENSE-DATA.md":
            return file.read_text(encoding="utf-8")
    return None


def data_sources(path: Path | str | None = None) -> list[dict[str, str]]:
    """The rows of LICENSE-DATA.md's table: ``{"data", "source", "licence", "used_by"}`` each.

    ``path`` defaults to the repository's file, else the copy in the installed wheel's metadata.
    """
    if path is None:
        text = DATA_LICENCES.read_text(encoding="utf-8") if DATA_LICENCES.is_file() else _installed_licence_text()
        if text is None:
            raise ValueError("path: LICENSE-DATA.md is neither in a course checkout nor in the installed "
                             "aigc-course distribution; pass the file's path")
    else:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"path must be the repository's LICENSE-DATA.md, got {str(path)!r} (no such file)")
        text = path.read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and not set(cells[0]) <= set("-: ") and cells[0] != "Data":
            rows.append(dict(zip(("data", "source", "licence", "used_by"), cells, strict=True)))
    return rows


def _uses(used_by: str, name: str) -> bool:
    """Whether a "Used by" cell names checkpoint ``name`` (``code-gpt`` or a pattern ``digits-*``)."""
    for pattern in re.findall(r"`([a-z0-9*-]+)`", used_by):
        if re.fullmatch(pattern.replace("*", "[a-z0-9-]*"), name):
            return True
    return False


def _find(config: dict, *keys: str) -> Any:
    """The first of ``keys`` found in ``config`` or its ``training`` / ``metrics`` sections."""
    for section in (config, config.get("training", {}), config.get("metrics", {})):
        if isinstance(section, dict):
            for key in keys:
                if key in section:
                    return section[key]
    return None


def _hours(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.2f} h"


def _machine(config: dict) -> str:
    parts = [str(v) for v in (_find(config, "machine"), _find(config, "torch")) if v]
    threads = _find(config, "threads")
    if isinstance(threads, int):
        parts.append(f"{threads} thread{'s' * (threads != 1)}")
    return f" ({', '.join(parts)})" if parts else ""


def model_card(name: str, licences: Path | str | None = None) -> str:
    """The model card of shipped checkpoint ``name`` as Markdown (``README.md`` of a Hub repository)."""
    entry = pretrained.info(name)  # ValueError naming the checkpoints for an unknown name
    _, config = pretrained.load_files(name)  # hash-checked
    sources = [row for row in data_sources(licences) if _uses(row["used_by"], name)]
    model = config.get("model", {k: v for k, v in config.items() if isinstance(v, dict)})
    seconds = _find(config, "train_seconds", "total_seconds")
    steps = _find(config, "steps")
    metrics = config.get("metrics", {})
    lines = [
        "---",
        "library_name: aigc-course",
        "license: mit  # the weights; the training data keeps its own licence (below)",
        "tags: [aigc-course, from-scratch, cpu]",
        "---",
        "",
        f"# {name}",
        "",
        f"{entry['description'].rstrip('.')}.",
        "",
        "## How to use",
        "",
        "```python",
        "from aigc_course import pretrained",
        f'model = pretrained.load("{name}")  # builds {entry["builder"].split(":")[1]}; offline',
        "```",
        "",
        "## Architecture",
        "",
        f"Builder `{entry['builder']}`, configuration:",
        "",
        "```json",
        json.dumps(model, indent=1, sort_keys=True, ensure_ascii=False)[:2000],
        "```",
        "",
        "## Training data",
        "",
    ]
    if sources:
        for row in sources:
            lines.append(f"- **{row['data']}**: {row['source']}. Licence: {row['licence']}.")
    else:
        lines.append("- See LICENSE-DATA.md in the course repository.")
    data = config.get("data")
    if isinstance(data, str):
        lines += ["", f"Data as the script reads it: `{data}`."]
    elif isinstance(data, dict) and "corpus" in data:
        lines += ["", f"Data as the script reads it: `{data['corpus']}`; split {data.get('split', 'as recorded')}."]
    lines += [
        "",
        "## Training",
        "",
        f"Trained by `{entry['script']}` (`python {entry['script']}`, which publishes the checkpoint)"
        + (f" for {steps:,} steps" if isinstance(steps, int) else "") + ".",
        f"Measured training time: {_hours(seconds)}{_machine(config)}."
        if isinstance(seconds, int | float) else "Training time: not recorded in the checkpoint.",
    ]
    scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if scalars:
        lines += ["", "## Recorded metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(scalars.items())]
    lines += [
        "",
        "## Intended use and limits",
        "",
        "Teaching: a small model trained from scratch on CPU to show how its kind of generative "
        "model works, in the book *AIGC from Zero to Practice*. It is far smaller than production "
        "models, knows only its training data above, and is not meant for any real application; "
        "its outputs are not checked for correctness or safety.",
        "",
        "## Files",
        "",
        "| file | sha256 |",
        "|---|---|",
    ]
    lines += [f"| {file} | `{digest}` |" for file, digest in sorted(entry["sha256"].items())]
    lines += ["", f"{entry['bytes']:,} bytes in all. Weights are safetensors (never pickled); "
              "`pretrained.load` checks both hashes before parsing.", ""]
    return "\n".join(lines)


def write_model_card(name: str, folder: Path | str) -> Path:
    """Write ``model_card(name)`` to ``folder/README.md``; returns the path."""
    path = Path(folder) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_card(name), encoding="utf-8")
    return path

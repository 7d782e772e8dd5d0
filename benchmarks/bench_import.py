"""What `pip install aigc-course` costs: import time and installed size, side by side.

Three tables, all measured in this run:

1. ``import torch`` alone against ``import aigc_course`` (which imports torch), each in a fresh
   interpreter, alternated ``--rounds`` times; the medians and their difference. Target: the
   package adds at most 0.3 s to torch's own import.
2. Each subpackage and top-level module: the time its import adds after ``import torch`` in a
   fresh interpreter (median of ``--sub-rounds``), the heavy libraries it pulls in, and the size
   of its files (as installed: the wheel holds the source tree's files).
3. The installed size of the package (code and checkpoints) and of every distribution
   ``pip install aigc-course`` brings in (its requirements, resolved against this environment).

Run: ``.venv/bin/python benchmarks/bench_import.py [--rounds 7] [--sub-rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aigc_course"
HEAVY = ("matplotlib.pyplot", "sklearn", "scipy", "IPython", "ipywidgets", "transformers", "diffusers")
TARGET_S = 0.3

# In a fresh interpreter: time the import of torch, then of the module; report what got loaded.
PROBE = """
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import {module}
t2 = time.perf_counter()
print(json.dumps({{"torch": t1 - t0, "module": t2 - t1, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""
ALONE = "import time; t0 = time.perf_counter(); import {module}; print(time.perf_counter() - t0)"


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's package, as the book imports it
    return subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                          text=True, cwd=ROOT).stdout.strip().splitlines()[-1]


def _modules() -> list[str]:
    """``aigc_course`` and its subpackages and top-level modules (not their inner modules)."""
    names = []
    for path in sorted(PACKAGE.iterdir()):
        if path.name.startswith(("_", ".")) or path.name == "checkpoints":
            continue
        if path.suffix == ".py" or (path / "__init__.py").exists():
            names.append(f"aigc_course.{path.stem}")
    return names


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _fmt_mb(size: int) -> str:
    return f"{size / 1e6:.2f}"


def import_table(rounds: int) -> float:
    torch_s, package_s = [], []
    for _ in range(rounds):  # alternated, so both see the same machine load
        torch_s.append(float(_python(ALONE.format(module="torch"))))
        package_s.append(float(_python(ALONE.format(module="aigc_course"))))
    t, p = statistics.median(torch_s), statistics.median(package_s)
    print(f"## import time, fresh interpreter, median of {rounds} alternated runs\n")
    print("| import | median s | min s | max s |")
    print("|---|---|---|---|")
    print(f"| `import torch` | {t:.3f} | {min(torch_s):.3f} | {max(torch_s):.3f} |")
    print(f"| `import aigc_course` | {p:.3f} | {min(package_s):.3f} | {max(package_s):.3f} |")
    verdict = "within" if p - t <= TARGET_S else "OVER"
    print(f"\n`import aigc_course` - `import torch`: {p - t:+.3f} s ({verdict} the {TARGET_S} s target)\n")
    return p - t


def module_table(rounds: int) -> None:
    print(f"## each subpackage: import time added after `import torch` (median of {rounds}), files\n")
    print("| module | added s | torch s | heavy libraries it imports | files MB |")
    print("|---|---|---|---|---|")
    for name in _modules():
        runs = [json.loads(_python(PROBE.format(module=name, heavy=HEAVY))) for _ in range(rounds)]
        added = statistics.median(r["module"] for r in runs)
        torch_s = statistics.median(r["torch"] for r in runs)
        path = PACKAGE / name.removeprefix("aigc_course.")
        size = _size(path if path.is_dir() else path.with_suffix(".py"))
        heavy = ", ".join(runs[0]["heavy"]) or "-"
        print(f"| `{name}` | {added:.3f} | {torch_s:.2f} | {heavy} | {_fmt_mb(size)} |")
    print()


def size_table() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import release  # repository tooling: resolves requirements against this environment

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dists = release.requirement_closure(project["dependencies"])
    rows = []
    for name, dist in dists.items():
        size = sum(f.size or 0 for f in dist.files or [] if f.size)
        rows.append((size, name, dist.version))
    rows.sort(reverse=True)
    code = _size(PACKAGE) - _size(PACKAGE / "checkpoints")
    checkpoints = _size(PACKAGE / "checkpoints")
    total = code + checkpoints + sum(r[0] for r in rows)
    print("## installed size of `pip install aigc-course` (this environment's builds)\n")
    print("| distribution | version | MB |")
    print("|---|---|---|")
    print(f"| aigc-course: code | {release.install_cell.package_version()} | {_fmt_mb(code)} |")
    print(f"| aigc-course: checkpoints | | {_fmt_mb(checkpoints)} |")
    for size, name, version in rows:
        print(f"| {name} | {version} | {_fmt_mb(size)} |")
    print(f"| **total, {len(rows) + 1} distributions** | | **{_fmt_mb(total)}** |")
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternated runs of import torch / aigc_course")
    parser.add_argument("--sub-rounds", type=int, default=3, help="runs per subpackage")
    args = parser.parse_args(argv)
    import torch

    print(f"Python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"{platform.machine()}; package at {PACKAGE}\n")
    import_table(args.rounds)
    module_table(args.sub_rounds)
    size_table()


if __name__ == "__main__":
    main()

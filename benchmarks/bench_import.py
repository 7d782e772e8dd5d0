"""What `pip install aigc-course` costs: import time and installed size, side by side.

Three tables, all measured in this run:

1. ``import torch`` alone against ``import aigc_course`` (which imports torch), each in a fresh
   interpreter, alternated ``--rounds`` times; the medians and their difference, and what
   ``import aigc_course`` adds after ``import torch`` in the same interpreter. Target: the
   package adds at most 0.3 s to torch's own import. Times are CPU seconds of the importing
   process (``time.process_time``), which other jobs on a shared machine barely move, with wall
   seconds beside them.
2. Each subpackage and top-level module: the CPU time its import adds after ``import torch`` in
   a fresh interpreter (median of ``--sub-rounds``), the heavy libraries it pulls in, and the
   size of its files (as installed: the wheel holds the source tree's files).
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

# In a fresh interpreter: CPU and wall time of importing torch, then the module; what got loaded.
PROBE = """
import json, sys, time
c0, w0 = time.process_time(), time.perf_counter()
import torch
c1, w1 = time.process_time(), time.perf_counter()
import {module}
c2, w2 = time.process_time(), time.perf_counter()
print(json.dumps({{"torch": c1 - c0, "torch_wall": w1 - w0, "module": c2 - c1, "module_wall": w2 - w1,
                  "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""
ALONE = """
import json, time
c0, w0 = time.process_time(), time.perf_counter()
import {module}
print(json.dumps({{"cpu": time.process_time() - c0, "wall": time.perf_counter() - w0}}))
"""


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
    torch_runs, package_runs, added = [], [], []
    for _ in range(rounds):  # alternated, so both see the same machine load
        torch_runs.append(json.loads(_python(ALONE.format(module="torch"))))
        package_runs.append(json.loads(_python(ALONE.format(module="aigc_course"))))
        added.append(json.loads(_python(PROBE.format(module="aigc_course", heavy=HEAVY))))

    def median(runs, key):
        return statistics.median(r[key] for r in runs)

    t, p = median(torch_runs, "cpu"), median(package_runs, "cpu")
    diffs = [b["cpu"] - a["cpu"] for a, b in zip(torch_runs, package_runs, strict=True)]
    print(f"## import time, fresh interpreters, median of {rounds} alternated runs\n")
    print("| import | CPU s | wall s |")
    print("|---|---|---|")
    print(f"| `import torch` | {t:.3f} | {median(torch_runs, 'wall'):.3f} |")
    print(f"| `import aigc_course` (imports torch) | {p:.3f} | {median(package_runs, 'wall'):.3f} |")
    print(f"| difference of the two (per round: {min(diffs):+.3f} to {max(diffs):+.3f}) | {p - t:+.3f} | "
          f"{median(package_runs, 'wall') - median(torch_runs, 'wall'):+.3f} |")
    cost = median(added, "module")
    print(f"| `import aigc_course` after `import torch`, same interpreter | {cost:.3f} | "
          f"{median(added, 'module_wall'):.3f} |")
    verdict = "within" if cost <= TARGET_S else "OVER"
    print(f"\nThe package adds {cost:.3f} CPU s to torch's import, measured in one interpreter ({verdict} the "
          f"{TARGET_S} s target); two separate interpreters differ by more than that from run to run.\n")
    return cost


def module_table(rounds: int) -> None:
    print(f"## each subpackage: import time added after `import torch` (median of {rounds}), files\n")
    print("| module | added CPU s | added wall s | heavy libraries it imports | files MB |")
    print("|---|---|---|---|---|")
    for name in _modules():
        runs = [json.loads(_python(PROBE.format(module=name, heavy=HEAVY))) for _ in range(rounds)]
        added = statistics.median(r["module"] for r in runs)
        wall = statistics.median(r["module_wall"] for r in runs)
        path = PACKAGE / name.removeprefix("aigc_course.")
        size = _size(path if path.is_dir() else path.with_suffix(".py"))
        heavy = ", ".join(runs[0]["heavy"]) or "-"
        print(f"| `{name}` | {added:.3f} | {wall:.3f} | {heavy} | {_fmt_mb(size)} |")
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

"""pytest plugin: report each notebook's wall time when nbval runs it.

Loaded by ``make notebooks`` (``-p nbtiming``). Prints a table at the end of the run and
writes ``_build/notebook_times.json``. The 90-second budget is reported, not asserted:
timings depend on the machine, so a timed assertion would fail for the wrong reasons.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path

BUDGET_SECONDS = 90.0
_times: dict[str, float] = defaultdict(float)
_start: dict[str, float] = {}


def _notebook_of(nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    return path if path.endswith(".ipynb") else None


def pytest_runtest_logreport(report):
    notebook = _notebook_of(report.nodeid)
    if notebook is not None:
        _times[notebook] += report.duration


def pytest_collection_finish(session):
    _start["session"] = time.perf_counter()


def pytest_terminal_summary(terminalreporter):
    if not _times:
        return
    device = os.environ.get("AIGC_DEVICE", "auto")
    write = terminalreporter.write_line
    terminalreporter.section(f"notebook wall times (device: {device}, budget {BUDGET_SECONDS:.0f} s on CPU)")
    width = max(len(k) for k in _times)
    for notebook, seconds in sorted(_times.items()):
        flag = "  OVER BUDGET" if seconds > BUDGET_SECONDS else ""
        write(f"{notebook:<{width}}  {seconds:7.1f} s{flag}")
    write(f"{'total':<{width}}  {sum(_times.values()):7.1f} s")
    out = Path("_build") / "notebook_times.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"device": device, "seconds": dict(sorted(_times.items()))}, indent=2) + "\n")

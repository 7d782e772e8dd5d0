"""Count the bad-input matrix of ``tests/test_bad_inputs.py``, per module, as a Markdown table.

    python scripts/bad_input_table.py                      # this checkout
    python scripts/bad_input_table.py --baseline ../main   # and what changed against another one

Each probe is run once (as the test does) and counted as a clear error, a documented
behaviour, owned elsewhere (an ``xfail`` row whose fix belongs to another work package and
has not landed) or failing. With ``--baseline`` the same probes also run against the
package found in that folder, in a subprocess, and "changed" counts the probes that pass here
but not there. A probe that takes more than ``--timeout`` seconds counts as failing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def run_probes(timeout: float) -> dict[str, dict]:
    """``{probe id: {"module", "kind", "owner", "passed"}}`` for the package on ``sys.path``."""
    spec = importlib.util.spec_from_file_location("bad_inputs_matrix", ROOT / "tests" / "test_bad_inputs.py")
    matrix = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(matrix)  # by path: a baseline checkout has its own tests/ package
    PROBES, outcome = matrix.PROBES, matrix.outcome
    signal.signal(signal.SIGALRM, _alarm)
    results = {}
    for probe in PROBES:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                passed = outcome(probe) == "pass"
        except _Timeout:
            passed = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        results[probe.id] = {"module": probe.module, "kind": probe.kind, "owner": probe.owner, "passed": passed}
    return results


def baseline_results(folder: Path, timeout: float) -> dict[str, dict]:
    """The same probes against the package in ``folder`` (first on the path), in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(folder.resolve())}
    out = subprocess.run([sys.executable, __file__, "--json", "--timeout", str(timeout)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def table(results: dict[str, dict], baseline: dict[str, dict] | None) -> str:
    rows: dict[str, Counter] = {}
    for pid, r in results.items():
        c = rows.setdefault(r["module"], Counter())
        c["probes"] += 1
        if r["passed"]:
            c["clear errors" if r["kind"] == "error" else "documented"] += 1
        elif r["owner"]:
            c["owned elsewhere"] += 1
        else:
            c["failing"] += 1
        if baseline is not None and r["passed"] and not baseline.get(pid, {}).get("passed", False):
            c["changed"] += 1
    columns = ["probes", "clear errors", "documented", "owned elsewhere", "failing"]
    if baseline is not None:
        columns.append("changed")
    lines = ["| module | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    total = Counter()
    for module in sorted(rows):
        total.update(rows[module])
        lines.append(f"| {module} | " + " | ".join(str(rows[module][c]) for c in columns) + " |")
    lines.append("| **total** | " + " | ".join(f"**{total[c]}**" for c in columns) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with (its repository root)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds one probe may take")
    parser.add_argument("--json", action="store_true", help="print the raw results (used for the baseline run)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not os.environ.get("PYTHONPATH"):
        sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed one
    results = run_probes(args.timeout)
    if args.json:
        print(json.dumps(results))
        return
    baseline = baseline_results(args.baseline, args.timeout) if args.baseline else None
    import aigc_course

    print(table(results, baseline))
    print(f"\naigc_course from {Path(aigc_course.__file__).parent}" +
          (f"; baseline from {args.baseline.resolve()}" if args.baseline else ""))


if __name__ == "__main__":
    main()

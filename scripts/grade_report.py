"""The grader's report: grades.csv, results.csv, report.json and a self-contained report.html.

Every text that comes from a submission (names, error messages, the checker's messages, which
quote the student's values) is escaped in the HTML page and defused in the CSV files (a cell
starting with ``=``, ``+``, ``-`` or ``@`` gets a leading apostrophe, so a spreadsheet shows it
rather than evaluating it). Files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from pathlib import Path

SYMBOL = {"passed": "✓", "failed": "✗", "not attempted": "–", "missing": "?", "timed out": "⏱",
          "tampered": "!", "not graded": "·", "checker error": "⚠"}


def _cell(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _csv(rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def _exercise_ids(records, chapters) -> list[str]:
    ids: list[str] = []
    for name in sorted({r["notebook"] for r in records if r["notebook"]}):
        ids += [e.id for e in chapters.get(name, []) if any(e.id in r["exercises"] for r in records)]
    return ids


def grades_csv(records, chapters) -> str:
    ids = _exercise_ids(records, chapters)
    rows = [["student", "notebook", "status", *ids, "score", "max_score", "detail", "notes"]]
    for r in records:
        points = [f'{r["exercises"][i]["points"]:g}' if i in r["exercises"] else "" for i in ids]
        rows.append([r["student"], r["notebook"] or "", r["status"], *points, f'{r["score"]:g}', f'{r["max_score"]:g}',
                     r["detail"], " | ".join(r["notes"])])
    return _csv(rows)


RESULT_FIELDS = ["status", "points", "max_points", "problem", "likely_cause", "case", "seed", "cases_passed",
                 "cases_total", "message"]


def results_csv(records) -> str:
    rows = [["student", "notebook", "exercise", "function", *RESULT_FIELDS]]
    for r in records:
        for exercise_id, e in r["exercises"].items():
            rows.append([r["student"], r["notebook"] or "", exercise_id, e.get("function", ""),
                         *[e.get(k, "") if e.get(k) is not None else "" for k in RESULT_FIELDS]])
    return _csv(rows)


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:center}
td.name,th.name,td.status{text-align:left}
.passed{background:#e6f4ea}.failed,.tampered,.timed-out,.checker-error{background:#fce8e6}
.not-attempted,.missing,.not-graded{background:#f1f3f4}
.bad{color:#b3261e;font-weight:600}
pre{white-space:pre-wrap;background:#f8f8f8;border:1px solid #eee;padding:.5em;font-size:90%}
.meta{color:#555}
"""


def _status_class(status: str) -> str:
    return status.replace(" ", "-")


def report_html(records, chapters, meta) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', "<title>Exercise grades</title>",
           f"<style>{CSS}</style></head><body>", "<h1>Exercise grades</h1>",
           f'<p class="meta">{len(records)} notebook(s) graded on {e(meta["date"])} in {meta["seconds"]} s '
           f'({meta["workers"]} at a time). Each notebook ran in a fresh kernel (sandbox: {e(meta["sandbox"])}) '
           f'with {meta["timeout"]:g} s for its cells and {meta["check_timeout"]:g} s per exercise check; '
           "every exercise was re-checked by the course's checker on a fresh seed. Saved outputs are never "
           "credited.</p>",
           '<p class="meta">Legend: ✓ passed, ✗ failed, – not attempted, ? function missing, ⏱ timed out, '
           "! tampering, · not graded, ⚠ checker error.</p>"]
    for notebook in sorted({r["notebook"] or "" for r in records}):
        group = [r for r in records if (r["notebook"] or "") == notebook]
        exercises = [x for x in chapters.get(notebook, []) if any(x.id in r["exercises"] for r in group)]
        out.append(f"<h2>{e(notebook or 'not graded')}</h2><table><thead><tr>"
                   '<th class="name">Student</th><th>Notebook</th>'
                   + "".join(f'<th title="{e(x.title)}">{e(x.id)}<br><small>{e(x.function)}</small></th>'
                             for x in exercises)
                   + "<th>Total</th></tr></thead><tbody>")
        for r in group:
            status_class = "" if r["status"] == "ran" else ' class="bad"'
            row = [f'<td class="name"><a href="#{_anchor(r)}">{e(r["student"])}</a></td>',
                   f'<td class="status"><span{status_class}>{e(r["status"])}</span></td>']
            for x in exercises:
                result = r["exercises"].get(x.id)
                if result is None:
                    row.append("<td></td>")
                    continue
                row.append(f'<td class="{_status_class(result["status"])}" title="{e(result["status"])}">'
                           f'{SYMBOL.get(result["status"], "?")} {result["points"]:g}</td>')
            row.append(f'<td><b>{r["score"]:g}</b> / {r["max_score"]:g}</td>')
            out.append("<tr>" + "".join(row) + "</tr>")
        if group:
            passed = [sum(r["exercises"].get(x.id, {}).get("status") == "passed" for r in group) for x in exercises]
            mean = sum(r["score"] for r in group) / len(group)
            out.append('<tr><td class="name"><i>passed by</i></td><td></td>'
                       + "".join(f"<td>{n} / {len(group)}</td>" for n in passed)
                       + f"<td>mean {mean:.2f}</td></tr>")
        out.append("</tbody></table>")
    out.append("<h2>Details</h2>")
    for r in records:
        out.append(f'<h3 id="{_anchor(r)}">{e(r["student"])} <small>({e(r["notebook"] or "?")}: '
                   f'{r["score"]:g} / {r["max_score"]:g}, {e(r["status"])})</small></h3>')
        out.append(f'<p class="meta">{e(r["path"])}, graded in {r["seconds"]} s</p>')
        if r["detail"]:
            out.append(f'<p class="bad">{e(r["detail"])}</p>')
        if r["cell_errors"]:
            out.append("<ul>" + "".join(f"<li>cell {c['cell']} (<code>{e(c['source'])}</code>): {e(c['error'])}</li>"
                                        for c in r["cell_errors"]) + "</ul>")
        for note in r["notes"]:
            out.append(f"<p>Note: {e(note)}</p>")
        for exercise_id, result in r["exercises"].items():
            if result["status"] == "passed":
                continue
            seed = f", seed {result['seed']}" if result.get("seed") is not None else ""
            out.append(f"<p><b>{e(exercise_id)}</b> {e(result['status'])}{e(seed)}</p>"
                       f"<pre>{e(result.get('message') or '')}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _anchor(record) -> str:
    return "s-" + "".join(c if c.isalnum() else "-" for c in f"{record['student']}-{record['notebook']}")


def write_reports(out: Path, records, chapters, meta) -> list[Path]:
    data = {"meta": meta, "notebooks": records}
    return [_write(out / "grades.csv", grades_csv(records, chapters)),
            _write(out / "results.csv", results_csv(records)),
            _write(out / "report.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n"),
            _write(out / "report.html", report_html(records, chapters, meta))]


def text_summary(record) -> str:
    """One submission's results as text, with the checker's message for each exercise not passed."""
    lines = [f"{record['student']} ({record['notebook']}): {record['score']:g} / {record['max_score']:g}, "
             f"notebook {record['status']}"]
    if record["detail"]:
        lines.append(f"  {record['detail']}")
    lines += [f"  note: {note}" for note in record["notes"]]
    for exercise_id, result in record["exercises"].items():
        lines.append(f"  {SYMBOL.get(result['status'], '?')} {exercise_id} {result['status']}")
        if result["status"] != "passed" and result.get("message"):
            lines += [f"      {line}" for line in result["message"].splitlines()]
    return "\n".join(lines)

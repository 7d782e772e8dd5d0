"""The class grader (scripts/grade.py) on planted submissions of chapter 3.1's exercises.

The submissions are built here, at test time, from the real student notebook
(exercises/student/ch3_1_attention.ipynb) and the solution cells of exercises/solutions, the way
students would change them: solved, wrong (one answer memorised from a run with seed 0, saved
outputs forged to say "passed"), a kernel that dies, a cell that raises with check cells
deleted, a notebook that runs too long with an answer that never returns, one that
monkeypatches the checker, writes a fake report and tries the network, one whose function
changes the checker while it is being checked, and a file that is not a notebook. One grader
run grades them all, two at a time; the tests read its report.
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from aigc_course.exercises import REGISTRY, check
from aigc_course.exercises.__main__ import main as exercises_main
from aigc_course.exercises.notebooks import find_solution

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_classroom  # noqa: E402  (repository tooling lives in scripts/)
import grade  # noqa: E402
import grade_kernel  # noqa: E402
import grade_report  # noqa: E402

CHAPTER = "ch3_1_attention.ipynb"
IDS = ["3.1.1", "3.1.2", "3.1.3", "3.1.4", "3.1.5"]  # the chapter's exercises
PLANTED = IDS[:3]  # the ones the planted submissions answer; the others stay "not attempted"
NOT_ATTEMPTED = dict.fromkeys(IDS[3:], "not attempted")
NOTEBOOK_SECONDS = 30  # the whole notebook's limit: a normal one takes 4-20 s, on a busy machine
CHECK_SECONDS = 8

UNSCALED_ATTENTION = '''def causal_attention(q, k, v):
    t = q.shape[-2]
    scores = q @ k.transpose(-2, -1)  # forgot the 1/sqrt(d_k)
    keep = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    weights = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
    return weights @ v, weights'''

MEMORISED_TOP_K = '''from aigc_course.exercises import REGISTRY as _REGISTRY

_seed0 = _REGISTRY["3.1.2"].cases(torch.Generator().manual_seed(0), device)
_answers = [(c.args[0].cpu().numpy().tobytes(), c.args[1], _REGISTRY["3.1.2"].expected(c)) for c in _seed0]


def top_k(logits, k):
    """The answers of a run with seed=0, looked up."""
    for data, kk, answer in _answers:
        if kk == k and logits.cpu().numpy().tobytes() == data:
            return answer.clone()
    return logits.clone()'''

UNFILTERED_TOP_K = '''def top_k(logits, k):
    return logits.clone()  # keeps every token'''

UNFILTERED_TOP_P = '''def top_p(logits, p):
    return logits.clone()  # keeps every token'''

ENDLESS_TOP_K = '''def top_k(logits, k):
    while True:  # never returns
        pass'''

CHECKER_CHANGED_WHEN_CALLED = '''def top_p(logits, p):
    import sys
    for name, module in list(sys.modules.items()):
        if name.startswith("aigc_course.exercises") and hasattr(module, "mismatch"):
            module.mismatch = lambda *args, **kwargs: None  # every answer now "matches"
    return logits.clone()'''

MONKEYPATCH = '''import pathlib
import socket
import subprocess
import sys

import aigc_course.exercises as exercises
import aigc_course.exercises.core as core
from aigc_course.exercises import CheckResult


def check(exercise_id, fn, **kwargs):  # every answer "passes"
    print(f"✓ Exercise {{exercise_id}}: all 9 cases passed.")
    return CheckResult(exercise_id, "passed", "✓ forged", cases_passed=9, cases_total=9)


exercises.check = core.check = check
core._check = lambda exercise_id, *args: CheckResult(exercise_id, "passed", "✓ forged")
core.REGISTRY["3.1.1"].reference = lambda q, k, v: causal_attention(q, k, v)

OUT = pathlib.Path({out!r})
for name in ("grades.csv", "results.csv", "report.json", "report.html"):
    try:
        (OUT / name).write_text("forged")
    except OSError as err:
        print("could not forge the report:", err)
WRITER = ("import pathlib, time\\nfor _ in range(300):\\n    time.sleep(0.1)\\n"
          "    for name in ('grades.csv', 'report.json'):\\n        try:\\n"
          "            pathlib.Path(OUT, name).write_text('forged')\\n        except OSError:\\n            pass")
subprocess.Popen([sys.executable, "-c", WRITER.replace("OUT", repr(str(OUT)))], start_new_session=True)
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leaked")
except OSError as err:
    print("network blocked:", err)'''


# ---------------------------------------------------------------------------- building submissions


def student_notebook() -> nbformat.NotebookNode:
    return nbformat.read(str(ROOT / "exercises" / "student" / CHAPTER), as_version=4)


def skeleton_index(nb, exercise_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and f'NotImplementedError("Exercise {exercise_id}:' in c.source)


def function_index(nb, exercise_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and f"def {REGISTRY[exercise_id].function}(" in c.source)


def check_index(nb, exercise_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and f'check("{exercise_id}"' in c.source)


def answered(answers: dict[str, str]) -> nbformat.NotebookNode:
    """The student notebook with some skeletons replaced ("solution" takes the course's own)."""
    nb = student_notebook()
    for exercise_id, source in answers.items():
        if source == "solution":
            source = find_solution(ROOT / "exercises" / "solutions", exercise_id)
        nb.cells[skeleton_index(nb, exercise_id)].source = source
    return nb


def insert_after(nb, index: int, source: str) -> None:
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))


def imports_index(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")


SOLVED = {i: "solution" for i in IDS}


def planted(out: Path, port: int) -> dict[str, nbformat.NotebookNode | str]:
    plants = {}
    nb = answered({"3.1.1": "solution", "3.1.2": ENDLESS_TOP_K})
    del nb.cells[check_index(nb, "3.1.2")]  # else the notebook's own check would hang first
    insert_after(nb, function_index(nb, "3.1.2"), "import time\nwhile True:\n    time.sleep(0.05)")
    plants["timeout"] = nb  # first: it takes longest

    plants["correct"] = answered(SOLVED)

    nb = answered({"3.1.1": UNSCALED_ATTENTION, "3.1.2": MEMORISED_TOP_K, "3.1.3": UNFILTERED_TOP_P})
    for exercise_id in PLANTED:  # saved outputs edited to show every check passing
        cell = nb.cells[check_index(nb, exercise_id)]
        cell.execution_count = 1
        cell.outputs = [nbformat.v4.new_output(
            "stream", name="stdout", text=f"✓ Exercise {exercise_id} ({REGISTRY[exercise_id].title}): all 5 cases passed.\n")]
    plants["wrong_forged"] = nb

    nb = answered(SOLVED)
    insert_after(nb, imports_index(nb) - 1, "import os\nos._exit(3)  # the kernel's process ends here")
    plants["dies"] = nb

    nb = answered({"3.1.1": "solution", "3.1.2": UNFILTERED_TOP_K, "3.1.3": "solution"})
    for exercise_id in ("3.1.3", "3.1.2"):
        del nb.cells[check_index(nb, exercise_id)]
    insert_after(nb, imports_index(nb), 'raise RuntimeError("a stray cell that raises")')
    plants["raises_deleted"] = nb

    nb = answered({"3.1.1": UNSCALED_ATTENTION, "3.1.2": UNFILTERED_TOP_K, "3.1.3": UNFILTERED_TOP_P})
    insert_after(nb, imports_index(nb), MONKEYPATCH.format(out=str(out), port=port))
    plants["monkeypatch"] = nb

    plants["changes_checker"] = answered({"3.1.1": "solution", "3.1.2": "solution",
                                          "3.1.3": CHECKER_CHANGED_WHEN_CALLED})
    plants["unreadable"] = "this is not a notebook"
    return plants


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    out = base / "report"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    paths = []
    for student, nb in planted(out, listener.getsockname()[1]).items():
        path = base / "submissions" / student / CHAPTER
        path.parent.mkdir(parents=True)
        path.write_text(nb if isinstance(nb, str) else nbformat.writes(nb), encoding="utf-8")
        paths.append(str(path.parent))
    code = grade.main([*paths, "--out", str(out), "--timeout", str(NOTEBOOK_SECONDS),
                       "--check-timeout", str(CHECK_SECONDS), "--workers", "2"])
    time.sleep(1.0)  # a background writer that outlived its kernel would strike now
    try:
        connection = listener.accept()
        connection[0].close()
        reached = True
    except BlockingIOError:
        reached = False
    listener.close()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return {"code": code, "out": out, "reached": reached, "meta": report["meta"],
            "by": {r["student"]: r for r in report["notebooks"]}}


def statuses(record) -> dict[str, str]:
    return {i: e["status"] for i, e in record["exercises"].items()}


# ---------------------------------------------------------------------------- what the report says


def test_a_correct_notebook_gets_every_point(graded):
    record = graded["by"]["correct"]
    assert graded["code"] == 0
    assert record["status"] == "ran" and record["notebook"] == CHAPTER
    assert statuses(record) == dict.fromkeys(IDS, "passed") and record["score"] == record["max_score"] == len(IDS)
    assert not record["notes"] and not record["cell_errors"]
    assert all(e["seed"] and e["cases_passed"] == e["cases_total"] > 0 for e in record["exercises"].values())


def test_wrong_answers_fail_with_the_checkers_message_and_forged_outputs_get_nothing(graded):
    record = graded["by"]["wrong_forged"]
    assert record["status"] == "ran" and record["score"] == 0
    assert statuses(record) == {**dict.fromkeys(PLANTED, "failed"), **NOT_ATTEMPTED}
    assert "missing the 1/√d_k scaling" in record["exercises"]["3.1.1"]["likely_cause"]
    assert all(record["exercises"][i]["message"].startswith("✗ Exercise") for i in PLANTED)
    assert any("saved outputs show exercise 3.1.1, 3.1.2, 3.1.3 passing" in n for n in record["notes"])


def test_an_answer_memorised_for_one_seed_fails_on_the_graders_fresh_seeds(graded):
    namespace = {"torch": torch, "device": torch.device("cpu")}
    exec(MEMORISED_TOP_K, namespace)  # noqa: S102  (the planted answer itself)
    assert check("3.1.2", namespace["top_k"], seed=0, quiet=True).passed  # it does pass seed 0
    result = graded["by"]["wrong_forged"]["exercises"]["3.1.2"]
    assert result["status"] == "failed" and result["seed"] != 0
    seeds = [e["seed"] for r in graded["by"].values() for e in r["exercises"].values() if e["seed"]]
    assert len(set(seeds)) == len(seeds)  # every exercise of every notebook gets its own seed


def test_a_kernel_that_dies_is_reported_and_the_others_are_still_graded(graded):
    record = graded["by"]["dies"]
    assert record["status"] == "kernel died" and record["score"] == 0
    assert "import os" in record["detail"]
    assert statuses(record) == dict.fromkeys(IDS, "not graded")
    assert graded["by"]["correct"]["score"] == len(IDS)


def test_a_cell_that_raises_is_reported_and_deleted_check_cells_change_nothing(graded):
    record = graded["by"]["raises_deleted"]
    assert record["status"] == "errors"
    assert "RuntimeError: a stray cell that raises" in record["detail"]
    assert [e["error"] for e in record["cell_errors"]] == ["RuntimeError: a stray cell that raises"]
    assert statuses(record) == {"3.1.1": "passed", "3.1.2": "failed", "3.1.3": "passed", **NOT_ATTEMPTED}
    assert record["score"] == 2
    assert any("check cell of exercise 3.1.2, 3.1.3 is missing" in n for n in record["notes"])


def test_a_notebook_that_runs_too_long_is_stopped_and_what_it_defined_is_graded(graded):
    record = graded["by"]["timeout"]
    assert record["status"] == "timed out"
    assert f"time limit ({NOTEBOOK_SECONDS} s)" in record["detail"] and "import time" in record["detail"]
    # the run stopped in 3.1.2: what comes after it was never defined
    assert statuses(record) == {"3.1.1": "passed", "3.1.2": "timed out", **dict.fromkeys(IDS[2:], "missing")}
    assert "took longer than" in record["exercises"]["3.1.2"]["message"]
    assert "no function top_p" in record["exercises"]["3.1.3"]["message"]


def test_monkeypatching_the_checker_is_ignored_and_noted(graded):
    record = graded["by"]["monkeypatch"]
    # its forged check let the demo cell run the wrong answer, whose own assert then failed
    assert record["status"] == "errors" and "if result:" in record["detail"] and record["score"] == 0
    assert statuses(record) == {**dict.fromkeys(PLANTED, "failed"), **NOT_ATTEMPTED}
    assert "missing the 1/√d_k scaling" in record["exercises"]["3.1.1"]["likely_cause"]
    note = next(n for n in record["notes"] if "replaced parts of the course's checker" in n)
    assert "aigc_course.exercises.core.check" in note and "REGISTRY['3.1.1']" in note


def test_the_notebook_can_neither_forge_the_report_nor_reach_the_network(graded):
    out = graded["out"]
    assert not graded["reached"]
    if graded["meta"]["sandbox"].startswith("unshare"):  # the guard sandbox cannot stop a detached process
        assert (out / "grades.csv").read_text(encoding="utf-8").startswith("student,notebook,status,")
        json.loads((out / "report.json").read_text(encoding="utf-8"))
    with open(out / "grades.csv", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert rows["monkeypatch"]["score"] == "0" and rows["correct"]["score"] == str(len(IDS))
    assert [rows["correct"][i] for i in IDS] == ["1"] * len(IDS)


def test_a_function_that_changes_the_checker_voids_the_notebook(graded):
    record = graded["by"]["changes_checker"]
    assert record["status"] == "tampered" and record["score"] == 0
    assert "accepted a deliberately wrong answer to exercise 3.1.3" in record["detail"]
    assert statuses(record) == dict.fromkeys(IDS, "not graded")


def test_a_file_that_is_not_a_notebook_is_reported(graded):
    record = graded["by"]["unreadable"]
    assert record["status"] == "unreadable" and record["score"] == 0 and record["max_score"] == len(IDS)


def test_the_html_report_has_totals_and_the_checkers_messages(graded):
    page = (graded["out"] / "report.html").read_text(encoding="utf-8")
    assert "passed by" in page and "mean" in page
    for student in graded["by"]:
        assert f">{student}<" in page
    assert "missing the 1/√d_k scaling" in page and "<script" not in page
    results = list(csv.DictReader(open(graded["out"] / "results.csv", encoding="utf-8")))
    assert len(results) == len(IDS) * len(graded["by"])


# ---------------------------------------------------------------------------- GitHub Classroom


def test_classroom_mode_grades_one_exercise_and_exits_with_its_verdict(graded, tmp_path, capsys):
    notebook = Path(graded["by"]["correct"]["path"])
    assert grade.main([str(notebook), "--exercise", "3.1.2", "--require-pass", "--out", str(tmp_path / "a")]) == 0
    record = json.loads((tmp_path / "a" / "report.json").read_text(encoding="utf-8"))["notebooks"][0]
    assert list(record["exercises"]) == ["3.1.2"] and record["score"] == 1
    unreadable = Path(graded["by"]["unreadable"]["path"])
    assert grade.main([str(unreadable), "--exercise", "3.1.2", "--require-pass", "--out", str(tmp_path / "b")]) == 1
    assert "3.1.2" in capsys.readouterr().out


def test_the_classroom_workflows_are_generated_and_current():
    files = build_classroom.outputs(ROOT)
    assert build_classroom.main(["--check"]) == 0
    import yaml

    workflow = yaml.safe_load(files[ROOT / ".github" / "classroom" / "ch3_1_attention.yml"])
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    tests = [s for s in steps if s.get("uses", "").startswith("classroom-resources/autograding-command-grader")]
    assert [t["with"]["test-name"].split()[0] for t in tests] == IDS
    for exercise_id, test in zip(IDS, tests, strict=True):
        assert test["with"]["command"].startswith(
            f"python scripts/grade.py exercises/student/{CHAPTER} --exercise {exercise_id} --require-pass")
        assert test["with"]["max-score"] == 1
    reporter = steps[-1]
    assert reporter["with"]["runners"] == ",".join(t["id"] for t in tests)
    assert set(reporter["env"]) == {f"{t['id'].upper()}_RESULTS" for t in tests}


# ---------------------------------------------------------------------------- the parts, without a kernel


def test_the_package_only_delegates_grading_to_the_script(capsys):
    with pytest.raises(SystemExit) as exit_:
        exercises_main(["grade", "--help"])
    assert exit_.value.code == 0 and "--require-pass" in capsys.readouterr().out


def test_students_are_named_by_their_folder_or_file(tmp_path):
    chapters = {CHAPTER: []}
    (tmp_path / "alice" / "exercises" / "student").mkdir(parents=True)
    deep = tmp_path / "alice" / "exercises" / "student" / CHAPTER
    flat = tmp_path / "bob.ipynb"
    assert grade._student_name(deep, tmp_path, chapters) == "alice"
    assert grade._student_name(flat, tmp_path, chapters) == "bob"
    assert grade._student_name(deep, deep, chapters) == "alice"


def test_a_reply_without_this_runs_nonce_is_not_read():
    reply = grade_kernel.Reply("ok", expressions={"out": repr(json.dumps({"nonce": "other", "ok": True}))})
    assert grade._read_reply(reply, "mine") is None
    reply.expressions["out"] = repr(json.dumps({"nonce": "mine", "ok": True}))
    assert grade._read_reply(reply, "mine") == {"nonce": "mine", "ok": True}


def test_report_text_from_a_submission_is_escaped_and_defused():
    record = {"student": "=HYPERLINK(1)", "path": "x", "notebook": CHAPTER, "status": "errors",
              "detail": "<script>alert(1)</script>", "cell_errors": [], "notes": [], "score": 0.0, "max_score": 1.0,
              "seconds": 1.0, "exercises": {"3.1.1": {"status": "failed", "points": 0.0, "max_points": 1.0,
                                                      "function": "causal_attention", "message": "<b>x</b>",
                                                      "seed": 3}}}
    chapters = {CHAPTER: [grade.ExerciseInfo("3.1.1", "causal_attention", "t")]}
    meta = {"date": "d", "seconds": 1, "workers": 2, "sandbox": "s", "timeout": 1.0, "check_timeout": 1.0}
    page = grade_report.report_html([record], chapters, meta)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;x" in page
    assert grade_report.grades_csv([record], chapters).splitlines()[1].startswith("'=HYPERLINK")


def test_the_socket_guard_refuses_internet_addresses(tmp_path):
    sandbox = grade_kernel.make_sandbox("guard", [], tmp_path)
    code = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9))\nexcept OSError as e:\n"
            "    print('refused', e)\ns = socket.socket(socket.AF_UNIX)\nprint('unix ok')")
    done = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": sandbox.pythonpath[0]},
                          capture_output=True, text=True, timeout=60)
    assert "refused" in done.stdout and "blocked while the notebook is graded" in done.stdout
    assert "unix ok" in done.stdout


def test_only_writable_folders_outside_the_scratch_folder_are_made_read_only(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (tmp_path / "repo" / "sub").mkdir(parents=True)
    kept = grade.protected_folders([tmp_path / "repo", tmp_path / "repo" / "sub", tmp_path, scratch, Path("/")],
                                   writable=scratch)
    assert kept == [(tmp_path / "repo").resolve()]


def test_a_cloned_repository_yields_its_exercise_notebooks_only(tmp_path, capsys):
    chapters = grade.course_exercises()
    student = tmp_path / "alice" / "exercises" / "student"
    student.mkdir(parents=True)
    for name in (CHAPTER, "ch1_ai_1_0.ipynb"):
        (student / name).write_text((ROOT / "exercises" / "student" / name).read_text(encoding="utf-8"))
    (tmp_path / "alice" / "chapters").mkdir()
    (tmp_path / "alice" / "chapters" / "page.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    found = grade.find_submissions([tmp_path], chapters, None)
    assert sorted((s.student, s.chapter) for s in found) == [("alice", "ch1_ai_1_0.ipynb"), ("alice", CHAPTER)]
    assert "skipped 1 notebook" in capsys.readouterr().out
    found = grade.find_submissions([tmp_path], chapters, CHAPTER)
    assert [(s.student, s.chapter) for s in found] == [("alice", CHAPTER)]

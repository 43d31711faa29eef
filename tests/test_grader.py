"""The grader against real adversarial submissions (tests/fixtures/grading/submissions/).

One batch grades all twenty fake students (in parallel, as an instructor would); the tests then
check each student's rows, the feedback, and that nothing outlived the run. The submissions are
built by tests/fixtures/grading/make_fixtures.py from the warm-up exercise.
"""

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from _ci import IN_CI, unavailable

from coursekit.grade.batch import Options, grade
from coursekit.grade.results import COLUMNS, read_csv
from coursekit.grade.runner import Limits
from coursekit.grade.source import load_source

pytestmark = pytest.mark.slow  # one batch of twenty students in kernels (~30 s)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "submissions"
SOURCE = ROOT / "solutions" / "00_warmup.ipynb"
LIMITS = Limits(cell_timeout=5, notebook_timeout=90, memory_mb=1024)

P, F, E, T, M = "passed", "failed", "error", "timeout", "manual"
# student -> statuses of q1..q5 (q5 is graded by hand), and a phrase the message must contain.
EXPECTED = {
    "correct": ((P, P, P, P, M), {}),
    "untouched": ((E, E, E, E, M), {"q1": "still raises NotImplementedError"}),
    "partial": ((P, F, F, F, M), {"q2": "public check failed", "q3": "values_per_map"}),
    "bad_json": (("invalid",) * 5, {"q1": "not valid JSON"}),
    "not_a_notebook": (("invalid",) * 5, {"q1": "not a Jupyter notebook"}),
    "missing": (("missing",) * 5, {"q1": "was not submitted"}),
    # test cells and set-up deleted: restored from the source; the deleted answer is unanswered
    "deleted_cells": ((P, E, P, P, M), {"q2": "was missing"}),
    # test cells replaced by `pass`: the source's tests run anyway and catch the wrong answer
    "edited_tests": ((F, P, P, P, M), {"q1": "public check failed"}),
    "extra_cells": ((P, P, P, P, M), {}),
    "lost_metadata": ((P, P, P, P, M), {}),
    "sys_exit": ((P, E, P, P, M), {"q2": "SystemExit"}),
    "os_exit_and_segfault": ((P, E, E, P, M), {"q2": "kernel died", "q3": "kernel died"}),
    "infinite_loop": ((P, T, P, P, M), {"q2": "cell time limit"}),
    "unstoppable_loop": ((P, T, P, P, M), {"q2": "cell time limit"}),
    "memory_bomb": ((P, E, P, P, M), {"q2": "MemoryError"}),
    "huge_output": ((P, E, P, P, M), {"q2": "over 64 MB"}),
    "background_process": ((P, P, P, P, M), {}),
    # patched numpy/print/asserts, hidden errors, swallowed probes, every later cell -> "pass"
    "monkeypatch": ((E, F, F, F, M), {"q2": "not computed"}),
    "forged_probes": ((P, P, F, P, M), {"q3": "wrong value"}),
    "steal_solutions": ((P, P, P, F, M), {}),
}


def _grader_processes(workroot: Path) -> list[str]:
    """Processes of this run's kernels and of everything they started (the fixtures' background
    sleeps included): they all inherit the kernel's environment, whose HOME is under ``workroot``,
    a folder named with a fresh UUID. Processes of other runs on the machine never match."""
    marker = str(workroot).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in environ:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _still_running(workroot: Path, grace: float = 5.0) -> list[str]:
    """This run's processes still alive after ``grace`` seconds: a process killed at the end of
    the run may take a moment to exit, which is not a leak."""
    deadline = time.monotonic() + grace
    while (found := _grader_processes(workroot)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    out = tmp_path_factory.mktemp("grading")
    # the grader's scratch folders (and its kernels' HOME) go here: a name unique to this run
    workroot = out / f"t{uuid.uuid4().hex[:10]}"
    workroot.mkdir()
    (out / "src").mkdir()  # the warm-up only, whatever else solutions/ holds
    shutil.copy(SOURCE, out / "src")
    saved, tempfile.tempdir = tempfile.tempdir, str(workroot)
    try:
        summary = grade(Options(submissions=FIXTURES, out=out / "grades.csv",
                                feedback=out / "feedback", jobs=2, limits=LIMITS,
                                source_dir=out / "src", progress=False), log=lambda *_: None)
    finally:
        tempfile.tempdir = saved
    return summary, out, workroot


def test_every_student_gets_the_documented_status(batch):
    summary, out, _ = batch
    rows = {(r.student, r.question): r for r in read_csv(out / "grades.csv")}
    problems = []
    for student, (statuses, phrases) in EXPECTED.items():
        if student == "steal_solutions" and not summary.isolation.protections[1]:
            if IN_CI:
                problems.append(f"isolation {summary.isolation.mechanism} has no private files "
                                "(CI=true: the sandbox must work in CI; run `make sandbox`)")
            statuses = (P, P, P, P, M)  # without private files the theft works: said in output
        for number, status in enumerate(statuses, 1):
            row = rows[(student, f"q{number}")]
            if row.status != status:
                problems.append(f"{student} q{number}: {row.status} ({row.message}), "
                                f"expected {status}")
        for question, phrase in phrases.items():
            if phrase not in rows[(student, question)].message:
                problems.append(f"{student} {question}: {rows[(student, question)].message!r} "
                                f"lacks {phrase!r}")
    assert not problems, "\n".join(problems)


def test_csv_has_the_contract_columns_and_consistent_points(batch):
    _, out, _ = batch
    header = (out / "grades.csv").read_text().splitlines()[0]
    assert header == ",".join(COLUMNS)
    rows = read_csv(out / "grades.csv")
    assert len(rows) == 5 * len(EXPECTED)
    for row in rows:
        assert row.points == (row.max_points if row.status == "passed" else 0)
    assert {r.student for r in rows} == set(EXPECTED)


def test_feedback_exists_and_never_quotes_hidden_tests(batch):
    _, out, _ = batch
    hidden = [line.strip() for cell in load_source(SOURCE).cells
              for line in cell.hidden.splitlines() if len(line.strip()) >= 12]
    assert hidden
    texts = {student: (out / "feedback" / student / "00_warmup.md").read_text()
             for student in EXPECTED}
    texts["csv"] = (out / "grades.csv").read_text()
    for name, text in texts.items():
        for line in hidden:
            assert line not in text, f"{name} feedback quotes hidden test code: {line}"
    assert "Automatically graded: 6 of 6 points" in texts["correct"]
    assert "A reshape regroups" in texts["correct"]  # the hand-graded answer is quoted


def test_no_process_or_scratch_folder_outlives_the_run(batch):
    _, _, workroot = batch
    assert _still_running(workroot) == []
    assert list(workroot.iterdir()) == []


def test_the_process_scan_finds_a_process_of_this_run(tmp_path):
    """The scan above can fail: a process with the run's marker in its environment is found."""
    workroot = tmp_path / f"tmp-{uuid.uuid4().hex}"
    child = subprocess.Popen(["sleep", "30"], env={**os.environ, "HOME": str(workroot / "k")})
    try:
        assert any(line.startswith(f"{child.pid}:") for line in _grader_processes(workroot))
        assert _grader_processes(tmp_path / "other") == []
    finally:
        child.kill()
        child.wait()


def test_bubblewrap_gives_every_protection(batch):
    summary, _, _ = batch
    if summary.isolation.mechanism != "bubblewrap":
        unavailable(f"isolation here is {summary.isolation.mechanism}, not bubblewrap")
    assert summary.isolation.off() == ([] if os.geteuid() == 0 else ["separate user"])

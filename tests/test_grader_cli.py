"""The grader's command line: options, exit codes, resuming, shards and combining."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from coursekit.grade import cli
from coursekit.grade.results import StateStore, read_csv

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "submissions"
FAST = ["--cell-timeout", "20", "--timeout", "60", "--memory-mb", "1024", "--quiet"]


@pytest.fixture
def classroom(tmp_path):
    """Three students: all right, partly right, untouched."""
    for student in ("correct", "partial", "untouched"):
        shutil.copytree(FIXTURES / student, tmp_path / "subs" / student)
    (tmp_path / "src").mkdir()  # the warm-up only, whatever else solutions/ holds
    shutil.copy(ROOT / "solutions" / "00_warmup.ipynb", tmp_path / "src")
    return tmp_path


def _grade(root, *extra):
    source = [] if "--source" in extra else ["--source", str(root / "src")]
    return cli.main([str(root / "subs"), "--out", str(root / "out" / "grades.csv"), *FAST,
                     *source, *extra])


def test_grades_then_resumes_without_regrading(classroom, capsys):
    assert _grade(classroom, "--feedback", str(classroom / "fb"), "--jobs", "2") == 0
    first = capsys.readouterr().out
    assert "graded 3 student(s), 0 kept" in first and "isolation:" in first
    rows = read_csv(classroom / "out" / "grades.csv")
    assert len(rows) == 15 and {r.status for r in rows} >= {"passed", "failed", "manual"}
    assert sorted(p.name for p in (classroom / "fb").iterdir()) == ["correct", "partial",
                                                                   "untouched"]
    # Nothing changed: nothing is run again (a state file per student says it is done).
    assert _grade(classroom) == 0
    assert "graded 0 student(s), 3 kept" in capsys.readouterr().out
    assert read_csv(classroom / "out" / "grades.csv") == rows
    # A student resubmits: only that student is graded again.
    notebook = classroom / "subs" / "untouched" / "00_warmup.ipynb"
    shutil.copy(FIXTURES / "correct" / "00_warmup.ipynb", notebook)
    assert _grade(classroom) == 0
    assert "graded 1 student(s), 2 kept" in capsys.readouterr().out
    statuses = {r.question: r.status for r in read_csv(classroom / "out" / "grades.csv")
                if r.student == "untouched"}
    assert statuses["q1"] == "passed"


def test_an_interrupted_run_resumes_where_it_stopped(classroom, monkeypatch, capsys):
    saved = StateStore.save_student
    calls = []

    def save_then_interrupt(self, *args, **kw):
        saved(self, *args, **kw)
        calls.append(args[0])
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C right after the first student was saved

    monkeypatch.setattr(StateStore, "save_student", save_then_interrupt)
    workroot = classroom / "tmp"
    workroot.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(workroot))  # where the kernels' folders go
    assert _grade(classroom, "--jobs", "1") == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert _kernels_left(workroot) == []  # the pool and its kernels were stopped
    assert list(workroot.iterdir()) == []
    monkeypatch.setattr(StateStore, "save_student", saved)
    assert _grade(classroom, "--jobs", "2") == 0
    assert "graded 2 student(s), 1 kept" in capsys.readouterr().out
    assert len(read_csv(classroom / "out" / "grades.csv")) == 15


def _kernels_left(workroot: Path) -> list[str]:
    time.sleep(0.5)  # killed processes may take a moment to be reaped
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if str(workroot).encode() in (entry / "environ").read_bytes():
                found.append(entry.name)
        except OSError:
            continue
    return found


def test_odd_folder_layouts(classroom, capsys):
    subs = classroom / "subs"
    nested = subs / "nested" / "download" / "week1"
    nested.mkdir(parents=True)
    shutil.copy(FIXTURES / "correct" / "00_warmup.ipynb", nested)
    for copy in ("a", "b"):
        (subs / "twice" / copy).mkdir(parents=True)
        shutil.copy(FIXTURES / "correct" / "00_warmup.ipynb", subs / "twice" / copy)
    (subs / "linked_notebook").mkdir()
    (subs / "linked_notebook" / "00_warmup.ipynb").symlink_to(ROOT / "solutions" /
                                                               "00_warmup.ipynb")
    (subs / "linked_folder").symlink_to(ROOT / "solutions")
    assert _grade(classroom, "--feedback", str(classroom / "fb")) == 0
    rows = {(r.student, r.question): r for r in read_csv(classroom / "out" / "grades.csv")}
    assert rows["nested", "q1"].status == "passed"
    assert "subfolder download/week1" in (classroom / "fb" / "nested" / "00_warmup.md").read_text()
    assert rows["twice", "q1"].status == "invalid" and "2 copies" in rows["twice", "q1"].message
    assert rows["linked_notebook", "q1"].status == "invalid"
    assert "symbolic link" in rows["linked_notebook", "q1"].message
    assert rows["linked_folder", "q1"].status == "invalid"


def test_shards_combine_into_the_whole_class(classroom, capsys):
    outs = []
    for shard in ("1/2", "2/2"):
        out = classroom / f"shard{shard[0]}.csv"
        assert cli.main([str(classroom / "subs"), "--out", str(out), "--shard", shard,
                         "--source", str(classroom / "src"), *FAST]) == 0
        outs.append(out)
    students = [{r.student for r in read_csv(out)} for out in outs]
    assert students == [{"correct", "untouched"}, {"partial"}]
    assert cli.main(["combine", *map(str, outs), "--out", str(classroom / "all.csv")]) == 0
    assert "3 students, 15 rows" in capsys.readouterr().out
    assert [r.student for r in read_csv(classroom / "all.csv")][::5] == \
        ["correct", "partial", "untouched"]


@pytest.mark.parametrize("args, message", [
    (["nowhere", "--out", "g.csv"], "does not exist"),
    (["{subs}", "--out", "{subs}/g.csv"], "inside the submissions folder"),
    (["{subs}", "--out", "{tmp}"], "is a folder"),
    (["{subs}", "--out", "g.csv", "--source", "{tmp}/none"], "does not exist"),
])
def test_instructor_errors_exit_2_with_a_message(classroom, capsys, args, message):
    args = [a.format(subs=classroom / "subs", tmp=classroom) for a in args]
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--shard", "3/2"], ["--shard", "x"], ["--jobs", "0"],
                                  ["--memory-mb", "-5"], ["--isolation", "docker"]])
def test_bad_options_exit_2(classroom, args):
    with pytest.raises(SystemExit) as stop:
        _grade(classroom, *args)
    assert stop.value.code == 2


def test_a_broken_reference_solution_exits_3_and_keeps_nothing(classroom, capsys):
    source = nbformat.read(ROOT / "solutions" / "00_warmup.ipynb", as_version=4)
    for cell in source.cells:
        if cell.get("id") == "q3-answer":
            cell.source = cell.source.replace("56 * 56", "1 / 0")
    (classroom / "broken").mkdir()
    nbformat.write(source, classroom / "broken" / "00_warmup.ipynb")
    assert _grade(classroom, "--source", str(classroom / "broken")) == 3
    err = capsys.readouterr()
    assert "reference solution fails its own tests" in err.out + err.err
    assert "ZeroDivisionError" in err.out + err.err
    rows = read_csv(classroom / "out" / "grades.csv")
    assert {r.status for r in rows} == {"error"}
    assert not list((classroom / "out" / "grades.state" / "students").glob("*.json"))


def test_python_m_utils_grade_end_to_end(classroom):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-m", "coursekit.grade", str(classroom / "subs"), "--out",
                           str(classroom / "g.csv"), "--jobs", "2", "--source",
                           str(classroom / "src"), *FAST],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "graded 3 student(s)" in done.stdout
    assert len(read_csv(classroom / "g.csv")) == 15

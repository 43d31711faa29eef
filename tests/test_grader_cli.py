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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# -- options reach the run; the other subcommands ---------------------------------------------------
def test_every_option_reaches_the_grading_run(classroom, monkeypatch, capsys):
    """The CLI hands each option to the run unchanged (no kernel is started here)."""
    from coursekit.grade import batch
    from coursekit.grade.sandbox import detect_isolation

    seen = []

    def fake_grade(options, log=print):
        seen.append(options)
        return batch.Summary(detect_isolation("none"), students=[])

    monkeypatch.setattr(batch, "grade", fake_grade)
    out = classroom / "g.csv"
    assert cli.main([str(classroom / "subs"), "--out", str(out), "--isolation", "unshare",
                     "--cell-timeout", "7.5", "--timeout", "33", "--memory-mb", "1500",
                     "--jobs", "3", "--shard", "2/3", "--source", str(classroom / "src"),
                     "--state", str(classroom / "st"), "--feedback", str(classroom / "fb"),
                     "--quiet"]) == 0
    [options] = seen
    assert options.isolation == "unshare"
    assert (options.limits.cell_timeout, options.limits.notebook_timeout,
            options.limits.memory_mb) == (7.5, 33, 1500)
    assert (options.jobs, options.shard, options.progress) == (3, (2, 3), False)
    assert (options.source_dir, options.state, options.feedback, options.out) == \
        (classroom / "src", classroom / "st", classroom / "fb", out)
    # without --state the state folder sits next to --out; without --isolation: auto
    assert cli.main([str(classroom / "subs"), "--out", str(out)]) == 0
    assert seen[1].state == classroom / "g.state" and seen[1].isolation == "auto"
    assert seen[1].progress is True
    capsys.readouterr()


def test_isolation_subcommand_describes_what_this_machine_offers(capsys):
    from coursekit.grade.sandbox import detect_isolation

    assert cli.main(["isolation"]) == 0
    text = capsys.readouterr().out.strip()
    best = detect_isolation("auto")
    assert text == best.describe()
    assert text.startswith(f"isolation: {best.mechanism}")
    for protection in best.off():
        assert protection in text


def test_combine_exits_2_on_conflicting_shards(tmp_path, capsys):
    from coursekit.grade.results import Row, write_csv

    write_csv([Row("ann", "n.ipynb", "q1", 2, 2, "passed", "")], tmp_path / "a.csv")
    write_csv([Row("ann", "n.ipynb", "q1", 0, 2, "failed", "wrong value")], tmp_path / "b.csv")
    assert cli.main(["combine", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"),
                     "--out", str(tmp_path / "all.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "ann/n.ipynb/q1 differs" in err
    assert not (tmp_path / "all.csv").exists()
    (tmp_path / "junk.csv").write_text("name,score\n")
    assert cli.main(["combine", str(tmp_path / "junk.csv"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "not a grades CSV" in capsys.readouterr().err


@pytest.mark.slow
def test_limits_and_isolation_reach_the_kernel(classroom, capsys):
    """A submission reports what its kernel sees through an error message: the memory limit,
    the user (``--isolation none`` runs as the grader's own user) and a stopped endless loop."""
    nb = nbformat.read(FIXTURES / "correct" / "00_warmup.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.get("id") == "q2-answer":
            cell.source = "while True:\n    pass"
        if cell.get("id") == "q3-answer":
            cell.source = ("import os, resource\nraise RuntimeError(f'AS={resource.getrlimit("
                           "resource.RLIMIT_AS)[0] >> 20} uid={os.getuid()}')")
    shutil.rmtree(classroom / "subs")
    (classroom / "subs" / "looker").mkdir(parents=True)
    nbformat.write(nb, classroom / "subs" / "looker" / "00_warmup.ipynb")
    assert _grade(classroom, "--isolation", "none", "--memory-mb", "1536",
                  "--cell-timeout", "3") == 0
    assert "isolation: none" in capsys.readouterr().out
    rows = {r.question: r for r in read_csv(classroom / "out" / "grades.csv")}
    assert rows["q1"].status == "passed"
    assert rows["q2"].status == "timeout" and "cell time limit (3 s)" in rows["q2"].message
    assert rows["q3"].status == "error"
    assert f"AS=1536 uid={os.geteuid()}" in rows["q3"].message


@pytest.mark.slow
def test_state_option_and_regrading_when_limits_or_source_change(classroom, capsys):
    state = classroom / "my-state"
    assert _grade(classroom, "--state", str(state)) == 0
    assert "graded 3 student(s), 0 kept" in capsys.readouterr().out
    assert sorted(p.name for p in (state / "students").glob("*.json")) == \
        ["correct.json", "partial.json", "untouched.json"]
    assert not (classroom / "out" / "grades.state").exists()  # the default was not used
    assert _grade(classroom, "--state", str(state)) == 0
    assert "graded 0 student(s), 3 kept" in capsys.readouterr().out
    # without --state the default folder is empty: everyone is graded again
    assert _grade(classroom) == 0
    assert "graded 3 student(s), 0 kept" in capsys.readouterr().out
    # other limits: every grade may differ, so every student is graded again
    assert _grade(classroom, "--state", str(state), "--memory-mb", "1100") == 0
    assert "graded 3 student(s), 0 kept" in capsys.readouterr().out
    # an edited source (answer key, tests): graded again, even with the same submissions
    source = classroom / "src" / "00_warmup.ipynb"
    nb = nbformat.read(source, as_version=4)
    [test] = [c for c in nb.cells if c.get("id") == "q1-test"]
    test.source = "# reviewed\n" + test.source
    nbformat.write(nb, source)
    assert _grade(classroom, "--state", str(state), "--memory-mb", "1100") == 0
    assert "graded 3 student(s), 0 kept" in capsys.readouterr().out
    assert _grade(classroom, "--state", str(state), "--memory-mb", "1100") == 0
    assert "graded 0 student(s), 3 kept" in capsys.readouterr().out

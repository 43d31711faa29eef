"""The nbgrader export (``coursekit.nbgrader_export``) against the real nbgrader.

nbgrader is installed from the package index into a throwaway environment layered on the
project's (a venv whose ``.pth`` adds the project venv's site-packages, so pip installs only
what is missing), cached under ``~/.cache/cnn-course/`` by nbgrader version. The warm-up is
exported, nbgrader's own ``generate_assignment`` and ``autograde`` (which registers unknown
students itself: ``Autograde.create_student`` is on by default) run on a perfect, an untouched
and a half-right submission (the grader's fixtures, carried into the released notebook), and
nbgrader's per-question verdicts must equal our grader's.
"""

import csv
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from _ci import unavailable

from coursekit.grade.batch import Options, grade
from coursekit.grade.runner import Limits
from coursekit.grade.source import load_source, make_exercise
from coursekit.nbgrader_export import (
    CHECKER_NAME,
    EXPECTED_ENV,
    checker_module,
    expected_path,
    export,
    grade_ids,
)

pytestmark = pytest.mark.slow

NBGRADER_VERSION = "0.9.6"
ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "solutions" / "00_warmup.ipynb"
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "submissions"
STUDENTS = ("correct", "untouched", "partial")
ASSIGNMENT = "00_warmup"
# what each student must get, per auto-graded question (a test that cannot pass trivially)
PASSED = {"correct": {"q1", "q2", "q3", "q4"}, "untouched": set(), "partial": {"q1"}}

_GRADES_SCRIPT = """
import json, sys
from nbgrader.api import Gradebook
out = {}
with Gradebook("sqlite:///gradebook.db") as gb:
    notebook = gb.find_notebook(sys.argv[1], sys.argv[1])
    for student in sys.argv[2:]:
        for cell in notebook.grade_cells:
            g = gb.find_grade(cell.name, sys.argv[1], sys.argv[1], student)
            out.setdefault(student, {})[cell.name] = {
                "auto": g.auto_score, "max": g.max_score, "manual": bool(g.needs_manual_grade)}
print(json.dumps(out))
"""


def _env_dir() -> Path:
    project = sysconfig.get_paths()["purelib"]
    key = hashlib.sha256(f"{project}\n{sys.version}".encode()).hexdigest()[:10]
    return Path.home() / ".cache" / "cnn-course" / f"nbgrader-{NBGRADER_VERSION}-{key}"


def _build_env(env: Path) -> None:
    """A venv over the project venv (``site.addsitedir``, so its ``.pth`` files, the editable
    ``utils`` included, work too) plus nbgrader and whatever of its dependencies is missing."""
    shutil.rmtree(env, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    purelib = subprocess.run([env / "bin" / "python", "-c", "import sysconfig; print("
                              "sysconfig.get_paths()['purelib'])"], check=True,
                             capture_output=True, text=True).stdout.strip()
    project = sysconfig.get_paths()["purelib"]
    Path(purelib, "_cnn_course_project.pth").write_text(
        f"import site; site.addsitedir({project!r})\n")
    result = subprocess.run([env / "bin" / "python", "-m", "pip", "install", "-q",
                             "--disable-pip-version-check", f"nbgrader=={NBGRADER_VERSION}"],
                            capture_output=True, text=True)
    if result.returncode:
        unavailable(f"pip install nbgrader=={NBGRADER_VERSION} failed (is the package index "
                    f"reachable?): {result.stderr[-1500:]}")
    (env / "COMPLETE").write_text(NBGRADER_VERSION)


@pytest.fixture(scope="module")
def nbgrader_env() -> Path:
    """The cached throwaway environment (built on first use, under a lock)."""
    env = _env_dir()
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (env / "COMPLETE").is_file():
            _build_env(env)
    version = subprocess.run([env / "bin" / "nbgrader", "--version"], capture_output=True,
                             text=True)
    assert f"nbgrader version {NBGRADER_VERSION}" in version.stdout, \
        f"the cached environment {env} is broken (delete it): {version.stdout}{version.stderr}"
    return env


def _start(env: Path, course: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """Start ``nbgrader ARGS`` in the course folder (it runs while the caller works on)."""
    environ = dict(os.environ, PATH=f"{env / 'bin'}:{os.environ['PATH']}",
                   JUPYTER_CONFIG_DIR=str(course / ".jupyter-config"))
    process = subprocess.Popen([str(env / "bin" / "nbgrader"), *args], cwd=course, env=environ,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, " ".join(args)


def _finish(started: tuple[subprocess.Popen, str]) -> str:
    process, command = started
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, f"nbgrader {command} failed:\n{output[-6000:]}"
    return output


def _answers(fixture: nbformat.NotebookNode) -> dict[tuple[str, str], list[str]]:
    """A fixture's answers by (question, kind), in order (our ``grade`` metadata)."""
    found: dict[tuple[str, str], list[str]] = {}
    for cell in fixture.cells:
        meta = cell.metadata.get("grade") or {}
        if meta.get("kind") in ("solution", "manual"):
            found.setdefault((meta["id"], meta["kind"]), []).append(cell.source)
    return found


def _submission(release: nbformat.NotebookNode, fixture: nbformat.NotebookNode,
                source) -> nbformat.NotebookNode:
    """The released notebook with the fixture student's answers typed into its answer cells."""
    by_gid = {gid: source.cells[index] for index, gid in grade_ids(source).items()}
    answers = _answers(fixture)
    taken: dict[tuple[str, str], int] = {}
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            continue
        info = by_gid[meta["grade_id"]]
        key = (info.question, info.role)
        number = taken.get(key, 0)
        taken[key] = number + 1
        if number < len(answers.get(key, [])):
            cell.source = answers[key][number]
    return nb


def _our_grades(tmp: Path) -> dict[str, dict[str, tuple[str, str]]]:
    submissions, src_dir = tmp / "ours", tmp / "src"
    src_dir.mkdir()
    shutil.copy(SOURCE, src_dir)
    for student in STUDENTS:
        shutil.copytree(FIXTURES / student, submissions / student)
    out = tmp / "grades.csv"
    grade(Options(submissions=submissions, out=out, source_dir=src_dir, isolation="none",
                  state_dir=tmp / "grader-state", progress=False,
                  limits=Limits(cell_timeout=30, notebook_timeout=120, memory_mb=2048)),
          log=lambda *_: None)
    rows: dict[str, dict[str, tuple[str, str]]] = {}
    with open(out, newline="") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["student"], {})[row["question"]] = (row["status"],
                                                                    row["message"])
    return rows


@pytest.fixture(scope="module")
def run(nbgrader_env, tmp_path_factory):
    """The export, then nbgrader's generate_assignment and our grader side by side, then
    nbgrader's autograde on the same three submissions."""
    tmp = tmp_path_factory.mktemp("nbgrader")
    source = load_source(SOURCE)
    course = tmp / "course"
    export([source], course, state_dir=tmp / "state", log=lambda *_: None)
    generating = _start(nbgrader_env, course, "generate_assignment", ASSIGNMENT)
    ours = _our_grades(tmp)  # meanwhile
    _finish(generating)
    release = nbformat.read(course / "release" / ASSIGNMENT / SOURCE.name, as_version=4)
    for student in STUDENTS:
        fixture = nbformat.read(FIXTURES / student / SOURCE.name, as_version=4)
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(_submission(release, fixture, source), folder / SOURCE.name)
    _finish(_start(nbgrader_env, course, "autograde", ASSIGNMENT))
    script = subprocess.run([nbgrader_env / "bin" / "python", "-c", _GRADES_SCRIPT, ASSIGNMENT,
                             *STUDENTS], cwd=course, capture_output=True, text=True, check=True)
    return {"ours": ours, "theirs": json.loads(script.stdout), "course": course,
            "source": source, "state": tmp / "state"}


def test_release_holds_no_expected_values_and_no_rubric(run):
    course = run["course"]
    expected = expected_path(course, ASSIGNMENT, SOURCE.name)
    arrays = [p["value"]["__ndarray__"][-60:] for probes in json.loads(expected.read_text())
              .values() for p in probes if isinstance(p.get("value"), dict)]
    assert len(arrays) == 5, "the warm-up probes five arrays"
    exported = (course / "source" / ASSIGNMENT / SOURCE.name).read_text()
    secrets = ["Rubric for q5", "says a reshape keeps the numbers", "np.transpose(x, (0, 2, 3, 1))",
               "_ProbeCheck("]
    assert all(secret in exported for secret in secrets), "the instructor version lacks a part"
    released = {p.name: p.read_text() for p in (course / "release" / ASSIGNMENT).iterdir()}
    assert sorted(released) == sorted([SOURCE.name, CHECKER_NAME])
    for name, text in released.items():
        leaked = [secret for secret in secrets + arrays if secret in text]
        assert not leaked, f"the students' release {name} contains {leaked}"
    # what autograde leaves (and generate_feedback renders) holds no expected value either
    for path in (course / "autograded").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not [a for a in arrays if a in text], f"{path} shows expected values"


def test_release_equals_our_exercise(run):
    """nbgrader's release is, cell for cell, the learners' notebook our generator writes."""
    release = nbformat.read(run["course"] / "release" / ASSIGNMENT / SOURCE.name, as_version=4)
    ours = make_exercise(run["source"])
    assert [c.cell_type for c in release.cells] == [c.cell_type for c in ours.cells]
    for index, (theirs, mine) in enumerate(zip(release.cells, ours.cells)):
        assert theirs.source.rstrip() == mine.source.rstrip(), f"cell {index} differs"


def test_nbgrader_verdicts_equal_ours(run):
    ours, theirs = run["ours"], run["theirs"]
    for student in STUDENTS:
        passed = {q for q, (status, _) in ours[student].items() if status == "passed"}
        assert passed == PASSED[student], f"our grader on {student}: {ours[student]}"
        for question, (status, _) in ours[student].items():
            if status == "manual":
                continue
            cell = theirs[student][question]
            nbgrader_passed = cell["auto"] == cell["max"] > 0
            assert nbgrader_passed == (status == "passed"), \
                f"{student} {question}: ours {status}, nbgrader {cell['auto']}/{cell['max']}"


def test_nbgrader_says_why_like_ours(run):
    """nbgrader's autograded notebook shows our grader's reason for each failed question."""
    graded = nbformat.read(run["course"] / "autograded" / "partial" / ASSIGNMENT / SOURCE.name,
                           as_version=4)
    errors = {cell.metadata["nbgrader"]["grade_id"]: " ".join(" ".join(
        o.get("evalue", "") for o in cell.get("outputs", []) if o.output_type == "error").split())
        for cell in graded.cells if cell.metadata.get("nbgrader", {}).get("grade")}
    failed = {q: m for q, (status, m) in run["ours"]["partial"].items() if status == "failed"}
    assert any(m.startswith("wrong result: ") for m in failed.values()), \
        f"no question of the half-right submission fails on a hidden probe: {failed}"
    for question, message in failed.items():
        reason = message.removeprefix("public check failed: ")
        assert reason in errors[question], f"{question}: ours {message!r}, nbgrader {errors}"


def test_manual_question_registered_for_hand_grading(run):
    theirs = run["theirs"]
    points = {q.id: q.points for q in run["source"].questions}
    for student in STUDENTS:
        assert set(theirs[student]) == set(points), theirs[student]
        for question, cell in theirs[student].items():
            assert cell["max"] == points[question], (student, question, cell)
    assert theirs["correct"]["q5"]["manual"] is True  # written answer: waits for a person
    assert theirs["untouched"]["q5"] == {"auto": 0.0, "max": 1.0, "manual": False}


def test_checker_says_where_the_values_should_be(tmp_path, monkeypatch):
    """Outside the course folder the checker fails with where it looked, not with a guess."""
    (tmp_path / CHECKER_NAME).write_text(checker_module())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(EXPECTED_ENV, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    import coursekit_probes

    with pytest.raises(RuntimeError, match=f"coursekit_expected/a1/nb.json.*{EXPECTED_ENV}"):
        coursekit_probes.ProbeCheck("q1", "a1", "nb")
    folder = tmp_path / "course" / "coursekit_expected" / "a1"
    folder.mkdir(parents=True)
    (folder / "nb.json").write_text(json.dumps({"q1": [
        {"name": "x", "value": 1.0, "rtol": 1e-5, "atol": 1e-8}]}))
    monkeypatch.setenv(EXPECTED_ENV, str(tmp_path / "course"))
    check = coursekit_probes.ProbeCheck("q1", "a1", "nb")
    check("x", 1.0 + 1e-7)
    check.verify()
    check("x", 2.0)
    with pytest.raises(AssertionError, match="value 'x' was sent more than once"):
        check.verify()

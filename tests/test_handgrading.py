"""Hand grading end to end: a real grading run, sheets, a filled sheet merged, totals.

Three students of the warm-up (correct, partial, untouched) are graded once through the command
line; each test then works on its own copy of the grades and state, so the order of the tests
does not matter.
"""

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.grade import handgrading
from coursekit.grade.results import CsvError, read_csv
from coursekit.grade.source import SourceError, load_source, load_sources

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "submissions"
STUDENTS = ("correct", "partial", "untouched")
RUBRIC = [{"criterion": "says a reshape regroups values", "points": 0.5},
          {"criterion": "says a transpose moves axes", "points": 0.5}]

pytestmark = pytest.mark.slow


def _cli(*args, check=True):
    done = subprocess.run([sys.executable, "-m", "coursekit.grade", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A grading run of three students against a warm-up source whose q5 has a rubric."""
    base = tmp_path_factory.mktemp("hand")
    nb = nbformat.read(ROOT / "solutions" / "00_warmup.ipynb", as_version=4)
    manual = next(c for c in nb.cells if c.metadata.get("grade", {}).get("kind") == "manual")
    manual.metadata["grade"]["rubric"] = RUBRIC
    (base / "src").mkdir()
    nbformat.write(nb, base / "src" / "00_warmup.ipynb")
    (base / "subs").mkdir()
    for student in STUDENTS:
        shutil.copytree(FIXTURES / student, base / "subs" / student)
    _cli(base / "subs", "--out", base / "grades.csv", "--source", base / "src", "--jobs", "2",
         "--quiet", "--isolation", "none", "--cell-timeout", "20", "--feedback", base / "feedback")
    return base


@pytest.fixture
def run(graded, tmp_path):
    """A private copy of the graded run (grades CSV, state, source, submissions, feedback)."""
    for name in ("src", "subs", "grades.state", "feedback"):
        shutil.copytree(graded / name, tmp_path / name)
    shutil.copy(graded / "grades.csv", tmp_path / "grades.csv")
    return tmp_path


def _sheet(run) -> Path:
    _cli("sheets", run / "grades.csv", "--out", run / "sheets", "--source", run / "src")
    paths = sorted((run / "sheets").glob("*.csv"))
    assert [p.name for p in paths] == ["00_warmup__q5.csv"]
    return paths[0]


def _fill(path: Path, marks: dict[str, tuple[str, str, str]]) -> None:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    for row in rows[1:]:
        if row[1] in marks:
            row[5], row[6], row[7] = marks[row[1]]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue())


def _q5(path: Path) -> dict[str, tuple[float, str]]:
    return {r.student: (r.points, r.status) for r in read_csv(path) if r.question == "q5"}


def test_sheet_lists_every_answer_with_the_rubric(run):
    path = _sheet(run)
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0][5:] == ["c1: says a reshape regroups values (max 0.5)",
                           "c2: says a transpose moves axes (max 0.5)", "comment"]
    answers = {row[1]: row[4] for row in rows[1:]}
    assert set(answers) == set(STUDENTS)
    assert "A reshape regroups" in answers["correct"]  # the student's own words
    assert answers["untouched"] == ""                  # nothing written, still listed
    page = path.with_suffix(".html").read_text()
    assert "says a transpose moves axes" in page and "A reshape regroups" in page


def test_merge_fills_the_grades_and_is_idempotent(run):
    before = run / "grades.csv"
    assert {s for s, (p, st) in _q5(before).items() if st == "manual"} == set(STUDENTS)
    path = _sheet(run)
    _fill(path, {"correct": ("0.5", "0.5", "clear"), "partial": ("0.5", "0", "")})
    first = _cli("merge", path, "--out", before)
    assert "merged 2 hand score(s)" in first.stdout and "1 answer(s) still" in first.stdout
    after = _q5(before)
    assert after["correct"] == (1.0, "hand") and after["partial"] == (0.5, "hand")
    assert after["untouched"] == (0.0, "manual")
    text = before.read_text()
    _cli("merge", path, "--out", before)
    assert before.read_text() == text
    # the automatic rows are untouched by the merge
    auto = [r for r in read_csv(before) if r.question != "q5"]
    assert auto == [r for r in read_csv(run / "grades.csv") if r.question != "q5"]


def _feedback(run, student: str) -> str:
    return (run / "feedback" / student / "00_warmup.md").read_text()


def _row(text: str, question: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {question} "))


def test_merge_writes_the_hand_scores_into_the_feedback(run):
    before = {student: _feedback(run, student) for student in STUDENTS}
    assert all("to be graded by hand" in _row(text, "q5") for text in before.values())
    path = _sheet(run)
    _fill(path, {"correct": ("0.5", "0.5", "clear, both halves"), "partial": ("0.5", "0", "")})
    done = _cli("merge", path, "--out", run / "grades.csv", "--source", run / "src",
                "--feedback", run / "feedback")
    assert "(3 student(s))" in done.stdout
    correct, partial, untouched = (_feedback(run, student) for student in STUDENTS)
    assert "| 1 / 1 | graded by hand | clear, both halves |" in _row(correct, "q5")
    assert "**Graded by hand: 1 of 1 points.**" in correct and "A further" not in correct
    assert "**Total: 7 of 7 points.**" in correct  # 6 automatic + 1 by hand
    assert "| 0.5 / 1 | graded by hand |" in _row(partial, "q5")
    assert "Graded by hand" not in untouched and "Total" not in untouched
    assert "A further 1 point(s) are still to be graded by hand." in untouched
    assert "A reshape regroups" in correct  # the student's answer is still quoted
    for student, text in zip(STUDENTS, (correct, partial, untouched)):  # nothing else changed
        others = [line for line in text.splitlines() if not line.startswith(("| q5 ", "**", "A further"))]
        assert others == [line for line in before[student].splitlines()
                          if not line.startswith(("| q5 ", "**", "A further"))]
    grades = (run / "grades.csv").read_text()
    done = _cli("merge", path, "--out", run / "grades.csv", "--source", run / "nowhere",
                "--feedback", run / "feedback", check=False)
    assert done.returncode == 2 and "nowhere" in done.stderr
    (run / "other").mkdir()  # a course without the warm-up: refused before anything is written
    shutil.copy(run / "src" / "00_warmup.ipynb", run / "other" / "01_renamed.ipynb")
    _fill(path, {"partial": ("0", "0", "")})
    done = _cli("merge", path, "--out", run / "grades.csv", "--source", run / "other",
                "--feedback", run / "feedback", check=False)
    assert done.returncode == 2 and "mention 00_warmup.ipynb, which is not among the sources" in done.stderr
    assert (run / "grades.csv").read_text() == grades and _feedback(run, "partial") == partial


def test_regrading_keeps_hand_scores(run):
    path = _sheet(run)
    _fill(path, {"correct": ("0.5", "0.5", "")})
    _cli("merge", path, "--out", run / "grades.csv")  # the feedback is not rewritten here ...
    assert "to be graded by hand" in _row(_feedback(run, "correct"), "q5")
    grade = (run / "subs", "--out", run / "grades.csv", "--source", run / "src", "--quiet",
             "--isolation", "none", "--cell-timeout", "20", "--feedback", run / "feedback")
    _cli(*grade)  # ... but by the next grading run, resumed from the state
    assert "| 1 / 1 | graded by hand |" in _row(_feedback(run, "correct"), "q5")
    shutil.rmtree(run / "grades.state" / "students")  # force a full regrade of the auto part
    (run / "feedback" / "correct" / "00_warmup.md").unlink()
    _cli(*grade)
    assert _q5(run / "grades.csv")["correct"] == (1.0, "hand")
    assert "| 1 / 1 | graded by hand |" in _row(_feedback(run, "correct"), "q5")


@pytest.mark.parametrize("marks, message", [
    ({"correct": ("0.7", "0", "")}, "outside 0..0.5"),
    ({"correct": ("x", "0", "")}, "is not a number"),
    ({"correct": ("0.5", "", "")}, "fill every criterion or none"),
])
def test_bad_scores_change_nothing(run, marks, message):
    path = _sheet(run)
    _fill(path, marks)
    grades = (run / "grades.csv").read_bytes()
    done = _cli("merge", path, "--out", run / "grades.csv", check=False)
    assert done.returncode == 2 and message in done.stderr
    assert (run / "grades.csv").read_bytes() == grades
    assert not (run / "grades.state" / "hand" / "scores.json").exists()


def test_unknown_student_and_foreign_sheet_are_refused(run, tmp_path_factory):
    path = _sheet(run)
    text = path.read_text()
    path.write_text(text.replace("\n" + text.splitlines()[1].split(",")[0] + ",correct,",
                                 "\n" + text.splitlines()[1].split(",")[0] + ",mallory,"))
    done = _cli("merge", path, "--out", run / "grades.csv", check=False)
    assert done.returncode == 2 and "unknown student 'mallory'" in done.stderr
    # a sheet written for another run (its state folder never saw this sheet id)
    path.write_text(text)
    other = tmp_path_factory.mktemp("other")
    shutil.copy(run / "grades.csv", other / "grades.csv")
    (other / "grades.state" / "hand").mkdir(parents=True)
    (other / "grades.state" / "hand" / "sheets.json").write_text(json.dumps({"abc": {}}))
    done = _cli("merge", path, "--out", other / "grades.csv", check=False)
    assert done.returncode == 2 and "was not written for this grading run" in done.stderr


def test_a_changed_answer_needs_a_new_score(run):
    path = _sheet(run)
    _fill(path, {"partial": ("0.5", "0.5", "")})
    _cli("merge", path, "--out", run / "grades.csv")
    answers = run / "grades.state" / "answers" / "partial.json"
    saved = json.loads(answers.read_text())
    saved["00_warmup.ipynb"]["q5"] = "a different answer"
    answers.write_text(json.dumps(saved))
    rows = handgrading.apply_scores(run / "grades.state", read_csv(run / "grades.csv"))
    row = next(r for r in rows if r.student == "partial" and r.question == "q5")
    assert (row.points, row.status) == (0.0, "manual") and "answer changed" in row.message


def test_totals_add_up_per_student(run):
    path = _sheet(run)
    _fill(path, {"correct": ("0.5", "0.5", "")})
    _cli("merge", path, "--out", run / "grades.csv")
    _cli("totals", run / "grades.csv", "--out", run / "totals.csv")
    table = {r["student"]: r for r in csv.DictReader(io.StringIO((run / "totals.csv").read_text()))}
    rows = read_csv(run / "grades.csv")
    for student in STUDENTS:
        mine = [r for r in rows if r.student == student]
        assert float(table[student]["00_warmup.ipynb"]) == sum(r.points for r in mine)
        assert float(table[student]["total"]) == sum(r.points for r in mine)
        assert float(table[student]["maximum"]) == sum(r.max_points for r in mine) == 7
    assert float(table["correct"]["total"]) == 7  # every point, the hand-graded one included
    assert table["correct"]["to_grade_by_hand"] == "0" and table["partial"]["to_grade_by_hand"] == "1"


def test_malformed_rubrics_are_refused(tmp_path):
    nb = nbformat.read(ROOT / "solutions" / "00_warmup.ipynb", as_version=4)
    manual = next(c for c in nb.cells if c.metadata.get("grade", {}).get("kind") == "manual")
    for rubric, message in ([[{"criterion": "x", "points": 0.3}], "add up to 0.3"],
                            [[{"criterion": "", "points": 1}], "is not"],
                            [[], "non-empty list"]):
        manual.metadata["grade"]["rubric"] = rubric
        nbformat.write(nb, tmp_path / "00_warmup.ipynb")
        with pytest.raises(SourceError, match=message):
            load_source(tmp_path / "00_warmup.ipynb")


def test_every_manual_question_of_the_course_has_a_valid_rubric():
    for source in load_sources(ROOT / "solutions"):
        for question in (q for q in source.questions if q.manual):
            rubric = handgrading.rubric_of(source, question.id)
            assert rubric[0].text != "overall", f"{source.name} {question.id} has no rubric"


def test_merge_without_sheets_says_what_to_run(tmp_path):
    (tmp_path / "grades.csv").write_text(",".join(("student",)) + "\n")
    with pytest.raises(CsvError, match="run `python -m coursekit.grade sheets` first"):
        handgrading.merge([tmp_path / "x.csv"], tmp_path / "grades.csv", tmp_path / "state")

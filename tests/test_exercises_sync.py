"""exercises/ is generated from solutions/: it must be up to date, every model answer must pass
its tests, and no untouched exercise may pass one (else the test checks nothing)."""

import shutil
from pathlib import Path

import nbformat
import pytest

from coursekit import exercises
from coursekit.grade.source import load_sources

ROOT = Path(__file__).resolve().parents[1]


def test_exercises_are_up_to_date_with_their_sources():
    assert exercises.stale() == [], "run `make exercises` (python -m coursekit.exercises build)"


def test_exercises_hold_no_solutions_or_hidden_tests():
    for source in load_sources(exercises.SOLUTIONS):
        text = (exercises.EXERCISES / source.name).read_text()
        assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
        assert "probe(" not in text
        for cell in source.cells:
            if cell.role == "test" and cell.hidden:
                assert cell.hidden.splitlines()[-1] not in text


@pytest.mark.slow  # runs every solution and exercise notebook in kernels
def test_model_answers_pass_and_untouched_exercises_fail():
    assert exercises.execution_problems() == []


@pytest.fixture
def sandbox_repo(tmp_path):
    """A copy of the warm-up source and its exercise, to break on purpose."""
    (tmp_path / "solutions").mkdir()
    shutil.copy(exercises.SOLUTIONS / "00_warmup.ipynb", tmp_path / "solutions")
    exercises.build(tmp_path / "solutions", tmp_path / "exercises")
    return tmp_path


def _edit(path: Path, cell_id: str, change) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            cell.source = change(cell.source)
    nbformat.write(nb, path)


def test_a_changed_source_makes_its_exercise_stale(sandbox_repo):
    src, out = sandbox_repo / "solutions", sandbox_repo / "exercises"
    assert exercises.stale(src, out) == []
    _edit(src / "00_warmup.ipynb", "q2-text", lambda text: text + "\n\nMore hints.")
    (out / "orphan.ipynb").write_text("{}")
    problems = exercises.stale(src, out)
    assert any("00_warmup.ipynb is stale" in p for p in problems)
    assert any("orphan.ipynb has no source" in p for p in problems)
    changed = exercises.build(src, out)
    assert sorted(p.name for p in changed) == ["00_warmup.ipynb", "orphan.ipynb"]
    assert exercises.stale(src, out) == []
    assert exercises.main(["check", "--solutions", str(src), "--exercises", str(out)]) == 0


def test_a_test_that_ignores_the_answer_is_caught(sandbox_repo):
    src = sandbox_repo / "solutions"
    # q4's hidden test probes a constant: the untouched exercise passes it too.
    _edit(src / "00_warmup.ipynb", "q4-test", lambda text: text.replace(
        'assert answer_q4 in {"a", "b", "c", "d"}, \'answer with one of "a", "b", "c" or "d"\'',
        "").replace('probe("answer_q4", answer_q4)', 'probe("answer_q4", "c")'))
    problems = exercises.execution_problems(src)
    assert problems == [("00_warmup.ipynb q4: the untouched exercise passes; its tests do not "
                         "depend on the learner's answer")]


def test_a_model_answer_that_fails_its_tests_is_caught(sandbox_repo):
    src = sandbox_repo / "solutions"
    _edit(src / "00_warmup.ipynb", "q3-answer", lambda text: text.replace("56 * 56", "3136.0"))
    [problem] = exercises.execution_problems(src)
    assert "reference solution fails its own tests" in problem
    assert "use plain integers" in problem

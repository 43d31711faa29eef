"""coursekit.grade.plan without a kernel: reading a submission defensively, finding it in a
student's folder, and the exact steps a source plus a submission become (fast; the mutation
run's selection for coursekit/grade/plan.py, with test_grader_units.py)."""

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from _notebooks import notebook

from coursekit.grade import plan as plan_mod
from coursekit.grade.plan import (
    HIDDEN_PREFIX,
    InvalidSubmission,
    Step,
    locate_notebook,
    read_submission,
    reference_plan,
    submission_plan,
)
from coursekit.grade.source import CODE_STUB, PROBE_FALLBACK, exercise_text, parse_notebook

SETUP = "import math\n" + PROBE_FALLBACK


def _source():
    """Set-up; q1 with two answer cells and a test; q2 a hand-graded code cell; q3 one answer."""
    cells = [
        ("code", SETUP, None),
        ("markdown", "## One", None),
        ("code", "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
         {"id": "q1", "kind": "solution"}),
        ("code", "def g(x):\n    ### BEGIN SOLUTION\n    return 3 * x\n    ### END SOLUTION",
         {"id": "q1", "kind": "solution"}),
        ("code", "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nprobe('f', f(3))\n### END HIDDEN TESTS",
         {"id": "q1", "kind": "test", "points": 2}),
        ("code", "### BEGIN SOLUTION\nnote = 'because'\n### END SOLUTION",
         {"id": "q2", "kind": "manual", "points": 1}),
        ("code", "h = None\n### BEGIN SOLUTION\nh = 4\n### END SOLUTION",
         {"id": "q3", "kind": "solution"}),
        ("code", "### BEGIN HIDDEN TESTS\nprobe('h', h)\n### END HIDDEN TESTS",
         {"id": "q3", "kind": "test", "points": 1}),
    ]
    nb = notebook(cells)
    return parse_notebook(nb, Path("hw.ipynb"))


SOURCE = _source()
STUB_F = "def f(x):\n    " + "\n    ".join(CODE_STUB)
STUB_G = "def g(x):\n    " + "\n    ".join(CODE_STUB)


def _exercise():
    return nbformat.reads(exercise_text(SOURCE), as_version=4)


def _steps(plan):
    return [(s.role, s.question, s.code, s.label) for s in plan.steps]


# -- the steps ------------------------------------------------------------------------------------------
def test_reference_plan_runs_the_model_answers():
    plan = reference_plan(SOURCE)
    assert _steps(plan) == [
        ("setup", None, SETUP, "set-up code cell 1"),
        ("answer", "q1", SOURCE.cells[2].source, "your answer cell for q1 (code cell 2)"),
        ("answer", "q1", SOURCE.cells[3].source, "your answer cell for q1 (code cell 3)"),
        ("public", "q1", "assert f(1) == 2", "the public check of q1"),
        ("hidden", "q1", HIDDEN_PREFIX + "probe('f', f(3))", "the hidden tests of q1"),
        ("manual", "q2", SOURCE.cells[5].source, "your answer cell for q2"),
        ("answer", "q3", SOURCE.cells[6].source, "your answer cell for q3"),
        ("hidden", "q3", HIDDEN_PREFIX + "probe('h', h)", "the hidden tests of q3"),  # no public part
    ]
    assert plan.notes == {} and plan.manual_answers == {} and plan.extra_cells == 0
    assert HIDDEN_PREFIX.startswith("probe = __grade_probe__")


def test_an_untouched_exercise_gets_its_stubs_and_no_notes():
    plan = submission_plan(SOURCE, _exercise())
    codes = [s.code for s in plan.steps]
    assert codes[1:3] == [STUB_F, STUB_G]
    assert plan.steps[5].code == SOURCE.cells[5].stub and plan.manual_answers == {}
    assert plan.notes == {} and plan.extra_cells == 0


def test_answers_by_metadata_in_order_and_by_id_without_it():
    sub = _exercise()
    sub.cells[2].source = "def f(x):\n    return x + x"
    sub.cells[3].source = "def g(x):\n    return x * 3"
    sub.cells[6].source = "h = 4"
    sub.cells[6].metadata.pop("grade")  # lost metadata: matched by its id (c6)
    codes = [s.code for s in submission_plan(SOURCE, sub).steps]
    assert codes[1:3] == ["def f(x):\n    return x + x", "def g(x):\n    return x * 3"]
    assert codes[6] == "h = 4"
    # two cells of q1 swapped: metadata fills q1's answer slots in the submission's order
    sub.cells[2], sub.cells[3] = sub.cells[3], sub.cells[2]
    codes = [s.code for s in submission_plan(SOURCE, sub).steps]
    assert codes[1:3] == ["def g(x):\n    return x * 3", "def f(x):\n    return x + x"]


def test_a_third_answer_cell_for_two_slots_runs_as_an_added_cell():
    sub = _exercise()
    extra = nbformat.v4.new_code_cell("def f(x):\n    return 0")
    extra.metadata["grade"] = {"id": "q1", "kind": "solution"}
    extra.id = "copy"
    sub.cells.insert(4, extra)
    plan = submission_plan(SOURCE, sub)
    assert plan.extra_cells == 1
    assert ("extra", None, "def f(x):\n    return 0", "your added cell 1") in _steps(plan)


def test_a_duplicated_cell_id_fills_only_an_empty_slot():
    sub = _exercise()
    for cell in sub.cells:
        cell.metadata.pop("grade", None)
    sub.cells[2].source = "def f(x):\n    return x + x"
    twin = nbformat.v4.new_code_cell("def f(x):\n    return -1")
    twin.id = "c2"  # the same id again (a copied cell)
    sub.cells.insert(3, twin)
    plan = submission_plan(SOURCE, sub)
    assert plan.steps[1].code == "def f(x):\n    return x + x"
    assert plan.extra_cells == 1 and plan.steps[2].role == "extra"
    assert plan.steps[2].code == "def f(x):\n    return -1"


def test_added_cells_run_after_the_cell_above_them_and_are_numbered():
    sub = _exercise()
    first = nbformat.v4.new_code_cell("import numpy as np")
    helper = nbformat.v4.new_code_cell("def helper(x):\n    return x")
    blank = nbformat.v4.new_code_cell("   \n")  # empty cells are not steps
    note = nbformat.v4.new_markdown_cell("my notes")
    sub.cells.insert(0, first)
    sub.cells.insert(4, helper)  # after c2 (f's answer), before c3
    sub.cells.insert(5, blank)
    sub.cells.insert(6, note)
    plan = submission_plan(SOURCE, sub)
    roles = [(s.role, s.label) for s in plan.steps]
    assert roles[0] == ("extra", "your added cell 1")  # before everything recognised
    assert roles[1] == ("setup", "set-up code cell 1")
    assert roles[3] == ("extra", "your added cell 2") and plan.steps[3].code == helper.source
    assert roles[4][0] == "answer" and plan.extra_cells == 2


def test_missing_answers_get_the_stub_and_a_note_per_cell():
    sub = _exercise()
    del sub.cells[3]  # g's answer cell (q1)
    del sub.cells[5]  # q3's answer cell (indices after the first deletion)
    plan = submission_plan(SOURCE, sub)
    assert plan.steps[2].code == STUB_G
    message = ("your answer cell for {} was missing (deleted, or its metadata was lost), "
               "so the unanswered stub was graded")
    assert plan.notes == {"q1": [message.format("q1")], "q3": [message.format("q3")]}


def test_tests_and_set_up_always_come_from_the_source():
    sub = _exercise()
    sub.cells[0].source = "import math\nprobe = lambda *a, **k: None"
    sub.cells[4].source = "pass"
    sub.cells[4].metadata.pop("grade")
    sub.cells[4].id = "renamed"
    plan = submission_plan(SOURCE, sub)
    assert plan.steps[0].code == SETUP
    public = [s for s in plan.steps if s.role == "public"]
    assert [(s.question, s.code) for s in public] == [("q1", "assert f(1) == 2")]
    assert plan.extra_cells == 1  # the renamed test cell is the student's own cell now


def test_hand_graded_answers_are_kept_only_when_written():
    sub = _exercise()
    sub.cells[5].source = "note = 'reshape regroups memory'"
    plan = submission_plan(SOURCE, sub)
    assert plan.manual_answers == {"q2": "note = 'reshape regroups memory'"}
    assert plan.steps[5] == Step("manual", "q2", "note = 'reshape regroups memory'",
                                 "your answer cell for q2")
    sub.cells[5].source = "  " + SOURCE.cells[5].stub + "\n"  # the stub, untouched
    assert submission_plan(SOURCE, sub).manual_answers == {}
    sub.cells[5].source = "   "
    assert submission_plan(SOURCE, sub).manual_answers == {}


def test_a_markdown_cell_cannot_answer_a_code_question():
    sub = _exercise()
    md = nbformat.v4.new_markdown_cell("h = 4")
    md.metadata["grade"] = {"id": "q3", "kind": "solution"}
    md.id = "c6"
    sub.cells[6] = md
    plan = submission_plan(SOURCE, sub)
    assert plan.steps[6].code == SOURCE.cells[6].stub


def test_a_test_cell_found_by_metadata_anchors_the_next_added_cell():
    sub = _exercise()
    sub.cells[4].id = "moved"  # the test cell keeps its metadata, loses its id
    added = nbformat.v4.new_code_cell("y = 1")
    sub.cells.insert(5, added)
    steps = submission_plan(SOURCE, sub).steps
    hidden_q1 = next(i for i, s in enumerate(steps) if s.role == "hidden" and s.question == "q1")
    assert steps[hidden_q1 + 1].role == "extra" and steps[hidden_q1 + 1].code == "y = 1"


def test_unknown_metadata_is_ignored():
    sub = _exercise()
    sub.cells[2].metadata["grade"] = "q1"  # not a dict
    sub.cells[3].metadata["grade"] = {"id": "q9", "kind": "solution"}
    sub.cells[2].source = "def f(x):\n    return x + x"
    codes = [s.code for s in submission_plan(SOURCE, sub).steps]
    assert codes[1] == "def f(x):\n    return x + x"  # found by its id instead
    assert codes[2] == STUB_G


# -- reading a submission -------------------------------------------------------------------------------
def _write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_a_valid_submission_is_read(tmp_path):
    data = json.loads(nbformat.writes(_exercise()))
    read = read_submission(_write(tmp_path / "n.ipynb", data))
    assert read.cells[2].source == SOURCE.cells[2].stub
    assert read.cells[2].metadata["grade"] == {"id": "q1", "kind": "solution"}
    data["cells"][1]["metadata"] = "oops"  # nbformat's validation refuses it
    with pytest.raises(InvalidSubmission, match=r"^the file is not a valid notebook \(ValidationError\)$"):
        read_submission(_write(tmp_path / "n.ipynb", data))


@pytest.mark.parametrize("content, message", [
    ("{oops", "the file is not valid JSON (Expecting property name enclosed in double quotes at line 1)"),
    ("[" * 100000 + "]" * 100000, "the file is not a notebook (JSON nested too deeply)"),
    ('{"a": 1}', "the file is JSON but not a Jupyter notebook (no cell list)"),
    ('{"cells": {}}', "the file is JSON but not a Jupyter notebook (no cell list)"),
    ("[1, 2]", "the file is JSON but not a Jupyter notebook (no cell list)"),
    (b"\xff\xfe{}", "the file is not UTF-8 text"),
])
def test_unreadable_files_say_why(tmp_path, content, message):
    path = tmp_path / "n.ipynb"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(InvalidSubmission, match=f"^{re.escape(message)}$"):
        read_submission(path)


def test_the_json_error_names_its_line(tmp_path):
    path = _write(tmp_path / "n.ipynb", '{\n"a": 1,\n}')
    with pytest.raises(InvalidSubmission, match=r"^the file is not valid JSON \(\w.* at line 3\)$"):
        read_submission(path)


def test_not_a_valid_notebook(tmp_path):
    path = _write(tmp_path / "n.ipynb", {"cells": [], "nbformat": "four"})
    with pytest.raises(InvalidSubmission, match=r"^the file is not a valid notebook \(\w+\)$"):
        read_submission(path)


@pytest.mark.filterwarnings("ignore:Cell is missing an id field")
@pytest.mark.parametrize("cell", [{"cell_type": "code", "source": 3, "metadata": {}, "outputs": [],
                                   "execution_count": None}])
def test_malformed_cells(tmp_path, cell):
    data = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    with pytest.raises(InvalidSubmission, match="^the notebook has malformed cells$"):
        read_submission(_write(tmp_path / "n.ipynb", data))


def test_links_folders_and_huge_files_are_refused(tmp_path, monkeypatch):
    good = _write(tmp_path / "good.ipynb", nbformat.writes(_exercise()))
    (tmp_path / "link.ipynb").symlink_to(good)
    with pytest.raises(InvalidSubmission, match="^the notebook is a symbolic link, not a file$"):
        read_submission(tmp_path / "link.ipynb")
    (tmp_path / "dir.ipynb").mkdir()
    with pytest.raises(InvalidSubmission, match="^the notebook is not a regular file$"):
        read_submission(tmp_path / "dir.ipynb")
    with pytest.raises(FileNotFoundError):
        read_submission(tmp_path / "none.ipynb")
    size = good.stat().st_size
    monkeypatch.setattr(plan_mod, "MAX_NOTEBOOK_BYTES", size)  # exactly at the limit: read
    assert len(read_submission(good).cells) == len(SOURCE.cells)
    monkeypatch.setattr(plan_mod, "MAX_NOTEBOOK_BYTES", size - 1)
    with pytest.raises(InvalidSubmission, match="^the notebook is larger than 0 MB$"):
        read_submission(good)
    monkeypatch.setattr(plan_mod, "MAX_NOTEBOOK_BYTES", 50 << 20)
    big = tmp_path / "big.ipynb"
    with open(big, "wb") as fh:
        fh.truncate((50 << 20) + 1)
    with pytest.raises(InvalidSubmission, match="^the notebook is larger than 50 MB$"):
        read_submission(big)


# -- finding the notebook -------------------------------------------------------------------------------
def test_locate_notebook_directly_nested_and_not_too_deep(tmp_path):
    name = "hw.ipynb"
    (tmp_path / "a").mkdir()
    (tmp_path / name).write_text("{}")
    (tmp_path / "a" / name).write_text("{}")
    assert locate_notebook(tmp_path, name) == [tmp_path / name]  # the direct one wins
    (tmp_path / name).unlink()
    (tmp_path / name).symlink_to(tmp_path / "nowhere")  # a dangling link still counts as there
    assert locate_notebook(tmp_path, name) == [tmp_path / name]
    (tmp_path / name).unlink()
    for sub in ("b/c", "b/c/d", "b/c/d/e", ".hidden", "z"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("b/c", "b/c/d", "b/c/d/e", ".hidden", "z"):
        (tmp_path / sub / name).write_text("{}")
    (tmp_path / "linked").symlink_to(tmp_path / "z")
    found = locate_notebook(tmp_path, name)
    # up to three folders deep, hidden and linked folders skipped, in sorted order
    assert found == [tmp_path / "a" / name, tmp_path / "b/c" / name, tmp_path / "b/c/d" / name,
                     tmp_path / "z" / name]
    assert locate_notebook(tmp_path, name, depth=1) == [tmp_path / "a" / name, tmp_path / "z" / name]
    assert locate_notebook(tmp_path, "other.ipynb") == []
    assert os.path.isdir(tmp_path / "linked")


def test_a_written_answer_counts_no_step_and_a_missing_code_answer_gets_its_stub():
    source = parse_notebook(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(SETUP, id="s"),
        nbformat.v4.new_markdown_cell("### BEGIN SOLUTION\nBecause.\n### END SOLUTION", id="w",
                                      metadata={"grade": {"id": "q1", "kind": "manual", "points": 1}}),
    ]), Path("w.ipynb"))
    assert [s.role for s in reference_plan(source).steps] == ["setup"]  # a written answer runs nothing
    sub = _exercise()
    del sub.cells[5]  # q2's hand-graded code cell
    assert submission_plan(SOURCE, sub).steps[5].code == SOURCE.cells[5].stub


def test_a_hand_graded_cell_is_found_by_its_metadata_when_its_id_changed():
    sub = _exercise()
    sub.cells[5].id = "renamed"
    sub.cells[5].source = "note = 'mine'"
    plan = submission_plan(SOURCE, sub)
    assert plan.manual_answers == {"q2": "note = 'mine'"}
    assert plan.steps[5].code == "note = 'mine'" and plan.extra_cells == 0


def test_a_link_swapped_in_after_the_check_is_not_followed(tmp_path, monkeypatch):
    """``lstat`` then ``open``: a file replaced by a link in between must not be read."""
    target = _write(tmp_path / "secret.ipynb", nbformat.writes(_exercise()))
    (tmp_path / "n.ipynb").symlink_to(target)
    monkeypatch.setattr(plan_mod.os, "lstat", os.stat)  # the check saw a regular file
    with pytest.raises(OSError):
        read_submission(tmp_path / "n.ipynb")


def test_metadata_naming_a_kind_the_question_does_not_have_is_ignored():
    sub = _exercise()
    sub.cells[2].metadata["grade"] = {"id": "q1", "kind": "manual"}  # q1 has no hand-graded cell
    sub.cells[2].source = "def f(x):\n    return x + x"
    plan = submission_plan(SOURCE, sub)
    assert plan.steps[1].code == "def f(x):\n    return x + x"  # found by its id instead

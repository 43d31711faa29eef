"""Unit tests of the grader's pure parts: probe values, source parsing, submission assembly, CSVs.

No kernel is started here (fast); the end-to-end behaviour is in test_grader.py.
"""

import base64
import io
import json
import os

import nbformat
import numpy as np
import pytest

from coursekit.grade import plan as plan_mod
from coursekit.grade.batch import shard_of
from coursekit.grade.results import CsvError, Row, combine, read_csv, write_csv
from coursekit.grade.source import (
    CODE_STUB,
    PROBE_FALLBACK,
    SourceError,
    exercise_text,
    parse_notebook,
)
from coursekit.grade.values import KERNEL_PROBE_CODE, ProbeFormatError, compare, decode


# -- probe values ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encode():
    namespace = {}
    exec(KERNEL_PROBE_CODE, namespace)
    return namespace["probe"].encode


@pytest.mark.parametrize("value", [
    None, True, 3, -2**60, 2.5, float("nan"), float("inf"), 1 + 2j, "text", [1, "a", None],
    (1, 2), {"a": 1, 2: [3.0]}, {1, 2, 3}, np.float32(1.5), np.int64(7), np.bool_(True),
    np.arange(12, dtype=np.float32).reshape(3, 4), np.array(["x", "yz"]), np.zeros((0, 3)),
])
def test_values_round_trip_through_json(encode, value):
    wire = json.loads(json.dumps(encode(value)))  # what travels in the display message
    decoded = decode(wire)
    assert compare(decode(json.loads(json.dumps(encode(value)))), decoded, 0, 0) is None


def test_decoded_values_keep_type_shape_dtype_and_precision(encode):
    def trip(value):
        return decode(json.loads(json.dumps(encode(value))))

    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    back = trip(array)
    assert back.dtype == np.float32 and np.array_equal(back, array)
    assert trip((1, 2)) == [1, 2]
    assert trip(2**70 + 1) == 2**70 + 1
    assert trip({"a": (1, 2)}) == {"a": [1, 2]}
    assert trip({1, 2}) == frozenset({1, 2})
    assert trip(np.float64(0.1)) == 0.1


def test_unsupported_values_are_refused_in_the_kernel(encode):
    with pytest.raises(TypeError, match="cannot probe"):
        encode(object())
    with pytest.raises(TypeError, match="objects"):
        encode(np.array([object()], dtype=object))


def test_decoding_never_unpickles():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    forged = {"__ndarray__": base64.b64encode(buffer.getvalue()).decode()}
    with pytest.raises(ProbeFormatError):
        decode(forged)
    for bad in ({"__pickle__": "x"}, {"a": 1, "b": 2}, {"__int__": "12x"}, {"__float__": "1e400"},
                {"__ndarray__": "not base64!"}):
        with pytest.raises(ProbeFormatError):
            decode(bad)


def test_compare_numbers_arrays_and_containers():
    a = np.linspace(0, 1, 10)
    assert compare(a, a + 1e-9, 1e-5, 1e-8) is None
    assert "values differ" in compare(a, a + 0.1, 1e-5, 1e-8)
    assert "shape (5, 2)" in compare(a, a.reshape(5, 2), 1e-5, 1e-8)
    assert compare(np.arange(4), [0, 1, 2, 3], 0, 0) is None  # a list compares as an array
    assert compare(3, 3.0, 1e-5, 0) is None
    assert compare(3, 4, 1e-5, 0) == "wrong value"
    assert compare(True, 1, 0, 0).startswith("expected a boolean")
    assert compare("c", "C", 0, 0) == "wrong value"
    assert compare([1, 2], [1, 2, 3], 0, 0).startswith("length 3")
    assert "missing key 'b'" in compare({"a": 1, "b": 2}, {"a": 1}, 0, 0)
    assert compare(frozenset({1, 2}), frozenset({2, 1}), 0, 0) is None
    assert compare(float("nan"), float("nan"), 0, 0) is None


def test_mismatch_messages_do_not_reveal_expected_values():
    secret = np.array([31415.0, 27182.0])
    message = compare(secret, np.zeros(2), 1e-5, 1e-8)
    assert "31415" not in message and "27182" not in message
    assert "31415" not in compare(31415, 1, 0, 0)
    assert "secret" not in compare("secret-answer", "guess", 0, 0)


# -- source notebooks -------------------------------------------------------------------------------
def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    for i, (kind, text, grade) in enumerate(cells):
        cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(text)
        cell.id = f"c{i}"
        if grade:
            cell.metadata["grade"] = grade
        nb.cells.append(cell)
    return nb


SETUP = ("code", "import math\n" + PROBE_FALLBACK, None)
ANSWER = ("code", "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
          {"id": "q1", "kind": "solution"})
TEST = ("code", ("assert f(1) == 2\n### BEGIN HIDDEN TESTS\nprobe('f(3)', f(3))\n"
                 "### END HIDDEN TESTS"), {"id": "q1", "kind": "test", "points": 2})


def _parse(*cells, setup=True):
    cells = (SETUP, *cells) if setup else cells
    return parse_notebook(_nb(*cells), __import__("pathlib").Path("x.ipynb"))


def test_a_valid_source_parses_and_splits():
    source = _parse(("markdown", "## Doubling", None), ANSWER, TEST)
    [question] = source.questions
    assert (question.id, question.points, question.manual, question.title) == \
        ("q1", 2.0, False, "Doubling")
    answer, test = source.cells[2], source.cells[3]
    assert answer.stub == "def f(x):\n    " + "\n    ".join(CODE_STUB)
    assert test.public == "assert f(1) == 2" and test.hidden == "probe('f(3)', f(3))"


@pytest.mark.parametrize("cells, message", [
    ((ANSWER, ("code", "assert f(1) == 2", {"id": "q1", "kind": "test", "points": 1})),
     "call no probe"),
    ((ANSWER, ("code", ("probe('x', f(1))\n### BEGIN HIDDEN TESTS\nprobe('y', 1)\n"
                        "### END HIDDEN TESTS"), {"id": "q1", "kind": "test", "points": 1})),
     "public part"),
    ((ANSWER, (TEST[0], TEST[1], {"id": "q1", "kind": "test"})), "points"),
    ((TEST,), "no answer cell"),
    ((("code", "x = 1\n### BEGIN SOLUTION\nx = 2", {"id": "q1", "kind": "solution"}), TEST),
     "never closed"),
    ((ANSWER,), "no test cell"),
    ((ANSWER, TEST, TEST), "already has"),
    ((("code", "### BEGIN SOLUTION\nx=1\n### END SOLUTION", None),), "belong in answer cells"),
    ((ANSWER, (TEST[0], TEST[1], {"id": "q1", "kind": "quiz", "points": 1})), "kind"),
    ((("code", "x = (", None), ANSWER, TEST), "syntax error"),
])
def test_authoring_mistakes_are_reported(cells, message):
    with pytest.raises(SourceError, match=message):
        _parse(*cells)


def test_solutions_must_define_a_fallback_probe_to_run_outside_the_grader():
    with pytest.raises(SourceError, match="no set-up cell above defines it"):
        _parse(("code", "import math", None), ANSWER, TEST, setup=False)


def test_exercise_has_stubs_no_hidden_tests_and_is_deterministic():
    source = _parse(ANSWER, TEST,
                    ("markdown", "### BEGIN SOLUTION\nModel answer\n### END SOLUTION",
                     {"id": "q2", "kind": "manual", "points": 1}))
    text = exercise_text(source)
    assert text == exercise_text(source)
    assert "HIDDEN" not in text and "probe" not in text and "2 * x" not in text
    assert "Model answer" not in text and "YOUR ANSWER HERE" in text
    nb = nbformat.reads(text, as_version=4)
    assert [c.id for c in nb.cells] == ["c0", "c1", "c2", "c3"]
    assert nb.cells[2].metadata["editable"] is False


# -- assembling a submission ------------------------------------------------------------------------
def _source_and_exercise():
    source = _parse(ANSWER, TEST)
    return source, nbformat.reads(exercise_text(source), as_version=4)


def test_answers_come_from_the_submission_and_tests_from_the_source():
    source, submission = _source_and_exercise()
    submission.cells[1].source = "def f(x):\n    return x + x"
    submission.cells[2].source = "pass  # the student emptied the test"
    steps = plan_mod.submission_plan(source, submission).steps
    assert [s.role for s in steps] == ["setup", "answer", "public", "hidden"]
    assert steps[1].code == "def f(x):\n    return x + x"
    assert steps[2].code == "assert f(1) == 2" and "probe('f(3)', f(3))" in steps[3].code


def test_deleted_answer_gets_the_stub_and_a_note():
    source, submission = _source_and_exercise()
    del submission.cells[1]
    plan = plan_mod.submission_plan(source, submission)
    assert "NotImplementedError" in plan.steps[1].code
    assert "missing" in plan.notes["q1"][0]


def test_lost_metadata_falls_back_to_cell_ids_and_extra_cells_keep_their_place():
    source, submission = _source_and_exercise()
    for cell in submission.cells:
        cell.metadata.pop("grade", None)
    submission.cells[1].source = "def f(x):\n    return helper(x)"
    submission.cells.insert(1, nbformat.v4.new_code_cell("def helper(x):\n    return 2 * x"))
    plan = plan_mod.submission_plan(source, submission)
    assert [s.role for s in plan.steps] == ["setup", "extra", "answer", "public", "hidden"]
    assert plan.extra_cells == 1 and "helper(x)" in plan.steps[2].code


@pytest.mark.parametrize("content, reason", [
    ("{oops", "not valid JSON"),
    ('{"a": 1}', "not a Jupyter notebook"),
    ("[1, 2]", "not a Jupyter notebook"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_unreadable_submissions_are_invalid(tmp_path, content, reason):
    path = tmp_path / "n.ipynb"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(plan_mod.InvalidSubmission, match=reason):
        plan_mod.read_submission(path)


def test_a_symlinked_submission_is_refused(tmp_path):
    target = tmp_path / "solution.ipynb"
    target.write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (tmp_path / "link.ipynb").symlink_to(target)
    with pytest.raises(plan_mod.InvalidSubmission, match="symbolic link"):
        plan_mod.read_submission(tmp_path / "link.ipynb")


# -- CSV files and shards ---------------------------------------------------------------------------
def test_csv_round_trip_and_combine(tmp_path):
    rows = [Row("ann", "n.ipynb", "q1", 2, 2, "passed", ""),
            Row("bob", "n.ipynb", "q1", 0, 2, "failed", 'wrong, "quoted"\nmessage')]
    write_csv(rows[:1], tmp_path / "a.csv")
    write_csv(rows[1:], tmp_path / "b.csv")
    assert read_csv(tmp_path / "b.csv") == rows[1:]
    assert combine([tmp_path / "b.csv", tmp_path / "a.csv"], tmp_path / "all.csv") == rows
    assert (tmp_path / "all.csv").read_text().splitlines()[0] == \
        "student,notebook,question,points,max_points,status,message"
    write_csv([Row("ann", "n.ipynb", "q1", 0, 2, "failed", "")], tmp_path / "c.csv")
    with pytest.raises(CsvError, match="differs"):
        combine([tmp_path / "a.csv", tmp_path / "c.csv"], tmp_path / "bad.csv")
    (tmp_path / "junk.csv").write_text("name,score\n")
    with pytest.raises(CsvError, match="not a grades CSV"):
        read_csv(tmp_path / "junk.csv")


def test_shards_partition_the_class_deterministically():
    students = [f"s{i:02d}" for i in range(11)]
    shards = [shard_of(students, (i, 3)) for i in (1, 2, 3)]
    assert sorted(s for shard in shards for s in shard) == students
    assert shards == [shard_of(students, (i, 3)) for i in (1, 2, 3)]
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_atomic_writes_leave_no_temporary_files_and_normal_permissions(tmp_path):
    from coursekit.grade.results import atomic_write

    atomic_write(tmp_path / "sub" / "f.txt", "one")
    atomic_write(tmp_path / "sub" / "f.txt", "two")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.txt"]
    assert (tmp_path / "sub" / "f.txt").read_text() == "two"
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "sub" / "f.txt").stat().st_mode & 0o777 == 0o666 & ~mask

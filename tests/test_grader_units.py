"""Unit tests of the grader's pure parts: probe values, source parsing, submission assembly, CSVs.

No kernel is started here (fast); the end-to-end behaviour is in test_grader.py.
"""

import base64
import io
import json
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from _notebooks import notebook

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


def _same(a, b) -> bool:
    """Strict equality written for these tests (not the grader's ``compare``): same type, and
    for arrays the same dtype, shape and values; NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(
            a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, float):
        return (np.isnan(a) and np.isnan(b)) or a == b
    if isinstance(a, complex):
        return _same(a.real, b.real) and _same(a.imag, b.imag)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


_ARRAY = np.arange(12, dtype=np.float32).reshape(3, 4)
# (value in the kernel, what the grader must decode): JSON has no tuples, sets or NumPy scalars,
# so tuples arrive as lists, sets as frozensets and NumPy scalars as Python numbers.
ROUND_TRIPS = [
    (None, None), (True, True), (3, 3), (-2**60, -2**60), (2**70 + 1, 2**70 + 1), (2.5, 2.5),
    (float("nan"), float("nan")), (float("inf"), float("inf")), (float("-inf"), float("-inf")),
    (1 + 2j, 1 + 2j), (complex(float("inf"), float("nan")), complex(float("inf"), float("nan"))),
    ("text", "text"), ([1, "a", None], [1, "a", None]), ((1, 2), [1, 2]),
    ({"a": 1, 2: [3.0]}, {"a": 1, 2: [3.0]}), ({"k": (1, 2)}, {"k": [1, 2]}),
    ({(1, 2): "t"}, {(1, 2): "t"}), ({1, 2, 3}, frozenset({1, 2, 3})),
    ({(1, "a")}, frozenset({(1, "a")})),
    (np.float32(1.5), 1.5), (np.float64(0.1), 0.1), (np.int64(7), 7), (np.bool_(True), True),
    (np.float64("nan"), float("nan")), (np.float32("-inf"), float("-inf")),
    (_ARRAY, _ARRAY.copy()), (np.array(["x", "yz"]), np.array(["x", "yz"])),
    (np.zeros((0, 3)), np.zeros((0, 3))),
    (np.array([np.nan, np.inf, -np.inf, 1.0]), np.array([np.nan, np.inf, -np.inf, 1.0])),
    (np.array([[True, False]]), np.array([[True, False]])),
    (np.arange(3, dtype=np.int16), np.arange(3, dtype=np.int16)),
]


@pytest.mark.parametrize("value, expected", ROUND_TRIPS, ids=[repr(v)[:30] for v, _ in ROUND_TRIPS])
def test_values_round_trip_through_json(encode, value, expected):
    wire = json.loads(json.dumps(encode(value), allow_nan=False))  # what the display message carries
    decoded = decode(wire)
    assert _same(decoded, expected), (value, decoded)


def test_nan_and_inf_survive_the_probe_and_are_compared_as_such(encode):
    def trip(value):
        return decode(json.loads(json.dumps(encode(value), allow_nan=False)))

    nan, inf = trip(float("nan")), trip(float("inf"))
    assert isinstance(nan, float) and np.isnan(nan)
    assert inf == float("inf") and trip(float("-inf")) == float("-inf")
    assert compare(float("nan"), nan, 0, 0) is None
    assert compare(float("nan"), 0.0, 1e-5, 1e-8) is not None  # a NaN answer is not 0.0
    assert compare(0.0, nan, 1e-5, 1e-8) is not None
    assert compare(float("inf"), inf, 1e-5, 1e-8) is None
    assert compare(float("inf"), 1e308, 1e-5, 1e-8) is not None
    assert compare(float("inf"), trip(float("-inf")), 1e-5, 1e-8) is not None
    array = trip(np.array([np.nan, np.inf, 2.0]))
    assert compare(np.array([np.nan, np.inf, 2.0]), array, 0, 0) is None
    assert compare(np.array([np.nan, np.inf, 2.0]), np.array([0.0, np.inf, 2.0]), 1e-5, 1e-8)
    assert compare(np.array([np.nan, np.inf, 2.0]), np.array([np.nan, 1e308, 2.0]), 1e-5, 1e-8)


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
    nb = notebook(cells)
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


# -- the resume fingerprint -------------------------------------------------------------------------
def test_fingerprint_follows_source_limits_and_submission(tmp_path):
    from coursekit.grade.batch import fingerprint
    from coursekit.grade.runner import Limits

    source = _parse(ANSWER, TEST)
    edited = _parse(ANSWER, (TEST[0], "# reviewed\n" + TEST[1], TEST[2]))
    source.path = edited.path = tmp_path / "x.ipynb"  # same name, other contents
    assert source.sha256 != edited.sha256
    folder = tmp_path / "ann"
    folder.mkdir()
    (folder / "x.ipynb").write_text(exercise_text(source))
    limits = Limits(cell_timeout=20, notebook_timeout=60, memory_mb=1024)
    base = fingerprint(folder, [source], limits)
    assert fingerprint(folder, [source], Limits(20, 60, 1024)) == base  # deterministic
    assert fingerprint(folder, [edited], limits) != base  # the answer key or its tests changed
    for other in (Limits(21, 60, 1024), Limits(20, 61, 1024), Limits(20, 60, 1025)):
        assert fingerprint(folder, [source], other) != base, other
    (folder / "x.ipynb").write_text(exercise_text(source) + " ")
    assert fingerprint(folder, [source], limits) != base  # the student resubmitted


# -- compare, case by case (the messages are what students read) ------------------------------------
_TEXT = np.array(["x", "yz"])
COMPARISONS = [
    # text arrays
    (_TEXT, np.array(["x", "yz"]), 0, 0, "", None),
    (_TEXT, ["x", "yz"], 0, 0, "", None),
    (_TEXT, np.array(["x", "y"]), 0, 0, "w", "wrong text values at w"),
    (_TEXT, np.array(["x"]), 0, 0, "", "expected an array of shape (2,), got an array of shape (1,)"),
    (_TEXT, np.array([1, 2]), 0, 0, "", "expected an array of shape (2,), got an array of shape (2,)"),
    (_TEXT, "x", 0, 0, "", "expected an array of shape (2,), got a string"),
    (_TEXT, ("x", "yz"), 0, 0, "", "expected an array of shape (2,), got tuple"),
    # numeric arrays
    (np.array([1.0, 2.0]), "ab", 0, 0, "", "expected an array of shape (2,), got a string"),
    (np.array([1.0]), ["x"], 0, 0, "", "expected an array of shape (1,), got a sequence of length 1"),
    (np.array([1.0, 2.0]), [[1], [2, 3]], 0, 0, "",
     "expected an array of shape (2,), got a sequence of length 2"),
    (np.array([None]), np.array([1.0]), 0, 0, "", "expected an array of shape (1,), got an array of shape (1,)"),
    (np.arange(3), [0, 1, 2], 0, 0, "", None),
    (np.arange(4), np.arange(4).reshape(2, 2), 0, 0, "r", "shape (2, 2) at r, expected shape (4,)"),
    (np.array([1.0, 0.0]), np.array([True, False]), 0, 0, "", "expected numbers"),
    (np.array([True, False]), np.array([1.0, 0.0]), 0, 0, "b", "expected booleans at b"),
    (np.array([True, False]), np.array([True, False]), 0, 0, "", None),
    (np.array([True, False]), np.array([True, True]), 0, 0, "", "1 of 2 values differ"),
    (np.array([1, 2, 3]), np.array([1, 2, 4]), 1.0, 1.0, "w", "1 of 3 values differ at w"),  # exact
    (np.array([1, 2, 3]), np.array([1.0, 2.0, 3.00001]), 1e-5, 0, "", None),  # a float answer
    (np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 3.5]), 0, 0.1, "",
     "2 of 3 values differ (largest difference 0.5; allowed 0.1 + 0 x |expected|)"),
    (np.array([100.0]), np.array([100.5]), 0.01, 0, "", None),
    (np.array([0.0]), np.array([0.05]), 0, 0.1, "", None),
    (np.array([1.0]), np.array([2.0]), 0, 0, "", "1 of 1 values differ (largest difference 1; "
                                                 "allowed 0 + 0 x |expected|)"),
    (np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), 0, 0, "", None),
    (np.array([np.nan, 1.0]), np.array([np.nan, 2.0]), 0, 0, "", "1 of 2 values differ (largest "
                                                                "difference 1; allowed 0 + 0 x |expected|)"),
    (np.array([np.nan, 1.0]), np.array([0.0, 1.0]), 0, 0, "", "1 of 2 values differ (largest "
                                                             "difference inf; allowed 0 + 0 x |expected|)"),
    (np.array([1.0]), np.array([1 + 1j]), 0, 0, "", "1 of 1 values differ (largest difference 1; "
                                                     "allowed 0 + 0 x |expected|)"),
    (np.array([1 + 1j]), np.array([1.0]), 0, 0, "", "1 of 1 values differ (largest difference 1; "
                                                     "allowed 0 + 0 x |expected|)"),
    (np.zeros((0, 3)), np.zeros((0, 3)), 0, 0, "", None),
    # booleans
    (True, np.bool_(True), 0, 0, "", None),
    (True, False, 0, 0, "q", "wrong value at q"),
    (True, 1, 0, 0, "", "expected a boolean, got a number"),
    (1, True, 0, 0, "", "expected a number, got a boolean"),
    # numbers
    (3, "3", 0, 0, "", "expected a number, got a string"),
    (3, 3, 0, 0, "", None),
    (3, 4, 1.0, 1.0, "", "wrong value"),  # integers are exact
    (3, 3.00001, 1e-5, 0, "", None),
    (2.0, 2.5, 0, 0.1, "", "wrong value (differs by 0.5)"),
    (2.0, 2.5, 0, 0.5, "", None),  # the bound itself passes
    (100.0, 100.5, 0.01, 0, "", None),
    (100.0, 101.5, 0.01, 0, "x", "wrong value at x (differs by 1.5)"),
    (1j, 2j, 0, 0, "", "wrong value (differs by 1)"),
    (1 + 1j, 1 + 1j, 0, 0, "", None),
    # strings and None
    ("a", "a", 0, 0, "", None),
    ("a", "b", 0, 0, "", "wrong value"),
    ("a", None, 0, 0, "", "expected a string, got None"),
    ("a", 3, 0, 0, "", "expected a string, got a number"),
    ("a", {}, 0, 0, "", "expected a string, got a dict"),
    ("a", frozenset(), 0, 0, "", "expected a string, got a set"),
    ("a", object(), 0, 0, "", "expected a string, got object"),
    (None, None, 0, 0, "", None),
    (None, "x", 0, 0, "n", "expected None at n, got a string"),
    # lists
    ([1, 2], [1, 2], 0, 0, "", None),
    ([1, 2], (1, 2), 0, 0, "", "expected a sequence of length 2, got tuple"),
    ([1, 2], [1, 3], 0, 0, "", "wrong value at [1]"),
    ([[1], [2]], [[1], [3]], 0, 0, "x", "wrong value at x[1][0]"),
    ([1.0], [1.05], 0, 0.1, "", None),
    ([100.0], [100.5], 0.01, 0, "", None),
    ([1, 2], [1, 2, 3], 0, 0, "", "length 3, expected length 2"),
    ([1, 2], [1], 0, 0, "l", "length 1 at l, expected length 2"),
    # dicts
    ({"a": 1}, [1], 0, 0, "", "expected a dict, got a sequence of length 1"),
    ({"a": 1, "b": 2}, {"a": 1}, 0, 0, "", "missing key 'b'"),
    ({"a": 1}, {"a": 1, "c": 3, "d": 4}, 0, 0, "", "unexpected key 'c'"),
    ({"a": [1, 2]}, {"a": [1, 3]}, 0, 0, "r", "wrong value at r['a'][1]"),
    ({"a": 1.0}, {"a": 1.05}, 0, 0.1, "", None),
    ({"a": 100.0}, {"a": 100.5}, 0.01, 0, "", None),
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}, 0, 0, "", None),
    # sets
    (frozenset({1, 2}), frozenset({2, 1}), 0, 0, "", None),
    (frozenset({1}), {1}, 0, 0, "", "expected a set, got set"),
    (frozenset({1, 2}), frozenset({1, 3}), 0, 0, "", "the set differs (2 items, expected 2)"),
    (frozenset({1}), frozenset({1, 2}), 0, 0, "s", "the set at s differs (2 items, expected 1)"),
    # anything else
    (object(), 1, 0, 0, "", "cannot compare object"),
    (object(), 1, 0, 0, "w", "cannot compare object at w"),
]


@pytest.mark.parametrize("expected, actual, rtol, atol, where, message", COMPARISONS,
                         ids=[f"{i}-{type(c[0]).__name__}" for i, c in enumerate(COMPARISONS)])
def test_compare_case_by_case(expected, actual, rtol, atol, where, message):
    assert compare(expected, actual, rtol, atol, where) == message


def test_compare_raises_no_numpy_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compare(np.array([np.inf, np.nan]), np.array([-np.inf, 1.0]), 0, 0) is not None
        assert compare(np.array([np.inf]), np.array([np.inf]), 0, 0) is None
        # inf - inf is NaN (an "invalid" warning) where a value matches: still one difference
        assert compare(np.array([np.inf, 1.0]), np.array([np.inf, 2.0]), 0, 0) == \
            "1 of 2 values differ (largest difference 1; allowed 0 + 0 x |expected|)"


def test_arrays_cannot_be_keys_or_set_items(encode):
    array = encode(np.zeros(2))
    for forged in ({"__set__": [array]}, {"__dict__": [[array, 1]]}):
        with pytest.raises(ProbeFormatError, match="^arrays cannot be dict keys or set items$"):
            decode(forged)


# -- grades on disk: CSV details, combining, atomic writes, the state folder -------------------------
def test_csv_text_is_plain_lf_utf8_and_read_back_exactly(tmp_path):
    rows = [Row("zoë", "n.ipynb", "q1", 1.5, 2, "failed", "wrong, \"quoted\"\nmessage — ü")]
    write_csv(rows, tmp_path / "g.csv")
    raw = (tmp_path / "g.csv").read_bytes()
    assert not raw.replace(b"message", b"").count(b"\r\n")  # "\n" line ends, not "\r\n"
    assert raw.decode("utf-8").startswith("student,notebook,question,points,max_points,status,"
                                          "message\nzoë,n.ipynb,q1,1.5,2,failed,")
    assert read_csv(tmp_path / "g.csv") == rows


@pytest.mark.parametrize("text, message", [
    ("", "not a grades CSV (expected the header "
         "student,notebook,question,points,max_points,status,message)"),
    ("name,score\n", "not a grades CSV (expected the header "
                     "student,notebook,question,points,max_points,status,message)"),
    ("student,notebook,question,points,max_points,status,message\na,n,q1,1,1,passed,\nb,n\n",
     "line 3: 2 fields, expected 7"),
    ("student,notebook,question,points,max_points,status,message\na,n,q1,one,1,passed,\n",
     "line 2: points are not numbers"),
])
def test_bad_csv_files_are_named_with_the_line(tmp_path, text, message):
    path = tmp_path / "g.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CsvError, match=f"^{re.escape(f'{path}')}[:,] {re.escape(message)}$"):
        read_csv(path)


def test_an_unreadable_csv_says_why(tmp_path):
    with pytest.raises(CsvError, match=f"^{re.escape(str(tmp_path / 'no.csv'))}: cannot read: "
                                       "No such file or directory$"):
        read_csv(tmp_path / "no.csv")


def test_combine_keeps_identical_duplicates_and_the_question_order(tmp_path):
    ann = [Row("ann", "n.ipynb", "q2", 1, 1, "passed", ""), Row("ann", "n.ipynb", "q1", 0, 1, "failed", "x")]
    bob = [Row("bob", "n.ipynb", "q1", 1, 1, "passed", ""), Row("bob", "n.ipynb", "q2", 0, 1, "error", "y")]
    write_csv(ann, tmp_path / "a.csv")
    write_csv(bob + ann[:1], tmp_path / "b.csv")  # ann's q2 graded twice, identically
    merged = combine([tmp_path / "b.csv", tmp_path / "a.csv"], tmp_path / "all.csv")
    # questions in the order they first appear (q1 then q2, from b.csv), students sorted
    assert [(r.student, r.question) for r in merged] == \
        [("ann", "q1"), ("ann", "q2"), ("bob", "q1"), ("bob", "q2")]
    assert read_csv(tmp_path / "all.csv") == merged
    write_csv([Row("ann", "n.ipynb", "q2", 0, 1, "failed", "")], tmp_path / "c.csv")
    with pytest.raises(CsvError, match=re.escape(
            f"ann/n.ipynb/q2 differs between {tmp_path / 'a.csv'} and {tmp_path / 'c.csv'} "
            "(were the shards graded with different options or sources?)")):
        combine([tmp_path / "a.csv", tmp_path / "c.csv"], tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()


def test_atomic_write_goes_through_a_hidden_temporary_file_beside_the_target(tmp_path, monkeypatch):
    from coursekit.grade import results

    moves = []
    real_replace = os.replace
    monkeypatch.setattr(results.os, "replace", lambda src, dst: (moves.append((src, dst)),
                                                                 real_replace(src, dst)))
    target = tmp_path / "deep" / "er" / "grades.csv"  # missing parents are made
    results.atomic_write(target, "ünïcode")
    results.atomic_write(tmp_path / "raw.bin", b"\x00\xff")
    assert target.read_bytes() == b"\xc3\xbcn\xc3\xafcode"  # UTF-8
    assert (tmp_path / "raw.bin").read_bytes() == b"\x00\xff"
    src, dst = moves[0]
    assert Path(dst) == target and Path(src).parent == target.parent
    assert Path(src).name.startswith(".grades.csv.") and Path(src).name.endswith(".tmp")


def test_atomic_write_leaves_the_old_file_and_no_temporary_on_failure(tmp_path, monkeypatch):
    from coursekit.grade import results

    results.atomic_write(tmp_path / "f.txt", "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        results.atomic_write(tmp_path / "f.txt", "new")
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    assert (tmp_path / "f.txt").read_text() == "old"


def test_state_store_keeps_students_by_fingerprint(tmp_path):
    from coursekit.grade.results import StateStore

    store = StateStore(str(tmp_path / "state"))
    assert store.folder == tmp_path / "state"
    rows = [Row("ann", "n.ipynb", "q1", 2, 2, "passed", ""), Row("ann", "n.ipynb", "q2", 0, 1, "manual", "m")]
    store.save_student("ann", "fp1", rows)
    path = tmp_path / "state" / "students" / "ann.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record == {"student": "ann", "fingerprint": "fp1",
                      "rows": [dict(student="ann", notebook="n.ipynb", question="q1", points=2,
                                    max_points=2, status="passed", message=""),
                               dict(student="ann", notebook="n.ipynb", question="q2", points=0,
                                    max_points=1, status="manual", message="m")]}
    assert path.read_text(encoding="utf-8").startswith('{\n "student": "ann",\n "fingerprint"')
    loaded = store.load_student("ann", "fp1")
    assert loaded == record and StateStore.rows_of(loaded) == rows
    assert store.load_student("ann", "fp2") is None  # graded under other conditions: regrade
    assert store.load_student("bob", "fp1") is None
    path.write_text("[1, 2]")
    assert store.load_student("ann", "fp1") is None
    path.write_text("{half")
    assert store.load_student("ann", "fp1") is None
    path.write_text('{"fingerprint": "fp1", "rows": []}')
    assert store.load_student("ann", "fp1") == {"fingerprint": "fp1", "rows": []}


def test_state_store_caches_reference_values_per_source_version(tmp_path):
    from coursekit.grade.results import StateStore

    store = StateStore(tmp_path)
    payloads = {"q1": [{"name": "double", "value": 6}]}
    store.save_reference("n.ipynb", "k1", payloads)
    assert json.loads((tmp_path / "reference" / "n.ipynb-k1.json").read_text("utf-8")) == payloads
    assert store.load_reference("n.ipynb", "k1") == payloads
    assert store.load_reference("n.ipynb", "k2") is None
    assert store.load_reference("m.ipynb", "k1") is None
    (tmp_path / "reference" / "n.ipynb-k1.json").write_text("{bad")
    assert store.load_reference("n.ipynb", "k1") is None

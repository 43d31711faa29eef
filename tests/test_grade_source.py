"""coursekit.grade.source in detail: how each cell of a source notebook is classified, every
authoring mistake's exact message, rubrics, loading, and the learner's version (fast; the
mutation run's selection for coursekit/grade/source.py, with test_grader_units.py)."""

import hashlib
import re
from pathlib import Path

import nbformat
import pytest
from _notebooks import notebook

from coursekit.grade.source import (
    CODE_STUB,
    MARKDOWN_STUB,
    PROBE_FALLBACK,
    Criterion,
    Question,
    SourceCell,
    SourceError,
    calls_probe,
    defines_probe,
    exercise_text,
    load_source,
    load_sources,
    make_exercise,
    parse_notebook,
    parse_rubric,
    split_solution,
    split_tests,
)

SETUP = "import math\n" + PROBE_FALLBACK
ANSWER = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
TEST = "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nprobe('f', f(3))\n### END HIDDEN TESTS"


def _nb(*cells):
    return notebook(cells)


def _parse(*cells, name="hw.ipynb"):
    return parse_notebook(_nb(*cells), Path(name))


Q1 = {"id": "q1", "kind": "solution"}
T1 = {"id": "q1", "kind": "test", "points": 2}
GOOD = [("code", SETUP, None), ("markdown", "intro\n## Q1 · Doubling\ntext", None),
        ("code", ANSWER, Q1), ("code", TEST, T1),
        ("markdown", "  # Q2 · Why?", None),
        ("markdown", "### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
         {"id": "q2", "kind": "manual", "points": 1.5})]


def test_every_cell_is_classified_with_its_parts():
    source = _parse(*GOOD)
    public, hidden = SETUP.split("\n### BEGIN HIDDEN TESTS\n")
    assert source.cells == [
        SourceCell(0, "c0", "code", SETUP, "setup", public="import math",
                   hidden=hidden.replace("\n### END HIDDEN TESTS", "")),
        SourceCell(1, "c1", "markdown", GOOD[1][1], "text"),
        SourceCell(2, "c2", "code", ANSWER, "solution", "q1",
                   stub="def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"),
        SourceCell(3, "c3", "code", TEST, "test", "q1", 2.0, public="assert f(1) == 2",
                   hidden="probe('f', f(3))"),
        SourceCell(4, "c4", "markdown", GOOD[4][1], "text"),
        SourceCell(5, "c5", "markdown", GOOD[5][1], "manual", "q2", 1.5, stub=MARKDOWN_STUB),
    ]
    assert source.questions == [Question("q1", 2.0, False, "Q1 · Doubling"),
                                Question("q2", 1.5, True, "Q2 · Why?")]
    assert source.path == Path("hw.ipynb") and source.name == "hw.ipynb"
    assert source.sha256 == hashlib.sha256(nbformat.writes(source.nb).encode()).hexdigest()
    assert source.cells_of("q1", "solution") == [source.cells[2]]
    assert source.cells_of("q1", "test") == [source.cells[3]]
    assert source.cells_of("q2", "solution") == []


@pytest.mark.filterwarnings("ignore:Cell is missing an id field")
def test_cells_without_an_id_get_one_from_their_place():
    nb = _nb(*GOOD)
    del nb.cells[1]["id"]
    source = parse_notebook(nb, Path("hw.ipynb"))
    assert source.cells[1].cell_id == "cell-1"


def test_a_manual_code_cell_gets_a_code_stub():
    source = _parse(("code", SETUP, None), ("code", "x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION",
                                            {"id": "q1", "kind": "manual", "points": 1}))
    assert source.cells[1] == SourceCell(1, "c1", "code", source.cells[1].source, "manual", "q1", 1.0,
                                         stub="x = 1\n" + "\n".join(CODE_STUB))
    assert source.questions == [Question("q1", 1.0, True, "")]


# -- authoring mistakes, word for word ----------------------------------------------------------------
CELL3 = "hw.ipynb, cell 3"
MISTAKES = [
    ([("code", "x = (", None)], "hw.ipynb, cell 0: syntax error on line 1: '(' was never closed"),
    ([("markdown", "### BEGIN SOLUTION", None)],
     "hw.ipynb, cell 0: markers in a cell without 'grade' metadata"),
    ([("code", SETUP, None), ("code", "x = 1", "q1")],
     "hw.ipynb, cell 1: metadata 'grade' must be an object"),
    ([("code", SETUP, None), ("code", "x = 1", {"id": "q1", "kind": "solution", "pts": 1, "a": 2})],
     "hw.ipynb, cell 1: unknown key(s) ['a', 'pts'] in metadata 'grade' (allowed: id, kind, points, rubric)"),
    ([("code", SETUP, None), ("code", ANSWER, {**Q1, "rubric": []})],
     "hw.ipynb, cell 1: only a manual question has a rubric"),
    ([("code", SETUP, None), ("code", ANSWER, {"id": "q 1", "kind": "solution"})],
     "hw.ipynb, cell 1: grade id 'q 1' must be letters, digits, '_', '.' or '-'"),
    ([("code", SETUP, None), ("code", ANSWER, {"id": 7, "kind": "solution"})],
     "hw.ipynb, cell 1: grade id 7 must be letters, digits, '_', '.' or '-'"),
    ([("code", SETUP, None), ("code", ANSWER, {"id": "q1", "kind": "quiz"})],
     "hw.ipynb, cell 1: grade kind 'quiz' must be one of solution, test, manual"),
    ([("code", SETUP, None), ("code", ANSWER, Q1), ("code", TEST, {"id": "q1", "kind": "test"})],
     "hw.ipynb, cell 2: a test cell needs 'points' > 0 (got 0)"),
    ([("code", SETUP, None), ("code", ANSWER, Q1), ("code", TEST, {**T1, "points": True})],
     "hw.ipynb, cell 2: a test cell needs 'points' > 0 (got True)"),
    ([("code", SETUP, None), ("code", ANSWER, Q1), ("code", TEST, {**T1, "points": "2"})],
     "hw.ipynb, cell 2: a test cell needs 'points' > 0 (got '2')"),
    ([("code", SETUP, None), ("code", ANSWER, Q1), ("code", TEST, {**T1, "points": -1})],
     "hw.ipynb, cell 2: a test cell needs 'points' > 0 (got -1)"),
    ([("code", SETUP, None), ("code", ANSWER, {**Q1, "points": 1})],
     "hw.ipynb, cell 1: points belong on the test cell of q1, not its answer"),
    ([("code", SETUP, None), ("markdown", ANSWER, Q1)],
     "hw.ipynb, cell 1 (solution cell of q1): an answer cell must be a code cell "
     "(use kind 'manual' for written answers)"),
    ([("code", SETUP, None), ("code", "x = 1", Q1)],
     "hw.ipynb, cell 1 (solution cell of q1): no ### BEGIN SOLUTION ... ### END SOLUTION region"),
    ([("code", SETUP, None), ("code", "### BEGIN SOLUTION\nx = (\n### END SOLUTION", Q1)],
     "hw.ipynb, cell 1 (solution cell of q1): syntax error on line 2: '(' was never closed"),
    ([("code", SETUP, None), ("code", "if x:\n### BEGIN SOLUTION\n    y = 1\n### END SOLUTION", Q1)],
     "hw.ipynb, cell 1 (solution cell of q1) [stub]: syntax error on line 3: expected an indented block after 'if' statement on line 1"),
    ([("code", SETUP, None), ("code", ANSWER, Q1), ("markdown", TEST, T1)],
     "hw.ipynb, cell 2 (test cell of q1): a test cell must be a code cell"),
    ([("code", SETUP, None), ("code", ANSWER, Q1), ("code", "x = (\n" + TEST, T1)],
     "hw.ipynb, cell 2 (test cell of q1) [public part]: syntax error on line 1: '(' was never closed"),
    ([("code", SETUP, None), ("code", ANSWER, Q1),
      ("code", "### BEGIN HIDDEN TESTS\nprobe('x', (\n### END HIDDEN TESTS", T1)],
     "hw.ipynb, cell 2 (test cell of q1) [hidden part]: syntax error on line 1: '(' was never closed"),
    ([("code", SETUP, None), ("code", ANSWER, Q1), ("code", "probe('x', 1)\n" + TEST, T1)],
     "hw.ipynb, cell 2 (test cell of q1): probe() in the public part; learners' kernels have no "
     "probe(), move it below ### BEGIN HIDDEN TESTS"),
    ([("code", SETUP, None), ("code", ANSWER, Q1),
      ("code", "### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS", T1)],
     "hw.ipynb, cell 2 (test cell of q1): the hidden tests call no probe(); the grader could not "
     "verify this question (see the README, section For instructors)"),
    ([("code", "import math", None), ("code", ANSWER, Q1), ("code", TEST, T1)],
     "hw.ipynb, cell 2 (test cell of q1): the hidden tests call probe(), but no set-up cell above "
     "defines it for runs outside the grader; end the first code cell with:\n" + PROBE_FALLBACK),
    ([("code", SETUP, None), ("code", ANSWER, Q1), ("code", TEST, T1), ("code", TEST, T1)],
     "hw.ipynb, cell 3 (test cell of q1): question q1 already has a test or manual cell"),
    ([("code", SETUP, None), ("code", TEST, T1)],
     "hw.ipynb, cell 1 (test cell of q1): no answer cell (kind 'solution', id 'q1') above this "
     "test cell"),
    ([("code", SETUP, None), ("code", ANSWER, Q1), ("code", TEST, T1),
      ("markdown", "x", {"id": "q1", "kind": "manual", "points": 1})],
     "hw.ipynb, cell 3 (manual cell of q1): question q1 already has a test or manual cell"),
    ([("code", SETUP, None), ("code", "### BEGIN SOLUTION\nx = (\n### END SOLUTION",
                               {"id": "q1", "kind": "manual", "points": 1})],
     "hw.ipynb, cell 1 (manual cell of q1): syntax error on line 2: '(' was never closed"),
    ([("code", SETUP, None), ("code", ANSWER, Q1)], "hw.ipynb: answer cells of q1 have no test cell"),
    ([("code", SETUP, None), ("markdown", "x", {"id": "q1", "kind": "manual", "points": 1}),
      ("code", ANSWER, Q1)], "hw.ipynb: q1 is manual but also has code answer cells"),
    ([("code", SETUP, None)], "hw.ipynb: no graded questions (cells with metadata 'grade')"),
    ([("code", SETUP, None), ("code", "x = 1", None), ("code", ANSWER, Q1)],
     "hw.ipynb, cell 2: duplicate cell id 'c1'"),
]


@pytest.mark.parametrize("cells, message", MISTAKES, ids=[str(i) for i in range(len(MISTAKES))])
def test_authoring_mistakes_are_named_exactly(cells, message):
    nb = _nb(*cells)
    if "duplicate" in message:
        nb.cells[2].id = "c1"
    with pytest.raises(SourceError) as info:
        parse_notebook(nb, Path("hw.ipynb"))
    assert str(info.value) == message


def test_a_set_up_cell_with_markers_in_the_wrong_place():
    with pytest.raises(SourceError, match=re.escape(
            "hw.ipynb, cell 0 (set-up cell), line 2: solution markers belong in answer cells")):
        _parse(("code", "x = 1\n### BEGIN SOLUTION", None))


# -- the marker regions ---------------------------------------------------------------------------
def test_split_solution_keeps_the_indent_and_counts_regions():
    text = "a = 1\n  ### BEGIN SOLUTION\n  b = 2\n  ### END SOLUTION\n### BEGIN SOLUTION\nc\n### END SOLUTION\nd"
    assert split_solution(text, ("S1", "S2"), "w") == ("a = 1\n  S1\n  S2\nS1\nS2\nd", 2)
    assert split_solution("x", ("S",), "w") == ("x", 0)


@pytest.mark.parametrize("text, message", [
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION", "w, line 2: nested ### BEGIN SOLUTION"),
    ("x\n### END SOLUTION", "w, line 2: ### END SOLUTION without ### BEGIN SOLUTION"),
    ("x\n\n### BEGIN HIDDEN TESTS", "w, line 3: hidden-test markers belong in test cells"),
    ("### BEGIN SOLUTION\nx", "w: ### BEGIN SOLUTION is never closed by ### END SOLUTION"),
])
def test_split_solution_mistakes(text, message):
    with pytest.raises(SourceError, match=f"^{re.escape(message)}$"):
        split_solution(text, ("S",), "w")


def test_split_tests_parts():
    assert split_tests("a\nb  \n\n### BEGIN HIDDEN TESTS\n\nh1\nh2\n\n### END HIDDEN TESTS\n\n", "w") == \
        ("a\nb", "h1\nh2")
    assert split_tests("a", "w") == ("a", "")


@pytest.mark.parametrize("text, message", [
    ("### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### BEGIN HIDDEN TESTS",
     "w, line 3: only one hidden-test region per cell"),
    ("### BEGIN HIDDEN TESTS\n### BEGIN HIDDEN TESTS", "w, line 2: only one hidden-test region per cell"),
    ("x\n### END HIDDEN TESTS", "w, line 2: ### END HIDDEN TESTS without ### BEGIN HIDDEN TESTS"),
    ("### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END HIDDEN TESTS",
     "w, line 3: ### END HIDDEN TESTS without ### BEGIN HIDDEN TESTS"),
    ("x\n### END SOLUTION", "w, line 2: solution markers belong in answer cells"),
    ("### BEGIN HIDDEN TESTS\nh\n### END HIDDEN TESTS\nx = 1",
     "w, line 4: code after ### END HIDDEN TESTS; the hidden tests must end the cell"),
    ("### BEGIN HIDDEN TESTS\nh", "w: ### BEGIN HIDDEN TESTS is never closed by ### END HIDDEN TESTS"),
])
def test_split_tests_mistakes(text, message):
    with pytest.raises(SourceError, match=f"^{re.escape(message)}$"):
        split_tests(text, "w")


def test_probe_calls_and_definitions():
    assert calls_probe("probe('a', 1)") and calls_probe("x = [probe('a', 1)]")
    assert not calls_probe("obj.probe('a', 1)") and not calls_probe("probe") and not calls_probe("probe(")
    assert not calls_probe("proba('a', 1)")
    assert defines_probe("def probe(name, value):\n    return value")
    assert defines_probe("probe = print") and defines_probe("if True:\n    probe = print")
    assert not defines_probe("x = probe") and not defines_probe("def probes(): pass")
    assert not defines_probe("other = print") and not defines_probe("probe = (")
    assert not defines_probe("probe(1)")


# -- rubrics ------------------------------------------------------------------------------------------
def test_rubrics():
    assert parse_rubric(None, 3.0, "w") == [Criterion("overall", 3.0)]
    rubric = [{"criterion": "  names   the\naxis ", "points": 1}, {"criterion": "why", "points": 0.5}]
    criteria = parse_rubric(rubric, 1.5, "w")
    assert criteria == [Criterion("names the axis", 1.0), Criterion("why", 0.5)]
    assert isinstance(criteria[0].points, float)
    assert criteria[0].column(1) == "c1: names the axis (max 1)"
    assert criteria[1].column(2) == "c2: why (max 0.5)"
    assert parse_rubric([{"criterion": "a", "points": 0.1}, {"criterion": "b", "points": 0.2}],
                        0.3, "w")[1].points == 0.2  # sums compared with a tolerance


@pytest.mark.parametrize("raw, message", [
    ([], "w: 'rubric' must be a non-empty list of {\"criterion\": text, \"points\": number}"),
    ({"criterion": "a", "points": 1}, "w: 'rubric' must be a non-empty list of "
                                      "{\"criterion\": text, \"points\": number}"),
    (["a"], "w: rubric entry 'a' is not {\"criterion\": text, \"points\": positive number}"),
    ([{"criterion": " ", "points": 1}], "w: rubric entry {'criterion': ' ', 'points': 1} is not "
                                        "{\"criterion\": text, \"points\": positive number}"),
    ([{"criterion": 3, "points": 1}], "w: rubric entry {'criterion': 3, 'points': 1} is not "
                                      "{\"criterion\": text, \"points\": positive number}"),
    ([{"criterion": "a", "points": True}], "w: rubric entry {'criterion': 'a', 'points': True} is "
                                           "not {\"criterion\": text, \"points\": positive number}"),
    ([{"criterion": "a", "points": "1"}], "w: rubric entry {'criterion': 'a', 'points': '1'} is "
                                          "not {\"criterion\": text, \"points\": positive number}"),
    ([{"criterion": "a", "points": 0}], "w: rubric entry {'criterion': 'a', 'points': 0} is not "
                                        "{\"criterion\": text, \"points\": positive number}"),
    ([{"criterion": "a"}], "w: rubric entry {'criterion': 'a'} is not "
                           "{\"criterion\": text, \"points\": positive number}"),
    ([{"criterion": "a", "points": 1}, {"criterion": "b", "points": 1}],
     "w: the rubric's points add up to 2, the question is worth 1.5"),
])
def test_rubric_mistakes(raw, message):
    with pytest.raises(SourceError, match=f"^{re.escape(message)}$"):
        parse_rubric(raw, 1.5, "w")


def test_a_manual_cell_with_a_wrong_rubric_is_refused():
    meta = {"id": "q1", "kind": "manual", "points": 2, "rubric": [{"criterion": "a", "points": 1}]}
    with pytest.raises(SourceError, match=re.escape(
            "hw.ipynb, cell 1 (manual cell of q1): the rubric's points add up to 1, the question "
            "is worth 2")):
        _parse(("code", SETUP, None), ("markdown", "x", meta))


# -- loading ------------------------------------------------------------------------------------------
def test_load_sources_reads_every_visible_notebook_in_order(tmp_path):
    for name in ("b.ipynb", "a.ipynb", ".hidden.ipynb"):
        nbformat.write(_nb(*GOOD), tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    sources = load_sources(str(tmp_path))
    assert [s.name for s in sources] == ["a.ipynb", "b.ipynb"]
    assert sources[0].path == tmp_path / "a.ipynb"
    assert load_source(str(tmp_path / "b.ipynb")).questions == sources[1].questions


def test_load_mistakes(tmp_path):
    missing = tmp_path / "no"
    with pytest.raises(SourceError) as info:
        load_sources(missing)
    assert str(info.value) == (f"source folder {missing} does not exist (run from the course's "
                               "folder, or give the solutions with --source DIR)")
    with pytest.raises(SourceError) as info:
        load_sources(tmp_path)
    assert str(info.value) == f"source folder {tmp_path} holds no notebooks"
    (tmp_path / "bad.ipynb").write_text("{oops")
    with pytest.raises(SourceError) as info:
        load_sources(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'bad.ipynb'}: cannot read the notebook: ")


# -- the learner's version ----------------------------------------------------------------------------
def test_make_exercise():
    nb = _nb(*GOOD)
    nb.cells[2].metadata.update({"execution": {"x": 1}, "ExecuteTime": 1, "collapsed": True,
                                 "scrolled": True, "tags": ["keep"]})
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="hi")]
    nb.cells[3].execution_count = 4
    source = parse_notebook(nb, Path("hw.ipynb"))
    before = nbformat.writes(source.nb)
    exercise = make_exercise(source)
    assert nbformat.writes(source.nb) == before  # the source is not changed
    assert [c.id for c in exercise.cells] == [c.cell_id for c in source.cells]
    assert exercise.cells[0].source == "import math"  # the fallback probe is hidden
    assert exercise.cells[1].source == GOOD[1][1]
    assert exercise.cells[2].source == source.cells[2].stub
    assert exercise.cells[2].metadata.get("tags") == ["keep"]
    assert not {"execution", "ExecuteTime", "collapsed", "scrolled"} & set(exercise.cells[2].metadata)
    assert exercise.cells[3].source == "assert f(1) == 2"
    assert exercise.cells[3].metadata["editable"] is False and exercise.cells[3].metadata["deletable"] is False
    assert exercise.cells[3].outputs == [] and exercise.cells[3].execution_count is None
    assert "editable" not in exercise.cells[2].metadata
    assert exercise.cells[5].source == MARKDOWN_STUB
    text = exercise_text(source)
    assert text.endswith("\n") and text == exercise_text(source)
    assert nbformat.reads(text, as_version=4).cells[3].source == "assert f(1) == 2"


def test_more_details_of_parsing():
    # a heading that starts with an X keeps it
    source = _parse(("code", SETUP, None), ("markdown", "## X-ray view", None), *GOOD[2:4])
    assert source.questions[0].title == "X-ray view"
    # hidden code keeps its own spaces and letters at both ends
    assert split_tests("### BEGIN HIDDEN TESTS\n\nX = 1  \n\n### END HIDDEN TESTS", "w") == ("", "X = 1  ")
    # a test for a question whose answer cell is missing, while another question has one
    with pytest.raises(SourceError, match=re.escape(
            "hw.ipynb, cell 3 (test cell of q2): no answer cell (kind 'solution', id 'q2') above")):
        _parse(*GOOD[:2], ("code", ANSWER, Q1),
               ("code", TEST.replace("'f'", "'g'"), {"id": "q2", "kind": "test", "points": 1}))
    # a set-up cell with hidden code that does not define probe() does not count as the fallback
    with pytest.raises(SourceError, match="no set-up cell above defines it"):
        _parse(("code", "import math\n### BEGIN HIDDEN TESTS\nx = 1\n### END HIDDEN TESTS", None),
               ("code", ANSWER, Q1), ("code", TEST, T1))


@pytest.mark.parametrize("cells, message", [
    ([("code", SETUP, None), ("code", "### BEGIN SOLUTION\nx = 1", Q1)],
     "hw.ipynb, cell 1 (solution cell of q1): ### BEGIN SOLUTION is never closed by ### END SOLUTION"),
    ([("code", SETUP, None), ("code", ANSWER, Q1), ("code", "### BEGIN HIDDEN TESTS\nprobe('f', 1)", T1)],
     "hw.ipynb, cell 2 (test cell of q1): ### BEGIN HIDDEN TESTS is never closed by ### END HIDDEN TESTS"),
    ([("code", SETUP, None), ("markdown", "### BEGIN SOLUTION\nx", {"id": "q1", "kind": "manual", "points": 1})],
     "hw.ipynb, cell 1 (manual cell of q1): ### BEGIN SOLUTION is never closed by ### END SOLUTION"),
])
def test_marker_mistakes_name_the_cell(cells, message):
    with pytest.raises(SourceError) as info:
        _parse(*cells)
    assert str(info.value) == message


@pytest.mark.filterwarnings("ignore:Cell is missing an id field")
def test_the_exercise_gives_every_cell_its_id():
    nb = _nb(*GOOD)
    del nb.cells[1]["id"]
    exercise = make_exercise(parse_notebook(nb, Path("hw.ipynb")))
    assert exercise.cells[1].id == "cell-1"

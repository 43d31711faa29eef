"""coursekit.grade.scoring on hand-made runs (no kernel): every status and message a question can
get, the reference checks, and that tolerances come from the reference. Fast; the mutation run's
selection for coursekit/grade/scoring.py. The same rules on real kernels: test_grader.py."""

import re
from pathlib import Path

import pytest
from _notebooks import notebook

from coursekit.grade.plan import Plan, Step
from coursekit.grade.runner import MAX_MESSAGE_BYTES, Limits, RunResult, StepResult
from coursekit.grade.scoring import (
    ExpectedProbe,
    QuestionResult,
    ReferenceFailure,
    build_reference,
    expected_values,
    score,
    whole_notebook,
)
from coursekit.grade.source import PROBE_FALLBACK, parse_notebook

LIMITS = Limits(cell_timeout=7, notebook_timeout=42, memory_mb=1234)
HIDDEN = "probe('double', f(3))\nassert f(10) == 20, 'f(10) should be twenty'"


def _source():
    cells = [
        ("code", "import math\n" + PROBE_FALLBACK, None),
        ("code", "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
         {"id": "q1", "kind": "solution"}),
        ("code", f"assert f(1) == 2\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS",
         {"id": "q1", "kind": "test", "points": 2}),
        ("markdown", "### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
         {"id": "q2", "kind": "manual", "points": 1}),
    ]
    nb = notebook(cells)
    return parse_notebook(nb, Path("hw.ipynb"))


SOURCE = _source()
STEPS = [Step("setup", None, "import math", "the set-up cell"),
         Step("answer", "q1", "def f(x): ...", "your answer cell for q1"),
         Step("public", "q1", "assert f(1) == 2", "the public check of q1"),
         Step("hidden", "q1", HIDDEN, "the hidden tests of q1")]


def _payload(name, value, **extra):
    return {"name": name, "value": value, **extra}


def _run(answer=None, public=None, hidden=None, **run_fields):
    ok = StepResult("ok")
    return RunResult([ok, answer or StepResult("ok"), public or StepResult("ok"),
                      hidden or StepResult("ok", probes=[_payload("double", 6)])], **run_fields)


def _grade(run, plan=None, reference=None):
    reference = {"q1": [ExpectedProbe("double", 6, 0.0, 0.0)]} if reference is None else reference
    return score(SOURCE, plan or Plan(STEPS), run, reference, LIMITS)


def _q1(run, **kw):
    q1 = _grade(run, **kw)[0]
    assert q1.question == "q1" and q1.max_points == 2.0
    assert q1.points == (2.0 if q1.status == "passed" else 0.0)
    return q1.status, q1.message


# -- the reference ------------------------------------------------------------------------------------
def test_reference_probes_are_collected_with_their_tolerances():
    run = _run(hidden=StepResult("ok", probes=[_payload("double", 6, rtol=0.5, atol=0.25),
                                               _payload("half", {"__float__": "nan"})]))
    payloads = build_reference(SOURCE, Plan(STEPS), run)
    assert payloads == {"q1": run.steps[3].probes}
    expected = expected_values(payloads)
    assert expected["q1"][0] == ExpectedProbe("double", 6, 0.5, 0.25)
    half = expected["q1"][1]
    assert half.name == "half" and half.value != half.value  # NaN decoded, not 0.0
    assert (half.rtol, half.atol) == (1e-5, 1e-8)  # the probe's defaults
    assert isinstance(expected_values({"q": [{"name": 3, "value": 1}]})["q"][0].name, str)


@pytest.mark.parametrize("run, problem", [
    (_run(failure="no kernel"), "no kernel"),
    (_run(answer=StepResult("error", "NameError", "name 'g' is not defined")),
     "your answer cell for q1 (answer step): error NameError: name 'g' is not defined"),
    (_run(public=StepResult("timeout", "", "")), "the public check of q1 (public step): timeout"),
    (_run(hidden=StepResult("ok", probes=[])), "q1: the hidden tests sent no probe value"),
    (_run(hidden=StepResult("ok", probes=[{"name": "double", "error": "TypeError: no"}])),
     "q1: probe 'double' cannot be sent: TypeError: no"),
    (_run(hidden=StepResult("ok", probes=[_payload("double", 6), _payload("double", 7)])),
     "q1: probe 'double' is sent more than once (give each probe its own name)"),
    (_run(hidden=StepResult("ok", probes=[_payload("double", {"__pickle__": "x"})])),
     "unknown value tag '__pickle__'"),
])
def test_a_failing_reference_is_the_instructors_error(run, problem):
    with pytest.raises(ReferenceFailure) as info:
        build_reference(SOURCE, Plan(STEPS), run)
    text = str(info.value)
    assert text.startswith("hw.ipynb: the reference solution fails its own tests:\n  ")
    assert problem in text


def test_reference_lists_at_most_ten_problems():
    steps = [Step("answer", "q1", "x", f"cell {i}") for i in range(12)]
    run = RunResult([StepResult("error", "E", str(i)) for i in range(12)])
    with pytest.raises(ReferenceFailure) as info:
        build_reference(SOURCE, Plan(steps), run)
    assert str(info.value).count("\n  ") == 10 and "cell 9 " in str(info.value)
    assert "cell 10 " not in str(info.value)


def test_reference_describes_an_error_without_a_message():
    run = _run(answer=StepResult("error", "KeyboardInterrupt", ""))
    with pytest.raises(ReferenceFailure, match=re.escape(
            "your answer cell for q1 (answer step): error KeyboardInterrupt\n")):
        build_reference(SOURCE, Plan(STEPS), _run(answer=StepResult("error", "KeyboardInterrupt"),
                                                  hidden=StepResult("ok", probes=[])))
    with pytest.raises(ReferenceFailure, match=re.escape(
            "(answer step): error KeyboardInterrupt")):
        build_reference(SOURCE, Plan(STEPS), run)


# -- passing and failing ------------------------------------------------------------------------------
def test_right_values_pass_and_the_manual_question_waits_for_a_person():
    results = _grade(_run())
    assert results == [
        QuestionResult("q1", 2.0, 2.0, "passed", ""),
        QuestionResult("q2", 0.0, 1.0, "manual", "graded by hand: no answer was written")]
    written = _grade(_run(), plan=Plan(STEPS, manual_answers={"q2": "Because."}))
    assert written[1] == QuestionResult("q2", 0.0, 1.0, "manual",
                                        "graded by hand: your answer is quoted in the feedback")


def test_values_decide_with_the_references_tolerances_not_the_submissions():
    near = StepResult("ok", probes=[_payload("double", 6.5, rtol=1.0, atol=1.0)])
    assert _q1(_run(hidden=near)) == ("failed", "wrong result: double: wrong value (differs by 0.5)")
    loose = {"q1": [ExpectedProbe("double", 6, 0.0, 0.5)]}
    assert _q1(_run(hidden=near), reference=loose) == ("passed", "")
    relative = {"q1": [ExpectedProbe("double", 6, 0.1, 0.0)]}
    assert _q1(_run(hidden=near), reference=relative) == ("passed", "")


@pytest.mark.parametrize("probes, message", [
    ([], "wrong result: value 'double' was not computed"),
    ([_payload("other", 6)], "wrong result: value 'double' was not computed"),
    ([_payload("double", 6), _payload("double", 6)],
     "wrong result: value 'double' was sent more than once"),
    ([{"name": "double", "error": "TypeError: cannot probe"}],
     "wrong result: value 'double' could not be read: TypeError: cannot probe"),
    ([_payload("double", {"__int__": "12x"})],
     "wrong result: value 'double' is malformed (bad integer)"),
    ([_payload("double", "six")], "wrong result: double: expected a number, got a string"),
])
def test_probe_problems_are_named(probes, message):
    assert _q1(_run(hidden=StepResult("ok", probes=probes))) == ("failed", message)


def test_several_wrong_values_are_counted():
    reference = {"q1": [ExpectedProbe(n, 1, 0.0, 0.0) for n in ("a", "b", "c")]}
    sent = StepResult("ok", probes=[_payload("a", 2), _payload("b", 2), _payload("c", 1)])
    assert _q1(_run(hidden=sent), reference=reference) == \
        ("failed", "wrong result: a: wrong value (and 1 more)")
    sent = StepResult("ok", probes=[_payload("a", 2), _payload("b", 1), _payload("c", 1)])
    assert _q1(_run(hidden=sent), reference=reference) == ("failed", "wrong result: a: wrong value")


# -- errors, in the order a student should fix them ----------------------------------------------------
def test_an_untouched_answer_is_not_answered():
    stub = StepResult("error", "NotImplementedError", "")
    assert _q1(_run(answer=stub, public=StepResult("error", "NameError", "f"))) == \
        ("error", "not answered: your answer cell for q1 still raises NotImplementedError")
    # the stub's error may surface only when a test calls it
    raised_in_test = StepResult("error", "NotImplementedError", "")
    assert _q1(_run(public=raised_in_test)) == \
        ("error", "not answered: your answer cell for q1 still raises NotImplementedError")
    no_answer_step = Plan([s for s in STEPS if s.role != "answer"])
    run = RunResult([StepResult("ok"), raised_in_test, StepResult("ok", probes=[])])
    assert _q1(run, plan=no_answer_step) == \
        ("error", "not answered: the public check of q1 still raises NotImplementedError")


UNDEFINED = StepResult("error", "NameError", "name 'f' is not defined")


def test_an_answer_that_raises_is_named_with_a_memory_hint():
    assert _q1(_run(answer=StepResult("error", "ValueError", "bad shape"), hidden=UNDEFINED)) == \
        ("error", "your answer cell for q1 raised ValueError: bad shape")
    assert _q1(_run(answer=StepResult("error", "MemoryError", ""), public=UNDEFINED)) == \
        ("error", "your answer cell for q1 raised MemoryError (the kernel's memory limit is 1234 MB)")
    assert _q1(_run(answer=StepResult("error", "", ""), hidden=StepResult("ok"))) == \
        ("error", "your answer cell for q1 raised an error")
    # an answer cell that raises after defining what the tests need loses nothing
    assert _q1(_run(answer=StepResult("error", "ValueError", "late"))) == ("passed", "")


def test_public_and_hidden_test_failures():
    assert _q1(_run(public=StepResult("error", "AssertionError", "f(1) should be 2"))) == \
        ("failed", "public check failed: f(1) should be 2")
    assert _q1(_run(public=StepResult("error", "AssertionError", ""))) == \
        ("failed", "public check failed: an assertion failed")
    assert _q1(_run(public=StepResult("error", "TypeError", "no"))) == \
        ("error", "the public check raised TypeError: no")
    assert _q1(_run(hidden=StepResult("error", "AssertionError", "f(10) should be twenty"))) == \
        ("failed", "a hidden test failed: f(10) should be twenty")
    assert _q1(_run(hidden=StepResult("error", "AssertionError", ""))) == \
        ("failed", "a hidden test failed")
    assert _q1(_run(hidden=StepResult("error", "ZeroDivisionError", "division by zero"))) == \
        ("error", "a hidden test raised ZeroDivisionError: division by zero")


def test_messages_never_quote_the_hidden_tests():
    quoting = "assert f(10) == 20, 'f(10) should be twenty'"
    assert _q1(_run(hidden=StepResult("error", "AssertionError", quoting))) == \
        ("failed", "a hidden test failed: (message withheld: it quotes the hidden tests)")
    assert _q1(_run(hidden=StepResult("error", "SyntaxError", "probe('double', f(3))"))) == \
        ("error", "a hidden test raised (message withheld: it quotes the hidden tests)")
    short = StepResult("error", "NameError", "f(3))")  # too short a piece to count as a quote
    assert _q1(_run(hidden=short)) == ("error", "a hidden test raised NameError: f(3))")


@pytest.mark.parametrize("step, result, message", [
    (1, StepResult("timeout", "", ""),
     "your answer cell for q1 ran longer than the cell time limit (7 s) and was stopped"),
    (2, StepResult("timeout", "", "notebook"),
     "not finished: the notebook reached its time limit (42 s) at the public check of q1"),
    (3, StepResult("crashed"), "the kernel died while running the hidden tests of q1 (os._exit, "
     "a crash or the memory limit of 1234 MB); the grader restarted it for the other questions"),
    (1, StepResult("huge_output"),
     f"your answer cell for q1 sent a single output over {MAX_MESSAGE_BYTES >> 20} MB; it was stopped"),
    (2, StepResult("not_run"), "not run: an earlier problem stopped the run"),
])
def test_run_problems(step, result, message):
    run = _run()
    run.steps[step] = result
    status = "timeout" if result.status == "timeout" else "error"
    assert _q1(run) == (status, message)


def test_not_run_says_why():
    run = _run(hidden=StepResult("not_run"), failure="the kernel did not start")
    assert _q1(run)[1] == ("not run: the kernel did not start (a problem of the grading machine; "
                           "it will be regraded)")
    run = _run(hidden=StepResult("not_run"), restarts_exhausted=True)
    assert _q1(run)[1] == "not run: the kernel crashed too often"


def test_notes_are_added_to_a_lost_question_only():
    plan = Plan(STEPS, notes={"q1": ["your answer cell was missing", "restored"]})
    assert _q1(_run(), plan=plan) == ("passed", "")
    assert _q1(_run(answer=StepResult("error", "ValueError", "x"), hidden=UNDEFINED), plan=plan) == \
        ("error", "your answer cell for q1 raised ValueError: x (your answer cell was missing; "
                  "restored)")


def test_long_messages_are_clipped_to_one_line():
    long = StepResult("error", "ValueError", "word\n" * 200)
    status, message = _q1(_run(answer=long, hidden=UNDEFINED))
    assert len(message) == 400 and message.endswith("word...") and "\n" not in message
    exact = StepResult("error", "V", "x" * (400 - len("your answer cell for q1 raised V: ")))
    fits = _q1(_run(answer=exact, hidden=UNDEFINED))[1]
    assert len(fits) == 400 and fits.endswith("xxx")
    over = StepResult("error", "V", "x" * (401 - len("your answer cell for q1 raised V: ")))
    assert _q1(_run(answer=over, hidden=UNDEFINED))[1].endswith("xx...")


def test_whole_notebook_rows():
    rows = whole_notebook(SOURCE, "missing", "hw.ipynb was\nnot submitted")
    assert rows == [QuestionResult("q1", 0.0, 2.0, "missing", "hw.ipynb was not submitted"),
                    QuestionResult("q2", 0.0, 1.0, "missing", "hw.ipynb was not submitted")]
    manual = whole_notebook(SOURCE, "manual", "later")
    assert [r.status for r in manual] == ["manual", "manual"]


def test_every_probe_problem_is_counted():
    reference = {"q1": [ExpectedProbe(n, 1, 0.0, 0.0) for n in ("a", "b", "c", "d", "e")]}
    sent = StepResult("ok", probes=[_payload("b", 1), _payload("b", 1), {"name": "c", "error": "E"},
                                    _payload("d", {"__int__": "x"}), _payload("e", 2)])
    assert _q1(_run(hidden=sent), reference=reference) == \
        ("failed", "wrong result: value 'a' was not computed (and 4 more)")


def test_a_question_without_reference_probes_passes_on_its_tests():
    assert _q1(_run(hidden=StepResult("ok", probes=[_payload("double", 5)])), reference={}) == \
        ("passed", "")


def test_an_eight_character_hidden_line_counts_as_a_quote():
    steps = [*STEPS[:3], Step("hidden", "q1", "x = f(3)\nassert x == 6", "the hidden tests of q1")]
    run = _run(hidden=StepResult("error", "NameError", "x = f(3) failed"))
    assert _q1(run, plan=Plan(steps)) == \
        ("error", "a hidden test raised (message withheld: it quotes the hidden tests)")


def test_questions_after_a_hand_graded_one_are_scored():
    cells = [("code", "import math\n" + PROBE_FALLBACK, None),
             ("markdown", "### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
              {"id": "q1", "kind": "manual", "points": 1}),
             ("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION", {"id": "q2", "kind": "solution"}),
             ("code", "### BEGIN HIDDEN TESTS\nprobe('x', x)\n### END HIDDEN TESTS",
              {"id": "q2", "kind": "test", "points": 3})]
    nb = notebook(cells)
    source = parse_notebook(nb, Path("m.ipynb"))
    steps = [Step("setup", None, "", "s"), Step("answer", "q2", "x = 1", "a"),
             Step("hidden", "q2", "", "h")]
    run = RunResult([StepResult("ok"), StepResult("ok"), StepResult("ok", probes=[_payload("x", 1)])])
    results = score(source, Plan(steps), run, {"q2": [ExpectedProbe("x", 1, 0, 0)]}, LIMITS)
    assert [(r.question, r.status, r.points) for r in results] == \
        [("q1", "manual", 0.0), ("q2", "passed", 3.0)]

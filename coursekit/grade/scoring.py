"""Decide each question's points, status and message from a run (in the grader's process).

A question passes when its test cell ran without error in the submission's kernel **and** every
value its hidden tests probed matches the reference solution's value for the same probe. The
reference's values come from running the source notebook (:func:`build_reference`); tolerances
also come from the reference run, never from the submission. So a submission that switches off
``assert``, patches ``numpy.testing`` or ``print``, or fakes a clean reply can only *lose*
points: passing needs the right values.

Messages are for students: they name the failing part (answer cell, public check, hidden test,
probe) and the exception or mismatch, and never quote hidden test code.
"""

from __future__ import annotations

from dataclasses import dataclass

from coursekit.grade.plan import Plan, Step
from coursekit.grade.runner import MAX_MESSAGE_BYTES, Limits, RunResult, StepResult
from coursekit.grade.source import SourceNotebook
from coursekit.grade.values import ProbeFormatError, compare, decode

# "hand" (a manual question the instructor has scored) is set by coursekit.grade.handgrading.
STATUSES = ("passed", "failed", "error", "timeout", "missing", "invalid", "manual", "hand")
_MAX_MESSAGE = 400


class ReferenceFailure(RuntimeError):
    """The source notebook's own model answers fail its tests (an instructor error)."""


@dataclass(frozen=True)
class ExpectedProbe:
    name: str
    value: object
    rtol: float
    atol: float


@dataclass
class QuestionResult:
    """One row of the grades CSV, before the student and notebook are added."""

    question: str
    points: float
    max_points: float
    status: str
    message: str


def _describe_failure(step: Step, result: StepResult) -> str:
    what = f"{result.ename}: {result.evalue}" if result.evalue else result.ename
    return f"{step.label} ({step.role} step): {result.status} {what}".strip()


def build_reference(source: SourceNotebook, plan: Plan, run: RunResult) -> dict[str, list[dict]]:
    """Collect and check the reference probes of every auto-graded question.

    Returns ``{question: [probe payload, ...]}`` (JSON-able, for the reference cache; turn it
    into values with :func:`expected_values`). Raises :class:`ReferenceFailure` when a model
    answer or test fails, a hidden test probes nothing, or a probe cannot be sent, is sent twice
    or cannot be decoded: the instructor must fix the source.
    """
    problems = []
    if run.failure:
        problems.append(run.failure)
    payloads: dict[str, list[dict]] = {}
    for step, result in zip(plan.steps, run.steps):
        if result.status != "ok":
            problems.append(_describe_failure(step, result))
            continue
        if step.role != "hidden":
            continue
        kept = payloads.setdefault(step.question, [])
        for payload in result.probes:
            name = payload.get("name")
            if "error" in payload:
                problems.append(f"{step.question}: probe {name!r} cannot be sent: "
                                f"{payload['error']}")
            elif any(p.get("name") == name for p in kept):
                problems.append(f"{step.question}: probe {name!r} is sent more than once "
                                "(give each probe its own name)")
            else:
                kept.append(payload)
        if not kept:
            problems.append(f"{step.question}: the hidden tests sent no probe value")
    try:
        expected_values(payloads)
    except ProbeFormatError as exc:
        problems.append(str(exc))
    if problems:
        raise ReferenceFailure(f"{source.name}: the reference solution fails its own tests:\n  "
                               + "\n  ".join(problems[:10]))
    return payloads


def expected_values(payloads: dict[str, list[dict]]) -> dict[str, list[ExpectedProbe]]:
    """Decode reference payloads (see :func:`build_reference`) into values and tolerances."""
    expected = {}
    for question, probes in payloads.items():
        expected[question] = [
            ExpectedProbe(str(p["name"]), decode(p.get("value")), float(p.get("rtol", 1e-5)),
                          float(p.get("atol", 1e-8))) for p in probes]
    return expected


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _redact(text: str, hidden_code: str) -> str:
    """Withhold an exception message that quotes the hidden tests."""
    lines = [line.strip() for line in hidden_code.splitlines() if len(line.strip()) >= 8]
    if any(line in text for line in lines):
        return "(message withheld: it quotes the hidden tests)"
    return text


def _exception(result: StepResult) -> str:
    return f"{result.ename}: {result.evalue}" if result.evalue else (result.ename or "an error")


def _compare_probes(expected: list[ExpectedProbe], sent: list[dict]) -> list[str]:
    by_name: dict[str, list[dict]] = {}
    for payload in sent:
        by_name.setdefault(str(payload.get("name")), []).append(payload)
    reasons = []
    for probe in expected:
        payloads = by_name.get(probe.name, [])
        if not payloads:
            reasons.append(f"value {probe.name!r} was not computed")
            continue
        if len(payloads) > 1:
            reasons.append(f"value {probe.name!r} was sent more than once")
            continue
        payload = payloads[0]
        if "error" in payload:
            reasons.append(f"value {probe.name!r} could not be read: {payload['error']}")
            continue
        try:
            actual = decode(payload.get("value"))
        except ProbeFormatError as exc:
            reasons.append(f"value {probe.name!r} is malformed ({exc})")
            continue
        reason = compare(probe.value, actual, probe.rtol, probe.atol)
        if reason:
            reasons.append(f"{probe.name}: {reason}")
    return reasons


def _score_auto(question, steps: list[tuple[Step, StepResult]], expected: list[ExpectedProbe],
                run: RunResult, limits: Limits) -> tuple[str, str]:
    """Status and message of one auto-graded question."""
    for step, result in steps:
        if result.status == "timeout":
            if result.evalue == "notebook":
                return "timeout", (f"not finished: the notebook reached its time limit "
                                   f"({limits.notebook_timeout:g} s) at {step.label}")
            return "timeout", (f"{step.label} ran longer than the cell time limit "
                               f"({limits.cell_timeout:g} s) and was stopped")
        if result.status == "crashed":
            return "error", (f"the kernel died while running {step.label} (os._exit, a crash or "
                             f"the memory limit of {limits.memory_mb} MB); the grader restarted "
                             "it for the other questions")
        if result.status == "huge_output":
            return "error", (f"{step.label} sent a single output over "
                             f"{MAX_MESSAGE_BYTES >> 20} MB; it was stopped")
        if result.status == "not_run":
            if run.failure:
                why = f"{run.failure} (a problem of the grading machine; it will be regraded)"
            elif run.restarts_exhausted:
                why = "the kernel crashed too often"
            else:
                why = "an earlier problem stopped the run"
            return "error", f"not run: {why}"
    answers = [(s, r) for s, r in steps if s.role == "answer"]
    public = [(s, r) for s, r in steps if s.role == "public"]
    hidden = [(s, r) for s, r in steps if s.role == "hidden"]
    reasons = []
    for _step, result in hidden:
        reasons += _compare_probes(expected, result.probes)
    test_errors = [(s, r) for s, r in public + hidden if r.status == "error"]
    if not test_errors and not reasons:
        return "passed", ""
    for step, result in answers + test_errors:
        if result.ename == "NotImplementedError":
            where = answers[0][0].label if answers else step.label
            return "error", f"not answered: {where} still raises NotImplementedError"
    for step, result in answers:
        if result.status == "error":
            hint = (f" (the kernel's memory limit is {limits.memory_mb} MB)"
                    if result.ename == "MemoryError" else "")
            return "error", f"{step.label} raised {_exception(result)}{hint}"
    for step, result in test_errors:
        if step.role == "public":
            if result.ename == "AssertionError":
                return "failed", f"public check failed: {result.evalue or 'an assertion failed'}"
            return "error", f"the public check raised {_exception(result)}"
        message = _redact(_exception(result), step.code)
        if result.ename == "AssertionError":
            detail = f": {_redact(result.evalue, step.code)}" if result.evalue else ""
            return "failed", f"a hidden test failed{detail}"
        return "error", f"a hidden test raised {message}"
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return "failed", f"wrong result: {reasons[0]}{more}"


def score(source: SourceNotebook, plan: Plan, run: RunResult,
          reference: dict[str, list[ExpectedProbe]], limits: Limits) -> list[QuestionResult]:
    """Score every question of ``source`` for one submission's run."""
    pairs = list(zip(plan.steps, run.steps))
    results = []
    for question in source.questions:
        notes = plan.notes.get(question.id, [])
        if question.manual:
            if question.id not in plan.manual_answers:
                message = "graded by hand: no answer was written"
            else:
                message = "graded by hand: your answer is quoted in the feedback"
            results.append(QuestionResult(question.id, 0.0, question.points, "manual", message))
            continue
        steps = [(s, r) for s, r in pairs if s.question == question.id]
        status, message = _score_auto(question, steps, reference.get(question.id, []), run,
                                      limits)
        if notes and status != "passed":
            message = f"{message} ({'; '.join(notes)})"
        points = question.points if status == "passed" else 0.0
        results.append(QuestionResult(question.id, points, question.points, status,
                                      _clip(message)))
    return results


def whole_notebook(source: SourceNotebook, status: str, message: str) -> list[QuestionResult]:
    """The same status and message for every question (missing or invalid notebook...)."""
    return [QuestionResult(q.id, 0.0, q.points, "manual" if q.manual and status == "manual"
                           else status, _clip(message)) for q in source.questions]

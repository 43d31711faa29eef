"""Per-student, per-notebook feedback in Markdown.

The text is built only from the scoring results (statuses and messages, which never quote hidden
tests), the question titles of the source and the student's own written answers: hidden test
code and reference values cannot end up in it.
"""

from __future__ import annotations

from coursekit.grade.scoring import QuestionResult
from coursekit.grade.source import SourceNotebook

_STATUS_TEXT = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "timeout": "time limit",
    "missing": "missing",
    "invalid": "invalid",
    "manual": "to be graded by hand",
    "hand": "graded by hand",
}
HAND_MESSAGE = "graded by hand"
"""How the grades CSV's message of a hand-scored question begins (then ``": <comment>"``)."""
MAX_QUOTED_ANSWER = 3000


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _quote(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_QUOTED_ANSWER:
        text = text[:MAX_QUOTED_ANSWER] + " [...]"
    return "\n".join("> " + line for line in text.splitlines()) or "> (empty)"


def _details(result: QuestionResult) -> str:
    if result.status == "hand":  # the instructor's comment, without repeating the Result column
        return result.message.removeprefix(HAND_MESSAGE).removeprefix(": ")
    return result.message


def render(student: str, source: SourceNotebook, results: list[QuestionResult], *,
           notes: list[str] = (), manual_answers: dict[str, str] | None = None) -> str:
    """The Markdown feedback of one student for one notebook. ``results`` may be the grades
    CSV's rows of that notebook (the same fields), hand scores included."""
    manual_answers = manual_answers or {}
    auto = [r for r in results if r.status not in ("manual", "hand")]
    by_hand = [r for r in results if r.status == "hand"]
    score = sum(r.points for r in auto)
    possible = sum(r.max_points for r in auto)
    pending = sum(r.max_points for r in results if r.status == "manual")
    lines = [f"# Feedback on {source.name}", "", f"Student: {student}", "",
             f"**Automatically graded: {score:g} of {possible:g} points.**"]
    if by_hand:
        lines.append(f"**Graded by hand: {sum(r.points for r in by_hand):g} of "
                     f"{sum(r.max_points for r in by_hand):g} points.**")
        if not pending:
            lines.append(f"**Total: {sum(r.points for r in results):g} of "
                         f"{sum(r.max_points for r in results):g} points.**")
    if pending:
        lines.append(f"A further {pending:g} point(s) are still to be graded by hand.")
    lines += ["", "| Question | Points | Result | Details |", "|---|---|---|---|"]
    for result in results:
        title = source.question(result.question).title
        name = f"{result.question} ({title})" if title else result.question
        points = "-" if result.status == "manual" else f"{result.points:g}"
        lines.append(f"| {_cell(name)} | {points} / {result.max_points:g} | "
                     f"{_STATUS_TEXT.get(result.status, result.status)} | "
                     f"{_cell(_details(result)) or ' '} |")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    written = [r for r in results if r.status in ("manual", "hand") and manual_answers.get(r.question)]
    if written:
        lines += ["", "## Your answers to the questions graded by hand", ""]
        for result in written:
            lines += [f"### {result.question}", "", _quote(manual_answers[result.question]), ""]
    lines += ["", ("Grading ran more tests than the public checks in your notebook; a failed "
                   "question says which part failed and why."), ""]
    return "\n".join(lines)

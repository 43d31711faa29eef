"""Hand grading: rubrics, grading sheets, and the instructor's scores merged back into the grades.

A question of kind ``manual`` carries a rubric in the source notebook's cell metadata::

    "grade": {"id": "q8", "kind": "manual", "points": 2,
              "rubric": [{"criterion": "names the strongest filters", "points": 1},
                         {"criterion": "says what they detect, from the maps", "points": 1}]}

The criteria's points add up to the question's points. The round trip, for one class::

    python -m coursekit.grade SUBMISSIONS --out grades.csv          # answers saved in the state
    python -m coursekit.grade sheets grades.csv --out sheets/       # one CSV + HTML per question
    # ... fill the criterion columns of sheets/*.csv (a spreadsheet will do) ...
    python -m coursekit.grade merge sheets/*.csv --out grades.csv --feedback feedback/
                                             # scores into the grades and the students' feedback
    python -m coursekit.grade totals grades.csv --out totals.csv    # one row per student

The scores live in the grading run's state folder (``<out>.state/hand/``), keyed by the answer's
hash, so regrading the automatic part keeps them, while a changed answer goes back to "to be
graded by hand". A sheet names the run it came from (its ``sheet`` column); :func:`merge` checks
everything first and changes nothing when one value is wrong, and merging the same sheet twice
gives the same grades.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from coursekit.grade import feedback as feedback_md
from coursekit.grade.results import CsvError, Row, atomic_write, read_csv, write_csv
from coursekit.grade.source import Criterion, SourceNotebook, parse_rubric

HAND_STATUS = "hand"  # a manual question the instructor has scored (in scoring.STATUSES)
SHEET_COLUMNS = ("sheet", "student", "notebook", "question", "answer")
COMMENT = "comment"
_CRITERION_RE = re.compile(r"^c(\d+): .* \(max [0-9.]+\)$")


# -- rubrics ------------------------------------------------------------------------------------
def rubric_of(source: SourceNotebook, question: str) -> list[Criterion]:
    """The rubric of a manual ``question`` (validated when the source was loaded)."""
    cell = source.nb.cells[source.cells_of(question, "manual")[0].index]
    return parse_rubric(cell.metadata["grade"].get("rubric"), source.question(question).points,
                        f"{source.name}, question {question}")


# -- the answers, saved while grading -----------------------------------------------------------
def answer_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def save_answers(state: Path, student: str, answers: dict[str, dict[str, str]]) -> None:
    """Keep a student's written answers (``{notebook: {question: text}}``) for the sheets."""
    atomic_write(Path(state) / "answers" / f"{student}.json", json.dumps(answers, indent=1))


def load_answers(state: Path, student: str) -> dict[str, dict[str, str]]:
    try:
        return json.loads((Path(state) / "answers" / f"{student}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def save_notes(state: Path, student: str, notes: dict[str, list[str]]) -> None:
    """Keep the grading notes of a student's feedback (``{notebook: [note, ...]}``), so that
    the feedback can be written again when hand scores arrive."""
    atomic_write(Path(state) / "notes" / f"{student}.json", json.dumps(notes, indent=1))


def load_notes(state: Path, student: str) -> dict[str, list[str]]:
    try:
        return json.loads((Path(state) / "notes" / f"{student}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def feedback_texts(state: Path, student: str, sources: list[SourceNotebook], rows: list[Row]
                   ) -> dict[str, str]:
    """``{notebook: Markdown}`` for one student from the grades CSV's ``rows`` (hand scores
    applied) and the answers and notes grading saved in ``state``."""
    answers, notes = load_answers(state, student), load_notes(state, student)
    return {source.name: feedback_md.render(
                student, source, [r for r in rows if r.notebook == source.name],
                notes=notes.get(source.name, []), manual_answers=answers.get(source.name, {}))
            for source in sources if any(r.notebook == source.name for r in rows)}


# -- scores -------------------------------------------------------------------------------------
def _scores_file(state: Path) -> Path:
    return Path(state) / "hand" / "scores.json"


def load_scores(state: Path) -> dict[str, dict]:
    """``{"student/notebook/question": {"points", "comment", "answer"}}`` (answer = its hash)."""
    try:
        return json.loads(_scores_file(state).read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise CsvError(f"{_scores_file(state)} is damaged ({exc}); restore it or delete it "
                       "and merge the sheets again") from None


def _key(student: str, notebook: str, question: str) -> str:
    return f"{student}/{notebook}/{question}"


def apply_scores(state: Path, rows: Iterable[Row], scores: dict[str, dict] | None = None
                 ) -> list[Row]:
    """``rows`` with every manual question the instructor scored filled in (``scores``: those
    saved in ``state`` unless given).

    A score counts only for the answer it was given to: when the student's answer changed since,
    the row stays "to be graded by hand" and says why.
    """
    scores = load_scores(state) if scores is None else scores
    answers: dict[str, dict] = {}
    out = []
    for row in rows:
        score = scores.get(_key(*row.key))
        if row.status not in ("manual", HAND_STATUS) or score is None:
            out.append(row)
            continue
        if row.student not in answers:
            answers[row.student] = load_answers(state, row.student)
        text = answers[row.student].get(row.notebook, {}).get(row.question, "")
        if answer_hash(text) != score["answer"]:
            out.append(replace(row, points=0.0, status="manual", message="graded by hand: the "
                               "answer changed since it was scored; it needs a new score"))
            continue
        comment = f": {score['comment']}" if score["comment"] else ""
        out.append(replace(row, points=score["points"], status=HAND_STATUS,
                           message=f"{feedback_md.HAND_MESSAGE}{comment}"))
    return out


# -- sheets -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sheet:
    """The grading sheet of one manual question: every student's answer and the rubric."""

    notebook: str
    question: str
    title: str
    criteria: list[Criterion]
    answers: dict[str, str]  # student -> answer text ("" when nothing was written)

    @property
    def id(self) -> str:
        """Names this question's sheet in this run: changes when an answer or the rubric does."""
        parts = [self.notebook, self.question, *(c.column(i) for i, c in
                                                 enumerate(self.criteria, 1))]
        parts += [f"{s}={answer_hash(a)}" for s, a in sorted(self.answers.items())]
        return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:12]

    @property
    def stem(self) -> str:
        return f"{Path(self.notebook).stem}__{self.question}"

    def header(self) -> list[str]:
        return [*SHEET_COLUMNS, *(c.column(i) for i, c in enumerate(self.criteria, 1)), COMMENT]


def build_sheets(grades: list[Row], sources: list[SourceNotebook], state: Path) -> list[Sheet]:
    """One sheet per manual question that appears in ``grades``."""
    by_name = {s.name: s for s in sources}
    students: dict[tuple[str, str], list[str]] = {}
    for row in grades:
        if row.status in ("manual", HAND_STATUS):
            students.setdefault((row.notebook, row.question), []).append(row.student)
    written = {s: load_answers(state, s) for names in students.values() for s in names}
    sheets = []
    for (notebook, question), names in students.items():
        source = by_name.get(notebook)
        if source is None:
            raise CsvError(f"the grades mention {notebook}, which is not among the sources")
        answers = {s: written[s].get(notebook, {}).get(question, "") for s in names}
        sheets.append(Sheet(notebook, question, source.question(question).title,
                            rubric_of(source, question), answers))
    return sheets


def sheet_csv(sheet: Sheet, scores: dict[str, dict]) -> str:
    """The sheet as CSV; scores already given (for the same answer) are filled in."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(sheet.header())
    for student, answer in sorted(sheet.answers.items()):
        given = scores.get(_key(student, sheet.notebook, sheet.question))
        if given and given["answer"] == answer_hash(answer):
            marks = [f"{p:g}" for p in given["criteria"]] + [given["comment"]]
        else:
            marks = [""] * len(sheet.criteria) + [""]
        writer.writerow([sheet.id, student, sheet.notebook, sheet.question, answer, *marks])
    return buffer.getvalue()


def sheet_html(sheet: Sheet) -> str:
    """A readable view of the sheet: the rubric, then each answer (scores go in the CSV)."""
    esc = html.escape
    rubric = "".join(f"<li>{esc(c.text)} <b>({c.points:g})</b></li>" for c in sheet.criteria)
    answers = "".join(
        f"<section><h2>{esc(student)}</h2><pre>{esc(answer) or '<i>(no answer)</i>'}</pre>"
        "</section>" for student, answer in sorted(sheet.answers.items()))
    title = f"{sheet.notebook}, {sheet.question}: {sheet.title}"
    return (f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{esc(title)}</title>"
            "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;"
            "padding:0 1rem}pre{white-space:pre-wrap;background:#f6f6f6;padding:.75rem}"
            "section{border-top:1px solid #ccc}</style>"
            f"<h1>{esc(title)}</h1><p>Sheet <code>{sheet.id}</code>: enter the points per "
            f"criterion in <code>{esc(sheet.stem)}.csv</code>.</p><ol>{rubric}</ol>{answers}"
            "</html>\n")


def write_sheets(sheets: list[Sheet], folder: Path, state: Path) -> list[Path]:
    """Write ``<notebook>__<question>.csv`` and ``.html`` per sheet; remember their ids."""
    scores = load_scores(state)
    written = []
    for sheet in sheets:
        csv_path = Path(folder) / f"{sheet.stem}.csv"
        atomic_write(csv_path, sheet_csv(sheet, scores))
        atomic_write(csv_path.with_suffix(".html"), sheet_html(sheet))
        written.append(csv_path)
    known = _load_sheet_ids(state)
    known.update({s.id: {"notebook": s.notebook, "question": s.question,
                         "criteria": [c.points for c in s.criteria],
                         "answers": {k: answer_hash(v) for k, v in s.answers.items()}}
                  for s in sheets})
    atomic_write(Path(state) / "hand" / "sheets.json", json.dumps(known, indent=1))
    return written


def _load_sheet_ids(state: Path) -> dict[str, dict]:
    try:
        return json.loads((Path(state) / "hand" / "sheets.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


# -- merging ------------------------------------------------------------------------------------
def _number(text: str, limit: float, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CsvError(f"{where}: {text!r} is not a number") from None
    if not 0 <= value <= limit:
        raise CsvError(f"{where}: {value:g} points is outside 0..{limit:g}")
    return value


def _parse_row(fields: dict[str, str], sheet: dict, limits: list[float], where: str):
    """``(key, score)`` for a filled row, None for an empty one; raises CsvError otherwise."""
    student = fields["student"]
    if student not in sheet["answers"]:
        raise CsvError(f"{where}: unknown student {student!r} (not in this question's sheet)")
    if (fields["notebook"], fields["question"]) != (sheet["notebook"], sheet["question"]):
        raise CsvError(f"{where}: the row is for {fields['notebook']} {fields['question']}, "
                       f"the sheet for {sheet['notebook']} {sheet['question']}")
    marks = [fields[f"c{i}"].strip() for i in range(1, len(limits) + 1)]
    if not any(marks):
        return None
    if not all(marks):
        raise CsvError(f"{where}: fill every criterion or none (blank means not graded yet)")
    criteria = [_number(m, lim, f"{where}, criterion c{i}")
                for i, (m, lim) in enumerate(zip(marks, limits), 1)]
    score = {"points": sum(criteria), "criteria": criteria,
             "comment": fields[COMMENT].strip(), "answer": sheet["answers"][student]}
    return _key(student, sheet["notebook"], sheet["question"]), score


def read_sheet(path: Path, known: dict[str, dict]) -> dict[str, dict]:
    """The filled scores of one sheet, validated against the sheets this run wrote."""
    path = Path(path)
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError) as exc:
        raise CsvError(f"{path}: cannot read: {exc}") from None
    if not rows or tuple(rows[0][: len(SHEET_COLUMNS)]) != SHEET_COLUMNS or rows[0][-1] != COMMENT:
        raise CsvError(f"{path}: not a grading sheet (expected the columns "
                       f"{', '.join(SHEET_COLUMNS)}, c1..., {COMMENT})")
    header = [_CRITERION_RE.sub(r"c\1", name) for name in rows[0]]
    scores: dict[str, dict] = {}
    for number, values in enumerate(rows[1:], 2):
        where = f"{path}, line {number}"
        if len(values) != len(header):
            raise CsvError(f"{where}: {len(values)} fields, expected {len(header)}")
        fields = dict(zip(header, values))
        sheet = known.get(fields["sheet"])
        if sheet is None:
            raise CsvError(f"{where}: sheet {fields['sheet']!r} was not written for this grading "
                           "run (a sheet from another run, or answers changed since): write the "
                           "sheets again with `sheets` and copy the scores over")
        if len(sheet["criteria"]) != len(header) - len(SHEET_COLUMNS) - 1:
            raise CsvError(f"{where}: the criterion columns do not match the sheet's rubric")
        parsed = _parse_row(fields, sheet, sheet["criteria"], where)
        if parsed is not None:
            if parsed[0] in scores:
                raise CsvError(f"{where}: {fields['student']} is scored twice")
            scores[parsed[0]] = parsed[1]
    return scores


def merge(sheet_paths: list[Path], grades_path: Path, state: Path,
          sources: list[SourceNotebook] | None = None) -> tuple[list[Row], int]:
    """Validate every sheet, then store the scores and rewrite the grades CSV.

    Returns the new rows and how many scores were merged. Raises :class:`CsvError` (and writes
    nothing) when any sheet has a problem, or, given the ``sources`` that :func:`write_feedback`
    will use next, when a hand-graded notebook is not among them.
    """
    known = _load_sheet_ids(state)
    if not known:
        raise CsvError(f"no grading sheets were written for this run (state folder {state}); "
                       "run `python -m coursekit.grade sheets` first")
    merged: dict[str, dict] = {}
    for path in sheet_paths:
        for key, score in read_sheet(path, known).items():
            if key in merged and merged[key] != score:
                raise CsvError(f"{path}: {key} is scored differently in another sheet")
            merged[key] = score
    rows = read_csv(grades_path)
    if sources is not None:
        check_feedback_sources(rows, sources)
    scores = {**load_scores(state), **merged}
    atomic_write(_scores_file(state), json.dumps(scores, indent=1))
    rows = apply_scores(state, rows, scores)
    write_csv(rows, grades_path)
    return rows, len(merged)


def check_feedback_sources(rows: list[Row], sources: list[SourceNotebook]) -> None:
    """Raise :class:`CsvError` unless every notebook with a hand-graded question in ``rows`` is
    among ``sources`` (its question titles go into the feedback); ``merge`` asks before it writes."""
    hand = {r.notebook for r in rows if r.status in ("manual", HAND_STATUS)}
    missing = sorted(hand - {s.name for s in sources})
    if missing:
        raise CsvError(f"the grades mention {', '.join(missing)}, which is not among the sources "
                       f"({', '.join(s.name for s in sources)}): pass the course's --source")


def write_feedback(rows: list[Row], sources: list[SourceNotebook], state: Path, folder: Path
                   ) -> list[str]:
    """Rewrite ``folder/<student>/<notebook>.md`` for every notebook with a question graded by
    hand (scored or still to score), as the grading run wrote it but with the hand scores and
    comments; returns the students whose feedback was written."""
    check_feedback_sources(rows, sources)
    by_name = {s.name: s for s in sources}
    hand = {(r.student, r.notebook) for r in rows if r.status in ("manual", HAND_STATUS)}
    students = sorted({student for student, _ in hand})
    for student in students:
        mine = [r for r in rows if r.student == student and (student, r.notebook) in hand]
        chosen = [by_name[n] for n in sorted({r.notebook for r in mine})]
        for name, text in feedback_texts(state, student, chosen, mine).items():
            atomic_write(Path(folder) / student / f"{Path(name).stem}.md", text)
    return students


# -- totals -------------------------------------------------------------------------------------
def totals_csv(rows: list[Row]) -> str:
    """Per-student totals for a gradebook: student, each notebook's points, total, maximum."""
    notebooks = sorted({r.notebook for r in rows})
    points: dict[str, dict[str, float]] = {}
    maximum: dict[str, float] = {}
    pending: dict[str, int] = {}
    for row in rows:
        mine = points.setdefault(row.student, {})
        mine[row.notebook] = mine.get(row.notebook, 0.0) + row.points
        maximum[row.student] = maximum.get(row.student, 0.0) + row.max_points
        pending[row.student] = pending.get(row.student, 0) + (row.status == "manual")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *notebooks, "total", "maximum", "to_grade_by_hand"])
    for student in sorted(points):
        per_notebook = [points[student].get(n, 0.0) for n in notebooks]
        writer.writerow([student, *(f"{p:g}" for p in per_notebook), f"{sum(per_notebook):g}",
                         f"{maximum[student]:g}", pending[student]])
    return buffer.getvalue()

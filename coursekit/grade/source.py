"""Read the instructor's source notebooks (``solutions/*.ipynb``) and derive what grading needs.

A source notebook is an ordinary notebook plus a little cell metadata and nbgrader's markers (the
full authoring guide is ``README.md, "For instructors"``):

* ``metadata.grade = {"id": "q1", "kind": "solution"}`` marks an **answer cell**: code between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is the model answer; learners get a stub
  (``# YOUR CODE HERE`` / ``raise NotImplementedError()``) in its place.
* ``metadata.grade = {"id": "q1", "kind": "test", "points": 2}`` marks the **test cell** of
  question ``q1``: public self-checks first (learners see and run them), then hidden tests between
  ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``. Hidden tests call
  ``probe(name, value, rtol=..., atol=...)``: the grader compares each probed value with the value
  the reference solution gives for the same probe, in its own process.
* ``metadata.grade = {"id": "q6", "kind": "manual", "points": 1}`` marks an answer graded by hand
  (usually a Markdown cell; a model answer may sit between the solution markers).
* Every other cell is shared text or set-up code; the grader always runs the source's version.
  A set-up cell may end with a hidden region too (removed from the exercise); the first code
  cell ends with :data:`PROBE_FALLBACK` so the solutions also run outside the grader.

Nothing here executes code: :func:`load_source` parses and validates, :func:`make_exercise` derives
the learner's notebook, :mod:`coursekit.grade.plan` turns a source plus a submission into the code the
grader runs.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)

CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = "YOUR ANSWER HERE"

KINDS = ("solution", "test", "manual")
PROBE_FUNCTION = "probe"
# Ends the first code cell of every source notebook: lets the solutions run outside the grader
# (nbval, a plain Jupyter session). The grader rebinds ``probe`` before each hidden test.
PROBE_FALLBACK = f"""{BEGIN_HIDDEN}
def probe(name, value, **tolerance):  # the grader replaces this with its own probe()
    return value
{END_HIDDEN}"""
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Cell metadata that records an editor's state rather than content.
_VOLATILE_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")


class SourceError(ValueError):
    """A source notebook breaks an authoring rule; the message names the notebook, cell and rule."""


@dataclass(frozen=True)
class Question:
    """One graded item of a notebook (one row of the grades CSV per student)."""

    id: str
    points: float
    manual: bool
    title: str  # nearest Markdown heading above the question, for feedback


@dataclass(frozen=True)
class SourceCell:
    """One cell of a source notebook, classified.

    ``role`` is ``"text"`` (Markdown without metadata), ``"setup"`` (code without metadata),
    ``"solution"``, ``"test"`` or ``"manual"``. For test and set-up cells ``public`` and ``hidden``
    hold the two parts of the code (set-up cells may end with hidden code too, e.g. the fallback
    ``probe``); for solution and manual cells ``stub`` is the learner's version.
    """

    index: int
    cell_id: str
    cell_type: str
    source: str
    role: str
    question: str | None = None
    points: float = 0.0
    public: str = ""
    hidden: str = ""
    stub: str = ""


@dataclass
class SourceNotebook:
    """A parsed and validated source notebook."""

    path: Path
    nb: nbformat.NotebookNode
    cells: list[SourceCell]
    questions: list[Question]
    sha256: str
    _by_id: dict[str, Question] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """File name, e.g. ``00_warmup.ipynb`` (students' notebooks carry the same name)."""
        return self.path.name

    @property
    def max_points(self) -> float:
        return sum(q.points for q in self.questions)

    def question(self, qid: str) -> Question:
        return self._by_id[qid]

    def cells_of(self, qid: str, role: str) -> list[SourceCell]:
        return [c for c in self.cells if c.question == qid and c.role == role]


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _marker(line: str) -> str | None:
    stripped = line.strip()
    return stripped if stripped in MARKERS else None


def split_solution(source: str, stub: tuple[str, ...], where: str) -> tuple[str, int]:
    """Replace every ``BEGIN SOLUTION``/``END SOLUTION`` region by ``stub`` (indented like the
    ``BEGIN`` line); return the stubbed text and the number of regions."""
    out: list[str] = []
    inside = False
    regions = 0
    for number, line in enumerate(_lines(source), 1):
        mark = _marker(line)
        if mark == BEGIN_SOLUTION:
            if inside:
                raise SourceError(f"{where}, line {number}: nested {BEGIN_SOLUTION}")
            inside = True
            regions += 1
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in stub)
        elif mark == END_SOLUTION:
            if not inside:
                raise SourceError(f"{where}, line {number}: {END_SOLUTION} without {BEGIN_SOLUTION}")
            inside = False
        elif mark in (BEGIN_HIDDEN, END_HIDDEN):
            raise SourceError(f"{where}, line {number}: hidden-test markers belong in test cells")
        elif not inside:
            out.append(line)
    if inside:
        raise SourceError(f"{where}: {BEGIN_SOLUTION} is never closed by {END_SOLUTION}")
    return "\n".join(out), regions


def split_tests(source: str, where: str) -> tuple[str, str]:
    """Split a test cell into (public code, hidden code). The hidden region must come last."""
    public: list[str] = []
    hidden: list[str] = []
    state = "public"
    for number, line in enumerate(_lines(source), 1):
        mark = _marker(line)
        if mark == BEGIN_HIDDEN:
            if state != "public":
                raise SourceError(f"{where}, line {number}: only one hidden-test region per cell")
            state = "hidden"
        elif mark == END_HIDDEN:
            if state != "hidden":
                raise SourceError(f"{where}, line {number}: {END_HIDDEN} without {BEGIN_HIDDEN}")
            state = "after"
        elif mark in (BEGIN_SOLUTION, END_SOLUTION):
            raise SourceError(f"{where}, line {number}: solution markers belong in answer cells")
        elif state == "public":
            public.append(line)
        elif state == "hidden":
            hidden.append(line)
        elif line.strip():
            raise SourceError(f"{where}, line {number}: code after {END_HIDDEN}; the hidden "
                              "tests must end the cell")
    if state == "hidden":
        raise SourceError(f"{where}: {BEGIN_HIDDEN} is never closed by {END_HIDDEN}")
    return "\n".join(public).rstrip(), "\n".join(hidden).strip("\n")


def calls_probe(code: str) -> bool:
    """True when ``code`` contains a call ``probe(...)``."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id == PROBE_FUNCTION for node in ast.walk(tree))


def defines_probe(code: str) -> bool:
    """True when ``code`` defines ``probe`` (a ``def`` or an assignment)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == PROBE_FUNCTION:
            return True
        if isinstance(node, ast.Name) and node.id == PROBE_FUNCTION and \
                isinstance(node.ctx, ast.Store):
            return True
    return False


def _parse(code: str, where: str) -> None:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        raise SourceError(f"{where}: syntax error on line {exc.lineno}: {exc.msg}") from None


def _heading(cell) -> str | None:
    for line in cell.source.splitlines():
        if line.lstrip().startswith("#"):
            return line.lstrip("# ").strip()
    return None


@dataclass(frozen=True)
class Criterion:
    """One line of a manual question's rubric."""

    text: str
    points: float

    def column(self, number: int) -> str:
        """Its column title in a grading sheet."""
        return f"c{number}: {self.text} (max {self.points:g})"


def parse_rubric(raw, points: float, where: str) -> list[Criterion]:
    """A manual question's rubric: ``[{"criterion": text, "points": number}, ...]`` adding up to
    the question's ``points``. No rubric means one criterion, "overall", worth every point."""
    if raw is None:
        return [Criterion("overall", points)]
    if not isinstance(raw, list) or not raw:
        raise SourceError(f"{where}: 'rubric' must be a non-empty list of "
                          '{"criterion": text, "points": number}')
    criteria = []
    for item in raw:
        ok = (isinstance(item, dict) and isinstance(item.get("criterion"), str)
              and item["criterion"].strip() and not isinstance(item.get("points"), bool)
              and isinstance(item.get("points"), int | float) and item["points"] > 0)
        if not ok:
            raise SourceError(f"{where}: rubric entry {item!r} is not "
                              '{"criterion": text, "points": positive number}')
        criteria.append(Criterion(" ".join(item["criterion"].split()), float(item["points"])))
    total = sum(c.points for c in criteria)
    if abs(total - points) > 1e-9:
        raise SourceError(f"{where}: the rubric's points add up to {total:g}, the question "
                          f"is worth {points:g}")
    return criteria


def _grade_meta(cell, where: str) -> dict | None:
    meta = cell.metadata.get("grade")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise SourceError(f"{where}: metadata 'grade' must be an object")
    unknown = set(meta) - {"id", "kind", "points", "rubric"}
    if unknown:
        raise SourceError(f"{where}: unknown key(s) {sorted(unknown)} in metadata 'grade' "
                          "(allowed: id, kind, points, rubric)")
    if "rubric" in meta and meta.get("kind") != "manual":
        raise SourceError(f"{where}: only a manual question has a rubric")
    qid, kind = meta.get("id"), meta.get("kind")
    if not isinstance(qid, str) or not _ID_RE.match(qid):
        raise SourceError(f"{where}: grade id {qid!r} must be letters, digits, '_', '.' or '-'")
    if kind not in KINDS:
        raise SourceError(f"{where}: grade kind {kind!r} must be one of {', '.join(KINDS)}")
    points = meta.get("points", 0)
    if kind in ("test", "manual"):
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
            raise SourceError(f"{where}: a {kind} cell needs 'points' > 0 (got {points!r})")
    elif "points" in meta:
        raise SourceError(f"{where}: points belong on the test cell of {qid}, not its answer")
    return {"id": qid, "kind": kind, "points": float(points)}


class _NotebookParser:
    """The cells and questions of one source notebook, classified and validated cell by cell."""

    def __init__(self, path: Path):
        self.path = path
        self.cells: list[SourceCell] = []
        self.questions: list[Question] = []
        self.seen_ids: set[str] = set()
        self.title = ""
        self.probe_defined = False

    def add(self, index: int, cell) -> None:
        where = f"{self.path.name}, cell {index}"
        cell_id = cell.get("id") or f"cell-{index}"
        if cell_id in self.seen_ids:
            raise SourceError(f"{where}: duplicate cell id {cell_id!r}")
        self.seen_ids.add(cell_id)
        meta = _grade_meta(cell, where)
        if meta is None:
            self._ungraded(index, cell_id, cell, where)
            return
        qid, kind = meta["id"], meta["kind"]
        where = f"{where} ({kind} cell of {qid})"
        if kind == "solution":
            self._solution(index, cell_id, cell, qid, where)
        elif kind == "test":
            self._test(index, cell_id, cell, meta, where)
        else:  # manual
            self._manual(index, cell_id, cell, meta, where)

    def _ungraded(self, index: int, cell_id: str, cell, where: str) -> None:
        """Shared text, or set-up code (which may define the probe fallback)."""
        source = cell.source
        if cell.cell_type == "markdown":
            self.title = _heading(cell) or self.title
        if cell.cell_type != "code":
            if any(_marker(line) for line in _lines(source)):
                raise SourceError(f"{where}: markers in a cell without 'grade' metadata")
            self.cells.append(SourceCell(index, cell_id, cell.cell_type, source, "text"))
            return
        public, hidden = split_tests(source, where + " (set-up cell)")
        _parse(source, where)
        if hidden and defines_probe(hidden):
            self.probe_defined = True
        self.cells.append(SourceCell(index, cell_id, "code", source, "setup", public=public,
                                     hidden=hidden))

    def _solution(self, index: int, cell_id: str, cell, qid: str, where: str) -> None:
        source = cell.source
        if cell.cell_type != "code":
            raise SourceError(f"{where}: an answer cell must be a code cell "
                              "(use kind 'manual' for written answers)")
        stub, regions = split_solution(source, CODE_STUB, where)
        if not regions:
            raise SourceError(f"{where}: no {BEGIN_SOLUTION} ... {END_SOLUTION} region")
        _parse(source, where)
        _parse(stub, where + " [stub]")
        self.cells.append(SourceCell(index, cell_id, "code", source, "solution", qid, stub=stub))

    def _test(self, index: int, cell_id: str, cell, meta: dict, where: str) -> None:
        source, qid = cell.source, meta["id"]
        if cell.cell_type != "code":
            raise SourceError(f"{where}: a test cell must be a code cell")
        public, hidden = split_tests(source, where)
        _parse(public, where + " [public part]")
        _parse(hidden, where + " [hidden part]")
        if calls_probe(public):
            raise SourceError(f"{where}: probe() in the public part; learners' kernels have "
                              f"no probe(), move it below {BEGIN_HIDDEN}")
        if not calls_probe(hidden):
            raise SourceError(f"{where}: the hidden tests call no probe(); the grader could "
                              "not verify this question (see the README, section For instructors)")
        if not self.probe_defined:
            raise SourceError(f"{where}: the hidden tests call probe(), but no set-up cell "
                              "above defines it for runs outside the grader; end the first "
                              "code cell with:\n" + PROBE_FALLBACK)
        if any(q.id == qid for q in self.questions):
            raise SourceError(f"{where}: question {qid} already has a test or manual cell")
        if not any(c.question == qid and c.role == "solution" for c in self.cells):
            raise SourceError(f"{where}: no answer cell (kind 'solution', id {qid!r}) "
                              "above this test cell")
        self.questions.append(Question(qid, meta["points"], False, self.title))
        self.cells.append(SourceCell(index, cell_id, "code", source, "test", qid, meta["points"],
                                     public=public, hidden=hidden))

    def _manual(self, index: int, cell_id: str, cell, meta: dict, where: str) -> None:
        source, qid = cell.source, meta["id"]
        stub_lines = (MARKDOWN_STUB,) if cell.cell_type == "markdown" else CODE_STUB
        stub, _ = split_solution(source, stub_lines, where)
        if cell.cell_type == "code":
            _parse(source, where)
        if any(q.id == qid for q in self.questions):
            raise SourceError(f"{where}: question {qid} already has a test or manual cell")
        parse_rubric(cell.metadata["grade"].get("rubric"), meta["points"], where)
        self.questions.append(Question(qid, meta["points"], True, self.title))
        self.cells.append(SourceCell(index, cell_id, cell.cell_type, source, "manual", qid,
                                     meta["points"], stub=stub))

    def check(self) -> None:
        """Rules about the notebook as a whole: every answer is graded, once."""
        answered = {c.question for c in self.cells if c.role == "solution"}
        graded = {q.id for q in self.questions}
        for qid in sorted(answered - graded):
            raise SourceError(f"{self.path.name}: answer cells of {qid} have no test cell")
        for qid in sorted(graded & answered):
            if qid in {q.id for q in self.questions if q.manual}:
                raise SourceError(f"{self.path.name}: {qid} is manual but also has code answer "
                                  "cells")
        if not self.questions:
            raise SourceError(f"{self.path.name}: no graded questions (cells with metadata "
                              "'grade')")


def parse_notebook(nb: nbformat.NotebookNode, path: Path) -> SourceNotebook:
    """Classify and validate the cells of a source notebook (raises :class:`SourceError`)."""
    parser = _NotebookParser(path)
    for index, cell in enumerate(nb.cells):
        parser.add(index, cell)
    parser.check()
    notebook = SourceNotebook(path, nb, parser.cells, parser.questions,
                              hashlib.sha256(nbformat.writes(nb).encode()).hexdigest())
    notebook._by_id = {q.id: q for q in parser.questions}
    return notebook


def load_source(path: str | Path) -> SourceNotebook:
    """Read and validate one source notebook."""
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        raise SourceError(f"{path}: cannot read the notebook: {exc}") from None
    return parse_notebook(nb, path)


def load_sources(folder: str | Path) -> list[SourceNotebook]:
    """All source notebooks of ``folder`` (sorted by name); raises SourceError for a bad one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"source folder {folder} does not exist (run from the course's "
                          "folder, or give the solutions with --source DIR)")
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not paths:
        raise SourceError(f"source folder {folder} holds no notebooks")
    return [load_source(p) for p in paths]


def make_exercise(source: SourceNotebook) -> nbformat.NotebookNode:
    """The learner's version of ``source``: stubs for answers, no hidden tests, no outputs.

    Deterministic (same source, same bytes), so a stale ``exercises/`` is detected by comparing
    files. Test cells are marked non-editable and non-deletable in Jupyter (the grader restores
    them anyway). Cell ids are kept: the grader uses them to recognise cells.
    """
    from coursekit.notebooks import strip_notebook

    nb = copy.deepcopy(source.nb)
    for cell, info in zip(nb.cells, source.cells):
        cell["id"] = info.cell_id
        for key in _VOLATILE_METADATA:
            cell.metadata.pop(key, None)
        if info.role in ("solution", "manual"):
            cell.source = info.stub
        elif info.role == "test":
            cell.source = info.public
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
        elif info.role == "setup" and info.hidden:
            cell.source = info.public
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return strip_notebook(nb)


def exercise_text(source: SourceNotebook) -> str:
    """The exact bytes (as text) ``coursekit.exercises build`` writes for ``source``."""
    text = nbformat.writes(make_exercise(source))
    return text if text.endswith("\n") else text + "\n"

"""Turn a source notebook (plus a student's submission) into the list of code steps to run.

The grader never runs a submission as it is. It rebuilds the notebook from the source:

* shared set-up cells and every test cell come from the source (hidden tests included), so
  deleting or editing them in a submission changes nothing;
* each answer cell comes from the submission, matched by its ``grade`` metadata (or, when the
  metadata was lost, by the cell id the generator gave it); a missing answer gets the stub, so it
  fails like an unanswered one;
* code cells a student added run in place, after the nearest recognised cell above them;
* test cells run as two steps, public part then hidden part, so feedback can say which failed.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from coursekit.grade.source import SourceNotebook

MAX_NOTEBOOK_BYTES = 50 << 20
HIDDEN_PREFIX = "probe = __grade_probe__  # the grader's probe, whatever the submission defined\n"


class InvalidSubmission(ValueError):
    """A submitted file cannot be graded at all (the message is shown to the student)."""


@dataclass(frozen=True)
class Step:
    """One unit of code the grader sends to the kernel.

    ``role`` is ``setup``, ``answer``, ``extra`` (a student's own cell), ``public``, ``hidden``
    or ``manual``; ``question`` is the question it belongs to (None for set-up and extra cells);
    ``label`` names it in messages ("your answer cell for q1", "the public check of q1",
    "your added cell 2").
    """

    role: str
    question: str | None
    code: str
    label: str


@dataclass
class Plan:
    """The steps to run plus what the assembly noticed about the submission."""

    steps: list[Step]
    notes: dict[str, list[str]] = field(default_factory=dict)  # question -> remarks
    manual_answers: dict[str, str] = field(default_factory=dict)  # written (non-stub) answers
    extra_cells: int = 0


def read_submission(path: Path) -> nbformat.NotebookNode:
    """Read a submitted notebook defensively; raise :class:`InvalidSubmission` with the reason.

    Symbolic links are refused (a link could point at the instructor's solutions), as are files
    over 50 MB, invalid JSON and JSON that is not a notebook.
    """
    info = os.lstat(path)  # FileNotFoundError: the caller reports a missing notebook
    if stat.S_ISLNK(info.st_mode):
        raise InvalidSubmission("the notebook is a symbolic link, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidSubmission("the notebook is not a regular file")
    if info.st_size > MAX_NOTEBOOK_BYTES:
        raise InvalidSubmission(f"the notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(MAX_NOTEBOOK_BYTES + 1)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidSubmission("the file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InvalidSubmission(f"the file is not valid JSON ({exc.msg} at line {exc.lineno})") \
            from None
    except RecursionError:
        raise InvalidSubmission("the file is not a notebook (JSON nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise InvalidSubmission("the file is JSON but not a Jupyter notebook (no cell list)")
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as exc:
        raise InvalidSubmission(f"the file is not a valid notebook ({type(exc).__name__})") \
            from None
    for cell in nb.cells:
        if not isinstance(cell, dict) or not isinstance(cell.get("source", ""), str):
            raise InvalidSubmission("the notebook has malformed cells")
        if not isinstance(cell.get("metadata", {}), dict):
            cell["metadata"] = nbformat.NotebookNode()
    return nb


def locate_notebook(folder: Path, name: str, depth: int = 3) -> list[Path]:
    """Where a student's notebook ``name`` is: ``folder/name`` if that exists, else every file
    of that name in subfolders up to ``depth`` deep (downloads from a learning platform often
    nest them). Hidden and symbolically linked folders are not searched."""
    direct = folder / name
    if os.path.lexists(direct):
        return [direct]
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        level = len(Path(root).relative_to(folder).parts)
        dirs[:] = [] if level >= depth else sorted(d for d in dirs if not d.startswith("."))
        if name in files:
            found.append(Path(root) / name)
    return found


def reference_plan(source: SourceNotebook) -> Plan:
    """Steps that run the source notebook itself (the model answers) to get reference values."""
    answers = {c.index: c.source for c in source.cells if c.role in ("solution", "manual")}
    return _assemble(source, answers, {})


def submission_plan(source: SourceNotebook, submission: nbformat.NotebookNode) -> Plan:
    """Steps that grade ``submission`` against ``source`` (see the module docstring)."""
    by_id = {c.cell_id: c for c in source.cells}
    slots: dict[str, list] = {}  # question -> its answer cells in the source, in order
    for cell in source.cells:
        if cell.role == "solution":
            slots.setdefault(cell.question, []).append(cell)
    answers: dict[int, str] = {}
    manual: dict[str, str] = {}
    extras: dict[int, list[str]] = {}
    anchor = -1
    for cell in submission.cells:
        meta = cell.get("metadata", {}).get("grade")
        meta = meta if isinstance(meta, dict) else {}
        kind, qid = meta.get("kind"), meta.get("id")
        target = None
        if kind == "solution" and qid in slots:
            free = [c for c in slots[qid] if c.index not in answers]
            target = free[0] if free else None
        elif kind in ("manual", "test") and qid in source._by_id:
            target = next((c for c in source.cells if c.question == qid and c.role == kind), None)
        if target is None and cell.get("id") in by_id:
            known = by_id[cell["id"]]
            if known.role != "solution" or known.index not in answers:
                target = known
        if target is not None:
            if target.role == "solution" and cell.get("cell_type") == "code":
                answers[target.index] = cell.get("source", "")
            elif target.role == "manual":
                text = cell.get("source", "")
                if text.strip() and text.strip() != target.stub.strip():
                    manual[target.question] = text
                answers[target.index] = text
            anchor = target.index
        elif cell.get("cell_type") == "code" and cell.get("source", "").strip():
            extras.setdefault(anchor, []).append(cell["source"])
    plan = _assemble(source, answers, extras)
    plan.manual_answers = manual
    for cell in source.cells:
        if cell.role == "solution" and cell.index not in answers:
            plan.notes.setdefault(cell.question, []).append(
                f"your answer cell for {cell.question} was missing (deleted, or its metadata "
                "was lost), so the unanswered stub was graded")
    plan.extra_cells = sum(len(v) for v in extras.values())
    return plan


def _assemble(source: SourceNotebook, answers: dict[int, str], extras: dict[int, list[str]]
              ) -> Plan:
    steps: list[Step] = []
    added = 0

    def add_extras(anchor: int) -> None:
        nonlocal added
        for code in extras.get(anchor, ()):
            added += 1
            steps.append(Step("extra", None, code, f"your added cell {added}"))

    add_extras(-1)
    code_cells = 0
    for cell in source.cells:
        code_cells += cell.cell_type == "code"
        qid = cell.question
        if cell.role == "setup":
            steps.append(Step("setup", None, cell.source, f"set-up code cell {code_cells}"))
        elif cell.role == "solution":
            several = len(source.cells_of(qid, "solution")) > 1
            label = f"your answer cell for {qid}" + (f" (code cell {code_cells})" if several
                                                     else "")
            steps.append(Step("answer", qid, answers.get(cell.index, cell.stub), label))
        elif cell.role == "test":
            if cell.public.strip():
                steps.append(Step("public", qid, cell.public, f"the public check of {qid}"))
            steps.append(Step("hidden", qid, HIDDEN_PREFIX + cell.hidden,
                              f"the hidden tests of {qid}"))
        elif cell.role == "manual" and cell.cell_type == "code":
            steps.append(Step("manual", qid, answers.get(cell.index, cell.stub),
                              f"your answer cell for {qid}"))
        add_extras(cell.index)
    return Plan(steps)

"""Synthetic submissions of any exercise, made from its source notebook (for the benchmarks).

* ``correct``: every answer cell holds the model answer (markers removed), as a strong student's;
* ``half``: every other question answered, the rest left as the stub;
* ``untouched``: the exercise as learners get it;
* ``crashing``: correct, except that the first answer kills its kernel (``os._exit``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from coursekit.grade.source import MARKERS, SourceNotebook, make_exercise

KINDS = ("correct", "half", "untouched", "crashing")


def _model_answer(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.strip() not in MARKERS)


def submission(source: SourceNotebook, kind: str) -> nbformat.NotebookNode:
    """The learner's notebook of ``source`` filled in as a student of ``kind`` would."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    nb = make_exercise(source)
    if kind == "untouched":
        return nb
    answered = [q.id for q in source.questions]
    if kind == "half":
        answered = answered[::2]
    first = True
    for cell, info in zip(nb.cells, source.cells):
        if info.role in ("solution", "manual") and info.question in answered:
            cell.source = _model_answer(info.source)
            if kind == "crashing" and first and info.role == "solution":
                cell.source = "import os\nos._exit(1)\n" + cell.source
                first = False
    return copy.deepcopy(nb)


def write_class(source: SourceNotebook, folder: Path, size: int) -> list[str]:
    """``size`` students cycling through :data:`KINDS`; returns their kinds in order."""
    kinds = [KINDS[i % len(KINDS)] for i in range(size)]
    for i, kind in enumerate(kinds):
        path = Path(folder) / f"s{i:02d}_{kind}" / source.name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(submission(source, kind), path)
    return kinds

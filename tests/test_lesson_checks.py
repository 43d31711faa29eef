"""Every lesson's checked cells print what the committed notebook says they print.

A lesson's last code cell (tag ``nbval-check-output``) prints verdicts: do PyTorch and Keras
agree, does each claim of the lesson hold. The committed notebook keeps that cell's output, and the
run must reproduce it word for word, as ``nbval --nbval-lax`` would. The run compared is the book
build's (``tests/_site.py``): it executes every lesson and fails on any cell that raises, so the
lessons run once per ``make test``. ``tests/test_agreement_notebooks.py`` repeats the comparison
under another numeric back-end.
"""

from __future__ import annotations

import nbformat
import pytest
from _site import LESSONS, build_site, executed_notebook

pytestmark = pytest.mark.slow
CHECK_TAG = "nbval-check-output"


def _stdout(cell) -> str:
    """What a cell printed: its stdout streams joined, trailing spaces dropped (the book merges a
    cell's streams into one, as nbval compares them)."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


@pytest.fixture(scope="module")
def built():
    return build_site()


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_checked_cells_print_the_committed_verdicts(built, lesson):
    committed = nbformat.read(lesson, as_version=4)
    checked = [c for c in committed.cells if CHECK_TAG in c.metadata.get("tags", [])]
    assert checked, f"{lesson.name} has no cell tagged {CHECK_TAG!r}"
    executed = executed_notebook(lesson, as_downloaded=True)
    assert executed is not None, f"the book build has no executed copy of {lesson.name}"
    ran = {c.get("id"): c for c in executed.cells}
    for cell in checked:
        assert cell.get("id") in ran, f"{lesson.name}: checked cell {cell.get('id')} not in the build"
        expected, got = _stdout(cell), _stdout(ran[cell["id"]])
        assert expected.strip(), f"{lesson.name}: checked cell {cell['id']} has no committed output"
        assert got == expected, (
            f"{lesson.name}, checked cell {cell['id']}: the run printed\n{got}\ninstead of\n{expected}")


"""Structure of the lesson notebooks, checked without running them (fast).

Every notebook in ``book/``:
* is named ``NN_slug.ipynb``, has one ``# Title``, "What you will learn" and "What you can now do";
* starts its code (after the Colab set-up cell) with ``import utils`` (the import-order guard);
* pairs its framework cells: each run of ``pytorch``-tagged code cells is immediately followed by
  ``tensorflow``-tagged twins (the website turns each run into one tab group);
* ends its code with a cell tagged ``nbval-check-output`` whose committed output is stable text,
  and shows readers no ``# NBVAL_CHECK_OUTPUT`` comment (the tag does the same for nbval);
* is committed stripped (``python -m coursekit.notebooks strip``);
* is reached by ``_toc.yml`` (as is every notebook in ``exercises/``).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml
from sphinx.util.matching import patmatch

from coursekit.notebooks import CHECK_MARKER, CHECK_TAG, is_check_cell, is_stripped
from coursekit.setup_cell import CELL_ID as SETUP_CELL_ID

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "book").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
FRAMEWORKS = ("pytorch", "tensorflow")
lessons = pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _markdown_lines(nb) -> list[str]:
    """Markdown lines outside fenced code blocks."""
    lines, fenced = [], False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            elif not fenced:
                lines.append(line)
    return lines


def _toc_entries() -> tuple[set[str], list[str]]:
    """(files, glob patterns) of _toc.yml, as docnames without suffix."""
    files, globs = set(), []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.add(re.sub(r"\.(ipynb|md|rst)$", "", node["file"]))
            if "glob" in node:
                globs.append(node["glob"])
            if "root" in node:
                files.add(re.sub(r"\.(ipynb|md|rst)$", "", node["root"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    return files, globs


def _in_toc(path: Path) -> bool:
    docname = path.relative_to(ROOT).with_suffix("").as_posix()
    files, globs = _toc_entries()
    return docname in files or any(patmatch(docname, pattern) for pattern in globs)


def test_there_are_lessons():
    assert LESSONS, "no notebooks in book/"


@lessons
def test_name_title_and_learning_goals(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), \
        f"{path.name}: lessons are named NN_slug.ipynb (lower case)"
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert nb.cells and nb.cells[0].cell_type == "markdown" and \
        nb.cells[0].source.lstrip().startswith("# "), "the first cell must be '# Title' markdown"
    lines = _markdown_lines(nb)
    titles = [line for line in lines if re.match(r"#\s", line)]
    assert len(titles) == 1, f"exactly one '# ' title per lesson, found {titles}"
    text = "\n".join(lines).lower()
    for phrase in ("what you will learn", "what you can now do"):
        assert phrase in text, f"the lesson needs a '{phrase}' section"


@lessons
def test_first_code_cell_imports_utils(path):
    # The Colab/Binder set-up cell (coursekit.setup_cell, checked in tests/test_colab.py) comes
    # first and imports nothing of the course; the lesson's own code starts right after it.
    code = [c for c in _read(path).cells if c.cell_type == "code" and c.get("id") != SETUP_CELL_ID]
    assert code, "no code cells"
    first = [ln for ln in code[0].source.splitlines() if ln.strip() and not ln.startswith("#")]
    assert first and re.match(r"import utils\b", first[0]), \
        "the first code cell must start with `import utils` (import-order guard)"
    assert not code[0].metadata.get("tags"), "the first code cell is shared (no framework tag)"


@lessons
def test_framework_cells_come_in_tagged_pairs(path):
    nb = _read(path)
    runs, current = [], None
    for i, cell in enumerate(nb.cells):
        tags = [t for t in cell.metadata.get("tags", []) if t in FRAMEWORKS]
        assert len(tags) <= 1, f"cell {i} is tagged with both frameworks"
        if tags and cell.cell_type != "code":
            pytest.fail(f"cell {i}: only code cells carry framework tags (a {cell.cell_type} "
                        "cell cannot go into a tab)")
        if not tags or "remove-cell" in cell.metadata.get("tags", []):
            current = None
            continue
        if current is None or (current[-1] == "tensorflow" and tags[0] == "pytorch"):
            current = []
            runs.append((i, current))
        current.append(tags[0])
    assert runs, "no framework cells: tag PyTorch cells 'pytorch' and their twins 'tensorflow'"
    for start, run in runs:
        assert run[0] == "pytorch" and run[-1] == "tensorflow", (
            f"cells from {start}: {run}: each PyTorch step must be immediately followed by its "
            "TensorFlow twin (no markdown or shared cell in between)")


@lessons
def test_ends_with_a_stable_check_cell(path):
    code = [c for c in _read(path).cells if c.cell_type == "code"]
    last = code[-1]
    assert is_check_cell(last), f"the last code cell must be tagged {CHECK_TAG!r}"
    assert not set(last.metadata.get("tags", [])) & set(FRAMEWORKS), \
        "the check cell is shared (no framework tag)"
    outputs = last.get("outputs", [])
    assert outputs, ("the check cell has no committed output: run "
                     f"`python -m coursekit.notebooks execute {path.relative_to(ROOT)}`")
    assert last.execution_count is not None, "nbval ignores a check cell with no execution count"
    text = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)
    assert text.strip(), "the check cell should print its result as text"
    assert not re.search(r"0x[0-9a-fA-F]{6,}", text), "memory addresses in the check output"
    assert not re.search(r"\d+(\.\d+)?\s*(s|ms|sec|seconds)\b", text), \
        "timings in the check output are not stable"


@lessons
def test_committed_stripped(path):
    assert is_stripped(path), f"run `python -m coursekit.notebooks strip {path.relative_to(ROOT)}`"


@pytest.mark.parametrize("path", LESSONS + EXERCISES, ids=[p.stem for p in LESSONS + EXERCISES])
def test_in_table_of_contents(path):
    assert _in_toc(path), f"{path.relative_to(ROOT)} is not reached by _toc.yml"


@pytest.mark.parametrize("path", [*LESSONS, *sorted((ROOT / "solutions").glob("*.ipynb"))],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_nbval_comment_shown_to_readers(path):
    marker = CHECK_MARKER.lstrip("# ")
    shown = [i for i, cell in enumerate(_read(path).cells)
             if cell.cell_type == "code" and marker in cell.source]
    assert not shown, (f"cells {shown} carry the comment {CHECK_MARKER!r}, which readers see: "
                       f"tag the cell {CHECK_TAG!r} instead")

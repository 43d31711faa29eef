"""The set-up cell that starts every notebook: one click on Colab or Binder, nothing at home.

Every lesson (``book/``), source (``solutions/``) and exercise (``exercises/``, generated from the
sources) starts its code with the same short cell. In the course's own environment ``utils`` is
installed, so the cell does nothing visible. Where it is missing (Colab, a plain Jupyter) it
pip-installs the course's helper package and says so in one line. The package comes from the
repository (:data:`utils._source.PIP_SOURCE`, the one place that sets URL and version), or from
whatever pip requirement the environment variable ``CNN_COURSE_PIP_SOURCE`` names (a wheel, a
``git+`` URL).

Command line::

    python -m coursekit.setup_cell apply [FILE...]   # insert or update the cell (default: book/
                                                     #   and solutions/; then `make exercises`)
    python -m coursekit.setup_cell check [FILE...]   # exit 1 if a notebook lacks the current cell
                                                     #   (default: book/, solutions/, exercises/)

``apply`` is idempotent: the cell is recognised by its cell id (:data:`CELL_ID`) or its first
line, replaced by the current text and moved right before the first other code cell (after the
title and the introduction). For the grader it is an ordinary set-up cell: it runs (and does
nothing, because the grader's kernels import ``utils``) and is never graded; the stand-in
``probe()`` stays at the end of the next code cell.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from utils._source import PIP_SOURCE, PIP_SOURCE_ENV

ROOT = Path(__file__).resolve().parent.parent
CELL_ID = "course-setup"
FIRST_LINE = ("# Set-up for Colab or a plain Jupyter: installs the course's helpers (utils) "
              "if they are missing.")


def cell_source() -> str:
    """The current text of the set-up cell."""
    return "\n".join([
        FIRST_LINE,
        "import importlib.util, os, subprocess, sys",
        'if importlib.util.find_spec("utils") is None:',
        f'    source = os.environ.get("{PIP_SOURCE_ENV}", "{PIP_SOURCE}")',
        '    print(f"Installing the course\'s helper package: pip install {source}")',
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-qq", source], check=True)',
        "    importlib.invalidate_caches()",
    ])


def _is_setup_cell(cell) -> bool:
    return cell.get("id") == CELL_ID or (
        cell.get("cell_type") == "code"
        and cell.get("source", "").lstrip().startswith("# Set-up for Colab"))


def find_setup_cell(nb: nbformat.NotebookNode) -> int | None:
    """Index of the set-up cell in ``nb``, or None."""
    return next((i for i, cell in enumerate(nb.cells) if _is_setup_cell(cell)), None)


def with_setup_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with exactly one current set-up cell, right before its first other code cell."""
    cells = [cell for cell in nb.cells if not _is_setup_cell(cell)]
    first_code = next((i for i, cell in enumerate(cells) if cell.cell_type == "code"), len(cells))
    cell = nbformat.v4.new_code_cell(cell_source())
    cell["id"] = CELL_ID
    cells.insert(first_code, cell)
    nb.cells = cells
    return nb


def problem(path: Path) -> str | None:
    """Why ``path`` does not start its code with the current set-up cell (None when it does)."""
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    index = find_setup_cell(nb)
    if index is None:
        return f"{path}: no set-up cell"
    if not code or code[0] is not nb.cells[index]:
        return f"{path}: the set-up cell is not the first code cell"
    if sum(_is_setup_cell(cell) for cell in nb.cells) > 1:
        return f"{path}: more than one set-up cell"
    cell = nb.cells[index]
    if cell.source != cell_source() or cell.get("id") != CELL_ID:
        return f"{path}: the set-up cell is out of date"
    if cell.get("outputs") or cell.metadata.get("tags"):
        return f"{path}: the set-up cell must have no outputs and no tags"
    return None


def apply_file(path: Path) -> bool:
    """Insert or update the set-up cell of ``path`` in place; return True when it changed."""
    from coursekit.notebooks import _write

    if problem(path) is None:
        return False
    nb = with_setup_cell(nbformat.read(path, as_version=4))
    nb.nbformat_minor = max(nb.nbformat_minor, 5)  # cell ids need nbformat 4.5
    _write(nb, path)
    return True


def default_files(command: str) -> list[Path]:
    folders = ("book", "solutions") + (("exercises",) if command == "check" else ())
    return [p for folder in folders for p in sorted((ROOT / folder).glob("*.ipynb"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.setup_cell", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("apply", "check"))
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    files = args.files or default_files(args.command)
    status = 0
    for path in files:
        if not path.is_file():
            print(f"{path}: no such notebook", file=sys.stderr)
            status = 1
        elif args.command == "apply":
            if apply_file(path):
                print(f"{path}: set-up cell written")
        elif (reason := problem(path)) is not None:
            print(reason, file=sys.stderr)
            status = 1
    if args.command == "apply" and not args.files:
        print("set-up cells up to date in book/ and solutions/; "
              "run `make exercises` to carry them into exercises/")
    elif args.command == "check" and status:
        print("run `python -m coursekit.setup_cell apply` (then `make exercises`)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

"""The built website, shared by the tests that read it: built once per run, only when stale.

``coursekit.build_book`` executes every lesson (a cell that raises fails the build) and keeps the
executed copies in ``_build/jupyter_execute``; ``tests/test_lesson_checks.py`` compares their checked
cells and ``tests/test_website.py`` opens the pages in a browser. Building here, rather than running
nbval over ``book/`` as well, executes each lesson once per ``make test`` instead of twice.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
EXECUTED = BUILD / "jupyter_execute"
DOWNLOADS = HTML / "_downloads" / "executed"  # the executed notebooks offered on the pages
STAMP = BUILD / ".inputs-hash"  # written by coursekit.build_book after a successful build
LESSONS = sorted((ROOT / "book").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))


def site_is_stale() -> bool:
    """True when ``_build/html`` is missing, or older than anything its pages depend on."""
    from coursekit.build_book import inputs_hash

    if not (HTML / "index.html").is_file() or not STAMP.is_file():
        return True
    if STAMP.read_text().strip() != inputs_hash():
        return True
    sources = [*LESSONS, *EXERCISES, *(ROOT / "_static").rglob("*"),
               *(ROOT / "_templates").rglob("*"), ROOT / "coursekit" / "build_book.py",
               ROOT / "_config.yml", ROOT / "_toc.yml", ROOT / "intro.md"]
    built = STAMP.stat().st_mtime
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


def build_site() -> Path:
    """Build the website when stale (a failed build fails the calling test with its log)."""
    if site_is_stale():
        proc = subprocess.run([sys.executable, "-m", "coursekit.build_book"], cwd=ROOT, check=False,
                              capture_output=True, text=True)
        if proc.returncode:
            pytest.fail("the book build failed:\n" + (proc.stdout + proc.stderr)[-8000:])
    return HTML


def executed_notebook(notebook: Path, *, as_downloaded: bool = False) -> nbformat.NotebookNode | None:
    """The lesson as the book build executed it, or None when the build has no copy of it.

    ``as_downloaded``: the copy the page offers, whose outputs are what the page shows (myst-nb's
    own copy keeps the stream outputs it merged into a cell's first stream)."""
    executed = (DOWNLOADS if as_downloaded else EXECUTED) / notebook.relative_to(ROOT)
    return nbformat.read(executed, as_version=4) if executed.is_file() else None

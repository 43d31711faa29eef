"""Keep committed notebooks small and stable, and execute them the way the book does.

Command line::

    python -m coursekit.notebooks strip FILE...     # strip outputs in place (see strip_notebook)
    python -m coursekit.notebooks check FILE...     # exit 1 if any FILE is not stripped
    python -m coursekit.notebooks execute FILE...   # execute in place with nbclient, then strip

Committed notebooks keep outputs only for cells tagged ``nbval-check-output`` (the tag form of
nbval's ``# NBVAL_CHECK_OUTPUT`` comment, which would show on the website): nbval
(``--nbval-lax``) compares exactly those cells, so their reference output must be committed.
Everything else (other outputs, execution counts, timings, kernel versions) changes on every run
and would only make diffs noisy; the website shows outputs executed at build time instead.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import nbformat

CHECK_TAG = "nbval-check-output"
"""The cell tag that makes nbval compare a cell's output (``--nbval-lax``)."""
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
"""nbval's comment form of the same marker: not used in the course (readers would see it)."""
CHECK_EXECUTION_COUNT = 1

# Cell metadata that changes on every run or only records a user's editor state.
_VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled", "papermill",
                           "pycharm", "vscode", "colab", "outputId", "id")
# Notebook metadata worth keeping; everything else (widget state, editor settings) is dropped.
_KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info", "jupytext", "celltoolbar")
# language_info.version is the kernel's Python version: volatile across machines.
_KEPT_LANGUAGE_INFO = ("name", "pygments_lexer", "codemirror_mode", "file_extension", "mimetype",
                       "nbconvert_exporter")
DEFAULT_KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python",
                      "name": "python3"}
# Outputs that should be kept in a check cell; stderr is noise (warnings, progress bars).
_KEPT_OUTPUT_TYPES = ("stream", "execute_result", "display_data")


def is_check_cell(cell) -> bool:
    """True for a code cell tagged ``nbval-check-output``."""
    return cell.get("cell_type") == "code" and CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def _clean_output(output: dict) -> dict | None:
    if output.get("output_type") not in _KEPT_OUTPUT_TYPES:
        return None  # errors in a committed notebook are a bug, never a reference
    if output["output_type"] == "stream" and output.get("name") != "stdout":
        return None
    output = copy.deepcopy(output)
    if output["output_type"] == "execute_result":
        output["execution_count"] = CHECK_EXECUTION_COUNT
    return output


def strip_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a stripped copy of ``nb``.

    * outputs are kept only in cells tagged ``nbval-check-output`` (stdout, results and displays;
      stderr and errors are dropped);
    * execution counts are cleared, except in check cells with outputs, which get a fixed count
      of 1 (nbval does not compare a cell without a count);
    * volatile cell metadata (timings, editor state) and notebook metadata other than the
      kernelspec and a version-free ``language_info`` are removed;
    * cell tags (``pytorch``, ``tensorflow``, ``remove-stderr`` ...) are kept.
    """
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for key in _VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.metadata.get("jupyter") == {}:
            cell.metadata.pop("jupyter")
        if cell.cell_type == "markdown":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
        if cell.cell_type != "code":
            continue
        if is_check_cell(cell) and cell.get("outputs"):
            kept = (_clean_output(o) for o in cell.get("outputs", []))
            cell.outputs = [nbformat.from_dict(o) for o in kept if o is not None]
            # nbval skips the comparison for a cell whose execution_count is None ("unrun"), and
            # fails one that has outputs but no count: a fixed count keeps it checked and stable.
            cell.execution_count = CHECK_EXECUTION_COUNT
        else:
            cell.execution_count = None
            cell.outputs = []
    metadata = {k: nb.metadata[k] for k in _KEPT_NOTEBOOK_METADATA if k in nb.metadata}
    metadata.setdefault("kernelspec", dict(DEFAULT_KERNELSPEC))
    info = metadata.get("language_info")
    if info is not None:
        metadata["language_info"] = {k: info[k] for k in _KEPT_LANGUAGE_INFO if k in info}
    nb.metadata = nbformat.from_dict(metadata)
    nb.nbformat, nb.nbformat_minor = 4, max(nb.get("nbformat_minor", 5), 5)
    return nb


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _write(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write ``nb`` to ``path`` atomically, in Jupyter's own format (1-space indent)."""
    nbformat.validate(nb)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        nbformat.write(nb, fh)
    os.replace(tmp, path)


def is_stripped(path: str | os.PathLike) -> bool:
    """True when ``path`` is already stripped (``strip`` would not change it)."""
    nb = _read(Path(path))
    return strip_notebook(nb) == nb


def strip_file(path: str | os.PathLike) -> bool:
    """Strip ``path`` in place; return True when it changed."""
    path = Path(path)
    nb = _read(path)
    stripped = strip_notebook(nb)
    if stripped == nb:
        return False
    _write(stripped, path)
    return True


_KERNEL_CONFIG = """\
# Written by coursekit.notebooks for kernels that execute the course notebooks.
# C-level output (TensorFlow's absl log lines at import: "oneDNN custom operations are on",
# "Could not find cuda drivers", which ignore TF_CPP_MIN_LOG_LEVEL) goes to the terminal of the
# process that started the kernel instead of into the notebook. Python's own stderr (warnings,
# exceptions, progress bars) is still captured as usual.
c.IPKernelApp.capture_fd_output = False
"""

# An IPython start-up file for the kernels that execute the book (never for learners: it lives in
# the private IPYTHONDIR below). Figures go to the page as PNG or JPEG, whichever is smaller
# (photographic grids are several times smaller as JPEG; line art stays crisp PNG), and each
# figure's output metadata records the smallest text it draws, in image pixels, which the website
# test turns into the size a reader sees (tests/test_website.py).
FIGURE_METADATA_KEY = "cnn-course"
_FIGURE_STARTUP = """\
# Written by coursekit.notebooks: book build only (see coursekit/notebooks.py).
def _cnn_course_figures():
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter
    original = formatter.format

    def smallest_text_px(fig):
        from matplotlib.text import Text

        hidden = set()  # an axis that is switched off draws neither its ticks nor its label
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                if not (ax.axison and axis.get_visible()):
                    hidden.update(id(text) for text in axis.findobj(Text))
        sizes = [text.get_fontsize() * fig.dpi / 72 for text in fig.findobj(Text)
                 if text.get_visible() and text.get_text().strip() and id(text) not in hidden]
        return round(min(sizes), 2) if sizes else None

    def palette_png(png):
        # The same PNG with at most 256 colours, when that is clearly smaller and no pixel
        # visibly changes on average (colormaps have 256 entries; antialiased edges add
        # near-duplicates; a photograph would band, and stays as it is).
        import io

        import numpy as np
        from PIL import Image

        image = Image.open(io.BytesIO(png)).convert("RGB")
        palette = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        error = np.abs(np.asarray(palette.convert("RGB"), np.int16) - np.asarray(image, np.int16))
        buffer = io.BytesIO()
        palette.save(buffer, format="png", optimize=True)
        smaller = buffer.getvalue()
        if len(smaller) < 0.8 * len(png) and error.mean() < 0.75:
            return smaller
        return png

    def format(obj, include=None, exclude=None):
        data, metadata = original(obj, include=include, exclude=exclude)
        try:
            from matplotlib.figure import Figure
            if not isinstance(obj, Figure) or "image/png" not in data:
                return data, metadata
            from IPython.core.pylabtools import print_figure

            import base64

            png = data["image/png"]  # base64 text or bytes, depending on IPython's version
            png = base64.b64decode(png) if isinstance(png, str) else png
            jpeg = print_figure(obj, "jpeg", bbox_inches="tight", pil_kwargs={"quality": 88})
            if len(jpeg) < 0.7 * len(png):  # photographic: JPEG; line art and heatmaps: PNG
                data = {k: v for k, v in data.items() if k != "image/png"}
                data["image/jpeg"] = jpeg
                metadata = {("image/jpeg" if k == "image/png" else k): v
                            for k, v in metadata.items()}
            else:
                data = {**data, "image/png": palette_png(png)}
            mime = "image/jpeg" if "image/jpeg" in data else "image/png"
            entry = dict(metadata.get(mime, {}))
            entry["@KEY@"] = {"smallest_text_px": smallest_text_px(obj)}
            metadata = {**metadata, mime: entry}
        except Exception as error:  # never break a lesson over a website detail
            import sys
            print(f"coursekit figure hook: {error!r}", file=sys.__stderr__)
        return data, metadata

    formatter.format = format


_cnn_course_figures()
del _cnn_course_figures
""".replace("@KEY@", FIGURE_METADATA_KEY)
_ipython_dir: str | None = None


def ipython_dir() -> str:
    """A private IPYTHONDIR (deleted at exit) whose kernel config keeps C-level logs out of cells.

    A private profile also keeps a user's own IPython start-up files out of the build.
    """
    global _ipython_dir
    if _ipython_dir is None:
        import atexit
        import shutil
        import tempfile

        path = Path(tempfile.mkdtemp(prefix="cnn-course-ipython-"))
        profile = path / "profile_default"
        profile.mkdir()
        (profile / "ipython_kernel_config.py").write_text(_KERNEL_CONFIG)
        (profile / "startup").mkdir()
        (profile / "startup" / "00-course-figures.py").write_text(_FIGURE_STARTUP)
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        _ipython_dir = str(path)
    return _ipython_dir


def kernel_env() -> dict[str, str]:
    """Environment for kernels that execute notebooks (book build, ``execute``, benchmarks).

    * ``MPLBACKEND``: the Makefile exports ``Agg`` for scripts and tests; a kernel inherits it and
      ipykernel selects its inline backend only when MPLBACKEND is unset, so figures would never be
      displayed. Kernels get the inline backend explicitly.
    * ``IPYTHONDIR``: see :func:`ipython_dir` (TensorFlow's import-time log lines stay out of the
      notebook's outputs).
    * ``TF_CPP_MIN_LOG_LEVEL=3`` unless set.
    """
    env = dict(os.environ)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env["IPYTHONDIR"] = ipython_dir()
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    return env


def execute_file(path: str | os.PathLike, *, timeout: int = 600, strip: bool = True) -> float:
    """Execute ``path`` in place in a fresh kernel (cwd = its folder); return the seconds taken.

    Raises ``nbclient.exceptions.CellExecutionError`` (file left untouched) when a cell fails.
    """
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = _read(path)
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute(env=kernel_env())  # passed on to the kernel manager's start_kernel
    seconds = time.perf_counter() - start
    _write(strip_notebook(nb) if strip else nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_strip = sub.add_parser("strip", help="strip outputs in place (keeps nbval-check-output cells)")
    p_strip.add_argument("files", nargs="+", type=Path)
    p_check = sub.add_parser("check", help="fail when a notebook is not stripped")
    p_check.add_argument("files", nargs="+", type=Path)
    p_exec = sub.add_parser("execute", help="execute in place (nbclient), then strip")
    p_exec.add_argument("files", nargs="+", type=Path)
    p_exec.add_argument("--timeout", type=int, default=600, help="seconds per cell (600)")
    p_exec.add_argument("--no-strip", action="store_true", help="keep every output")
    args = parser.parse_args(argv)

    status = 0
    for path in args.files:
        if not path.is_file():
            print(f"{path}: no such notebook", file=sys.stderr)
            status = 1
            continue
        if args.command == "strip":
            print(f"{path}: {'stripped' if strip_file(path) else 'already stripped'}")
        elif args.command == "check":
            if not is_stripped(path):
                print(f"{path}: not stripped; run `python -m coursekit.notebooks strip {path}`")
                status = 1
        else:
            from nbclient.exceptions import CellExecutionError

            try:
                seconds = execute_file(path, timeout=args.timeout, strip=not args.no_strip)
            except CellExecutionError as exc:
                print(f"{path}: FAILED (file unchanged)\n{exc}", file=sys.stderr)
                status = 1
            else:
                print(f"{path}: executed in {seconds:.1f} s"
                      f"{'' if args.no_strip else ', stripped'}")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Build the course website (Jupyter Book 1) into ``_build/html``; ``make book`` runs this.

    python -m coursekit.build_book            # incremental: unchanged notebooks come from the cache
    python -m coursekit.build_book --fresh    # re-read every page and re-execute every notebook

The build fails (non-zero exit) on any Sphinx warning (``-W``) and on any notebook cell that
raises (``execute.allow_errors: false`` in ``_config.yml`` turns a failing notebook into a warning).
``--keep-going`` lets one build report every problem before it fails.

Details that keep the website correct:

* notebooks run in kernels with matplotlib's inline backend and with TensorFlow's import-time C++
  log lines kept out of the outputs (:func:`coursekit.notebooks.kernel_env`);
* the execution cache (``_build/.jupyter_cache``) is keyed on a notebook's code only, so when the
  ``utils`` package, ``requirements.txt`` or the kernel set-up (``coursekit/notebooks.py``)
  changes, the cache is cleared and every page re-read;
* in the kernels that execute the book, each figure is sent as PNG or JPEG, whichever is smaller,
  with the size of its smallest text recorded for the website test (``coursekit.notebooks``);
* lessons missing from the cache are executed two at a time before the build and cached as
  myst-nb would (:func:`prefill_cache`), which overlaps one lesson's imports with another's work;
  myst-nb's own copies of cached lessons lack their outputs, so they are rewritten from the cache
  (:func:`restore_executed_copies`);
* after a failed build, Sphinx's saved environment is deleted, so the next build cannot succeed
  just because the failing page has not changed since;
* every executed lesson is offered for download with its outputs (figures included), beside the
  source notebook in the page's download menu: :func:`offer_executed_notebooks`.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from coursekit.notebooks import kernel_env

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
INDEX = HTML / "index.html"
CACHE = BUILD / ".jupyter_cache"
DOCTREES = BUILD / ".doctrees"
STAMP = BUILD / ".inputs-hash"
EXECUTED = BUILD / "jupyter_execute"          # myst-nb's executed copies of the notebooks
EXECUTED_DOWNLOADS = HTML / "_downloads" / "executed"
EXECUTED_LINK_CLASS = "btn-download-executed-button"


def inputs_hash() -> str:
    """Hash of what notebook outputs depend on besides their own code: utils/, requirements and
    the kernel set-up of coursekit/notebooks.py (which, for instance, picks PNG or JPEG figures)."""
    digest = hashlib.sha256()
    files = sorted((ROOT / "utils").rglob("*.py")) + [ROOT / "requirements.txt",
                                                       ROOT / "coursekit" / "notebooks.py"]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


_REDIRECT = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Seeing inside CNNs</title>
<meta http-equiv="refresh" content="0; url={target}">
<link rel="canonical" href="{target}">
<link rel="icon" href="_static/favicon.svg" type="image/svg+xml">
</head>
<body><p><a href="{target}">Seeing inside CNNs</a></p></body>
</html>
"""


def _write_redirect() -> None:
    """Replace the bare redirect that sphinx-external-toc writes as index.html (the root page is
    intro.html) with a complete page: with no favicon link, browsers request /favicon.ico (404)."""
    if (HTML / "intro.html").is_file() and INDEX.is_file() and INDEX.stat().st_size < 200:
        INDEX.write_text(_REDIRECT.format(target="intro.html"))


def _write_favicon_ico() -> None:
    """Browsers ask for /favicon.ico when a page has no icon link yet (the index redirect leaves
    before its head is read); serve the course icon (_static/favicon.svg) there too."""
    ico = HTML / "favicon.ico"
    if ico.is_file():
        return
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 0, 31, 31), radius=6, fill="#1f2937")
    colours = ["#ee4c2c", "#a8702a", "#ff8f00", "#7a5a2e", "#ffffff", "#7a5a2e", "#ff8f00",
               "#a8702a", "#ee4c2c"]
    for i, colour in enumerate(colours):
        x, y = 5 + 8 * (i % 3), 5 + 8 * (i // 3)
        draw.rounded_rectangle((x, y, x + 5, y + 5), radius=1, fill=colour)
    img.save(ico, format="ICO", sizes=[(32, 32)])


_SOURCE_ITEM = re.compile(
    r'(<li><a href="(?P<prefix>(?:\.\./)*)_sources/(?P<rel>[^"]+\.ipynb)"[^>]*'
    r'btn-download-source-button.*?</li>)', re.S)
_EXECUTED_ITEM = """
      <li><a href="{href}" download="{name}"
   class="btn btn-sm {cls} dropdown-item"
   title="Download the notebook as executed for this page, figures included"
   data-bs-placement="left" data-bs-toggle="tooltip"
>
<span class="btn__icon-container">
  <i class="fas fa-file-image"></i>
  </span>
<span class="btn__text-container">.ipynb with outputs</span>
</a>
</li>"""


def _has_outputs(notebook: Path) -> bool:
    """True when ``notebook`` exists and any of its cells has an output (it was executed)."""
    import nbformat

    if not notebook.is_file():
        return False
    nb = nbformat.read(notebook, as_version=4)
    return any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def _write_executed_copy(executed: Path, target: Path) -> None:
    """Write ``executed`` to ``target`` without the stream outputs that myst-nb's
    ``nb_merge_streams`` already merged into the cell's first stream of that name (it merges in
    place and leaves the originals in ``jupyter_execute``, so a download would print them twice)."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        for name in ("stdout", "stderr"):
            streams = [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == name]
            if len(streams) < 2:
                continue
            merged = "".join(o["text"].rstrip() + "\n" for o in streams[1:] if o["text"].rstrip())
            if streams[0]["text"].endswith(merged):
                outputs = [o for o in outputs if not any(o is later for later in streams[1:])]
        if cell.cell_type == "code":
            cell.outputs = outputs
    nbformat.write(nb, target)


def offer_executed_notebooks() -> list[Path]:
    """Copy each executed notebook into ``_build/html/_downloads/executed/`` and add a link to it
    next to the source ``.ipynb`` in its page's download menu; return the pages linked.

    The copies come from myst-nb's ``_build/jupyter_execute`` (what the page shows, outputs and
    figures included); pages without one (exercises are shown unexecuted) are left alone.
    """
    linked = []
    for page in sorted(HTML.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        match = _SOURCE_ITEM.search(text)
        if not match:
            continue
        rel = match["rel"]
        executed = EXECUTED / rel
        if not _has_outputs(executed):
            continue
        target = EXECUTED_DOWNLOADS / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_executed_copy(executed, target)
        if EXECUTED_LINK_CLASS not in text:
            href = f"{match['prefix']}_downloads/executed/{rel}"
            item = _EXECUTED_ITEM.format(href=html.escape(href), cls=EXECUTED_LINK_CLASS,
                                         name=html.escape(Path(rel).stem + "_executed.ipynb"))
            text = text[:match.end()] + item + text[match.end():]
            page.write_text(text, encoding="utf-8")
        linked.append(page)
    return linked


def _execute_one(path: str, timeout: int) -> tuple[str, object, float, str | None]:
    """Worker: execute one notebook as myst-nb's cache mode would (cwd = its folder, no errors
    allowed, kernels with :func:`coursekit.notebooks.kernel_env`)."""
    import os

    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    os.environ.update(kernel_env())
    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(nb, cwd=str(Path(path).parent), allow_errors=False,
                                 timeout=timeout, meta_override=True)
    return path, nb, result.time, None if result.err is None else result.exc_string


def prefill_cache(jobs: int = 2, timeout: int = 300) -> list[Path]:
    """Execute the lessons the cache lacks, ``jobs`` at a time, and cache them as myst-nb does;
    return those cached. The build then finds them in the cache instead of running them one after
    another: a lesson spends ~12 s importing torch and TensorFlow on one core, so two lessons at
    once overlap that with the other's computing. A lesson that fails here is left to the build,
    which runs it again and reports the error as usual."""
    from concurrent.futures import ProcessPoolExecutor

    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(CACHE))
    missing = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            missing.append(str(path))
    cached = []
    if len(missing) < 2 or jobs < 2:
        return cached  # nothing to overlap: the build executes them itself
    print(f"executing {len(missing)} lessons, {jobs} at a time", flush=True)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for path, nb, seconds, error in pool.map(_execute_one, missing, [timeout] * len(missing)):
            if error is not None:
                print(f"{Path(path).name}: failed; the build will run it again", flush=True)
                continue
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(CacheBundleIn(nb, record.uri,
                                                      data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            cached.append(Path(path))
    return cached


def restore_executed_copies() -> list[Path]:
    """Rewrite myst-nb's copy of each lesson in ``_build/jupyter_execute`` from the cache.

    On a cache hit myst-nb renders the cached outputs but writes the notebook it read, which has
    none (it merges the cache into a new notebook object): the downloads and the website test's
    figure data would lose every output of an unchanged lesson. Returns the lessons rewritten."""
    import nbformat
    from jupyter_cache import get_cache

    cache, restored = get_cache(str(CACHE)), []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        target = EXECUTED / path.relative_to(ROOT)
        try:
            _, merged = cache.merge_match_into_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            continue  # not cached: myst-nb executed it and its copy is complete
        if target.parent.is_dir():
            nbformat.write(merged, target)
            restored.append(path)
    return restored


def build(*, fresh: bool = False, quiet: bool = False, jobs: int = 2) -> int:
    """Run the build; return Jupyter Book's exit status (0 on success)."""
    current = inputs_hash()
    if not fresh and STAMP.is_file() and STAMP.read_text().strip() != current:
        print("utils/, requirements.txt or the kernel set-up changed since the last build: "
              "re-executing every notebook")
        fresh = True
    if fresh:
        shutil.rmtree(CACHE, ignore_errors=True)
        shutil.rmtree(DOCTREES, ignore_errors=True)

    prefill_cache(jobs)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", str(ROOT), "--builder", "html", "-W", "--keep-going"]
    if fresh:
        cmd.append("--all")
    if quiet:
        cmd.append("-q")
    status = subprocess.call(cmd, cwd=ROOT, env=kernel_env())

    if status == 0:
        _write_redirect()
        _write_favicon_ico()
        restore_executed_copies()
        offer_executed_notebooks()
        BUILD.mkdir(exist_ok=True)
        STAMP.write_text(current + "\n")
    else:
        # Without this, an unchanged rebuild would skip the failing page and succeed.
        shutil.rmtree(DOCTREES, ignore_errors=True)
        reports = sorted((HTML / "reports").rglob("*.log")) if (HTML / "reports").is_dir() else []
        for report in reports:
            print(f"\n===== execution report: {report.relative_to(ROOT)} =====", file=sys.stderr)
            print(report.read_text(errors="replace")[-6000:], file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.build_book",
                                     description="Build the course website into _build/html.")
    parser.add_argument("--fresh", action="store_true",
                        help="clear the execution cache and re-read every page")
    parser.add_argument("-q", "--quiet", action="store_true", help="less build output")
    parser.add_argument("--jobs", type=int, default=2,
                        help="lessons executed at once before the build (default 2; 1: one by one)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    status = build(fresh=args.fresh, quiet=args.quiet, jobs=args.jobs)
    seconds = time.perf_counter() - start
    if status:
        print(f"Book build FAILED (exit {status}) after {seconds:.0f} s", file=sys.stderr)
        return status
    print(f"Book built in {seconds:.0f} s")
    print(INDEX)
    return 0


if __name__ == "__main__":
    sys.exit(main())

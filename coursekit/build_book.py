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
  ``utils`` package or ``requirements.txt`` changes, the cache is cleared and every page re-read;
* after a failed build, Sphinx's saved environment is deleted, so the next build cannot succeed
  just because the failing page has not changed since.
"""

from __future__ import annotations

import argparse
import hashlib
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


def inputs_hash() -> str:
    """Hash of what notebook outputs depend on besides their own code: utils/ and requirements."""
    digest = hashlib.sha256()
    files = sorted((ROOT / "utils").rglob("*.py")) + [ROOT / "requirements.txt"]
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


def build(*, fresh: bool = False, quiet: bool = False) -> int:
    """Run the build; return Jupyter Book's exit status (0 on success)."""
    current = inputs_hash()
    if not fresh and STAMP.is_file() and STAMP.read_text().strip() != current:
        print("utils/ or requirements.txt changed since the last build: re-executing every notebook")
        fresh = True
    if fresh:
        shutil.rmtree(CACHE, ignore_errors=True)
        shutil.rmtree(DOCTREES, ignore_errors=True)

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
    args = parser.parse_args(argv)

    start = time.perf_counter()
    status = build(fresh=args.fresh, quiet=args.quiet)
    seconds = time.perf_counter() - start
    if status:
        print(f"Book build FAILED (exit {status}) after {seconds:.0f} s", file=sys.stderr)
        return status
    print(f"Book built in {seconds:.0f} s")
    print(INDEX)
    return 0


if __name__ == "__main__":
    sys.exit(main())

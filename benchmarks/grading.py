"""How fast the grader is on the real exercise notebooks; prints a table, writes results/grading.json.

Targets (issue 11):

* grading one correct submission of each exercise takes at most 1.3x one plain execution of its
  solution notebook (nbclient, no sandbox, no grading), the model answers' probe values cached
  (as for every student after the first of a class);
* a class of 20 (correct, half-right, untouched and crashing submissions, made from the source by
  ``_submissions.py``) grades at least 1.6x faster with ``--jobs 2`` than with ``--jobs 1``;
* our grader is faster than nbgrader's ``autograde`` on the same class (through
  ``coursekit.nbgrader_export``), when nbgrader is installed (``--nbgrader PYTHON``).

Every timing runs in this process, so interpreter start-up is on neither side; the sandbox is
the strongest this machine gives (bubblewrap in CI). Ratios come from one run of this script:
the machine is shared, so compare within a run, not across runs.

    python benchmarks/grading.py [--class-notebooks 00_warmup.ipynb,...] [--class-size 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _submissions import write_class
from _timing import machine

from coursekit.grade.batch import Options, grade
from coursekit.grade.runner import Limits
from coursekit.grade.sandbox import detect_isolation
from coursekit.grade.source import load_source
from coursekit.notebooks import kernel_env

SOLUTIONS = ROOT / "solutions"
RESULTS = ROOT / "benchmarks" / "results" / "grading.json"
LIMITS = Limits(cell_timeout=300, notebook_timeout=900, memory_mb=8192)


def execute_once(path: Path) -> float:
    """One plain execution of a solution notebook, as nbval or a learner would run it."""
    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.update(kernel_env())
    try:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            NotebookClient(nb, timeout=600, kernel_name="python3",
                           resources={"metadata": {"path": folder}}).execute()
            return time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _grade(subs: Path, work: Path, source_dir: Path, jobs: int) -> float:
    """Seconds to grade ``subs``; the reference values stay cached in ``work/state``."""
    state = work / "state"
    if not (state / "reference").exists():  # the first student of a class pays for this
        grade(Options(subs, work / "warm.csv", jobs=jobs, limits=LIMITS, progress=False,
                      state_dir=state, source_dir=source_dir), log=lambda *_: None)
    shutil.rmtree(state / "students", ignore_errors=True)
    start = time.perf_counter()
    summary = grade(Options(subs, work / "grades.csv", jobs=jobs, limits=LIMITS, progress=False,
                            state_dir=state, source_dir=source_dir), log=lambda *_: None)
    seconds = time.perf_counter() - start
    assert len(summary.graded) == len(list(subs.iterdir())), summary
    return seconds


def one_notebook(name: str, tmp: Path) -> dict:
    """Plain execution vs grading one correct submission, for one exercise."""
    source = load_source(SOLUTIONS / name)
    work = tmp / f"one-{source.path.stem}"
    (work / "src").mkdir(parents=True)
    shutil.copy(source.path, work / "src")
    write_class(source, work / "subs", 1)  # one correct student
    plain = execute_once(source.path)
    graded = _grade(work / "subs", work, work / "src", jobs=1)
    return {"notebook": name, "execute_s": round(plain, 2), "grade_s": round(graded, 2),
            "ratio": round(graded / plain, 3)}


def nbgrader_seconds(python: str, name: str, subs: Path, work: Path) -> float | None:
    """nbgrader's own ``autograde`` of the class, through our export (None if unavailable)."""
    command = [python, "-m", "coursekit.nbgrader_export", "--benchmark-autograde",
               str(SOLUTIONS / name), str(subs), str(work / "nbgrader")]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"nbgrader run failed: {done.stderr[-2000:]}", file=sys.stderr)
        return None
    return time.perf_counter() - start


def one_class(name: str, size: int, tmp: Path, nbgrader: str | None) -> dict:
    """A class of ``size`` mixed submissions with --jobs 1 and 2 (and nbgrader)."""
    source = load_source(SOLUTIONS / name)
    work = tmp / f"class-{source.path.stem}"
    (work / "src").mkdir(parents=True)
    shutil.copy(source.path, work / "src")
    kinds = write_class(source, work / "subs", size)
    jobs1 = _grade(work / "subs", work, work / "src", jobs=1)
    jobs2 = _grade(work / "subs", work, work / "src", jobs=2)
    row = {"notebook": name, "students": size, "kinds": sorted(set(kinds)),
           "jobs1_s": round(jobs1, 2), "jobs2_s": round(jobs2, 2),
           "speedup": round(jobs1 / jobs2, 3)}
    if nbgrader:
        theirs = nbgrader_seconds(nbgrader, name, work / "subs", work)
        if theirs is not None:
            row.update(nbgrader_autograde_s=round(theirs, 2),
                       nbgrader_over_ours_jobs1=round(theirs / jobs1, 3),
                       nbgrader_over_ours_jobs2=round(theirs / jobs2, 3))
    return row


def _print(rows: list[dict], columns: list[str]) -> None:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(w) for c, w in zip(columns, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", default="all",
                        help="comma-separated solution notebooks for the one-submission rows")
    parser.add_argument("--class-notebooks",
                        default="00_warmup.ipynb,01_filters_and_maps_pytorch.ipynb")
    parser.add_argument("--class-size", type=int, default=20)
    parser.add_argument("--nbgrader", metavar="PYTHON",
                        help="an interpreter with nbgrader and this project (for the comparison)")
    args = parser.parse_args()
    names = (sorted(p.name for p in SOLUTIONS.glob("*.ipynb")) if args.notebooks == "all"
             else args.notebooks.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        singles = [one_notebook(name, tmp) for name in names]
        classes = [one_class(name, args.class_size, tmp, args.nbgrader)
                   for name in args.class_notebooks.split(",")]
    _print(singles, ["notebook", "execute_s", "grade_s", "ratio"])
    print()
    _print(classes, ["notebook", "students", "jobs1_s", "jobs2_s", "speedup",
                     "nbgrader_autograde_s", "nbgrader_over_ours_jobs1"])
    result = {
        "machine": {**machine(), "isolation": detect_isolation("auto").describe(),
                    "load_average_1min": os.getloadavg()[0]},
        "one_correct_submission": singles,
        "class": classes,
        "targets_met": {
            "grade_one_le_1.3x_every_notebook": all(r["ratio"] <= 1.3 for r in singles),
            "jobs2_ge_1.6x_every_class": all(r["speedup"] >= 1.6 for r in classes),
            "faster_than_nbgrader": (all(r["nbgrader_over_ours_jobs1"] > 1 for r in classes)
                                     if all("nbgrader_autograde_s" in r for r in classes)
                                     else None),
        },
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""How fast the grader is on the real exercise notebooks; prints a table, writes results/grading.json.

Targets (issue 11):

* grading one correct submission of each exercise takes at most 1.3x one plain execution of its
  solution notebook (nbclient, no sandbox, no grading), the model answers' probe values cached
  (as for every student after the first of a class);
* a class of 20 (correct, half-right, untouched and crashing submissions, made from the source by
  ``_submissions.py``) grades at least 1.6x faster with ``--jobs 2`` than with ``--jobs 1``;
* our grader is faster than nbgrader's ``autograde`` on the same class (through
  ``coursekit.nbgrader_export``), when an nbgrader environment exists (``--nbgrader ENV``).

Every timing runs in this process, so interpreter start-up is on neither side; the sandbox is
the strongest this machine gives (bubblewrap in CI). Ratios come from one run of this script:
the machine is shared, so compare within a run, not across runs.

    python benchmarks/grading.py [--class-notebooks 00_warmup.ipynb,...] [--class-size 20]
"""

from __future__ import annotations

import argparse
import json
import os
import re
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


def nbgrader_seconds(env: Path, name: str, subs: Path, work: Path) -> tuple[float | None, int]:
    """nbgrader's own ``autograde`` of the class, through our export: its seconds (None when it
    fails as a whole) and the number of students it could not grade.

    ``env`` is an environment with nbgrader over this project's packages (tests/test_nbgrader.py
    builds one in ~/.cache/cnn-course/). The class's notebooks are our generated exercises,
    which equal nbgrader's release cell for cell (that test checks it), so they are submitted
    as they are. Export and generate_assignment are not timed; autograde is.
    """
    from coursekit.grade.source import load_source as load
    from coursekit.nbgrader_export import export, grade_id

    course, assignment = work / "nbgrader", grade_id(Path(name).stem)
    export([load(SOLUTIONS / name)], course, state_dir=work / "state", log=lambda *_: None)
    environ = dict(os.environ, PATH=f"{env / 'bin'}:{os.environ['PATH']}",
                   JUPYTER_CONFIG_DIR=str(course / ".jupyter-config"))
    nbgrader = [str(env / "bin" / "nbgrader")]
    subprocess.run([*nbgrader, "generate_assignment", assignment], cwd=course, env=environ,
                   check=True, capture_output=True)
    for student in subs.iterdir():
        folder = course / "submitted" / student.name / assignment
        folder.mkdir(parents=True)
        shutil.copy(student / name, folder / name)
    start = time.perf_counter()
    done = subprocess.run([*nbgrader, "autograde", assignment], cwd=course, env=environ,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    # autograde goes on after a student it cannot process (a killed kernel) and exits 1 at the
    # end; the time still covers the whole class. Count those students for the table.
    failed = len(set(re.findall(r"error processing assignment '[^']*' for student '([^']*)'",
                                done.stdout + done.stderr)))
    if done.returncode != 0 and not failed:
        print(f"nbgrader autograde failed: {done.stdout[-2000:]}{done.stderr[-2000:]}",
              file=sys.stderr)
        return None, failed
    return seconds, failed


def one_class(name: str, size: int, tmp: Path, nbgrader: Path | None) -> dict:
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
        theirs, failed = nbgrader_seconds(nbgrader, name, work / "subs", work)
        if theirs is not None:
            row.update(nbgrader_autograde_s=round(theirs, 2), nbgrader_students_failed=failed,
                       nbgrader_over_ours_jobs1=round(theirs / jobs1, 3),
                       nbgrader_over_ours_jobs2=round(theirs / jobs2, 3))
    return row


def _nbgrader_env() -> Path | None:
    found = sorted((Path.home() / ".cache" / "cnn-course").glob("nbgrader-*/COMPLETE"))
    return found[-1].parent if found else None


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
    parser.add_argument("--nbgrader", metavar="ENV", type=Path, default=_nbgrader_env(),
                        help="an environment with nbgrader over this project (default: the one "
                        "tests/test_nbgrader.py caches, if it exists)")
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
                     "nbgrader_autograde_s", "nbgrader_over_ours_jobs1",
                     "nbgrader_students_failed"])
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

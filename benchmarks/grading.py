"""Benchmark the grader against the issue's targets; print a table, write results/grading.json.

Targets (issue 6):

* grading one correct submission takes at most 1.3x the time of executing its solution notebook
  once (plain nbclient, no sandbox, no grading);
* grading 10 submissions with ``--jobs 2`` is at least 1.5x faster than with ``--jobs 1``.

Measured on the warm-up notebook (solutions/00_warmup.ipynb) with the fixtures' submissions, in
this process (so Python start-up and ``import utils`` are not counted on either side; the CLI's
own start-up is reported separately). "Reference cached" means the model answers' probe values
are already in the state folder, as for every student after the first in a real class;
"cold" includes running the model answers, which the pool does in parallel with the student.
Each timing is the median of ``--repeat`` runs.

    python benchmarks/grading.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursekit.grade.batch import Options, grade
from coursekit.grade.runner import Limits
from coursekit.grade.sandbox import detect_isolation

SOURCE = ROOT / "solutions" / "00_warmup.ipynb"
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "submissions"
RESULTS = ROOT / "benchmarks" / "results" / "grading.json"
LIMITS = Limits(cell_timeout=60, notebook_timeout=300, memory_mb=2048)
SOURCES = Path(tempfile.mkdtemp(prefix="bench-sources-"))  # the warm-up only
shutil.copy(SOURCE, SOURCES)
atexit.register(shutil.rmtree, SOURCES, True)


def execute_solution() -> float:
    """Execute the solution notebook once with plain nbclient, as nbval or a learner would."""
    nb = nbformat.read(SOURCE, as_version=4)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        NotebookClient(nb, timeout=60, kernel_name="python3",
                       resources={"metadata": {"path": folder}}).execute()
        return time.perf_counter() - start


def make_class(folder: Path, count: int) -> Path:
    """``count`` students, alternating the correct and the partly right submission."""
    for i in range(count):
        kind = "correct" if i % 2 == 0 else "partial"
        shutil.copytree(FIXTURES / kind, folder / "subs" / f"student{i:02d}")
    return folder / "subs"


def grade_class(folder: Path, students: int, jobs: int, *, cached_reference: bool) -> float:
    """Seconds to grade ``students`` submissions (fresh student state every time)."""
    subs = folder / "subs"
    if not subs.exists():
        make_class(folder, students)
    state = folder / "state"
    if cached_reference:
        shutil.rmtree(state / "students", ignore_errors=True)
        if not (state / "reference").exists():
            grade(Options(subs, folder / "g.csv", jobs=jobs, limits=LIMITS, progress=False,
                          state_dir=state, source_dir=SOURCES), log=lambda *_: None)
            shutil.rmtree(state / "students")
    else:
        shutil.rmtree(state, ignore_errors=True)
    start = time.perf_counter()
    summary = grade(Options(subs, folder / "g.csv", jobs=jobs, limits=LIMITS, progress=False,
                            state_dir=state, source_dir=SOURCES), log=lambda *_: None)
    seconds = time.perf_counter() - start
    assert len(summary.graded) == students, summary
    return seconds


def cli_seconds(folder: Path) -> float:
    """Wall time of `python -m coursekit.grade` for one student, start-up included."""
    subs = folder / "cli-subs"
    if not subs.exists():
        shutil.copytree(FIXTURES / "correct", subs / "student")
    shutil.rmtree(folder / "cli.state", ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "coursekit.grade", str(subs), "--out",
                    str(folder / "cli.csv"), "--source", str(SOURCES), "--quiet"], check=True,
                   cwd=ROOT,
                   capture_output=True)
    return time.perf_counter() - start


def import_utils_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import utils"], check=True, cwd=ROOT)
    return time.perf_counter() - start


def median(function, repeat: int) -> float:
    return statistics.median(function() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    isolation = detect_isolation("auto")
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        for name in ("one", "ten1", "ten2"):
            (tmp / name).mkdir()
        execute_solution()  # warm the disk cache for both sides
        baseline = median(execute_solution, args.repeat)
        one_cached = median(lambda: grade_class(tmp / "one", 1, 2, cached_reference=True),
                            args.repeat)
        one_cold = median(lambda: grade_class(tmp / "one", 1, 2, cached_reference=False),
                          args.repeat)
        ten_jobs1 = median(lambda: grade_class(tmp / "ten1", 10, 1, cached_reference=False),
                           args.repeat)
        ten_jobs2 = median(lambda: grade_class(tmp / "ten2", 10, 2, cached_reference=False),
                           args.repeat)
        cli_one = cli_seconds(tmp)
        startup = import_utils_seconds()
    rows = [
        ("execute the solution notebook once (nbclient)", baseline, ""),
        ("grade 1 correct submission, reference cached", one_cached,
         f"{one_cached / baseline:.2f}x baseline (target <= 1.3x)"),
        ("grade 1 correct submission, cold (reference run in parallel)", one_cold,
         f"{one_cold / baseline:.2f}x baseline"),
        ("grade 10 submissions, --jobs 1", ten_jobs1, ""),
        ("grade 10 submissions, --jobs 2", ten_jobs2,
         f"{ten_jobs1 / ten_jobs2:.2f}x faster than --jobs 1 (target >= 1.5x)"),
        ("python -m coursekit.grade, 1 student, cold (CLI start-up included)", cli_one, ""),
        ("python -c 'import utils' (start-up part of the line above)", startup, ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'seconds':>8}  note")
    for name, seconds, note in rows:
        print(f"{name:<{width}}  {seconds:8.2f}  {note}")
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "isolation": isolation.describe(),
                    "load_average_1min": os.getloadavg()[0]},
        "repeat": args.repeat,
        "seconds": {name: round(seconds, 3) for name, seconds, _ in rows},
        "targets": {
            "grade_one_over_execute_once": round(one_cached / baseline, 3),
            "grade_one_cold_over_execute_once": round(one_cold / baseline, 3),
            "jobs2_speedup_over_jobs1": round(ten_jobs1 / ten_jobs2, 3),
        },
        "targets_met": {"grade_one_le_1.3x": one_cached / baseline <= 1.3,
                        "jobs2_ge_1.5x": ten_jobs1 / ten_jobs2 >= 1.5},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

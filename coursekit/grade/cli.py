"""Command line of the grader.

::

    python -m coursekit.grade SUBMISSIONS --out grades.csv [--feedback DIR] [--jobs N]
                          [--shard i/N] [--cell-timeout S] [--timeout S] [--memory-mb M]
                          [--source DIR] [--state DIR] [--isolation auto|bubblewrap|unshare|none]
                          [--quiet]
    python -m coursekit.grade combine SHARD.csv... --out grades.csv
    python -m coursekit.grade isolation
    python -m coursekit.grade sheets grades.csv --out SHEETS_DIR     # hand grading, see
    python -m coursekit.grade merge SHEET.csv... --out grades.csv    # coursekit.grade.handgrading
                          [--feedback DIR] [--source DIR] [--state DIR]
    python -m coursekit.grade totals grades.csv --out totals.csv

Exit status: 0 when grading finished (whatever the scores); 2 for the instructor's own errors
(a bad path or option, a broken source notebook); 3 when a reference solution fails its own
tests (the other notebooks are graded; fix the source and rerun: finished students are kept).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_REFERENCE = 0, 2, 3


def _default_jobs() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cpus or 1))


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not of the form i/N (e.g. 1/4)") from None
    if count < 1 or not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"{text!r}: need 1 <= i <= N")
    return index, count


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value
    return parse


def _grade_parser() -> argparse.ArgumentParser:
    from coursekit.grade.batch import DEFAULT_SOURCE
    from coursekit.grade.runner import Limits

    defaults = Limits()
    parser = argparse.ArgumentParser(
        prog="python -m coursekit.grade",
        description="Grade a folder of submitted exercise notebooks (one subfolder per student, "
                    "notebooks named as in exercises/). Also: `python -m coursekit.grade combine "
                    "A.csv B.csv --out all.csv` merges shard results; `python -m coursekit.grade "
                    "isolation` shows how kernels are isolated on this machine.")
    parser.add_argument("submissions", type=Path, help="folder with one subfolder per student")
    parser.add_argument("--out", type=Path, required=True, help="grades CSV to write")
    parser.add_argument("--feedback", type=Path, help="folder for Markdown feedback "
                        "(<student>/<notebook>.md)")
    parser.add_argument("--jobs", type=_positive(int), default=_default_jobs(),
                        help="students graded in parallel (default: CPUs, at most 4)")
    parser.add_argument("--shard", type=_shard, default=(1, 1), metavar="i/N",
                        help="grade only slice i of N of the sorted students (1-based)")
    parser.add_argument("--cell-timeout", type=_positive(float), default=defaults.cell_timeout,
                        metavar="S", help="seconds per cell (default %(default)g)")
    parser.add_argument("--timeout", type=_positive(float), default=defaults.notebook_timeout,
                        metavar="S", help="seconds per notebook (default %(default)g)")
    parser.add_argument("--memory-mb", type=_positive(int), default=defaults.memory_mb,
                        metavar="M", help="virtual memory limit of a kernel in MiB "
                        "(default %(default)d; PyTorch plus TensorFlow need about 6000)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="source notebooks with solutions and hidden tests "
                        "(default: the repository's solutions/)")
    parser.add_argument("--state", type=Path, help="resume folder (default: next to --out, "
                        "named <out>.state)")
    parser.add_argument("--isolation", choices=("auto", "bubblewrap", "unshare", "none"),
                        default="auto", help="sandbox mechanism (default: the strongest that "
                        "works here)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _combine(argv: list[str]) -> int:
    from coursekit.grade.results import CsvError, combine

    parser = argparse.ArgumentParser(prog="python -m coursekit.grade combine",
                                     description="Merge the CSVs of several shards.")
    parser.add_argument("csvs", type=Path, nargs="+", help="shard CSVs")
    parser.add_argument("--out", type=Path, required=True, help="merged CSV to write")
    args = parser.parse_args(argv)
    try:
        rows = combine(args.csvs, args.out)
    except CsvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    students = len({row.student for row in rows})
    print(f"combined {len(args.csvs)} file(s): {students} students, {len(rows)} rows "
          f"-> {args.out}")
    return EXIT_OK


def _isolation() -> int:
    from coursekit.grade.sandbox import detect_isolation

    print(detect_isolation("auto").describe())
    return EXIT_OK


def _state_of(grades: Path, state: Path | None) -> Path:
    return state or grades.with_name(grades.stem + ".state")


def _hand_parser(command: str, description: str, inputs: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m coursekit.grade {command}",
                                     description=description)
    parser.add_argument("inputs", type=Path, nargs="+" if command == "merge" else None,
                        help=inputs)
    parser.add_argument("--out", type=Path, required=True)
    if command != "totals":
        parser.add_argument("--state", type=Path, help="the grading run's state folder "
                            "(default: next to the grades CSV, named <grades>.state)")
    if command in ("sheets", "merge"):
        from coursekit.grade.batch import DEFAULT_SOURCE
        parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                            help="source notebooks (default: the repository's solutions/)")
    if command == "merge":
        parser.add_argument("--feedback", type=Path, help="the grading run's feedback folder: "
                            "rewrite the feedback of every notebook with a question graded by hand")
    return parser


def _sheets(argv: list[str]) -> int:
    from coursekit.grade import handgrading
    from coursekit.grade.results import read_csv
    from coursekit.grade.source import load_sources

    args = _hand_parser("sheets", "Write a grading sheet (CSV to fill + HTML to read) per "
                        "hand-graded question.", "the grades CSV of a grading run").parse_args(argv)
    state = _state_of(args.inputs, args.state)
    sheets = handgrading.build_sheets(read_csv(args.inputs), load_sources(args.source), state)
    paths = handgrading.write_sheets(sheets, args.out, state)
    answers = sum(len(s.answers) for s in sheets)
    print(f"{len(paths)} sheet(s), {answers} answer(s) -> {args.out}/ (fill the c1, c2, ... "
          "columns, then run `merge`)")
    return EXIT_OK


def _merge(argv: list[str]) -> int:
    from coursekit.grade import handgrading
    from coursekit.grade.source import load_sources

    args = _hand_parser("merge", "Merge filled grading sheets into the grades CSV (all or "
                        "nothing).", "filled sheet CSVs").parse_args(argv)
    state = _state_of(args.out, args.state)
    sources = load_sources(args.source) if args.feedback else None  # merge checks them first
    rows, merged = handgrading.merge(args.inputs, args.out, state, sources)
    pending = sum(1 for r in rows if r.status == "manual")
    print(f"merged {merged} hand score(s) into {args.out}; {pending} answer(s) still to grade "
          "by hand")
    if args.feedback:
        students = handgrading.write_feedback(rows, sources, state, args.feedback)
        print(f"feedback with the hand scores -> {args.feedback}/ ({len(students)} student(s))")
    return EXIT_OK


def _totals(argv: list[str]) -> int:
    from coursekit.grade import handgrading
    from coursekit.grade.results import atomic_write, read_csv

    args = _hand_parser("totals", "Per-student totals for a gradebook.",
                        "the grades CSV").parse_args(argv)
    rows = read_csv(args.inputs)
    atomic_write(args.out, handgrading.totals_csv(rows))
    print(f"totals of {len({r.student for r in rows})} student(s) -> {args.out}")
    return EXIT_OK


_HAND_COMMANDS = {"sheets": _sheets, "merge": _merge, "totals": _totals}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["combine"]:
        return _combine(argv[1:])
    if argv[:1] and argv[0] in _HAND_COMMANDS:
        from coursekit.grade.results import CsvError
        from coursekit.grade.source import SourceError
        try:
            return _HAND_COMMANDS[argv[0]](argv[1:])
        except (CsvError, SourceError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if argv == ["isolation"]:
        return _isolation()
    args = _grade_parser().parse_args(argv)
    from coursekit.grade.batch import InstructorError, Options, grade
    from coursekit.grade.runner import Limits

    options = Options(
        submissions=args.submissions, out=args.out, feedback=args.feedback, jobs=args.jobs,
        shard=args.shard, source_dir=args.source, state_dir=args.state,
        isolation=args.isolation, progress=not args.quiet,
        limits=Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.timeout,
                      memory_mb=args.memory_mb))
    try:
        summary = grade(options)
    except InstructorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: finished students are saved; rerun the same command to resume",
              file=sys.stderr)
        return 130
    auto = [r for r in summary.rows if r.status != "manual"]
    points = sum(r.points for r in auto)
    possible = sum(r.max_points for r in auto)
    manual = sum(1 for r in summary.rows if r.status == "manual")
    print(f"graded {len(summary.graded)} student(s), {len(summary.resumed)} kept from an earlier "
          f"run, in {summary.seconds:.1f} s: {points:g} of {possible:g} automatic points; "
          f"{manual} answer(s) to grade by hand")
    print(f"grades: {args.out}" + (f"; feedback: {args.feedback}/" if args.feedback else ""))
    if summary.reference_problems:
        print("error: a reference solution failed its own tests (see PROBLEM above); its "
              "notebook was not graded", file=sys.stderr)
        return EXIT_REFERENCE
    return EXIT_OK

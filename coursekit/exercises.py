"""Generate the learners' notebooks in ``exercises/`` from the sources in ``solutions/``.

Command line::

    python -m coursekit.exercises build             # (re)write exercises/*.ipynb
    python -m coursekit.exercises check             # exit 1 if exercises/ is stale or a source
                                                #   breaks an authoring rule
    python -m coursekit.exercises check --execute   # also run the model answers (every test must
                                                #   pass) and grade the untouched exercises (no
                                                #   question may pass), with the real grader

``solutions/`` is the single source (format: ``README.md, "For instructors"``); ``exercises/`` is
generated, committed, and never edited by hand. Generation is deterministic, so "stale" simply
means "the file differs from what ``build`` would write".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from coursekit.grade.source import SourceError, exercise_text, load_sources

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"


def build(source_dir: Path = SOLUTIONS, exercise_dir: Path = EXERCISES) -> list[Path]:
    """Write every exercise notebook; delete exercise notebooks whose source is gone.

    Returns the files that changed. Raises :class:`SourceError` for a bad source (nothing is
    written then).
    """
    from coursekit.grade.results import atomic_write

    texts = {source.name: exercise_text(source) for source in load_sources(source_dir)}
    exercise_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in texts.items():
        path = exercise_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            atomic_write(path, text)
            changed.append(path)
    for path in sorted(exercise_dir.glob("*.ipynb")):
        if path.name not in texts:
            path.unlink()
            changed.append(path)
    return changed


def stale(source_dir: Path = SOLUTIONS, exercise_dir: Path = EXERCISES) -> list[str]:
    """Problems that make ``exercises/`` differ from what :func:`build` would write."""
    try:
        sources = load_sources(source_dir)
    except SourceError as exc:
        return [str(exc)]
    problems = []
    for source in sources:
        path = exercise_dir / source.name
        if not path.exists():
            problems.append(f"{path} is missing")
        elif path.read_text(encoding="utf-8") != exercise_text(source):
            problems.append(f"{path} is stale (differs from its source {source.path})")
    names = {source.name for source in sources}
    problems += [f"{path} has no source in {source_dir}" for path in
                 sorted(exercise_dir.glob("*.ipynb")) if path.name not in names]
    return problems


def execution_problems(source_dir: Path = SOLUTIONS, *, jobs: int = 2,
                       isolation: str = "auto") -> list[str]:
    """Grade the untouched exercises with the real grader, which first runs the model answers.

    Every step of a source must run cleanly and every hidden test must send its values (the
    grader's reference run checks that: a model answer failing its tests is reported), and no
    question may pass in the generated exercise (otherwise its tests check nothing the learner
    writes). Returns the problems found (empty when all is well).
    """
    from coursekit.grade.batch import Options, grade
    from coursekit.grade.runner import Limits

    sources = load_sources(source_dir)
    with tempfile.TemporaryDirectory(prefix="exercise-check-") as tmp:
        tmp = Path(tmp)
        (tmp / "submissions" / "untouched-exercises").mkdir(parents=True)
        for source in sources:
            (tmp / "submissions" / "untouched-exercises" / source.name).write_text(
                exercise_text(source), encoding="utf-8")
        summary = grade(Options(submissions=tmp / "submissions", out=tmp / "grades.csv",
                                jobs=jobs, source_dir=source_dir, isolation=isolation,
                                progress=False, limits=Limits(notebook_timeout=1800)),
                        log=lambda *_: None)
    if summary.reference_problems:  # then the rows only say "not graded"
        return list(summary.reference_problems)
    problems = []
    for row in summary.rows:
        where = f"{row.notebook} {row.question}"
        if row.status == "passed":
            problems.append(f"{where}: the untouched exercise passes; its tests do not depend "
                            "on the learner's answer")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.exercises",
                                     description="Generate exercises/ from solutions/.")
    parser.add_argument("command", choices=("build", "check"))
    parser.add_argument("--execute", action="store_true",
                        help="check: also run the grader on model answers and exercises")
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS)
    parser.add_argument("--exercises", type=Path, default=EXERCISES)
    args = parser.parse_args(argv)
    if args.command == "build":
        try:
            changed = build(args.solutions, args.exercises)
        except SourceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for path in changed:
            print(f"wrote {path}" if path.exists() else f"removed {path}")
        print(f"exercises up to date ({len(changed)} file(s) changed)")
        return 0
    problems = stale(args.solutions, args.exercises)
    if problems:
        problems.append("run `python -m coursekit.exercises build` (or `make exercises`)")
    elif args.execute:
        problems = execution_problems(args.solutions)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("exercises are up to date" + (" and the tests grade correctly"
                                            if args.execute else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

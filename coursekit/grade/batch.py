"""Grade a whole class: find the students, run the pool, score, write state, CSV and feedback.

Work is split into tasks for a process pool (``--jobs``): one *reference* task per source
notebook (runs the model answers to get the reference probe values; cached in the state folder)
and one *student* task per student (runs each of their notebooks in a fresh sandboxed kernel).
Workers only execute; the parent scores (it needs the reference values), saves each finished
student's state file, then writes feedback and, at the end, the CSV. A student already in the
state folder with the same fingerprint is not run again, so an interrupted run resumes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import multiprocessing
import os
import shutil
import signal
import stat
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from coursekit.grade.handgrading import apply_scores, feedback_texts, save_answers, save_notes
from coursekit.grade.plan import (
    InvalidSubmission,
    Plan,
    locate_notebook,
    read_submission,
    reference_plan,
    submission_plan,
)
from coursekit.grade.results import Row, StateStore, atomic_write, write_csv
from coursekit.grade.runner import Limits, RunResult, run_steps_sync
from coursekit.grade.sandbox import Isolation, detect_isolation, make_workroot
from coursekit.grade.scoring import (
    QuestionResult,
    ReferenceFailure,
    build_reference,
    expected_values,
    score,
    whole_notebook,
)
from coursekit.grade.source import SourceNotebook, load_sources

GRADER_VERSION = "2"  # 2: notes kept in the state, for feedback rewritten with hand scores
CHECKOUT = Path(__file__).resolve().parents[2]
# The course folder's solutions/: the current folder's when there is one (a pip-installed
# coursekit lives in site-packages, far from any course), else the checkout this file is in.
DEFAULT_SOURCE = (Path("solutions").resolve() if Path("solutions").is_dir()
                  else CHECKOUT / "solutions")
_WORKER_RETRIES = 1


class InstructorError(ValueError):
    """A problem with the grader's own input (paths, options, source notebooks): exit code 2."""


@dataclass(frozen=True)
class Options:
    """Everything one grading run needs (the CLI fills it from its arguments)."""

    submissions: Path
    out: Path
    feedback: Path | None = None
    jobs: int = 1
    shard: tuple[int, int] = (1, 1)
    limits: Limits = Limits()
    source_dir: Path = DEFAULT_SOURCE
    state_dir: Path | None = None
    isolation: str = "auto"
    progress: bool = True

    @property
    def state(self) -> Path:
        return self.state_dir or self.out.with_name(self.out.stem + ".state")


@dataclass
class Summary:
    """What a run did: for the CLI's closing lines and for tests."""

    isolation: Isolation
    students: list[str]
    graded: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    reference_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class NotebookOutcome:
    """A worker's raw result for one notebook of one student."""

    name: str
    kind: str  # "run", "missing" or "invalid"
    message: str = ""
    note: str = ""  # for the feedback, e.g. where the notebook was found
    plan: Plan | None = None
    run: RunResult | None = None


# -- discovery ------------------------------------------------------------------------------------
def discover_students(root: Path) -> list[str]:
    """Names of the student folders in ``root`` (sorted; hidden entries and files skipped)."""
    if not root.is_dir():
        raise InstructorError(f"submissions folder {root} does not exist or is not a folder")
    names = []
    for entry in root.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_symlink() or entry.is_dir():
            names.append(entry.name)
    return sorted(names)


def shard_of(students: list[str], shard: tuple[int, int]) -> list[str]:
    """Shard ``i`` of ``n`` (1-based): every n-th student of the sorted list, from the i-th."""
    index, count = shard
    return students[index - 1::count]


def _file_digest(path: Path) -> str:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISREG(info.st_mode):
        return f"not-a-file:{stat.S_IFMT(info.st_mode)}"
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def _environment() -> str:
    parts = [GRADER_VERSION, sys.version]
    for package in ("numpy", "torch", "torchvision", "tensorflow", "keras", "ipykernel"):
        try:
            parts.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{package}=-")
    return "\n".join(parts)


def reference_key(source: SourceNotebook) -> str:
    """Cache key of a source's reference values: its contents plus the software versions."""
    return hashlib.sha256(f"{source.sha256}\n{_environment()}".encode()).hexdigest()[:16]


def fingerprint(folder: Path, sources: list[SourceNotebook], limits: Limits) -> str:
    """What a student's grade depends on: submissions, sources, limits, grader and software."""
    parts = [_environment(), repr((limits.cell_timeout, limits.notebook_timeout, limits.memory_mb)),
             "symlink" if folder.is_symlink() else "folder"]
    for source in sources:
        linked = folder.is_symlink() or not folder.is_dir()
        found = [] if linked else locate_notebook(folder, source.name)
        digests = ",".join(f"{p.relative_to(folder)}={_file_digest(p)}" for p in found)
        parts.append(f"{source.name}:{source.sha256}:{digests or 'missing'}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# -- worker side ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Context:
    sources: tuple[SourceNotebook, ...]
    isolation: Isolation
    workroot: Path
    limits: Limits
    private: tuple[Path, ...]


_CONTEXT: _Context | None = None


def _init_worker(context: _Context) -> None:
    global _CONTEXT
    _CONTEXT = context
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool on Ctrl-C
    if sys.platform.startswith("linux"):  # die (and take the kernels along) if the parent dies
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def _run(plan: Plan) -> RunResult:
    ctx = _CONTEXT
    return run_steps_sync(plan.steps, ctx.isolation, ctx.workroot, ctx.limits, ctx.private)


def _work(task: tuple[str, str, str]):
    """Run one task in a worker: ("reference", notebook name, "") or ("student", name, folder)."""
    kind, name, folder = task
    sources = {s.name: s for s in _CONTEXT.sources}
    if kind == "reference":
        plan = reference_plan(sources[name])
        return plan, _run(plan)
    outcomes = []
    for source in _CONTEXT.sources:
        paths = locate_notebook(Path(folder), source.name)
        if not paths:
            outcomes.append(NotebookOutcome(source.name, "missing",
                                            f"{source.name} was not submitted"))
            continue
        if len(paths) > 1:
            where = ", ".join(str(p.relative_to(folder)) for p in paths)
            outcomes.append(NotebookOutcome(source.name, "invalid", f"{len(paths)} copies of "
                                            f"{source.name} in subfolders ({where}); keep one"))
            continue
        try:
            submission = read_submission(paths[0])
        except (InvalidSubmission, OSError) as exc:
            outcomes.append(NotebookOutcome(source.name, "invalid", f"{source.name}: {exc}"))
            continue
        note = "" if paths[0].parent == Path(folder) else \
            f"Your notebook was found in the subfolder {paths[0].parent.relative_to(folder)}."
        plan = submission_plan(source, submission)
        outcomes.append(NotebookOutcome(source.name, "run", plan=plan, run=_run(plan),
                                        note=note))
    return outcomes


def _pool_context():
    """``fork`` (workers start at once, nothing re-imported) unless TensorFlow's threads are
    already running in this process (forking them is unsafe): then ``forkserver``."""
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    if "tensorflow" in sys.modules:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["coursekit.grade.batch"])
        return context
    return multiprocessing.get_context("fork")


def _execute(tasks: list[tuple[str, str, str]], jobs: int, context: _Context, on_done) -> None:
    """Run ``tasks`` in a process pool; call ``on_done(task, result, error)`` as each ends.

    A worker that dies (BrokenProcessPool) takes the pool down: unfinished tasks are retried
    once in a fresh pool, then reported as errors.
    """
    attempts = {task: 0 for task in tasks}
    pending = list(tasks)
    while pending:
        pool = ProcessPoolExecutor(max_workers=max(1, min(jobs, len(pending))),
                                   mp_context=_pool_context(), initializer=_init_worker,
                                   initargs=(context,))
        try:
            futures = {pool.submit(_work, task): task for task in pending}
            pending = []
            for future in as_completed(futures):
                task = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    attempts[task] += 1
                    if attempts[task] <= _WORKER_RETRIES:
                        pending.append(task)
                    else:
                        on_done(task, None, "the grader's worker process died while grading "
                                            "this (twice); see the instructor guide")
                except Exception as exc:
                    on_done(task, None, f"internal grader error: {type(exc).__name__}: {exc}")
                else:
                    on_done(task, result, None)
        except BaseException:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


# -- parent side ----------------------------------------------------------------------------------
def _check_options(options: Options) -> None:
    index, count = options.shard
    if count < 1 or not 1 <= index <= count:
        raise InstructorError(f"--shard {index}/{count}: use i/N with 1 <= i <= N")
    if options.jobs < 1:
        raise InstructorError("--jobs must be at least 1")
    limits = options.limits
    if limits.cell_timeout <= 0 or limits.notebook_timeout <= 0:
        raise InstructorError("time limits must be positive")
    if limits.memory_mb < 256:
        raise InstructorError("--memory-mb must be at least 256 (a kernel needs ~150 MB)")
    if options.out.is_dir():
        raise InstructorError(f"--out {options.out} is a folder; give a file name such as "
                              "grades.csv")
    submissions = options.submissions.resolve()
    for name, path in (("--out", options.out), ("--feedback", options.feedback),
                       ("state folder", options.state)):
        if path is not None and (path.resolve() == submissions
                                 or submissions in path.resolve().parents):
            raise InstructorError(f"{name} {path} is inside the submissions folder")


def _load_sources(folder: Path) -> list[SourceNotebook]:
    from coursekit.grade.source import SourceError

    try:
        return load_sources(folder)
    except SourceError as exc:
        raise InstructorError(str(exc)) from None


def _notebook_rows(student: str, source: SourceNotebook, results: list[QuestionResult]
                   ) -> list[Row]:
    return [Row(student, source.name, r.question, r.points, r.max_points, r.status, r.message)
            for r in results]


class _Batch:
    """One grading run's state, from the resume check to the CSV (see :func:`grade`)."""

    def __init__(self, options: Options, sources: list[SourceNotebook], summary: Summary, log):
        self.options, self.sources, self.summary, self.log = options, sources, summary, log
        self.state = StateStore(options.state)
        self.by_name = {s.name: s for s in sources}
        self.records: dict[str, dict] = {}
        self.prints: dict[str, str] = {}
        self.todo: list[str] = []
        self.references: dict[str, dict | None] = {}
        self.reference_tasks: list[tuple[str, str, str]] = []
        self.waiting: dict[str, list[NotebookOutcome]] = {}
        self.failed_refs: dict[str, str] = {}
        self.bar = None

    def plan(self) -> None:
        """What is already done (resume) and what must run."""
        for student in self.summary.students:
            folder = self.options.submissions / student
            self.prints[student] = fingerprint(folder, self.sources, self.options.limits)
            record = self.state.load_student(student, self.prints[student])
            if record is None:
                self.todo.append(student)
            else:
                self.records[student] = record
                self.summary.resumed.append(student)
        for source in self.sources:
            cached = (self.state.load_reference(source.name, reference_key(source))
                      if self.todo else None)
            if cached is not None:
                self.references[source.name] = expected_values(cached)
            elif self.todo:
                self.reference_tasks.append(("reference", source.name, ""))

    def _feedback(self, student: str, rows: list[Row]) -> dict[str, str]:
        """The student's feedback per notebook, with the hand scores given so far."""
        return feedback_texts(self.options.state, student, self.sources,
                              apply_scores(self.options.state, rows))

    def write_feedback(self, student: str, texts: dict[str, str]) -> None:
        if self.options.feedback is None:
            return
        for name, text in texts.items():
            atomic_write(self.options.feedback / student / f"{Path(name).stem}.md", text)

    def _score(self, source: SourceNotebook, outcome: NotebookOutcome | None, error: str | None):
        """``(results, notes, manual answers, complete)`` for one notebook of a student."""
        if outcome is None:
            return whole_notebook(source, "error", f"not graded: {error}"), [], {}, True
        if outcome.kind in ("missing", "invalid"):
            return whole_notebook(source, outcome.kind, outcome.message), [], {}, True
        if source.name in self.failed_refs:
            return whole_notebook(source, "error", "not graded: the instructor's reference "
                                  "solution failed; it will be regraded"), [], {}, False
        results = score(source, outcome.plan, outcome.run, self.references[source.name],
                        self.options.limits)
        notes: list[str] = []
        if outcome.note:
            notes.append(outcome.note)
        if outcome.plan.extra_cells:
            notes.append(f"{outcome.plan.extra_cells} code cell(s) you added were run "
                         "after the cell above them.")
        if outcome.run.restarts:
            notes.append(f"The kernel was restarted {outcome.run.restarts} time(s) "
                         "after a crash or an unstoppable cell.")
        # a failed run is the grading machine's fault: retry on the next run
        return results, notes, outcome.plan.manual_answers, not outcome.run.failure

    def finish(self, student: str, outcomes: list[NotebookOutcome] | None,
               error: str | None) -> None:
        rows: list[Row] = []
        written: dict[str, dict[str, str]] = {}
        notes: dict[str, list[str]] = {}
        complete = error is None
        for source in self.sources:
            outcome = next((o for o in outcomes or [] if o.name == source.name), None)
            results, notes[source.name], manual, done = self._score(source, outcome, error)
            complete = complete and done
            written[source.name] = manual
            rows += _notebook_rows(student, source, results)
        save_answers(self.options.state, student, written)  # for the hand-grading sheets
        save_notes(self.options.state, student, notes)  # for feedback rewritten by `merge`
        if complete:
            self.state.save_student(student, self.prints[student], rows)
        self.records[student] = {"rows": [asdict(row) for row in rows]}
        self.write_feedback(student, self._feedback(student, rows))
        self.summary.graded.append(student)
        if self.bar is not None:
            self.bar.update(1)

    def needs(self, outcomes: list[NotebookOutcome]) -> set[str]:
        return ({o.name for o in outcomes if o.kind == "run"} - set(self.references)
                - set(self.failed_refs))

    def on_done(self, task, result, error) -> None:
        kind, name, _ = task
        if kind == "reference":
            self._reference_done(name, result, error)
        elif error is not None:
            self.finish(name, None, error)
        elif self.needs(result):
            self.waiting[name] = result
        else:
            self.finish(name, result, None)

    def _reference_done(self, name: str, result, error: str | None) -> None:
        if error is None:
            plan, run = result
            try:
                payloads = build_reference(self.by_name[name], plan, run)
            except ReferenceFailure as exc:
                error = str(exc)
            else:
                self.state.save_reference(name, reference_key(self.by_name[name]), payloads)
                self.references[name] = expected_values(payloads)
        if error is not None:
            self.failed_refs[name] = error
            self.summary.reference_problems.append(error)
            self.log(f"PROBLEM: {error}")
        for student in [s for s, o in self.waiting.items() if not self.needs(o)]:
            self.finish(student, self.waiting.pop(student), None)

    def _context(self, workroot: Path) -> _Context:
        options = self.options
        private = tuple(p for p in (options.source_dir, options.submissions, options.out.parent,
                                    options.feedback, options.state, CHECKOUT / ".git")
                        if p is not None)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        limits = options.limits
        limits = Limits(limits.cell_timeout, limits.notebook_timeout, limits.memory_mb,
                        limits.startup_timeout, limits.max_restarts,
                        threads=max(1, (cpus or 1) // options.jobs))
        return _Context(tuple(self.sources), self.summary.isolation, workroot, limits, private)

    def execute(self) -> None:
        """Run the reference and student tasks in the pool; link folders are refused unread."""
        options, todo = self.options, self.todo
        workroot = make_workroot("cnn-grade-")
        os.chmod(workroot, 0o711)  # a kernel running as nobody must reach its own folder
        context = self._context(workroot)
        student_tasks = [("student", s, str(options.submissions / s)) for s in todo
                         if not (options.submissions / s).is_symlink()]
        try:
            if options.progress and todo:
                from tqdm import tqdm

                self.bar = tqdm(total=len(todo), desc="grading", unit="student", file=sys.stderr)
            for student in todo:  # a linked folder could point anywhere: refuse it unread
                if (options.submissions / student).is_symlink():
                    self.finish(student, [NotebookOutcome(s.name, "invalid", "the student folder "
                                "is a symbolic link") for s in self.sources], None)
            _execute(self.reference_tasks + student_tasks, options.jobs, context, self.on_done)
            for student in list(self.waiting):  # a reference failed, nothing else to wait for
                self.finish(student, self.waiting.pop(student), None)
        finally:
            if self.bar is not None:
                self.bar.close()
            shutil.rmtree(workroot, ignore_errors=True)

    def write_results(self) -> None:
        """Every student's rows (graded now or resumed) into the summary and the CSV."""
        summary = self.summary
        for student in summary.students:
            summary.rows += [Row(**row) for row in self.records[student]["rows"]]
        summary.rows = apply_scores(self.options.state, summary.rows)  # hand scores survive
        for student in summary.resumed:  # feedback written again: hand scores may have come since
            mine = [row for row in summary.rows if row.student == student]
            self.write_feedback(student, feedback_texts(self.options.state, student, self.sources, mine))
        write_csv(summary.rows, self.options.out)


def grade(options: Options, log=print) -> Summary:
    """Grade every student of the shard; see the module docstring. Raises InstructorError."""
    started = time.monotonic()
    _check_options(options)
    sources = _load_sources(options.source_dir)
    students = shard_of(discover_students(options.submissions), options.shard)
    try:
        isolation = detect_isolation(options.isolation)
    except RuntimeError as exc:
        raise InstructorError(str(exc)) from None
    summary = Summary(isolation, students)
    log(isolation.describe())
    batch = _Batch(options, sources, summary, log)
    batch.plan()
    batch.execute()
    batch.write_results()
    summary.seconds = time.monotonic() - started
    return summary

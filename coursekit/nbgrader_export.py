"""Export exercise sets as an nbgrader course source, graded like ``coursekit.grade`` grades them.

Command line::

    python -m coursekit.nbgrader_export --out COURSE_DIR [--source solutions/]
           [--assignment NAME] [--state DIR] [NOTEBOOK ...]

writes, for each source notebook (all of ``--source`` unless NOTEBOOK names some; one assignment
per notebook, named after it, unless ``--assignment`` puts them all into one):

* ``COURSE_DIR/source/<assignment>/<notebook>.ipynb``, the nbgrader source version;
* ``COURSE_DIR/source/<assignment>/coursekit_probes.py`` (:data:`CHECKER_NAME`), the checker
  module: the grader's own value decoding and comparison, NumPy only, no expected values;
* ``COURSE_DIR/coursekit_expected/<assignment>/<notebook>.json``, the model answer's probe values
  (computed by running the model answer once with the grader's own reference machinery, cached
  like the grader's in ``--state``);
* ``COURSE_DIR/nbgrader_config.py``, only when the course has none.

How our source format maps onto nbgrader's cell metadata (``metadata.nbgrader``, schema 3):

* answer cell -> *solution* cell (``solution``); our markers are nbgrader's, so
  ``nbgrader generate_assignment`` writes the same ``# YOUR CODE HERE`` stubs as our generator;
* test cell -> *autograder tests* cell (``grade``, ``locked``, ``points``); its hidden part
  (removed from the release by nbgrader, kept in the gradebook and restored at autograde) binds
  ``probe`` to a ``ProbeCheck`` of the checker module, runs our hidden tests unchanged and
  ends with ``probe.verify()``, which asserts with the grader's comparison
  (:func:`coursekit.grade.values.compare`), tolerances and messages;
* manual question -> *manually graded answer* (``solution`` and ``grade``, ``points``); the rubric
  is appended inside the solution region, so graders see it in the instructor version
  (``source/`` and ``nbgrader generate_solution``) and the release never does;
* text and set-up cells -> *read-only* cells (``locked``). The stand-in ``probe`` that ends the
  first code cell of our sources is dropped (each hidden test brings its own ``probe``).

**Where the expected values live.** nbgrader copies every non-notebook file of
``source/<assignment>/`` into the students' release (``generate_assignment``) and again into each
student's folder at ``autograde``; its ``CourseDirectory.ignore`` drops a file from both. Hidden
tests are kept out of the release, but ``generate_feedback`` shows them, and tracebacks of a
failing hidden test quote the lines around the failure. So the values are neither in
``source/<assignment>/`` nor in any cell: they stay in ``coursekit_expected/`` of the course folder,
which ``ProbeCheck`` finds by looking upwards from the working directory (autograde runs in
``autograded/<student>/<assignment>/``). Question ids become the grade ids of test and manual
cells (``.`` becomes ``_``), so nbgrader's per-cell scores read as our questions.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import shutil
import sys
from pathlib import Path

import nbformat

from coursekit.grade import source as src
from coursekit.grade.source import SourceError, SourceNotebook, load_source, load_sources

ROOT = Path(__file__).resolve().parent.parent
CHECKER_NAME = "coursekit_probes.py"
EXPECTED_DIR = "coursekit_expected"  # COURSE_DIR/coursekit_expected/<assignment>/<nb>.json
EXPECTED_ENV = "COURSEKIT_NBGRADER_COURSE"
SCHEMA_VERSION = 3
DEFAULT_CONFIG = '''\
# nbgrader configuration written by `python -m coursekit.nbgrader_export` (edit freely).
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "seeing-inside-cnns"
# Same per-cell limit as `python -m coursekit.grade --cell-timeout` (nbgrader's default is 30 s).
c.Execute.timeout = 120
'''
_CHECKER_CODE = '''

# -- nbgrader side (added by coursekit.nbgrader_export) --------------------------------------
import json  # noqa: E402

_KERNEL_PROBE_CODE = {kernel_code!r}


def _expected_file(assignment, notebook):
    """Where the model answer's values of ``assignment``/``notebook`` are (see ProbeCheck)."""
    import os
    from pathlib import Path

    relative = Path({expected_dir!r}, assignment, notebook + ".json")
    roots = [Path(os.environ[{expected_env!r}])] if os.environ.get({expected_env!r}) else []
    roots += [Path.cwd(), *Path.cwd().parents]
    for root in roots:
        if (root / relative).is_file():
            return root / relative
    raise RuntimeError(f"the model answer's values ({{relative}}) were not found in the "
                       f"folders above {{Path.cwd()}}; autograde inside the nbgrader course "
                       f"folder, or set {expected_env} to the course folder")


def _kernel_encode():
    """The encoder of coursekit's kernel-side ``probe`` (values as the grader receives them)."""
    import builtins

    missing = object()
    before = getattr(builtins, "__grade_probe__", missing)
    namespace = {{"__name__": "coursekit_kernel_probe"}}
    exec(_KERNEL_PROBE_CODE, namespace)
    if before is missing:
        del builtins.__grade_probe__
    else:
        builtins.__grade_probe__ = before
    return namespace["probe"].encode


class ProbeCheck:
    """``probe`` for nbgrader's hidden tests: collects the probed values of one question, and
    :meth:`verify` compares them with the model answer's exactly as ``python -m coursekit.grade``
    does, with the model answer's tolerances (those a call passes are ignored, as in the grader).

    The model answer's values are read from ``{expected_dir}/<assignment>/<notebook>.json`` in
    the nearest folder above the working directory that has one (the nbgrader course folder:
    autograde runs in ``autograded/<student>/<assignment>/``), or below the folder named by the
    environment variable ``{expected_env}``. They never sit in a notebook or in ``source/``, so
    neither the release nor the feedback can show them."""

    def __init__(self, question, assignment, notebook):
        path = _expected_file(assignment, notebook)
        self.question = question
        payloads = json.loads(path.read_text(encoding="utf-8")).get(question)
        if not payloads:
            raise RuntimeError(f"{{path}} holds no values for {{question}}: export the "
                               "assignment again (python -m coursekit.nbgrader_export)")
        self.expected = [(str(p["name"]), decode(p.get("value")), float(p.get("rtol", 1e-5)),
                          float(p.get("atol", 1e-8))) for p in payloads]
        self.sent = {{}}
        self._encode = _kernel_encode()

    def __call__(self, name, value, **tolerance):
        try:
            payload = {{"value": json.loads(json.dumps(self._encode(value)))}}
        except Exception as exc:
            payload = {{"error": f"{{type(exc).__name__}}: {{exc}}"[:300]}}
        self.sent.setdefault(str(name), []).append(payload)
        return value

    def reasons(self):
        """Why the probed values differ from the model answer's (empty when they match)."""
        reasons = []
        for name, expected, rtol, atol in self.expected:
            payloads = self.sent.get(name, [])
            if not payloads:
                reasons.append(f"value {{name!r}} was not computed")
            elif len(payloads) > 1:
                reasons.append(f"value {{name!r}} was sent more than once")
            elif "error" in payloads[0]:
                reasons.append(f"value {{name!r}} could not be read: {{payloads[0]['error']}}")
            else:
                try:
                    actual = decode(payloads[0]["value"])
                except ProbeFormatError as exc:
                    reasons.append(f"value {{name!r}} is malformed ({{exc}})")
                    continue
                reason = compare(expected, actual, rtol, atol)
                if reason:
                    reasons.append(f"{{name}}: {{reason}}")
        return reasons

    def verify(self):
        """Raise AssertionError (the grader's message) unless every value matched."""
        reasons = self.reasons()
        if reasons:
            more = f" (and {{len(reasons) - 1}} more)" if len(reasons) > 1 else ""
            raise AssertionError(f"{{self.question}}: wrong result: {{reasons[0]}}{{more}}")
'''


class ExportError(ValueError):
    """The export cannot be made (bad source, failing model answer, bad option): says why."""


# -- the checker module -------------------------------------------------------------------------
def checker_module() -> str:
    """Text of :data:`CHECKER_NAME`: the grader's ``values`` module (decoding and ``compare``;
    NumPy and the standard library only) plus the kernel-side encoder and ``ProbeCheck``.

    Generated from the grader's own source, so nbgrader compares exactly as the grader does.
    """
    from coursekit.grade import values

    text = Path(values.__file__).read_text(encoding="utf-8")
    lines = text.splitlines()
    tree = ast.parse(text)
    drop: set[int] = set()
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        drop.update(range(body[0].lineno - 1, body[0].end_lineno))  # values' own docstring
    for node in body:
        targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        if "KERNEL_PROBE_CODE" in targets:  # reads a file next to values.py: inlined below
            drop.update(range(node.lineno - 1, node.end_lineno))
    kept = "\n".join(line for number, line in enumerate(lines) if number not in drop)
    header = ('"""Checks probed values for nbgrader exactly as coursekit\'s grader does '
              "(generated by\n``python -m coursekit.nbgrader_export`` from "
              "``coursekit/grade/values.py``; do not edit: autograde\nreplaces this file with "
              'the instructor\'s copy). Holds no expected values."""\n')
    checker = _CHECKER_CODE.format(kernel_code=values.KERNEL_PROBE_CODE,
                                   expected_dir=EXPECTED_DIR, expected_env=EXPECTED_ENV)
    return header + kept.strip("\n") + "\n" + checker


# -- one notebook -------------------------------------------------------------------------------
def grade_id(text: str) -> str:
    """``text`` as an nbgrader grade id (letters, digits, ``_`` and ``-``)."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_-") else "_" for ch in text)


def grade_ids(source: SourceNotebook) -> dict[int, str]:
    """The grade id of every cell (by index): the question id for test and manual cells,
    ``<question>-answer[-n]`` for answer cells, ``cell-<cell id>`` for text and set-up cells."""
    ids: dict[int, str] = {}
    answers: dict[str, int] = {}
    for cell in source.cells:
        if cell.role in ("test", "manual"):
            ids[cell.index] = grade_id(cell.question)
        elif cell.role == "solution":
            answers[cell.question] = answers.get(cell.question, 0) + 1
            number = answers[cell.question]
            ids[cell.index] = grade_id(f"{cell.question}-answer" + (f"-{number}" if number > 1
                                                                      else ""))
        else:
            ids[cell.index] = grade_id(f"cell-{cell.cell_id}")
    seen: dict[str, int] = {}
    for index, gid in ids.items():
        if gid in seen:
            raise ExportError(f"{source.name}: cells {seen[gid]} and {index} would both get the "
                              f"nbgrader grade id {gid!r}; rename a question or a cell id")
        seen[gid] = index
    return ids


def nbgrader_metadata(gid: str, *, solution: bool = False, grade: bool = False,
                      locked: bool = False, points: float | None = None) -> dict:
    """One cell's ``metadata.nbgrader`` (schema 3)."""
    meta = {"grade": grade, "grade_id": gid, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def hidden_tests(cell: src.SourceCell, assignment: str, notebook: str) -> str:
    """The hidden part of an autograder cell: bind ``probe`` to a checker of the model answer's
    values (read from the course folder at autograde), run our hidden tests, verify."""
    lines = [src.BEGIN_HIDDEN,
             f"from {Path(CHECKER_NAME).stem} import ProbeCheck as _ProbeCheck",
             f"probe = _ProbeCheck({cell.question!r}, {assignment!r}, {notebook!r})",
             cell.hidden, "probe.verify()", src.END_HIDDEN]
    return "\n".join(lines)


def rubric_text(source: SourceNotebook, cell: src.SourceCell) -> str:
    """A manual question's rubric (from ``metadata.grade.rubric``) as Markdown."""
    raw = source.nb.cells[cell.index].metadata["grade"].get("rubric")
    where = f"{source.name}, cell {cell.index}"
    criteria = src.parse_rubric(raw, cell.points, where)
    unit = "point" if cell.points == 1 else "points"
    lines = [f"**Rubric for {cell.question}** ({cell.points:g} {unit}; graders only, removed "
             "from the students' version):", ""]
    lines += [f"- ({c.points:g}) {c.text}" for c in criteria]
    return "\n".join(lines)


def manual_source(source: SourceNotebook, cell: src.SourceCell) -> str:
    """A manual answer cell with the rubric inside its (last) solution region."""
    rubric = rubric_text(source, cell)
    if cell.cell_type == "code":
        rubric = "\n".join("# " + line if line else "#" for line in rubric.splitlines())
    lines = cell.source.splitlines()
    ends = [i for i, line in enumerate(lines) if line.strip() == src.END_SOLUTION]
    if not ends:
        return "\n".join([cell.source.rstrip(), src.BEGIN_SOLUTION, rubric, src.END_SOLUTION])
    indent = lines[ends[-1]][: len(lines[ends[-1]]) - len(lines[ends[-1]].lstrip())]
    block = ["", *(indent + line if line else line for line in rubric.splitlines())]
    return "\n".join(lines[: ends[-1]] + block + lines[ends[-1]:])


def setup_source(source: SourceNotebook, cell: src.SourceCell) -> str:
    """A set-up cell without its hidden region, which may only hold the stand-in ``probe``
    (nbgrader hides code in test cells only)."""
    if not cell.hidden.strip():
        return cell.source
    tree = ast.parse(cell.hidden)
    only_probe = all(isinstance(node, ast.FunctionDef) and node.name == src.PROBE_FUNCTION
                     for node in tree.body)
    if not only_probe:
        raise ExportError(f"{source.name}, cell {cell.index}: the hidden region of this set-up "
                          "cell holds more than the stand-in probe(); nbgrader can hide code "
                          "only in test cells, so move it into a test cell's hidden tests")
    return cell.public


def export_notebook(source: SourceNotebook, reference: dict[str, list[dict]], assignment: str
                    ) -> nbformat.NotebookNode:
    """The nbgrader source version of ``source`` in ``assignment``; ``reference`` maps each
    auto-graded question to the model answer's probe payloads
    (:func:`coursekit.grade.scoring.build_reference`), which the course keeps in
    :func:`expected_path`."""
    from coursekit.notebooks import strip_notebook

    nb = copy.deepcopy(source.nb)
    ids = grade_ids(source)
    for cell, info in zip(nb.cells, source.cells):
        for key in ("grade", "editable", "deletable", "nbgrader", *src._VOLATILE_METADATA):
            cell.metadata.pop(key, None)
        gid = ids[info.index]
        if info.role == "solution":
            meta = nbgrader_metadata(gid, solution=True)
        elif info.role == "test":
            if not reference.get(info.question):
                raise ExportError(f"{source.name}: no reference values for {info.question}")
            hidden = hidden_tests(info, assignment, Path(source.name).stem)
            cell.source = f"{info.public.rstrip()}\n{hidden}".lstrip("\n")
            meta = nbgrader_metadata(gid, grade=True, locked=True, points=info.points)
        elif info.role == "manual":
            cell.source = manual_source(source, info)
            meta = nbgrader_metadata(gid, solution=True, grade=True, points=info.points)
        else:
            if info.role == "setup":
                cell.source = setup_source(source, info)
            meta = nbgrader_metadata(gid, locked=True)
        cell.metadata["nbgrader"] = meta
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return strip_notebook(nb)


def expected_path(course: Path, assignment: str, notebook: str) -> Path:
    """Where the course keeps the model answer's values of one notebook (outside ``source/``,
    so nbgrader neither releases them nor copies them into a student's folder)."""
    return course / EXPECTED_DIR / assignment / f"{Path(notebook).stem}.json"


# -- reference values ---------------------------------------------------------------------------
def reference_payloads(source: SourceNotebook, state_dir: Path | None) -> dict[str, list[dict]]:
    """The model answer's probe payloads per question, computed as the grader computes them
    (same plan, runner and checks), cached in ``state_dir`` exactly like the grader's reference
    values (so a grader's state folder serves both)."""
    from coursekit.grade.batch import reference_key
    from coursekit.grade.plan import reference_plan
    from coursekit.grade.results import StateStore
    from coursekit.grade.runner import Limits, run_steps_sync
    from coursekit.grade.sandbox import detect_isolation, make_workroot
    from coursekit.grade.scoring import ReferenceFailure, build_reference

    store = StateStore(state_dir) if state_dir is not None else None
    key = reference_key(source)
    cached = store.load_reference(source.name, key) if store is not None else None
    if cached is not None:
        return cached
    plan = reference_plan(source)
    workroot = make_workroot("cnn-nbgrader-export-")
    try:
        run = run_steps_sync(plan.steps, detect_isolation("none"), workroot, Limits())
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    try:
        payloads = build_reference(source, plan, run)
    except ReferenceFailure as exc:
        raise ExportError(str(exc)) from None
    if store is not None:
        store.save_reference(source.name, key, payloads)
    return payloads


# -- the course folder --------------------------------------------------------------------------
def _write_text(path: Path, text: str) -> None:
    from coursekit.grade.results import atomic_write

    atomic_write(path, text if text.endswith("\n") else text + "\n")


def export(sources: list[SourceNotebook], out: Path, assignment: str | None = None,
           state_dir: Path | None = None, log=print) -> list[Path]:
    """Write the nbgrader course source for ``sources`` under ``out``; return the notebooks
    written. Everything is computed first, so a failing model answer writes nothing."""
    if not sources:
        raise ExportError("no source notebooks to export")
    if assignment is not None and grade_id(assignment) != assignment:
        raise ExportError(f"--assignment {assignment!r}: use letters, digits, '_' and '-'")
    planned: list[tuple[Path, str]] = []
    for source in sources:
        log(f"{source.name}: computing the model answer's values")
        payloads = reference_payloads(source, state_dir)
        name = assignment or grade_id(Path(source.name).stem)
        notebook = export_notebook(source, payloads, name)
        planned.append((out / "source" / name / source.name, nbformat.writes(notebook)))
        planned.append((expected_path(out, name, source.name), json.dumps(payloads)))
    checker = checker_module()
    for path, text in planned:
        _write_text(path, text)
        if path.suffix == ".ipynb":
            _write_text(path.parent / CHECKER_NAME, checker)
    config = out / "nbgrader_config.py"
    if not config.exists():
        _write_text(config, DEFAULT_CONFIG)
    return [path for path, _ in planned if path.suffix == ".ipynb"]


def _select(source_dir: Path, names: list[str]) -> list[SourceNotebook]:
    """The source notebooks to export: all of ``source_dir``, or those named (file names in it,
    or paths)."""
    if not names:
        return load_sources(source_dir)
    chosen = []
    for name in names:
        path = Path(name)
        if not path.is_file():
            path = source_dir / Path(name).name
        if not path.is_file():
            known = ", ".join(sorted(p.name for p in source_dir.glob("*.ipynb")))
            raise ExportError(f"notebook {name!r} not found (expected a path or one of: {known})")
        chosen.append(load_source(path))
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring); exit status 0, or 2 with a one-line reason."""
    parser = argparse.ArgumentParser(prog="python -m coursekit.nbgrader_export",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="source notebooks to export (default: all of --source)")
    parser.add_argument("--out", required=True, type=Path, help="the nbgrader course folder")
    parser.add_argument("--source", type=Path, default=ROOT / "solutions",
                        help="folder of source notebooks (default: solutions/)")
    parser.add_argument("--assignment", help="put every notebook into this one assignment "
                        "(default: one assignment per notebook, named after it)")
    parser.add_argument("--state", type=Path, help="cache the model answers' values here "
                        "(default: COURSE_DIR/.coursekit-reference; a grader's state folder "
                        "works too)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sources = _select(args.source, args.notebooks)
        written = export(sources, args.out, args.assignment,
                         args.state or args.out / ".coursekit-reference")
    except (ExportError, SourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    names = " ".join(sorted({path.parent.name for path in written}))
    print(f"next, in {args.out}: nbgrader generate_assignment ASSIGNMENT (one of: {names}); "
          "see README.md, 'Running the exercises in an nbgrader course'")
    return 0


if __name__ == "__main__":
    sys.exit(main())

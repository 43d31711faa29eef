"""Grades on disk: the CSV, shard combination and the resumable state folder.

Every file is written atomically (a temporary file in the same folder, then ``os.replace``), so
an interrupted run never leaves a half-written CSV, feedback or state file behind.

State folder layout (default: next to ``--out``, named ``<out stem>.state``)::

    students/<student>.json     one finished student: fingerprint, CSV rows
    reference/<notebook>-<key>.json   the reference probe values of one source notebook version
    answers/, notes/, hand/     written answers, feedback notes, hand scores and sheet ids
                                (coursekit.grade.handgrading): feedback is rendered from these

A student whose fingerprint (grader version, options, source and submission contents) matches
a state file is not graded again.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

COLUMNS = ("student", "notebook", "question", "points", "max_points", "status", "message")


class CsvError(ValueError):
    """A grades CSV cannot be read or combined (the message names the file and the problem)."""


@dataclass(frozen=True)
class Row:
    """One line of the grades CSV."""

    student: str
    notebook: str
    question: str
    points: float
    max_points: float
    status: str
    message: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.student, self.notebook, self.question


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The file gets the mode an ordinary ``open`` would give it (not ``mkstemp``'s 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _default_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _number(value: float) -> str:
    return f"{value:g}"


def rows_to_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row.student, row.notebook, row.question, _number(row.points),
                         _number(row.max_points), row.status, row.message])
    return buffer.getvalue()


def write_csv(rows: list[Row], path: Path) -> None:
    """Write ``rows`` (in the given order) as the grades CSV, atomically."""
    atomic_write(path, rows_to_csv(rows))


def read_csv(path: Path) -> list[Row]:
    """Read a grades CSV written by :func:`write_csv`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CsvError(f"{path}: cannot read: {exc.strerror}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header[: len(COLUMNS)]) != COLUMNS:
        raise CsvError(f"{path}: not a grades CSV (expected the header {','.join(COLUMNS)})")
    rows = []
    for number, fields in enumerate(reader, 2):
        if len(fields) < len(COLUMNS):
            raise CsvError(f"{path}, line {number}: {len(fields)} fields, expected "
                           f"{len(COLUMNS)}")
        try:
            rows.append(Row(fields[0], fields[1], fields[2], float(fields[3]), float(fields[4]),
                            fields[5], fields[6]))
        except ValueError:
            raise CsvError(f"{path}, line {number}: points are not numbers") from None
    return rows


def combine(paths: list[Path], out: Path) -> list[Row]:
    """Merge shard CSVs into ``out`` (sorted by student; a row may appear in one file only,
    unless identical). Returns the merged rows."""
    merged: dict[tuple[str, str, str], tuple[Row, Path]] = {}
    order: dict[tuple[str, str], int] = {}
    for path in paths:
        for row in read_csv(path):
            seen = merged.get(row.key)
            if seen is not None and seen[0] != row:
                raise CsvError(f"{row.student}/{row.notebook}/{row.question} differs between "
                               f"{seen[1]} and {path} (were the shards graded with different "
                               "options or sources?)")
            merged[row.key] = (row, path)
            order.setdefault((row.notebook, row.question), len(order))
    rows = sorted((row for row, _ in merged.values()),
                  key=lambda r: (r.student, order[(r.notebook, r.question)]))
    write_csv(rows, out)
    return rows


class StateStore:
    """The state folder that makes a rerun resume (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.students = self.folder / "students"
        self.references = self.folder / "reference"

    def _student_file(self, student: str) -> Path:
        return self.students / f"{student}.json"

    def load_student(self, student: str, fingerprint: str) -> dict | None:
        """The saved record of ``student`` if it was graded with the same fingerprint."""
        try:
            record = json.loads(self._student_file(student).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
            return None
        return record

    def save_student(self, student: str, fingerprint: str, rows: list[Row]) -> None:
        record = {"student": student, "fingerprint": fingerprint,
                  "rows": [asdict(row) for row in rows]}
        atomic_write(self._student_file(student), json.dumps(record, indent=1))

    @staticmethod
    def rows_of(record: dict) -> list[Row]:
        return [Row(**row) for row in record["rows"]]

    def load_reference(self, name: str, key: str) -> dict | None:
        try:
            return json.loads((self.references / f"{name}-{key}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def save_reference(self, name: str, key: str, payloads: dict) -> None:
        atomic_write(self.references / f"{name}-{key}.json", json.dumps(payloads))

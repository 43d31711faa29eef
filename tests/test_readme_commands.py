"""The README's instructor commands run as printed (issue: they failed with ModuleNotFoundError
outside the course's environment).

The block after ``<!-- instructor-commands -->`` is run line by line in bash from the checkout,
as an instructor would paste it, on a class of three fixture students. Only the paths of the
class and of the outputs are moved into a temporary folder, so the checkout stays clean; the
test first proves that nothing else in the text changed.
"""

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "submissions"
STUDENTS = ("correct", "partial", "untouched")

pytestmark = pytest.mark.slow


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- instructor-commands -->\s*```bash\n(.*?)```", text, re.S)
    assert match, "README.md lost its <!-- instructor-commands --> block"
    return match.group(1)


def relocate(script: str, tmp: Path) -> str:
    """The same commands with the class and the outputs under ``tmp``."""
    moves = [(r"SUBMISSIONS=submissions\b", f"SUBMISSIONS={tmp}/submissions"),
             (r"OUT=grades\.csv\b", f"OUT={tmp}/grades.csv"),
             (r"--feedback feedback\b", f"--feedback {tmp}/feedback"),
             (r"(?<![\w/=.-])grades\.csv\b", f"{tmp}/grades.csv"),
             (r"--out sheets\b", f"--out {tmp}/sheets"),
             (r"(?<![\w/=.-])sheets/\*\.csv", f"{tmp}/sheets/*.csv"),
             (r"(?<![\w/=.-])totals\.csv\b", f"{tmp}/totals.csv")]
    for pattern, replacement in moves:
        script = re.sub(pattern, replacement, script)
    return script


def test_relocation_changes_only_paths(tmp_path):
    original = readme_block()
    moved = relocate(original, tmp_path)
    assert moved.replace(f"{tmp_path}/", "") == original
    assert moved.count(str(tmp_path)) >= 6  # every output really moved out of the checkout


def test_instructor_commands_run_as_printed(tmp_path):
    for student in STUDENTS:
        shutil.copytree(FIXTURES / student, tmp_path / "submissions" / student)
    script = "set -euo pipefail\n" + relocate(readme_block(), tmp_path)
    # A plain shell: the course's environment is not active, as for an instructor's terminal.
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if not Path(p, "activate").exists())
    env = {**os.environ, "PATH": path}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    grades = list(csv.DictReader(io.StringIO((tmp_path / "grades.csv").read_text())))
    assert {row["student"] for row in grades} == set(STUDENTS)
    assert (tmp_path / "feedback" / "correct" / "00_warmup.md").exists()
    sheets = sorted(p.name for p in (tmp_path / "sheets").glob("*.csv"))
    assert "00_warmup__q5.csv" in sheets and (tmp_path / "sheets" / "00_warmup__q5.html").exists()
    totals = list(csv.DictReader(io.StringIO((tmp_path / "totals.csv").read_text())))
    assert sorted(row["student"] for row in totals) == sorted(STUDENTS)
    assert "merged 0 hand score(s)" in done.stdout  # the sheets were not filled in
    assert "feedback with the hand scores" in done.stdout
    # `make exercises` left exercises/ exactly as the sources say
    check = subprocess.run([sys.executable, "-m", "coursekit.exercises", "check"], cwd=ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

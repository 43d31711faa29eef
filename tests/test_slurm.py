"""The Slurm job script grades a class on a real (single-node) Slurm cluster.

The test starts Debian's ``slurmctld`` and ``slurmd`` on this machine (private ports, state and
spool in a temporary folder, no munge: ``auth/none``), submits ``coursekit/jobs/slurm_grade.sh``
exactly as an instructor would, waits for the array and the combine job, and checks the grades
against a plain single-machine run of the same class. ``make test`` installs the packages
(``make slurm``); elsewhere the test is skipped, and on CI a missing Slurm fails it.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coursekit.grade.results import read_csv

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "coursekit" / "jobs" / "slurm_grade.sh"
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "submissions"
STUDENTS = ("correct", "partial", "untouched")
GRADE_OPTIONS = "--isolation none --cell-timeout 20"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(base: Path) -> str:
    ctld, node = _free_port(), _free_port()
    return "\n".join([
        "ClusterName=course", "SlurmctldHost=localhost", f"SlurmctldPort={ctld}",
        f"SlurmdPort={node}", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/none", "CredType=cred/none",  # one machine, root only: no munge needed
        f"StateSaveLocation={base}/state", f"SlurmdSpoolDir={base}/spool",
        f"SlurmctldPidFile={base}/slurmctld.pid", f"SlurmdPidFile={base}/slurmd.pid",
        f"SlurmctldLogFile={base}/slurmctld.log", f"SlurmdLogFile={base}/slurmd.log",
        "ProctrackType=proctrack/pgid", "TaskPlugin=task/none", "MpiDefault=none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "ReturnToService=2",
        "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
        "PlugStackConfig=/dev/null",
        f"NodeName=localhost CPUs={os.cpu_count()} RealMemory=1000 State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


def _wait(condition, seconds: float, what: str, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}; Slurm log:\n"
                         + (log.read_text()[-3000:] if log.exists() else "(none)"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not (shutil.which("slurmctld") and shutil.which("slurmd") and shutil.which("sbatch")):
        if os.environ.get("CI"):
            pytest.fail("Slurm is not installed; `make test` installs it (make slurm)")
        pytest.skip("Slurm is not installed (Debian: apt-get install slurmd slurmctld slurm-client)")
    if os.geteuid() != 0:
        pytest.skip("starting Slurm's daemons needs root")
    base = tmp_path_factory.mktemp("slurm")
    for folder in ("state", "spool"):
        (base / folder).mkdir()
    conf = base / "slurm.conf"
    conf.write_text(_config(base))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run(["slurmctld", "-f", str(conf)], env=env, check=True)
    subprocess.run(["slurmd", "-f", str(conf)], env=env, check=True)
    try:
        _wait(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%t"], env=env,
                                               capture_output=True, text=True).stdout,
              60, "the node to come up", base / "slurmctld.log")
        yield env, base
    finally:
        subprocess.run(["scancel", "--user=root"], env=env, capture_output=True)
        for pidfile in ("slurmd.pid", "slurmctld.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((base / pidfile).read_text()), signal.SIGTERM)


def _class(folder: Path) -> Path:
    for student in STUDENTS:
        shutil.copytree(FIXTURES / student, folder / student)
    return folder


def test_array_job_grades_the_class_like_one_machine(cluster, tmp_path):
    env, base = cluster
    submissions = _class(tmp_path / "subs")
    env = {**env, "PYTHON": sys.executable, "GRADE_OPTIONS": GRADE_OPTIONS}
    done = subprocess.run([str(SCRIPT), str(submissions), str(tmp_path / "out"), "2"], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "submitted array job" in done.stdout
    grades = tmp_path / "out" / "grades.csv"
    _wait(lambda: grades.exists() and not subprocess.run(
          ["squeue", "-h"], env=env, capture_output=True, text=True).stdout.strip(),
          600, "the array and combine jobs", base / "slurmctld.log")
    parts = sorted((tmp_path / "out").glob("part-*.csv"))
    assert [p.name for p in parts] == ["part-1.csv", "part-2.csv"]  # two shards really ran
    assert len({r.student for r in read_csv(parts[0])}) + \
        len({r.student for r in read_csv(parts[1])}) == len(STUDENTS)

    single = tmp_path / "single.csv"
    subprocess.run([sys.executable, "-m", "coursekit.grade", str(submissions), "--out",
                    str(single), "--quiet", *GRADE_OPTIONS.split()], check=True, cwd=ROOT)
    assert read_csv(grades) == read_csv(single)
    assert {r.student for r in read_csv(grades)} == set(STUDENTS)
    assert (tmp_path / "out" / "feedback" / "correct" / "00_warmup.md").exists()


def test_script_refuses_to_run_without_its_arguments():
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 2 and "usage:" in done.stderr

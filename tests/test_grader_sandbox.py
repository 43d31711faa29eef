"""What a grading kernel can and cannot do, for each isolation mechanism this machine offers.

The kernel runs code that looks around (files, network, user, memory, processes) and reports what
it found through a probe; the test compares that with what the mechanism promises
(``Isolation.protections``). Mechanisms that do not work here are skipped, so on a laptop without
bubblewrap only ``none`` runs.
"""

import os
import socket
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from _ci import unavailable

from coursekit.grade.plan import Step
from coursekit.grade.runner import Limits, run_steps_sync
from coursekit.grade.sandbox import PACKAGE_DIR, detect_isolation
from coursekit.grade.values import decode

LIMITS = Limits(cell_timeout=20, notebook_timeout=60, memory_mb=1024)

LOOK_AROUND = '''
import os, socket, pathlib
found = {{"uid": os.getuid()}}
found["sees private file"] = os.path.exists({secret!r})
try:
    open({output!r}, "a").close()
    found["writes output folder"] = True
except OSError:
    found["writes output folder"] = False
try:
    open({package!r}, "a").close()
    found["writes utils package"] = True
except OSError:
    found["writes utils package"] = False
sock = socket.socket()
sock.settimeout(3)
found["reaches grader's network"] = sock.connect_ex(("127.0.0.1", {port})) == 0
found["can import utils.layout"] = __import__("importlib").util.find_spec("utils.layout") is not None
probe("found", found)
'''
MEMORY = '''
try:
    hog = bytearray(3 * 2**30)
    result = "allocated 3 GB"
except MemoryError:
    result = "MemoryError"
probe("memory", result)
'''
# The sleeps' durations carry a number unique to this test run, so the scan below never sees
# another run's processes (several clones may test on one machine at once).
RUN_TOKEN = f"{uuid.uuid4().int % 10**12:012d}"
SLEEPS = (f"614.{RUN_TOKEN}", f"615.{RUN_TOKEN}")
DAEMON = f'''
import os, subprocess
subprocess.Popen(["sleep", "{SLEEPS[0]}"])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "{SLEEPS[1]}"])
    os._exit(0)
'''


def _isolation(mechanism):
    try:
        return detect_isolation(mechanism)
    except RuntimeError:
        unavailable(f"{mechanism} does not work on this machine")


def _sleepers(grace: float = 5.0):
    """This run's daemon sleeps still alive after ``grace`` seconds (a killed process may take a
    moment to exit)."""
    deadline = time.monotonic() + grace
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if any(sleep in cmdline for sleep in SLEEPS):
                found.append(f"{entry.name}: {cmdline}")
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize("mechanism", ["bubblewrap", "unshare", "none"])
def test_kernel_sees_what_the_mechanism_promises(mechanism, tmp_path, listener):
    isolation = _isolation(mechanism)
    private = tmp_path / "solutions"
    private.mkdir()
    (private / "secret.ipynb").write_text("{}")
    output = tmp_path / "grades"
    output.mkdir()
    code = LOOK_AROUND.format(secret=str(private / "secret.ipynb"),
                              output=str(output / "grades.csv"),
                              package=str(PACKAGE_DIR / "grade" / "injected.py"), port=listener)
    workroot = Path(tempfile.mkdtemp(prefix="cnn-grade-test-"))
    os.chmod(workroot, 0o711)
    try:
        run = run_steps_sync([Step("setup", None, code, "look")], isolation, workroot, LIMITS,
                             private=(private, output))
    finally:
        (PACKAGE_DIR / "grade" / "injected.py").unlink(missing_ok=True)
        os.rmdir(workroot)
    [step] = run.steps
    assert step.status == "ok", step
    found = decode(step.probes[0]["value"])
    network, files, read_only, user, _, _ = isolation.protections
    assert found["can import utils.layout"]
    assert found["reaches grader's network"] is (not network)
    assert found["sees private file"] is (not files)
    assert found["writes output folder"] is (not files)
    if read_only:
        assert not found["writes utils package"]
    assert (found["uid"] == 65534) is (user and os.geteuid() == 0)


@pytest.mark.parametrize("mechanism", ["bubblewrap", "unshare", "none"])
def test_memory_limit_and_process_cleanup(mechanism, tmp_path):
    isolation = _isolation(mechanism)
    steps = [Step("setup", None, MEMORY, "memory"), Step("setup", None, DAEMON, "daemon")]
    run = run_steps_sync(steps, isolation, tmp_path, LIMITS)
    assert [s.status for s in run.steps] == ["ok", "ok"]
    assert decode(run.steps[0].probes[0]["value"]) == "MemoryError"
    assert _sleepers() == []
    assert list(tmp_path.iterdir()) == []  # the kernel's folders are gone


def test_isolation_is_described_with_what_is_off():
    none = detect_isolation("none")
    assert "OFF: no network" in none.describe()
    assert "private files" in " ".join(none.off())
    best = detect_isolation("auto")
    assert best.describe().startswith(f"isolation: {best.mechanism}")


@pytest.mark.slow  # waits out a 6 s notebook deadline
def test_notebook_deadline_stops_the_run_and_marks_the_rest(tmp_path):
    steps = [Step("setup", None, "x = 1", "first"),
             Step("answer", "q1", "while True:\n    pass", "loop"),
             Step("answer", "q2", "y = 2", "after")]
    limits = Limits(cell_timeout=30, notebook_timeout=6, memory_mb=1024)
    run = run_steps_sync(steps, detect_isolation("auto"), tmp_path, limits)
    assert run.deadline_hit
    assert [(s.status, s.evalue) for s in run.steps] == \
        [("ok", ""), ("timeout", "notebook"), ("timeout", "notebook")]
    assert run.seconds < 30


def test_crashes_restart_the_kernel_until_the_budget_is_spent(tmp_path):
    crash = "import os\nos._exit(1)"
    steps = [Step("setup", None, "import numpy", "setup"), Step("answer", "q1", crash, "a"),
             Step("answer", "q2", crash, "b"), Step("answer", "q3", "z = 3", "c")]
    limits = Limits(cell_timeout=20, notebook_timeout=120, memory_mb=1024, max_restarts=1)
    run = run_steps_sync(steps, detect_isolation("auto"), tmp_path, limits)
    assert [s.status for s in run.steps] == ["ok", "crashed", "crashed", "not_run"]
    assert run.restarts == 1 and run.restarts_exhausted


def test_bubblewrap_binds_survive_a_checkout_under_tmp(tmp_path, monkeypatch):
    # CI may clone the course under /tmp: the kernel's fresh /tmp must not cover the read-only
    # binds of the course's own files (utils would not import, and bubblewrap would be unusable).
    from coursekit.grade import sandbox as sb

    monkeypatch.setattr(sb, "PACKAGE_DIR", Path(tempfile.gettempdir()) / "clone" / "utils")
    box = sb.Sandbox(sb.Isolation("bubblewrap", False, (True,) * 6), tmp_path, memory_mb=1024)
    cmd = box._bwrap_prefix()
    tmp_mount = cmd.index("/tmp", cmd.index("--tmpfs"))
    package_bind = cmd.index(str(sb.PACKAGE_DIR))
    assert cmd[package_bind - 1] == "--ro-bind" and tmp_mount < package_bind

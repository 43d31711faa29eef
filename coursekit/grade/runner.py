"""Execute a list of :class:`~coursekit.grade.plan.Step` in a sandboxed kernel, robustly.

Each step runs as one cell through ``nbclient`` with a per-cell time limit and inside a
per-notebook deadline. What the grader keeps per step is its outcome (ok, error with name and
message, timeout, crash...) and the probe values it published; all other output is discarded as
it arrives (so huge output costs nothing but time).

Recovery, so one broken question costs only that question:

* a cell over its time limit is interrupted; if the kernel does not answer afterwards (the code
  swallowed ``KeyboardInterrupt``), the kernel is killed and restarted;
* when the kernel dies (``os._exit``, a crash, the memory limit) or its output channel is cut
  (one message over :data:`MAX_MESSAGE_BYTES`), a fresh kernel replays every earlier step except
  the failed ones and goes on after the culprit; at most ``Limits.max_restarts`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import zmq
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from coursekit.grade.plan import Step
from coursekit.grade.sandbox import Isolation, Sandbox
from coursekit.grade.values import KERNEL_PROBE_CODE, MIME

MAX_MESSAGE_BYTES = 64 << 20  # one kernel message (a print, a probe) larger than this is refused
MAX_PROBE_BYTES = 256 << 20  # all probe payloads of one notebook together
RESPONSE_TIMEOUT = 5  # seconds an interrupted kernel has to answer again


@dataclass(frozen=True)
class Limits:
    """Time and memory limits of one notebook run."""

    cell_timeout: float = 120.0
    notebook_timeout: float = 900.0
    memory_mb: int = 8192
    startup_timeout: float = 120.0
    max_restarts: int = 3
    threads: int = 1


@dataclass
class StepResult:
    """What happened to one step.

    ``status``: ``ok``, ``error`` (``ename``/``evalue`` say what), ``timeout`` (over the cell
    limit; ``evalue`` is ``"notebook"`` when the notebook's deadline stopped it), ``crashed`` (the kernel died), ``huge_output`` (a message over the size limit),
    ``not_run`` (the notebook deadline or the restart budget ran out first) or ``skipped``.
    """

    status: str = "not_run"
    ename: str = ""
    evalue: str = ""
    probes: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stuck: bool = False  # interrupted but never went idle: the kernel must be replaced


@dataclass
class RunResult:
    """Outcome of a whole run: one :class:`StepResult` per step, plus what went wrong overall."""

    steps: list[StepResult]
    restarts: int = 0
    seconds: float = 0.0
    failure: str = ""  # the kernel could not start at all (an environment problem)
    deadline_hit: bool = False
    restarts_exhausted: bool = False


class _Client(NotebookClient):
    """nbclient's executor, changed to keep probes, drop all other output and flag timeouts."""

    def __init__(self, km, **kw) -> None:
        super().__init__(nbformat.v4.new_notebook(), km=km, allow_errors=True,
                         interrupt_on_timeout=True, raise_on_iopub_timeout=True,
                         iopub_timeout=5, shutdown_kernel="immediate",
                         error_on_timeout={"ename": "Timeout", "evalue": ""}, **kw)
        self.reset()

    def reset(self) -> None:
        self.timed_out = False
        self.probes: list[dict] = []
        self.reply: dict | None = None

    async def _async_handle_timeout(self, timeout, cell=None):
        self.timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        self.reply = exec_reply

    def output(self, outs, msg, display_id, cell_index):
        data = msg.get("content", {}).get("data")
        if isinstance(data, dict) and MIME in data and isinstance(data[MIME], dict):
            self.probes.append(data[MIME])

    def handle_comm_msg(self, outs, msg, cell_index):
        return None

    def _update_display_id(self, display_id, msg):
        return None

    async def async_start_new_kernel_client(self):
        self.kc = self.km.client()
        # Refuse single messages over the limit: the socket is cut, and the runner restarts.
        self.kc.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=self.startup_timeout)
        self.kc.allow_stdin = False
        return self.kc


class Kernel:
    """One sandboxed kernel and its client, for :func:`run_steps`."""

    def __init__(self, isolation: Isolation, workroot: Path, limits: Limits,
                 private: tuple[Path, ...]) -> None:
        self.limits = limits
        self.sandbox = Sandbox(isolation, workroot, memory_mb=limits.memory_mb,
                               threads=limits.threads, private=private)
        self.client = _Client(self.sandbox.kernel_manager(), startup_timeout=1)

    async def start(self, timeout: float) -> None:
        """Start the kernel and install ``probe``; raises on failure."""
        client = self.client
        client.startup_timeout = max(1, int(timeout))
        log = self.sandbox.base / "kernel.log"
        with open(log, "wb") as stderr:
            await client.km.start_kernel(env=self.sandbox.env(), cwd=str(self.sandbox.scratch),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=stderr)
        try:
            await client.async_start_new_kernel_client()
        except Exception as exc:
            raise RuntimeError(f"{exc}; kernel's last words: {_tail(log)}") from None
        result = await self.run(KERNEL_PROBE_CODE, timeout)
        if result.status != "ok":
            raise RuntimeError(f"the probe helper failed in the kernel: {result.ename} "
                               f"{result.evalue}".strip())

    async def run(self, code: str, timeout: float) -> StepResult:
        """Run ``code`` as one cell; never raises for anything the code does."""
        client = self.client
        client.reset()
        client.timeout = max(1, round(timeout))
        cell = nbformat.v4.new_code_cell(code)
        client.nb.cells = [cell]
        started = time.monotonic()
        result = StepResult(status="ok")
        try:
            await client.async_execute_cell(cell, 0, store_history=False)
        except DeadKernelError:
            result.status = "crashed"
        except CellTimeoutError:  # the output channel stayed silent after the reply
            if client.timed_out:  # ... of the interrupt: the code ignores KeyboardInterrupt
                result.status, result.stuck = "timeout", True
            else:  # ... because a message over the size limit cut the channel
                result.status = "huge_output"
        except Exception as exc:
            result.status, result.evalue = "crashed", f"{type(exc).__name__}: {exc}"[:200]
        else:
            reply = (client.reply or {}).get("content", {})
            if client.timed_out:
                result.status = "timeout"
            elif reply.get("status") == "error":
                result.status = "error"
                result.ename = str(reply.get("ename", ""))[:100]
                result.evalue = str(reply.get("evalue", ""))[:1000]
        result.probes = client.probes
        result.seconds = time.monotonic() - started
        return result

    async def responsive(self) -> bool:
        """After a timeout: does the kernel answer a trivial cell again?"""
        if not await self.client.km.is_alive():
            return False
        return (await self.run("None", RESPONSE_TIMEOUT)).status == "ok"

    async def stop(self) -> None:
        """Kill the kernel and every process it started; delete its folders."""
        client, km = self.client, self.client.km
        try:
            if client.kc is not None:
                client.kc.stop_channels()
            if km.has_kernel:
                await km.shutdown_kernel(now=True)
        except Exception:
            provisioner = getattr(km, "provisioner", None)
            if provisioner is not None and getattr(provisioner, "process", None) is not None:
                provisioner.process.kill()
        finally:
            with contextlib.suppress(Exception):  # best effort: the kernel may be gone already
                await km.cleanup_resources()
            self.sandbox.cleanup()


_FATAL = ("crashed", "huge_output")


def _tail(path: Path, size: int = 1500) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - size))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(none)"
    return " | ".join(line for line in text.splitlines() if line.strip()) or "(none)"


async def run_steps(steps: list[Step], isolation: Isolation, workroot: Path, limits: Limits,
                    private: tuple[Path, ...] = ()) -> RunResult:
    """Run ``steps`` in order in a sandboxed kernel; see the module docstring for recovery."""
    run = RunResult([StepResult() for _ in steps])
    started = time.monotonic()
    deadline = started + limits.notebook_timeout
    failed: set[int] = set()  # steps never to replay (they timed out, crashed...)
    while True:
        kernel = Kernel(isolation, workroot, limits, private)
        restart = False
        try:
            remaining = deadline - time.monotonic()
            try:
                await kernel.start(min(limits.startup_timeout, max(remaining, 1)))
            except Exception as exc:
                if time.monotonic() >= deadline:
                    run.deadline_hit = True
                else:
                    run.failure = f"the kernel did not start: {type(exc).__name__}: {exc}"[:300]
                break
            for index, step in enumerate(steps):
                if index in failed:
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    run.deadline_hit = True
                    break
                result = await kernel.run(step.code, min(limits.cell_timeout, remaining))
                if result.status == "timeout" and remaining <= limits.cell_timeout:
                    run.deadline_hit = True
                    result.evalue = "notebook"  # stopped by the notebook's limit, not the cell's
                run.steps[index] = result
                if result.status in _FATAL:
                    failed.add(index)
                    restart = True
                    break
                if result.status == "timeout":
                    failed.add(index)
                    if run.deadline_hit:
                        break
                    if result.stuck or not await kernel.responsive():
                        restart = True
                        break
        finally:
            await kernel.stop()
        if not restart:
            break
        if run.restarts >= limits.max_restarts:
            run.restarts_exhausted = True
            break
        run.restarts += 1
    if run.deadline_hit:
        for result in run.steps:
            if result.status == "not_run":
                result.status, result.evalue = "timeout", "notebook"
    run.seconds = time.monotonic() - started
    return run


def run_steps_sync(steps: list[Step], isolation: Isolation, workroot: Path, limits: Limits,
                   private: tuple[Path, ...] = ()) -> RunResult:
    """:func:`run_steps` for callers without an event loop (worker processes, tests)."""
    return asyncio.run(run_steps(steps, isolation, workroot, limits, private))

"""Run each grading kernel in a sandbox: the strongest isolation this machine offers.

Three mechanisms, tried in this order by :func:`detect_isolation`:

``bubblewrap``
    ``bwrap`` with new PID, network, IPC and UTS namespaces. The kernel sees a read-only
    *allow-list* of the file system (system folders, the Python installation, the ``utils``
    package, torch's cache of downloaded weights) plus its own empty scratch folder (a size-limited tmpfs), so
    ``solutions/``, the submissions, the grades and feedback do not exist for it. As root the
    kernel then runs as ``nobody`` (real uid 65534: no capabilities, RLIMIT_NPROC applies).
    Killing the sandbox kills every process the kernel started (PID namespace).
``unshare``
    util-linux ``unshare`` (root only) with PID, network, mount, IPC and UTS namespaces: the
    private folders are covered with empty tmpfs mounts, and the kernel runs as ``nobody`` when
    that user can read the Python installation (otherwise as root without the private folders).
``none``
    no isolation (e.g. a laptop without bubblewrap): limits, timeouts and best-effort process
    clean-up only. The grader says so in its output.

Every mechanism applies the memory limit (RLIMIT_AS, see :mod:`coursekit.grade._launch`), kills the
kernel's whole process tree when grading ends and gives the kernel a clean environment.
Kernels talk to the grader over Unix sockets in a per-kernel folder (``transport="ipc"``), which
works across network namespaces.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

import utils

LAUNCHER = Path(__file__).with_name("_launch.py")
PACKAGE_DIR = Path(utils.__file__).resolve().parent
NOBODY = (65534, 65534)
NPROC_LIMIT = 4096  # processes + threads of user nobody (all kernels together)
SCRATCH_MB = 1024  # tmpfs size of a kernel's scratch folder, /tmp and /dev/shm (bubblewrap)
FSIZE_MB = 1024  # largest single file a kernel may write
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group",
        "nsswitch.conf", "hosts", "os-release", "alternatives", "mime.types", "fonts")
# Downloaded model weights a notebook may load (torchvision's ImageNet weights), read-only.
_READ_ONLY_CACHES = ("~/.cache/torch",)

PROTECTIONS = (
    "no network",
    "private files (solutions, other submissions, grades hidden)",
    "read-only system and course files",
    "separate user",
    "every process killed at the end",
    "memory limit",
)


@dataclass(frozen=True)
class Isolation:
    """The sandbox mechanism in use and which protections it gives."""

    mechanism: str  # "bubblewrap", "unshare" or "none"
    as_nobody: bool
    protections: tuple[bool, ...]

    def off(self) -> list[str]:
        """Names of the protections this mechanism does not give."""
        return [name for name, on in zip(PROTECTIONS, self.protections) if not on]

    def describe(self) -> str:
        """One line for the grader's output, naming what is off."""
        user = ", kernel runs as nobody" if self.as_nobody else ""
        off = self.off()
        tail = f"; OFF: {', '.join(off)}" if off else "; all protections on"
        return f"isolation: {self.mechanism}{user}{tail}"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _works(isolation: Isolation) -> bool:
    """True when a throw-away sandbox of ``isolation`` runs Python and prints the expected line."""
    with tempfile.TemporaryDirectory(prefix="grade-probe-") as folder:
        if isolation.as_nobody:
            os.chmod(folder, 0o755)
        box = Sandbox(isolation, Path(folder), memory_mb=1024)
        cmd = box.wrap([sys.executable, "-I", "-S", "-c", "print('grade-sandbox-ok')"])
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                                  cwd=box.scratch, env=box.env(), stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return False
        finally:
            box.cleanup()
    return done.returncode == 0 and "grade-sandbox-ok" in done.stdout


@functools.cache
def detect_isolation(mechanism: str = "auto") -> Isolation:
    """Pick the strongest working mechanism (``auto``) or check the one asked for.

    Each candidate is tried for real (a tiny sandboxed Python run), once per process. Raises
    ``RuntimeError`` when a specific mechanism is asked for but does not work here.
    """
    root = _is_root()
    linux = sys.platform.startswith("linux")
    candidates = ["bubblewrap", "unshare", "none"] if mechanism == "auto" else [mechanism]
    for name in candidates:
        if name == "bubblewrap" and linux and shutil.which("bwrap"):
            isolation = Isolation("bubblewrap", root, (True, True, True, root, True, True))
            if _works(isolation):
                return isolation
        elif name == "unshare" and linux and root and shutil.which("unshare") \
                and shutil.which("mount"):
            for isolation in (Isolation("unshare", True, (True,) * 6),
                              Isolation("unshare", False, (True, True, False, False, True, True))):
                if _works(isolation):
                    return isolation
        elif name == "none":
            return Isolation("none", False, (False, False, False, False, False, True))
    raise RuntimeError(f"isolation {mechanism!r} does not work on this machine "
                       "(use --isolation auto to pick what works)")


def _unshare_prefix() -> list[str]:
    prefix = ["unshare", "--net", "--pid", "--mount", "--ipc", "--uts", "--fork",
              "--kill-child", "--mount-proc", "--"]
    if shutil.which("setpriv"):  # the namespace dies with the grader even if it is killed
        prefix = ["setpriv", "--pdeathsig", "KILL", "--"] + prefix
    return prefix


def _ancestors(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


# A kernel's sockets live in <workroot>/k<8 chars>/rt/k-<n> (17 more bytes), and a Unix socket
# path is limited to 107 bytes (ZMQError "File name too long"): a deeper TMPDIR moves the
# workroot to /tmp.
_MAX_WORKROOT = 88


def make_workroot(prefix: str) -> Path:
    """A fresh scratch folder for kernels, short enough for their Unix sockets."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if len(str(root)) > _MAX_WORKROOT and Path("/tmp").is_dir():
        root.rmdir()
        root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    return root


class Sandbox:
    """The folders, command line, environment and clean-up of one sandboxed kernel.

    ``private`` lists folders the kernel must not see (``solutions/``, the submissions, the
    output folders): the bubblewrap sandbox hides everything not on its allow-list anyway, the
    unshare sandbox covers exactly these.
    """

    def __init__(self, isolation: Isolation, workroot: Path, *, memory_mb: int, threads: int = 1,
                 private: tuple[Path, ...] = ()) -> None:
        self.isolation = isolation
        self.memory_mb = memory_mb
        self.threads = threads
        self.private = tuple(Path(p).resolve() for p in private)
        self.token = uuid.uuid4().hex
        self._folders(Path(tempfile.mkdtemp(prefix="k", dir=workroot)))

    def _folders(self, base: Path) -> None:
        self.base = base
        self.runtime = base / "rt"
        self.scratch = base / "work"
        self.runtime.mkdir(exist_ok=True)
        self.scratch.mkdir(exist_ok=True)
        if self.isolation.as_nobody:
            for path in (base, self.runtime, self.scratch):
                os.chown(path, *NOBODY)

    # -- command line -------------------------------------------------------------------------
    def _launcher_args(self) -> list[str]:
        args = ["--memory-mb", str(getattr(self, "memory_mb", 1024)),
                "--fsize-mb", str(FSIZE_MB)]
        if self.isolation.as_nobody:
            args += ["--user", f"{NOBODY[0]}:{NOBODY[1]}", "--nproc", str(NPROC_LIMIT)]
        if self.isolation.mechanism == "none":
            args.append("--pdeathsig")
        return args

    def _read_only_paths(self) -> list[Path]:
        """Folders the kernel may read: Python, ``utils``, the launcher and model caches (outermost only)."""
        paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
                 Path(sys.executable).resolve().parent, PACKAGE_DIR, LAUNCHER.parent.resolve(),
                 Path("/usr")}
        for cache in _READ_ONLY_CACHES:
            path = Path(cache).expanduser()
            if path.is_dir():
                paths.add(path.resolve())
        outermost = [p for p in paths if not any(q in p.parents for q in paths)]
        return sorted(p for p in outermost if p != Path("/usr"))

    def _bwrap_prefix(self) -> list[str]:
        cmd = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
               "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not _is_root():
            cmd.append("--unshare-user")
        cmd += ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/") / name
            if path.is_symlink():
                cmd += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                cmd += ["--ro-bind", str(path), str(path)]
        for name in _ETC:
            cmd += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        cmd += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
        # The fresh /tmp comes before the read-only binds: mounted after them it would cover any of
        # them that live under /tmp (a checkout cloned there, as CI may do, hides utils itself).
        size = str(SCRATCH_MB << 20)
        cmd += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm",
                "--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
        made: set[Path] = set()
        for path in self._read_only_paths():
            for parent in _ancestors(path):
                if parent not in made and parent.parts[1] != "usr":
                    made.add(parent)
                    cmd += ["--perms", "0755", "--dir", str(parent)]
            cmd += ["--ro-bind", str(path), str(path)]
        for parent in [*_ancestors(self.base), self.base]:
            cmd += ["--perms", "0755", "--dir", str(parent)]
        cmd += ["--bind", str(self.runtime), str(self.runtime),
                "--perms", "1777", "--size", size, "--tmpfs", str(self.scratch),
                "--chdir", str(self.scratch), "--"]
        return cmd

    def _unshare_args(self) -> list[str]:
        hidden = {*self.private, Path(tempfile.gettempdir()).resolve()}
        args = []
        for path in sorted(hidden):
            args += ["--hide", str(path)]
        for path in (PACKAGE_DIR, *self._read_only_paths()):
            if any(h == path or h in path.parents for h in hidden):
                args += ["--keep", str(path)]
        args += ["--keep-rw", str(self.base)]
        stash = next((p for p in ("/mnt", "/media", "/srv", "/opt") if Path(p).is_dir()
                      and not any(h == Path(p) or h in Path(p).parents for h in hidden)), None)
        if stash is None:
            raise RuntimeError("unshare isolation needs an empty folder such as /mnt")
        return args + ["--stash", stash]

    def wrap(self, kernel_cmd: list[str]) -> list[str]:
        """The full command that starts ``kernel_cmd`` inside this sandbox."""
        launcher = [sys.executable, "-I", "-S", str(LAUNCHER), *self._launcher_args()]
        mechanism = self.isolation.mechanism
        if mechanism == "bubblewrap":
            return self._bwrap_prefix() + launcher + ["--"] + kernel_cmd
        if mechanism == "unshare":
            return _unshare_prefix() + launcher + self._unshare_args() + ["--"] + kernel_cmd
        return launcher + ["--"] + kernel_cmd

    def env(self) -> dict[str, str]:
        """A clean environment for the kernel: nothing of the grader's own (tokens, paths)."""
        home = str(self.scratch)
        threads = str(self.threads)
        env = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin",
                                     "/usr/bin", "/bin"]),
            "HOME": home, "USER": "nobody", "LANG": "C.UTF-8",
            "TMPDIR": "/tmp" if self.isolation.mechanism == "bubblewrap" else home,
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.config/matplotlib",
            "IPYTHONDIR": f"{home}/.ipython", "XDG_CACHE_HOME": f"{home}/.cache",
            "TF_CPP_MIN_LOG_LEVEL": "3", "MALLOC_ARENA_MAX": "2",
            "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads, "TF_NUM_INTRAOP_THREADS": threads,
            "GRADE_KERNEL_TOKEN": self.token,
        }
        torch_home = Path("~/.cache/torch").expanduser()
        if torch_home.is_dir():
            env["TORCH_HOME"] = str(torch_home.resolve())
        return env

    def kernel_manager(self) -> SandboxedKernelManager:
        """A kernel manager whose kernel starts inside this sandbox."""
        transport = "ipc" if os.name == "posix" else "tcp"
        km = SandboxedKernelManager(
            transport=transport, ip=str(self.runtime / "k") if transport == "ipc" else "127.0.0.1",
            connection_file=str(self.runtime / "kernel.json"))
        km.sandbox = self
        km.kernel_spec.interrupt_mode = "message"  # a signal would hit the sandbox's processes
        return km

    # -- clean-up -----------------------------------------------------------------------------
    def kill_leftovers(self) -> int:
        """Kill processes that carry this kernel's token (the ``none`` mechanism's safety net;
        namespaces make it unnecessary elsewhere). Returns how many were killed."""
        killed = 0
        proc = Path("/proc")
        if not proc.is_dir():
            return 0
        marker = f"GRADE_KERNEL_TOKEN={self.token}".encode()
        for _ in range(5):  # a process may fork while we look
            found = 0
            for entry in proc.iterdir():
                if not entry.name.isdigit() or int(entry.name) == os.getpid():
                    continue
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        os.kill(int(entry.name), signal.SIGKILL)
                        found += 1
                except (OSError, ValueError):
                    continue
            killed += found
            if not found:
                break
        return killed

    def cleanup(self) -> None:
        """Kill leftovers and delete the sandbox's folders."""
        self.kill_leftovers()
        shutil.rmtree(self.base, ignore_errors=True)


class SandboxedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` that starts an IPython kernel through :meth:`Sandbox.wrap`.

    The kernel command is built here (not from a kernelspec, which a user could have changed),
    and interrupts go as messages (a signal would hit the sandbox's own processes).
    """

    sandbox: Sandbox

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file,
                  "--HistoryManager.enabled=False", *(extra_arguments or [])]
        return self.sandbox.wrap(kernel)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        if self.sandbox.isolation.as_nobody:
            os.chown(self.connection_file, *NOBODY)
        await super()._async_launch_kernel(kernel_cmd, **kw)

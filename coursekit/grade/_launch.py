"""Start a grading kernel with limits and reduced rights: ``python -I -S _launch.py [options] -- CMD``.

The grader runs this file (not the module: ``import utils`` would import torch) inside the
sandbox, just before the kernel: it applies what the sandbox itself cannot, then ``exec``s CMD.
Standard library only.

Options (all optional)::

    --memory-mb N     RLIMIT_AS (virtual memory) of the kernel and its children, in MiB
    --fsize-mb N      largest file the kernel may write, in MiB
    --nproc N         RLIMIT_NPROC (counts per user: effective only with --user)
    --user UID:GID    switch to this user (the grader runs as root)
    --hide DIR        mount an empty tmpfs over DIR (needs a private mount namespace)
    --keep DIR        after hiding, make DIR (inside a hidden one) visible again, read-only
    --keep-rw DIR     the same, writable
    --stash DIR       a folder outside every hidden one; a private tmpfs is mounted on it to
                      hold the kept folders while hiding (e.g. /mnt)
    --pdeathsig       die with SIGKILL when the process that started us dies
"""

import ctypes
import ctypes.util
import os
import resource
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38


def _prctl(option, value):
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _mount(*args):
    subprocess.run(["mount", *args], check=True, stdout=subprocess.DEVNULL)


def _hide(hidden, kept, stash_root):
    """Mount empty tmpfs over each hidden folder, then bind each kept (path, writable) back."""
    _mount("-t", "tmpfs", "-o", "size=64k,mode=0700", "grade-stash", stash_root)
    stashes = []
    for number, (path, writable) in enumerate(kept):
        stash = os.path.join(stash_root, f"keep{number}")
        os.makedirs(stash, exist_ok=True)
        _mount("--bind", path, stash)
        stashes.append((stash, path, writable))
    for path in hidden:
        if os.path.isdir(path):
            _mount("-t", "tmpfs", "-o", "size=64k,mode=0755", "grade-hidden", path)
    for stash, path, writable in stashes:
        os.makedirs(path, exist_ok=True)
        _mount("--bind", stash, path)
        if not writable:
            _mount("-o", "remount,bind,ro", path)


def main(argv):
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    values = {"--hide": [], "--keep": [], "--keep-rw": []}
    flags = set()
    i = 0
    while i < len(options):
        name = options[i]
        if name == "--pdeathsig":
            flags.add(name)
            i += 1
            continue
        if name in values:
            values[name].append(options[i + 1])
        else:
            values[name] = options[i + 1]
        i += 2
    if values["--hide"]:
        kept = [(p, False) for p in values["--keep"]] + [(p, True) for p in values["--keep-rw"]]
        _hide(values["--hide"], kept, values["--stash"])
    if "--memory-mb" in values:
        limit = int(values["--memory-mb"]) << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if "--fsize-mb" in values:
        limit = int(values["--fsize-mb"]) << 20
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    if "--nproc" in values:
        limit = int(values["--nproc"])
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if "--user" in values:
        uid, gid = (int(part) for part in values["--user"].split(":"))
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    if sys.platform.startswith("linux"):
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        if "--pdeathsig" in flags:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() == 1:  # the parent died before we asked
                os._exit(1)
    # ipykernel exits when its parent is not JPY_PARENT_PID; inside a PID namespace it never is.
    os.environ.pop("JPY_PARENT_PID", None)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])

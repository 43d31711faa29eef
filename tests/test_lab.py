"""``make lab`` starts JupyterLab on the course, also where the learner is root (a container, a
cloud VM: Jupyter refuses root without ``--allow-root``).

The test starts the very command ``make lab`` runs (printed by ``make lab-command``) on a free
localhost port with a token, fetches the tree page and the contents API over HTTP, checks that the
lessons and exercises are served, and shuts the server down through its API.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _lab_command() -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    proc = subprocess.run(["make", "--no-print-directory", "-s", "lab-command",
                           f"VENV={sys.prefix}"], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return shlex.split(proc.stdout.strip())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode("utf-8", errors="replace")


def test_make_lab_command_adds_allow_root_only_for_root():
    command = _lab_command()
    assert Path(command[0]) == Path(sys.prefix) / "bin" / "jupyter" and command[1] == "lab"
    assert f"--notebook-dir={ROOT}" in command
    assert ("--allow-root" in command) == (os.geteuid() == 0)


def test_make_lab_serves_the_lessons(tmp_path):
    command = _lab_command()
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    log = open(tmp_path / "lab.log", "w+")  # noqa: SIM115  (read after the server stops)
    server = subprocess.Popen(
        [*command, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                log.seek(0)
                pytest.fail(f"`make lab` exited with {server.returncode}:\n{log.read()[-4000:]}")
            try:
                status, page = _get(f"{base}/lab/tree", token)
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not answer within 90 s")
                time.sleep(0.5)
        assert status == 200 and "JupyterLab" in page
        # without the token the server refuses (it listens with authentication)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/contents/book", timeout=10)
        assert refused.value.code in (401, 403)
        listing = json.loads(_get(f"{base}/api/contents/", token)[1])
        assert {"book", "exercises"} <= {item["name"] for item in listing["content"]}
        lessons = json.loads(_get(f"{base}/api/contents/book", token)[1])
        served = {item["name"] for item in lessons["content"] if item["type"] == "notebook"}
        assert served == {p.name for p in (ROOT / "book").glob("*.ipynb")}
        notebook = json.loads(_get(f"{base}/api/contents/book/{sorted(served)[0]}", token)[1])
        assert notebook["type"] == "notebook" and notebook["content"]["cells"]
        request = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(request, timeout=10).close()
        assert server.wait(timeout=30) == 0, "the server did not stop cleanly"
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()

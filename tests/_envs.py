"""Throwaway Python environments for the packaging and Colab tests, built in seconds.

Nothing here installs the big frameworks again: a throwaway virtual environment (no pip of its
own) sees packages that are already installed in the project's environment through a ``.pth``
file. Two kinds:

* :func:`project_view_venv`: sees *every* package of the project's environment, but not the
  editable link to this checkout. Python processes ``.pth`` files only in real site folders, not
  in folders a ``.pth`` adds, so the editable finder (``__editable__.cnn_vis_utils-*.pth``) in the
  project's site-packages never runs there and ``import utils`` fails until a wheel is installed.
* :func:`colab_like_venv`: sees only some distributions and what they depend on (the packages
  Colab preinstalls), through a folder of symbolic links to their files. The folder lies outside
  the throwaway environment, so pip treats those packages as installed but never uninstalls or
  changes them: the project's environment stays untouched.

The wheel is built from ``git archive HEAD``: the packaging tests check *committed* files (a new
module that was never ``git add``-ed is missing from the wheel, as it would be for everyone
else). Set ``CNN_COURSE_WHEEL_FROM=worktree`` to build from the working tree instead (tracked and
untracked, not ignored, files) while developing.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_SITE = [Path(p) for p in dict.fromkeys((sysconfig.get_paths()["purelib"],
                                                sysconfig.get_paths()["platlib"]))]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def export_source(dest: Path) -> str:
    """Write the package sources to ``dest`` (see the module docstring); return what was used."""
    dest.mkdir(parents=True, exist_ok=True)
    if not (ROOT / ".git").exists():
        raise RuntimeError(f"{ROOT} is not a git checkout: the wheel is built from `git archive`")
    if os.environ.get("CNN_COURSE_WHEEL_FROM") == "worktree":
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
        for name in filter(None, listed.stdout.decode().split("\0")):
            source = ROOT / name
            if source.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / name)
        return "the working tree"
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return "git archive HEAD"


def build_wheel(source: Path, out: Path) -> Path:
    """Build the wheel of ``source`` into ``out`` with the project's setuptools (no download)."""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                           "--no-build-isolation", "--wheel-dir", str(out), str(source)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"building the wheel failed:\n{proc.stdout}{proc.stderr}")
    wheels = sorted(out.glob("cnn_vis_utils-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {out}, found {wheels}")
    return wheels[0]


def build_sdist(source: Path, out: Path) -> Path:
    """Build the sdist of ``source`` into ``out`` (setuptools' PEP 517 hook, no download)."""
    out.mkdir(parents=True, exist_ok=True)
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.build_sdist(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"building the sdist failed:\n{proc.stdout}{proc.stderr}")
    return out / proc.stdout.strip().splitlines()[-1]


def _bare_venv(path: Path, visible: list[Path]) -> Path:
    """A virtual environment without pip whose site-packages adds ``visible`` (after its own)."""
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(path)
    python = path / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_visible_packages.pth").write_text("".join(f"{p}\n" for p in visible))
    return python


def project_view_venv(path: Path) -> tuple[Path, Path]:
    """(python, site-packages) of a venv that sees the project's packages but not the editable
    link; install a wheel with :func:`install_into`."""
    python = _bare_venv(path, PROJECT_SITE)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    return python, site


def install_into(site: Path, wheel: Path) -> None:
    """Install ``wheel`` (no dependencies) into the folder ``site`` with the project's pip."""
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-index", "--target", str(site), str(wheel)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"installing {wheel.name} failed:\n{proc.stdout}{proc.stderr}")


def dependency_closure(names: list[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions ``names`` and everything they require (no extras)."""
    from packaging.requirements import Requirement

    found: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = _canonical(todo.pop())
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency this environment does not have
        found[name] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return found


def colab_like_venv(path: Path, distributions: list[str]) -> tuple[Path, list[str]]:
    """A venv at ``path`` that sees only ``distributions`` and their dependencies (symbolic links
    in ``path.parent / "preinstalled"``, outside the venv). Returns (python, their names)."""
    exposed = path.parent / "preinstalled"
    exposed.mkdir(parents=True, exist_ok=True)
    dists = dependency_closure(distributions)
    missing = [n for n in distributions if _canonical(n) not in dists]
    if missing:
        raise RuntimeError(f"not installed in the project's environment: {missing}")
    for dist in dists.values():
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in tops:
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            link = exposed / top
            if (base / top).exists() and not os.path.lexists(link):
                link.symlink_to(base / top)
    return _bare_venv(path, [exposed]), sorted(dists)

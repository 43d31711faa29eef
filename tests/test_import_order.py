"""The import-order guard: TensorFlow before torchvision segfaults on this stack; the package must
make the safe order automatic. Each case runs in a fresh interpreter."""

import subprocess
import sys

import pytest


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


ORDER_CHECK = (
    "names = list(sys.modules)\n"
    "assert 'torchvision' in names, 'torchvision was not imported'\n"
    "assert names.index('torchvision') < names.index('tensorflow'), 'TensorFlow came first'\n"
    "import torchvision.models\n"
    "torchvision.models.resnet18(weights=None)\n"
    "print('ok')"
)


@pytest.mark.parametrize(
    "imports",
    [
        "import utils, sys\nimport tensorflow",  # the learner's own TensorFlow import after utils
        "import utils.plots, sys\nimport keras",  # any utils module installs the guard
        "import sys\nfrom utils import tensorflow",  # the package's own TensorFlow module
    ],
)
@pytest.mark.slow  # a fresh interpreter importing torch and TensorFlow
def test_tensorflow_after_utils_gets_torch_first(imports):
    result = run(f"{imports}\n{ORDER_CHECK}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_utils_alone_does_not_pay_for_torch():
    # The grader's command line and the plots need neither framework: the guard is lazy, and the
    # framework-neutral modules import a framework only inside the functions that need one.
    neutral = "utils.images, utils.port, utils.imagenet, utils.model_registry, utils.gradcam, utils.plots"
    result = run(f"import utils, {neutral}, sys\nprint('torch' in sys.modules, 'tensorflow' in sys.modules)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.slow  # a fresh interpreter importing torch and TensorFlow
def test_tensorflow_module_import_is_quiet():
    result = run("import utils.tensorflow as t, numpy as np; t.to_input(np.zeros((1, 8, 8, 3)))")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "absl" not in result.stderr and "oneDNN" not in result.stderr and "cuInit" not in result.stderr


@pytest.mark.slow  # a fresh interpreter importing torch and TensorFlow
def test_too_late_gives_a_clear_error_instead_of_a_crash():
    # TensorFlow first, then the package: the guard must refuse with advice, not segfault.
    result = run("import tensorflow\nimport utils")
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "before importing tensorflow" in result.stderr

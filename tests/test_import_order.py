"""The import-order guard: TensorFlow before torchvision segfaults on this stack; the package must
make the safe order automatic. Each case runs in a fresh interpreter."""

import subprocess
import sys

import pytest


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("module", ["utils", "utils.tensorflow"])
def test_importing_the_package_orders_torch_first(module):
    result = run(
        f"import {module}, sys\n"
        "names = list(sys.modules)\n"
        "assert 'torchvision' in names, 'torchvision was not imported'\n"
        "if 'tensorflow' in names:\n"
        "    assert names.index('torchvision') < names.index('tensorflow'), 'wrong order'\n"
        "import tensorflow, torchvision.models\n"
        "torchvision.models.resnet18(weights=None)\n"
        "print('ok')"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_tensorflow_module_import_is_quiet():
    result = run("import utils.tensorflow as t, numpy as np; t.to_input(np.zeros((1, 8, 8, 3)))")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "absl" not in result.stderr and "oneDNN" not in result.stderr and "cuInit" not in result.stderr


def test_too_late_gives_a_clear_error_instead_of_a_crash():
    # TensorFlow first, then the package: the guard must refuse with advice, not segfault.
    result = run("import tensorflow\nimport utils")
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "before importing tensorflow" in result.stderr

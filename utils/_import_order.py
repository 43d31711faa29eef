"""What ``import utils`` (or any ``utils`` module) does to the process: these effects only.

1. **Two environment variables**, only where unset: ``TF_CPP_MIN_LOG_LEVEL=3`` (TensorFlow's C++
   log lines would make notebook outputs unstable) and ``OMP_WAIT_POLICY=PASSIVE`` (PyTorch's
   OpenMP threads otherwise busy-wait, which made lessons twice as slow on a 2-core machine
   shared with TensorFlow's threads; torch reads it once, when it loads).
2. **An import hook** (:class:`_TorchBeforeTensorFlow`, first in ``sys.meta_path``): importing
   TensorFlow (or Keras) *before* torchvision segfaults on this stack (torchvision ->
   ``torch._dynamo`` -> ``triton`` crashes after TensorFlow), so the hook imports torch and
   torchvision the moment anything first imports ``tensorflow``, ``keras`` or ``tf_keras``.
   ``import utils`` alone imports neither; if TensorFlow was loaded first, it raises
   ``ImportError`` with an explanation instead of a crash later.
3. **Nothing else until TensorFlow is needed.** :func:`import_tensorflow` (called by
   :mod:`utils.tensorflow`) imports it with file descriptor 2 pointed at ``/dev/null`` during the
   import and device discovery (absl logs there before TensorFlow's settings apply), then sets
   TensorFlow's Python logger to ``ERROR``. Import errors still propagate.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

# Effect 1 of the module docstring: why each is set is explained there.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _import_torch() -> None:
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:  # a TensorFlow-only install has nothing to order
        pass


class _TorchBeforeTensorFlow(importlib.abc.MetaPathFinder):
    """The import hook of effect 2 in the module docstring: torch and torchvision first."""

    _busy = False

    def find_spec(self, name, path=None, target=None):
        if (
            not self._busy
            and name.partition(".")[0] in _TENSORFLOW_PACKAGES
            and "torchvision" not in sys.modules
        ):
            type(self)._busy = True  # torch's own imports must not re-enter the hook
            try:
                _import_torch()
            finally:
                type(self)._busy = False
        return None


_TENSORFLOW_PACKAGES = ("tensorflow", "keras", "tf_keras")


def install_guard() -> None:
    """Make the safe order automatic for the rest of this process (idempotent)."""
    loaded = [name for name in _TENSORFLOW_PACKAGES if name in sys.modules]
    if loaded and "torchvision" not in sys.modules:
        # Too late to fix the order: importing torchvision now would crash the process.
        raise ImportError(
            f"{loaded[0]} was imported before torchvision, which crashes this stack "
            "(torchvision -> torch._dynamo -> triton segfaults after TensorFlow). "
            "Restart the kernel and run `import utils` (or `import torch, torchvision`) "
            "before importing tensorflow or keras."
        )
    if not any(isinstance(finder, _TorchBeforeTensorFlow) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TorchBeforeTensorFlow())


install_guard()


def import_tensorflow():
    """Import TensorFlow after torch/torchvision, its start-up log lines silenced (effect 3 in
    the module docstring), and return the ``tensorflow`` module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    _import_torch()  # the hook would do it too; explicit here, outside the muted section
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import keras  # noqa: F401
            import tensorflow

            tensorflow.get_logger().setLevel("ERROR")
            # Device discovery logs too (cuInit on machines without a GPU): do it while muted.
            tensorflow.config.list_physical_devices()
        finally:
            os.close(devnull)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return tensorflow

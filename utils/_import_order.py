"""What ``import utils`` does to the process, all in one place.

Importing ``utils`` (or any ``utils`` module: each imports this one first) has exactly these
effects, and no others:

1. **Two environment variables**, set only where the user has not set them (``setdefault``):

   * ``TF_CPP_MIN_LOG_LEVEL=3``: TensorFlow's C++ log lines at import would make notebook outputs
     unstable;
   * ``OMP_WAIT_POLICY=PASSIVE``: PyTorch's OpenMP threads otherwise busy-wait between operations,
     which made lessons twice as slow on a laptop or a shared 2-core machine where TensorFlow's
     threads want the cores too (measured). Read once, when torch loads, so it is set before that.

2. **An import hook** (:class:`_TorchBeforeTensorFlow`, first in ``sys.meta_path``): with torch
   2.14 / torchvision 0.29 and TensorFlow 2.21 in one process, importing TensorFlow (or Keras)
   *before* torchvision kills the process with a segmentation fault (torchvision loads
   ``torch._dynamo``, which loads ``triton``, which crashes once TensorFlow's libraries are in
   memory). The hook imports torch and torchvision the moment anything, in the package or in a
   learner's own cell, first imports ``tensorflow``, ``keras`` or ``tf_keras``. It finds nothing
   itself, so the import then proceeds normally, and it is lazy: ``import utils`` alone imports
   neither framework. If TensorFlow is already loaded without torchvision, ``import utils`` raises
   ``ImportError`` with an explanation instead of a crash later.

3. **Nothing else until TensorFlow is needed.** Then :func:`import_tensorflow` (called by
   :mod:`utils.tensorflow`, not by ``import utils``) imports it with file descriptor 2 (stderr)
   pointed at ``/dev/null`` for the duration of the import and device discovery, because
   TensorFlow writes absl log lines there before its own log settings apply; it then sets
   TensorFlow's Python logger to ``ERROR``. Errors raised by the import still propagate.
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

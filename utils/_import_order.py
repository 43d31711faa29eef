"""Make the safe import order of PyTorch and TensorFlow automatic.

With torch 2.14 / torchvision 0.29 and TensorFlow 2.21 in one process, importing TensorFlow (or
Keras) *before* torchvision kills the process with a segmentation fault: torchvision loads
``torch._dynamo``, which loads ``triton``, which crashes once TensorFlow's libraries are in memory.
Importing ``torch`` and ``torchvision`` first is safe. ``import utils`` (and so any ``utils``
module) installs an import hook that imports torch and torchvision the moment anything first imports
TensorFlow or Keras, in the package or in the learner's own cells, so the crash cannot happen once
``utils`` is imported. If TensorFlow is already loaded without torchvision, importing ``utils``
fails with an explanation instead of a crash later.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

# TensorFlow prints C++ log lines to stderr at import; they would make notebook outputs unstable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# PyTorch's OpenMP threads busy-wait between operations by default; on a laptop or a shared
# 2-core machine where TensorFlow's threads or other programs want the cores too, that made
# lessons twice as slow (measured). Read once, when torch loads, so it is set before that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _import_torch() -> None:
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:  # a TensorFlow-only install has nothing to order
        pass


class _TorchBeforeTensorFlow(importlib.abc.MetaPathFinder):
    """An import hook: just before ``tensorflow`` or ``keras`` is imported for the first time,
    import torch and torchvision. It finds nothing itself (returns ``None``), so the normal
    import then proceeds. Lazy, so ``import utils`` costs nothing for code that never touches
    TensorFlow (the grader's command line, the plots)."""

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
    """Import TensorFlow after torch/torchvision, with its start-up log lines silenced.

    TensorFlow 2.21 writes absl log lines (oneDNN notice, "Could not find cuda drivers") straight to
    file descriptor 2 before its own log settings apply; in a notebook they would show up as red
    stderr output in every lesson. They are harmless, so the import runs with fd 2 pointed at
    /dev/null. Returns the ``tensorflow`` module.
    """
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

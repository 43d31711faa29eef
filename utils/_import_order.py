"""Make the safe import order of PyTorch and TensorFlow automatic.

With torch 2.14 / torchvision 0.29 and TensorFlow 2.21 in one process, importing TensorFlow (or
Keras) *before* torchvision kills the process with a segmentation fault: torchvision loads
``torch._dynamo``, which loads ``triton``, which crashes once TensorFlow's libraries are in memory.
Importing ``torch`` and ``torchvision`` first is safe. Every module of ``utils`` that touches
TensorFlow imports this module first, and ``import utils`` runs it too, so the crash cannot happen
through the package.
"""

from __future__ import annotations

import os
import sys

# TensorFlow prints C++ log lines to stderr at import; they would make notebook outputs unstable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_torch_first() -> None:
    if "tensorflow" in sys.modules and "torchvision" not in sys.modules:
        # Too late to fix the order: importing torchvision now would crash the process.
        raise ImportError(
            "TensorFlow was imported before torchvision, which crashes this stack "
            "(torchvision -> torch._dynamo -> triton segfaults after TensorFlow). "
            "Restart the kernel and run `import utils` (or `import torch, torchvision`) "
            "before importing tensorflow or keras."
        )
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:  # a TensorFlow-only install has nothing to order
        pass


_import_torch_first()


def import_tensorflow():
    """Import TensorFlow after torch/torchvision, with its start-up log lines silenced.

    TensorFlow 2.21 writes absl log lines (oneDNN notice, "Could not find cuda drivers") straight to
    file descriptor 2 before its own log settings apply; in a notebook they would show up as red
    stderr output in every lesson. They are harmless, so the import runs with fd 2 pointed at
    /dev/null. Returns the ``tensorflow`` module.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import tensorflow
            import keras  # noqa: F401

            tensorflow.get_logger().setLevel("ERROR")
            # Device discovery logs too (cuInit on machines without a GPU): do it while muted.
            tensorflow.config.list_physical_devices()
        finally:
            os.close(devnull)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return tensorflow

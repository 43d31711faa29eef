"""The course's models, by name: the list both frameworks load from, and the errors they share.

Framework-neutral (imports neither PyTorch nor TensorFlow), so :mod:`utils.pytorch.models` and
:mod:`utils.tensorflow.models` check names and report missing weights the same way without
depending on each other.
"""

from __future__ import annotations

import difflib

MODEL_NAMES: tuple[str, ...] = ("efficientnet_lite0", "resnet18", "mnist_cnn")
"""Names ``load_model`` accepts in both frameworks: EfficientNet-Lite0 (ImageNet, the course's
default), ResNet-18 (ImageNet, torchvision's weights) and the small MNIST digit CNN."""


class WeightsNotAvailableError(RuntimeError):
    """Pretrained weights are not on this machine and cannot be fetched. The message says how to
    get them; random weights (``pretrained=False``) always work."""


def check_model_name(name: str) -> str:
    """Return ``name`` if it is one of :data:`MODEL_NAMES`, else raise ``ValueError`` listing them
    and the closest match."""
    if name not in MODEL_NAMES:
        close = difflib.get_close_matches(str(name), MODEL_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}.{hint}")
    return name

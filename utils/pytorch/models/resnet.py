"""ResNet-18 from torchvision, unchanged; its module names are the Keras twin's layer names. Its
``BasicBlock`` calls one ``relu`` module *twice*, so a hook on ``layer1.0.relu`` fires twice per
pass; the twin has ``layer1.0.relu`` and ``layer1.0.relu_1`` (:func:`utils.port.keras_names_for`).
"""

from __future__ import annotations

import torchvision
from torchvision.models import ResNet

from utils.pytorch.models.weights import RESNET18_WEIGHTS, check_resnet18_weights


def resnet18(pretrained: bool = True, *, download: bool = True) -> ResNet:
    """torchvision's ResNet-18 in eval mode.

    ``pretrained`` loads the ImageNet weights through torchvision's ``weights=`` (its cache, or
    a download unless ``download=False``), else :class:`WeightsNotAvailableError` says how to get
    them; ``False`` gives random weights.
    """
    if not pretrained:
        return torchvision.models.resnet18(weights=None).eval()
    check_resnet18_weights(download=download)
    return torchvision.models.resnet18(weights=RESNET18_WEIGHTS).eval()

"""ResNet-18 from torchvision, unchanged.

Its module names (``conv1``, ``bn1``, ``relu``, ``maxpool``, ``layer1`` ... ``layer4``,
``layerS.B.conv1/bn1/relu/conv2/bn2``, ``layerS.0.downsample.0/1``, ``avgpool``, ``fc``) are the
layer names of the Keras twin (:mod:`utils.tensorflow.models.resnet`). One difference to know:
torchvision's ``BasicBlock`` calls its single ``relu`` module *twice* (after ``bn1``, and after the
skip addition), so a hook on ``layer1.0.relu`` fires twice per forward pass. The Keras twin has one
layer per call: ``layer1.0.relu`` (first call) and ``layer1.0.relu_1`` (second call); see
:func:`utils.port.keras_names_for`.
"""

from __future__ import annotations

import torchvision
from torchvision.models import ResNet

from utils.pytorch.models.weights import RESNET18_WEIGHTS, check_resnet18_weights


def resnet18(pretrained: bool = True, *, download: bool = True) -> ResNet:
    """torchvision's ResNet-18 in eval mode.

    Args:
        pretrained: load the ImageNet weights through torchvision's own ``weights=`` mechanism
            (from its cache, ``torch.hub.get_dir()/checkpoints``, or downloaded once). If they are
            not cached and cannot be downloaded, :class:`WeightsNotAvailableError` says how to get
            them. ``False`` gives random weights, always available.
        download: allow torchvision to download missing weights (``False``: cache only).
    """
    if not pretrained:
        return torchvision.models.resnet18(weights=None).eval()
    check_resnet18_weights(download=download)
    return torchvision.models.resnet18(weights=RESNET18_WEIGHTS).eval()

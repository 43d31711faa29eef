"""Read the kernels of a PyTorch conv layer in the course's canonical layout."""

from __future__ import annotations

import numpy as np
from torch import nn

from utils.layers import UnknownLayerError
from utils.pytorch._blocks import device_of


def conv_filters(model: nn.Module, layer: str) -> np.ndarray:
    """The kernels of conv layer ``layer`` as a NumPy copy ``[out, in, kh, kw]`` (PyTorch's own
    layout, the course's canonical one; ``in`` is 1 for a depthwise conv)."""
    modules = dict(model.named_modules())
    convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
    if layer not in modules or not layer:
        raise UnknownLayerError(layer, convs, type(model).__name__)
    module = modules[layer]
    if not isinstance(module, nn.Conv2d):
        raise TypeError(
            f"layer {layer!r} is a {type(module).__name__}, not a Conv2d; conv layers are: "
            f"{', '.join(convs[:20])}{' ...' if len(convs) > 20 else ''}"
        )
    device_of(module)  # a clear error for a model on the meta device (no values to read)
    # .cpu() copies from a GPU; on the CPU .numpy() shares memory, hence the copy
    return module.weight.detach().cpu().numpy().copy()

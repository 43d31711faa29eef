"""Read the kernels of a Keras conv layer in the course's canonical layout."""

from __future__ import annotations

import numpy as np

from utils.layers import UnknownLayerError
from utils.layout import keras_kernel_to_torch
from utils.tensorflow.capture import NESTED_SEPARATOR, keras, layer_names


def _get_layer(model, name: str):
    head, sep, rest = name.partition(NESTED_SEPARATOR)
    layer = model.get_layer(head)
    return _get_layer(layer, rest) if sep else layer


def conv_filters(model, layer: str) -> np.ndarray:
    """The kernels of conv layer ``layer`` as a NumPy array ``[out, in, kh, kw]``.

    Keras stores a ``Conv2D`` kernel as ``[kh, kw, in, out]`` and a ``DepthwiseConv2D`` kernel as
    ``[kh, kw, channels, multiplier]``; both are converted to PyTorch's layout, the course's
    canonical one, so the two frameworks' filters can be compared and plotted alike.
    """
    convs = layer_names(model, kind="conv")
    try:
        module = _get_layer(model, layer)
    except ValueError:
        raise UnknownLayerError(layer, convs, f"Keras model {model.name!r}") from None
    if isinstance(module, keras.layers.DepthwiseConv2D):
        return keras_kernel_to_torch(np.asarray(module.kernel), depthwise=True)
    if isinstance(module, keras.layers.Conv2D):
        return keras_kernel_to_torch(np.asarray(module.kernel))
    raise TypeError(
        f"layer {layer!r} is a {type(module).__name__}, not a Conv2D or DepthwiseConv2D; conv layers "
        f"are: {', '.join(convs[:20])}{' ...' if len(convs) > 20 else ''}"
    )

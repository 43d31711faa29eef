"""Read the kernels of a Keras conv layer in the course's canonical layout."""

from __future__ import annotations

import numpy as np

from utils.layers import UnknownLayerError
from utils.layout import keras_kernel_to_torch
from utils.tensorflow._blocks import get_layer, layer_names
from utils.tensorflow.capture import keras


def conv_filters(model, layer: str) -> np.ndarray:
    """The kernels of conv layer ``layer`` (``"backbone/Conv1"`` inside a nested model) as NumPy
    ``[out, in, kh, kw]``, converted from Keras' ``[kh, kw, in, out]`` (depthwise: ``[kh, kw,
    channels, multiplier]``) to the course's canonical layout."""
    try:
        module = get_layer(model, layer)
    except UnknownLayerError:  # suggest the closest *conv* layer: the only kind that has filters
        raise UnknownLayerError(layer, layer_names(model, kind="conv"),
                                f"Keras model {model.name!r}") from None
    if isinstance(module, keras.layers.DepthwiseConv2D):
        return keras_kernel_to_torch(np.asarray(module.kernel), depthwise=True)
    if isinstance(module, keras.layers.Conv2D):
        return keras_kernel_to_torch(np.asarray(module.kernel))
    convs = layer_names(model, kind="conv")
    raise TypeError(
        f"layer {layer!r} is a {type(module).__name__}, not a Conv2D or DepthwiseConv2D; conv layers "
        f"are: {', '.join(convs[:20])}{' ...' if len(convs) > 20 else ''}"
    )

"""The weight-randomisation sanity check in Keras: :mod:`utils.pytorch.sanity`'s contract. The
weights are drawn in PyTorch's layout and converted by :func:`utils.port.convert_layer`."""

from utils import sanity
from utils._import_order import import_tensorflow
from utils.port import convert_layer
from utils.tensorflow.gradcam import gradcam

import_tensorflow()
import keras

__all__ = ["cascade_stages", "cascading_randomization", "randomize_weights"]
_KERNELS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def _torch_shapes(layer) -> dict[str, tuple]:
    """The layer's tensors as its PyTorch twin names and shapes them."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return dict.fromkeys(["weight", "bias", "running_mean", "running_var"], layer.gamma.shape)
    if not isinstance(layer, _KERNELS):
        raise TypeError(f"layer {layer.name!r}: no rule to re-initialise a {type(layer).__name__}")
    k = tuple(layer.kernel.shape)
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # [kh, kw, C, m] -> [C * m, 1, kh, kw]
        weight = (k[2] * k[3], 1, *k[:2])
    else:  # Conv2D [kh, kw, in, out] -> [out, in, kh, kw]; Dense [in, out] -> [out, in]
        weight = (k[-1], k[-2], *k[:-2])
    return {"weight": weight, **({"bias": weight[:1]} if layer.use_bias else {})}


def _shapes(model) -> dict[str, dict[str, tuple]]:
    return {layer.name: _torch_shapes(layer) for layer in model.layers if layer.weights}


def cascade_stages(model) -> list[tuple[str, list[str]]]:
    """The cascade: see :func:`utils.pytorch.sanity.cascade_stages`."""
    return sanity.cascade_stages(_shapes(model))


def _randomize(model, layers, seed: int):
    shapes = _shapes(model)
    for name in sanity.check_layers(shapes, layers, f"Keras model {model.name!r}"):
        new = sanity.random_tensors(name, shapes[name], seed)  # PyTorch's names and layout
        model.get_layer(name).set_weights(convert_layer(name, model.get_layer(name), new, model))
    return model


def _copy(model):
    copied = keras.models.clone_model(model)  # new layers, same names and architecture
    copied.set_weights(model.get_weights())
    return copied


def randomize_weights(model, layers, seed: int = 0):
    """A copy of the flat ``model`` with ``layers`` re-initialised: see
    :func:`utils.pytorch.sanity.randomize_weights`."""
    return _randomize(_copy(model), layers, seed)


def cascading_randomization(model, layer: str, images, class_index=None, seed: int = 0):
    """Grad-CAM per stage: see :func:`utils.pytorch.sanity.cascading_randomization`. One copy for
    all stages, so Grad-CAM is compiled once."""
    first = gradcam(model, layer, images, class_index)
    heatmaps, randomized, done = {"pretrained": first.heatmaps}, _copy(model), 0
    for group, layers in cascade_stages(model):
        _randomize(randomized, layers[done:], seed)
        heatmaps[group] = gradcam(randomized, layer, images, first.class_indices).heatmaps
        done = len(layers)
    return heatmaps

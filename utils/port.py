"""Copy weights from a PyTorch model into its Keras twin (a Keras model whose layers carry the
PyTorch module names), layer by layer, converting each tensor: the classic porting traps.

====================  ==============================  =====================================
layer                 PyTorch                         Keras
====================  ==============================  =====================================
Conv2D                weight ``[out, in, kh, kw]``    kernel ``[kh, kw, in, out]``
DepthwiseConv2D       weight ``[C, 1, kh, kw]``       kernel ``[kh, kw, C, 1]``
BatchNormalization    weight, bias,                   gamma, beta,
                      running_mean, running_var       moving_mean, moving_variance
Dense                 weight ``[out, in]``            kernel ``[in, out]`` (transposed)
Dense after Flatten   flattens ``[C, H, W]``          flattens ``[H, W, C]``: rows reordered
====================  ==============================  =====================================

Hyper-parameters (BatchNorm epsilon, strides, padding) are not weights: a twin that gets them
wrong ports fine and computes something else, which :mod:`utils.agreement` catches. A module called
twice (torchvision's ResNet ``relu``) has a Keras layer per call (:func:`keras_names_for`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from utils.layers import UnknownLayerError, call_key
from utils.layout import as_numpy, torch_dense_to_keras, torch_kernel_to_keras


def _keras():
    """Keras, imported on first use (this framework-neutral module imports none when imported)."""
    from utils._import_order import import_tensorflow

    import_tensorflow()  # quietly, and after torch (the import order that does not crash)
    import keras

    return keras


class PortError(ValueError):
    """The two models are not twins (a layer missing on one side, a weight of the wrong shape);
    the message names the layer."""


def _torch_params(torch_model_or_state) -> dict[str, dict[str, np.ndarray]]:
    """``{"layer1.0.bn1": {"weight": ..., "bias": ..., "running_mean": ...}, ...}``."""
    if isinstance(torch_model_or_state, Mapping):
        state = torch_model_or_state
    elif hasattr(torch_model_or_state, "state_dict"):
        state = torch_model_or_state.state_dict()
    else:
        raise TypeError(
            f"expected a torch.nn.Module or a state dict, got {type(torch_model_or_state).__name__}"
        )
    params: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        module, _, tensor = key.rpartition(".")
        if tensor == "num_batches_tracked":  # a training counter, not a weight
            continue
        params.setdefault(module, {})[tensor] = as_numpy(value).astype(np.float32, copy=False)
    return params


def _weighted_layers(keras_model) -> dict:
    return {layer.name: layer for layer in keras_model.layers if layer.weights}


def _flatten_feeding(keras_model, dense) -> tuple[int, ...] | None:
    """Shape ``(H, W, C)`` entering the ``Flatten`` layer whose output feeds ``dense``, or None."""
    keras = _keras()
    for layer in keras_model.layers:
        if isinstance(layer, keras.layers.Flatten) and layer.output is dense.input:
            shape = tuple(layer.input.shape[1:])
            return shape if len(shape) == 3 else None
    return None


def _require(name: str, torch_w: dict, wanted: list[str], layer) -> list[np.ndarray]:
    got = sorted(torch_w)
    if sorted(wanted) != got:
        raise PortError(
            f"layer {name!r}: the PyTorch module has tensors {got}, but the Keras "
            f"{type(layer).__name__} needs {sorted(wanted)} (bias/affine settings differ?)"
        )
    return [torch_w[k] for k in wanted]


def convert_layer(name: str, layer, torch_w: dict[str, np.ndarray], keras_model=None):
    """The Keras weight list for ``layer`` from the PyTorch tensors ``torch_w`` of module ``name``
    (``{"weight": ..., "bias": ...}``), in the order ``layer.set_weights`` takes."""
    keras = _keras()
    bias = ["bias"] if getattr(layer, "use_bias", False) else []
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        w, *b = _require(name, torch_w, ["weight", *bias], layer)
        return [torch_kernel_to_keras(w, depthwise=True), *b]
    if isinstance(layer, keras.layers.Conv2D):
        w, *b = _require(name, torch_w, ["weight", *bias], layer)
        return [torch_kernel_to_keras(w), *b]
    if isinstance(layer, keras.layers.BatchNormalization):
        if not (layer.scale and layer.center):
            raise PortError(
                f"layer {name!r}: BatchNormalization without scale/center is unsupported"
            )
        return _require(name, torch_w, ["weight", "bias", "running_mean", "running_var"], layer)
    if isinstance(layer, keras.layers.Dense):
        w, *b = _require(name, torch_w, ["weight", *bias], layer)
        hwc = _flatten_feeding(keras_model, layer) if keras_model is not None else None
        if hwc is not None and w.ndim == 2 and w.shape[1] == int(np.prod(hwc)):
            # PyTorch's flatten read [C, H, W]; Keras' reads [H, W, C]: reorder the inputs.
            h, wd, c = hwc
            w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        return [torch_dense_to_keras(w), *b]
    raise PortError(f"layer {name!r}: no rule to port weights into a Keras {type(layer).__name__} "
                    "(supported: Conv2D, DepthwiseConv2D, BatchNormalization, Dense)")


def port_to_keras(torch_model, keras_model):
    """Copy every weight of ``torch_model`` (an ``nn.Module`` or its ``state_dict()``) into its
    built Keras twin ``keras_model``, in place, and return ``keras_model``.

    Raises:
        PortError: a weighted layer has no namesake on the other side, the tensors differ (a bias
            on one side only) or a converted shape does not fit. Nothing is written then.
    """
    params = _torch_params(torch_model)
    keras_layers = _weighted_layers(keras_model)
    missing = [name for name in params if name not in keras_layers]
    if missing:
        raise PortError(f"PyTorch layer {missing[0]!r} has no Keras layer of that name "
                        f"(all missing in Keras: {missing})")
    extra = [name for name in keras_layers if name not in params]
    if extra:
        raise PortError(
            f"Keras layer {extra[0]!r} has weights but PyTorch has no module of that name "
            f"(all extra in Keras: {extra})"
        )
    new_weights = {}
    for name, layer in keras_layers.items():
        converted = convert_layer(name, layer, params[name], keras_model)
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(w.shape) for w in converted]
        if got != expected:
            raise PortError(
                f"layer {name!r} ({type(layer).__name__}): the PyTorch weights convert to shapes "
                f"{got}, but the Keras layer has {expected}"
            )
        new_weights[name] = converted
    for name, weights in new_weights.items():
        keras_layers[name].set_weights(weights)
    return keras_model


def keras_names_for(torch_name: str, keras_model) -> list[str]:
    """The twin's layers holding the outputs of PyTorch module ``torch_name``, one per call:
    ``["layer1.0.relu", "layer1.0.relu_1"]`` for a ReLU called twice, ``["conv1"]`` otherwise."""
    from utils.tensorflow._blocks import get_layer

    get_layer(keras_model, torch_name)  # UnknownLayerError with the closest name if it is not there
    names = {layer.name for layer in keras_model.layers}
    found = [torch_name]
    while call_key(torch_name, len(found)) in names:
        found.append(call_key(torch_name, len(found)))
    return found


def split_call_key(key: str, torch_names) -> tuple[str, int]:
    """Inverse of ``call_key``: ``"layer1.0.relu_1"`` -> ``("layer1.0.relu", 1)`` when
    ``"layer1.0.relu"`` is in ``torch_names``; a plain module name -> ``(name, 0)``."""
    torch_names = set(torch_names)
    if key in torch_names:
        return key, 0
    match = re.fullmatch(r"(.+)_(\d+)", key)
    if match and match.group(1) in torch_names:
        return match.group(1), int(match.group(2))
    raise UnknownLayerError(key, sorted(torch_names), "the PyTorch model")

"""Receptive fields of a Keras model, derived from its graph: the model is traced again on a fresh
``keras.Input`` (nested models layer by layer) and each output gets the field of its inputs,
composed by the layer's configuration (kernel, strides, dilation, "same" padding: asymmetric at
stride 2). The fields of all layers are computed once per model and input size.
"""

from __future__ import annotations

import functools

from utils import receptive_field as rf
from utils.tensorflow import _blocks
from utils.tensorflow.capture import keras

__all__ = ["ReceptiveField", "receptive_field"]
ReceptiveField = rf.ReceptiveField
_L = keras.layers
_CONVS = (_L.Conv2D, _L.DepthwiseConv2D, _L.SeparableConv2D)


def _field(layer, args, out, whole: rf.ReceptiveField):
    sources = [t for t in keras.tree.flatten(args) if hasattr(t, "_field")]
    if not sources or isinstance(sources[0]._field, Exception):
        return sources[0]._field if sources else None  # an error upstream travels down
    src, op = sources[0], type(layer).__name__
    if len(out.shape) != 4 or isinstance(layer, (_L.GlobalAveragePooling2D, _L.GlobalMaxPooling2D)):
        return whole
    if isinstance(layer, (*_CONVS, _L.MaxPooling2D, _L.AveragePooling2D)):
        conv = isinstance(layer, _CONVS)
        kernel, dilation = (layer.kernel_size, layer.dilation_rate) if conv else (layer.pool_size, 1)
        padding = 0
        if layer.padding == "same":
            padding = rf.same_padding(src.shape[1:3], kernel, layer.strides, dilation)
        return src._field.window(kernel, layer.strides, dilation, padding)
    if isinstance(layer, (_L.ZeroPadding2D, _L.Cropping2D)):
        crop = isinstance(layer, _L.Cropping2D)
        (top, _), (left, _) = layer.cropping if crop else layer.padding
        return src._field.window(1, 1, 1, (-top, -left) if crop else (top, left))
    if op in rf.MOVES_PIXELS or tuple(out.shape[1:3]) not in {tuple(t.shape[1:3]) for t in sources}:
        return rf.unknown_operation(op, tuple(src.shape[1:3]), tuple(out.shape[1:3]))
    return rf.union(t._field for t in sources)


def _traced(model, inputs, whole, found, prefix=""):
    """``model`` called layer by layer on ``inputs``; each layer's first output kept by name."""

    def call(layer, *args, **kwargs):
        if _blocks._is_graph_model(layer):
            out = _traced(layer, args[0], whole, found, f"{prefix}{layer.name}/")
        else:
            out = layer(*args, **kwargs)
            out._field = _field(layer, args, out, whole)
        found.setdefault(prefix + layer.name, out)
        return out

    if isinstance(model, keras.Sequential):
        return functools.reduce(lambda x, layer: call(layer, x), _blocks._children(model).values(), inputs)
    return model._run_through_graph(inputs, operation_fn=lambda layer: functools.partial(call, layer))


def receptive_field(model, layer: str, input_size=None) -> rf.ReceptiveField:
    """The receptive field of ``layer``'s output for an ``input_size`` ``(H, W)`` image (default:
    the model's, else 224 x 224): see :func:`utils.pytorch.receptive_field.receptive_field`, same
    contract; ``layer`` may be ``"backbone/layer"``."""
    _blocks.check_graph_model(model)
    _blocks.get_layer(model, layer)  # a bad name fails here, with the closest match
    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "_inputs", None) else (None, None, 3)
    size = rf.pair(input_size or (shape[:2] if None not in shape[:2] else 224))

    def trace():
        inputs = keras.Input((*size, shape[-1]))
        inputs._field, found = rf.ReceptiveField((1, 1)), {}
        _traced(model, inputs, rf.ReceptiveField(size, (0, 0)), found)
        return {name: getattr(out, "_field", None) for name, out in found.items()}

    field = _blocks.cached(model, ("receptive_field", size), trace)[layer]
    if field is None or isinstance(field, Exception):
        raise field or RuntimeError(f"layer {layer!r} did not produce a tensor from the input")
    return field

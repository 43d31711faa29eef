"""Capture intermediate activations of a Keras model with a multi-output sub-model.

The raw mechanism, which the lessons show first, is one line::

    activation_model = keras.Model(model.inputs, [model.get_layer(n).output for n in names])

Keras keeps the graph of a functional model, so any layer's symbolic output can become an output of
a new model that shares the same weights. :func:`activation_model` wraps that line and handles the
cases where it fails:

* a ``Sequential`` model that was never built or called has no graph yet: it is traced on a
  ``keras.Input`` first;
* a layer inside a nested model (a backbone inside a classifier) is addressed as
  ``"backbone/layer"``: the nested model gets its own sub-model, called where the backbone is;
* a subclassed model has no graph at all: the error says what to do instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import numpy as np

from utils._import_order import import_tensorflow
from utils.layers import UnknownLayerError, as_name_list

tf = import_tensorflow()
import keras

NESTED_SEPARATOR = "/"
"""Separates a nested model's name from a layer inside it: ``"backbone/conv1"``."""

_CONV_TYPES = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)


def _functional_base(model) -> bool:
    # keras.Model(inputs, outputs) returns a Functional instance; Keras exports no public name for
    # the class, so compare against the one it uses internally.
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def layer_names(model, kind: str | None = None) -> list[str]:
    """Names of the layers of ``model`` that can be captured, in model order.

    Args:
        model: a functional or ``Sequential`` Keras model.
        kind: ``None`` for every layer (input layers excluded), ``"conv"`` for convolutions only
            (depthwise and separable included), ``"leaf"`` for layers that are not models.

    Layers of a nested model appear as ``"nested/layer"``, after the nested model itself.
    """
    kinds = (None, "conv", "leaf")
    if kind not in kinds:
        raise ValueError(f"kind must be one of {kinds}, got {kind!r}")
    names = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        nested = isinstance(layer, keras.Model)
        if kind is None or (kind == "conv" and isinstance(layer, _CONV_TYPES)) or (
            kind == "leaf" and not nested
        ):
            names.append(layer.name)
        if nested:
            names += [f"{layer.name}{NESTED_SEPARATOR}{n}" for n in layer_names(layer, kind)]
    return names


def _check_graph_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    if isinstance(model, keras.Sequential) or _functional_base(model):
        return
    raise TypeError(
        f"{type(model).__name__} is a subclassed Keras model: its call() is Python code, so Keras has "
        "no graph of layers to take intermediate outputs from. Either rebuild it with the functional "
        "API (keras.Input -> layers -> keras.Model(inputs, outputs)) or a keras.Sequential, or return "
        "the tensors you want to see as extra outputs of call()."
    )


def _traced_inputs_outputs(model, input_shape):
    """The model's symbolic inputs and a function name -> symbolic output, tracing a Sequential
    model on a fresh ``keras.Input`` (which also builds one that was never called)."""
    if isinstance(model, keras.Sequential):
        try:
            shape = model.inputs[0].shape[1:]
        except (AttributeError, ValueError, IndexError, TypeError):
            shape = None
        if shape is None or any(d is None for d in shape[:-1]) and input_shape is not None:
            shape = input_shape
        if shape is None:
            raise ValueError(
                f"Sequential model {model.name!r} was never built or called, so its input shape is "
                "unknown: pass input_shape=(H, W, C), or give the model a keras.Input first"
            )
        inputs = keras.Input(shape=tuple(shape))
        outputs, x = {}, inputs
        for layer in model.layers:
            x = layer(x)
            outputs[layer.name] = x
        return [inputs], outputs.__getitem__
    return list(model.inputs), lambda name: _single_output(model.get_layer(name))


def _single_output(layer):
    nodes = [n for n in layer._inbound_nodes]
    if len(nodes) > 1:
        raise ValueError(
            f"layer {layer.name!r} is called {len(nodes)} times in the model, so it has no single "
            "output; give each call its own layer (the course's twins name them name, name_1, ...)"
        )
    return layer.output


def activation_model(model, layers: str | Iterable[str], input_shape=None):
    """A Keras model with the same input as ``model`` and one output per name in ``layers``.

    The sub-model shares ``model``'s layers and weights; it computes only what the requested
    layers need. Works for functional models, ``Sequential`` models (built or not; pass
    ``input_shape=(H, W, C)`` if it was never built) and nested models (``"backbone/layer"``).

    Raises:
        UnknownLayerError: a name is not a layer of the model (lists valid names).
        TypeError: ``model`` is subclassed (no graph); the message says what to do.
    """
    _check_graph_model(model)
    names = as_name_list(layers)
    inputs, output_of = _traced_inputs_outputs(model, input_shape)
    top = {layer.name: layer for layer in model.layers}
    valid = layer_names(model)
    nested_requests: dict[str, list[str]] = {}  # nested model name -> names inside it
    for name in names:
        head, sep, rest = name.partition(NESTED_SEPARATOR)
        layer = top.get(head)
        if layer is None or isinstance(layer, keras.layers.InputLayer) or (
            sep and name not in valid
        ):
            raise UnknownLayerError(name, valid, f"Keras model {model.name!r}")
        if sep:
            nested_requests.setdefault(head, []).append(rest)
    # One sub-model per nested model, called on what the outer model feeds the nested one.
    nested_outputs = {}
    for head, inner_names in nested_requests.items():
        inner = activation_model(top[head], inner_names)
        outs = inner(_nested_input(model, top[head], output_of))
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        nested_outputs.update({f"{head}{NESTED_SEPARATOR}{n}": o for n, o in zip(inner_names, outs)})
    outputs = [nested_outputs[n] if n in nested_outputs else output_of(n) for n in names]
    # A lone input is passed bare: Keras warns when a list is given to a model built on a tensor.
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs)


def _nested_input(model, nested, output_of):
    """The symbolic tensor(s) the outer ``model`` feeds into the ``nested`` model."""
    nodes = nested._inbound_nodes
    if isinstance(model, keras.Sequential):
        position = [layer.name for layer in model.layers].index(nested.name)
        if position == 0:
            raise ValueError("capturing inside the first layer of a Sequential model is not supported")
        return output_of(model.layers[position - 1].name)
    outer_nodes = [n for n in nodes if n.operation is nested and n.input_tensors]
    if len(outer_nodes) != 1:
        raise ValueError(
            f"nested model {nested.name!r} is called {len(outer_nodes)} times; cannot tell which call to use"
        )
    tensors = outer_nodes[0].input_tensors
    return tensors[0] if len(tensors) == 1 else tensors


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached_activation_model(model, names: tuple[str, ...], input_shape):
    per_model = _CACHE.setdefault(model, {})
    key = (names, tuple(input_shape) if input_shape is not None else None)
    if key not in per_model:
        per_model[key] = activation_model(model, list(names), input_shape=input_shape)
    return per_model[key]


def to_input(images):
    """Preprocessed images -> the model's input tensor.

    ``images`` is the course's framework-neutral batch: a float32 NumPy array ``[N, H, W, C]``
    (see :func:`utils.preprocess.preprocess`). Keras uses that layout too, so this only makes a
    float32 ``tf.Tensor``; a single image ``[H, W, C]`` gets a batch axis.
    """
    if isinstance(images, tf.Tensor):
        return images
    if hasattr(images, "detach"):
        raise TypeError(
            "got a torch tensor; Keras expects a NumPy array [N, H, W, C] (use the preprocessed NumPy "
            "batch, or utils.layout.to_channels_last(tensor))"
        )
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"expected images [N, H, W, C], got shape {array.shape}")
    return tf.convert_to_tensor(array)


def feature_maps(model, layers: str | Iterable[str], images) -> dict[str, np.ndarray]:
    """Run ``model`` once in inference mode and return the named layers' outputs as NumPy arrays
    in Keras' layout ``[N, H, W, C]``.

    The :func:`activation_model` is built once per model and list of layers, and its call is
    compiled once (``tf.function``, ``training=False``), so calling this again costs one graph
    run. (``predict`` would do the same work but copies every output into new arrays, which with
    dozens of captured layers costs a third of a forward pass; measured in
    ``benchmarks/capture_overhead.py``.) Batches of 32 keep memory bounded for large inputs.
    """
    names = tuple(as_name_list(layers))
    x = to_input(images)
    run = _compiled_call(model, names, tuple(x.shape[1:]))
    chunks = [run(x[start:start + 32]) for start in range(0, int(x.shape[0]), 32)]
    return {
        name: np.concatenate([np.asarray(chunk[i]) for chunk in chunks])
        if len(chunks) > 1 else np.asarray(chunks[0][i])
        for i, name in enumerate(names)
    }


def _compiled_call(model, names: tuple[str, ...], input_shape: tuple):
    per_model = _CACHE.setdefault(model, {})
    key = ("compiled", names, input_shape)
    if key not in per_model:
        sub = _cached_activation_model(model, names, input_shape)

        @tf.function(input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)])
        def run(x):
            outputs = sub(x, training=False)
            return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

        per_model[key] = run
    return per_model[key]

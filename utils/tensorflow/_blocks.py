"""The Keras building blocks every helper in :mod:`utils.tensorflow` uses, one of each (internal
but for ``clear_cache``): :func:`layer_names` and :func:`get_layer` (nested names as
``"backbone/layer"``), :func:`submodel` and one cache (:func:`cached`, :func:`clear_cache`).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Hashable, Iterable

from utils._import_order import import_tensorflow
from utils.layers import UnknownLayerError, as_name_list

import_tensorflow()  # quietly, and after torch (the import order that does not crash)
import keras

__all__ = ["NESTED_SEPARATOR", "cached", "clear_cache", "get_layer", "layer_names",
           "shape_if_unbuilt", "submodel"]

NESTED_SEPARATOR = "/"
"""Separates a nested model's name from a layer inside it: ``"backbone/conv1"``. Keras forbids
``/`` in layer names, so the path is never ambiguous."""

_CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
               keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_KINDS = (None, "conv", "leaf")


def _is_functional(model) -> bool:
    # keras.Model(inputs, outputs) returns a Functional instance; Keras exports no public name for
    # the class, so compare against the one it uses internally.
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def _is_graph_model(layer) -> bool:
    """A model whose layers can be reached: Sequential or functional (not subclassed)."""
    return isinstance(layer, keras.Sequential) or _is_functional(layer)


def _children(model) -> dict:
    """``{name: layer}`` of the layers directly inside ``model``, input layers left out."""
    return {layer.name: layer for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer)}


def layer_names(model, kind: str | None = None) -> list[str]:
    """Names of the layers the helpers accept, in model order; those of a nested functional or
    ``Sequential`` model appear as ``"nested/layer"`` (any depth) right after it. ``kind``:
    ``None`` every layer but inputs, ``"conv"`` convolutions (depthwise and separable included),
    ``"leaf"`` layers that are not models."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    names = []
    for name, layer in _children(model).items():
        nested = isinstance(layer, keras.Model)
        if kind is None or (kind == "conv" and isinstance(layer, _CONV_TYPES)) or (
            kind == "leaf" and not nested
        ):
            names.append(name)
        if _is_graph_model(layer):
            names += [f"{name}{NESTED_SEPARATOR}{n}" for n in layer_names(layer, kind)]
    return names


def check_graph_model(model) -> None:
    """Refuse anything but a functional or ``Sequential`` Keras model, saying what to do."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    if _is_graph_model(model):
        return
    raise TypeError(
        f"{type(model).__name__} is a subclassed Keras model: its call() is Python code, so Keras has "
        "no graph of layers to take intermediate outputs from. Either rebuild it with the functional "
        "API (keras.Input -> layers -> keras.Model(inputs, outputs)) or a keras.Sequential, or return "
        "the tensors you want to see as extra outputs of call()."
    )


def get_layer(model, name: str):
    """The layer called ``name``; ``"backbone/block_1_expand"`` walks into nested models.

    Raises:
        UnknownLayerError: no such layer; the message lists :func:`layer_names` and the closest one.
        TypeError: the path goes into a subclassed model, which has no graph of layers.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    layer = model
    for part in str(name).split(NESTED_SEPARATOR):
        if isinstance(layer, keras.Model):
            check_graph_model(layer)  # inside a subclassed model: say why and what to do
        children = _children(layer) if _is_graph_model(layer) else {}
        if part not in children:
            raise UnknownLayerError(name, layer_names(model), f"Keras model {model.name!r}")
        layer = children[part]
    return layer


def _input_specs(model, input_shape) -> list:
    """Fresh ``keras.Input`` tensors to trace ``model`` on: its own input shapes, or
    ``input_shape`` where it knows none (a Sequential never built)."""
    try:
        known = [tuple(t.shape[1:]) for t in model.inputs]
        dtypes = [t.dtype for t in model.inputs]
    except (AttributeError, ValueError):  # a Sequential never built has no .inputs
        known, dtypes = [], []
    if len(known) == 1 and input_shape is not None and None in known[0][:-1]:
        known = []  # spatial size unknown to the model: the caller's real one traces better
    if not known:
        if input_shape is None:
            raise ValueError(
                f"model {model.name!r} was never built or called, so its input shape is unknown: "
                "pass input_shape=(H, W, C), or give the model a keras.Input first"
            )
        known, dtypes = [tuple(input_shape)], ["float32"]
    return [keras.Input(shape=shape, dtype=dtype) for shape, dtype in zip(known, dtypes)]


def shape_if_unbuilt(model, image_shape) -> tuple | None:
    """``image_shape`` ``(H, W, C)`` when ``model`` knows no input shape (a Sequential never
    built), else ``None``: ``submodel``'s ``input_shape`` and part of the helpers' cache keys."""
    try:
        model.inputs  # noqa: B018  (raises for a Sequential model that was never built)
        return None
    except (AttributeError, ValueError):
        return tuple(int(d) for d in image_shape)


def _trace(model, inputs, wanted: set[str], found: dict, prefix: str = ""):
    """Call ``model``'s layers on the symbolic ``inputs`` in order and return its output; outputs
    of layers in ``wanted`` are appended to ``found[prefix + name]``. A nested model holding a
    wanted name is traced layer by layer too."""

    def call(layer, *args, **kwargs):
        inner = {w.partition(NESTED_SEPARATOR)[2] for w in wanted
                 if w.startswith(layer.name + NESTED_SEPARATOR)}
        if inner:
            check_graph_model(layer)
            # The nested call's keyword arguments (``training=False`` in the transfer-learning
            # recipe) are not replayed on its layers: the helpers run the sub-model with
            # training=False, which reaches every layer of it.
            out = _trace(layer, args[0], inner, found, f"{prefix}{layer.name}{NESTED_SEPARATOR}")
        else:
            out = layer(*args, **kwargs)
        if layer.name in wanted:
            found.setdefault(prefix + layer.name, []).append(out)
        return out

    if isinstance(model, keras.Sequential):
        x = inputs
        for layer in _children(model).values():
            x = call(layer, x)
        return x
    # Keras has no public way to replay a functional graph node by node; _run_through_graph is what
    # Functional.call itself uses (Keras 3), and operation_fn lets each layer call go through ours.
    return model._run_through_graph(inputs, operation_fn=lambda layer: functools.partial(call, layer))


def submodel(model, outputs: str | Iterable[str], *, with_output: bool = False, input_shape=None):
    """A Keras model from ``model``'s input to the outputs of the layers named in ``outputs``.

    More than ``keras.Model(model.inputs, [model.get_layer(n).output])``, the line the lessons
    teach: a nested model's layer has its output in the *nested* graph, not connected to the outer
    input, and a ``Sequential`` never called has no graph. So ``model`` is traced again on a fresh
    ``keras.Input``, a nested model holding a requested name layer by layer: one flat graph, in
    which gradients flow from the logits into the backbone. Layers and weights are shared.

    Args:
        model: a functional or ``Sequential`` model (built or not), possibly with nested models.
        outputs: layer names (see :func:`layer_names`), ``"backbone/layer"`` included.
        with_output: also return the model's own output(s), last, from the same graph.
        input_shape: ``(H, W, C)`` to trace on when the model knows no input shape.

    Returns:
        A functional ``keras.Model`` sharing ``model``'s layers; one output per name, in order (a
        bare tensor when there is one output in all).

    Raises:
        UnknownLayerError: a name is not a layer of the model (lists valid names, closest match).
        TypeError: ``model`` (or a nested model named in a path) is subclassed: it has no graph.
        ValueError: a requested layer runs more than once, so it has no single output.
    """
    check_graph_model(model)
    names = as_name_list(outputs)
    for name in names:
        get_layer(model, name)  # unknown names fail here, with the closest match
    inputs = _input_specs(model, input_shape)
    found: dict[str, list] = {}
    final = _trace(model, inputs[0] if len(inputs) == 1 else inputs, set(names), found)
    tensors = []
    for name in names:
        calls = found.get(name, [])
        if len(calls) != 1:
            raise ValueError(
                f"layer {name!r} runs {len(calls)} times in a forward pass of {model.name!r}, so it "
                "has no single output; give each call its own layer (the course's twins name them "
                "name, name_1, ...)"
            )
        tensors.append(calls[0])
    if with_output:
        tensors += list(final) if isinstance(final, (list, tuple)) else [final]
    # A lone input or output is passed bare: Keras warns when a list is given to a model built on
    # a single tensor, and callers then get a tensor back, as from the model itself.
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs,
                       tensors[0] if len(tensors) == 1 else tensors)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""model -> (its layers when the entries were made, {key: what the helpers built for it})."""


def cached(model, key: Hashable, build: Callable[[], object]):
    """``build()`` once per ``model`` and ``key`` (e.g. ``("feature_maps", names, shape)``),
    then the same object. Models are held weakly; entries go when the model's layers change."""
    layers = tuple(id(layer) for layer in model.layers)
    stored = _CACHE.get(model)
    if stored is None or stored[0] != layers:
        stored = _CACHE[model] = (layers, {})
    entries = stored[1]
    if key not in entries:
        entries[key] = build()
    return entries[key]


def clear_cache(model=None) -> None:
    """Forget the sub-models and compiled calls the helpers keep for ``model`` (all models when
    ``None``) to get their memory back. Weights are read live: training needs no clearing; but a
    compiled call keeps a layer's *settings* (``epsilon``, ``padding``...) from when it was
    traced, so clear after changing one."""
    if model is None:
        _CACHE.clear()
    else:
        _CACHE.pop(model, None)

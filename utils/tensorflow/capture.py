"""Capture intermediate activations of a Keras model with a multi-output sub-model.

The raw mechanism, which the lessons show first, is one line::

    activation_model = keras.Model(model.inputs, [model.get_layer(n).output for n in names])

Keras keeps the graph of a functional model, so any layer's symbolic output can become an output of
a new model that shares the same weights. :func:`activation_model` wraps that line and handles the
cases where it fails:

* a ``Sequential`` model that was never built or called has no graph yet: it is traced on a
  ``keras.Input`` first;
* a layer inside a nested model (a backbone inside a classifier) is addressed as
  ``"backbone/layer"``: its output lives in the backbone's own graph, not the outer model's, so the
  model is traced again with the backbone's layers called one by one;
* a subclassed model has no graph at all: the error says what to do instead.

All three live in :mod:`utils.tensorflow._blocks` (``submodel``), which every TensorFlow helper
uses; the sub-models and their compiled calls are cached per model (``clear_cache``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from utils._import_order import import_tensorflow
from utils.layers import as_name_list
from utils.tensorflow._blocks import NESTED_SEPARATOR, cached, layer_names, submodel

tf = import_tensorflow()
import keras  # noqa: F401  (after the import-order guard; other modules take it from here)

__all__ = ["NESTED_SEPARATOR", "activation_model", "feature_maps", "layer_names", "to_input"]


def activation_model(model, layers: str | Iterable[str], input_shape=None):
    """A Keras model with the same input as ``model`` and one output per name in ``layers``.

    The sub-model shares ``model``'s layers and weights; it computes only what the requested
    layers need. Works for functional models, ``Sequential`` models (built or not; pass
    ``input_shape=(H, W, C)`` if it was never built) and nested models (``"backbone/layer"``, any
    depth). It is :func:`utils.tensorflow._blocks.submodel`, under the name the lessons teach.

    Raises:
        UnknownLayerError: a name is not a layer of the model (lists valid names).
        TypeError: ``model`` is subclassed (no graph); the message says what to do.
    """
    return submodel(model, layers, input_shape=input_shape)


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
    def build():
        sub = submodel(model, names, input_shape=input_shape)

        @tf.function(input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)])
        def run(x):
            outputs = sub(x, training=False)
            return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

        return run

    return cached(model, ("feature_maps", names, input_shape), build)

"""Capture intermediate activations of a Keras model with a multi-output sub-model.

The raw mechanism, which the lessons show first, is one line::

    activation_model = keras.Model(model.inputs, [model.get_layer(n).output for n in names])

:func:`activation_model` (``submodel`` of :mod:`utils.tensorflow._blocks`) also handles
unbuilt ``Sequential`` models, nested models (``"backbone/layer"``) and subclassed ones (an error).
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
    """A Keras model with ``model``'s input and one output per name in ``layers``, sharing its
    weights: :func:`utils.tensorflow._blocks.submodel` under the name the lessons teach. Pass
    ``input_shape=(H, W, C)`` for a ``Sequential`` model that was never built.

    Raises:
        UnknownLayerError: a name is not a layer of the model (lists valid names).
        TypeError: ``model`` is subclassed (no graph); the message says what to do.
    """
    return submodel(model, layers, input_shape=input_shape)


def to_input(images):
    """A NumPy batch ``[N, H, W, C]`` (or one image ``[H, W, C]``) -> a float32 ``tf.Tensor``
    of the same layout; a ``tf.Tensor`` is returned unchanged, a torch tensor refused."""
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
    """Run ``model`` once (``training=False``) and return the named layers' outputs as NumPy
    ``[N, H, W, C]``. The sub-model and its compiled call (``tf.function``, cheaper than
    ``predict``) are built once per model and layer list; batches of 32 bound the memory."""
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

"""Grad-CAM in Keras: a sub-model returns a layer's output *and* the logits, ``tf.GradientTape``
differentiates a class logit with respect to that output. The raw mechanism (lesson 9)::

    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        feature_maps, logits = grad_model(x, training=False)
        score = logits[:, c]
    grads = tape.gradient(score, feature_maps)            # [N, h, w, C]
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    heatmap = tf.nn.relu(tf.reduce_sum(weights * feature_maps, axis=-1))

:func:`gradcam` adds the top-1 class by default, one class per image, and compiles the whole
computation once per (model, layer) with ``tf.function`` (an eager tape costs about another
forward pass). Same contract as :func:`utils.pytorch.gradcam.gradcam`.
"""

from __future__ import annotations

import numpy as np

from utils._import_order import import_tensorflow
from utils.gradcam import GradCAMResult, check_class_index
from utils.tensorflow._blocks import cached, get_layer, shape_if_unbuilt, submodel
from utils.tensorflow.capture import to_input

tf = import_tensorflow()

__all__ = ["GradCAMResult", "gradcam", "gradcam_model"]


def gradcam_model(model, layer: str, input_shape=None):
    """The sub-model Grad-CAM differentiates, ``[output of layer, model output]``, from
    ``submodel`` so that ``layer`` may lie in a nested model (``"backbone/out_relu"``) and the
    logits are computed *from* its output. Shares ``model``'s weights; built once per layer."""
    return _cached(model, layer, input_shape)[0]


def _cached(model, layer: str, input_shape=None):
    """(sub-model, compiled Grad-CAM function) for ``model`` and ``layer``, built on first use."""
    get_layer(model, layer)  # an unknown name fails before anything is built, with the closest match

    def build():
        grad_model = submodel(model, [layer], with_output=True, input_shape=input_shape)
        if len(grad_model.outputs[0].shape) != 4:
            raise ValueError(
                f"Grad-CAM needs a layer with feature maps [N, h, w, C]; {layer!r} gives "
                f"{tuple(grad_model.outputs[0].shape)}"
            )

        @tf.function(reduce_retracing=True)
        def compute(x, classes):  # classes: int64 [N]; -1 = "the top-1 class of this image"
            with tf.GradientTape() as tape:
                tape.watch(x)  # records the graph even when every weight is frozen (trainable=False)
                activations, logits = grad_model(x, training=False)[:2]
                classes = tf.where(classes < 0, tf.argmax(logits, axis=1), classes)
                score = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))
            grads = tape.gradient(score, activations)  # [N, h, w, C]
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # [N, 1, 1, C]
            heatmaps = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))  # [N, h, w]
            return heatmaps, classes, logits

        return grad_model, compute

    # Keyed by input shape only for a model that does not know its own (a Sequential never built).
    return cached(model, ("gradcam", layer, input_shape), build)


def gradcam(model, layer: str, images, class_index=None) -> GradCAMResult:
    """Grad-CAM heatmaps of ``layer`` for a batch of images: see
    :func:`utils.pytorch.gradcam.gradcam`, same contract. ``model`` is a functional or
    ``Sequential`` classifier (run with ``training=False``); ``layer`` may be
    ``"backbone/out_relu"`` inside a nested backbone, or the backbone's name for its output;
    ``images`` a NumPy batch ``[N, H, W, 3]`` or a ``tf.Tensor``."""
    x = to_input(images)
    grad_model, compute = _cached(model, layer, shape_if_unbuilt(model, x.shape[1:]))
    chosen = check_class_index(class_index, int(x.shape[0]), int(grad_model.outputs[1].shape[-1]))
    classes = np.full(int(x.shape[0]), -1, np.int64) if chosen is None else chosen
    heatmaps, classes, logits = compute(x, tf.constant(classes))
    return GradCAMResult(
        heatmaps.numpy().astype(np.float32),
        classes.numpy().astype(np.int64),
        logits.numpy().astype(np.float32),
    )


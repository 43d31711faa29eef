"""Grad-CAM in Keras: a sub-model returns a layer's output *and* the logits, ``tf.GradientTape``
gives the gradient of a class logit with respect to that output.

The raw mechanism, which lesson 9 shows step by step::

    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        feature_maps, logits = grad_model(x, training=False)
        score = logits[:, c]
    grads = tape.gradient(score, feature_maps)            # [N, h, w, C]
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    heatmap = tf.nn.relu(tf.reduce_sum(weights * feature_maps, axis=-1))

:func:`gradcam` is that, plus: the top-1 class by default, one class per image, and the whole
computation compiled once per (model, layer) with ``tf.function`` (an eager ``GradientTape`` on CPU
costs about as much again as the forward pass itself). Same name and signature as :func:`utils.pytorch.gradcam.gradcam`; the neutral helpers
(normalising, upsampling, heat in a box) are in :mod:`utils.gradcam`.
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
    """``keras.Model(model.inputs, [output of layer, model output])``: the sub-model Grad-CAM
    differentiates, built with :func:`utils.tensorflow._blocks.submodel` so that ``layer`` may lie
    inside a nested model (``"backbone/out_relu"``) and the logits are computed *from* that
    layer's output. It shares ``model``'s layers and weights; built once per (model, layer)."""
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
    """Grad-CAM heatmaps of ``layer`` for a batch of images.

    Args:
        model: a functional or ``Sequential`` Keras classifier returning logits
            ``[N, classes]`` (run with ``training=False``); it may hold a nested backbone.
        layer: name of the layer whose output is explained (see ``layer_names``), usually a late
            one: ``"_relu1"`` (EfficientNet-Lite0's head, 7 x 7) or ``"_blocks.15"``; inside a
            nested backbone ``"backbone/out_relu"``, or the backbone's name for its output.
        images: preprocessed NumPy batch ``[N, H, W, 3]`` (:func:`utils.preprocess.preprocess`)
            or a ``tf.Tensor``.
        class_index: ``None`` explains each image's top-1 class; an ``int`` the same class for all
            images; a sequence one class per image.

    Returns:
        :class:`utils.gradcam.GradCAMResult` ``(heatmaps [N, h, w], class_indices [N], logits)``:
        raw maps, ``ReLU(sum_k w_k A_k)`` with ``w_k`` the spatial mean of the gradient of the class
        logit with respect to channel ``k`` of the layer's output ``A``.
    """
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


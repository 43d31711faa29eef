"""Activation maximisation in Keras: gradient ascent on the pixels of an input image.

The raw mechanism (lesson 9)::

    sub = keras.Model(model.inputs, model.get_layer(layer).output)
    image = tf.Variable(tf.zeros((1, 96, 96, 3)))
    for step in range(40):
        with tf.GradientTape() as tape:
            maps = sub.call(image, training=False)           # .call: any image size
            objective = tf.reduce_mean(maps[..., channel]) - smoothness * total_variation(image)
        grad = tape.gradient(objective, image)
        image.assign_add(lr * grad / tf.reduce_mean(tf.abs(grad)))   # a step of fixed average size

:func:`maximize_activation` is that loop with a seeded starting image, jitter, clipping to real
pixel values and a progress bar; one step is compiled with ``tf.function``. The sub-model
computes only the layers up to ``layer``. Same name and signature as
:func:`utils.pytorch.maximize.maximize_activation`; the shared parts are in :mod:`utils.maximize`.

Why ``sub.call(x)`` and not ``sub(x)``: the course's Keras models are built for 224 x 224 inputs
and ``__call__`` checks that; ``call`` runs the same layers on any size (convolutions do not care),
which keeps the optimisation cheap at 96 x 96.
"""

from __future__ import annotations

import numpy as np

from utils._import_order import import_tensorflow
from utils.maximize import (
    DEFAULTS,
    MaximizationResult,
    check_settings,
    jitter_shifts,
    pixel_scaling,
    progress_bar,
    show_progress,
    starting_image,
)
from utils.tensorflow._blocks import cached, get_layer, shape_if_unbuilt, submodel

tf = import_tensorflow()

__all__ = ["MaximizationResult", "channel_activation", "maximize_activation"]


def _total_variation(image):
    """Mean squared difference between vertical and horizontal neighbours (``[N, H, W, C]``)."""
    down = image[:, 1:, :, :] - image[:, :-1, :, :]
    right = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tf.reduce_mean(tf.square(down)) + tf.reduce_mean(tf.square(right))


def _cached(model, layer: str, image_shape: tuple):
    """(sub-model up to ``layer``, compiled ascent step), built once per (model, layer)."""
    get_layer(model, layer)  # an unknown name fails before anything is built, with the closest match
    input_shape = shape_if_unbuilt(model, image_shape)
    return cached(model, ("maximize", layer, input_shape), lambda: _build(model, layer, input_shape))


def _build(model, layer: str, input_shape):
    sub = submodel(model, [layer], input_shape=input_shape)
    if len(sub.outputs[0].shape) != 4:
        raise ValueError(f"expected feature maps [N, h, w, C] from {layer!r}, got {tuple(sub.outputs[0].shape)}")

    @tf.function(reduce_retracing=True)
    def step(image, shift, channel, lr, smoothness, low, high):
        with tf.GradientTape() as tape:
            tape.watch(image)
            moved = tf.roll(image, shift=shift, axis=[1, 2])
            with tf.name_scope("maximize"):  # graph scopes may not start with "_" (_conv_stem)
                maps = sub.call(moved, training=False)
            maps = maps[0] if isinstance(maps, (list, tuple)) else maps
            activation = tf.reduce_mean(tf.gather(maps, channel, axis=-1))
            objective = activation - smoothness * _total_variation(image)
        grad = tape.gradient(objective, image)
        image = image + lr * grad / (tf.reduce_mean(tf.abs(grad)) + 1e-12)
        return tf.minimum(tf.maximum(image, low), high), activation  # pixels stay in 0-255

    return sub, step


def maximize_activation(
    model,
    layer: str,
    channel: int,
    *,
    steps: int = DEFAULTS["steps"],
    lr: float = DEFAULTS["lr"],
    size: int = DEFAULTS["size"],
    jitter: int = DEFAULTS["jitter"],
    smoothness: float = DEFAULTS["smoothness"],
    seed: int = DEFAULTS["seed"],
    start=None,
    preprocessing: str = "efficientnet_lite0",
    progress: bool | None = None,
) -> MaximizationResult:
    """Optimise an input image so that ``channel`` of ``layer`` responds as strongly as possible.

    Args:
        model: a functional or ``Sequential`` Keras model, possibly holding a nested backbone (run
            with ``training=False``; its weights are not changed).
        layer: layer name (see ``layer_names``; ``"backbone/layer"`` inside a nested model). Prefer the layer *before* a ReLU6 (``"_bn0"``,
            ``"_blocks.5._bn1"``): a ReLU6 passes no gradient where it is 0 or 6.
        channel: the channel of that layer's output to maximise (its spatial mean).
        steps: gradient-ascent steps.
        lr: step size, in input units per pixel (the step's average size; the gradient is
            normalised by its mean absolute value).
        size: height = width of the image in pixels (convolutions accept any size).
        jitter: each step rolls the image by up to this many pixels (0: no jitter).
        smoothness: weight of the total-variation penalty (0: none; larger: smoother, blurrier).
        seed: seeds the starting noise and the jitter: the same seed gives the same image.
        start: ``None`` (grey plus seeded noise), an RGB ``uint8`` image (resized to ``size``) or a
            float input ``[size, size, C]`` already scaled for the model.
        preprocessing: the model's pixel scaling (a :func:`utils.preprocess.preprocess` name), used
            to start from pixels, to keep them in 0-255 and to turn the result back into pixels.
        progress: show a tqdm bar (``None``: only for ``steps >= 100``).

    Returns:
        :class:`utils.maximize.MaximizationResult` ``(image uint8 [size, size, C], history)``.
    """
    check_settings(channel, steps, lr, size, jitter, smoothness)
    first = starting_image(size, seed, start, preprocessing)
    sub, step_fn = _cached(model, layer, first.shape)
    channels = int(sub.outputs[0].shape[-1])
    if channel >= channels:
        raise ValueError(f"layer {layer!r} has {channels} channels; got channel={channel}")
    scaling = pixel_scaling(preprocessing)
    image = tf.constant(first[None])
    low, high = (tf.constant(b) for b in scaling.bounds)
    shifts = jitter_shifts(steps, jitter, seed).astype(np.int32)
    args = (tf.constant(channel, tf.int32), tf.constant(lr, tf.float32), tf.constant(smoothness, tf.float32))
    history = np.zeros(steps, dtype=np.float32)
    for step in progress_bar(range(steps), show_progress(progress, steps), desc=f"{layer}[{channel}]", leave=False):
        image, activation = step_fn(image, tf.constant(shifts[step]), *args, low, high)
        history[step] = float(activation)
    return MaximizationResult(scaling.to_pixels(image.numpy()[0]), history)


def channel_activation(model, layer: str, channel: int, image, preprocessing: str = "efficientnet_lite0") -> float:
    """Mean activation of ``channel`` of ``layer`` for one image at its own size.

    ``image``: RGB ``uint8 [H, W, 3]`` (scaled with ``preprocessing``, not resized) or a float
    input ``[H, W, C]`` already scaled. Use it to compare a maximisation result with a photo.
    """
    array = np.asarray(image)
    x = pixel_scaling(preprocessing).to_input(array) if array.dtype == np.uint8 else array.astype(np.float32)
    sub, _ = _cached(model, layer, x.shape)
    channels = int(sub.outputs[0].shape[-1])
    if not 0 <= channel < channels:
        raise ValueError(f"layer {layer!r} has {channels} channels; got channel={channel}")
    maps = sub.call(tf.constant(x[None]), training=False)
    maps = maps[0] if isinstance(maps, (list, tuple)) else maps
    return float(tf.reduce_mean(maps[0, :, :, channel]))

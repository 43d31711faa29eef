"""Activation maximisation in Keras: the loop of :mod:`utils.pytorch.maximize`, same contract, with
``tf.GradientTape`` on a sub-model that ends at ``layer``; one step is compiled with
``tf.function``. ``sub.call(x)``, not ``sub(x)``: ``__call__`` insists on the twins' 224 x 224,
``call`` runs the convolutions on any size (cheap at 96 x 96).
"""

from __future__ import annotations

import numpy as np

from utils import maximize as shared
from utils._import_order import import_tensorflow
from utils.maximize import (
    DEFAULTS,
    FeatureVisualization,
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

__all__ = ["FeatureVisualization", "MaximizationResult", "channel_activation", "maximize_activation",
           "visualization_step", "visualize_channels"]


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
    model, layer: str, channel: int, *, steps: int = DEFAULTS["steps"],
    lr: float = DEFAULTS["lr"], size: int = DEFAULTS["size"], jitter: int = DEFAULTS["jitter"],
    smoothness: float = DEFAULTS["smoothness"], seed: int = DEFAULTS["seed"], start=None,
    preprocessing: str = "efficientnet_lite0", progress: bool | None = None,
) -> MaximizationResult:
    """Optimise an input image so that ``channel`` of ``layer`` responds as strongly as possible:
    see :func:`utils.pytorch.maximize.maximize_activation`, same contract. ``model`` is a
    functional or ``Sequential`` model (run with ``training=False``); ``layer`` may be
    ``"backbone/layer"`` inside a nested model."""
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
    """Mean activation of ``channel`` of ``layer`` for one image at its own size: see
    :func:`utils.pytorch.maximize.channel_activation`, same contract."""
    array = np.asarray(image)
    x = pixel_scaling(preprocessing).to_input(array) if array.dtype == np.uint8 else array.astype(np.float32)
    sub, _ = _cached(model, layer, x.shape)
    channels = int(sub.outputs[0].shape[-1])
    if not 0 <= channel < channels:
        raise ValueError(f"layer {layer!r} has {channels} channels; got channel={channel}")
    maps = sub.call(tf.constant(x[None]), training=False)
    maps = maps[0] if isinstance(maps, (list, tuple)) else maps
    return float(tf.reduce_mean(maps[0, :, :, channel]))


def _to_input(params, parameterization: str, preprocessing: str):
    """The model input ``[N, H, W, 3]`` that ``params`` stand for (see ``initial_parameters``)."""
    v, size, scaling = params, params.shape[2], pixel_scaling(preprocessing)
    if parameterization == "fourier":
        spectrum = tf.complex(params[..., 0], params[..., 1]) * shared.spectrum_scale(size).astype(np.complex64)
        v = tf.signal.irfft2d(spectrum, fft_length=[size, size])
    rgb = tf.einsum("dc,nchw->nhwd", shared.COLOR_CORRELATION, v)
    return (255 * tf.sigmoid(rgb) - scaling.offset) / scaling.scale


def _build_step(sub, size: int, parameterization: str, preprocessing: str):
    @tf.function(reduce_retracing=True)
    def step(params, index, weights, channels):
        with tf.GradientTape() as tape:
            tape.watch(params)
            x = moved = _to_input(params, parameterization, preprocessing)
            if index is not None:  # bilinear resampling as 4 gathers, the same in both frameworks
                flat = tf.gather(tf.reshape(x, [-1, size * size, 3]), index, axis=1)
                moved = tf.reshape(tf.reduce_sum(flat * weights[:, :, None], axis=1), tf.shape(x))
            with tf.name_scope("visualize"):  # graph scopes may not start with "_" (_conv_stem)
                maps = sub.call(moved, training=False)
            act = tf.gather(tf.reduce_mean(maps, axis=[1, 2]), channels, batch_dims=1)
        return x, act, tape.gradient(act, params)  # of a vector: of its sum

    return step


def visualization_step(model, layer: str, channels, params, *, transform=None,
                       parameterization: str = "fourier", preprocessing: str = "efficientnet_lite0") -> tuple:
    """One step of :func:`visualize_channels`: see :func:`utils.pytorch.maximize.visualization_step`."""
    channels, size = shared.check_visualize(channels, parameterization, preprocessing), np.shape(params)[2]
    sub, _ = _cached(model, layer, (size, size, 3))
    shared.check_visualize(channels, parameterization, preprocessing, int(sub.outputs[0].shape[-1]), layer)
    step = cached(model, ("visualize", layer, size, parameterization, preprocessing),
                  lambda: _build_step(sub, size, parameterization, preprocessing))
    moves = (None, None) if transform is None else map(tf.constant, shared.sampling_weights(transform, size))
    x, act, grad = step(tf.constant(params, tf.float32), *moves, tf.constant(channels))
    return x.numpy(), act.numpy(), grad.numpy()


def visualize_channels(
    model, layer: str, channels, *, steps: int = 64, size: int = 64, lr: float = 0.05,
    parameterization: str = "fourier", transforms: bool = True, seed: int = 0,
    preprocessing: str = "efficientnet_lite0", progress: bool | None = None,
) -> FeatureVisualization:
    """One image per channel, optimised in one batch: see
    :func:`utils.pytorch.maximize.visualize_channels`, same contract."""
    return shared.visualize(visualization_step, model, layer, channels, progress, steps=steps, size=size, lr=lr,
                            parameterization=parameterization, transforms=transforms, seed=seed,
                            preprocessing=preprocessing)

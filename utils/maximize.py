"""Activation maximisation, the framework-neutral parts: the starting image, the jitter, the pixel
scaling and the result type.

*What input makes this channel fire most?* Start from a grey, slightly noisy image and climb the
gradient of the channel's mean activation with respect to the pixels. Each step **jitters** the
image (a random roll of a few pixels: a pattern must work at every position), subtracts a
**smoothness** penalty (total variation) and keeps pixels within 0-255, or the result is noise
the network happens to like. ``maximize_activation`` of :mod:`utils.pytorch.maximize` and
:mod:`utils.tensorflow.maximize` runs that loop; noise and jitter come from seeded NumPy here, so
one seed gives the same start and shifts in both frameworks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from utils.layout import as_numpy
from utils.preprocess import IMAGENET_MEAN, IMAGENET_STD, resize_and_crop

DEFAULTS = {"steps": 40, "lr": 0.05, "size": 96, "jitter": 4, "smoothness": 30.0, "seed": 0}
"""Default settings of ``maximize_activation`` (fast on a laptop CPU: a few seconds)."""

PROGRESS_FROM_STEPS = 100
"""``progress=None`` shows a progress bar from this many steps on."""


class MaximizationResult(NamedTuple):
    """What ``maximize_activation`` returns; unpack it as ``image, history = ...``.

    Attributes:
        image: the optimised input as pixels, ``uint8 [H, W, 3]`` (``[H, W, 1]`` for MNIST).
        history: float32 ``[steps]``: the channel's mean activation at each step, on the jittered
            image the step used (``history[0]``: the starting image).
    """

    image: np.ndarray
    history: np.ndarray


class PixelScaling(NamedTuple):
    """``model input = (pixel - offset) / scale``, per channel; pixels are 0-255."""

    offset: np.ndarray
    scale: np.ndarray

    def to_input(self, pixels) -> np.ndarray:
        """Pixels (0-255, ``[..., C]``) -> the model's input values (float32)."""
        return ((np.asarray(pixels, np.float32) - self.offset) / self.scale).astype(np.float32)

    def to_pixels(self, x) -> np.ndarray:
        """The model's input values ``[..., C]`` -> ``uint8`` pixels (rounded, clipped to 0-255)."""
        pixels = as_numpy(x).astype(np.float32) * self.scale + self.offset
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest input value per channel (pixels 0 and 255)."""
        return self.to_input(np.zeros_like(self.offset)), self.to_input(np.full_like(self.offset, 255))


SCALINGS = {
    "efficientnet_lite0": PixelScaling(np.full(3, 127.0, np.float32), np.full(3, 128.0, np.float32)),
    "resnet18": PixelScaling(IMAGENET_MEAN * 255.0, IMAGENET_STD * 255.0),
    "mnist_cnn": PixelScaling(np.zeros(1, np.float32), np.full(1, 255.0, np.float32)),
}
"""The pixel scaling of :func:`utils.preprocess.preprocess` for each model, invertible."""


def pixel_scaling(preprocessing: str) -> PixelScaling:
    """The :class:`PixelScaling` of ``preprocessing`` (a model name of :mod:`utils.preprocess`)."""
    if preprocessing not in SCALINGS:
        raise ValueError(f"unknown preprocessing {preprocessing!r}; choose one of {list(SCALINGS)}")
    return SCALINGS[preprocessing]


def check_settings(channel, steps, lr, size, jitter, smoothness) -> None:
    """Fail early, with a clear message, on settings that cannot work."""
    if not isinstance(channel, (int, np.integer)) or channel < 0:
        raise ValueError(f"channel must be a non-negative int, got {channel!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an int >= 16 (pixels), got {size!r}")
    if not isinstance(jitter, (int, np.integer)) or not 0 <= jitter < size // 2:
        raise ValueError(f"jitter must be an int between 0 and size // 2, got {jitter!r}")
    if not smoothness >= 0:
        raise ValueError(f"smoothness must be >= 0, got {smoothness!r}")


def starting_image(size: int, seed: int, start=None, preprocessing: str = "efficientnet_lite0") -> np.ndarray:
    """The starting image as the model's input ``float32 [size, size, C]``: for ``start=None``
    mid-grey plus seeded noise (pixels ~ 127 +- 10); else an RGB ``uint8`` image, resized whole
    to ``size x size`` as ``preprocess`` does, or a float input ``[size, size, C]`` as it is."""
    scaling = pixel_scaling(preprocessing)
    channels = len(scaling.offset)
    if start is None:
        rng = np.random.default_rng(seed)
        pixels = 127.0 + rng.normal(0.0, 10.0, size=(size, size, channels))
        return scaling.to_input(np.clip(pixels, 0, 255))
    start = as_numpy(start)
    if start.dtype == np.uint8:
        if channels == 1:
            raise ValueError("for mnist_cnn pass start as float input values [size, size, 1]")
        return scaling.to_input(resize_and_crop(start, size, crop=False))  # like preprocess()
    if start.shape != (size, size, channels):
        raise ValueError(
            f"a float start image must already be the model's input [size, size, {channels}] = "
            f"{(size, size, channels)}, got {start.shape}; pass a uint8 RGB image to have it resized"
        )
    return start.astype(np.float32)


def jitter_shifts(steps: int, jitter: int, seed: int) -> np.ndarray:
    """int ``[steps, 2]``: each step's (down, right) roll, uniform in ``[-jitter, jitter]``, from
    its own seeded generator."""
    rng = np.random.default_rng([seed, 1])
    return rng.integers(-jitter, jitter + 1, size=(steps, 2))


def show_progress(progress, steps: int) -> bool:
    """``progress=None``: a bar only for long runs (``steps >= PROGRESS_FROM_STEPS``)."""
    return steps >= PROGRESS_FROM_STEPS if progress is None else bool(progress)


def progress_bar(iterable, enabled: bool, **kwargs):
    """``iterable`` in a tqdm bar when ``enabled``: the notebook widget bar where ``ipywidgets``
    is installed (``tqdm.auto`` fails without it), else the text bar."""
    if not enabled:
        return iterable
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm(iterable, **kwargs)



# Feature visualisation (lesson 11), after Olah et al., "Feature Visualization" (Distill 2017), and lucid.

PARAMETERIZATIONS = ("fourier", "pixels")
_SVD_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_CORRELATION = (_SVD_SQRT / np.linalg.norm(_SVD_SQRT, axis=0).max()).astype(np.float32)
"""lucid's square root of ImageNet's colour covariance, normalised: ``rgb = M @ v`` correlates R, G, B."""


class FeatureVisualization(NamedTuple):
    """What ``visualize_channels`` returns: ``images`` ``uint8 [N, size, size, 3]`` (``i`` for
    ``channels[i]``), ``history`` ``[steps, N]`` (each channel's mean activation on the image each step
    saw), ``channels``, ``settings`` (all: reproducible by seed), the final ``parameters``."""

    images: np.ndarray
    history: np.ndarray
    channels: tuple
    settings: dict
    parameters: np.ndarray


def check_visualize(channels, parameterization: str, preprocessing: str, n_channels=None, layer="") -> tuple:
    """``channels`` as a tuple of ints (below ``n_channels`` when given), or a clear error."""
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"unknown parameterization {parameterization!r}; choose one of {list(PARAMETERIZATIONS)}")
    if len(pixel_scaling(preprocessing).offset) != 3:
        raise ValueError("visualize_channels needs an RGB model; use maximize_activation")
    channels = tuple(np.atleast_1d(channels).tolist())
    if not channels or any(not isinstance(c, int) or not 0 <= c < (n_channels or c + 1) for c in channels):
        has = f"layer {layer!r} has {n_channels} channels (0-{n_channels - 1}); " if n_channels else ""
        raise ValueError(f"{has}channels must be ints from 0, one or more, got {list(channels)}")
    return channels


def spectrum_scale(size: int) -> np.ndarray:
    """float32 ``[size, size // 2 + 1]``: each frequency's weight, ``1 / frequency`` like the
    spectrum of photos, so that a step changes low frequencies most (lucid's ``/ 4`` included)."""
    freqs = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.rfftfreq(size)[None] ** 2)
    return (size / 4 / np.maximum(freqs, 1 / size)).astype(np.float32)


def initial_parameters(parameterization: str, channels, size: int, seed: int) -> np.ndarray:
    """Small float32 starting parameters, seeded per ``(seed, channel)``: ``"pixels"``: ``v [N, 3, size,
    size]`` (noise 0.1: flatter, some channels get no gradient); ``"fourier"``: ``[N, 3, size, size // 2 + 1,
    2]`` (real, imag.), ``v = irfft2(spectrum * spectrum_scale)``. Image: ``255 sigmoid(COLOR_CORRELATION @ v)``."""
    shape, sd = ((3, size, size), 0.1) if parameterization == "pixels" else ((3, size, size // 2 + 1, 2), 0.01)
    return np.stack([np.random.default_rng([seed, c]).normal(0, sd, shape) for c in channels]).astype(np.float32)


def random_transforms(steps: int, seed: int, size: int) -> np.ndarray:
    """``[steps, 4]``, seeded: each step's (down, right) shift in whole pixels (up to ``size // 16``),
    scale (0.9-1.1) and rotation (-10 to 10 degrees), drawn in NumPy for both frameworks."""
    rng, jitter = np.random.default_rng([seed, 2]), max(1, size // 16)
    shifts = rng.integers(-jitter, jitter + 1, size=(steps, 2))  # drawn first: same seed, same shifts
    return np.column_stack([shifts, rng.uniform(0.9, 1.1, steps), rng.uniform(-10, 10, steps)])


def sampling_weights(transform, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear resampling for one ``(down, right, scale, degrees)`` transform about the centre: output
    pixel ``p`` (flat) is ``sum_k weights[k, p] * input[index[k, p]]``, ``[4, size * size]`` each; a
    neighbour outside counts as 0 (mid-grey input). Positive degrees turn the picture anticlockwise."""
    down, right, scale, degrees = (float(t) for t in transform)
    cos, sin, centre = np.cos(np.radians(degrees)), np.sin(np.radians(degrees)), (size - 1) / 2
    y, x = np.meshgrid(np.arange(size) - centre - down, np.arange(size) - centre - right, indexing="ij")
    sy = np.round((cos * y + sin * x) / scale + centre, 9).ravel()  # round: 1 - 1e-17 is 1
    sx = np.round((cos * x - sin * y) / scale + centre, 9).ravel()
    cy, cx = np.floor(sy) + np.array([[0], [0], [1], [1]]), np.floor(sx) + np.array([[0], [1], [0], [1]])
    inside = (cy >= 0) & (cy < size) & (cx >= 0) & (cx < size)
    weights = (1 - np.abs(sy - cy)) * (1 - np.abs(sx - cx)) * inside
    return np.where(inside, cy * size + cx, 0).astype(np.int64), weights.astype(np.float32)


def visualize(step, model, layer: str, channels, progress, **settings) -> FeatureVisualization:
    """The loop of ``visualize_channels``, in NumPy for both frameworks; ``step`` is the framework's
    ``visualization_step``. Each image's gradient is divided by its mean absolute value."""
    steps, size, seed, lr = (settings[k] for k in ("steps", "size", "seed", "lr"))
    check_settings(0, steps, lr, size, 0, 0)
    channels = check_visualize(channels, settings["parameterization"], settings["preprocessing"])
    params = initial_parameters(settings["parameterization"], channels, size, seed)
    moves = random_transforms(steps, seed, size) if settings["transforms"] else [None] * steps
    kwargs = {k: settings[k] for k in ("parameterization", "preprocessing")}
    history = np.zeros((steps, len(channels)), dtype=np.float32)
    for i in progress_bar(range(steps), show_progress(progress, steps), desc=layer, leave=False):
        _, history[i], grad = step(model, layer, channels, params, transform=moves[i], **kwargs)
        params += lr * grad / (np.abs(grad).mean(axis=tuple(range(1, grad.ndim)), keepdims=True) + 1e-12)
    images = pixel_scaling(settings["preprocessing"]).to_pixels(step(model, layer, channels, params, **kwargs)[0])
    return FeatureVisualization(images, history, channels, {"layer": layer, **settings}, params)

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

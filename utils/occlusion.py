"""Occlusion sensitivity (Zeiler and Fergus, 2014), framework-neutral: hide a ``patch`` x ``patch``
square of the input under grey, predict again, record how far the class score fell; slide the
square by ``stride`` pixels over the image. An experiment, not a gradient: one forward pass per
position. ``occlusion`` (:mod:`utils.pytorch.occlusion`, :mod:`utils.tensorflow.occlusion`)
passes its framework's ``predict`` to :func:`run_occlusion`."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from utils.gradcam import check_class_index, upsample_heatmap
from utils.maximize import pixel_scaling, progress_bar

MID_GREY = 127
"""The default patch's pixel value (0-255); Lite0's ``(x - 127) / 128`` makes it exactly 0."""


class OcclusionResult(NamedTuple):
    """``maps [N, rows, cols]``: the class score's drop (unoccluded minus occluded; > 0: the
    region helped) at each patch position; ``pixel_maps [N, H, W]``: each pixel's mean drop over
    the patches covering it (for overlays, :func:`utils.gradcam.heat_in_box`); ``class_indices``
    int64 ``[N]``; ``baseline [N]``: their unoccluded scores. float32 (float64 from a float64 model)."""

    maps: np.ndarray
    pixel_maps: np.ndarray
    class_indices: np.ndarray
    baseline: np.ndarray


def patch_positions(size: int, patch: int, stride: int) -> np.ndarray:
    """Offsets ``0, stride, 2 * stride, ...`` along one axis, and one flush with the far edge
    where they miss it, so that every pixel is covered."""
    starts = list(range(0, size - patch + 1, stride))
    return np.array(starts if starts[-1] == size - patch else [*starts, size - patch])


def pixel_map(maps, size, patch: int, stride: int) -> np.ndarray:
    """Grid maps ``[N, rows, cols]`` -> ``[N, H, W]``: each pixel the mean of the patches that
    covered it (a bilinear resize would misplace them unless ``patch == stride``)."""
    maps = np.asarray(maps)
    total, count = np.zeros((len(maps), *size)), np.zeros(size)
    for i, top in enumerate(patch_positions(size[0], patch, stride)):
        for j, left in enumerate(patch_positions(size[1], patch, stride)):
            total[:, top:top + patch, left:left + patch] += maps[:, i, j, None, None]
            count[top:top + patch, left:left + patch] += 1
    return (total / count).astype(maps.dtype)


def rank_correlation(a, b) -> float:
    """Spearman correlation of two maps ``[h, w]``, both resized bilinearly to the larger height
    and the larger width: do two methods rank the places alike (1), unrelated (0), reversed (-1)?"""
    from scipy.stats import spearmanr

    if np.ndim(a) != 2 or np.ndim(b) != 2:
        raise ValueError(f"rank_correlation compares two maps [h, w], got shapes {np.shape(a)} and {np.shape(b)}")
    shape = tuple(max(m, n) for m, n in zip(np.shape(a), np.shape(b)))
    return float(spearmanr(upsample_heatmap(a, shape).ravel(), upsample_heatmap(b, shape).ravel())[0])


def _scores(logits, classes, score: str) -> np.ndarray:
    logits = np.asarray(logits, np.float64)  # softmax here: the same NumPy for both frameworks
    chosen = logits[np.arange(len(logits)), classes]
    return chosen if score == "logit" else 1 / np.exp(logits - chosen[:, None]).sum(axis=1)


def run_occlusion(predict, images, class_index, patch, stride, fill, score, batch_size, preprocessing, progress):
    """:class:`OcclusionResult` from ``predict`` (a batch -> logits); arguments: ``occlusion``'s."""
    if hasattr(images, "detach"):
        raise TypeError("occlusion expects the NumPy batch [N, H, W, C] of utils.preprocess, got a torch tensor")
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype.kind != "f":
        raise ValueError(f"expected a float batch [N, H, W, C], got {images.dtype} {images.shape}")
    for name, value, most in [("patch", patch, min(images.shape[1:3])), ("stride", stride, None),
                              ("batch_size", batch_size, None)]:
        if not isinstance(value, (int, np.integer)) or value < 1 or (most is not None and value > most):
            upto = "" if most is None else f" to {most}"
            raise ValueError(f"{name} must be an int from 1{upto}, got {value!r}")
    if score not in ("probability", "logit"):
        raise ValueError(f"score must be 'probability' or 'logit', got {score!r}")
    logits = np.asarray(predict(images))
    chosen = check_class_index(class_index, len(images), logits.shape[1])
    classes = logits.argmax(axis=1) if chosen is None else chosen
    baseline = _scores(logits, classes, score)
    fill = pixel_scaling(preprocessing).to_input(MID_GREY) if fill is None else np.asarray(fill)
    tops, lefts = (patch_positions(images.shape[k], patch, stride) for k in (1, 2))
    where = [(top, left) for top in tops for left in lefts]
    runs = [(n, s) for n in range(len(images)) for s in range(0, len(where), batch_size)]
    drops = np.zeros((len(images), len(where)))
    bar = len(images) * len(where) >= 1000 if progress is None else progress  # None: long runs only
    for n, start in progress_bar(runs, bar, desc="occlusion", unit="batch", leave=False):
        batch = np.repeat(images[n:n + 1], len(where[start:start + batch_size]), axis=0)
        for k, (top, left) in enumerate(where[start:start + batch_size]):
            batch[k, top:top + patch, left:left + patch] = fill if fill.ndim < 2 else fill[n]
        drops[n, start:start + len(batch)] = baseline[n] - _scores(predict(batch), classes[n], score)
    dtype = np.float64 if logits.dtype == np.float64 else np.float32
    maps = drops.reshape(len(images), len(tops), len(lefts)).astype(dtype)
    return OcclusionResult(maps, pixel_map(maps, images.shape[1:3], patch, stride),
                           classes.astype(np.int64), baseline.astype(dtype))

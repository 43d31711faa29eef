"""Grad-CAM, the framework-neutral parts: the result type and what you do with a heatmap.

Grad-CAM (Selvaraju et al., 2017) asks *which places in a layer's feature maps raised the score of a
class*. For feature maps ``A_k`` (``k`` = channel) and the class logit ``y_c``:
``weight_k = mean over (i, j) of d y_c / d A_k[i, j]`` (how much channel ``k`` pushes the score
up), then ``heatmap = ReLU(sum_k weight_k * A_k)`` (only evidence *for* the class), at the layer's
resolution. ``gradcam`` of :mod:`utils.pytorch.gradcam` and :mod:`utils.tensorflow.gradcam`
computes it; everything here works on either one's arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from utils.layout import as_numpy


class GradCAMResult(NamedTuple):
    """What ``gradcam`` returns; unpack it as ``heatmaps, classes, logits = gradcam(...)``.

    Attributes:
        heatmaps: float32 ``[N, h, w]``, *raw* maps at the layer's resolution, comparable across
            images and frameworks (:func:`normalize_heatmap`, :func:`upsample_heatmap` for display).
        class_indices: int64 ``[N]``: the class each map explains.
        logits: float32 ``[N, classes]``: the model's output (e.g. for ``imagenet.top_k``).
    """

    heatmaps: np.ndarray
    class_indices: np.ndarray
    logits: np.ndarray


def check_class_index(class_index, batch_size: int, num_classes: int) -> np.ndarray | None:
    """``gradcam``'s ``class_index`` (``None``, one int, or ``N`` ints) checked, as int64 ``[N]``
    (``None`` stays ``None``: the caller takes the top-1 class)."""
    if class_index is None:
        return None
    chosen = np.asarray(class_index)
    if chosen.dtype.kind not in "iu":
        raise TypeError(f"class_index must be None, an int or a sequence of ints, got {class_index!r}")
    if chosen.ndim == 0:
        chosen = np.full(batch_size, chosen)
    if chosen.shape != (batch_size,):
        raise ValueError(f"got {chosen.size} class indices for {batch_size} images")
    bad = chosen[(chosen < 0) | (chosen >= num_classes)]
    if bad.size:
        raise ValueError(f"class index {int(bad[0])} is out of range: the model has {num_classes} classes")
    return chosen.astype(np.int64)


def normalize_heatmap(heatmaps) -> np.ndarray:
    """Divide each heatmap (``[h, w]`` or ``[N, h, w]``) by its maximum, into [0, 1]; an all-zero
    map stays zero, so 0 keeps its meaning: *no evidence for the class here*."""
    heat = as_numpy(heatmaps).astype(np.float32)
    if heat.ndim not in (2, 3):
        raise ValueError(f"expected a heatmap [h, w] or a batch [N, h, w], got shape {heat.shape}")
    batch = heat if heat.ndim == 3 else heat[None]
    peak = batch.reshape(len(batch), -1).max(axis=1)
    scaled = np.where(peak[:, None, None] > 0, batch / np.maximum(peak, 1e-30)[:, None, None], 0.0)
    scaled = np.clip(scaled, 0.0, 1.0).astype(np.float32)
    return scaled if heat.ndim == 3 else scaled[0]


def upsample_heatmap(heatmap, size=(224, 224)) -> np.ndarray:
    """Resize heatmaps ``[h, w]`` or ``[N, h, w]`` bilinearly to ``size`` (``(H, W)`` or one int),
    e.g. a 7 x 7 Grad-CAM map to the 224 x 224 input. Values are not rescaled."""
    from skimage.transform import resize

    heat = as_numpy(heatmap).astype(np.float32)
    if heat.ndim not in (2, 3):
        raise ValueError(f"expected a heatmap [h, w] or a batch [N, h, w], got shape {heat.shape}")
    size = (size, size) if isinstance(size, int) else tuple(size)
    shape = size if heat.ndim == 2 else (len(heat), *size)
    return resize(heat, shape, order=1, mode="edge", anti_aliasing=False).astype(np.float32)


Box = tuple[int, int, int, int]
"""A box ``(top, left, bottom, right)`` in pixels, bottom/right exclusive (NumPy slicing)."""

class BoxHeat(NamedTuple):
    """How a heatmap's heat splits between a box and the rest (see :func:`heat_in_box`)."""

    fraction_inside: float
    """Share of the total heat that lies inside the box (0-1)."""
    mean_inside: float
    mean_outside: float
    box_area_fraction: float
    """Share of the frame the box covers: a heatmap that is the same everywhere has
    ``fraction_inside == box_area_fraction``."""

    @property
    def ratio(self) -> float:
        """Mean heat inside / mean heat outside (``inf`` when there is none outside)."""
        return self.mean_inside / self.mean_outside if self.mean_outside > 0 else float("inf")


def heat_in_box(heatmap, box: Box, size=(224, 224)) -> BoxHeat:
    """How much of one heatmap ``[h, w]``, upsampled to ``size``, falls inside ``box``."""
    heat = as_numpy(heatmap)
    if heat.ndim != 2:
        raise ValueError(f"expected one heatmap [h, w], got shape {heat.shape}")
    heat = upsample_heatmap(np.maximum(heat, 0), size).astype(np.float64)
    top, left, bottom, right = box
    if not (0 <= top < bottom <= heat.shape[0] and 0 <= left < right <= heat.shape[1]):
        raise ValueError(f"box {box} is not inside a {heat.shape[0]} x {heat.shape[1]} frame")
    inside = np.zeros(heat.shape, dtype=bool)
    inside[top:bottom, left:right] = True
    total = heat.sum()
    fraction = float(heat[inside].sum() / total) if total > 0 else 0.0
    outside_mean = float(heat[~inside].mean()) if (~inside).any() else 0.0
    return BoxHeat(fraction, float(heat[inside].mean()), outside_mean, float(inside.mean()))

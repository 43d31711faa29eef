"""ImageNet class names (from torchvision's weights metadata, offline) and top-k predictions, for
both frameworks: logit ``i`` of every ImageNet model of the course is ``IMAGENET_CLASSES[i]``."""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from utils.layout import as_numpy


@functools.cache
def _classes() -> tuple[str, ...]:
    # torchvision is imported here, on first use, not when this framework-neutral module is.
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def __getattr__(name: str):
    """``IMAGENET_CLASSES``: the 1,000 ImageNet class names, e.g. ``IMAGENET_CLASSES[285] ==
    "Egyptian cat"``, loaded on first use (``from utils.imagenet import IMAGENET_CLASSES`` too)."""
    if name == "IMAGENET_CLASSES":
        return _classes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Prediction(NamedTuple):
    """One entry of :func:`top_k`."""

    index: int
    label: str
    probability: float


def softmax(logits) -> np.ndarray:
    """Probabilities from logits along the last axis (computed in float64, numerically stable)."""
    z = as_numpy(logits).astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def top_k(logits, k: int = 5) -> list:
    """The ``k`` most probable classes, best first, as :class:`Prediction` ``(index, label,
    probability)``: a list for logits ``[1000]``, a list of lists for ``[N, 1000]`` (NumPy or a
    tensor of either framework, e.g. from ``predict``)."""
    logits = as_numpy(logits)
    if logits.shape[-1] != len(_classes()) or logits.ndim not in (1, 2):
        raise ValueError(f"expected logits [1000] or [N, 1000], got shape {tuple(logits.shape)}")
    if not 1 <= k <= len(_classes()):
        raise ValueError(f"k must be between 1 and {len(_classes())}, got {k}")
    probs = softmax(logits)
    batch = probs if probs.ndim == 2 else probs[None]
    result = []
    for p in batch:
        best = np.argsort(-p, kind="stable")[:k]
        result.append([Prediction(int(i), _classes()[i], float(p[i])) for i in best])
    return result if probs.ndim == 2 else result[0]

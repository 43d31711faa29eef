"""Receptive fields (which input pixels one output position sees), the neutral arithmetic. Per
axis a window (kernel ``k``, stride ``s``, dilation ``d``, padding ``p``) turns a field of size
``r``, stride ``j``, start ``a`` into ``r + (k - 1) d j``, ``j s``, ``a - p j``; elementwise merges
take the union; global pooling, flatten and dense layers see the whole input."""

from __future__ import annotations

import math
from dataclasses import dataclass

MOVES_PIXELS = {"roll", "flip", "fliplr", "flipud", "rot90", "transpose", "permute", "interpolate",
                "grid_sample", "pixel_shuffle", "UpSampling2D"}  # they move pixels: not elementwise


def pair(value) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"expected one int or (height, width), got {value!r}")
    return pair


@dataclass(frozen=True)
class ReceptiveField:
    """The input window of output position ``(0, 0)``: ``size`` ``(h, w)`` pixels from ``start``
    (negative: it reaches into the padding), and the ``stride`` between the windows of
    neighbouring positions (``(0, 0)``: every position sees the whole input)."""

    size: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    start: tuple[int, int] = (0, 0)

    def box(self, row: int, col: int, image_size=None) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` (bottom, right exclusive) of the pixels position
        ``(row, col)`` sees, clipped to the image when ``image_size`` is given (``(H, W)``, or
        an image's shape ``(H, W, C)``)."""
        top, left = (int(a + i * j) for a, i, j in zip(self.start, (row, col), self.stride))
        bottom, right = top + self.size[0], left + self.size[1]
        if image_size is None:
            return top, left, bottom, right
        height, width = pair(tuple(image_size)[:2])
        return max(top, 0), max(left, 0), min(bottom, height), min(right, width)

    def window(self, kernel, stride=1, dilation=1, padding=0) -> ReceptiveField:
        """After a convolution or pooling window (``padding``: pixels before the first)."""
        if self.stride == (0, 0):
            return self
        k, s, d, p = pair(kernel), pair(stride), pair(dilation), pair(padding)
        return ReceptiveField(
            tuple(r + (kk - 1) * dd * j for r, kk, dd, j in zip(self.size, k, d, self.stride)),
            tuple(j * ss for j, ss in zip(self.stride, s)),
            tuple(a - pp * j for a, pp, j in zip(self.start, p, self.stride)))


def union(fields) -> ReceptiveField:
    fields = list(fields)
    if any(f.stride == (0, 0) for f in fields):
        return next(f for f in fields if f.stride == (0, 0))
    if len({f.stride for f in fields}) > 1:
        raise ValueError(f"cannot merge maps of different strides {[f.stride for f in fields]}")
    start = [min(f.start[i] for f in fields) for i in (0, 1)]
    end = [max(f.start[i] + f.size[i] for f in fields) for i in (0, 1)]
    return ReceptiveField((end[0] - start[0], end[1] - start[1]), fields[0].stride, tuple(start))


def same_padding(size, kernel, stride=1, dilation=1) -> tuple[int, int]:
    """Pixels TensorFlow's ``padding="same"`` adds before the first, per axis, for a map of
    ``size`` ``(h, w)``: ``ceil(n / s)`` outputs, the odd padding pixel at the end."""
    return tuple(max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0) // 2 for n, k, s, d
                 in zip(pair(size), pair(kernel), pair(stride), pair(dilation)))


def unknown_operation(op: str, before, after) -> NotImplementedError:
    return NotImplementedError(
        f"receptive_field does not know how {op!r} moves pixels (spatial size {before} -> "
        f"{after}); it follows convolutions, pooling, padding, elementwise operations, global "
        "pooling, flatten and dense layers")

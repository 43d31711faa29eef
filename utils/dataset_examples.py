"""Dataset examples, the neutral parts: the image patches over a stream of images that excite each
channel of a layer most. Each batch is reduced at once to per-image maxima and where they are (a
:class:`~utils.stats.ChannelStats` with ``top_k`` keeps each channel's best ``k`` images), so
memory is ``O(k x channels)`` however many images stream by. Patches are not stored: ``patch``
re-reads the image from its source (a sequence, e.g. :class:`PhotoCrops`) and cuts the box."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from utils.images import SAMPLE_IMAGES, check_rgb, load_sample
from utils.maximize import progress_bar
from utils.preprocess import resize_and_crop
from utils.receptive_field import ReceptiveField
from utils.stats import ChannelStats


class PhotoCrops(Sequence):
    """``count`` crops ``uint8 [size, size, 3]`` of the offline photos, made on demand: crop ``i``
    is a square of one of ``scales`` times the shorter side of photo ``names[i % len(names)]``,
    at a place drawn from ``seed`` and ``i``."""

    def __init__(self, count=256, size=96, names=SAMPLE_IMAGES, scales=(0.7, 0.45, 0.3), seed=0):
        self.count, self.size, self.names, self.scales, self.seed = count, size, names, scales, seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> np.ndarray:
        if not -self.count <= i < self.count:
            raise IndexError(f"crop {i} out of range: {self.count} crops")
        i, photo = i % self.count, load_sample(self.names[i % self.count % len(self.names)])
        rng = np.random.default_rng([self.seed, i])
        side = int(min(photo.shape[:2]) * rng.choice(self.scales))
        top, left = (int(rng.integers(0, n - side + 1)) for n in photo.shape[:2])
        return resize_and_crop(photo[top:top + side, left:left + side], self.size)


@dataclass
class DatasetExamples:
    """What ``dataset_examples`` returns: ``scores`` (a channel's largest value in the image),
    ``indices`` (of the images), ``rows``, ``cols`` (the peak in the layer's map), each
    ``[len(channels), k]`` best first; ``stats`` of every channel; the layer's receptive ``field``
    for ``image_size``; the ``images`` (``None`` for a one-pass iterator: no patches)."""

    layer: str
    framework: str
    channels: list
    scores: np.ndarray
    indices: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    stats: ChannelStats
    field: ReceptiveField
    image_size: tuple
    images: Sequence | None

    def box(self, channel: int, rank: int = 0) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` of the pixels example ``rank`` of ``channel`` saw."""
        c = self.channels.index(channel)
        return self.field.box(self.rows[c, rank], self.cols[c, rank], self.image_size)

    def patch(self, channel: int, rank: int = 0) -> np.ndarray:
        """Those pixels, cut from the image (re-read from the source)."""
        if self.images is None:
            raise ValueError("the images were a one-pass iterator: pass a sequence (a list, an "
                             "array, PhotoCrops) to dataset_examples to cut patches")
        top, left, bottom, right = self.box(channel, rank)
        return self.images[int(self.indices[self.channels.index(channel), rank])][top:bottom, left:right]


def _batches(images, batch_size: int):
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    batch = []
    for image in images:
        batch.append(check_rgb(image, name="dataset_examples expects uint8 RGB images; image"))
        if batch[-1].shape != batch[0].shape:
            raise ValueError(f"all images must have one size: {batch[-1].shape} after {batch[0].shape}")
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def collect(images, layer, framework, run, field_of, channels, k, batch_size, progress):
    """Stream ``images`` through ``run`` (uint8 ``[B, H, W, 3]`` -> maps ``[B, C, h, w]``)."""
    stats, where, seen, old = ChannelStats(top_k=k), None, 0, None  # old: last batch's top indices
    for batch in progress_bar(_batches(images, batch_size), progress, desc=f"examples {layer}"):
        maps = np.asarray(run(batch))
        if maps.ndim != 4:
            raise ValueError(f"layer {layer!r} gives shape {maps.shape}; expected maps [N, C, h, w]")
        flat = maps.reshape(*maps.shape[:2], -1)
        best = flat.argmax(-1)  # [B, C]: where each image peaks, per channel
        stats.update_reduced(flat.mean(-1, dtype=np.float64),
                             np.take_along_axis(flat, best[..., None], -1)[..., 0])
        idx = stats.top_images()[0]  # [C, <= k] image indices, best first
        # images of this batch (idx >= seen) bring their peaks; the others' are taken below
        where_new = best[np.maximum(idx - seen, 0), np.arange(len(idx))[:, None]]
        if old is not None:  # the images that stayed in a channel's top k keep their peaks
            kept = np.take_along_axis(where, (idx[:, :, None] == old[:, None, :]).argmax(-1), 1)
            where_new = np.where(idx >= seen, where_new, kept)
        where, seen, old = where_new, seen + len(batch), idx
    if where is None:
        raise ValueError("no images to scan: the input was empty")
    chosen = list(range(len(where))) if channels is None else [int(c) for c in channels]
    if any(not 0 <= c < len(where) for c in chosen):
        raise IndexError(f"channels {chosen} out of range: the layer has {len(where)}")
    idx, scores = stats.top_images()
    rows, cols = np.divmod(where[chosen], maps.shape[-1])
    return DatasetExamples(layer, framework, chosen, scores[chosen], idx[chosen], rows, cols, stats,
                           field_of(batch.shape[1:3]), tuple(batch.shape[1:3]),
                           images if isinstance(images, (Sequence, np.ndarray)) else None)

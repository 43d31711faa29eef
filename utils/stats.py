"""Statistics of a layer's channels over a data set, computed batch by batch (framework-neutral
NumPy; memory ``O(channels)`` however many images): :class:`ChannelStats` (streamed per-channel
mean, share of samples a channel fires on, maximum, optionally the top samples),
:func:`dead_filters` and :func:`strongest_filters`. The ``scan_dead_filters`` of both
frameworks feed it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.layout import as_numpy, guess_layout

__all__ = ["ChannelStats", "DeadFilterScan", "TopK", "dead_filters", "strongest_filters"]

_LAYOUTS = ("channels_first", "channels_last")


def _check_layout(layout: str) -> str:
    if layout not in _LAYOUTS:
        raise ValueError(
            f"layout must be 'channels_first' (PyTorch [N, C, H, W]) or 'channels_last' "
            f"(Keras [N, H, W, C]), got {layout!r}"
        )
    return layout


def per_sample_reductions(maps, layout: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample, per-channel spatial ``(means, maxima)``, two ``[N, C]`` arrays, of maps
    ``[N, C, H, W]`` / ``[N, H, W, C]`` (``layout``; ``None`` guesses) or ``[N, C]`` (as is)."""
    maps = as_numpy(maps)
    if maps.ndim == 2:
        values = maps.astype(np.float64, copy=False)
        return values, values
    if maps.ndim != 4:
        raise ValueError(
            f"expected a batch of maps [N, C, H, W] / [N, H, W, C] (or [N, C]), got shape {maps.shape}"
        )
    layout = _check_layout(layout if layout is not None else guess_layout(maps))
    axes = (2, 3) if layout == "channels_first" else (1, 2)
    return maps.mean(axis=axes, dtype=np.float64), maps.max(axis=axes).astype(np.float64)


class TopK:
    """The ``k`` largest scores seen so far and their global sample indices, per row.

    ``update(scores)`` takes ``[N]`` (one channel) or ``[N, C]`` (one column per channel) for the
    next ``N`` samples; memory is ``O(k * C)``. Ties keep the earlier sample.
    """

    def __init__(self, k: int, channels: int | None = None):
        if int(k) < 1:
            raise ValueError(f"k must be at least 1, got {k!r}")
        self.k = int(k)
        self.seen = 0
        self._scores: np.ndarray | None = None  # [C, <=k]
        self._indices: np.ndarray | None = None
        self._single = None
        if channels is not None:
            self._allocate(int(channels))

    def _allocate(self, channels: int) -> None:
        self._scores = np.empty((channels, 0), dtype=np.float64)
        self._indices = np.empty((channels, 0), dtype=np.int64)

    def update(self, scores) -> None:
        scores = np.asarray(as_numpy(scores), dtype=np.float64)
        single = scores.ndim == 1
        if self._single is None:
            self._single = single
        elif self._single != single:
            raise ValueError("TopK was fed [N] scores before and [N, C] now (or the reverse)")
        if single:
            scores = scores[:, None]
        if scores.ndim != 2:
            raise ValueError(f"expected scores [N] or [N, C], got shape {scores.shape}")
        if self._scores is None:
            self._allocate(scores.shape[1])
        if scores.shape[1] != self._scores.shape[0]:
            raise ValueError(f"expected {self._scores.shape[0]} channels, got {scores.shape[1]}")
        n = scores.shape[0]
        new_idx = np.broadcast_to(np.arange(self.seen, self.seen + n), (scores.shape[1], n))
        all_scores = np.concatenate([self._scores, scores.T], axis=1)
        all_idx = np.concatenate([self._indices, new_idx], axis=1)
        # stable sort on -score keeps earlier samples first among ties
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, : self.k]
        self._scores = np.take_along_axis(all_scores, order, axis=1)
        self._indices = np.take_along_axis(all_idx, order, axis=1)
        self.seen += n

    def result(self, channel: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, scores)``, best first: ``[k]`` for one channel (or a ``[N]``-fed TopK),
        ``[C, k]`` for all channels."""
        if self._scores is None:
            raise ValueError("TopK has not seen any scores yet")
        if channel is None and self._single:
            channel = 0
        if channel is None:
            return self._indices.copy(), self._scores.copy()
        channels = self._scores.shape[0]
        if not -channels <= channel < channels:
            raise IndexError(f"channel {channel} out of range: {channels} channels (0..{channels - 1})")
        return self._indices[channel].copy(), self._scores[channel].copy()


class ChannelStats:
    """Streamed per-channel statistics of a layer's activations over many samples, fed with
    :meth:`update` (maps) or :meth:`update_reduced` (per-sample spatial means and maxima). A
    channel *fires* on a sample when its largest value there is above ``fire_threshold``.

    Attributes (NumPy ``[C]`` arrays after the first batch):
        count: samples seen;  ``mean``: average activation (over samples and positions);
        ``std``: spread of the per-sample spatial mean;  ``fire_fraction``: share of samples on
        which the channel fires;  ``max``: largest activation seen.
    """

    def __init__(self, num_channels: int | None = None, *, fire_threshold: float = 0.0,
                 top_k: int = 0):
        self.fire_threshold = float(fire_threshold)
        self.count = 0
        self.num_channels = None
        self._top = TopK(top_k) if top_k else None
        self.top_k = int(top_k)
        if num_channels is not None:
            self._allocate(int(num_channels))

    def _allocate(self, channels: int) -> None:
        self.num_channels = channels
        self._sum = np.zeros(channels, dtype=np.float64)
        self._sum_sq = np.zeros(channels, dtype=np.float64)
        self._fires = np.zeros(channels, dtype=np.int64)
        self._max = np.full(channels, -np.inf, dtype=np.float64)

    def update(self, maps, *, layout: str | None = None) -> ChannelStats:
        """Add one batch of maps ``[N, C, H, W]`` / ``[N, H, W, C]`` (or ``[N, C]``)."""
        means, maxes = per_sample_reductions(maps, layout)
        return self.update_reduced(means, maxes)

    def update_reduced(self, means, maxes) -> ChannelStats:
        """Add one batch given per-sample spatial means and maxima, both ``[N, C]``."""
        means = np.asarray(as_numpy(means), dtype=np.float64)
        maxes = np.asarray(as_numpy(maxes), dtype=np.float64)
        if means.ndim != 2 or means.shape != maxes.shape:
            raise ValueError(
                f"expected means and maxes of the same shape [N, C], got {means.shape} and {maxes.shape}"
            )
        if self.num_channels is None:
            self._allocate(means.shape[1])
        if means.shape[1] != self.num_channels:
            raise ValueError(
                f"this ChannelStats has {self.num_channels} channels, the batch has {means.shape[1]}"
            )
        self._sum += means.sum(axis=0)
        self._sum_sq += np.square(means).sum(axis=0)
        self._fires += (maxes > self.fire_threshold).sum(axis=0)
        if len(maxes):
            np.maximum(self._max, maxes.max(axis=0), out=self._max)
        if self._top is not None:
            self._top.update(maxes)
        self.count += means.shape[0]
        return self

    def _require_data(self) -> None:
        if not self.count:
            raise ValueError("ChannelStats has not seen any samples yet: call update() first")

    @property
    def mean(self) -> np.ndarray:
        self._require_data()
        return self._sum / self.count

    @property
    def std(self) -> np.ndarray:
        self._require_data()
        return np.sqrt(np.maximum(self._sum_sq / self.count - np.square(self.mean), 0.0))

    @property
    def fire_fraction(self) -> np.ndarray:
        self._require_data()
        return self._fires / self.count

    @property
    def max(self) -> np.ndarray:
        self._require_data()
        return self._max.copy()

    def top_images(self, channel: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices (into the scanned images) and scores (spatial max) of the ``top_k`` samples
        that excite ``channel`` most, best first (``None``: every channel, ``[C, <= k]``)."""
        if self._top is None:
            raise ValueError("create ChannelStats(..., top_k=k) to keep the top images per channel")
        self._require_data()
        return self._top.result(channel)


def dead_filters(stats: ChannelStats, *, fire_threshold: float | None = None,
                 min_fraction: float = 0.01) -> list[int]:
    """Channels that fire on at most ``min_fraction`` of the samples. ``fire_threshold`` was
    fixed when the statistics were collected: passing another value raises ``ValueError``."""
    if not isinstance(stats, ChannelStats):
        raise TypeError(f"expected a ChannelStats, got {type(stats).__name__}")
    if fire_threshold is not None and float(fire_threshold) != stats.fire_threshold:
        raise ValueError(
            f"these statistics count firing above {stats.fire_threshold}, not {fire_threshold}; "
            f"collect them again with ChannelStats(fire_threshold={fire_threshold}) "
            f"(scan_dead_filters(..., fire_threshold={fire_threshold}))"
        )
    if not 0.0 <= float(min_fraction) < 1.0:
        raise ValueError(f"min_fraction must be in [0, 1), got {min_fraction!r}")
    return [int(c) for c in np.flatnonzero(stats.fire_fraction <= float(min_fraction))]


@dataclass
class DeadFilterScan:
    """What ``scan_dead_filters`` found for one layer (both frameworks return this)."""

    layer: str
    framework: str
    stats: ChannelStats
    dead: list[int]
    fire_threshold: float
    min_fraction: float

    @property
    def num_images(self) -> int:
        return self.stats.count

    @property
    def num_channels(self) -> int:
        return int(self.stats.num_channels or 0)

    @property
    def dead_fraction(self) -> float:
        return len(self.dead) / self.num_channels if self.num_channels else 0.0

    def summary(self) -> str:
        """A few readable lines: counts, the dead channels, the least active live ones."""
        s = self.stats
        head = (f"{self.framework} layer {self.layer!r}: {len(self.dead)} of {self.num_channels} "
                f"channels dead over {self.num_images} images "
                f"(fire = max > {self.fire_threshold:g} on more than {self.min_fraction:.0%} of images)")
        lines = [head, f"  dead channels: {self.dead if self.dead else 'none'}"]
        dead = set(self.dead)
        alive = [c for c in np.argsort(s.fire_fraction, kind="stable")
                 if c not in dead and s.fire_fraction[c] < 1.0]
        if alive:
            weakest = ", ".join(f"{c} ({s.fire_fraction[c]:.0%})" for c in alive[:3])
            lines.append(f"  least active live channels (share of images they fire on): {weakest}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"DeadFilterScan(layer={self.layer!r}, framework={self.framework!r}, "
                f"images={self.num_images}, channels={self.num_channels}, dead={self.dead})")


def strongest_filters(maps, layout: str | None = None, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` channels with the largest mean activation, ``[(channel, mean), ...]``, over
    one image's maps or a batch (``layout`` as in :func:`per_sample_reductions`)."""
    maps = as_numpy(maps)
    if maps.ndim == 3:
        maps = maps[None]
    if maps.ndim != 4:
        raise ValueError(f"expected maps [C, H, W], [H, W, C] or a batch of them, got shape {maps.shape}")
    if int(k) < 1:
        raise ValueError(f"k must be at least 1, got {k!r}")
    layout = _check_layout(layout if layout is not None else guess_layout(maps))
    axes = (0, 2, 3) if layout == "channels_first" else (0, 1, 2)
    means = maps.mean(axis=axes, dtype=np.float64)
    order = np.argsort(-means, kind="stable")[: int(k)]
    return [(int(c), float(means[c])) for c in order]


def iter_batches(images, batch_size: int, convert):
    """``convert(batch)`` for consecutive batches of ``images`` (an array with 4 axes, or 3 for
    one image), one at a time, or for each batch of an iterable such as a ``DataLoader`` (of
    ``(x, y)`` pairs, ``x``)."""
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
    if hasattr(images, "ndim") and hasattr(images, "shape"):
        if images.ndim not in (3, 4):
            raise ValueError(
                f"expected a batch of images with 4 axes (or one image with 3), got shape "
                f"{tuple(images.shape)}"
            )
        if images.ndim == 3:
            images = images[None]
        for start in range(0, int(images.shape[0]), int(batch_size)):
            yield convert(images[start:start + int(batch_size)])
        return
    for batch in images:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        yield convert(batch)


def count_batches(images, batch_size: int) -> int | None:
    """How many batches :func:`iter_batches` yields, for a progress bar (``None``: unknown)."""
    if hasattr(images, "ndim") and hasattr(images, "shape"):
        n = 1 if images.ndim == 3 else int(images.shape[0])
        return -(-n // int(batch_size))
    try:
        n = len(images)
    except TypeError:
        return None
    return None if n < 0 else n

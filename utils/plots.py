"""Figures of feature maps, filters and heatmaps, for arrays from either framework.

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``: a
notebook displays the returned figure, a script can ``fig.savefig(...)``.

Layouts are given explicitly or guessed: activations are ``[N, C, H, W]`` in PyTorch and
``[N, H, W, C]`` in Keras (pass ``layout=fw.LAYOUT`` from ``utils.pytorch``/``utils.tensorflow``);
filters are expected in the course's canonical layout ``[out, in, kh, kw]``, which both
frameworks' ``conv_filters`` return (raw Keras kernels ``[kh, kw, in, out]``: ``layout="keras"``).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from utils.gradcam import normalize_heatmap, upsample_heatmap
from utils.layout import as_numpy, guess_layout, keras_kernel_to_torch

_LAYOUTS = ("channels_first", "channels_last")
EMPTY_FILTER_FRACTION = 1e-3
"""A filter whose largest weight is below this fraction of the layer's largest is drawn as empty."""
PAGE_WIDTH_PX = 660
"""Width a figure gets on the course website (inside a framework tab, desktop layout): a wider
figure is shown scaled down to it, so its text is drawn larger to compensate."""
MIN_TEXT_PT = 9.0
"""Smallest text size, in points as a reader sees it on the page, that the helpers draw."""


def legible(fig, *, min_pt: float = MIN_TEXT_PT, page_width_px: int = PAGE_WIDTH_PX):
    """Enlarge every text of ``fig`` that would read smaller than ``min_pt`` once the figure is
    scaled to a page ``page_width_px`` wide (a 12-inch grid is shown at about 60%); returns ``fig``.

    A point is 1/72 inch in the figure and 4/3 CSS pixels on a page; at ``fig.dpi`` pixels per
    inch a ``size``-point text reads as ``size * dpi / 96 * scale`` points.
    """
    from matplotlib.text import Text

    width_px = fig.get_figwidth() * fig.dpi * 1.05  # a tight bounding box may add a few percent
    scale = min(1.0, page_width_px / width_px)
    needed = min_pt * 96 / fig.dpi / scale
    texts = fig.findobj(Text)
    for ax in fig.axes:  # tick labels are made on demand: ask for them (matplotlib copies
        if ax.axison:    # the first tick's size to the ticks it adds when drawing)
            texts += ax.get_xticklabels() + ax.get_yticklabels()
    for text in texts:
        if text.get_text() and text.get_fontsize() < needed:
            text.set_fontsize(needed)
    return fig


def _maps_chw(maps, layout: str | None, index: int) -> np.ndarray:
    """One sample's maps as ``[C, H, W]`` from a batch or a single sample in either layout."""
    maps = as_numpy(maps).astype(np.float32, copy=False)
    if maps.ndim not in (3, 4):
        raise ValueError(
            f"expected feature maps [N, C, H, W] / [N, H, W, C] or one sample [C, H, W] / [H, W, C], "
            f"got shape {maps.shape}"
        )
    if layout is None:
        layout = guess_layout(maps)
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS} or None (guess), got {layout!r}")
    if maps.ndim == 4:
        if not -maps.shape[0] <= index < maps.shape[0]:
            raise IndexError(f"index {index} out of range for a batch of {maps.shape[0]}")
        maps = maps[index]
    return maps if layout == "channels_first" else np.transpose(maps, (2, 0, 1))


def _grid(n: int, ncols: int, cell: float = 1.5, extra_height: float = 0.0):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(cell * ncols, cell * nrows + extra_height), squeeze=False
    )
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes.flat


def _select(count: int, channels, max_items: int) -> list[int]:
    if channels is None:
        return list(range(min(count, max_items)))
    chosen = [int(c) for c in channels]
    bad = [c for c in chosen if not 0 <= c < count]
    if bad:
        raise IndexError(f"channel(s) {bad} out of range: this layer has {count} (0..{count - 1})")
    return chosen


def plot_feature_maps(
    maps,
    *,
    layout: str | None = None,
    index: int = 0,
    channels=None,
    max_maps: int = 32,
    ncols: int = 8,
    shared_scale: bool = False,
    cmap: str = "viridis",
    title: str | None = None,
):
    """A grid of the feature maps of one image, one panel per channel.

    Args:
        maps: activations ``[N, C, H, W]``/``[N, H, W, C]`` (sample ``index`` is shown) or one
            sample ``[C, H, W]``/``[H, W, C]``; NumPy, torch or TensorFlow.
        layout: ``"channels_first"`` (PyTorch), ``"channels_last"`` (Keras) or ``None`` to guess.
        channels: which channels to show (default: the first ``max_maps``).
        shared_scale: one colour scale for all panels (to compare strengths) instead of one per
            panel (to see each map's pattern).
    """
    chw = _maps_chw(maps, layout, index)
    chosen = _select(chw.shape[0], channels, max_maps)
    vmin, vmax = (float(chw[chosen].min()), float(chw[chosen].max())) if shared_scale else (None, None)
    fig, axes = _grid(len(chosen), ncols, extra_height=0.5 if title else 0.0)
    for ax, c in zip(axes, chosen):
        ax.imshow(chw[c], cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(f"{c}", fontsize=8)
    if title:
        fig.suptitle(title)
    legible(fig)
    fig.tight_layout()
    return fig


def compare_feature_maps(
    maps_by_label: dict,
    channels,
    *,
    layout: str | None = None,
    index: int = 0,
    cmap: str = "viridis",
    title: str | None = None,
):
    """Rows of the same channels for several inputs or frameworks, on one shared colour scale.

    ``maps_by_label`` maps a row label ("cat", "PyTorch", ...) to activations as accepted by
    :func:`plot_feature_maps`; each row may have its own layout when ``layout`` is ``None``.
    A shared scale makes "this filter fires more on the motorcycle" visible at a glance.
    """
    if not maps_by_label:
        raise ValueError("maps_by_label is empty; expected {label: feature maps}")
    rows = {label: _maps_chw(m, layout, index) for label, m in maps_by_label.items()}
    first = next(iter(rows.values()))
    chosen = _select(first.shape[0], channels, len(channels))
    vmin = min(float(r[chosen].min()) for r in rows.values())
    vmax = max(float(r[chosen].max()) for r in rows.values())
    fig, axes = plt.subplots(
        len(rows), len(chosen), figsize=(1.6 * len(chosen) + 1, 1.6 * len(rows) + 0.5), squeeze=False
    )
    for r, (label, chw) in enumerate(rows.items()):
        for c, channel in enumerate(chosen):
            ax = axes[r, c]
            ax.imshow(chw[channel], cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"channel {channel}", fontsize=8)
            if c == 0:
                ax.set_ylabel(label)
    if title:
        fig.suptitle(title)
    legible(fig)
    fig.tight_layout()
    return fig


def _filters_oihw(filters, layout: str) -> np.ndarray:
    w = as_numpy(filters).astype(np.float32, copy=False)
    if w.ndim != 4:
        raise ValueError(f"expected conv filters [out, in, kh, kw], got shape {w.shape}")
    if layout == "keras":
        return keras_kernel_to_torch(w)
    if layout != "torch":
        raise ValueError(f"layout must be 'torch' ([out, in, kh, kw]) or 'keras' ([kh, kw, in, out]), got {layout!r}")
    return w


def plot_filters(
    filters,
    *,
    mode: str = "rgb",
    channel: int = 0,
    layout: str = "torch",
    max_filters: int = 32,
    ncols: int = 8,
    title: str | None = None,
):
    """A grid of conv filters.

    Args:
        filters: ``[out, in, kh, kw]`` (``layout="torch"``, what ``conv_filters`` returns in both
            frameworks) or a raw Keras kernel ``[kh, kw, in, out]`` (``layout="keras"``).
        mode: ``"rgb"`` shows each filter of a first layer (3 input channels) as a colour image,
            each filter scaled to [0, 1] on its own, so colour says which input colours it weighs
            (a filter with all weights below 1e-3 of the layer's largest is drawn gray, "(empty)");
            ``"channel"`` shows input channel ``channel`` of every filter in gray, on one
            symmetric scale around zero so positive and negative weights compare across filters.
    """
    w = _filters_oihw(filters, layout)
    n = min(w.shape[0], max_filters)
    modes = ("rgb", "channel")
    if mode not in modes:
        raise ValueError(f"mode must be one of {modes}, got {mode!r}")
    fig, axes = _grid(n, ncols, cell=1.2, extra_height=0.4 if title else 0.0)
    if mode == "rgb":
        if w.shape[1] != 3:
            raise ValueError(
                f"mode='rgb' needs filters with 3 input channels (a first conv layer), got {w.shape[1]}; "
                "use mode='channel'"
            )
        # Per-filter scaling would blow a (near-)empty filter's rounding noise up into a colourful
        # pattern; such filters are drawn gray and labelled instead.
        empty = np.abs(w[:n]).reshape(n, -1).max(axis=1) < EMPTY_FILTER_FRACTION * np.abs(w).max()
        for i, ax in zip(range(n), axes):
            f = np.transpose(w[i], (1, 2, 0))
            f = np.full_like(f, 0.5) if empty[i] else (f - f.min()) / (f.max() - f.min() + 1e-12)
            ax.imshow(f, interpolation="nearest")
            ax.set_title(f"{i} (empty)" if empty[i] else f"{i}", fontsize=8)
    else:
        if not 0 <= channel < w.shape[1]:
            raise IndexError(f"channel {channel} out of range: the filters have {w.shape[1]} input channels")
        limit = float(np.abs(w[:n, channel]).max()) or 1.0
        for i, ax in zip(range(n), axes):
            ax.imshow(w[i, channel], cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_title(f"{i}", fontsize=8)
    if title:
        fig.suptitle(title)
    legible(fig)
    fig.tight_layout()
    return fig


def plot_images(images, titles=None, *, ncols: int = 4, cell: float = 2.5, title: str | None = None):
    """A row (or grid) of RGB images with optional panel titles and an optional overall ``title``
    (above the panel titles, never over them)."""
    images = [as_numpy(i) for i in images]
    fig, axes = _grid(len(images), ncols, cell=cell, extra_height=0.5 if title else 0.0)
    for k, (ax, img) in enumerate(zip(axes, images)):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        if titles is not None:
            ax.set_title(str(titles[k]), fontsize=9)
    if title:
        fig.suptitle(title)
    legible(fig)
    fig.tight_layout()
    return fig


def overlay_heatmap(image, heatmap, *, alpha: float = 0.45, cmap: str = "jet", title: str | None = None):
    """The image, the heatmap, and the heatmap laid over the image (three panels).

    ``heatmap`` is 2-D at any resolution (a Grad-CAM map is 7x7 for a 224x224 input) and
    non-negative, as Grad-CAM's are. It is shown exactly as :mod:`utils.gradcam` prepares it:
    enlarged bilinearly to the image (:func:`~utils.gradcam.upsample_heatmap`) and divided by its
    peak (:func:`~utils.gradcam.normalize_heatmap`), so 0 keeps its meaning, *no evidence here*;
    negative values are drawn as 0.
    """
    image = as_numpy(image)
    heat = as_numpy(heatmap)
    if heat.ndim != 2:
        raise ValueError(f"expected a 2-D heatmap [h, w], got shape {heat.shape}")
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
    heat = normalize_heatmap(upsample_heatmap(heat, image.shape[:2]))
    shown = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else max(float(image.max()), 1.0))
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    axes[0].imshow(shown)
    axes[0].set_title("image")
    axes[1].imshow(heat, cmap=cmap, vmin=0, vmax=1)
    axes[1].set_title("heatmap")
    axes[2].imshow(shown)
    axes[2].imshow(heat, cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    axes[2].set_title("overlay")
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    legible(fig)
    fig.tight_layout()
    return fig


def plot_dataset_examples(result, channels=None, *, k: int | None = None, cell: float = 1.2):
    """The top patches of ``dataset_examples``: a row per channel (default: the first four),
    best first, each titled with its score (the channel's largest value in that image)."""
    channels = list(result.channels[:4] if channels is None else channels)
    k = min(k or result.scores.shape[1], result.scores.shape[1])
    fig, axes = plt.subplots(len(channels), k, squeeze=False,
                             figsize=(cell * k + 0.6, (cell + 0.45) * len(channels) + 0.5))
    for row, channel in zip(axes, channels):
        for rank, ax in enumerate(row):
            ax.imshow(result.patch(channel, rank))
            ax.set_title(f"{result.scores[result.channels.index(channel), rank]:.2f}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"ch. {channel}", fontsize=9)
    fig.suptitle(f"{result.layer} ({result.framework}): top patches per channel")
    legible(fig)
    fig.tight_layout()
    return fig

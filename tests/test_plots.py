"""Plot helpers accept either framework's layout and return figures showing the right data."""

import matplotlib
import numpy as np
import pytest

from utils import plots
from utils.images import load_sample
from utils.layout import to_channels_last, torch_kernel_to_keras

matplotlib.use("Agg")
rng = np.random.default_rng(0)


def _images_in(fig):
    return [ax.get_images()[0].get_array() for ax in fig.axes if ax.get_images()]


def test_feature_maps_same_figure_for_both_layouts():
    maps = rng.random((2, 12, 10, 10), dtype=np.float32)
    first = plots.plot_feature_maps(maps, index=1, layout="channels_first")
    last = plots.plot_feature_maps(to_channels_last(maps), index=1)  # layout guessed
    a, b = _images_in(first), _images_in(last)
    assert len(a) == len(b) == 12
    np.testing.assert_array_equal(a[5], maps[1, 5])
    np.testing.assert_array_equal(b[5], maps[1, 5])


def test_feature_maps_channel_selection_and_errors():
    maps = rng.random((1, 40, 6, 6), dtype=np.float32)
    assert len(_images_in(plots.plot_feature_maps(maps))) == 32  # default cap
    fig = plots.plot_feature_maps(maps, channels=[3, 7], shared_scale=True)
    assert [ax.get_title() for ax in fig.axes if ax.get_images()] == ["3", "7"]
    with pytest.raises(IndexError, match="0..39"):
        plots.plot_feature_maps(maps, channels=[40])
    with pytest.raises(ValueError, match="layout"):
        plots.plot_feature_maps(maps, layout="NCHW")


def test_filters_rgb_and_channel_modes_accept_both_layouts():
    w = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    rgb = _images_in(plots.plot_filters(w))
    assert len(rgb) == 16 and rgb[0].shape == (3, 3, 3)
    assert rgb[0].min() >= 0.0 and rgb[0].max() <= 1.0
    gray_torch = _images_in(plots.plot_filters(w, mode="channel", channel=2))
    gray_keras = _images_in(plots.plot_filters(torch_kernel_to_keras(w), mode="channel", channel=2, layout="keras"))
    np.testing.assert_array_equal(gray_torch[4], w[4, 2])
    np.testing.assert_array_equal(gray_keras[4], w[4, 2])
    w[5] = 1e-9  # an empty filter is labelled, not stretched into a pattern
    fig = plots.plot_filters(w)
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles[5] == "5 (empty)" and titles[4] == "4"
    assert np.ptp(_images_in(fig)[5]) == 0
    with pytest.raises(ValueError, match="3 input channels"):
        plots.plot_filters(rng.standard_normal((4, 8, 3, 3)))


def test_compare_and_overlay():
    a = rng.random((1, 4, 5, 5), dtype=np.float32)
    fig = plots.compare_feature_maps({"PyTorch": a, "Keras": to_channels_last(a)}, channels=[0, 2])
    images = _images_in(fig)
    assert len(images) == 4
    np.testing.assert_array_equal(images[1], images[3])  # same channel, both frameworks
    cat = load_sample("cat")
    fig = plots.overlay_heatmap(cat, rng.random((7, 7)))
    assert _images_in(fig)[1].shape == cat.shape[:2]
    with pytest.raises(ValueError, match="2-D heatmap"):
        plots.overlay_heatmap(cat, rng.random((1, 7, 7)))

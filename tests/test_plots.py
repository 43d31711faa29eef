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


def test_compare_feature_maps_shows_each_rows_own_channels():
    a = rng.random((2, 4, 5, 5), dtype=np.float32)
    b = rng.random((2, 5, 5, 4), dtype=np.float32) * 3.0  # other data, Keras layout, larger scale
    fig = plots.compare_feature_maps({"PyTorch": a, "Keras": b}, channels=[3, 1], index=1)
    panels = [ax for ax in fig.axes if ax.get_images()]
    images = [ax.get_images()[0] for ax in panels]
    assert len(images) == 4
    expected = [a[1, 3], a[1, 1], b[1, :, :, 3], b[1, :, :, 1]]  # row by row, channels in order
    for shown, want in zip(images, expected):
        np.testing.assert_array_equal(shown.get_array(), want)
    # one shared colour scale over every panel, so strengths compare across rows
    scale = (min(float(a[1, [3, 1]].min()), float(b[1, :, :, [3, 1]].min())),
             max(float(a[1, [3, 1]].max()), float(b[1, :, :, [3, 1]].max())))
    for shown in images:
        assert shown.get_clim() == pytest.approx(scale)
    assert [ax.get_title() for ax in panels[:2]] == ["channel 3", "channel 1"]
    assert [ax.get_ylabel() for ax in panels[::2]] == ["PyTorch", "Keras"]
    # the same maps in both layouts give identical rows
    same = _images_in(plots.compare_feature_maps({"x": a, "y": to_channels_last(a)}, channels=[0, 2]))
    np.testing.assert_array_equal(same[1], same[3])
    np.testing.assert_array_equal(same[1], a[0, 2])


def test_overlay_shows_the_image_and_the_heatmap_where_it_is_hot():
    cat = load_sample("cat")  # [300, 451, 3]
    height, width = cat.shape[:2]
    hot = np.zeros((7, 7), np.float32)
    hot[2, 5] = 4.0  # one hot cell: row 2 of 7, column 5 of 7
    fig = plots.overlay_heatmap(cat, hot)
    image, heat, under, over = (im for ax in fig.axes for im in ax.get_images())
    np.testing.assert_allclose(image.get_array(), cat / 255.0, rtol=1e-6)
    np.testing.assert_allclose(under.get_array(), cat / 255.0, rtol=1e-6)
    shown = np.asarray(heat.get_array())
    assert shown.shape == (height, width)
    assert shown.min() == pytest.approx(0.0, abs=1e-6) and shown.max() == pytest.approx(1.0)
    row, col = np.unravel_index(np.argmax(shown), shown.shape)
    assert 2 * height / 7 <= row < 3 * height / 7 and 5 * width / 7 <= col < 6 * width / 7
    assert shown[: height // 7].max() < 0.05 and shown[:, : width // 2].max() < 0.05  # cold far away
    np.testing.assert_array_equal(over.get_array(), shown)  # the same heatmap laid over the image
    assert over.get_alpha() == pytest.approx(0.45) and heat.get_clim() == (0, 1)
    # a ramp stays a ramp: constant down each column, rising left to right
    ramp = plots.overlay_heatmap(cat, np.tile(np.arange(7, dtype=np.float32), (7, 1)))
    shown = np.asarray(ramp.axes[1].get_images()[0].get_array())
    np.testing.assert_allclose(shown, np.broadcast_to(shown[0], shown.shape), atol=1e-6)
    assert np.all(np.diff(shown[0]) >= -1e-6) and shown[0, 0] == 0 and shown[0, -1] == pytest.approx(1)
    with pytest.raises(ValueError, match="2-D heatmap"):
        plots.overlay_heatmap(cat, rng.random((1, 7, 7)))

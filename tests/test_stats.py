"""utils.stats on NumPy data whose answers are written out by hand or computed here directly
(fast; the mutation run's selection for utils/stats.py). The framework scans that feed these
statistics are tested in test_diagnostics_torch.py / test_diagnostics_keras.py."""

import re

import numpy as np
import pytest

from utils.stats import (
    ChannelStats,
    DeadFilterScan,
    TopK,
    count_batches,
    dead_filters,
    iter_batches,
    per_sample_reductions,
    strongest_filters,
)

rng = np.random.default_rng(3)


def _exact(message: str) -> str:
    return f"^{re.escape(message)}$"


# -- per-sample reductions ------------------------------------------------------------------------
def test_per_sample_reductions_in_both_layouts_and_flat():
    maps = rng.standard_normal((3, 4, 5, 5)).astype(np.float32)  # [N, C, H, W]
    means, maxes = per_sample_reductions(maps, "channels_first")
    assert means.dtype == np.float64 and maxes.dtype == np.float64 and means.shape == (3, 4)
    assert means[2, 1] == pytest.approx(float(np.mean(maps[2, 1].astype(np.float64))), rel=1e-12)
    assert maxes[0, 3] == float(maps[0, 3].max())
    last = np.ascontiguousarray(maps.transpose(0, 2, 3, 1))
    m2, x2 = per_sample_reductions(last, "channels_last")
    np.testing.assert_allclose(m2, means, rtol=1e-12)
    np.testing.assert_array_equal(x2, maxes)
    m3, x3 = per_sample_reductions(last)  # guessed (square maps, 4 channels)
    np.testing.assert_array_equal(x3, maxes)
    flat = rng.standard_normal((5, 3)).astype(np.float32)
    fm, fx = per_sample_reductions(flat)
    assert fm.dtype == np.float64 and np.array_equal(fm, flat) and np.array_equal(fx, flat)


def test_per_sample_reductions_errors():
    with pytest.raises(ValueError, match=_exact(
            "expected a batch of maps [N, C, H, W] / [N, H, W, C] (or [N, C]), got shape (2, 3, 4)")):
        per_sample_reductions(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=_exact(
            "layout must be 'channels_first' (PyTorch [N, C, H, W]) or 'channels_last' "
            "(Keras [N, H, W, C]), got 'NCHW'")):
        per_sample_reductions(np.zeros((1, 2, 3, 3)), "NCHW")


# -- TopK ---------------------------------------------------------------------------------------------
def test_topk_streams_best_first_with_global_indices_and_stable_ties():
    top = TopK(3)
    top.update(np.array([[1.0, 9.0], [5.0, 9.0]]))  # samples 0, 1
    top.update(np.array([[7.0, 2.0], [5.0, 9.0], [0.0, 10.0]]))  # samples 2, 3, 4
    assert top.seen == 5
    indices, scores = top.result()
    np.testing.assert_array_equal(indices, [[2, 1, 3], [4, 0, 1]])  # ties: earlier sample first
    np.testing.assert_array_equal(scores, [[7.0, 5.0, 5.0], [10.0, 9.0, 9.0]])
    one_i, one_s = top.result(1)
    np.testing.assert_array_equal(one_i, [4, 0, 1])
    np.testing.assert_array_equal(one_s, [10.0, 9.0, 9.0])
    last_i, _ = top.result(-2)  # negative channels count from the end
    np.testing.assert_array_equal(last_i, [2, 1, 3])
    one_i[0] = 99  # results are copies
    assert top.result(1)[0][0] == 4
    all_i, all_s = top.result()
    all_i[0, 0], all_s[0, 0] = 99, -1.0
    assert top.result()[0][0, 0] == 2 and top.result()[1][0, 0] == 7.0


def test_topk_fewer_samples_than_k_and_single_scores():
    top = TopK(4)
    top.update([3.0, 1.0])
    top.update(np.array([2.0]))
    indices, scores = top.result()  # fed [N]: one channel
    np.testing.assert_array_equal(indices, [0, 2, 1])
    np.testing.assert_array_equal(scores, [3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=_exact(
            "TopK was fed [N] scores before and [N, C] now (or the reverse)")):
        top.update(np.zeros((1, 1)))
    pre = TopK(1, channels=2)
    pre.update(np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=_exact("expected 2 channels, got 3")):
        pre.update(np.zeros((1, 3)))


def test_topk_errors():
    with pytest.raises(ValueError, match=_exact("k must be at least 1, got 0")):
        TopK(0)
    assert TopK(1).k == 1
    with pytest.raises(ValueError, match=_exact("TopK has not seen any scores yet")):
        TopK(2).result()
    with pytest.raises(ValueError, match=re.escape("expected scores [N] or [N, C], got shape (1, 1, 1)")):
        TopK(2).update(np.zeros((1, 1, 1)))
    top = TopK(2)
    top.update(np.zeros((2, 3)))
    for bad in (3, -4):
        with pytest.raises(IndexError, match=_exact(f"channel {bad} out of range: 3 channels (0..2)")):
            top.result(bad)
    top.result(2)
    top.result(-3)


def test_topk_with_channels_allocates_empty_rows():
    top = TopK(2, channels=3)
    indices, scores = top.result()
    assert indices.shape == (3, 0) and scores.shape == (3, 0)
    assert indices.dtype == np.int64 and scores.dtype == np.float64
    top.update(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(top.result()[1], [[1.0], [2.0], [3.0]])


# -- ChannelStats -------------------------------------------------------------------------------------
def _direct(maps, threshold=0.0):
    """The statistics computed at once on everything, in float64."""
    means = maps.astype(np.float64).mean(axis=(2, 3))
    maxes = maps.astype(np.float64).max(axis=(2, 3))
    return means.mean(0), means.std(0), (maxes > threshold).mean(0), maxes.max(0)


def test_channel_stats_streamed_equal_direct():
    maps = rng.standard_normal((23, 5, 4, 6)).astype(np.float32)  # not square: no guessing
    maps[:, 2] = -1.0  # a dead channel
    maps[::4, 4] = 0.5  # fires on a quarter... plus the rest (random)
    s = ChannelStats(top_k=3)
    for a, b in ((0, 1), (1, 10), (10, 10), (10, 23)):
        s.update(maps[a:b], layout="channels_first")
    mean, std, fire, mx = _direct(maps)
    assert s.count == 23 and s.num_channels == 5 and s.top_k == 3
    np.testing.assert_allclose(s.mean, mean, rtol=1e-10)
    np.testing.assert_allclose(s.std, std, rtol=1e-8)
    np.testing.assert_array_equal(s.fire_fraction, fire)
    np.testing.assert_array_equal(s.max, mx)
    assert s.fire_fraction[2] == 0.0
    indices, scores = s.top_images(0)
    maxes = maps.max(axis=(2, 3))[:, 0]
    np.testing.assert_array_equal(indices, np.argsort(-maxes, kind="stable")[:3])
    np.testing.assert_array_equal(scores, np.sort(maxes)[::-1][:3])
    copy = s.max
    copy[:] = 0
    assert s.max[0] == mx[0]  # max is a copy


def test_channel_stats_threshold_and_reduced_updates():
    means = np.array([[0.1, 0.0], [0.3, 0.0]])
    maxes = np.array([[0.4, 0.2], [0.6, 0.25]])
    s = ChannelStats(2, fire_threshold=0.25)
    assert s.fire_threshold == 0.25 and s.num_channels == 2
    s.update_reduced(means, maxes)
    np.testing.assert_array_equal(s.fire_fraction, [1.0, 0.0])  # 0.25 is not above 0.25
    np.testing.assert_allclose(s.mean, [0.2, 0.0])
    np.testing.assert_allclose(s.std, [0.1, 0.0], atol=1e-12)
    np.testing.assert_array_equal(s.max, [0.6, 0.25])
    s.update_reduced(np.zeros((0, 2)), np.zeros((0, 2)))  # an empty batch changes nothing
    assert s.count == 2
    np.testing.assert_array_equal(s.max, [0.6, 0.25])
    # float32 input is accumulated in float64: 1e8 + 1 - 1e8 is 1, not 0
    big = np.array([[1e8], [1.0], [-1e8]], np.float32)
    assert ChannelStats().update_reduced(big, big).mean[0] == pytest.approx(1 / 3)
    # float32 maxima are compared in float64: float32(0.1) is above the threshold 0.1
    tenth = np.array([[0.1]], np.float32)
    assert ChannelStats(fire_threshold=0.1).update_reduced(tenth, tenth).fire_fraction[0] == 1.0
    negative = ChannelStats().update_reduced([[-3.0]], [[-2.0]])
    assert negative.max[0] == -2.0 and negative.fire_fraction[0] == 0.0
    assert np.all(np.isfinite(ChannelStats().update_reduced([[1e8]] * 3, [[1e8]] * 3).std))


def test_channel_stats_errors():
    s = ChannelStats()
    for prop in ("mean", "std", "fire_fraction", "max"):
        with pytest.raises(ValueError, match=_exact(
                "ChannelStats has not seen any samples yet: call update() first")):
            getattr(s, prop)
    with pytest.raises(ValueError, match=_exact(
            "create ChannelStats(..., top_k=k) to keep the top images per channel")):
        s.top_images(0)
    with pytest.raises(ValueError, match=_exact(
            "ChannelStats has not seen any samples yet: call update() first")):
        ChannelStats(top_k=2).top_images(0)
    with pytest.raises(ValueError, match=_exact(
            "expected means and maxes of the same shape [N, C], got (2, 3) and (2, 4)")):
        s.update_reduced(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=re.escape("got (3,) and (3,)")):
        s.update_reduced(np.zeros(3), np.zeros(3))
    s.update_reduced(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=_exact("this ChannelStats has 3 channels, the batch has 2")):
        s.update_reduced(np.zeros((1, 2)), np.zeros((1, 2)))


# -- dead filters -------------------------------------------------------------------------------------
def _stats_with_fire_counts(counts, samples=100, threshold=0.0):
    maxes = np.full((samples, len(counts)), -1.0)
    for channel, count in enumerate(counts):
        maxes[:count, channel] = 1.0
    return ChannelStats(fire_threshold=threshold).update_reduced(np.zeros_like(maxes), maxes)


def test_dead_filters_by_share_of_samples():
    s = _stats_with_fire_counts([0, 1, 2, 50, 100])
    assert dead_filters(s) == [0, 1]  # at most 1 % of the samples
    assert dead_filters(s, min_fraction=0.0) == [0]
    assert dead_filters(s, min_fraction=0.02) == [0, 1, 2]
    assert dead_filters(s, min_fraction=0.5) == [0, 1, 2, 3]
    assert all(isinstance(c, int) for c in dead_filters(s))
    assert dead_filters(s, fire_threshold=0.0) == [0, 1]
    assert dead_filters(s, fire_threshold=0) == [0, 1]


def test_dead_filters_errors():
    s = _stats_with_fire_counts([0, 3], threshold=0.5)
    with pytest.raises(TypeError, match=_exact("expected a ChannelStats, got dict")):
        dead_filters({})
    with pytest.raises(ValueError, match=_exact(
            "these statistics count firing above 0.5, not 0.1; collect them again with "
            "ChannelStats(fire_threshold=0.1) (scan_dead_filters(..., fire_threshold=0.1))")):
        dead_filters(s, fire_threshold=0.1)
    for bad in (-0.1, 1.0, 2):
        with pytest.raises(ValueError, match=_exact(f"min_fraction must be in [0, 1), got {bad!r}")):
            dead_filters(s, min_fraction=bad)
    assert dead_filters(s, min_fraction=0.999) == [0, 1]


def test_dead_filter_scan_names_the_three_least_active_in_channel_order_on_ties():
    s = _stats_with_fire_counts([100, 50] * 20 + [0])  # ties at 50 %, among 41 channels
    scan = DeadFilterScan("c", "pytorch", s, dead_filters(s), 0.0, 0.01)
    assert scan.summary().splitlines()[-1] == \
        "  least active live channels (share of images they fire on): 1 (50%), 3 (50%), 5 (50%)"


def test_dead_filter_scan_summary():
    s = _stats_with_fire_counts([0, 40, 10, 100, 60, 0])
    scan = DeadFilterScan("conv2", "pytorch", s, dead_filters(s), 0.0, 0.01)
    assert (scan.num_images, scan.num_channels) == (100, 6)
    assert scan.dead_fraction == pytest.approx(2 / 6)
    assert scan.summary() == (
        "pytorch layer 'conv2': 2 of 6 channels dead over 100 images "
        "(fire = max > 0 on more than 1% of images)\n"
        "  dead channels: [0, 5]\n"
        "  least active live channels (share of images they fire on): 2 (10%), 1 (40%), 4 (60%)")
    assert str(scan) == scan.summary()
    assert repr(scan) == ("DeadFilterScan(layer='conv2', framework='pytorch', images=100, "
                          "channels=6, dead=[0, 5])")
    all_fire = _stats_with_fire_counts([100, 100])
    quiet = DeadFilterScan("c", "tensorflow", all_fire, [], 0.5, 0.25)
    assert quiet.summary() == ("tensorflow layer 'c': 0 of 2 channels dead over 100 images "
                               "(fire = max > 0.5 on more than 25% of images)\n"
                               "  dead channels: none")
    assert quiet.dead_fraction == 0.0
    empty = DeadFilterScan("c", "pytorch", ChannelStats(), [], 0.0, 0.01)
    assert empty.num_channels == 0 and empty.dead_fraction == 0.0


# -- strongest filters, top images --------------------------------------------------------------------
def test_strongest_filters_rank_by_mean():
    maps = np.zeros((4, 3, 3))  # one image [C, H, W]
    maps[0] = 1.0
    maps[1] = 3.0
    maps[2, 0, 0] = 9.0  # mean 1.0: ties with channel 0, which comes first
    maps[3] = -1.0
    assert strongest_filters(maps, "channels_first", k=3) == [(1, 3.0), (0, 1.0), (2, 1.0)]
    ranked = strongest_filters(maps, "channels_first", k=10)
    assert [c for c, _ in ranked] == [1, 0, 2, 3]
    assert all(type(c) is int and type(v) is float for c, v in ranked)
    batch = np.stack([maps, 2 * maps]).transpose(0, 2, 3, 1)  # [N, H, W, C]: mean over images too
    assert strongest_filters(batch, "channels_last", k=2) == [(1, 4.5), (0, 1.5)]
    tall = np.zeros((2, 3, 5, 4))  # [N, C, H, W], H != W: the spatial axes must be the right ones
    tall[:, 1, 0, :] = 20.0
    tall[:, 2, :, 0] = 10.0
    assert strongest_filters(tall, "channels_first", k=3) == [(1, 4.0), (2, 2.5), (0, 0.0)]
    assert strongest_filters(tall.transpose(0, 2, 3, 1), "channels_last", k=3) == \
        [(1, 4.0), (2, 2.5), (0, 0.0)]
    # float32 maps are averaged in float64: 1e8 + 1 - 1e8 + 0 is 1, not 0
    exact = np.array([[[1e8, 1.0], [-1e8, 0.0]]], np.float32)
    assert strongest_filters(exact, "channels_first", k=1) == [(0, 0.25)]
    # ties keep the channel order, however many channels (an unstable sort would not)
    levels = np.repeat((np.arange(32) % 2)[:, None, None], 2, axis=1).repeat(2, axis=2)  # 0, 1, 0, ...
    many = strongest_filters(levels, "channels_first", k=32)
    assert [c for c, _ in many] == list(range(1, 32, 2)) + list(range(0, 32, 2))
    assert strongest_filters(np.stack([maps, maps]), k=2) == [(1, 3.0), (0, 1.0)]  # guessed
    assert len(strongest_filters(maps, "channels_first")) == 4 and \
        len(strongest_filters(np.zeros((7, 2, 2)), "channels_first")) == 5  # k=5 by default


def test_strongest_filters_errors():
    with pytest.raises(ValueError, match=_exact(
            "expected maps [C, H, W], [H, W, C] or a batch of them, got shape (2, 3)")):
        strongest_filters(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=_exact("k must be at least 1, got 0")):
        strongest_filters(np.zeros((2, 3, 3)), "channels_first", k=0)
    with pytest.raises(ValueError, match="layout must be"):
        strongest_filters(np.zeros((2, 3, 3)), "NCHW")


# -- batches ------------------------------------------------------------------------------------------
def test_iter_batches_of_an_array_and_of_an_iterable():
    images = np.arange(7 * 2 * 2 * 1).reshape(7, 2, 2, 1)
    got = list(iter_batches(images, 3, lambda b: b[:, 0, 0, 0].tolist()))
    assert got == [[0, 4, 8], [12, 16, 20], [24]]
    assert count_batches(images, 3) == 3 and count_batches(images, 7) == 1
    assert count_batches(images, 1) == 7
    one = list(iter_batches(images[0], 5, lambda b: b.shape))
    assert one == [(1, 2, 2, 1)] and count_batches(images[0], 5) == 1
    pairs = [(np.zeros((2, 1)), "labels"), [np.ones((3, 1)), "y"], np.full((1, 1), 2.0)]
    assert list(iter_batches(pairs, 99, lambda b: float(b.sum()))) == [0.0, 3.0, 2.0]
    assert count_batches(pairs, 99) == 3
    assert count_batches(iter(pairs), 2) is None


def test_iter_batches_errors():
    with pytest.raises(ValueError, match=_exact("batch_size must be at least 1, got 0")):
        next(iter_batches(np.zeros((2, 2, 2, 2)), 0, lambda b: b))
    with pytest.raises(ValueError, match=_exact(
            "expected a batch of images with 4 axes (or one image with 3), got shape (2, 2)")):
        next(iter_batches(np.zeros((2, 2)), 1, lambda b: b))


def test_count_batches_of_an_empty_sized_iterable():
    assert count_batches([], 4) == 0


class _ShapedList(list):
    """A list of batches that has a ``shape`` but no ``ndim``: not an array."""

    shape = (2,)


def test_only_arrays_are_split_into_batches():
    batches = _ShapedList([np.zeros((2, 1)), np.zeros((3, 1))])
    assert count_batches(batches, 1) == 2
    assert [b.shape[0] for b in iter_batches(batches, 1, lambda b: b)] == [2, 3]
    one_image = np.zeros((4, 4, 3))
    assert count_batches(one_image, 1) == 1  # one image with 3 axes is one batch

"""Layout conversions element by element, with NumPy only (fast; the mutation run's selection for
utils/layout.py). Expected positions are written out from the layout table, not computed with the
helpers; the convolution checks in both frameworks are in test_layout.py."""

import re

import numpy as np
import pytest

from utils import layout

rng = np.random.default_rng(7)


def test_activations_move_the_channel_axis():
    x = rng.random((2, 3, 4, 5))  # [N, C, H, W]
    last = layout.to_channels_last(x)
    assert last.shape == (2, 4, 5, 3) and last.flags.c_contiguous
    for n, c, h, w in ((0, 0, 0, 0), (1, 2, 3, 4), (1, 0, 2, 1)):
        assert last[n, h, w, c] == x[n, c, h, w]
    first = layout.to_channels_first(last)
    assert first.shape == (2, 3, 4, 5) and first.flags.c_contiguous
    np.testing.assert_array_equal(first, x)
    one = layout.to_channels_last(x[1])  # one map [C, H, W] -> [H, W, C]
    assert one.shape == (4, 5, 3) and one.flags.c_contiguous and one[3, 4, 2] == x[1, 2, 3, 4]
    back = layout.to_channels_first(one)
    assert back.shape == (3, 4, 5) and back.flags.c_contiguous and back[2, 3, 4] == x[1, 2, 3, 4]


def test_kernels_move_their_axes():
    w = rng.random((6, 3, 5, 2))  # [out, in, kh, kw]
    k = layout.torch_kernel_to_keras(w)
    assert k.shape == (5, 2, 3, 6) and k.flags.c_contiguous
    for o, i, a, b in ((0, 0, 0, 0), (5, 2, 4, 1), (3, 1, 2, 0)):
        assert k[a, b, i, o] == w[o, i, a, b]
    back = layout.keras_kernel_to_torch(k)
    assert back.shape == w.shape and back.flags.c_contiguous
    np.testing.assert_array_equal(back, w)


@pytest.mark.parametrize("channels, m", [(4, 1), (3, 2)])
def test_depthwise_kernels_keep_pytorchs_channel_order(channels, m):
    k = rng.random((3, 5, channels, m))  # Keras [kh, kw, C, m]
    w = layout.keras_kernel_to_torch(k, depthwise=True)
    assert w.shape == (channels * m, 1, 3, 5) and w.flags.c_contiguous
    for c in range(channels):
        for j in range(m):
            np.testing.assert_array_equal(w[c * m + j, 0], k[:, :, c, j])
    if m == 1:
        back = layout.torch_kernel_to_keras(w, depthwise=True)
        assert back.shape == k.shape and back.flags.c_contiguous
        np.testing.assert_array_equal(back, k)


def test_dense_weights_transpose():
    w = rng.random((10, 4))
    k = layout.torch_dense_to_keras(w)
    assert k.shape == (4, 10) and k.flags.c_contiguous and k[3, 9] == w[9, 3]


@pytest.mark.parametrize("convert, shape, message", [
    (layout.to_channels_last, (2, 3), "to_channels_last: expected a 4-D array [N, C, H, W] or "
                                      "[C, H, W], got shape (2, 3)"),
    (layout.to_channels_first, (1, 2, 3, 4, 5), "to_channels_first: expected a 4-D array "
                                                "[N, H, W, C] or [H, W, C], got shape (1, 2, 3, 4, 5)"),
    (layout.torch_kernel_to_keras, (3, 3), "torch_kernel_to_keras: expected a 4-D array "
                                           "[out, in, kh, kw], got shape (3, 3)"),
    (layout.keras_kernel_to_torch, (3, 3, 3), "keras_kernel_to_torch: expected a 4-D array "
                                              "[kh, kw, in, out], got shape (3, 3, 3)"),
    (layout.torch_dense_to_keras, (3,), "torch_dense_to_keras: expected a 2-D array [out, in], "
                                        "got shape (3,)"),
])
def test_wrong_dimensions_are_named_exactly(convert, shape, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        convert(np.zeros(shape))


def test_depthwise_torch_weight_needs_one_input_channel():
    with pytest.raises(ValueError, match=re.escape(
            "torch_kernel_to_keras(depthwise=True): expected [C*m, 1, kh, kw], got (4, 2, 3, 3); "
            "a depthwise PyTorch weight has one input channel per group")):
        layout.torch_kernel_to_keras(np.zeros((4, 2, 3, 3)), depthwise=True)


class _FakeTorch:
    """Quacks like a torch tensor: detach() -> cpu() -> numpy()."""

    def __init__(self, array):
        self.array, self.calls = array, []

    def detach(self):
        self.calls.append("detach")
        return self

    def cpu(self):
        self.calls.append("cpu")
        return self

    def numpy(self):
        self.calls.append("numpy")
        return self.array


class _FakeTf:
    def __init__(self, array):
        self.array = array

    def numpy(self):
        return self.array.tolist()  # a list: as_numpy must still return an array


def test_as_numpy_for_arrays_tensors_and_lists():
    a = rng.random((2, 3))
    assert layout.as_numpy(a) is a
    fake = _FakeTorch(a)
    assert layout.as_numpy(fake) is a and fake.calls == ["detach", "cpu", "numpy"]
    out = layout.as_numpy(_FakeTf(a))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, a)
    listed = layout.as_numpy([[1, 2], [3, 4]])
    assert isinstance(listed, np.ndarray) and listed.shape == (2, 2)


@pytest.mark.parametrize("shape, channels, expected", [
    ((1, 8, 4, 4), None, "channels_first"),
    ((1, 4, 4, 8), None, "channels_last"),
    ((8, 4, 4), None, "channels_first"),  # one map
    ((4, 4, 8), None, "channels_last"),
    ((2, 3, 5, 7), 3, "channels_first"),  # not square: only `channels` tells
    ((2, 5, 7, 3), 3, "channels_last"),
    ((2, 6, 6, 6), 6, None),  # every axis could be the channels
    ((2, 3, 7, 3), 3, None),  # the first and last could be
    ((2, 3, 5, 7), 5, None),  # channels match neither end
    ((1, 4, 4, 8), 4, "channels_first"),  # the hint wins over the square-map rule
    ((1, 8, 4, 4), 4, "channels_last"),
    ((1, 8, 4, 4), 5, "channels_first"),  # a hint matching neither end: the square-map rule
    ((1, 4, 4, 8), 5, "channels_last"),
    ((1, 4, 4, 4), None, None),
    ((1, 4, 5, 6), None, None),
    ((1, 5, 4, 5), None, None),
])
def test_guess_layout(shape, channels, expected):
    x = np.zeros(shape)
    if expected is None:
        with pytest.raises(ValueError, match=re.escape(
                f"cannot tell whether shape {shape} is channels-first or channels-last; pass "
                "layout='channels_first' (PyTorch) or layout='channels_last' (Keras)")):
            layout.guess_layout(x, channels)
    else:
        assert layout.guess_layout(x, channels) == expected


@pytest.mark.parametrize("shape", [(4, 4), (1, 2, 3, 4, 5)])
def test_guess_layout_needs_maps(shape):
    with pytest.raises(ValueError, match=re.escape(
            f"expected [N, C, H, W], [N, H, W, C] or a single map, got shape {shape}")):
        layout.guess_layout(np.zeros(shape))

"""Layout conversions: round trips, and the real check that a converted kernel computes the same
convolution in both frameworks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from utils import layout
from utils.tensorflow.capture import keras

rng = np.random.default_rng(0)


def test_activation_round_trips():
    x = rng.random((2, 5, 7, 9), dtype=np.float32)
    last = layout.to_channels_last(x)
    assert last.shape == (2, 7, 9, 5)
    np.testing.assert_array_equal(layout.to_channels_first(last), x)
    np.testing.assert_array_equal(layout.to_channels_first(layout.to_channels_last(x[0])), x[0])
    assert last[1, 3, 4, 2] == x[1, 2, 3, 4]


def test_kernel_round_trips():
    w = rng.random((6, 3, 5, 3), dtype=np.float32)
    k = layout.torch_kernel_to_keras(w)
    assert k.shape == (5, 3, 3, 6)
    np.testing.assert_array_equal(layout.keras_kernel_to_torch(k), w)
    dw = rng.random((4, 1, 3, 3), dtype=np.float32)
    kd = layout.torch_kernel_to_keras(dw, depthwise=True)
    assert kd.shape == (3, 3, 4, 1)
    np.testing.assert_array_equal(layout.keras_kernel_to_torch(kd, depthwise=True), dw)
    assert layout.torch_dense_to_keras(np.zeros((10, 4))).shape == (4, 10)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="out, in, kh, kw"):
        layout.torch_kernel_to_keras(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="one input channel per group"):
        layout.torch_kernel_to_keras(np.zeros((4, 2, 3, 3)), depthwise=True)
    with pytest.raises(ValueError, match="N, C, H, W"):
        layout.to_channels_last(np.zeros((2, 3)))


def test_converted_kernels_compute_the_same_convolution():
    x = rng.standard_normal((1, 3, 11, 11)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    torch_out = F.conv2d(torch.from_numpy(x), torch.from_numpy(w)).numpy()
    conv = keras.layers.Conv2D(5, 3, use_bias=False)
    conv.build((None, 11, 11, 3))
    conv.set_weights([layout.torch_kernel_to_keras(w)])
    keras_out = np.asarray(conv(layout.to_channels_last(x)))
    np.testing.assert_allclose(layout.to_channels_first(keras_out), torch_out, atol=1e-5)


def test_converted_depthwise_kernels_compute_the_same_convolution():
    x = rng.standard_normal((1, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    torch_out = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), groups=4).numpy()
    conv = keras.layers.DepthwiseConv2D(3, use_bias=False)
    conv.build((None, 9, 9, 4))
    conv.set_weights([layout.torch_kernel_to_keras(w, depthwise=True)])
    keras_out = np.asarray(conv(layout.to_channels_last(x)))
    np.testing.assert_allclose(layout.to_channels_first(keras_out), torch_out, atol=1e-5)


def test_untransposed_kernel_is_wrong():
    # The trap the conversion exists for: reshaping instead of transposing gives other numbers.
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    torch_out = F.conv2d(torch.from_numpy(x), torch.from_numpy(w)).numpy()
    conv = keras.layers.Conv2D(4, 3, use_bias=False)
    conv.build((None, 8, 8, 3))
    conv.set_weights([w.reshape(3, 3, 3, 4)])
    wrong = layout.to_channels_first(np.asarray(conv(layout.to_channels_last(x))))
    assert np.abs(wrong - torch_out).max() > 1e-2


def test_as_numpy_and_guess_layout():
    t = torch.ones(1, 8, 4, 4, requires_grad=True) * 2
    assert isinstance(layout.as_numpy(t), np.ndarray)
    assert layout.guess_layout(np.zeros((1, 8, 4, 4))) == "channels_first"
    assert layout.guess_layout(np.zeros((1, 4, 4, 8))) == "channels_last"
    with pytest.raises(ValueError, match="cannot tell"):
        layout.guess_layout(np.zeros((1, 4, 4, 4)))

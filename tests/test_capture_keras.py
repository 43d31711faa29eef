"""Sub-model capture for Keras: functional, never-called Sequential, nested and subclassed models."""

import numpy as np
import pytest

from utils.layers import UnknownLayerError
from utils.tensorflow import activation_model, conv_filters, feature_maps, layer_names, to_input
from utils.tensorflow.capture import keras


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)


def small_backbone(name="backbone"):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="stem")(inputs)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    return keras.Model(inputs, x, name=name)


def test_functional_outputs_match_direct_computation(images):
    backbone = small_backbone()
    maps = feature_maps(backbone, ["stem", "stem_relu"], images)
    assert maps["stem"].shape == (2, 16, 16, 8)
    np.testing.assert_allclose(maps["stem_relu"], np.maximum(maps["stem"], 0), atol=1e-6)
    stem_only = keras.Model(backbone.inputs, backbone.get_layer("stem").output)
    np.testing.assert_allclose(maps["stem"], stem_only.predict(images, verbose=0), atol=1e-6)


def test_sequential_never_built_or_called(images):
    model = keras.Sequential(
        [keras.layers.Conv2D(4, 3, name="c1"), keras.layers.ReLU(name="r1"), keras.layers.Conv2D(2, 3, name="c2")]
    )
    assert not model.built
    maps = feature_maps(model, ["c1", "c2"], images)  # the batch gives the input shape
    assert maps["c1"].shape == (2, 30, 30, 4) and maps["c2"].shape == (2, 28, 28, 2)
    np.testing.assert_allclose(model.predict(images, verbose=0), maps["c2"], atol=1e-5)
    with pytest.raises(ValueError, match="input_shape"):
        activation_model(keras.Sequential([keras.layers.Conv2D(1, 3, name="c")]), ["c"])
    sub = activation_model(
        keras.Sequential([keras.layers.Conv2D(1, 3, name="c")]), ["c"], input_shape=(32, 32, 3)
    )
    assert sub.outputs[0].shape[1:] == (30, 30, 1)


def test_nested_model_layers_are_reachable(images):
    backbone = small_backbone()
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(2.0, name="scale")(inputs)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    classifier = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    names = layer_names(classifier)
    assert "backbone/stem" in names and "backbone/dw" in names
    assert layer_names(classifier, kind="conv") == ["backbone/stem", "backbone/dw"]
    maps = feature_maps(classifier, ["backbone/stem_relu", "pool"], images)
    # the nested layer must see what the outer model feeds the backbone (the rescaled input)
    direct = feature_maps(backbone, ["stem_relu"], images * 2.0)["stem_relu"]
    np.testing.assert_allclose(maps["backbone/stem_relu"], direct, atol=1e-5)
    assert maps["pool"].shape == (2, 8)


def test_unknown_names_list_valid_ones_and_closest(images):
    backbone = small_backbone()
    with pytest.raises(UnknownLayerError) as info:
        activation_model(backbone, ["stem_relo"])
    assert info.value.suggestion == "stem_relu"
    assert "dw" in str(info.value)
    inputs = keras.Input((32, 32, 3))
    outer = keras.Model(inputs, small_backbone()(inputs))
    with pytest.raises(UnknownLayerError, match="backbone/stem"):
        activation_model(outer, ["backbone/stm"])


def test_subclassed_model_gets_advice():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    with pytest.raises(TypeError, match="subclassed.*functional API"):
        activation_model(Net(), ["conv"])


def test_conv_filters_canonical_layout(images):
    import torch

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, (3, 5), padding="same", name="stem")(inputs)  # kh != kw
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw1")(x)
    x = keras.layers.DepthwiseConv2D((5, 3), padding="same", depth_multiplier=2, name="dw2")(x)
    model = keras.Model(inputs, keras.layers.ReLU(name="relu")(x))
    stem_kernel = np.asarray(model.get_layer("stem").kernel)  # [kh, kw, in, out] = [3, 5, 3, 8]
    w = conv_filters(model, "stem")
    assert w.shape == (8, 3, 3, 5)
    for out, inp in ((0, 0), (5, 2), (7, 1)):  # element by element, no layout helper involved
        np.testing.assert_array_equal(w[out, inp], stem_kernel[:, :, inp, out])
    # depthwise [kh, kw, C, m] -> [C * m, 1, kh, kw]; PyTorch orders output c * m + j
    for name, channels, m in (("dw1", 8, 1), ("dw2", 8, 2)):
        kernel = np.asarray(model.get_layer(name).kernel)
        dw = conv_filters(model, name)
        assert dw.shape == (channels * m, 1, *kernel.shape[:2]), name
        for c in range(channels):
            for j in range(m):
                np.testing.assert_array_equal(dw[c * m + j, 0], kernel[:, :, c, j], err_msg=name)
    # and the canonical filters compute what the Keras layers compute, in PyTorch
    maps = feature_maps(model, ["stem", "dw1", "dw2"], images)
    t = torch.from_numpy(maps["stem"].transpose(0, 3, 1, 2).copy())
    for name, kernel_size in (("dw1", (3, 3)), ("dw2", (5, 3))):
        bias = torch.from_numpy(np.array(model.get_layer(name).bias))
        pad = (kernel_size[0] // 2, kernel_size[1] // 2)
        t = torch.nn.functional.conv2d(t, torch.from_numpy(conv_filters(model, name)), bias,
                                       padding=pad, groups=t.shape[1])
        np.testing.assert_allclose(t.numpy().transpose(0, 2, 3, 1), maps[name], atol=1e-4,
                                   err_msg=name)
    with pytest.raises(TypeError, match="not a Conv2D"):
        conv_filters(model, "relu")


def test_to_input_rejects_torch_tensors():
    import torch

    with pytest.raises(TypeError, match="NumPy array"):
        to_input(torch.zeros(1, 3, 8, 8))
    assert tuple(to_input(np.zeros((8, 8, 3))).shape) == (1, 8, 8, 3)

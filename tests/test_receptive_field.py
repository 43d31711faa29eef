"""Receptive fields derived from the model (issue 12): both frameworks agree on every conv/ReLU
layer of Lite0 and ResNet-18, textbook numbers on hand-built nets, and an independent check on
the pretrained Lite0: pixels outside a position's box cannot change it, pixels on its edges can."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from utils.images import load_sample
from utils.layers import UnknownLayerError
from utils.preprocess import preprocess
from utils.pytorch.models import load_model as load_torch
from utils.pytorch.receptive_field import receptive_field
from utils.receptive_field import ReceptiveField, pair, same_padding, union

# VGG-16's conv/pool stack: (kind, padding) -> the textbook fields (Araujo et al., Distill 2019):
# conv5_3 sees 196 pixels, pool5 212, at a stride of 32.
VGG16 = [2, 2, 3, 3, 3]
VGG16_SIZES = [3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212]
VGG16_STRIDES = [1, 1, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16, 32]
VGG16_STARTS = [-1, -2, -2, -4, -6, -6, -10, -14, -18, -18, -26, -34, -42, -42, -58, -74, -90, -90]


@pytest.fixture(scope="module")
def keras_rf():
    from utils.tensorflow.receptive_field import receptive_field as keras_receptive_field

    return keras_receptive_field


def _vgg_torch():
    layers, c = [], 3
    for convs in VGG16:
        for _ in range(convs):
            layers += [nn.Conv2d(c, 2, 3, padding=1), nn.ReLU()]
            c = 2
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def test_textbook_numbers_vgg16_and_mnist(keras_rf):
    import keras

    vgg = _vgg_torch()
    names = [n for n, m in vgg.named_children() if not isinstance(m, nn.ReLU)]
    got = [receptive_field(vgg, n) for n in names]
    assert [f.size for f in got] == [(s, s) for s in VGG16_SIZES]
    assert [f.stride for f in got] == [(s, s) for s in VGG16_STRIDES]
    assert [f.start for f in got] == [(s, s) for s in VGG16_STARTS]
    inputs = x = keras.Input((224, 224, 3))
    for convs in VGG16:
        for _ in range(convs):
            x = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    kvgg = keras.Model(inputs, x)
    assert [keras_rf(kvgg, layer.name) for layer in kvgg.layers[1:]] == got
    mnist = load_torch("mnist_cnn", pretrained=False)
    expected = {"conv1": (3, 1), "pool1": (4, 2), "conv2": (8, 2), "pool2": (10, 4)}
    for name, (size, stride) in expected.items():
        assert receptive_field(mnist, name, 28) == ReceptiveField((size, size), (stride, stride))
    assert receptive_field(mnist, "fc", 28) == ReceptiveField((28, 28), (0, 0))


# -- the neutral arithmetic (no framework: what mutation testing runs) ---------------------------
def test_the_arithmetic_alone_gives_vggs_textbook_fields():
    field, got = ReceptiveField((1, 1)), []
    for convs in VGG16:
        for _ in range(convs):
            field = field.window(3, padding=1)
            got.append(field)
        field = field.window(2, stride=2)
        got.append(field)
    assert [f.size for f in got] == [(s, s) for s in VGG16_SIZES]
    assert [f.stride for f in got] == [(s, s) for s in VGG16_STRIDES]
    assert [f.start for f in got] == [(s, s) for s in VGG16_STARTS]


def test_window_per_axis_with_dilation():
    # height: kernel 3, dilation 2, padding 2 -> 1 + 2 * 2 = 5 pixels from -2; width: kernel 5,
    # stride 2 -> 5 pixels from 0, and the next window's pixels are 2 apart along the width only
    field = ReceptiveField((1, 1)).window((3, 5), stride=(1, 2), dilation=(2, 1), padding=(2, 0))
    assert field == ReceptiveField((5, 5), (1, 2), (-2, 0))
    assert field.window(3, padding=1) == ReceptiveField((7, 9), (1, 2), (-3, -2))
    assert field.window((1, 1)) == field  # a 1 x 1 convolution sees what its input saw
    whole = ReceptiveField((32, 32), (0, 0))
    assert whole.window(3, stride=2, padding=1) is whole  # after global pooling: the whole input


def test_union_of_branches():
    a, b = ReceptiveField((3, 3), (2, 2), (-1, -1)), ReceptiveField((7, 5), (2, 2), (-3, 0))
    assert union([a, b]) == ReceptiveField((7, 6), (2, 2), (-3, -1))  # rows -3..4, cols -1..5
    assert union([a]) == a
    whole = ReceptiveField((28, 28), (0, 0))
    assert union([a, whole]) is whole and union([whole, b]) is whole
    with pytest.raises(ValueError, match=r"different strides \[\(2, 2\), \(4, 4\)\]"):
        union([a, ReceptiveField((3, 3), (4, 4))])


@pytest.mark.parametrize(("size", "kernel", "stride", "dilation", "before"), [
    ((224, 224), 3, 2, 1, (0, 0)),   # 112 outputs need 1 pixel more: TensorFlow adds it after
    ((225, 224), 3, 2, 1, (1, 0)),   # 113 outputs need 2: one before, one after
    ((7, 7), 5, 1, 1, (2, 2)),
    ((28, 28), 4, 1, 1, (1, 1)),     # 3 pixels: the odd one after
    ((10, 10), 3, 1, 2, (2, 2)),     # dilated kernel spans 5
    ((8, 8), 1, 2, 1, (0, 0)),       # never negative
    ((8, 8), 3, 1, 1, (1, 1)),
    ((14, 15), (3, 5), (2, 1), 1, (0, 2)),
])
def test_same_padding_is_tensorflows(size, kernel, stride, dilation, before):
    # TensorFlow's rule: ceil(n / s) outputs; the padding they need, the odd pixel after
    assert same_padding(size, kernel, stride, dilation) == before
    if stride == dilation == 1:
        assert same_padding(size, kernel) == before  # the defaults: stride 1, no dilation


def test_pair_names_what_it_expected():
    assert pair(3) == (3, 3) and pair((2, 5)) == (2, 5) and pair([4.0, 1]) == (4, 1)
    with pytest.raises(ValueError, match=r"expected one int or \(height, width\), got \(1, 2, 3\)"):
        pair((1, 2, 3))


def test_box_is_clipped_and_whole_input_is_everywhere():
    field = ReceptiveField((115, 115), (16, 16), (-42, -42))
    assert field.box(0, 0) == (-42, -42, 73, 73)
    assert field.box(0, 0, (224, 224)) == (0, 0, 73, 73)
    assert field.box(13, 2, (224, 224)) == (166, 0, 224, 105)
    assert ReceptiveField((224, 224), (0, 0)).box(5, 3) == (0, 0, 224, 224)
    tall = ReceptiveField((9, 3), (4, 2), (-4, -1))  # rows and columns kept apart
    assert tall.box(1, 2) == (0, 3, 9, 6)
    assert tall.box(0, 0, (6, 6, 3)) == (0, 0, 5, 2)  # an image's shape works as its size


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_both_frameworks_agree_on_every_conv_and_relu(name, keras_rf):
    from utils.tensorflow import layer_names
    from utils.tensorflow.models import load_model as load_keras

    model, twin = load_torch(name, pretrained=False), load_keras(name, pretrained=False)
    wanted = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ReLU, nn.ReLU6))]
    assert set(wanted) <= set(layer_names(twin)) and len(wanted) >= 29
    for layer in wanted:
        assert receptive_field(model, layer) == keras_rf(twin, layer), layer
    if name == "efficientnet_lite0":  # TensorFlow's "same" at stride 2 pads after, not before
        assert receptive_field(model, "_conv_stem") == ReceptiveField((3, 3), (2, 2), (0, 0))
        assert receptive_field(model, "_blocks.6._bn1").size == (115, 115)
    else:  # the downsample branch runs after conv2 but is merged by the addition: 7 + ... = 435
        assert receptive_field(model, "layer4") == ReceptiveField((435, 435), (32, 32), (-217, -217))
        assert receptive_field(model, "layer2.0.downsample.0").size == (43, 43)


@pytest.mark.slow
def test_pixels_outside_the_box_cannot_change_the_position():
    model = copy.deepcopy(load_torch("efficientnet_lite0")).double()
    layer, (row, col) = "_blocks.6._bn1", (5, 7)
    top, left, bottom, right = receptive_field(model, layer).box(row, col, (224, 224))
    assert top > 0 and left > 0 and bottom < 224 and right < 224  # a box inside the image
    x = torch.from_numpy(preprocess(load_sample("cat"))).permute(0, 3, 1, 2).double()
    noise = torch.from_numpy(np.random.default_rng(0).normal(0, 1, x.shape))

    def at_position(mask):
        with torch.no_grad():
            return _upto(model, layer, x + noise * mask)[0, :, row, col]

    base = at_position(torch.zeros_like(x))
    outside = torch.ones_like(x)
    outside[..., top:bottom, left:right] = 0
    # outside the box, even the pixels touching it: the position's value is exactly the same
    assert torch.equal(at_position(outside), base)
    for edge in [(slice(top, top + 1), slice(left, right)), (slice(bottom - 1, bottom), slice(left, right)),
                 (slice(top, bottom), slice(left, left + 1)), (slice(top, bottom), slice(right - 1, right))]:
        inside = torch.zeros_like(x)
        inside[(..., *edge)] = 1  # one line of pixels on the box's edge: the box is not too big
        assert (at_position(inside) - base).abs().max() > 1e-9


def _upto(model, layer, x):
    from utils.pytorch._blocks import run_until

    with torch.no_grad():
        return run_until(model, layer, x)


def test_unknown_layers_and_operations_are_refused(keras_rf):
    import keras

    mnist = load_torch("mnist_cnn", pretrained=False)
    with pytest.raises(UnknownLayerError, match="has no layer 'conv3'.*Did you mean"):
        receptive_field(mnist, "conv3", 28)

    class Upsample(nn.Module):
        def forward(self, x):
            return nn.functional.interpolate(x, scale_factor=2)

    net = nn.Sequential(nn.Conv2d(3, 2, 3), Upsample(), nn.Conv2d(2, 2, 3))
    assert receptive_field(net, "0", 32).size == (3, 3)
    with pytest.raises(NotImplementedError, match="'interpolate' moves pixels"):
        receptive_field(net, "2", 32)
    seq = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3, name="a"),
                            keras.layers.UpSampling2D(name="up"), keras.layers.Conv2D(2, 3, name="b")])
    assert keras_rf(seq, "a").size == (3, 3)
    with pytest.raises(NotImplementedError, match="'UpSampling2D' moves pixels"):
        keras_rf(seq, "b")
    with pytest.raises(UnknownLayerError, match="has no layer 'c'"):
        keras_rf(seq, "c")

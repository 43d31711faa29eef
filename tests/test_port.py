"""Porting PyTorch weights into Keras twins (issue 3): conversions, flatten order, refusals."""

import keras
import numpy as np
import pytest
import torch
from keras import layers
from torch import nn

from utils.agreement import check_agreement
from utils.port import PortError, keras_names_for, port_to_keras, split_call_key
from utils.preprocess import preprocess
from utils.pytorch import models as tm
from utils.tensorflow import models as km


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(0)
    return preprocess(rng.integers(0, 256, (8, 784)), "mnist_cnn")


@pytest.fixture(scope="module")
def mnist_torch():
    torch.manual_seed(0)
    return tm.load_model("mnist_cnn", pretrained=False)


def _mnist_twin(conv2_filters=16, extra_dense=False, fc_bias=True):
    """The MNIST twin, optionally wrong in one place."""
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 3, name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(layers.ReLU(name="relu1")(x))
    x = layers.Conv2D(conv2_filters, 3, name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(layers.ReLU(name="relu2")(x))
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(10, use_bias=fc_bias, name="fc")(x)
    if extra_dense:
        x = layers.Dense(10, name="fc2")(x)
    return keras.Model(inputs, x)


def test_mnist_port_agrees_including_flatten_order(mnist_torch, digits):
    twin = port_to_keras(mnist_torch, km.mnist_cnn_twin())
    report = check_agreement(mnist_torch, twin, ["conv1", "pool2", "flatten", "fc"], digits)
    assert report.passed, str(report)
    np.testing.assert_allclose(km.predict(twin, digits), tm.predict(mnist_torch, digits), atol=1e-5)


def test_naive_dense_transpose_breaks_the_mnist_twin(mnist_torch, digits):
    twin = port_to_keras(mnist_torch, km.mnist_cnn_twin())
    naive = mnist_torch.fc.weight.detach().numpy().T  # ignores the flatten order
    twin.get_layer("fc").set_weights([naive, mnist_torch.fc.bias.detach().numpy()])
    report = check_agreement(mnist_torch, twin, ["pool2", "fc"], digits)
    assert [r.passed for r in report.rows] == [True, False]


def test_depthwise_and_batchnorm_conversion():
    torch.manual_seed(0)
    torch_model = nn.Sequential()
    torch_model.add_module("dw", nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=True))
    torch_model.add_module("bn", nn.BatchNorm2d(6, eps=1e-3))
    torch_model.bn.running_mean.uniform_(-1, 1)
    torch_model.bn.running_var.uniform_(0.5, 2)
    torch_model.bn.weight.data.uniform_(0.5, 2)
    torch_model.bn.bias.data.uniform_(-1, 1)
    inputs = keras.Input((9, 9, 6))
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(inputs)
    x = layers.BatchNormalization(epsilon=1e-3, name="bn")(x)
    twin = port_to_keras(torch_model, keras.Model(inputs, x))
    images = np.random.default_rng(1).standard_normal((2, 9, 9, 6)).astype(np.float32)
    assert check_agreement(torch_model, twin, ["dw", "bn"], images).passed


def test_port_from_a_state_dict(mnist_torch, digits):
    twin = port_to_keras(mnist_torch.state_dict(), km.mnist_cnn_twin())
    np.testing.assert_allclose(km.predict(twin, digits), tm.predict(mnist_torch, digits), atol=1e-5)


def test_refuses_missing_keras_layer(mnist_torch):
    torch_model = tm.load_model("mnist_cnn", pretrained=False)
    torch_model.add_module("head2", nn.Linear(10, 10))
    with pytest.raises(PortError, match="'head2'"):
        port_to_keras(torch_model, km.mnist_cnn_twin())


def test_refuses_extra_keras_layer(mnist_torch):
    with pytest.raises(PortError, match="'fc2'"):
        port_to_keras(mnist_torch, _mnist_twin(extra_dense=True))


def test_refuses_wrong_shape_and_writes_nothing(mnist_torch):
    twin = _mnist_twin(conv2_filters=12)
    before = [w.copy() for w in twin.get_weights()]
    with pytest.raises(PortError, match="'conv2'") as err:
        port_to_keras(mnist_torch, twin)
    assert "(3, 3, 8, 16)" in str(err.value) and "(3, 3, 8, 12)" in str(err.value)
    for a, b in zip(before, twin.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_refuses_bias_mismatch(mnist_torch):
    with pytest.raises(PortError, match="'fc'.*bias"):
        port_to_keras(mnist_torch, _mnist_twin(fc_bias=False))


def test_refuses_non_models():
    with pytest.raises(TypeError, match="state dict"):
        port_to_keras([1, 2], km.mnist_cnn_twin())


def test_keras_names_for_twice_called_relu():
    twin = km.resnet18_twin()
    assert keras_names_for("layer1.0.relu", twin) == ["layer1.0.relu", "layer1.0.relu_1"]
    assert keras_names_for("conv1", twin) == ["conv1"]
    assert keras_names_for("layer3", twin) == ["layer3"]
    with pytest.raises(ValueError, match="layer1.0.relu"):
        keras_names_for("layer1.0.rleu", twin)
    names = ["layer1.0.relu", "conv1"]
    assert split_call_key("layer1.0.relu_1", names) == ("layer1.0.relu", 1)
    assert split_call_key("conv1", names) == ("conv1", 0)

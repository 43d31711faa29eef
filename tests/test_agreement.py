"""The agreement verdict (issues 3 and 9): a twin passes when it agrees with a float64 evaluation
of the PyTorch model as well as PyTorch's own float32 does; porting bugs fail at their first layer.

Every check runs on the four sample images and on *every* layer of the model, in the order the
forward pass runs them, so "the first failing layer" means the first one the bug touches.
"""

import copy
import re

import keras
import numpy as np
import pytest
import torch

from utils.agreement import (
    FACTOR,
    FLOOR_EPS,
    check_agreement,
    reference_maps,
)
from utils.data import load_digits
from utils.images import load_sample
from utils.port import port_to_keras
from utils.preprocess import preprocess
from utils.pytorch import models as tm
from utils.tensorflow import models as km

SAMPLES = ("cat", "coffee", "rocket", "astronaut")
# A correct twin uses at most this share of its allowance at any layer: measured <= 0.26 for the
# three models on every back-end of tests/test_agreement_backends.py (see utils.agreement).
CORRECT_MAX_USAGE = 0.5
# A planted bug exceeds its allowance at its first layer at least this many times (measured >= 260).
BROKEN_MIN_USAGE = 30


def forward_order(torch_model, keras_model, images) -> list[str]:
    """Every leaf module's output key (``name``, ``name_1`` for a second call) that the Keras twin
    also has, in the order PyTorch's forward pass produces them."""
    order, calls, handles = [], {}, []

    def record(name):
        def hook(module, inputs, output):
            calls[name] = calls.get(name, -1) + 1
            order.append(name if calls[name] == 0 else f"{name}_{calls[name]}")

        return hook

    for name, module in torch_model.named_modules():
        if name and not list(module.children()):
            handles.append(module.register_forward_hook(record(name)))
    try:
        with torch.no_grad():
            torch_model.eval()(
                torch.from_numpy(np.ascontiguousarray(images[:1].transpose(0, 3, 1, 2)))
            )
    finally:
        for handle in handles:
            handle.remove()
    keras_names = {layer.name for layer in keras_model.layers}
    return [key for key in order if key in keras_names]


def _first_failure(report):
    return next((r.layer for r in report.rows if not r.passed), None)


def _assert_correct(report, keys):
    assert [r.layer for r in report.rows] == keys
    assert report.passed, str(report)
    worst = report.worst
    assert worst.usage <= CORRECT_MAX_USAGE, (
        f"correct twin too close to failing at {worst.layer}: "
        f"uses {worst.usage:.2f} of its allowance "
        f"(expected <= {CORRECT_MAX_USAGE})\n{report}"
    )


def _assert_fails_first_at(report, layer):
    first = _first_failure(report)
    assert first == layer, f"expected the first failure at {layer!r}, got {first!r}\n{report}"
    rows = {r.layer: r for r in report.rows}
    assert rows[layer].usage >= BROKEN_MIN_USAGE, (
        f"the bug at {layer} exceeds its allowance only {rows[layer].usage:.1f} times "
        f"(expected >= {BROKEN_MIN_USAGE})\n{report}"
    )
    before = report.rows[: [r.layer for r in report.rows].index(layer)]
    assert all(r.usage <= CORRECT_MAX_USAGE for r in before), str(report)


# -- EfficientNet-Lite0, pretrained ----------------------------------------------------------------


@pytest.fixture(scope="module")
def lite0():
    torch_model = tm.load_model("efficientnet_lite0")
    keras_model = km.load_model("efficientnet_lite0")
    images = preprocess([load_sample(n) for n in SAMPLES])
    keys = forward_order(torch_model, keras_model, images)
    return torch_model, keras_model, images, keys


@pytest.fixture(scope="module")
def lite0_report(lite0):
    torch_model, keras_model, images, keys = lite0
    return check_agreement(torch_model, keras_model, keys, images)


def test_lite0_twin_agrees_at_every_layer_on_every_sample(lite0, lite0_report):
    keys = lite0[3]
    assert len(keys) > 100 and keys[0] == "_conv_stem" and keys[-1] == "_fc"
    _assert_correct(lite0_report, keys)
    assert lite0_report.rows[0].shape == (4, 112, 112, 32)
    assert lite0_report.rows[-1].shape == (4, 1000)


def test_lite0_block_outputs_agree(lite0):
    torch_model, keras_model, images, _ = lite0
    blocks = [f"_blocks.{i}" for i in range(16)]
    report = check_agreement(torch_model, keras_model, blocks, images[:2])
    _assert_correct(report, blocks)


def _lite0_wrong_eps(torch_model, keras_model):
    twin = km.load_model("efficientnet_lite0")
    for layer in twin.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.epsilon = 1e-5  # PyTorch's default; the checkpoint needs 1e-3
    return torch_model, twin


def _lite0_reshaped_kernel(torch_model, keras_model):
    twin = km.load_model("efficientnet_lite0")
    layer = twin.get_layer("_blocks.3._project_conv")
    w = torch_model._blocks[3]._project_conv.weight.detach().numpy()
    layer.set_weights([w.reshape(layer.kernel.shape)])  # right shape, scrambled numbers
    return torch_model, twin


def _lite0_symmetric_padding(torch_model, keras_model):
    broken = copy.deepcopy(torch_model)
    old = broken._blocks[5]._depthwise_conv  # 240 channels, 3x3, stride 2
    naive = torch.nn.Conv2d(240, 240, 3, stride=2, padding=1, groups=240, bias=False)
    naive.weight = old.weight
    broken._blocks[5]._depthwise_conv = naive
    return broken, keras_model


@pytest.mark.parametrize(
    "breaker, first",
    [
        (_lite0_wrong_eps, "_bn0"),
        (_lite0_reshaped_kernel, "_blocks.3._project_conv"),
        (_lite0_symmetric_padding, "_blocks.5._depthwise_conv"),
    ],
    ids=["wrong-bn-eps", "reshaped-kernel", "symmetric-padding"],
)
def test_lite0_broken_ports_fail_at_the_first_layer_they_touch(lite0, breaker, first):
    torch_model, keras_model, images, keys = lite0
    broken_torch, broken_keras = breaker(torch_model, keras_model)
    report = check_agreement(broken_torch, broken_keras, keys, images)
    _assert_fails_first_at(report, first)
    assert not report.passed


# -- ResNet-18 with random, non-trivial BatchNorm statistics ------------------------------------


@pytest.fixture(scope="module")
def resnet():
    """Random ResNet-18 with *randomised* BatchNorm statistics and affine parameters: with the
    default statistics (mean 0, var 1) a wrong epsilon or a swapped mean/var would go unseen."""
    torch.manual_seed(0)
    model = tm.load_model("resnet18", pretrained=False)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.05, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    images = preprocess([load_sample(n) for n in SAMPLES], "resnet18")
    keys = forward_order(model, km.resnet18_twin(), images)
    return model, images, keys


def test_resnet18_twin_agrees_at_every_layer_on_every_sample(resnet):
    model, images, keys = resnet
    report = check_agreement(model, port_to_keras(model, km.resnet18_twin()), keys, images)
    _assert_correct(report, keys)
    assert "layer1.0.relu_1" in keys  # the second call of the shared ReLU is compared too


def test_resnet18_shared_module_names_expand_to_every_call(resnet):
    model, images, _ = resnet
    twin = port_to_keras(model, km.resnet18_twin())
    report = check_agreement(model, twin, ["layer1.0.relu", "layer4", "fc"], images[:1])
    assert [r.layer for r in report.rows] == ["layer1.0.relu", "layer1.0.relu_1", "layer4", "fc"]
    assert report.passed, str(report)
    one = check_agreement(model, twin, ["layer4.1.relu_1"], images[:1])
    assert [r.layer for r in one.rows] == ["layer4.1.relu_1"] and one.passed


def _swap(twin, layer, order):
    weights = twin.get_layer(layer).get_weights()
    twin.get_layer(layer).set_weights([weights[i] for i in order])
    return twin


def _resnet_wrong_eps(model):
    return port_to_keras(model, km.resnet18_twin(bn_epsilon=1e-3))  # Keras' default


def _resnet_same_padding(model):
    return port_to_keras(model, km.resnet18_twin(explicit_padding=False))


def _resnet_reshaped_kernel(model):
    twin = port_to_keras(model, km.resnet18_twin())
    w = model.layer2[0].conv2.weight.detach().numpy()  # [out, in, kh, kw]
    twin.get_layer("layer2.0.conv2").set_weights([w.reshape(3, 3, 128, 128)])
    return twin


def _resnet_swapped_statistics(model):
    return _swap(port_to_keras(model, km.resnet18_twin()), "layer3.1.bn2", [0, 1, 3, 2])


@pytest.mark.parametrize(
    "breaker, first",
    [
        (_resnet_wrong_eps, "bn1"),
        (_resnet_same_padding, "conv1"),
        (_resnet_reshaped_kernel, "layer2.0.conv2"),
        (_resnet_swapped_statistics, "layer3.1.bn2"),
    ],
    ids=["wrong-bn-eps", "symmetric-same-padding", "reshaped-kernel", "swapped-bn-statistics"],
)
def test_resnet18_broken_ports_fail_at_the_first_layer_they_touch(resnet, breaker, first):
    model, images, keys = resnet
    report = check_agreement(model, breaker(model), keys, images)
    _assert_fails_first_at(report, first)


# -- the MNIST CNN on real digits ---------------------------------------------------------------


def test_mnist_twin_agrees_at_every_layer_on_real_digits():
    torch.manual_seed(0)
    model = tm.load_model("mnist_cnn", pretrained=False)
    images, _ = load_digits()
    digits = preprocess(images[:64], "mnist_cnn")
    twin = port_to_keras(model, km.mnist_cnn_twin())
    keys = forward_order(model, twin, digits)
    assert {"conv1", "flatten", "fc"} <= set(keys)
    report = check_agreement(model, twin, keys, digits)
    _assert_correct(report, keys)
    rows = {r.layer: r for r in report.rows}
    assert "C,H,W order" in rows["flatten"].note  # compared after reordering PyTorch's flatten


def test_mnist_naive_dense_transpose_fails_at_fc_only():
    torch.manual_seed(0)
    model = tm.load_model("mnist_cnn", pretrained=False)
    digits = preprocess(load_digits()[0][:16], "mnist_cnn")
    twin = port_to_keras(model, km.mnist_cnn_twin())
    naive = model.fc.weight.detach().numpy().T  # ignores the flatten order
    twin.get_layer("fc").set_weights([naive, model.fc.bias.detach().numpy()])
    report = check_agreement(model, twin, ["pool2", "flatten", "fc"], digits)
    assert [r.passed for r in report.rows] == [True, True, False], str(report)


# -- the reference, the criterion, the fallback ---------------------------------------------------


def test_reference_maps_are_float64_and_leave_the_model_alone(lite0):
    torch_model, _, images, _ = lite0
    torch_model.train()
    try:
        ref = reference_maps(torch_model, ["_conv_stem", "_fc"], images[:1])
        assert torch_model.training  # mode restored, model not converted
        assert next(torch_model.parameters()).dtype == torch.float32
    finally:
        torch_model.eval()
    assert ref["_conv_stem"].dtype == np.float64 and ref["_conv_stem"].shape == (1, 32, 112, 112)
    logits32 = tm.predict(torch_model, images[:1])
    # float32 agrees with float64 to float32's precision (and the two are not identical)
    assert 0 < np.abs(ref["_fc"] - logits32).max() <= 1e-4 * np.abs(ref["_fc"]).max()
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        reference_maps(torch_model, ["_fc"], np.zeros((224, 224)))


def test_table_shows_both_errors_and_stable_text_no_numbers(lite0_report):
    table = str(lite0_report)
    for column in ("max abs err", "rel err", "PyTorch f32", "twin", "allowed"):
        assert column in table
    assert re.search(r"_blocks\.3\._relu0 .* \d\.\d\de-0\d .*PASS", table)
    stable = lite0_report.stable_text()
    assert len(stable.splitlines()) == len(lite0_report.rows) + 1
    assert not re.search(r"\d\.\d+e|\d\.\d{3,}", stable)  # no measured numbers that could jitter
    assert stable.endswith(
        f"(vs float64 PyTorch, twin error <= {FACTOR:g} x PyTorch float32 error "
        f"+ {FLOOR_EPS:g} eps)"
        ": all agree"
    )

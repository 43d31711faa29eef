"""The agreement report (issue 3): twins agree to 1e-5, and real porting bugs are caught."""

import math
import re

import numpy as np
import pytest
import torch

from utils.agreement import AgreementReport, check_agreement, compare_activations, relative_error
from utils.images import load_sample
from utils.port import port_to_keras
from utils.preprocess import preprocess
from utils.pytorch import models as tm
from utils.tensorflow import models as km

LITE0_LAYERS = ["_relu0"] + [f"_blocks.{i}" for i in range(16)] + ["_relu1", "_fc"]
RESNET_LAYERS = [
    "conv1", "bn1", "relu", "maxpool",
    "layer1.0.relu", "layer1", "layer2.0.downsample.1", "layer2", "layer3", "layer4",
    "avgpool", "fc",
]  # fmt: skip


@pytest.fixture(scope="module")
def lite0_report():
    torch_model = tm.load_model("efficientnet_lite0")
    keras_model = km.load_model("efficientnet_lite0")
    images = preprocess([load_sample(n) for n in ("cat", "coffee", "rocket", "motorcycle")])
    return check_agreement(torch_model, keras_model, LITE0_LAYERS, images)


def test_lite0_every_block_agrees_on_real_images(lite0_report):
    report = lite0_report
    print(report)
    assert [r.layer for r in report.rows] == LITE0_LAYERS
    assert report.passed, str(report)
    assert all(r.rel_error <= 1e-5 for r in report.rows)
    assert report.rows[0].shape == (4, 112, 112, 32) and report.rows[-1].shape == (4, 1000)


@pytest.fixture(scope="module")
def resnet_pair():
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
    images = preprocess([load_sample(n) for n in ("cat", "astronaut")], "resnet18")
    return model, images


def test_resnet18_twin_agrees_at_every_stage(resnet_pair):
    model, images = resnet_pair
    report = check_agreement(model, port_to_keras(model, km.resnet18_twin()), RESNET_LAYERS, images)
    print(report)
    assert report.passed, str(report)
    keys = [r.layer for r in report.rows]
    assert keys[4:6] == ["layer1.0.relu", "layer1.0.relu_1"]  # both calls of the shared ReLU
    assert len(keys) == len(RESNET_LAYERS) + 1


def _first_failure(report):
    return next(r.layer for r in report.rows if not r.passed)


def test_catches_wrong_batchnorm_epsilon(resnet_pair):
    model, images = resnet_pair
    twin = port_to_keras(model, km.resnet18_twin(bn_epsilon=1e-3))  # Keras' default
    report = check_agreement(model, twin, RESNET_LAYERS, images)
    assert not report.passed
    assert _first_failure(report) == "bn1"


def test_catches_same_padding_on_stride_2(resnet_pair):
    model, images = resnet_pair
    twin = port_to_keras(model, km.resnet18_twin(explicit_padding=False))
    report = check_agreement(model, twin, RESNET_LAYERS, images)
    assert not report.passed
    assert _first_failure(report) == "conv1"


def test_catches_untransposed_kernel(resnet_pair):
    model, images = resnet_pair
    twin = port_to_keras(model, km.resnet18_twin())
    w = model.layer2[0].conv2.weight.detach().numpy()  # [out, in, kh, kw]
    twin.get_layer("layer2.0.conv2").set_weights([w.transpose(3, 2, 1, 0)])  # kh <-> kw swapped
    report = check_agreement(model, twin, RESNET_LAYERS, images)
    assert not report.passed
    assert _first_failure(report) == "layer2"
    assert all(r.passed for r in report.rows[:7])


def test_catches_swapped_batchnorm_statistics(resnet_pair):
    model, images = resnet_pair
    twin = port_to_keras(model, km.resnet18_twin())
    gamma, beta, mean, var = twin.get_layer("layer3.1.bn2").get_weights()
    twin.get_layer("layer3.1.bn2").set_weights([gamma, beta, var, mean])
    report = check_agreement(model, twin, RESNET_LAYERS, images)
    assert _first_failure(report) == "layer3"


def test_select_one_call_of_a_shared_module(resnet_pair):
    model, images = resnet_pair
    twin = port_to_keras(model, km.resnet18_twin())
    report = check_agreement(model, twin, ["layer4.1.relu_1"], images[:1])
    assert [r.layer for r in report.rows] == ["layer4.1.relu_1"] and report.passed


# -- compare_activations and the report itself ---------------------------------------------------


def test_relative_error_is_not_signed():
    a = np.array([1.0, -2.0, 4.0])
    max_abs, rel = relative_error(a, a + np.array([0.1, -0.1, 0.0]))
    assert max_abs == pytest.approx(0.1) and rel == pytest.approx(0.1 / 4)
    assert relative_error(np.zeros(3), np.zeros(3)) == (0.0, 0.0)
    assert relative_error(np.zeros(3), np.ones(3))[1] == math.inf


def test_compare_converts_layout_and_flags_problems():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)  # PyTorch [N, C, H, W]
    b = a.transpose(0, 2, 3, 1)  # Keras [N, H, W, C]
    report = compare_activations(
        {"same": a, "scaled": a, "shape": a, "only_torch": a},
        {"same": b, "scaled": b * 1.001, "shape": b[:, :4], "only_keras": b},
        tol=1e-5,
    )
    rows = {r.layer: r for r in report.rows}
    assert (
        rows["same"].passed and rows["same"].rel_error == 0 and rows["same"].shape == (2, 5, 6, 4)
    )
    assert not rows["scaled"].passed and rows["scaled"].rel_error == pytest.approx(1e-3, rel=1e-3)
    assert not rows["shape"].passed and "shape mismatch" in rows["shape"].note
    assert "missing in Keras" in rows["only_torch"].note
    assert "missing in PyTorch" in rows["only_keras"].note
    assert not report.passed and not report
    assert compare_activations({"x": a}, {"x": b * 1.001}, tol=1e-2).passed
    with pytest.raises(ValueError, match="tol"):
        compare_activations({}, {}, tol=0)
    assert not AgreementReport([], 1e-5).passed


def test_table_and_stable_text(lite0_report):
    table = str(lite0_report)
    assert "max abs err" in table and "_blocks.15" in table and "PASS" in table
    stable = lite0_report.stable_text()
    assert len(stable.splitlines()) == len(LITE0_LAYERS) + 1
    assert not re.search(r"\d\.\d+e", stable)  # no raw floats that could jitter
    assert "rel <= 1e-05" in stable and stable.endswith("all agree")
    a = np.ones((1, 3))
    failing = compare_activations({"fc": a}, {"fc": a * 1.01}).stable_text()
    assert "FAIL  rel >= 1e-02" in failing and "1 of 1 disagree" in failing

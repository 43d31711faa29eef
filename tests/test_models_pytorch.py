"""PyTorch side of the course's models (issue 3): loading, names, weights, errors."""


import numpy as np
import pytest
import torch
from torch import nn

from utils.imagenet import IMAGENET_CLASSES, top_k
from utils.images import load_sample
from utils.preprocess import preprocess
from utils.pytorch import models as tm
from utils.pytorch.models import efficientnet_lite as lite
from utils.pytorch.models import weights


@pytest.fixture(scope="module")
def lite0():
    return tm.load_model("efficientnet_lite0")


def test_lite0_module_names_are_the_checkpoint_keys():
    state = torch.load(
        weights.efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True
    )
    ours = lite.EfficientNetLite0().state_dict()
    assert list(ours) == list(state)  # same keys, same order
    assert all(ours[k].shape == state[k].shape for k in state)


def test_lite0_has_16_blocks_and_named_activations(lite0):
    assert len(lite0._blocks) == 16
    names = dict(lite0.named_modules())
    assert isinstance(names["_relu0"], nn.ReLU6) and isinstance(names["_relu1"], nn.ReLU6)
    assert "_blocks.0._relu0" not in names  # block 0 has no expansion
    for i in range(1, 16):
        assert isinstance(names[f"_blocks.{i}._relu0"], nn.ReLU6)
        assert isinstance(names[f"_blocks.{i}._relu1"], nn.ReLU6)
    # every activation module runs exactly once, so each post-activation map is capturable
    calls = {}
    handles = [
        m.register_forward_hook(lambda m, i, o, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
        for n, m in lite0.named_modules()
        if isinstance(m, nn.ReLU6)
    ]
    with torch.no_grad():
        lite0(torch.zeros(1, 3, 224, 224))
    for h in handles:
        h.remove()
    assert len(calls) == 33 and set(calls.values()) == {1}


@pytest.mark.parametrize(
    "size, kernel, stride, expected",
    [
        (224, 3, 2, (0, 1)),  # stem: TensorFlow pads only bottom/right
        (112, 3, 1, (1, 1)),
        (56, 5, 2, (1, 2)),
        (28, 5, 1, (2, 2)),
        (7, 3, 2, (1, 1)),  # odd size: symmetric
    ],
)
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    left, right, top, bottom = lite.same_padding((size, size), (kernel, kernel), (stride, stride))
    assert (top, bottom) == (left, right) == expected


def test_conv2d_same_differs_from_symmetric_padding_on_stride_2():
    torch.manual_seed(0)
    same = lite.Conv2dSame(3, 4, 3, stride=2)
    sym = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
    sym.weight.data.copy_(same.weight.data)
    x = torch.randn(1, 3, 8, 8)
    a, b = same(x), sym(x)
    assert a.shape == b.shape == (1, 4, 4, 4)
    assert not torch.allclose(a, b)  # the one-pixel shift is real
    # and Conv2dSame equals padding (0, 1) by hand
    ref = nn.functional.conv2d(nn.functional.pad(x, (0, 1, 0, 1)), same.weight, stride=2)
    torch.testing.assert_close(a, ref)


def test_lite0_predicts_egyptian_cat(lite0):
    logits = tm.predict(lite0, preprocess(load_sample("cat")))
    best = top_k(logits[0], 1)[0]
    assert best.label == "Egyptian cat" and best.index == 285
    assert 0.7 < best.probability < 0.85  # DESIGN.md: p ~ 0.79 with the default (uncropped) resize
    assert IMAGENET_CLASSES[285] == "Egyptian cat"


def test_predict_returns_numpy_and_restores_mode(lite0):
    lite0.train()
    x = preprocess([load_sample("coffee"), load_sample("rocket")])
    logits = tm.predict(lite0, x)
    assert lite0.training
    lite0.eval()
    assert isinstance(logits, np.ndarray) and logits.shape == (2, 1000)
    np.testing.assert_allclose(logits, tm.predict(lite0, tm.to_input(x)), rtol=0, atol=1e-5)


def test_to_input_is_a_transpose():
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 3)).astype(np.float32)
    t = tm.to_input(x)
    assert t.shape == (2, 3, 5, 6) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), x.transpose(0, 3, 1, 2))
    assert tm.to_input(x[0]).shape == (1, 3, 5, 6)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        tm.to_input(np.zeros((5, 6)))


def test_unknown_model_lists_the_names():
    with pytest.raises(ValueError) as err:
        tm.load_model("efficientnet_b0")
    for name in tm.MODEL_NAMES:
        assert name in str(err.value)
    assert "efficientnet_lite0" in str(err.value)


def test_pretrained_must_be_bool():
    with pytest.raises(TypeError, match="pretrained"):
        tm.load_model("mnist_cnn", pretrained="yes")


def test_mnist_cnn_random_only():
    with pytest.raises(tm.WeightsNotAvailableError, match="pretrained=False"):
        tm.load_model("mnist_cnn")
    model = tm.load_model("mnist_cnn", pretrained=False)
    assert not model.training
    out = tm.predict(model, preprocess(np.zeros((3, 784)), "mnist_cnn"))
    assert out.shape == (3, 10)


def test_resnet18_random_weights_always_available():
    model = tm.load_model("resnet18", pretrained=False)
    assert not model.training
    assert tm.predict(model, np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 1000)


@pytest.fixture
def empty_hub(tmp_path):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    yield tmp_path
    torch.hub.set_dir(old)


def test_resnet18_missing_weights_fail_fast_with_instructions(empty_hub, monkeypatch):
    """Fast by construction: one reachability check (its own time limit), then an error; no
    download is started. (How long that takes offline is measured in benchmarks/model_load.py.)"""
    asked = []
    monkeypatch.setattr(weights, "can_reach", lambda url, timeout=3.0: asked.append(timeout))  # "no network"

    def no_download(*args, **kwargs):
        raise AssertionError("a download was started")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    with pytest.raises(RuntimeError) as err:
        tm.load_model("resnet18", pretrained=True)
    assert len(asked) == 1 and asked[0] <= 5  # one bounded check, not a retry loop
    assert isinstance(err.value, tm.WeightsNotAvailableError)
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message
    assert str(empty_hub / "checkpoints") in message
    assert "pretrained=False" in message


def test_resnet18_no_download_never_touches_network(empty_hub, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("tried the network")

    monkeypatch.setattr(weights, "can_reach", boom)
    with pytest.raises(tm.WeightsNotAvailableError, match="downloads are switched off"):
        tm.resnet18(pretrained=True, download=False)


def test_resnet18_loads_cached_weights_through_torchvision(empty_hub, monkeypatch):
    monkeypatch.setattr(weights, "can_reach", lambda url, timeout=3.0: False)
    torch.manual_seed(1)
    state = tm.load_model("resnet18", pretrained=False).state_dict()
    path = weights.resnet18_weights_file()
    assert path.parent == empty_hub / "checkpoints"
    path.parent.mkdir()
    torch.save(state, path)
    model = tm.load_model("resnet18", pretrained=True)
    torch.testing.assert_close(model.conv1.weight, state["conv1.weight"])
    assert not model.training

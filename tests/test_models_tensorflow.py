"""Keras twins of the course's models (issue 3): names, predictions, loader."""

import numpy as np
import pytest
import tensorflow as tf
import torch

from utils.imagenet import top_k
from utils.images import load_sample
from utils.preprocess import preprocess
from utils.pytorch import models as tm
from utils.tensorflow import models as km


@pytest.fixture(scope="module")
def lite0_pair():
    return tm.load_model("efficientnet_lite0"), km.load_model("efficientnet_lite0")


@pytest.fixture(scope="module")
def images():
    names = ["cat", "coffee", "rocket", "motorcycle"]
    return names, preprocess([load_sample(n) for n in names])


def _keras_names(model):
    return [layer.name for layer in model.layers]


def test_lite0_twin_has_exactly_the_pytorch_names(lite0_pair):
    torch_model, keras_model = lite0_pair
    torch_names = [n for n, m in torch_model.named_modules() if n and n != "_blocks"]
    keras_names = [n for n in _keras_names(keras_model) if n != "input"]
    assert sorted(keras_names) == sorted(torch_names)


def test_resnet18_twin_names():
    torch_model = tm.load_model("resnet18", pretrained=False)
    keras_names = set(_keras_names(km.resnet18_twin()))
    torch_names = {n for n, _ in torch_model.named_modules() if n}
    containers = {n for n in torch_names if n.endswith(".downsample")}
    assert torch_names - containers <= keras_names
    extra = keras_names - torch_names - {"input"}
    assert all(n.endswith(("_pad", "_add", "_flatten", ".relu_1")) for n in extra), extra
    assert "layer4.1.relu_1" in keras_names and "maxpool_pad" in keras_names


def test_mnist_twin_names_match():
    torch_names = {n for n, _ in tm.load_model("mnist_cnn", pretrained=False).named_modules() if n}
    assert set(_keras_names(km.mnist_cnn_twin())) - {"input"} == torch_names


def test_lite0_predicts_egyptian_cat_in_both(lite0_pair, images):
    _, x = images
    for model, fw in zip(lite0_pair, (tm, km)):
        assert top_k(fw.predict(model, x[:1])[0], 1)[0].label == "Egyptian cat", fw.__name__


def test_lite0_same_top5_in_both(lite0_pair, images):
    names, x = images
    torch_logits = tm.predict(lite0_pair[0], x)
    keras_logits = km.predict(lite0_pair[1], x)
    for name, a, b in zip(names, torch_logits, keras_logits):
        assert [p.index for p in top_k(a)] == [p.index for p in top_k(b)], name
    np.testing.assert_allclose(keras_logits, torch_logits, rtol=0, atol=5e-5)


def test_to_input_and_predict():
    x = np.random.default_rng(0).standard_normal((2, 28, 28, 1)).astype(np.float32)
    t = km.to_input(x)
    assert isinstance(t, tf.Tensor) and t.shape == (2, 28, 28, 1)
    np.testing.assert_array_equal(t.numpy(), x)
    assert km.to_input(x[0]).shape == (1, 28, 28, 1)
    out = km.predict(km.load_model("mnist_cnn", pretrained=False), x)
    assert isinstance(out, np.ndarray) and out.shape == (2, 10)


def test_same_numbers_reach_both_frameworks(images):
    _, x = images
    np.testing.assert_array_equal(
        tm.to_input(x).numpy().transpose(0, 2, 3, 1), km.to_input(x).numpy()
    )


def test_loader_errors_mirror_pytorch():
    with pytest.raises(ValueError, match="resnet18"):
        km.load_model("resnet50")
    with pytest.raises(km.WeightsNotAvailableError):
        km.load_model("mnist_cnn")
    with pytest.raises(TypeError):
        km.load_model("mnist_cnn", pretrained=1)


@pytest.mark.parametrize("name", tm.MODEL_NAMES)
def test_random_twins_build_the_pytorch_architecture(name):
    """A random twin has the PyTorch model's parameters, tensor by tensor in count, and maps the
    same input shape to the same output shape."""
    model = km.load_model(name, pretrained=False)
    torch_model = tm.load_model(name, pretrained=False)
    assert model.name == name
    torch_trainable = sorted(p.numel() for p in torch_model.parameters())
    keras_trainable = sorted(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert keras_trainable == torch_trainable
    torch_stats = sorted(b.numel() for n, b in torch_model.named_buffers() if n.endswith(("running_mean", "running_var")))
    assert sorted(int(np.prod(w.shape)) for w in model.non_trainable_weights) == torch_stats
    size, channels = (28, 1) if name == "mnist_cnn" else (224, 3)
    x = np.random.default_rng(0).random((2, size, size, channels), dtype=np.float32)
    out = model.predict(x, verbose=0)
    with torch.no_grad():
        torch_out = torch_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    assert out.shape == tuple(torch_out.shape) and np.isfinite(out).all()
    assert not np.allclose(out[0], out[1], rtol=1e-3, atol=0)  # the output depends on the input


def test_dropout_is_off_in_predict(lite0_pair, images):
    _, x = images
    keras_model = lite0_pair[1]
    np.testing.assert_array_equal(km.predict(keras_model, x[:1]), km.predict(keras_model, x[:1]))


def test_keras_resnet18_missing_weights_error(tmp_path, monkeypatch):
    import torch

    from utils.pytorch.models import weights

    monkeypatch.setattr(weights, "can_reach", lambda url, timeout=3.0: False)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    try:
        with pytest.raises(km.WeightsNotAvailableError, match="resnet18-f37072fd.pth"):
            km.load_model("resnet18")
    finally:
        torch.hub.set_dir(old)

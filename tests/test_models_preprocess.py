"""One preprocessing path for both frameworks (issue 3)."""

import numpy as np
import pytest

from utils.imagenet import top_k
from utils.images import load_sample
from utils.preprocess import preprocess, resize_and_crop


def test_lite0_scaling_and_shape():
    cat = load_sample("cat")
    x = preprocess(cat)
    assert x.shape == (1, 224, 224, 3) and x.dtype == np.float32
    crop = resize_and_crop(cat, 224, crop=False).astype(np.float32)
    np.testing.assert_array_equal(x[0], (crop - 127) / 128)
    assert x.min() >= -127 / 128 and x.max() <= 1.0


def test_crop_keeps_aspect_and_centre():
    # a 100 x 300 image whose middle third is white: the crop is all white
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 100:200] = 255
    crop = resize_and_crop(image, 50, crop=True)
    assert crop.shape == (50, 50, 3)
    assert crop[:, 5:-5].min() >= 250
    squashed = resize_and_crop(image, 50, crop=False)
    assert squashed.shape == (50, 50, 3) and squashed[:, :10].max() <= 5


def test_resnet_scaling():
    x = preprocess(np.full((32, 40, 3), 255, np.uint8), "resnet18")
    np.testing.assert_allclose(
        x[0, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225], rtol=1e-6
    )


def test_batches_lists_and_deterministic():
    images = [load_sample("coffee"), load_sample("rocket")]
    a = preprocess(images)
    b = preprocess(np.stack([resize_and_crop(i, 300, crop=True) for i in images]))  # other sizes fine
    assert a.shape == b.shape == (2, 224, 224, 3)
    np.testing.assert_array_equal(a, preprocess(images))


def test_mnist_shapes():
    flat = np.arange(2 * 784).reshape(2, 784) % 256
    x = preprocess(flat, "mnist_cnn")
    assert x.shape == (2, 28, 28, 1) and x.dtype == np.float32 and x.max() <= 1
    np.testing.assert_array_equal(preprocess(flat.reshape(2, 28, 28), "mnist_cnn"), x)
    assert preprocess(flat[0].reshape(28, 28), "mnist_cnn").shape == (1, 28, 28, 1)
    with pytest.raises(ValueError, match="0-255"):
        preprocess(-np.ones((1, 784)), "mnist_cnn")
    with pytest.raises(ValueError, match="28"):
        preprocess(np.zeros((2, 30, 30)), "mnist_cnn")


def test_bad_input_and_unknown_model():
    with pytest.raises(ValueError, match="grayscale"):
        preprocess(np.zeros((50, 50), np.uint8))
    with pytest.raises(ValueError, match="RGBA"):
        preprocess(np.zeros((50, 50, 4), np.uint8))
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        preprocess(load_sample("cat"), model="vgg16")


def test_top_k():
    logits = np.zeros(1000)
    logits[[285, 281]] = [3.0, 2.0]
    best = top_k(logits, 2)
    assert [p.label for p in best] == ["Egyptian cat", "tabby"]
    assert best[0].probability > best[1].probability
    assert len(top_k(np.stack([logits, logits]), 3)) == 2
    with pytest.raises(ValueError, match="1000"):
        top_k(np.zeros(10))

"""Dead filters and filter snapshots in Keras, on a digit CNN trained here with fit(); and the two
frameworks agree on the same (ported) weights."""

import copy
import warnings

import numpy as np
import pytest
import torch
from _digit_training import compile_keras, train_torch

from utils.data import load_digits, to_float
from utils.layers import UnknownLayerError
from utils.port import port_to_keras
from utils.pytorch.diagnostics import scan_dead_filters as scan_torch
from utils.pytorch.models import load_model as load_torch
from utils.snapshots import FilterHealthWarning
from utils.tensorflow import conv_filters, feature_maps
from utils.tensorflow.capture import keras
from utils.tensorflow.diagnostics import scan_dead_filters
from utils.tensorflow.models import load_model
from utils.tensorflow.snapshots import FilterSnapshots

PLANTED = [2, 5]


@pytest.fixture(scope="module")
def digits():
    return load_digits(split=True)


@pytest.fixture(scope="module")
def trained(digits):
    """The Keras MNIST CNN trained with fit() (Adam, lr 3e-3, 2 epochs), with the snapshot callback."""
    x_train, y_train, _, _ = digits
    keras.utils.set_random_seed(0)
    model = compile_keras(load_model("mnist_cnn", pretrained=False), 3e-3)
    snaps = FilterSnapshots("conv1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FilterHealthWarning)  # a healthy run must not warn
        model.fit(to_float(x_train), y_train, epochs=2, batch_size=64, verbose=0, callbacks=[snaps])
    return model, snaps


def zero_filters(model, layer, channels):
    conv = model.get_layer(layer)
    kernel, bias = conv.get_weights()
    kernel[..., channels] = 0.0
    bias[channels] = 0.0
    conv.set_weights([kernel, bias])


def test_planted_dead_filters_are_reported_exactly(trained, digits):
    model, _ = trained
    x_test = to_float(digits[2])
    original = model.get_layer("conv1").get_weights()
    try:
        zero_filters(model, "conv1", PLANTED)
        for layer in ("conv1", "relu1"):
            scan = scan_dead_filters(model, layer, x_test, progress=False)
            assert scan.dead == PLANTED, scan.summary()
            assert scan.stats.max[PLANTED].max() == 0.0
        assert scan.framework == "tensorflow" and "2 of 8 channels dead" in scan.summary()
    finally:
        model.get_layer("conv1").set_weights(original)
    assert scan_dead_filters(model, "conv1", x_test, progress=False).dead == []


def test_healthy_trained_layer_reports_none_or_few(trained, digits):
    model, _ = trained
    x_test = to_float(digits[2])
    assert scan_dead_filters(model, "conv1", x_test, progress=False).dead == []
    assert len(scan_dead_filters(model, "conv2", x_test, progress=False).dead) <= 3


def test_streamed_statistics_equal_the_full_computation(trained, digits):
    model, _ = trained
    x = to_float(digits[2])
    full = feature_maps(model, "conv2", x)["conv2"].astype(np.float64)  # [N, 11, 11, 16]
    per_mean, per_max = full.mean(axis=(1, 2)), full.max(axis=(1, 2))
    scan = scan_dead_filters(model, "conv2", x, batch_size=97, top_k=4, progress=False)
    s = scan.stats
    assert s.count == len(x) and s.num_channels == 16
    np.testing.assert_allclose(s.mean, per_mean.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.max, per_max.max(0), rtol=1e-6)
    np.testing.assert_array_equal(s.fire_fraction, (per_max > 0).mean(0))
    _, scores = s.top_images(3)
    np.testing.assert_allclose(scores, np.sort(per_max[:, 3])[::-1][:4], rtol=1e-5)
    # a tf.data pipeline of (x, y) pairs gives the same statistics
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, digits[3])).batch(128)
    streamed = scan_dead_filters(model, "conv2", dataset, progress=False)
    np.testing.assert_allclose(streamed.stats.mean, s.mean, rtol=1e-5, atol=1e-7)
    with pytest.raises(UnknownLayerError, match="conv2"):
        scan_dead_filters(model, "conv3", x, progress=False)


def test_both_frameworks_flag_the_same_planted_filters(digits):
    """The same weights (trained in PyTorch, ported to the Keras twin) give the same scan."""
    x_train, y_train, x_test, _ = digits
    torch.manual_seed(1)
    torch_model = train_torch(load_torch("mnist_cnn", pretrained=False), x_train[:2000],
                              y_train[:2000], epochs=1, lr=3e-3, seed=1)
    broken = copy.deepcopy(torch_model)
    with torch.no_grad():
        broken.conv2.weight[[1, 8, 14]] = 0.0
        broken.conv2.bias[[1, 8, 14]] = 0.0
    keras_model = port_to_keras(broken, load_model("mnist_cnn", pretrained=False))
    x = to_float(x_test)
    torch_scan = scan_torch(broken, "conv2", x, progress=False)
    keras_scan = scan_dead_filters(keras_model, "conv2", x, progress=False)
    assert {1, 8, 14} <= set(torch_scan.dead)
    assert keras_scan.dead == torch_scan.dead
    np.testing.assert_allclose(keras_scan.stats.fire_fraction, torch_scan.stats.fire_fraction,
                               atol=2e-3)  # float rounding may flip a sample at exactly 0


def test_snapshot_callback_records_one_set_of_filters_per_epoch(trained):
    model, snaps = trained
    assert len(snaps.snapshots) == 3 and snaps.epochs == [0, 1, 2]
    assert all(s.shape == (8, 1, 3, 3) for s in snaps.snapshots)
    np.testing.assert_array_equal(snaps.snapshots[-1], conv_filters(model, "conv1"))
    changes = snaps.changes()
    assert changes.shape == (2, 8) and (changes > 1e-3).all()
    assert snaps.inactive() == {"zero": [], "frozen": []}


def test_snapshot_callback_warns_when_filters_stop_changing(digits):
    x_train, y_train, _, _ = digits
    keras.utils.set_random_seed(0)
    model = load_model("mnist_cnn", pretrained=False)
    model.get_layer("conv1").trainable = False  # a layer that never learns
    compile_keras(model, 3e-3)
    snaps = FilterSnapshots("conv1")
    with pytest.warns(FilterHealthWarning, match=r"'conv1' at epoch 1: 8 of 8 filters look dead"):
        model.fit(to_float(x_train[:1000]), y_train[:1000], epochs=1, batch_size=100, verbose=0,
                  callbacks=[snaps])
    assert snaps.epochs == [0, 1] and snaps.inactive()["frozen"] == list(range(8))
    bad = FilterSnapshots("conv9")
    with pytest.raises(UnknownLayerError):
        model.fit(to_float(x_train[:100]), y_train[:100], epochs=1, verbose=0, callbacks=[bad])

"""Dead, redundant and strongest filters and filter snapshots in PyTorch, on a digit CNN trained here."""

import copy
import warnings

import numpy as np
import pytest
import torch
from _digit_training import torch_batches, train_torch

from utils.data import load_digits, to_float
from utils.layers import UnknownLayerError
from utils.pytorch import conv_filters, feature_maps
from utils.pytorch.diagnostics import scan_dead_filters
from utils.pytorch.models import load_model
from utils.pytorch.snapshots import FilterSnapshots
from utils.snapshots import FilterHealthWarning, SnapshotLog
from utils.stats import ChannelStats, dead_filters, strongest_filters

PLANTED = [2, 5]


@pytest.fixture(scope="module")
def digits():
    return load_digits(split=True)


@pytest.fixture(scope="module")
def trained(digits):
    """A healthy MNIST CNN (Adam, lr 3e-3, 2 epochs) and the conv1 snapshots of its training."""
    x_train, y_train, _, _ = digits
    torch.manual_seed(0)
    model = load_model("mnist_cnn", pretrained=False)
    snaps = FilterSnapshots(model, "conv1")
    snaps.record(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FilterHealthWarning)  # a healthy run must not warn
        train_torch(model, x_train, y_train, epochs=2, lr=3e-3, on_epoch_end=snaps.record)
    return model, snaps


def with_dead_filters(model, layer, channels):
    broken = copy.deepcopy(model)
    conv = dict(broken.named_modules())[layer]
    with torch.no_grad():
        conv.weight[channels] = 0.0
        conv.bias[channels] = 0.0
    return broken


def test_planted_dead_filters_are_reported_exactly(trained, digits):
    model, _ = trained
    x_test = to_float(digits[2])
    broken = with_dead_filters(model, "conv1", PLANTED)
    for layer in ("conv1", "relu1"):  # the conv's output and its ReLU agree
        scan = scan_dead_filters(broken, layer, x_test, progress=False)
        assert scan.dead == PLANTED, scan.summary()
        assert scan.stats.fire_fraction[PLANTED].max() == 0.0
        assert scan.stats.max[PLANTED].max() == 0.0
    assert "2 of 8 channels dead" in scan.summary() and "[2, 5]" in scan.summary()
    # conv2: the planted channels join whatever the healthy model already had
    healthy = set(scan_dead_filters(model, "conv2", x_test, progress=False).dead)
    broken2 = with_dead_filters(model, "conv2", [3, 9, 12])
    assert set(scan_dead_filters(broken2, "conv2", x_test, progress=False).dead) == healthy | {3, 9, 12}


def test_healthy_trained_layer_reports_none_or_few(trained, digits):
    model, _ = trained
    x_test = to_float(digits[2])
    assert scan_dead_filters(model, "conv1", x_test, progress=False).dead == []
    assert len(scan_dead_filters(model, "conv2", x_test, progress=False).dead) <= 3
    # an untrained layer at its random start is not "dead" either
    fresh = load_model("mnist_cnn", pretrained=False)
    assert scan_dead_filters(fresh, "conv1", x_test, progress=False).dead == []


def test_streamed_statistics_equal_the_full_computation(trained, digits):
    model, _ = trained
    x = to_float(digits[2])
    full = feature_maps(model, "conv2", x)["conv2"].astype(np.float64)  # [N, 16, 11, 11]
    per_mean, per_max = full.mean(axis=(2, 3)), full.max(axis=(2, 3))
    scan = scan_dead_filters(model, "conv2", x, batch_size=97, top_k=5, progress=False)
    s = scan.stats
    assert s.count == len(x)
    np.testing.assert_allclose(s.mean, per_mean.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.std, per_mean.std(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(s.max, per_max.max(0), rtol=1e-6)
    np.testing.assert_array_equal(s.fire_fraction, (per_max > 0).mean(0))
    for channel in (0, 7, 15):
        indices, scores = s.top_images(channel)
        expected = np.argsort(-per_max[:, channel], kind="stable")[:5]
        np.testing.assert_allclose(scores, per_max[expected, channel], rtol=1e-5)
        # the indices point at images with those scores (ties may swap equal images, nothing else)
        assert len(set(indices.tolist())) == 5
        np.testing.assert_allclose(per_max[np.asarray(indices), channel], scores, rtol=1e-5)
    # ChannelStats fed unevenly sized batches gives the same as one batch
    one = ChannelStats().update(full, layout="channels_first")
    many = ChannelStats()
    for a, b in ((0, 7), (7, 300), (300, len(full))):
        many.update(full[a:b], layout="channels_first")
    np.testing.assert_allclose(many.mean, one.mean, rtol=1e-12)
    np.testing.assert_array_equal(many.fire_fraction, one.fire_fraction)


def test_scan_input_kinds_hooks_and_mode(trained, digits):
    model, _ = trained
    x = to_float(digits[2][:300])
    reference = scan_dead_filters(model, "conv2", x, progress=False)
    tensor = torch_batches(digits[2][:300])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(tensor, torch.zeros(300)), batch_size=64)
    for source in (tensor, loader):
        other = scan_dead_filters(model, "conv2", source, progress=False)
        np.testing.assert_allclose(other.stats.mean, reference.stats.mean, rtol=1e-6)
        assert other.dead == reference.dead
    model.train()
    scan_dead_filters(model, "conv2", x[:10], progress=True)  # the tqdm bar must not break it
    assert model.training  # restored
    model.eval()
    assert not any(m._forward_hooks for m in model.modules())  # hook removed
    with pytest.raises(UnknownLayerError, match="conv2"):
        scan_dead_filters(model, "conv3", x, progress=False)
    assert not any(m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="fire_threshold"):
        dead_filters(reference.stats, fire_threshold=0.5)
    assert dead_filters(reference.stats, fire_threshold=0.0, min_fraction=0.01) == reference.dead


def test_strongest_filters_rank_by_mean_activation(trained, digits):
    model, _ = trained
    maps = feature_maps(model, "relu1", to_float(digits[2][:50]))["relu1"]
    one = strongest_filters(maps[0], "channels_first", k=3)
    expected = np.argsort(-maps[0].mean(axis=(1, 2)))[:3]
    assert [c for c, _ in one] == expected.tolist()
    assert one[0][1] == pytest.approx(float(maps[0].mean(axis=(1, 2)).max()), rel=1e-5)
    many = strongest_filters(maps, "channels_first", k=8)
    assert [c for c, _ in many] == np.argsort(-maps.mean(axis=(0, 2, 3))).tolist()
    # Keras layout gives the same ranking
    assert strongest_filters(np.transpose(maps, (0, 2, 3, 1)), "channels_last", k=8) == many


def test_snapshots_record_one_set_of_filters_per_epoch(trained):
    model, snaps = trained
    assert len(snaps.snapshots) == 3 and snaps.epochs == [0, 1, 2]
    assert all(s.shape == (8, 1, 3, 3) for s in snaps.snapshots)
    np.testing.assert_array_equal(snaps.snapshots[-1], conv_filters(model, "conv1"))
    changes = snaps.changes()
    assert changes.shape == (2, 8) and (changes > 1e-3).all()
    assert not np.array_equal(snaps.snapshots[0], snaps.snapshots[1])
    assert snaps.inactive() == {"zero": [], "frozen": []}
    with pytest.raises(ValueError):
        snaps.snapshots[0][0, 0, 0, 0] = 1.0  # read-only copies, not views of the weights


def test_snapshots_warn_when_filters_stop_changing(digits):
    x_train, y_train, _, _ = digits
    torch.manual_seed(0)
    model = load_model("mnist_cnn", pretrained=False)
    model.conv1.requires_grad_(False)  # a layer that never learns
    snaps = FilterSnapshots(model, "conv1")
    snaps.record(0)
    with pytest.warns(FilterHealthWarning, match=r"'conv1' at epoch 1: 8 of 8 filters look dead"):
        train_torch(model, x_train[:1000], y_train[:1000], epochs=1, lr=3e-3,
                    on_epoch_end=snaps.record)
    assert snaps.inactive()["frozen"] == list(range(8))
    with pytest.raises(UnknownLayerError):
        FilterSnapshots(model, "conv9")


def test_snapshot_log_flags_near_zero_norms(trained):
    model, _ = trained
    w = conv_filters(model, "conv2")
    log = SnapshotLog("conv2", max_inactive_fraction=0.25)
    log.add(w)
    shrunk = w.copy()
    shrunk[:6] = 0.0  # 6 of 16 filters collapsed to zero
    with pytest.warns(FilterHealthWarning, match="6 have a near-zero norm"):
        log.add(shrunk)
    assert log.inactive()["zero"] == list(range(6))
    quiet = SnapshotLog("conv2", warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.add(w)
        quiet.add(shrunk)

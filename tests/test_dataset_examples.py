"""Dataset examples (issue 12): streamed top-k patches per channel over crops of the offline photos
equal a brute-force search, do not depend on the batch size, cut exactly the receptive-field box,
and agree across frameworks by the float64 criterion."""

import copy

import numpy as np
import pytest

from utils.agreement import compare_activations
from utils.dataset_examples import PhotoCrops
from utils.layers import UnknownLayerError
from utils.maximize import pixel_scaling
from utils.pytorch.dataset_examples import dataset_examples
from utils.pytorch.receptive_field import receptive_field

LAYER, K = "_blocks.6._bn1", 5


@pytest.fixture(scope="module")
def crops():
    return PhotoCrops(count=40, size=96, seed=3)


@pytest.fixture(scope="module")
def result(torch_lite0, crops):
    return dataset_examples(torch_lite0, LAYER, crops, k=K, batch_size=16, progress=False)


def _separated(scores, rel=1e-4):
    """Ranks whose score is clear of both neighbours: only there can the order not flip."""
    gaps = np.abs(np.diff(scores, axis=1)) > rel * np.abs(scores).max()
    clear = np.zeros(scores.shape, dtype=bool)  # the last rank's lower neighbour was not kept
    clear[:, :-1] = gaps
    clear[:, 1:-1] &= gaps[:, :-1]
    return clear


def test_crops_are_deterministic_and_lazy():
    a, b = PhotoCrops(10, 64, seed=1), PhotoCrops(10, 64, seed=1)
    assert len(a) == 10 and a[3].shape == (64, 64, 3) and a[3].dtype == np.uint8
    assert np.array_equal(a[7], b[7]) and np.array_equal(a[-1], a[9])
    assert not np.array_equal(a[7], PhotoCrops(10, 64, seed=2)[7])
    with pytest.raises(IndexError, match="out of range: 10 crops"):
        a[10]


@pytest.mark.slow
def test_top_scores_equal_a_brute_force_search(torch_lite0, crops, result):
    from utils.pytorch import feature_maps

    x = pixel_scaling("efficientnet_lite0").to_input(np.stack(list(crops)))
    maps = np.concatenate([feature_maps(torch_lite0, LAYER, x[i:i + 16])[LAYER] for i in range(0, 40, 16)])
    peaks = maps.max(axis=(2, 3))  # [images, channels]
    np.testing.assert_array_equal(result.scores, -np.sort(-peaks, axis=0)[:K].T)
    assert result.stats.count == 40
    np.testing.assert_allclose(result.stats.max, peaks.max(0))
    np.testing.assert_allclose(result.stats.mean, maps.mean(axis=(2, 3), dtype=np.float64).mean(0))
    chans = np.arange(len(result.channels))[:, None]
    np.testing.assert_array_equal(maps[result.indices, chans, result.rows, result.cols], result.scores)


@pytest.mark.slow
def test_batch_size_does_not_matter_and_patches_are_the_box(torch_lite0, crops, result):
    one = dataset_examples(torch_lite0, LAYER, np.stack(list(crops)), k=K, batch_size=1, progress=False)
    np.testing.assert_allclose(one.scores, result.scores, rtol=1e-5)
    ok = _separated(result.scores)
    assert ok.mean() > 0.6
    for name in ["indices", "rows", "cols"]:
        np.testing.assert_array_equal(getattr(one, name)[ok], getattr(result, name)[ok])
    assert result.field == receptive_field(torch_lite0, LAYER, 96)
    for channel, rank in [(2, 0), (13, 1), (20, 4)]:
        top, left, bottom, right = result.field.box(result.rows[channel, rank], result.cols[channel, rank], (96, 96))
        image = crops[int(result.indices[channel, rank])]
        np.testing.assert_array_equal(result.patch(channel, rank), image[top:bottom, left:right])
        assert result.box(channel, rank) == (top, left, bottom, right)


@pytest.mark.slow
def test_both_frameworks_agree(torch_lite0, crops, result):
    from utils.plots import plot_dataset_examples
    from utils.tensorflow.dataset_examples import dataset_examples as keras_examples
    from utils.tensorflow.models import load_model as load_keras

    keras = keras_examples(load_keras("efficientnet_lite0"), LAYER, crops, k=K, progress=False)
    double = dataset_examples(copy.deepcopy(torch_lite0).double(), LAYER, crops, k=K, progress=False)
    report = compare_activations({"scores": result.scores}, {"scores": keras.scores},
                                 reference={"scores": double.scores})
    assert report.passed, str(report)
    ok = _separated(double.scores, 1e-3)
    np.testing.assert_array_equal(keras.indices[ok], result.indices[ok])
    assert keras.field == result.field
    fig = plot_dataset_examples(keras, [2, 13], k=3)
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == f"{keras.scores[2, 0]:.2f}"


def test_bad_input_is_refused(torch_lite0, crops):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        dataset_examples(torch_lite0, LAYER, crops, batch_size=0)
    with pytest.raises(UnknownLayerError, match="has no layer"):
        dataset_examples(torch_lite0, "_blocks.6.bn1", crops)
    floats = pixel_scaling("efficientnet_lite0").to_input(np.stack([crops[0], crops[1]]))
    with pytest.raises(ValueError, match="float image must hold values in"):
        dataset_examples(torch_lite0, LAYER, floats, progress=False)
    with pytest.raises(ValueError, match="all images must have one size"):
        dataset_examples(torch_lite0, LAYER, [crops[0], crops[1][:64]], progress=False)
    with pytest.raises(ValueError, match="the input was empty"):
        dataset_examples(torch_lite0, LAYER, [], progress=False)
    small = [crops[i] for i in range(3)]
    with pytest.raises(IndexError, match="out of range"):
        dataset_examples(torch_lite0, LAYER, small, channels=[2, 999], progress=False)
    once = dataset_examples(torch_lite0, LAYER, iter(small), channels=[2], k=2, progress=False)
    assert once.scores.shape == (1, 2)
    with pytest.raises(ValueError, match="one-pass iterator"):
        once.patch(2)

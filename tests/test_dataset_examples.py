"""Dataset examples (issue 12): streamed top-k patches per channel over crops of the offline photos
equal a brute-force search, do not depend on the batch size, cut exactly the receptive-field box,
and agree across frameworks by the float64 criterion."""

import copy
import re

import numpy as np
import pytest

from utils.agreement import compare_activations
from utils.dataset_examples import PhotoCrops, collect
from utils.images import load_sample
from utils.layers import UnknownLayerError
from utils.maximize import pixel_scaling
from utils.preprocess import resize_and_crop
from utils.pytorch.dataset_examples import dataset_examples
from utils.pytorch.receptive_field import receptive_field
from utils.receptive_field import ReceptiveField

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


# -- the streaming itself, on a NumPy "layer" (no framework: fast, and what mutation testing runs) ---
def _numpy_layer(batch):
    """uint8 [B, 12, 20, 3] -> float32 maps [B, 4, 3, 5]: each channel a fixed mix of colours,
    pooled 4 x 4 (a wide map: rows, columns and channels kept apart)."""
    mix = np.array([[1.0, -0.5, 0.2], [-0.3, 1.0, 0.1], [0.2, 0.4, -1.0], [0.5, 0.5, 0.5]])
    pooled = batch.reshape(len(batch), 3, 4, 5, 4, 3).astype(np.float64).mean(axis=(2, 4))
    return np.einsum("bhwc,kc->bkhw", pooled, mix).astype(np.float32)


# the 4 x 4 pool seen with a border: position (r, c) sees rows 4r - 1 .. 4r + 4, clipped to the image
FIELD = ReceptiveField((6, 6), (4, 4), (-1, -1))


def _examples(images, channels=None, k=3, batch_size=5, progress=False, run=_numpy_layer, sizes=None):
    sizes = [] if sizes is None else sizes  # the image sizes the receptive field was asked for

    def field_of(size):
        sizes.append(size)
        return FIELD

    return collect(images, "pool", "numpy", run, field_of, channels, k, batch_size, progress)


@pytest.fixture(scope="module")
def noise_images():
    return np.random.default_rng(0).integers(0, 256, (23, 12, 20, 3), dtype=np.uint8)


@pytest.mark.parametrize("batch_size", [1, 4, 7, 23, 64])
def test_collect_equals_a_brute_force_search(noise_images, batch_size):
    sizes = []
    result = _examples(noise_images, batch_size=batch_size, sizes=sizes)
    maps = _numpy_layer(noise_images).reshape(23, 4, -1)  # every image at once
    peak = maps.max(-1)                                   # [images, channels]
    order = np.argsort(-peak, axis=0, kind="stable")[:3].T  # [channels, 3], best first
    np.testing.assert_array_equal(result.indices, order)
    np.testing.assert_allclose(result.scores, np.take_along_axis(peak.T, order, 1))
    where = maps.argmax(-1).T                             # [channels, images]
    np.testing.assert_array_equal(result.rows * 5 + result.cols, np.take_along_axis(where, order, 1))
    assert (result.layer, result.framework, result.channels) == ("pool", "numpy", [0, 1, 2, 3])
    assert result.image_size == (12, 20) and sizes == [(12, 20)] and result.field == FIELD
    np.testing.assert_allclose(result.stats.mean, maps.mean(-1, dtype=np.float64).mean(0))
    for channel, rank in [(2, 0), (1, 2)]:
        row, col = result.rows[channel, rank], result.cols[channel, rank]
        box = (max(4 * row - 1, 0), max(4 * col - 1, 0), min(4 * row + 5, 12), min(4 * col + 5, 20))
        assert result.box(channel, rank) == box
        image = noise_images[order[channel, rank]]
        np.testing.assert_array_equal(result.patch(channel, rank), image[box[0]:box[2], box[1]:box[3]])
    assert result.box(1) == result.box(1, 0)  # the best example by default
    np.testing.assert_array_equal(result.patch(1), result.patch(1, 0))


def test_statistics_accumulate_in_float64():
    # float32 maps whose float32 mean rounds: 2**24 + 1 is not a float32
    run = lambda b: np.tile(np.array([2.0 ** 24, 1, 1, 1], np.float32), (len(b), 1, 1, 1))  # noqa: E731
    result = _examples(np.zeros((2, 12, 20, 3), np.uint8), k=1, run=run)
    assert result.stats.mean[0] == (2 ** 24 + 3) / 4


def test_collect_reports_the_chosen_channels_and_refuses_what_it_cannot_use(noise_images):
    some, everything = _examples(noise_images, [3, 1], k=2), _examples(noise_images, k=2)
    assert some.channels == [3, 1] and some.indices.shape == (2, 2)
    np.testing.assert_array_equal(some.indices, everything.indices[[3, 1]])
    np.testing.assert_array_equal(some.rows, everything.rows[[3, 1]])
    np.testing.assert_array_equal(some.cols, everything.cols[[3, 1]])
    for channels in ([4], [-1]):
        with pytest.raises(IndexError, match=re.escape(f"channels {channels} out of range: the layer has 4")):
            _examples(noise_images, channels)
    with pytest.raises(ValueError, match=r"^layer 'pool' gives shape \(5, 4\); expected maps \[N, C, h, w\]$"):
        _examples(noise_images, run=lambda b: np.zeros((len(b), 4)))
    for size in (0, 2.0, True):
        with pytest.raises(ValueError, match=f"^batch_size must be a positive int, got {size}$"):
            _examples(noise_images, batch_size=size)
    for images in ([noise_images[0], noise_images[2][:, :12]], [*noise_images[:2], noise_images[2][:, :12]]):
        with pytest.raises(ValueError, match=r"^all images must have one size: \(12, 12, 3\) after \(12, 20, 3\)$"):
            _examples(images)
    with pytest.raises(ValueError, match=r"^dataset_examples expects uint8 RGB images; image: expected an RGB image"):
        _examples([noise_images[0, :, :, 0]])
    with pytest.raises(ValueError, match="^no images to scan: the input was empty$"):
        _examples([])
    once = _examples(iter(noise_images), k=2)
    assert once.images is None and once.indices.shape == (4, 2)
    with pytest.raises(ValueError, match=r"^the images were a one-pass iterator: pass a sequence \(a list, an "
                                         r"array, PhotoCrops\) to dataset_examples to cut patches$"):
        once.patch(0)


def test_collect_shows_a_progress_bar_named_after_the_layer(noise_images, monkeypatch):
    import utils.dataset_examples as neutral

    bars = []
    monkeypatch.setattr(neutral, "progress_bar", lambda it, on, **kw: bars.append((on, kw)) or it)
    _examples(noise_images, progress=True)
    assert bars == [(True, {"desc": "examples pool"})]


def test_crops_of_a_square_photo_at_full_scale_are_the_photo():
    crops = PhotoCrops(count=4, size=32, names=("astronaut",), scales=(1.0,))  # 512 x 512
    whole = resize_and_crop(load_sample("astronaut"), 32)
    assert all(np.array_equal(crops[i], whole) for i in range(-4, 4))
    default = PhotoCrops()
    assert len(default) == 256 and default[5].shape == (96, 96, 3)
    np.testing.assert_array_equal(default[5], PhotoCrops(seed=0, size=96)[5])


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

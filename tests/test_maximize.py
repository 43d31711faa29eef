"""Activation maximisation in both frameworks (issue 5): it raises the target channel far above
its value on the starting image, it is reproducible, and both frameworks run the same loop."""

import numpy as np
import pytest
import torch

from utils import maximize as neutral
from utils.images import SAMPLE_IMAGES, load_sample
from utils.preprocess import preprocess, resize_and_crop
from utils.pytorch.maximize import channel_activation as torch_activation
from utils.pytorch.maximize import maximize_activation as torch_maximize
from utils.pytorch.models import load_model as load_torch

SIZE = 64
# (layer, channel): a stem colour detector (after its ReLU6; a blue filter) and a texture channel
# in block 6 (before its ReLU6). Both are low on the cat and far higher after 40 steps.
TARGETS = [("_relu0", 3), ("_blocks.6._bn1", 12)]


@pytest.fixture(scope="module")
def keras_side():
    from utils.tensorflow.maximize import channel_activation, maximize_activation
    from utils.tensorflow.models import load_model

    return load_model("efficientnet_lite0"), maximize_activation, channel_activation


@pytest.fixture(scope="module")
def cat():
    return load_sample("cat")


def _frameworks(torch_lite0, keras_side):
    model, maximize, activation = keras_side
    return [("pytorch", torch_lite0, torch_maximize, torch_activation), ("tensorflow", model, maximize, activation)]


@pytest.mark.parametrize("layer, channel", TARGETS)
def test_raises_the_channel_far_above_the_starting_image(torch_lite0, keras_side, layer, channel):
    start = neutral.starting_image(SIZE, seed=0)  # what maximize_activation starts from by default
    photos = [resize_and_crop(load_sample(name), SIZE, crop=False) for name in SAMPLE_IMAGES]
    for name, model, maximize, activation in _frameworks(torch_lite0, keras_side):
        image, history = maximize(model, layer, channel, size=SIZE)
        assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8, name
        before = activation(model, layer, channel, start)
        after = activation(model, layer, channel, image)  # measured on the returned uint8 pixels
        # history[0] is measured on the start image rolled by the first step's jitter
        first_shift = neutral.jitter_shifts(neutral.DEFAULTS["steps"], neutral.DEFAULTS["jitter"], seed=0)[0]
        rolled = np.roll(start, tuple(int(s) for s in first_shift), axis=(0, 1))
        # (to rounding: the gains asked for below are 2.0; the unrolled start differs by ~0.3)
        assert history[0] == pytest.approx(activation(model, layer, channel, rolled), abs=1e-3), name
        assert after > before + 2.0, (name, before, after)
        assert history[-1] > history[0] + 2.0, name
        # not just "more than grey noise": more than any of the course's seven photos gives
        best_photo = max(activation(model, layer, channel, p) for p in photos)
        assert after > best_photo + 1.5, (name, best_photo, after)


def test_a_photo_as_start(torch_lite0, cat):
    start = resize_and_crop(cat, SIZE, crop=False)
    image, history = torch_maximize(torch_lite0, "_blocks.6._bn1", 12, size=SIZE, start=cat)
    shift = neutral.jitter_shifts(neutral.DEFAULTS["steps"], neutral.DEFAULTS["jitter"], seed=0)[0]
    rolled = np.roll(neutral.starting_image(SIZE, 0, cat), tuple(int(s) for s in shift), axis=(0, 1))
    assert history[0] == pytest.approx(torch_activation(torch_lite0, "_blocks.6._bn1", 12, rolled), abs=1e-3)
    assert history[-1] > history[0] + 5.0
    assert np.abs(image.astype(int) - start).mean() > 5  # the photo was changed, not kept


def test_same_seed_same_result_other_seed_other_result(torch_lite0, keras_side):
    for name, model, maximize, _ in _frameworks(torch_lite0, keras_side):
        a = maximize(model, "_blocks.2._bn1", 7, size=SIZE, steps=15, seed=3)
        b = maximize(model, "_blocks.2._bn1", 7, size=SIZE, steps=15, seed=3)
        c = maximize(model, "_blocks.2._bn1", 7, size=SIZE, steps=15, seed=4)
        np.testing.assert_array_equal(a.image, b.image, err_msg=name)
        np.testing.assert_array_equal(a.history, b.history, err_msg=name)
        assert not np.array_equal(a.image, c.image), name


def test_both_frameworks_run_the_same_loop(torch_lite0, keras_side):
    """Same seed -> the same starting noise and jitter in both frameworks; on the stem (a short,
    well-conditioned path) the twins then produce the same image up to rounding."""
    keras_model, keras_maximize, _ = keras_side
    ours = torch_maximize(torch_lite0, "_relu0", 10, size=SIZE, steps=20)
    theirs = keras_maximize(keras_model, "_relu0", 10, size=SIZE, steps=20)
    np.testing.assert_allclose(ours.history, theirs.history, rtol=1e-3, atol=1e-3)
    assert np.abs(ours.image.astype(int) - theirs.image).max() <= 2


def test_torch_model_is_not_changed(cat):
    model = load_torch("efficientnet_lite0").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch_maximize(model, "_blocks.1._bn1", 0, size=32, steps=3)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics included


def test_progress_bar_and_settings(torch_lite0, keras_side, capsys):
    keras_model, keras_maximize, _ = keras_side
    torch_maximize(torch_lite0, "_relu0", 0, size=32, steps=2, progress=True)
    assert "_relu0[0]" in capsys.readouterr().err  # tqdm writes to stderr
    torch_maximize(torch_lite0, "_relu0", 0, size=32, steps=2)
    assert capsys.readouterr().err == ""  # short runs stay quiet by default
    for maximize, model in ((torch_maximize, torch_lite0), (keras_maximize, keras_model)):
        with pytest.raises(ValueError, match="32 channels"):
            maximize(model, "_relu0", 32, size=32, steps=1)
        with pytest.raises(ValueError, match="steps"):
            maximize(model, "_relu0", 0, steps=0)
        with pytest.raises(ValueError, match="jitter"):
            maximize(model, "_relu0", 0, size=32, jitter=16)
        with pytest.raises(ValueError, match="start"):
            maximize(model, "_relu0", 0, size=32, start=np.zeros((40, 40, 3), np.float32))
        with pytest.raises(ValueError, match="layer"):
            maximize(model, "_relu9", 0, size=32, steps=1)


def test_pixel_scaling_round_trip_matches_preprocess(cat):
    crop = resize_and_crop(cat, crop=True)
    lite = neutral.pixel_scaling("efficientnet_lite0")
    np.testing.assert_allclose(lite.to_input(crop), preprocess(cat, crop=True)[0], atol=1e-6)
    np.testing.assert_array_equal(lite.to_pixels(lite.to_input(crop)), crop)
    resnet = neutral.pixel_scaling("resnet18")
    np.testing.assert_allclose(resnet.to_input(crop), preprocess(cat, "resnet18", crop=True)[0], atol=1e-5)
    np.testing.assert_array_equal(resnet.to_pixels(resnet.to_input(crop)), crop)
    low, high = lite.bounds
    np.testing.assert_allclose(low, np.full(3, -127 / 128), rtol=1e-6)
    np.testing.assert_allclose(high, np.full(3, 128 / 128), rtol=1e-6)
    with pytest.raises(ValueError, match="preprocessing"):
        neutral.pixel_scaling("vgg")


def test_starting_image_and_jitter_are_seeded():
    a, b = neutral.starting_image(32, seed=1), neutral.starting_image(32, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (32, 32, 3) and a.dtype == np.float32
    assert abs(float(a.mean())) < 0.05 and 0.03 < float(a.std()) < 0.15  # grey with a little noise
    assert not np.array_equal(a, neutral.starting_image(32, seed=2))
    shifts = neutral.jitter_shifts(50, 3, seed=1)
    assert shifts.shape == (50, 2) and shifts.min() >= -3 and shifts.max() <= 3
    np.testing.assert_array_equal(shifts, neutral.jitter_shifts(50, 3, seed=1))
    assert not neutral.jitter_shifts(5, 0, seed=1).any()

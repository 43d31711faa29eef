"""Offline sample images, user image files, and clear errors for every kind of bad input."""

import numpy as np
import pytest
from PIL import Image

from utils.images import SAMPLE_IMAGES, check_rgb, load_image, load_sample


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_every_sample_is_rgb_uint8(name):
    image = load_sample(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] >= 200 and image.std() > 10  # a real photograph, not a blank
    assert not image.flags.writeable  # cached: nobody may edit it in place


def test_cat_is_chelsea_and_samples_differ():
    import skimage.data

    np.testing.assert_array_equal(load_sample("cat"), skimage.data.chelsea())
    assert load_sample("flower").shape != load_sample("cat").shape


def test_unknown_sample_suggests():
    with pytest.raises(ValueError, match="Did you mean 'motorcycle'"):
        load_sample("motorcyle")


def test_load_image_file_round_trip(tmp_path):
    path = tmp_path / "cat.png"
    Image.fromarray(load_sample("cat")).save(path)
    np.testing.assert_array_equal(load_image(path), load_sample("cat"))


def test_load_image_refuses_then_converts_rgba_and_gray(tmp_path):
    rgba = np.dstack([load_sample("cat"), np.full(load_sample("cat").shape[:2], 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    with pytest.raises(ValueError, match="RGBA.*convert=True"):
        load_image(tmp_path / "rgba.png")
    assert load_image(tmp_path / "rgba.png", convert=True).shape[2] == 3
    Image.fromarray(load_sample("cat")[..., 0]).save(tmp_path / "gray.png")
    with pytest.raises(ValueError, match="grayscale"):
        load_image(tmp_path / "gray.png")
    assert load_image(tmp_path / "gray.png", convert=True).shape[2] == 3


def test_missing_folder_and_non_image_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image file at"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(IsADirectoryError):
        load_image(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="not an image file"):
        load_image(tmp_path / "notes.txt")


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((32, 32), np.uint8), "grayscale"),
        (np.zeros((32, 32, 1), np.uint8), "grayscale"),
        (np.zeros((32, 32, 4), np.uint8), "RGBA"),
        (np.zeros((3, 32, 32), np.uint8), "channels first"),
        (np.zeros((2, 32, 32, 3), np.uint8), "batch"),
        (np.zeros((32, 32, 5), np.uint8), r"\[H, W, 3\]"),
        (np.zeros((32, 32, 3), np.int64), "dtype uint8"),
        (np.zeros((32, 32, 3), bool), "dtype uint8"),
        (np.full((32, 32, 3), 200.0), r"\[0, 1\]"),
        (np.full((32, 32, 3), np.nan), "NaN"),
        (np.zeros((4, 4, 3), np.uint8), "too small"),
    ],
)
def test_bad_arrays_get_clear_errors(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        check_rgb(bad)


def test_not_an_array():
    with pytest.raises(TypeError, match="NumPy array"):
        check_rgb("cat.jpg")


def test_float_images_in_unit_range_are_accepted():
    image = check_rgb(np.full((16, 16, 3), 0.5))
    assert image.dtype == np.uint8 and image[0, 0, 0] == 128

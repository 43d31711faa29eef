"""A planted shortcut: digits whose background colour predicts the label in training.

The biased model must collapse on a test set with shuffled colours; a model trained on
independent colours must not. Seeded, one epoch on the 4,000 training digits.
"""

import numpy as np
import pytest
from _digit_training import colour_cnn_torch, torch_accuracy, train_torch

from utils.data import coloured_digits, load_digits, to_float


@pytest.fixture(scope="module")
def colour_sets():
    x_train, y_train, x_test, y_test = load_digits(split=True)
    return {
        "biased_train": coloured_digits(x_train, y_train, shortcut=True, rng=np.random.default_rng(1)),
        "fair_train": coloured_digits(x_train, y_train, shortcut=False, rng=np.random.default_rng(1)),
        "same_colours_test": coloured_digits(x_test, y_test, shortcut=True, rng=np.random.default_rng(2)),
        "shuffled_test": coloured_digits(x_test, y_test, shortcut=False, rng=np.random.default_rng(3)),
        "y_train": y_train,
        "y_test": y_test,
    }


def test_biased_model_fails_on_shuffled_colours_fair_model_does_not(colour_sets):
    s = colour_sets
    accuracy = {}
    for name in ("biased", "fair"):
        model = train_torch(colour_cnn_torch(), s[f"{name}_train"], s["y_train"], epochs=1, lr=3e-3)
        accuracy[name] = {
            "same": torch_accuracy(model, s["same_colours_test"], s["y_test"]),
            "shuffled": torch_accuracy(model, s["shuffled_test"], s["y_test"]),
        }
    biased, fair = accuracy["biased"], accuracy["fair"]
    assert biased["same"] > 0.85, accuracy                      # looks great on its own test set
    assert biased["same"] - biased["shuffled"] > 0.30, accuracy  # ... and collapses without the cue
    assert fair["shuffled"] > 0.70, accuracy
    assert abs(fair["same"] - fair["shuffled"]) < 0.08, accuracy


def test_keras_biased_model_fails_on_shuffled_colours(colour_sets):
    from _digit_training import colour_cnn_keras, compile_keras

    from utils.tensorflow.capture import keras

    s = colour_sets
    accuracy = {}
    for name in ("biased", "fair"):
        keras.utils.set_random_seed(0)
        model = compile_keras(colour_cnn_keras(), 3e-3)
        model.fit(to_float(s[f"{name}_train"]), s["y_train"], epochs=1, batch_size=64, verbose=0)
        accuracy[name] = {
            key: float((model.predict(to_float(s[f"{key}_test" if key == "shuffled" else "same_colours_test"]),
                                      verbose=0).argmax(1) == s["y_test"]).mean())
            for key in ("same", "shuffled")
        }
    assert accuracy["biased"]["same"] - accuracy["biased"]["shuffled"] > 0.30, accuracy
    assert abs(accuracy["fair"]["same"] - accuracy["fair"]["shuffled"]) < 0.08, accuracy

"""The small MNIST CNN as a Keras functional model, twin of :mod:`utils.pytorch.models.mnist`
(same layer names; input ``[N, 28, 28, 1]`` in [0, 1]; ``flatten`` reads (row, column, channel))."""

from __future__ import annotations

# (utils.tensorflow's __init__ has imported TensorFlow quietly, after torch: the safe order.)
import keras
from keras import layers


def mnist_cnn_twin(num_classes: int = 10) -> keras.Model:
    """The Keras MNIST CNN with random weights (Keras' own initialisation)."""
    inputs = keras.Input((28, 28, 1), name="input")
    x = layers.Conv2D(8, 3, name="conv1")(inputs)
    x = layers.ReLU(name="relu1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 3, name="conv2")(x)
    x = layers.ReLU(name="relu2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")

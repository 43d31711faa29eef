"""The course's models in Keras, same names and signatures as :mod:`utils.pytorch.models`: each
is a *twin* of the PyTorch one (same layer names), its weights ported by
:func:`utils.port.port_to_keras`."""

from __future__ import annotations

# (utils.tensorflow's __init__ has imported TensorFlow quietly, after torch: the safe order.)
import keras
import numpy as np

from utils.model_registry import MODEL_NAMES, WeightsNotAvailableError, check_model_name
from utils.port import port_to_keras
from utils.tensorflow.capture import to_input  # one definition, shared with feature_maps
from utils.tensorflow.models.efficientnet_lite import efficientnet_lite0_twin
from utils.tensorflow.models.mnist import mnist_cnn_twin
from utils.tensorflow.models.resnet import resnet18_twin

_TWINS = {"efficientnet_lite0": efficientnet_lite0_twin, "resnet18": resnet18_twin,
          "mnist_cnn": mnist_cnn_twin}

__all__ = ["MODEL_NAMES", "WeightsNotAvailableError", "efficientnet_lite0_twin", "load_model",
           "mnist_cnn_twin", "predict", "resnet18_twin", "to_input"]


def load_model(name: str, pretrained: bool = True) -> keras.Model:
    """The Keras twin of one of the course's models: see :func:`utils.pytorch.load_model`, same
    contract. ``pretrained=True`` ports the PyTorch weights (so both tabs compute the same
    numbers); ``False`` keeps Keras' random initialisation."""
    if not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be True or False, got {pretrained!r}")
    check_model_name(name)
    if pretrained:
        # The one cross-framework import: a twin's weights are the PyTorch model's, ported.
        from utils.pytorch.models.weights import pretrained_state_dict

        state = pretrained_state_dict(name)  # raises WeightsNotAvailableError before building
        return port_to_keras(state, _TWINS[name]())
    return _TWINS[name]()


def predict(model: keras.Model, images) -> np.ndarray:
    """Logits as NumPy ``[N, classes]`` from ``model(x, training=False)``; ``images`` as for
    :func:`to_input`."""
    return np.asarray(model(to_input(images), training=False))

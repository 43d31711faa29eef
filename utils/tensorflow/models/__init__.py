"""The course's models in Keras: one loader, one input converter, one predict.

Same names and signatures as :mod:`utils.pytorch.models`. Each Keras model is a *twin* of the
PyTorch one: the same layers under the same names, with the trained weights ported from PyTorch
(:func:`utils.port.port_to_keras`)::

    model = load_model("efficientnet_lite0")            # ImageNet weights, inference only
    logits = predict(model, preprocess(images))         # NumPy [N, 1000]
"""

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

_TWINS = {
    "efficientnet_lite0": efficientnet_lite0_twin,
    "resnet18": resnet18_twin,
    "mnist_cnn": mnist_cnn_twin,
}

__all__ = [
    "MODEL_NAMES",
    "WeightsNotAvailableError",
    "efficientnet_lite0_twin",
    "load_model",
    "mnist_cnn_twin",
    "predict",
    "resnet18_twin",
    "to_input",
]


def load_model(name: str, pretrained: bool = True) -> keras.Model:
    """Build one of the course's models in Keras.

    Args:
        name: ``"efficientnet_lite0"``, ``"resnet18"`` or ``"mnist_cnn"`` (see
            :func:`utils.pytorch.load_model`).
        pretrained: ``True`` ports the trained PyTorch weights into the Keras twin (the same
            source as the PyTorch tab, so both tabs compute the same numbers); ``False`` keeps
            Keras' own random initialisation.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid names).
        WeightsNotAvailableError: pretrained weights cannot be found or fetched.
    """
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
    """Run ``model`` in inference mode (``training=False``: BatchNorm uses its moving statistics,
    dropout is off) and return its outputs (logits) as NumPy ``[N, classes]``.

    ``images`` as for :func:`to_input`.
    """
    return np.asarray(model(to_input(images), training=False))

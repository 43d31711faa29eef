"""The course's PyTorch helpers. :mod:`utils.tensorflow` mirrors every name and signature here.

===================================  ==============================================================
``layer_names(model, kind)``         capturable module names (``kind="conv"``: convolutions)
``ActivationCapture(model, layers)`` forward hooks in a context manager (PyTorch's mechanism)
``feature_maps(model, layers, x)``   layer outputs as NumPy ``[N, C, H, W]``
``conv_filters(model, layer)``       kernels as NumPy ``[out, in, kh, kw]``
``to_input(images)``                 NumPy ``[N, H, W, C]`` batch -> tensor ``[N, C, H, W]``
===================================  ==============================================================
"""

from utils import _import_order  # noqa: F401
from utils.pytorch.capture import ActivationCapture, feature_maps, layer_names, to_input
from utils.pytorch.filters import conv_filters

FRAMEWORK = "pytorch"
LAYOUT = "channels_first"

__all__ = [
    "FRAMEWORK",
    "LAYOUT",
    "ActivationCapture",
    "conv_filters",
    "feature_maps",
    "layer_names",
    "to_input",
]

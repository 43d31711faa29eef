"""Helpers for the course *Seeing inside convolutional networks*.

The package mirrors one API in two framework modules, so a lesson's PyTorch and TensorFlow tabs
differ only where the frameworks really differ::

    from utils import pytorch as fw      # or: from utils import tensorflow as fw
    model = fw.load_model("efficientnet_lite0")
    maps = fw.feature_maps(model, ["_conv_stem"], images)

Framework-neutral modules work on NumPy arrays: :mod:`utils.images` (offline sample images),
:mod:`utils.layout` (channels-first <-> channels-last), :mod:`utils.plots` (figures).

Import ``utils`` before TensorFlow: it makes torch and torchvision load before TensorFlow, the
only order that does not crash this stack. What the import does to the process (two environment
variables, an import hook, stderr muted while TensorFlow loads) is listed in one place, the
docstring of :mod:`utils._import_order`.
"""

from utils import _import_order  # noqa: F401  (must run before anything imports TensorFlow)
from utils._source import VERSION as __version__  # noqa: F401  (one place: utils/_source.py)

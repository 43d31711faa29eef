"""Helpers for the course *Seeing inside convolutional networks*: one API in two mirrored
framework modules (``from utils import pytorch as fw``, or ``tensorflow``), so a lesson's two tabs
differ only where the frameworks do, plus framework-neutral modules on NumPy arrays. Import
``utils`` before TensorFlow; what the import does is listed in :mod:`utils._import_order`.
"""

from utils import _import_order  # noqa: F401  (must run before anything imports TensorFlow)
from utils._source import VERSION as __version__  # noqa: F401  (one place: utils/_source.py)

"""Record a conv layer's filters during a plain PyTorch training loop.

:mod:`utils.tensorflow.snapshots` has the Keras version (a callback) with the same name::

    snaps = FilterSnapshots(model, "conv1")
    snaps.record(0)                          # the random start
    for epoch in range(1, epochs + 1):
        for x, y in loader:
            ...                              # your usual forward / backward / step
        snaps.record(epoch)                  # one copy of the filters per epoch
    snaps.snapshots                          # list of [out, in, kh, kw] arrays
    snaps.changes()                          # [epochs, out]: how far each filter moved

``record`` warns (:class:`utils.snapshots.FilterHealthWarning`) when too many filters stopped
changing or have a near-zero norm: the usual sign of dead ReLUs after a too-high learning rate.
"""

from __future__ import annotations

from torch import nn

from utils.pytorch.filters import conv_filters
from utils.snapshots import FilterHealthWarning, SnapshotLog

__all__ = ["FilterHealthWarning", "FilterSnapshots"]


class FilterSnapshots(SnapshotLog):
    """Snapshots of ``model``'s conv layer ``layer``, one per :meth:`record` call.

    Args:
        model: the network being trained.
        layer: a conv module name (``conv_filters(model, layer)`` must work).
        zero_norm, min_change, max_inactive_fraction, warn: see :class:`utils.snapshots.SnapshotLog`.

    Attributes:
        snapshots: list of NumPy arrays ``[out, in, kh, kw]`` (read-only copies).
        epochs: the epoch number of each snapshot.
    """

    def __init__(self, model: nn.Module, layer: str, *, zero_norm: float = 1e-4,
                 min_change: float = 1e-3, max_inactive_fraction: float = 0.25,
                 warn: bool = True):
        conv_filters(model, layer)  # fail now, with the list of conv layers, on a bad name
        super().__init__(layer, zero_norm=zero_norm, min_change=min_change,
                         max_inactive_fraction=max_inactive_fraction, warn=warn)
        self.model = model

    def record(self, epoch: int | None = None):
        """Copy the layer's current filters (call it once before training and after each epoch).
        Returns the snapshot ``[out, in, kh, kw]``."""
        return self.add(conv_filters(self.model, self.layer), epoch)

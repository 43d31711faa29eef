"""Record a conv layer's filters during a plain PyTorch training loop::

    snaps = FilterSnapshots(model, "conv1")
    snaps.record(0)                          # the random start
    for epoch in range(1, epochs + 1):
        for x, y in loader:
            ...                              # your usual forward / backward / step
        snaps.record(epoch)                  # one copy of the filters per epoch
    snaps.snapshots                          # list of [out, in, kh, kw] arrays
    snaps.changes()                          # [epochs, out]: how far each filter moved

``record`` warns (:class:`utils.snapshots.FilterHealthWarning`) when too many filters look dead.
"""

from __future__ import annotations

from torch import nn

from utils.pytorch.filters import conv_filters
from utils.snapshots import FilterHealthWarning, SnapshotLog

__all__ = ["FilterHealthWarning", "FilterSnapshots"]


class FilterSnapshots(SnapshotLog):
    """Snapshots of ``model``'s conv layer ``layer``, one per :meth:`record` call.

    ``layer`` is a conv module name; the other arguments, ``.snapshots`` (read-only
    ``[out, in, kh, kw]`` copies) and ``.epochs``: see :class:`utils.snapshots.SnapshotLog`."""

    def __init__(self, model: nn.Module, layer: str, *, zero_norm: float = 1e-4,
                 min_change: float = 1e-3, max_inactive_fraction: float = 0.25,
                 warn: bool = True):
        conv_filters(model, layer)  # fail now, with the list of conv layers, on a bad name
        super().__init__(layer, zero_norm=zero_norm, min_change=min_change,
                         max_inactive_fraction=max_inactive_fraction, warn=warn)
        self.model = model

    def record(self, epoch: int | None = None):
        """Copy and return the layer's filters (call it before training and after each epoch)."""
        return self.add(conv_filters(self.model, self.layer), epoch)

"""Record a conv layer's filters during Keras ``fit()`` with a callback::

    snaps = FilterSnapshots("conv1")
    model.fit(x, y, epochs=3, callbacks=[snaps])    # records the start and every epoch's end
    snaps.snapshots                                  # list of [out, in, kh, kw] arrays (4 here)
    snaps.changes()                                  # [epochs, out]: how far each filter moved

After each epoch it warns (:class:`utils.snapshots.FilterHealthWarning`) if many filters look dead.
"""

from __future__ import annotations

from utils.snapshots import FilterHealthWarning, SnapshotLog
from utils.tensorflow.capture import keras
from utils.tensorflow.filters import conv_filters

__all__ = ["FilterHealthWarning", "FilterSnapshots"]


class FilterSnapshots(SnapshotLog, keras.callbacks.Callback):
    """A Keras callback that keeps a copy of conv layer ``layer``'s filters per epoch.

    ``layer`` is the conv layer's name in the model passed to ``fit``; ``record_initial`` also
    records the filters before the first epoch (epoch 0; ``k`` = after epoch ``k``). The other
    arguments, ``.snapshots`` and ``.epochs``: see :class:`utils.snapshots.SnapshotLog`."""

    def __init__(self, layer: str, *, record_initial: bool = True, zero_norm: float = 1e-4,
                 min_change: float = 1e-3, max_inactive_fraction: float = 0.25,
                 warn: bool = True):
        keras.callbacks.Callback.__init__(self)
        SnapshotLog.__init__(self, layer, zero_norm=zero_norm, min_change=min_change,
                             max_inactive_fraction=max_inactive_fraction, warn=warn)
        self.record_initial = bool(record_initial)
        self._epoch_offset = 0

    def record(self, epoch: int | None = None, model=None):
        """Copy the layer's current filters (the callback calls this itself during ``fit``)."""
        model = model if model is not None else self.model
        if model is None:
            raise ValueError("no model yet: pass the callback to fit(), or call record(model=...)")
        return self.add(conv_filters(model, self.layer), epoch)

    def on_train_begin(self, logs=None):
        conv_filters(self.model, self.layer)  # a bad layer name fails before the first epoch
        # a second fit() continues the numbering instead of starting at 0 again
        self._epoch_offset = self.epochs[-1] if self.epochs else 0
        if self.record_initial and not self.snapshots:
            self.record(0)

    def on_epoch_end(self, epoch, logs=None):
        self.record(self._epoch_offset + epoch + 1)

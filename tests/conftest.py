"""Shared test set-up. Importing utils first puts torch/torchvision before TensorFlow."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import utils  # noqa: F401  (import-order guard before any test module imports TensorFlow)

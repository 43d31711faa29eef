"""A small CNN for 28x28 MNIST digits, trained by the lessons; the Keras twin has the same names::

    conv1 (1 -> 8, 3x3) -> relu1 -> pool1 (2x2)      [N, 8, 13, 13]
    conv2 (8 -> 16, 3x3) -> relu2 -> pool2 (2x2)     [N, 16, 5, 5]
    flatten -> fc (400 -> 10 logits)

PyTorch flattens ``[C, H, W]``, Keras ``[H, W, C]``: porting ``fc`` reorders its weight's rows.
"""

from __future__ import annotations

from torch import nn


class MnistCNN(nn.Module):
    """Two conv layers and one dense layer (about 5,000 parameters); input ``[N, 1, 28, 28]``
    with values in [0, 1], output 10 logits."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * 5 * 5, num_classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc(self.flatten(x))


def mnist_cnn(pretrained: bool = False) -> MnistCNN:
    """The MNIST CNN in eval mode, random (no pretrained weights: the lessons train it)."""
    if pretrained:
        from utils.pytorch.models.weights import pretrained_state_dict

        pretrained_state_dict("mnist_cnn")  # raises WeightsNotAvailableError, saying what to do
    return MnistCNN().eval()

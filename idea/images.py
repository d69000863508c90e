"""Checking the IMAGE batches nodes receive, so odd ones get a clear answer instead of a shape error.

ComfyUI's IMAGE is a float tensor [batch, height, width, channels] in 0..1. Other packs also pass
one-channel (grey) and four-channel (RGBA) images; both are accepted here as a person would expect:
grey is repeated into RGB, and the alpha channel is dropped.
"""
from __future__ import annotations

import torch

from .errors import InputError


def as_rgb_batch(images, node: str) -> torch.Tensor:
    """[B, H, W, 3] from an IMAGE with 1, 3 or 4 channels (a single [H, W, C] image becomes a batch of
    one). Refuses, naming `node` and the fix, anything that is not a non-empty batch of images."""
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{node} needs an IMAGE, got {type(images).__name__}; connect a Load Image node "
                         "(or another node with an IMAGE output)")
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise InputError(f"{node} needs images shaped [batch, height, width, channels] with 1, 3 or 4 "
                         f"channels, got {list(images.shape)}; connect a Load Image node (or convert the "
                         "images to RGB first)")
    if images.shape[0] == 0:
        raise InputError(f"{node} got an empty image batch (no photo at all); connect at least one photo "
                         "of the person")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise InputError(f"{node} got images of size {images.shape[2]}x{images.shape[1]} px; connect real "
                         "photos")
    if images.shape[-1] == 1:
        return images.expand(*images.shape[:-1], 3)
    return images[..., :3]

"""Latents of the reference images, encoded once: each image and its mirror (the recipe's random
horizontal flip becomes a choice between two cached latents)."""
from __future__ import annotations

import torch

from ...idea.images import as_rgb_batch


def square_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """IMAGE [N, H, W, C] -> [N, size, size, 3]: centre square crop, then antialiased resize."""
    n, h, w, _ = images.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = images[:, top:top + side, left:left + side, :3].permute(0, 3, 1, 2).float()
    if side != size:
        square = torch.nn.functional.interpolate(square, size=(size, size), mode="bicubic",
                                                 antialias=True, align_corners=False)
    return square.clamp(0, 1).permute(0, 2, 3, 1)


def reference_latents(vae, images: torch.Tensor, size: int) -> torch.Tensor:
    """[2N, C, size/8, size/8]: the images then their mirrors, through the user's VAE."""
    pixels = square_resize(as_rgb_batch(images, "Learn ID Token"), size)
    pixels = torch.cat([pixels, pixels.flip(2)], dim=0)
    return vae.encode(pixels).float()

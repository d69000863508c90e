"""Conversions between numpy photos and the host's IMAGE tensors, and writing test inputs."""
from __future__ import annotations

import pathlib

import numpy as np
import torch
from PIL import Image


def to_image_tensor(*photos: np.ndarray) -> torch.Tensor:
    """RGB uint8 arrays of one size -> IMAGE [B, H, W, 3] float in 0..1."""
    return torch.stack([torch.from_numpy(np.asarray(p)[..., :3].copy()).float() / 255.0 for p in photos])


def save_png(photo: np.ndarray, path: pathlib.Path) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(photo)[..., :3]).save(path)
    return path


def resize_to(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Letterbox-free resize to (width, height) so differently sized photos can share a batch."""
    return np.asarray(Image.fromarray(np.asarray(photo)[..., :3]).resize(size, Image.BICUBIC))


def letterbox(photo: np.ndarray, side: int) -> np.ndarray:
    """Fit a photo into a grey square keeping its aspect ratio (stretching would distort faces), so
    photos of different sizes can share a batch as they would after a resize-and-pad node."""
    h, w = photo.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = np.asarray(Image.fromarray(np.asarray(photo)[..., :3]).resize(size, Image.BICUBIC))
    canvas = np.full((side, side, 3), 128, dtype=np.uint8)
    top, left = (side - size[1]) // 2, (side - size[0]) // 2
    canvas[top:top + size[1], left:left + size[0]] = resized
    return canvas

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

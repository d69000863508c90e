"""How a face sits in the square crops that FaceID Embed hands on and Learn ID Token trains on.

Why it matters: the two identity tokens learn whatever fills the training pictures. The authors'
released run trained on CelebA-HQ style portraits where the face fills the frame; a looser crop gives
the face about 0.4 of those pixels and asks the tokens to explain hair, shoulders and background too.

The crops use the recogniser's own 5-point layout (ArcFace's 112 px template), scaled to span `share`
of the side, centred, and a similarity alignment of the detected points onto it. "face" reproduces
the released data, measured with YuNet's landmarks on all 9 released input images (256 x 256): eyes
0.242 of the side apart (0.214-0.261), their midpoint at 0.474 of the height, the mouth at 0.729.
Its share is the one that puts the template's eyes 0.242 apart. The template is not moved: its
eye-to-mouth span looks longer than the released one only because YuNet puts mouth corners higher
than the ArcFace layout does; measured with YuNet on crops of real photos aligned with YuNet, the
centred template gives the released heights (tests/test_training_framing.py). "head and shoulders"
is the wider crop of earlier versions (share 0.5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .onnx_faces.arcface import ARCFACE_TEMPLATE

# ArcFace's 5-point template for a 112 px crop (eyes, nose tip, mouth corners), in pixels: the layout
# the recogniser aligns to.
ARCFACE_TEMPLATE_112 = ARCFACE_TEMPLATE.astype(np.float64)

# The released run's mean eye distance, a share of the side (YuNet landmarks on its 9 input images).
RELEASED_EYE_DISTANCE = 0.242


@dataclass(frozen=True)
class Framing:
    """The template spans `share` of the crop's side, centred."""

    share: float

    def template(self, size: int) -> np.ndarray:
        """Where the 5 keypoints land in a `size` px crop: [5, 2] (x, y) pixels."""
        return (ARCFACE_TEMPLATE_112 - 56.0) * (size * self.share / 112.0) + size / 2.0


# The share whose template puts the eyes RELEASED_EYE_DISTANCE of the side apart (about 0.77).
RELEASED_SHARE = RELEASED_EYE_DISTANCE * 112.0 / float(ARCFACE_TEMPLATE_112[1, 0] - ARCFACE_TEMPLATE_112[0, 0])
FRAMINGS = {"face": Framing(RELEASED_SHARE), "head and shoulders": Framing(0.5)}
DEFAULT_FRAMING = "face"
FRAMING_TOOLTIP = (
    "How the face fills the aligned crops that Learn ID Token trains on. face (default): framed like "
    "the authors' training data (eyes about a quarter of the side apart, the face fills the picture): "
    "the tokens learn the face itself, best for likeness. head and shoulders: the wider crop of "
    "earlier versions (the face about half the side, with hair and shoulders): for when hairstyle or "
    "outfit belong to the person you want; the face gets about 0.4 of the pixels.")


def framing_named(name: str) -> Framing:
    if name not in FRAMINGS:
        raise ValueError(f"unknown framing {name!r}; choose one of {', '.join(FRAMINGS)}")
    return FRAMINGS[name]


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) taking src points to dst: [2, 3]."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    # Solve for a, b in [a -b; b a]: a linear least-squares problem in closed form.
    denom = (src_c ** 2).sum()
    a = (src_c * dst_c).sum() / denom
    b = (src_c[:, 0] * dst_c[:, 1] - src_c[:, 1] * dst_c[:, 0]).sum() / denom
    rot = np.array([[a, -b], [b, a]])
    shift = dst_mean - rot @ src_mean
    return np.concatenate([rot, shift[:, None]], axis=1)


def warp_crop(rgb: torch.Tensor, keypoints: np.ndarray, size: int, framing: str = DEFAULT_FRAMING) -> torch.Tensor:
    """Aligned square crop [size, size, 3] from an RGB [H, W, 3] float image (border: edge pixels)."""
    forward = similarity_transform(keypoints, framing_named(framing).template(size))
    full = np.vstack([forward, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(full)[:2]  # output pixel -> source pixel
    h, w = rgb.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    inv = torch.from_numpy(inverse)
    src_x = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    src_y = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    # grid_sample wants coordinates in [-1, 1] with pixel centres at the align_corners=False grid.
    grid = torch.stack([(src_x + 0.5) / w * 2 - 1, (src_y + 0.5) / h * 2 - 1], dim=-1).float()
    img = rgb.permute(2, 0, 1).unsqueeze(0).float()
    out = torch.nn.functional.grid_sample(img, grid.unsqueeze(0).to(img.device), mode="bilinear",
                                          padding_mode="border", align_corners=False)
    return out[0].permute(1, 2, 0).clamp(0, 1)

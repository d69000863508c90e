"""The pixel arithmetic insightface gets from OpenCV, reproduced in numpy.

The detector sees a bilinear resize of the photo and the recogniser an affine warp of it; a face
pack's scores and embeddings are computed from those pixels, so agreeing with insightface means
agreeing with OpenCV to the last bit where that is cheap:
- `resize_bilinear`: OpenCV's INTER_LINEAR for 8-bit images is fixed point (11-bit weights, the
  horizontal pass kept in integers, the vertical pass rounding twice); measured bit-equal to
  cv2.resize of OpenCV 5.1 and 4.10 on 76 up- and downscales.
- `warp_affine`: OpenCV 5.1 warps 8-bit images with float32 bilinear interpolation and a constant
  border; measured equal to its cv2.warpAffine on all but 33 of 11 million values (one level off in
  the last rounding). OpenCV 4.10 used 1/32-pixel fixed point instead, up to 7 levels away from
  this in a third of the values; the real pack's embeddings still agree at cosine >= 0.99993.
- `similarity_estimate`: the least-squares similarity of Umeyama (1991), the estimate insightface's
  alignment uses, with its statistics in the keypoints' float32 as there.
"""
from __future__ import annotations

import numpy as np

_COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS
_COEF_ONE = 1 << _COEF_BITS


def _resize_taps(src: int, dst: int, clamp_weights: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(first tap, second tap, their fixed-point weights) for each output position along one axis.
    Pixel centres are aligned ((d + 0.5) * src / dst - 0.5) and computed in float32, as OpenCV does.
    Horizontally a position past either edge takes the edge pixel with full weight; vertically the
    fraction is kept and only the row index is clamped (OpenCV treats the two axes this way)."""
    scale = 1.0 / (dst / src)
    position = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(position).astype(np.int64)
    fraction = (position - first.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        outside = (first < 0) | (first >= src - 1)
        fraction[outside] = 0.0
        first = np.where(first < 0, 0, np.where(first >= src - 1, src - 1, first))
    weight_second = np.rint(fraction * np.float32(_COEF_ONE)).astype(np.int32)
    weight_first = np.rint((np.float32(1.0) - fraction) * np.float32(_COEF_ONE)).astype(np.int32)
    return (np.clip(first, 0, src - 1), np.clip(first + 1, 0, src - 1), weight_first, weight_second)


def resize_bilinear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """An [H, W, C] uint8 image resized to [height, width, C] as cv2.resize(INTER_LINEAR) does."""
    src_h, src_w = image.shape[:2]
    if (src_h, src_w) == (height, width):
        return image.copy()
    x0, x1, wx0, wx1 = _resize_taps(src_w, width, clamp_weights=True)
    y0, y1, wy0, wy1 = _resize_taps(src_h, height, clamp_weights=False)
    pixels = image.astype(np.int32)
    rows = pixels[:, x0] * wx0[None, :, None] + pixels[:, x1] * wx1[None, :, None]  # scaled by 2^11
    rows >>= 4
    out = (wy0[:, None, None] * rows[y0]) >> 16
    out += (wy1[:, None, None] * rows[y1]) >> 16
    return np.clip((out + 2) >> 2, 0, 255).astype(np.uint8)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a [2, 3] affine map (output pixel -> source pixel), in float64."""
    m = np.asarray(matrix, dtype=np.float64)
    det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    inv_det = 1.0 / det if det != 0 else 0.0
    linear = np.array([[m[1, 1], -m[0, 1]], [-m[1, 0], m[0, 0]]]) * inv_det
    return np.concatenate([linear, -(linear @ m[:, 2])[:, None]], axis=1)


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The [size, size, C] uint8 image that `matrix` ([2, 3], source -> output pixels) maps `image`
    to: bilinear, black outside the source, as cv2.warpAffine(img, M, (size, size), borderValue=0)."""
    inverse = invert_affine(matrix)
    grid = np.arange(size, dtype=np.float64)
    xs, ys = grid[None, :], grid[:, None]
    src_x = (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]).astype(np.float32)
    src_y = (inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]).astype(np.float32)
    left, top = np.floor(src_x), np.floor(src_y)
    fx = (src_x - left)[..., None]
    fy = (src_y - top)[..., None]
    left, top = left.astype(np.int64), top.astype(np.int64)
    height, width = image.shape[:2]

    def tap(row: np.ndarray, col: np.ndarray) -> np.ndarray:
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
        values = image[np.clip(row, 0, height - 1), np.clip(col, 0, width - 1)].astype(np.float32)
        return values * inside[..., None]

    top_row = tap(top, left) + fx * (tap(top, left + 1) - tap(top, left))
    bottom_row = tap(top + 1, left) + fx * (tap(top + 1, left + 1) - tap(top + 1, left))
    value = top_row + fy * (bottom_row - top_row)
    return np.clip(np.rint(value), 0, 255).astype(np.uint8)


def similarity_estimate(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """The rotation + uniform scale + shift ([2, 3]) taking `points` closest to `template` in the
    least-squares sense (Umeyama 1991: SVD of the cross-covariance, a reflection ruled out)."""
    src = np.asarray(points, dtype=np.float32)
    dst = np.asarray(template, dtype=np.float32)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    covariance = dst_centred.T @ src_centred / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    signs = np.ones(2, dtype=np.float64)
    if np.linalg.det(covariance) < 0:
        signs[1] = -1.0
    rotation = u @ np.diag(signs) @ vt
    scale = (1.0 / src_centred.var(axis=0).sum()) * (singular @ signs)
    shift = dst_mean - scale * (rotation @ src_mean)
    return np.concatenate([scale * rotation, shift[:, None]], axis=1)

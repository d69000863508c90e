"""The loss curve as an IMAGE, so training can be judged on the canvas without leaving ComfyUI."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw


def loss_curve_image(losses: list[float], width: int = 512, height: int = 256) -> torch.Tensor:
    """[1, H, W, 3] float image: raw losses in grey, a moving average in blue, min/max labelled."""
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    margin = 32
    draw.rectangle([margin, 8, width - 8, height - margin], outline=(180, 180, 180))
    values = np.asarray([v for v in losses if np.isfinite(v)], dtype=np.float64)
    if values.size >= 1:
        low, high = float(values.min()), float(values.max())
        span = high - low or 1.0

        def point(i: int, v: float) -> tuple[float, float]:
            x = margin + (width - 8 - margin) * (i / max(len(values) - 1, 1))
            y = (height - margin) - (height - margin - 8) * ((v - low) / span)
            return x, y

        draw.line([point(i, v) for i, v in enumerate(values)], fill=(170, 170, 170), width=1)
        window = max(1, len(values) // 20)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        draw.line([point(i + window - 1, v) for i, v in enumerate(smooth)], fill=(30, 90, 200), width=2)
        draw.text((margin + 4, 10), f"max {high:.4g}", fill=(0, 0, 0))
        draw.text((margin + 4, height - margin - 14), f"min {low:.4g}", fill=(0, 0, 0))
    draw.text((margin, height - margin + 6), f"loss over {len(losses)} steps", fill=(0, 0, 0))
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0)

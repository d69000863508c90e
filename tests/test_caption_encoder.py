"""The batched training-caption encoder: the host's own result, and a correct gradient."""
from __future__ import annotations

import pytest
import torch

from support import tiny_models



@pytest.fixture(scope="module")
def encoder_and_vectors(host, cache_dir):
    _, clip, _ = tiny_models.build_sd15_in_process(cache_dir)
    layout = host.pack_module("nodes.host.text_encoders").read_clip(clip)
    encoder = host.pack_module("nodes.training.caption_encoder").CaptionEncoder(clip, layout)
    vectors = torch.randn(2, 768, generator=torch.Generator().manual_seed(4)) * 0.5
    return clip, layout, encoder, vectors


def test_batched_captions_equal_the_hosts_encode_from_tokens(host, encoder_and_vectors):
    clip, layout, encoder, vectors = encoder_and_vectors
    with torch.no_grad():
        encoder.prepare()
        batched, _ = encoder.encode([3, 11], {"clip_l": vectors})
        for row, caption in enumerate([3, 11]):
            tokens = encoder.tokens("clip_l", [caption], vectors)[0]
            alone = clip.encode_from_tokens({"l": [[(t, 1.0) for t in tokens]]})
            assert torch.allclose(batched[row:row + 1], alone, atol=1e-5)


def test_gradient_matches_finite_differences(host, encoder_and_vectors):
    """Through the host's in-place residual adds, with only the residual stream snapshotted."""
    _, _, encoder, vectors = encoder_and_vectors
    gen = torch.Generator().manual_seed(5)
    weights, direction = torch.randn(2, 77, 768, generator=gen), torch.randn(2, 768, generator=gen)
    with torch.inference_mode(False):
        leaf = vectors.clone().requires_grad_(True)
        encoder.prepare()
        context, _ = encoder.encode([0, 7], {"clip_l": leaf})
        (gradient,) = torch.autograd.grad((context * weights).sum(), leaf)
        eps = 1e-3
        with torch.no_grad():
            plus = encoder.encode([0, 7], {"clip_l": vectors + eps * direction})[0]
            minus = encoder.encode([0, 7], {"clip_l": vectors - eps * direction})[0]
    numeric = float(((plus - minus) * weights).sum() / (2 * eps))
    analytic = float((gradient * direction).sum())
    assert abs(numeric) > 0.1
    assert analytic == pytest.approx(numeric, rel=0.1)

"""FLUX.1 in idea/ (plain torch, no host): the arch table, a FLUX identity's parts and file, the flow
loss and the noise levels drawn from the model's own schedule."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from idea.adapter import IDAdapter, adapt_by_chunks
from idea.archs import ARCH_ENCODER_KEYS, base_arch
from idea.flux_recipe import TRAINING_GUIDANCE, flow_sigmas
from idea.identity import IdentityEmbedding
from idea.identity_file import load_identity
from idea.identity_writing import save_embedding_for_prompts, save_identity
from idea.training_recipe import DEFAULT_RESOLUTION, default_resolution, denoising_loss, native_loss_weight


def randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def flux_identity(seed=0, ctx=64, clip_width=24):
    """A FLUX-shaped identity with narrow widths (the identity never assumes 4096 / 768)."""
    initial = {"t5xxl": randn(2, ctx, seed=seed), "clip_l": randn(2, clip_width, seed=seed + 1)}
    face = randn(512, seed=seed + 2)
    return IdentityEmbedding.create("flux", initial, randn(2, ctx, seed=seed + 3), face / face.norm(), "syn",
                                    seed=seed)


def test_flux_arch_reads_t5_as_context_and_clip_l_for_the_pooled_vector():
    arch = base_arch("flux")
    assert ARCH_ENCODER_KEYS["flux"] == ("t5xxl", "clip_l")
    assert (arch.context_keys, arch.pooled_key, arch.adapter_window) == (("t5xxl",), "clip_l", None)
    assert arch.initialisation_of("t5xxl") == "input_means" and arch.initialisation_of("clip_l") == "cross"
    assert arch.experimental and arch.label == "FLUX.1"
    for key in ("sd1", "sd2", "sdxl"):  # the SD bases are unchanged: context = every encoder, 77-token windows
        sd = base_arch(key)
        assert sd.context_keys == sd.encoder_keys and sd.adapter_window == 77 and not sd.experimental
    assert DEFAULT_RESOLUTION["flux"] == default_resolution("flux", "flow") == 512
    with pytest.raises(ValueError, match="unknown base architecture 'flux2'"):
        base_arch("flux2")


def test_a_flux_identity_has_the_t5_width_as_context_and_both_token_sets():
    identity = flux_identity()
    assert identity.ctx_dim == 64 and identity.encoder_keys == ("t5xxl", "clip_l")
    assert identity.adapter.ctx_dim == 64 and identity.fused_tokens().shape == (2, 64)
    trainable = identity.make_trainable()
    assert {"token_vectors.t5xxl", "token_vectors.clip_l", "adapter.gamma"} <= set(trainable)
    # CLIP-L's width is no part of FLUX's context
    with pytest.raises(ValueError, match="t5xxl add up to 64 but the anchor has 88"):
        IdentityEmbedding.create("flux", {"t5xxl": randn(2, 64), "clip_l": randn(2, 24)}, randn(2, 88),
                                 randn(512), "syn")
    with pytest.raises(ValueError, match=r"need keys \['clip_l', 't5xxl'\]"):
        IdentityEmbedding.create("flux", {"t5xxl": randn(2, 64)}, randn(2, 64), randn(512), "syn")


def test_a_flux_identity_file_round_trips_and_its_prompt_embedding_has_both_keys(tmp_path):
    identity = flux_identity(seed=4)
    with torch.no_grad():
        identity.adapter.gamma.fill_(0.3)
    save_identity(identity, tmp_path / "flux.safetensors")
    loaded = load_identity(tmp_path / "flux.safetensors", expected_arch="flux", expected_ctx_dim=64)
    assert loaded.arch == "flux" and loaded.encoder_keys == identity.encoder_keys
    for key in identity.encoder_keys:
        assert torch.equal(loaded.token_vectors[key], identity.token_vectors[key])
    assert torch.equal(loaded.fused_tokens(), identity.fused_tokens())
    with pytest.raises(ValueError, match="trained on FLUX.1 .* but the connected model is SDXL"):
        load_identity(tmp_path / "flux.safetensors", expected_arch="sdxl")
    save_embedding_for_prompts(identity.token_vectors, tmp_path / "emb.safetensors")
    assert set(load_file(tmp_path / "emb.safetensors")) == {"t5xxl", "clip_l"}  # each tokenizer reads its key


def test_the_flux_adapter_adapts_the_whole_t5_sequence_in_one_piece():
    """T5 has no 77-token windows: a 308-token context (4 x 77) is one sequence for FLUX."""
    adapter = IDAdapter(64, seed=2)
    with torch.no_grad():
        adapter.gamma.fill_(0.5)
    context, tokens = randn(1, 308, 64, seed=1), randn(2, 64, seed=3)
    whole = adapter(context, tokens)
    assert torch.equal(adapt_by_chunks(adapter, context, tokens, 1.0, None), whole)
    assert not torch.allclose(adapt_by_chunks(adapter, context, tokens, 1.0), whole)  # SD's windows differ


def test_flow_loss_is_the_velocity_mse_from_the_denoised_prediction():
    """x_t = s*eps + (1-s)*x0, u = eps - x0, the host's denoised = x_t - s*u_hat: the recipe's weight
    1/s^2 on the x0 error gives back exactly the flow-matching (velocity) MSE."""
    x0, eps, u_hat = randn(3, 4, 8, 8, seed=1), randn(3, 4, 8, 8, seed=2), randn(3, 4, 8, 8, seed=3)
    sigma = torch.tensor([0.05, 0.5, 0.97])
    s = sigma.view(-1, 1, 1, 1)
    xt = s * eps + (1 - s) * x0
    denoised = xt - s * u_hat
    expected = (u_hat - (eps - x0)).pow(2).flatten(1).mean(1)
    assert torch.allclose(denoising_loss(denoised, x0, sigma, "flow"), expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(native_loss_weight("flow", sigma), native_loss_weight("eps", sigma))


def test_noise_levels_are_drawn_uniformly_over_the_models_own_table():
    table = torch.linspace(0.001, 1.0, 10000) ** 0.5  # any ascending schedule, shift included
    drawn = flow_sigmas(table, torch.tensor([0.0, 0.49999, 0.5, 0.99999]))
    assert torch.equal(drawn, table[[0, 4999, 5000, 9999]])
    uniform = torch.rand(20000, generator=torch.Generator().manual_seed(0))
    sigmas = flow_sigmas(table, uniform)
    assert abs(float((sigmas <= table[4999]).float().mean()) - 0.5) < 0.02  # half the draws below the median level
    assert TRAINING_GUIDANCE == 3.5
    with pytest.raises(ValueError, match="1-D schedule"):
        flow_sigmas(table.view(100, 100), uniform)

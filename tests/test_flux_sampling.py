"""FLUX.1 (experimental) generation in the real host, in-process, on the small FLUX.1-dev: Apply
ID-Adapter through the host's sampler (weight 0 bit-identical to no adapter), the conditioning route,
and identities refused on a model, CLIP or prompt of another base, with both bases named."""
from __future__ import annotations

import pytest
import torch

from support import tiny_flux, tiny_models
from support.random_identities import make_identity


@pytest.fixture(scope="module")
def flux(host, cache_dir):
    return tiny_flux.loaded_in_host(cache_dir)


@pytest.fixture(scope="module")
def sd2(host):
    return tiny_models.build_sd2_like()


@pytest.fixture(scope="module")
def prompt(host, flux):
    (positive,) = host.run("CLIPTextEncode", clip=flux[1], text="a photo of a person, studio light")
    (guided,) = host.run("FluxGuidance", conditioning=positive, guidance=3.5)
    return guided


def sample(host, model, positive, negative=None, cfg=1.0, seed=11):
    """The latent of a 2-step FLUX run (euler, simple schedule; cfg 1 as FLUX.1-dev is used)."""
    (latent,) = host.run("EmptySD3LatentImage", width=64, height=64, batch_size=1)
    return host.run("KSampler", model=model, seed=seed, steps=2, cfg=cfg, sampler_name="euler", scheduler="simple",
                    positive=positive, negative=negative if negative is not None else positive,
                    latent_image=latent, denoise=1.0)[0]["samples"]


def apply(host, model, identity, weight=1.0, apply_to="cond", **inputs):
    return host.run("IDEA_ApplyIDAdapter", model=model, identity=identity, weight=weight, start_at=0.0,
                    end_at=1.0, apply_to=apply_to, **inputs)[0]


def test_weight_zero_is_bit_identical_and_weight_one_changes_the_picture(host, flux, prompt):
    model = flux[0]
    identity = make_identity(host, "flux", seed=1, gamma=1.0)
    plain = sample(host, model, prompt)
    assert plain.shape == (1, 16, 8, 8) and torch.isfinite(plain).all()
    assert torch.equal(sample(host, apply(host, model, identity, weight=0.0), prompt), plain)
    adapted = sample(host, apply(host, model, identity, clip=flux[1]), prompt)
    assert (adapted - plain).abs().max() > 1e-3
    (image,) = host.run("VAEDecode", samples={"samples": adapted}, vae=flux[2])
    assert image.shape == (1, 64, 64, 3)


def test_the_conditioning_route_gives_the_model_patchs_picture(host, flux, prompt):
    model = flux[0]
    identity = make_identity(host, "flux", seed=2, gamma=0.7)
    (adapted,) = host.run("IDEA_ApplyIDAdapterConditioning", conditioning=prompt, identity=identity, weight=1.0)
    assert adapted[0][0].shape == prompt[0][0].shape and adapted[0][1]["guidance"] == 3.5
    assert torch.equal(adapted[0][1]["pooled_output"], prompt[0][1]["pooled_output"])  # CLIP-L's vector kept
    assert torch.equal(sample(host, model, adapted), sample(host, apply(host, model, identity), prompt))


def test_cfg_with_a_negative_of_another_length_adapts_only_what_was_asked(host, flux, prompt):
    """With CFG the host runs a 256-token positive and a longer negative apart (FLUX's context is no
    77-token window that could be repeated to batch them): cond, uncond and both all sample."""
    model, clip = flux[0], flux[1]
    identity = make_identity(host, "flux", seed=3, gamma=1.0)
    (negative,) = host.run("CLIPTextEncode", clip=clip, text=" ".join(["blurry, low quality"] * 60))
    assert negative[0][0].shape[1] > prompt[0][0].shape[1]
    runs = {to: sample(host, apply(host, model, identity, apply_to=to), prompt, negative, cfg=2.0)
            for to in ("cond", "uncond", "both")}
    plain = sample(host, model, prompt, negative, cfg=2.0)
    assert all((latent - plain).abs().max() > 1e-4 for latent in runs.values())
    assert not torch.equal(runs["cond"], runs["uncond"]) and not torch.equal(runs["cond"], runs["both"])


def test_a_flux_identity_is_refused_on_sd_and_an_sd_identity_on_flux(host, flux, sd2):
    flux_identity, sd_identity = make_identity(host, "flux", seed=4), make_identity(host, "sd2", seed=5)
    mismatch = host.pack_module("nodes.host.model_arch").IdentityModelMismatch
    with pytest.raises(mismatch, match=r"trained for FLUX.1 \(context 4096\) but the model is SD2.x \(context 1024\)"):
        apply(host, sd2[0], flux_identity)
    with pytest.raises(mismatch, match=r"trained for SD2.x \(context 1024\) but the model is FLUX.1 \(context 4096\)"):
        apply(host, flux[0], sd_identity)
    with pytest.raises(mismatch, match="the CLIP is SD2.x but the identity was made for FLUX.1"):
        apply(host, flux[0], flux_identity, clip=sd2[1])
    with pytest.raises(mismatch, match="the CLIP is FLUX.1 but the identity was made for SD2.x"):
        apply(host, sd2[0], sd_identity, clip=flux[1])
    with pytest.raises(mismatch, match=r"trained for FLUX.1 .* but the model is SD2.x"):
        host.run("IDEA_LearnIDToken", model=sd2[0], clip=sd2[1], vae=flux[2], images=torch.rand(1, 64, 64, 3),
                 identity=flux_identity, name="never_written", steps=1, batch_size=1, learning_rate=0.0015, seed=0,
                 train_enhancer="off", resolution=64, gradient_checkpointing="auto", precision="auto",
                 save_every=0, resume=False)
    assert not (host.base / "models" / "idea" / "never_written.safetensors").exists()


def test_prompts_of_the_other_base_are_refused_by_the_conditioning_route(host, flux, sd2, prompt):
    flux_identity, sd_identity = make_identity(host, "flux", seed=6), make_identity(host, "sd2", seed=7)
    mismatch = host.pack_module("nodes.apply_id_adapter_conditioning").IdentityConditioningMismatch
    (sd_prompt,) = host.run("CLIPTextEncode", clip=sd2[1], text="a photo of a person")
    with pytest.raises(mismatch, match=r"trained for FLUX.1 \(context 4096\) but the conditioning has context 1024"):
        host.run("IDEA_ApplyIDAdapterConditioning", conditioning=sd_prompt, identity=flux_identity, weight=1.0)
    with pytest.raises(mismatch, match=r"trained for SD2.x .* context 4096 \(FLUX.1 or SD3"):
        host.run("IDEA_ApplyIDAdapterConditioning", conditioning=prompt, identity=sd_identity, weight=1.0)
    sd3_like = [[prompt[0][0], {**prompt[0][1], "pooled_output": torch.zeros(1, 2048)}]]
    with pytest.raises(mismatch, match="pooled vector is 2048 wide"):
        host.run("IDEA_ApplyIDAdapterConditioning", conditioning=sd3_like, identity=flux_identity, weight=1.0)

"""The tiny random models the suite stands on behave like real bases inside the real host.

Everything runs through the host's own loaders and core nodes, so a host that stopped accepting
these files (detection, key layout, encoder configs) fails here first rather than in a pack test.
"""
from __future__ import annotations

import time

import pytest
import torch

from support import tiny_models


def _sample(host, model, positive, negative, seed=1, steps=2, cfg=5.0, size=64):
    latent = host.run("EmptyLatentImage", width=size, height=size, batch_size=1)[0]
    return host.run("KSampler", model=model, seed=seed, steps=steps, cfg=cfg, sampler_name="euler",
                    scheduler="normal", positive=positive, negative=negative, latent_image=latent,
                    denoise=1.0)[0]["samples"]


def _context_widths_seen(host, model, positive, negative):
    """Run one step with an attn2 patch that records the context width every cross-attention reads."""
    seen = set()

    def record(n, context, value, extra_options):
        seen.add((int(context.shape[-1]), extra_options["block"][0]))
        return n, context, value

    patched = model.clone()
    patched.set_model_attn2_patch(record)
    out = _sample(host, patched, positive, negative, steps=1)
    return seen, out


@pytest.fixture(scope="module")
def sd15(host, cache_dir):
    """(model, clip, vae) of the tiny file, through CheckpointLoaderSimple as a user would load it."""
    return tiny_models.load_checkpoint(host, cache_dir)


def test_tiny_checkpoint_is_cached_and_detected_as_sd15(host, cache_dir, sd15):
    path = tiny_models.tiny_sd15_checkpoint(cache_dir)
    mtime = path.stat().st_mtime_ns
    start = time.monotonic()
    assert tiny_models.tiny_sd15_checkpoint(cache_dir) == path
    assert time.monotonic() - start < 0.5 and path.stat().st_mtime_ns == mtime  # not rebuilt
    assert f"v{tiny_models.VERSION}" in path.name
    assert 400 * 2**20 < path.stat().st_size < 500 * 2**20

    model, _, vae = tiny_models.build_sd15_in_process(cache_dir)  # load_checkpoint_guess_config
    assert type(model.model.model_config).__name__ == "SD15"
    assert vae.latent_channels == 4
    del model, vae

    # the server validates a ckpt_name against this list, so the link must show up in it
    assert "idea-tiny-sd15.safetensors" in host.folder_paths.get_filename_list("checkpoints")
    loaded_model, loaded_clip, _ = sd15
    assert type(loaded_model.model.model_config).__name__ == "SD15"
    config = loaded_model.model.model_config.unet_config
    assert (config["context_dim"], config["use_linear_in_transformer"]) == (768, False)
    table = loaded_clip.cond_stage_model.clip_l.transformer.get_input_embeddings().weight
    assert tuple(table.shape) == (49408, 768)


def test_sd15_text_to_image_through_core_nodes_is_finite_and_follows_the_prompt(host, sd15):
    model, clip, vae = sd15
    positive = host.run("CLIPTextEncode", clip=clip, text="a photo of a person")[0]
    other = host.run("CLIPTextEncode", clip=clip, text="a red car on a road")[0]
    negative = host.run("CLIPTextEncode", clip=clip, text="")[0]
    assert positive[0][0].shape == (1, 77, 768)

    samples = _sample(host, model, positive, negative)
    assert torch.isfinite(samples).all()
    assert not torch.equal(samples, _sample(host, model, other, negative))  # text reaches the UNet
    assert torch.equal(samples, _sample(host, model, positive, negative))  # fixed weights and seed

    image = host.run("VAEDecode", samples={"samples": samples}, vae=vae)[0]
    assert image.shape == (1, 64, 64, 3)
    assert torch.isfinite(image).all() and image.std() > 0.05


def test_tiny_controlnet_loads_applies_and_changes_the_sample(host, cache_dir, sd15):
    model, clip, _ = sd15
    tiny_models.install_controlnet(host.base, "idea-tiny-controlnet.safetensors", cache_dir=cache_dir)
    control = host.run("ControlNetLoader", control_net_name="idea-tiny-controlnet.safetensors")[0]
    positive = host.run("CLIPTextEncode", clip=clip, text="a photo of a person")[0]
    negative = host.run("CLIPTextEncode", clip=clip, text="")[0]
    hint = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    pos_c, neg_c = host.run("ControlNetApplyAdvanced", positive=positive, negative=negative,
                            control_net=control, image=hint, strength=1.0,
                            start_percent=0.0, end_percent=1.0)[:2]
    plain = _sample(host, model, positive, negative)
    controlled = _sample(host, model, pos_c, neg_c)
    assert torch.isfinite(controlled).all()
    assert (controlled - plain).abs().mean() > 0.05 * plain.abs().mean()


def test_sd2_like_has_openclip_h_widths_and_samples(host):
    model, clip = tiny_models.build_sd2_like()
    assert type(model.model.model_config).__name__ == "SD20"
    config = model.model.model_config.unet_config
    assert (config["context_dim"], config["use_linear_in_transformer"]) == (1024, True)
    assert model.model.model_type.name == "EPS"  # what detection gives a 2.x-base checkpoint
    encoder = clip.cond_stage_model.clip_h
    assert tuple(encoder.transformer.get_input_embeddings().weight.shape) == (49408, 1024)
    assert (encoder.layer, encoder.layer_idx) == ("hidden", -2)  # the host's penultimate layer

    positive = host.run("CLIPTextEncode", clip=clip, text="a photo of a person")[0]
    negative = host.run("CLIPTextEncode", clip=clip, text="")[0]
    assert positive[0][0].shape == (1, 77, 1024)
    seen, out = _context_widths_seen(host, model, positive, negative)
    assert {w for w, _ in seen} == {1024} and {b for _, b in seen} == {"input", "middle", "output"}
    assert torch.isfinite(out).all()

    # Rebuilding gives the same weights: tests that compare runs can rely on it.
    _, again = tiny_models.build_sd2_like()
    assert torch.equal(again.cond_stage_model.clip_h.transformer.get_input_embeddings().weight,
                       encoder.transformer.get_input_embeddings().weight)


def test_sdxl_like_has_two_encoders_a_2048_context_and_samples(host):
    model, clip = tiny_models.build_sdxl_like()
    assert type(model.model).__name__ == "SDXL"
    config = model.model.model_config.unet_config
    assert (config["context_dim"], config["adm_in_channels"]) == (2048, 2816)
    te = clip.cond_stage_model
    widths = [e.transformer.get_input_embeddings().weight.shape[1] for e in (te.clip_l, te.clip_g)]
    assert widths == [768, 1280]

    tokens = clip.tokenize("a photo of a person")
    context, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    assert context.shape == (1, 77, 2048) and pooled.shape == (1, 1280)

    positive = host.run("CLIPTextEncode", clip=clip, text="a photo of a person")[0]
    negative = host.run("CLIPTextEncode", clip=clip, text="")[0]
    seen, out = _context_widths_seen(host, model, positive, negative)
    assert {w for w, _ in seen} == {2048}
    assert torch.isfinite(out).all()


def _second_token_as(clip, tokens, make_vector):
    """The tokens with position 1 (the first word) replaced by make_vector(table, token_id)."""
    out = {}
    for key, batches in tokens.items():
        table = getattr(clip.cond_stage_model, f"clip_{key}").transformer.get_input_embeddings().weight
        row = batches[0]
        out[key] = [[row[0], (make_vector(table, row[1][0]), 1.0)] + row[2:]]
    return out


@pytest.mark.parametrize("builder", ["sd2", "sdxl"])
def test_vectors_in_place_of_token_ids_go_through_the_host_encoder(host, builder):
    """The pack feeds learned vectors through the host's encoder as if they were tokens."""
    _, clip = {"sd2": tiny_models.build_sd2_like, "sdxl": tiny_models.build_sdxl_like}[builder]()
    tokens = clip.tokenize("a photo of a person")
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        base = clip.cond_stage_model.encode_token_weights(tokens)[0]
        same = clip.cond_stage_model.encode_token_weights(
            _second_token_as(clip, tokens, lambda table, i: table[i].float().clone()))[0]
        other = clip.cond_stage_model.encode_token_weights(_second_token_as(
            clip, tokens, lambda table, i: torch.randn(table.shape[1], generator=generator)))[0]
    assert same.shape == base.shape
    torch.testing.assert_close(same, base, atol=1e-4, rtol=1e-4)
    assert (other - base).abs().max() > 0.1

"""FLUX.1 (experimental) in the real host, in-process, on the small FLUX.1-dev built with the host's own
classes (support/tiny_flux.py): what the pack reads from it, the textual anchor through T5-XXL, the
training captions against the host's own `embedding:` path, training, and the saved files."""
from __future__ import annotations

import logging

import pytest
import torch
from safetensors.torch import load_file

from support import tiny_flux

# 2 steps at batch 1 (the 4096-wide adapter and its optimiser make a CPU step ~10 s); enhancer frozen
FAST = dict(steps=2, batch_size=1, learning_rate=0.0015, seed=3, train_enhancer="off", resolution=64,
            gradient_checkpointing="auto", precision="auto", save_every=0, resume=False)


@pytest.fixture(scope="module")
def flux(host, cache_dir):
    model, clip, vae = tiny_flux.loaded_in_host(cache_dir)
    assert next(model.model.parameters()).is_inference()
    return model, clip, vae


@pytest.fixture(scope="module")
def new_identity(host, flux):
    (identity,) = host.run("IDEA_IDEnhancer", face_embedding=host.face_embedding(), clip=flux[1], num_tokens=2,
                           seed=0, train_enhancer=True)
    return identity


@pytest.fixture(scope="module")
def trained(host, flux, new_identity):
    model, clip, vae = flux
    images = torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    identity, curve, clip_after = host.run("IDEA_LearnIDToken", model=model, clip=clip, vae=vae, images=images,
                                           identity=new_identity, name="flux_person", **FAST)
    assert clip_after is clip and curve.shape[-1] == 3
    return identity


def test_the_model_and_its_text_encoders_are_read_as_flux(host, flux):
    model, clip, _ = flux
    found = host.pack_module("nodes.host.model_arch").read_model_arch(model)
    assert (found.arch, found.ctx_dim, found.describe()) == ("flux", 4096, "FLUX.1 (context 4096)")
    layout = host.pack_module("nodes.host.text_encoders").read_clip(clip)
    assert layout.arch == "flux" and layout.ctx_dim == 4096 and layout.pooled_key == "clip_l"
    assert [(h.key, h.width, h.first_position) for h in layout.encoders] == [("t5xxl", 4096, 0), ("clip_l", 768, 1)]
    assert [h.key for h in layout.context_encoders] == ["t5xxl"]


def test_the_anchor_is_t5s_output_at_the_name_means_and_t5_starts_from_the_means(host, flux, new_identity):
    """docs/flux.md: A = T5-XXL's states at m_1..m_K of the released names (T5 has no BOS), through
    the host's own encode of the whole FLUX prompt; T5's tokens start at m_k, CLIP-L's at its output."""
    _, clip, _ = flux
    anchor_mod, layout = host.pack_module("idea.anchor"), host.pack_module("nodes.host.text_encoders").read_clip(clip)
    names = anchor_mod.load_name_list()
    means = {h.key: anchor_mod.column_means([h.name_token_ids(n) for n in names], h.embedding_table().float(), 2)
             for h in layout.encoders}
    tokens = {h.token_key: [h.sequence(list(means[h.key]))] for h in layout.encoders}
    with torch.inference_mode():
        context = clip.encode_from_tokens(tokens)
        clip_l_states = clip.cond_stage_model.clip_l.encode_token_weights(tokens["l"])[0]
    assert new_identity.arch == "flux" and new_identity.ctx_dim == 4096
    assert new_identity.clip_layers == {"t5xxl": "last", "clip_l": "last"}
    assert torch.allclose(new_identity.anchor, context[0, 0:2].float(), atol=1e-5)
    assert torch.equal(new_identity.initial_vectors["t5xxl"], means["t5xxl"].float())
    assert torch.allclose(new_identity.initial_vectors["clip_l"], clip_l_states[0, 1:3].float(), atol=1e-5)
    assert new_identity.metadata["anchor_names"].startswith("wiki_names_v2.txt")


def test_training_captions_are_what_the_host_encodes_for_embedding_name(host, flux, new_identity):
    """The trainer's batched captions (T5 padded to 256, CLIP-L to 77, the vectors in between) equal
    the host's CLIPTextEncode of the same caption with the vectors saved as embedding:NAME."""
    _, clip, _ = flux
    layout = host.pack_module("nodes.host.text_encoders").read_clip(clip)
    encoder = host.pack_module("nodes.training.caption_encoder").CaptionEncoder(clip, layout)
    vectors = {k: v + 0.01 * torch.randn(v.shape, generator=torch.Generator().manual_seed(5))
               for k, v in new_identity.token_vectors.items()}
    host.pack_module("idea.identity_writing").save_embedding_for_prompts(
        vectors, host.base / "models" / "embeddings" / "flux_caption_check.safetensors", overwrite=True)
    with torch.inference_mode():
        encoder.prepare()
        context, pooled = encoder.encode([0], vectors)
        (conditioning,) = host.run("CLIPTextEncode", clip=clip,
                                   text="a photo of a face of embedding:flux_caption_check person")
    expected, extra = conditioning[0]
    assert context.shape == expected.shape == (1, 256, 4096)
    assert torch.allclose(context, expected, atol=1e-5)
    assert torch.allclose(pooled, extra["pooled_output"], atol=1e-5)


def test_training_moves_loss_tokens_and_gate_and_records_the_flux_recipe(host, trained, new_identity):
    record = trained.metadata["training"]
    assert record["steps_done"] == 2 and all(map(torch.isfinite, torch.tensor(record["losses"])))
    assert record["gradient_checkpointing"] is True and record["resolution"] == 64  # auto: on for FLUX.1
    assert trained.metadata["flux_training"]["guidance"] == 3.5
    assert trained.metadata["flux_training"]["schedule_shift"] == pytest.approx(1.15)
    for key in ("t5xxl", "clip_l"):
        assert not torch.equal(trained.token_vectors[key], new_identity.token_vectors[key]), key
    assert float(trained.adapter.gamma) != 0.0


def test_checkpointed_blocks_give_the_gradients_of_the_plain_forward(host, flux):
    """The host's FLUX blocks add residuals in place: plain autograd refuses them, the snapshot hooks
    make the forward differentiable, and the recomputing blocks give the same input gradients."""
    autograd_mod = host.pack_module("nodes.training.flux_autograd")
    weights = host.pack_module("nodes.training.autograd_weights")
    model = flux[0].model.diffusion_model
    gen = torch.Generator().manual_seed(2)
    img, txt = torch.randn(1, 16, 256, generator=gen), torch.randn(1, 8, 256, generator=gen)
    vec = torch.randn(1, 256, generator=gen)
    pe = model.pe_embedder(torch.zeros(1, 24, 3))
    double, single = model.double_blocks[0], model.single_blocks[0]

    def run(forward_double, forward_single):
        inputs = [t.clone().requires_grad_(True) for t in (img, txt, vec)]
        out_img, out_txt = forward_double(img=inputs[0] * 1.0, txt=inputs[1] * 1.0, vec=inputs[2], pe=pe)
        out = forward_single(torch.cat((out_txt, out_img), 1), vec=inputs[2], pe=pe)
        return torch.autograd.grad(out.square().sum(), inputs)

    with torch.inference_mode(False), weights.autograd_usable(model), weights.host_training_mode():
        with pytest.raises(RuntimeError, match="inplace"):
            run(double, single)
        with autograd_mod.saved_tensor_snapshots():
            plain = run(double, single)
        recomputed = run(autograd_mod.recomputed_in_backward(double.forward),
                         autograd_mod.recomputed_in_backward(single.forward))
    for a, b in zip(plain, recomputed):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_recomputed_t5_layers_give_the_gradients_of_the_plain_encode(host, flux, new_identity):
    """With checkpointing, T5-XXL's layers are recomputed in backward (its cast weight copies are not
    kept): the token vectors' gradients are those of the plain encode."""
    _, clip, _ = flux
    autograd_mod = host.pack_module("nodes.training.flux_autograd")
    weights = host.pack_module("nodes.training.autograd_weights")
    layout = host.pack_module("nodes.host.text_encoders").read_clip(clip)
    encoder = host.pack_module("nodes.training.caption_encoder").CaptionEncoder(clip, layout)
    t5 = layout.encoders[0].encoder

    def gradients(recompute: bool):
        vectors = {k: v.clone().requires_grad_(True) for k, v in new_identity.token_vectors.items()}
        with torch.inference_mode(False), torch.enable_grad(), weights.autograd_usable(clip.cond_stage_model), \
                autograd_mod.t5_layers_recomputed(t5, recompute):
            encoder.prepare()
            context, pooled = encoder.encode([0, 40], vectors)
            loss = context.square().mean() + pooled.square().mean()
            return torch.autograd.grad(loss, [vectors["t5xxl"], vectors["clip_l"]])

    plain, recomputed = gradients(False), gradients(True)
    assert plain[0].abs().max() > 0 and plain[1].abs().max() > 0
    assert "forward" not in t5.transformer.encoder.block[0].__dict__  # the host's layer is restored
    for a, b in zip(plain, recomputed):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-8)


def test_files_load_and_the_hosts_encoder_finds_both_keys(host, flux, trained, caplog):
    _, clip, _ = flux
    identity_file = host.base / "models" / "idea" / "flux_person.safetensors"
    embedding = load_file(host.base / "models" / "embeddings" / "flux_person.safetensors")
    assert set(embedding) == {"t5xxl", "clip_l"} and embedding["t5xxl"].shape == (2, 4096)
    (loaded,) = host.run("IDEA_LoadIdentity", identity_file=identity_file.name)
    assert loaded.arch == "flux" and torch.equal(loaded.token_vectors["t5xxl"], trained.token_vectors["t5xxl"])
    tokens = clip.tokenize("a photo of embedding:flux_person")
    for token_key, key in (("t5xxl", "t5xxl"), ("l", "clip_l")):
        inserted = [t for t, _ in tokens[token_key][0] if torch.is_tensor(t)]
        assert len(inserted) == 2 and torch.equal(torch.stack(inserted), embedding[key])
    with caplog.at_level(logging.WARNING), torch.inference_mode():
        clip.encode_from_tokens(tokens)
    assert "shape mismatch" not in caplog.text and "does not exist" not in caplog.text

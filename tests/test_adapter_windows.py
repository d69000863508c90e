"""The adapted context does not depend on how the host pads or batches it (issue: a long negative
prompt weakened the identity). Contexts are adapted 77-token window by window, through real sampler
runs on the tiny SD1.5 checkpoint; training contexts (one window) are adapted exactly as before."""
from __future__ import annotations

import pytest
import torch
from support import tiny_models
from support.random_identities import adapted, make_identity, randn, sample


@pytest.fixture(scope="module")
def sd15(host, cache_dir):
    return tiny_models.build_sd15_in_process(cache_dir)


def recording(model):
    """A clone of `model` with an innermost DIFFUSION_MODEL wrapper that records, per model call, the
    context the UNet reads and the sampler's cond/uncond labels."""
    from comfy import patcher_extension
    seen = []

    def record(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        seen.append((context.clone(), list(transformer_options["cond_or_uncond"])))
        return executor(x, timesteps, context, y, control, transformer_options, **kwargs)

    probe = model.clone()
    probe.add_wrapper_with_key(patcher_extension.WrappersMP.DIFFUSION_MODEL, "test.record", record)
    return probe, seen


def rows(context, labels, kind):
    """The rows of a batched context that belong to `kind` (0 cond, 1 uncond)."""
    per_chunk = context.shape[0] // len(labels)
    return torch.cat([context[i * per_chunk:(i + 1) * per_chunk] for i, k in enumerate(labels) if k == kind])


def unet_contexts(host, model, identity, positive, negative, apply_to="cond"):
    patched = host.run("IDEA_ApplyIDAdapter", model=model, identity=identity, weight=1.0, start_at=0.0,
                       end_at=1.0, apply_to=apply_to)[0]
    probe, seen = recording(patched)
    sample(host, probe, [[positive, {}]], [[negative, {}]], steps=1)
    [(context, labels)] = seen  # one step: cond and uncond batched into one model call
    assert sorted(labels) == [0, 1]
    return rows(context, labels, 0), rows(context, labels, 1)


def test_cond_rows_are_identical_with_a_77_and_a_154_token_negative_prompt(host, sd15):
    model, identity = sd15[0], make_identity(host)
    positive = randn(1, 77, 768, seed=30)
    short_negative, long_negative = randn(1, 77, 768, seed=31), randn(1, 154, 768, seed=32)
    cond_short, uncond_short = unet_contexts(host, model, identity, positive, short_negative)
    cond_long, uncond_long = unet_contexts(host, model, identity, positive, long_negative)

    assert cond_short.shape[1] == 77 and cond_long.shape[1] == 154  # the host repeated the positive
    assert torch.equal(cond_long[:, :77], cond_short) and torch.equal(cond_long[:, 77:], cond_short)
    assert torch.equal(cond_short, adapted(identity, positive))
    assert torch.equal(uncond_short, short_negative) and torch.equal(uncond_long, long_negative)
    # what the fix is for: the adapter run over the repeated context at once drifts visibly
    whole = adapted(identity, positive.repeat(1, 2, 1))[:, :77]
    update = (cond_short - positive).abs().max()
    assert (whole - cond_short).abs().max() > 0.01 * update


def test_a_long_positive_prompt_is_adapted_window_by_window(host, sd15):
    model, clip, _ = sd15
    identity = make_identity(host, seed=3)
    palette = "red green blue light dark warm cold soft old young tall happy calm bright".split()
    words = " ".join(palette[i % len(palette)] for i in range(160))  # one token each: 3 windows of 75
    [[positive, _]] = host.run("CLIPTextEncode", clip=clip, text=f"a photo of a person, {words}")[0]
    [[negative, _]] = host.run("CLIPTextEncode", clip=clip, text="blurry")[0]
    assert positive.shape[1] == 231 and negative.shape[1] == 77
    cond, uncond = unet_contexts(host, model, identity, positive, negative, apply_to="both")

    windows = positive.split(77, dim=1)
    assert torch.equal(cond, torch.cat([adapted(identity, w) for w in windows], dim=1))
    assert torch.equal(uncond, adapted(identity, negative).repeat(1, 3, 1))


def test_a_context_of_another_length_is_adapted_as_a_whole(host):
    adapter_mod = host.pack_module("idea.adapter")
    identity = make_identity(host, seed=4)
    context = randn(1, 100, 768, seed=33)  # no SD text encoder makes this; adapted as one piece
    frozen = identity.adapter.requires_grad_(False)
    with torch.inference_mode():
        out = adapter_mod.adapt_by_chunks(frozen, context, identity.fused_tokens())
    assert torch.equal(out, adapted(identity, context))


def test_training_contexts_are_adapted_exactly_as_before_with_the_same_gradients(host, sd15):
    """Learn ID Token attaches its live adapter through attach_id_adapter; its contexts are one window,
    so the result and every gradient are bit-identical to calling the adapter directly."""
    patch_mod = host.pack_module("nodes.patching.adapter_patch")
    identity = make_identity(host, gamma=0.3)
    identity.make_trainable()
    patched = patch_mod.attach_id_adapter(sd15[0], identity.adapter, identity.fused_tokens, copy_adapter=False)
    [(_, wrapper)] = patch_mod.attached_id_adapters(patched)
    params = [identity.adapter.gamma, *identity.enhancer.parameters(), *identity.adapter.parameters()]
    context = randn(2, 77, 768, seed=34)
    with torch.inference_mode(False), torch.enable_grad():
        through_patch = wrapper.adapt_context(context, {"cond_or_uncond": [0]})
        direct = identity.adapter(context, identity.fused_tokens(), 1.0)
        grads_patch = torch.autograd.grad(through_patch.square().mean(), params)
        grads_direct = torch.autograd.grad(direct.square().mean(), params)
    assert torch.equal(through_patch, direct)
    assert all(torch.equal(a, b) for a, b in zip(grads_patch, grads_direct))

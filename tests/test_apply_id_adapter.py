"""Apply ID-Adapter inside the real host: exact equality with the adapter computed independently, the
cond/uncond and sigma selection, composition with other packs' patches and ControlNet, chaining,
the three context sizes, gradients for the training node, and refusing an identity of another base."""
from __future__ import annotations

import copy
import logging
import types

import pytest
import torch
from support import tiny_models
from support.random_identities import WIDTHS, adapted, make_identity, randn, sample

def apply_node(host, model, identity, weight=1.0, start_at=0.0, end_at=1.0, apply_to="cond"):
    return host.run("IDEA_ApplyIDAdapter", model=model, identity=identity, weight=weight,
                    start_at=start_at, end_at=end_at, apply_to=apply_to)[0]


def call(host, patcher, context, sigma, cond_or_uncond=(0,), y=None, latent_seed=3):
    """One apply_model call with transformer_options built as the sampler builds them: the patcher's
    wrappers merged in by the host's prepare_model_patcher, then cond_or_uncond and per-latent sigmas."""
    import comfy.model_patcher
    import comfy.sampler_helpers
    chunks = len(cond_or_uncond)
    sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1)
    x = randn(sigma.numel(), 4, 8, 8, seed=latent_seed).repeat(chunks, 1, 1, 1)
    options = comfy.model_patcher.create_model_options_clone(patcher.model_options)
    comfy.sampler_helpers.prepare_model_patcher(patcher, {}, options)
    transformer_options = options["transformer_options"]
    transformer_options.update(cond_or_uncond=list(cond_or_uncond), sigmas=sigma)
    extra = {} if y is None else {"y": y}
    with torch.inference_mode():
        return patcher.model.apply_model(x, sigma.repeat(chunks), c_crossattn=context,
                                         transformer_options=transformer_options, **extra)


def snapshot(patcher):
    return (copy.deepcopy(patcher.model_options), copy.deepcopy(patcher.patches),
            {k: {k1: list(v1) for k1, v1 in v.items()} for k, v in patcher.wrappers.items()},
            copy.deepcopy(patcher.callbacks), dict(patcher.object_patches))


@pytest.fixture(scope="module")
def sd15(host, cache_dir):
    return tiny_models.build_sd15_in_process(cache_dir)[0]


@pytest.fixture(scope="module")
def sigma_at(sd15):
    return sd15.get_model_object("model_sampling").percent_to_sigma


def test_node_schema_has_tooltips_and_defaults(host):
    schema = host.node("IDEA_ApplyIDAdapter").INPUT_TYPES()["required"]
    assert list(schema) == ["model", "identity", "weight", "start_at", "end_at", "apply_to"]
    assert all(spec[1].get("tooltip") for spec in schema.values())
    weight = schema["weight"][1]
    assert (weight["default"], weight["min"], weight["max"], weight["step"]) == (1.0, 0.0, 2.0, 0.05)
    assert (schema["start_at"][1]["default"], schema["end_at"][1]["default"]) == (0.0, 1.0)
    assert schema["apply_to"][1]["default"] == "cond"
    assert list(host.node("IDEA_ApplyIDAdapter").RETURN_TYPES) == ["MODEL"]


def test_one_call_equals_the_unpatched_model_on_the_adapted_context(host, sd15, sigma_at):
    identity = make_identity(host)
    adapter_before = {k: v.clone() for k, v in identity.adapter.state_dict().items()}
    flags_before = [p.requires_grad for p in identity.adapter.parameters()]
    before, context, sigma = snapshot(sd15), randn(1, 77, 768, seed=11), sigma_at(0.5)
    plain = call(host, sd15, context, sigma)

    patched = apply_node(host, sd15, identity, weight=0.7)
    out = call(host, patched, context, sigma)
    expected = call(host, sd15, adapted(identity, context, 0.7), sigma)
    assert torch.equal(out, expected)
    assert (out - plain).abs().max() > 1e-3  # the adapter visibly acts

    # the model the node was given is untouched, and so is the identity
    assert snapshot(sd15) == before and torch.equal(call(host, sd15, context, sigma), plain)
    after = identity.adapter.state_dict()
    assert all(torch.equal(after[k], v) for k, v in adapter_before.items())
    assert [p.requires_grad for p in identity.adapter.parameters()] == flags_before


def test_weight_zero_and_sigmas_outside_the_window_are_bit_identical(host, sd15, sigma_at):
    identity, context = make_identity(host), randn(1, 77, 768, seed=12)
    off = apply_node(host, sd15, identity, weight=0.0)
    assert torch.equal(call(host, off, context, sigma_at(0.5)), call(host, sd15, context, sigma_at(0.5)))

    windowed = apply_node(host, sd15, identity, start_at=0.3, end_at=0.6)
    for percent in (0.29, 0.61):  # just before start_at, just after end_at
        sigma = sigma_at(percent)
        assert torch.equal(call(host, windowed, context, sigma), call(host, sd15, context, sigma))
    sigma = sigma_at(0.45)
    assert torch.equal(call(host, windowed, context, sigma),
                       call(host, sd15, adapted(identity, context), sigma))

    # per-latent sigmas (a training batch): only the latent inside the window is adapted
    sigmas = [sigma_at(0.45), sigma_at(0.9)]
    two = randn(2, 77, 768, seed=13)
    expected = torch.cat([adapted(identity, two[:1]), two[1:]])
    assert torch.equal(call(host, windowed, two, sigmas), call(host, sd15, expected, sigmas))


def test_an_untrained_identity_changes_nothing_and_says_so(host, sd15, sigma_at, caplog):
    context, sigma = randn(1, 77, 768, seed=24), sigma_at(0.5)
    with caplog.at_level(logging.WARNING):
        untrained = apply_node(host, sd15, make_identity(host, gamma=0.0))
    assert "untrained" in caplog.text and "Learn ID Token" in caplog.text
    assert torch.equal(call(host, untrained, context, sigma), call(host, sd15, context, sigma))


def test_start_after_end_is_refused(host, sd15):
    with pytest.raises(ValueError, match="start_at .* is after end_at"):
        apply_node(host, sd15, make_identity(host), start_at=0.7, end_at=0.2)


@pytest.mark.parametrize("apply_to, kinds", [("cond", {0}), ("uncond", {1}), ("both", {0, 1})])
def test_only_the_selected_cond_or_uncond_chunks_read_the_adapter(host, sd15, sigma_at, apply_to, kinds):
    identity, sigma = make_identity(host), sigma_at(0.5)
    order = (1, 0)  # the sampler may batch uncond first; selection follows the labels, not positions
    context = randn(2, 77, 768, seed=14)
    rows = [i for i, kind in enumerate(order) if kind in kinds]
    expected_context = context.clone()
    expected_context[rows] = adapted(identity, context[rows])

    patched = apply_node(host, sd15, identity, apply_to=apply_to)
    out = call(host, patched, context, sigma, cond_or_uncond=order)
    plain = call(host, sd15, context, sigma, cond_or_uncond=order)
    assert torch.equal(out, call(host, sd15, expected_context, sigma, cond_or_uncond=order))
    for i in range(2):
        changed = (out[i] - plain[i]).abs().max() > 1e-3
        assert changed == (i in rows), f"row {i} (kind {order[i]}) changed={changed}"


def test_two_chained_identities_apply_in_order(host, sd15, sigma_at):
    first, second = make_identity(host, seed=0), make_identity(host, seed=100, gamma=-0.8)
    context, sigma = randn(1, 77, 768, seed=15), sigma_at(0.5)
    chained = apply_node(host, apply_node(host, sd15, first), second, weight=1.3)
    out = call(host, chained, context, sigma)
    in_order = adapted(second, adapted(first, context), 1.3)
    reversed_order = adapted(first, adapted(second, context, 1.3))
    assert not torch.allclose(in_order, reversed_order, atol=1e-4)
    assert torch.equal(out, call(host, sd15, in_order, sigma))


def _cross_attention_blocks(host, model):
    """(block name, number, block_index) of every cross-attention the UNet runs, as the host keys them."""
    seen = []

    def record(n, context, value, extra_options):
        seen.append((*extra_options["block"], extra_options["block_index"]))
        return n, context, value

    probe = model.clone()
    probe.set_model_attn2_patch(record)
    call(host, probe, randn(1, 77, 768), 1.0)
    return seen


@pytest.mark.parametrize("adapter_first", [True, False])
def test_composes_with_attn2_replace_on_every_block_and_an_attn2_patch(host, sd15, sigma_at, adapter_first):
    from comfy.ldm.modules.attention import optimized_attention
    blocks = _cross_attention_blocks(host, sd15)
    assert {b[0] for b in blocks} == {"input", "middle", "output"}
    calls = {"replace": [], "patch": 0}

    def replace(q, k, v, extra_options):  # stands in for IPAdapter/InstantID: sees the projected context
        calls["replace"].append(tuple(extra_options["block"]))
        return optimized_attention(q, k, v, extra_options["n_heads"]) * 1.5

    def patch(n, context, value, extra_options):
        calls["patch"] += 1
        return n * 1.1, context, value

    def with_others(model):
        model = model.clone()
        for name, number, index in blocks:
            model.set_model_attn2_replace(replace, name, number, index)
        model.set_model_attn2_patch(patch)
        return model

    identity, context, sigma = make_identity(host), randn(1, 77, 768, seed=16), sigma_at(0.5)
    both = with_others(apply_node(host, sd15, identity)) if adapter_first \
        else apply_node(host, with_others(sd15), identity)
    out = call(host, both, context, sigma)
    assert len(calls["replace"]) == len(blocks) and calls["patch"] == len(blocks)
    # our effect is there: exactly the others' model run on y'
    assert torch.equal(out, call(host, with_others(sd15), adapted(identity, context), sigma))
    # and theirs is too
    assert (out - call(host, apply_node(host, sd15, identity), context, sigma)).abs().max() > 1e-3


def test_controlnet_and_adapter_both_act_in_a_ksampler_run(host, sd15, cache_dir):
    tiny_models.install_controlnet(host.base, "idea-tiny-controlnet.safetensors", cache_dir=cache_dir)
    control = host.run("ControlNetLoader", control_net_name="idea-tiny-controlnet.safetensors")[0]
    positive = [[randn(1, 77, 768, seed=17), {}]]
    negative = [[randn(1, 77, 768, seed=18), {}]]
    hint = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    pos_c, neg_c = host.run("ControlNetApplyAdvanced", positive=positive, negative=negative,
                            control_net=control, image=hint, strength=1.0,
                            start_percent=0.0, end_percent=1.0)[:2]
    patched = apply_node(host, sd15, make_identity(host))

    controlled = sample(host, sd15, pos_c, neg_c)
    adapter_only = sample(host, patched, positive, negative)
    both = sample(host, patched, pos_c, neg_c)
    assert torch.isfinite(both).all()
    scale = controlled.abs().mean()
    assert (both - controlled).abs().mean() > 0.01 * scale  # the adapter acts beside the ControlNet
    assert (both - adapter_only).abs().mean() > 0.01 * scale  # the ControlNet acts beside the adapter
    # weight 0 through the real sampler (its own cond_or_uncond and sigmas) changes nothing
    assert torch.equal(sample(host, apply_node(host, sd15, make_identity(host), weight=0.0), pos_c, neg_c),
                       controlled)


@pytest.mark.parametrize("arch", ["sd2", "sdxl"])
def test_sd2_and_sdxl_context_sizes(host, sigma_at, arch):
    builder = {"sd2": tiny_models.build_sd2_like, "sdxl": tiny_models.build_sdxl_like}[arch]
    model = builder(model_channels=64)[0]
    ctx_dim = sum(WIDTHS[arch].values())
    y = randn(1, 2816, seed=19) if arch == "sdxl" else None
    identity, context = make_identity(host, arch), randn(1, 77, ctx_dim, seed=20)
    sigma = model.get_model_object("model_sampling").percent_to_sigma(0.5)
    out = call(host, apply_node(host, model, identity), context, sigma, y=y)
    assert torch.equal(out, call(host, model, adapted(identity, context), sigma, y=y))
    assert (out - call(host, model, context, sigma, y=y)).abs().max() > 1e-3

    with pytest.raises(ValueError, match=r"trained for SD1\.x \(context 768\) but the model is "
                                         + {"sd2": r"SD2\.x \(context 1024\)", "sdxl": r"SDXL \(context 2048\)"}[arch]):
        apply_node(host, model, make_identity(host, "sd1"))


def test_an_identity_of_another_base_is_refused_with_the_fix(host, sd15):
    mismatch = host.pack_module("nodes.host.model_arch").IdentityModelMismatch
    with pytest.raises(mismatch) as error:
        apply_node(host, sd15, make_identity(host, "sdxl"))
    assert str(error.value) == ("this identity was trained for SDXL (context 2048) but the model is SD1.x "
                                "(context 768); load an SDXL checkpoint or train the identity on this one")

    import comfy.supported_models as supported
    model_arch = host.pack_module("nodes.host.model_arch")
    refiner = types.SimpleNamespace(model=types.SimpleNamespace(
        model_config=supported.SDXLRefiner({"context_dim": 1280})))
    with pytest.raises(mismatch,
                       match=r"this model is SDXL Refiner \(context 1280\)\. The identity was trained for SDXL"):
        model_arch.check_identity_fits(make_identity(host, "sdxl"), refiner)
    flux = types.SimpleNamespace(model=types.SimpleNamespace(model_config=supported.Flux({})))
    with pytest.raises(mismatch, match=r"trained for SD1\.x \(context 768\) but the model is FLUX\.1;"):
        model_arch.check_identity_fits(make_identity(host, "sd1"), flux)
    flux2 = types.SimpleNamespace(model=types.SimpleNamespace(model_config=supported.Flux2({"hidden_size": 6144})))
    with pytest.raises(mismatch, match=r"works with SD1\.x, SD2\.x, SDXL and \(experimental\) FLUX\.1 models; "
                                       r"this model is FLUX\.2\."):
        model_arch.check_identity_fits(make_identity(host, "sd1"), flux2)


def test_low_precision_context_keeps_its_dtype_with_one_copy_per_dtype(host, sd15):
    patch_mod = host.pack_module("nodes.patching.adapter_patch")
    identity = make_identity(host)
    [(key, wrapper)] = patch_mod.attached_id_adapters(apply_node(host, sd15, identity))
    assert key.startswith(patch_mod.KEY_PREFIX)
    context = randn(2, 77, 768, seed=21)
    with torch.inference_mode():
        for dtype in (torch.bfloat16, torch.float16, torch.bfloat16):
            out = wrapper.adapt_context(context.to(dtype), {})
            assert out.dtype == dtype
            torch.testing.assert_close(out.float(), adapted(identity, context.to(dtype).float()),
                                       atol=2e-2, rtol=2e-2)
    assert len(wrapper._devices) == 1  # bf16 and fp16 both compute in fp32 on the CPU: one copy


def test_training_use_gets_gradients_into_the_live_adapter_and_enhancer(host, sd15, sigma_at):
    """What the training node relies on: no copy, Z recomputed by a callable, autograd through the UNet."""
    patch_mod = host.pack_module("nodes.patching.adapter_patch")
    identity = make_identity(host, gamma=0.3)
    identity.make_trainable()
    patched = patch_mod.attach_id_adapter(sd15, identity.adapter, identity.fused_tokens, copy_adapter=False)
    [(_, wrapper)] = patch_mod.attached_id_adapters(patched)
    assert wrapper.adapter is identity.adapter
    context = randn(1, 77, 768, seed=22)
    import comfy.model_patcher
    import comfy.sampler_helpers
    options = comfy.model_patcher.create_model_options_clone(patched.model_options)
    comfy.sampler_helpers.prepare_model_patcher(patched, {}, options)
    options["transformer_options"].update(cond_or_uncond=[0], sigmas=torch.tensor([sigma_at(0.5)]))
    with torch.inference_mode(False), torch.enable_grad():
        out = patched.model.apply_model(randn(1, 4, 8, 8, seed=23), torch.tensor([sigma_at(0.5)]),
                                        c_crossattn=context, transformer_options=options["transformer_options"])
        grads = torch.autograd.grad(out.square().mean(), [identity.adapter.gamma,
                                                          *identity.enhancer.parameters()])
    assert grads[0].abs() > 0
    assert any(g.abs().max() > 0 for g in grads[1:])

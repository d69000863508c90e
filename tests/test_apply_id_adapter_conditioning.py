"""Apply ID-Adapter to Conditioning inside the real host: the same image as the model patch, ordinary
conditioning that the host's own conditioning nodes and ControlNet compose with, the base check, and
two identities in one picture that stay in their own regions."""
from __future__ import annotations

import pytest
import torch
from support import tiny_models
from support.random_identities import adapted, make_identity, randn, sample

NODE = "IDEA_ApplyIDAdapterConditioning"


@pytest.fixture(scope="module")
def sd15(host, cache_dir):
    return tiny_models.build_sd15_in_process(cache_dir)


@pytest.fixture(scope="module")
def prompts(host, sd15):
    clip = sd15[1]
    encode = lambda text: host.run("CLIPTextEncode", clip=clip, text=text)[0]  # noqa: E731
    return {"positive": encode("a close-up photo of a person, natural light"),
            "negative": encode("blurry, lowres"),
            "left": encode("a photo of a woman with red hair"), "right": encode("a photo of an old man"),
            "background": encode("two people in a park, daylight")}


def apply(host, conditioning, identity, weight=1.0):
    return host.run(NODE, conditioning=conditioning, identity=identity, weight=weight)[0]


def patched_model(host, model, identity, **schedule):
    inputs = {"weight": 1.0, "start_at": 0.0, "end_at": 1.0, "apply_to": "cond", **schedule}
    return host.run("IDEA_ApplyIDAdapter", model=model, identity=identity, **inputs)[0]


def test_schema_has_tooltips_and_a_named_output(host):
    node = host.node(NODE)
    schema = node.INPUT_TYPES()["required"]
    assert list(schema) == ["conditioning", "identity", "weight"]
    assert all(spec[1].get("tooltip") for spec in schema.values())
    assert (schema["weight"][1]["default"], schema["weight"][1]["min"], schema["weight"][1]["max"]) == (1.0, 0.0, 2.0)
    assert list(node.RETURN_TYPES) == ["CONDITIONING"] and list(node.RETURN_NAMES) == ["conditioning"]


def test_the_context_is_adapted_and_everything_else_kept(host):
    identity = make_identity(host, "sdxl")
    context, pooled = randn(1, 77, 2048, seed=40), randn(1, 1280, seed=41)
    conditioning = [[context, {"pooled_output": pooled, "strength": 0.8}], [randn(2, 154, 2048, seed=42), {}]]
    out = apply(host, conditioning, identity, weight=0.7)
    assert torch.equal(out[0][0], adapted(identity, context, 0.7))
    assert out[0][1] == {"pooled_output": pooled, "strength": 0.8} and out[0][1]["pooled_output"] is pooled
    assert out[0][1] is not conditioning[0][1]  # a new dict: the input conditioning stays as it was
    long = conditioning[1][0]
    assert torch.equal(out[1][0], torch.cat([adapted(identity, long[:, :77], 0.7),
                                             adapted(identity, long[:, 77:], 0.7)], dim=1))
    assert torch.equal(conditioning[0][0], randn(1, 77, 2048, seed=40))
    assert apply(host, conditioning, identity, weight=0.0)[0][0] is context


def test_an_identity_of_another_base_is_refused_with_the_fix(host):
    mismatch = host.pack_module("nodes.apply_id_adapter_conditioning").IdentityConditioningMismatch
    with pytest.raises(mismatch) as error:
        apply(host, [[randn(1, 77, 768), {}]], make_identity(host, "sdxl"))
    assert str(error.value) == (
        "this identity was trained for SDXL (context 2048) but the conditioning has context 768 (SD1.x); "
        "encode the prompt with the CLIP of the SDXL checkpoint the identity was trained on, or train an "
        "identity on this checkpoint")
    with pytest.raises(mismatch,
                       match=r"trained for SD2\.x \(context 1024\) but the conditioning has context 2048 \(SDXL\)"):
        apply(host, [[randn(1, 77, 2048), {}]], make_identity(host, "sd2"))


def test_the_image_equals_apply_id_adapter_on_the_model(host, sd15, prompts):
    model, _, vae = sd15
    identity = make_identity(host, seed=7)
    positive, negative = prompts["positive"], prompts["negative"]
    on_conditioning = sample(host, model, apply(host, positive, identity), negative, steps=3)
    on_model = sample(host, patched_model(host, model, identity), positive, negative, steps=3)
    plain = sample(host, model, positive, negative, steps=3)
    torch.testing.assert_close(on_conditioning, on_model, rtol=1e-5, atol=1e-5)
    assert (on_model - plain).abs().mean() > 0.01 * plain.abs().mean()  # the identity visibly acts
    images = [host.run("VAEDecode", samples={"samples": s}, vae=vae)[0] for s in (on_conditioning, on_model)]
    torch.testing.assert_close(images[0], images[1], rtol=1e-4, atol=1e-4)


def test_timestep_ranges_give_the_model_patchs_start_and_end(host, sd15, prompts):
    """The documented recipe: the adapted prompt on [start, end], the plain one outside, combined.
    start and end lie off the 5-step schedule's grid (0, 0.25, 0.5, ...): a step exactly on a
    boundary runs both prompts in the host, where the patch counts it as inside."""
    model, identity = sd15[0], make_identity(host, seed=8)
    positive, negative = prompts["positive"], prompts["negative"]
    start, end = 0.3, 0.6

    def timed(conditioning, a, b):
        return host.run("ConditioningSetTimestepRange", conditioning=conditioning, start=a, end=b)[0]

    adapted_part = timed(apply(host, positive, identity), start, end)
    plain_parts = host.run("ConditioningCombine", conditioning_1=timed(positive, 0.0, start),
                           conditioning_2=timed(positive, end, 1.0))[0]
    recipe = host.run("ConditioningCombine", conditioning_1=adapted_part, conditioning_2=plain_parts)[0]
    by_recipe = sample(host, model, recipe, negative, steps=5)
    by_patch = sample(host, patched_model(host, model, identity, start_at=start, end_at=end), positive, negative,
                      steps=5)
    torch.testing.assert_close(by_recipe, by_patch, rtol=1e-5, atol=1e-5)
    full = sample(host, patched_model(host, model, identity), positive, negative, steps=5)
    assert (by_patch - full).abs().mean() > 1e-3 * full.abs().mean()  # the window matters


def test_it_commutes_with_concat_areas_masks_and_timestep_ranges(host, prompts):
    """Before or after the host's conditioning nodes, the same conditioning comes out: those nodes only
    add keys (or join windows), the adapter only changes the context, window by window."""
    identity = make_identity(host, seed=9)
    left, right = prompts["left"], prompts["right"]
    mask = torch.zeros(1, 64, 128)
    mask[:, :, :64] = 1.0
    steps = {
        "ConditioningSetMask": {"mask": mask, "strength": 1.0, "set_cond_area": "default"},
        "ConditioningSetArea": {"width": 64, "height": 64, "x": 64, "y": 0, "strength": 1.0},
        "ConditioningSetAreaPercentage": {"width": 0.5, "height": 1.0, "x": 0.5, "y": 0.0, "strength": 1.0},
        "ConditioningSetTimestepRange": {"start": 0.0, "end": 0.5},
    }
    for node_id, inputs in steps.items():
        after = host.run(node_id, conditioning=apply(host, left, identity), **inputs)[0]
        before = apply(host, host.run(node_id, conditioning=left, **inputs)[0], identity)
        assert_same_conditioning(after, before)
    after = host.run("ConditioningConcat", conditioning_to=apply(host, left, identity),
                     conditioning_from=apply(host, right, identity))[0]
    before = apply(host, host.run("ConditioningConcat", conditioning_to=left, conditioning_from=right)[0], identity)
    assert_same_conditioning(after, before)


def test_controlnet_before_or_after_gives_one_image_and_both_act(host, sd15, cache_dir, prompts):
    model = sd15[0]
    identity = make_identity(host, seed=10)
    positive, negative = prompts["positive"], prompts["negative"]
    tiny_models.install_controlnet(host.base, "idea-tiny-controlnet.safetensors", cache_dir=cache_dir)
    control = host.run("ControlNetLoader", control_net_name="idea-tiny-controlnet.safetensors")[0]
    hint = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))

    def controlled(pos):
        return host.run("ControlNetApplyAdvanced", positive=pos, negative=negative, control_net=control, image=hint,
                        strength=1.0, start_percent=0.0, end_percent=1.0)[:2]

    adapter_first = sample(host, model, *controlled(apply(host, positive, identity)))
    control_pos, control_neg = controlled(positive)
    control_first = sample(host, model, apply(host, control_pos, identity), control_neg)
    assert torch.equal(adapter_first, control_first)
    scale = adapter_first.abs().mean()
    assert (adapter_first - sample(host, model, control_pos, control_neg)).abs().mean() > 0.01 * scale
    assert (adapter_first - sample(host, model, apply(host, positive, identity), negative)).abs().mean() > 0.01 * scale


def assert_same_conditioning(a, b):
    assert len(a) == len(b)
    for (context_a, extra_a), (context_b, extra_b) in zip(a, b):
        assert torch.equal(context_a, context_b)
        assert extra_a.keys() == extra_b.keys()
        for key, value in extra_a.items():
            other = extra_b[key]
            assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value is other or value == other


def two_people(host, prompts, identities, weights, regions):
    """The two-people graph: each person's prompt adapted with their identity, restricted to their
    half (a hard mask, or an area as the bundled workflow does), combined with the background prompt."""
    positive = prompts["background"]
    for name, identity, weight, region in zip(("left", "right"), identities, weights, regions):
        person = apply(host, prompts[name], identity, weight)
        if isinstance(region, torch.Tensor):
            person = host.run("ConditioningSetMask", conditioning=person, mask=region, strength=1.0,
                              set_cond_area="default")[0]
        else:
            person = host.run("ConditioningSetAreaPercentage", conditioning=person, width=0.5, height=1.0,
                              x=region, y=0.0, strength=1.0)[0]
        positive = host.run("ConditioningCombine", conditioning_1=positive, conditioning_2=person)[0]
    return positive


@pytest.mark.parametrize("restrict", ["mask", "area"])
def test_each_identity_acts_only_inside_its_own_region(host, sd15, prompts, restrict):
    """Hard masks (or areas), one sampling step: A's weight changes the latent only in A's half, B's
    only in B's, and nothing at all changes outside."""
    model = sd15[0]
    identities = (make_identity(host, seed=11), make_identity(host, seed=12, gamma=-0.9))
    width, height = 128, 64
    left = torch.zeros(1, height, width)
    left[:, :, : width // 2] = 1.0
    regions = (left, 1.0 - left) if restrict == "mask" else (0.0, 0.5)
    halves = [m[0, ::8, ::8].bool() for m in (left, 1.0 - left)]  # in the 8x-smaller latent

    def latent(weights):
        positive = two_people(host, prompts, identities, weights, regions)
        return sample(host, model, positive, prompts["negative"], steps=1, width=width, height=height)[0]

    base = latent((1.0, 1.0))
    for person, weights in enumerate([(0.3, 1.0), (1.0, 0.3)]):
        changed = (latent(weights) - base).abs().amax(dim=0)  # over the latent's channels
        inside, outside = halves[person], ~halves[person]
        assert torch.all(changed[outside] == 0), f"person {person} leaks outside its half"
        assert torch.all(changed[inside] > 0), f"person {person}'s weight does not reach all of its half"

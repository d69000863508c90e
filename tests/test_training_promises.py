"""Learn ID Token's promises, each tested by behaviour so that breaking it fails a test (a mutation
audit found the older tests checked bookkeeping): resume continues from the saved vectors, resume never
overwrites a user's prompt embedding, gradient checkpointing really recomputes, the same seed gives
the same files bit for bit, and an SD2 identity works through the host's `embedding:` loader."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from support import tiny_models

FAST = dict(steps=2, batch_size=2, learning_rate=0.0015, seed=5, train_enhancer="from identity", resolution=64,
            gradient_checkpointing="off", precision="fp32", save_every=0, resume=False)


@pytest.fixture(scope="module")
def sd15(host, cache_dir):
    return tiny_models.load_checkpoint(host, cache_dir)


@pytest.fixture(scope="module")
def identity(host, sd15):
    (made,) = host.run("IDEA_IDEnhancer", face_embedding=host.face_embedding(512, rows=2, seed=4), clip=sd15[1],
                       num_tokens=2, seed=0, train_enhancer=True)
    return made


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 72, 72, 3, generator=torch.Generator().manual_seed(8))


def learn(host, model, clip, vae, images, identity, name, **overrides):
    trained, _, _ = host.run("IDEA_LearnIDToken", model=model, clip=clip, vae=vae, images=images,
                             identity=identity, name=name, **{**FAST, **overrides})
    return trained


def files(host, name):
    models = host.base / "models"
    return models / "idea" / f"{name}.safetensors", models / "embeddings" / f"{name}.safetensors"


def name_taken(host):
    return host.pack_module("nodes.training.run_files").NameTakenError


def test_resume_continues_from_the_saved_vectors_not_from_the_start(host, sd15, identity, images):
    """A first run moves everything far (a high rate); the resumed step uses a tiny rate, so a resumed
    identity must sit next to the saved one, and one restarted from the initial vectors cannot."""
    first = learn(host, *sd15, images, identity, "guard_resume", steps=3, learning_rate=0.01)
    resumed = learn(host, *sd15, images, identity, "guard_resume", steps=4, learning_rate=1e-6, resume=True)
    assert resumed.metadata["training"]["steps_done"] == 4
    for key, saved in first.token_vectors.items():
        assert (saved - identity.initial_vectors[key]).abs().max() > 1e-2  # the first run did move them
        assert torch.allclose(resumed.token_vectors[key], saved, atol=1e-4), key
    for module in ("adapter", "enhancer"):
        saved_state = getattr(first, module).state_dict()
        for name, value in getattr(resumed, module).state_dict().items():
            assert torch.allclose(value, saved_state[name], atol=1e-4), f"{module}.{name}"
    assert float(first.adapter.gamma) != 0.0


def test_resume_with_no_saved_identity_never_overwrites_a_users_embedding(host, sd15, identity, images):
    """resume is on in the shipped workflow: with no identity of that name it trains a new one, which
    must still refuse a name whose prompt embedding the user already has."""
    identity_path, embedding_path = files(host, "guard_users_own")
    embedding_path.parent.mkdir(parents=True, exist_ok=True)
    embedding_path.write_bytes(b"the user's own embedding")
    with pytest.raises(name_taken(host), match="Nothing was overwritten"):
        learn(host, *sd15, images, identity, "guard_users_own", steps=1, resume=True)
    assert embedding_path.read_bytes() == b"the user's own embedding"
    assert not identity_path.exists()


def test_a_fresh_run_never_replaces_an_existing_identity(host, sd15, identity, images):
    learn(host, *sd15, images, identity, "guard_fresh", steps=1)
    before = [path.read_bytes() for path in files(host, "guard_fresh")]
    with pytest.raises(name_taken(host), match="trained for 1 of 1 steps.*Nothing was overwritten"):
        learn(host, *sd15, images, identity, "guard_fresh", steps=2)
    assert [path.read_bytes() for path in files(host, "guard_fresh")] == before


def unet_leaf_calls(model, run) -> int:
    """How many times the UNet's innermost modules ran during `run()`."""
    calls = [0]

    def count(*_):
        calls[0] += 1
    unet = model.model.diffusion_model
    handles = [m.register_forward_hook(count) for m in unet.modules() if not list(m.children())]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return calls[0]


def test_gradient_checkpointing_recomputes_the_unet_in_backward(host, sd15, identity, images):
    """Checkpointed layers run their forward again during backward; without checkpointing they run
    once. (That results match with and without it is tested in test_learn_id_token.py.)"""
    model = sd15[0]
    plain = unet_leaf_calls(model, lambda: learn(host, *sd15, images, identity, "guard_ckpt_off", steps=1))
    checkpointed = unet_leaf_calls(model, lambda: learn(host, *sd15, images, identity, "guard_ckpt_on", steps=1,
                                                        gradient_checkpointing="on"))
    print(f"UNet module calls in one step: {plain} without, {checkpointed} with checkpointing")
    assert plain > 0 and checkpointed >= 1.5 * plain


def test_the_same_seed_twice_gives_bit_identical_files(host, sd15, identity, images):
    learn(host, *sd15, images, identity, "guard_seed_a", steps=3)
    learn(host, *sd15, images, identity, "guard_seed_b", steps=3)
    for a, b in zip(files(host, "guard_seed_a"), files(host, "guard_seed_b")):
        assert a.read_bytes() == b.read_bytes(), a.name
    learn(host, *sd15, images, identity, "guard_seed_c", steps=3, seed=6)
    assert files(host, "guard_seed_c")[1].read_bytes() != files(host, "guard_seed_a")[1].read_bytes()


def test_an_sd2_identity_trains_and_the_hosts_embedding_loader_reads_its_clip_h(host, sd15):
    model, clip = tiny_models.build_sd2_like()
    (start,) = host.run("IDEA_IDEnhancer", face_embedding=host.face_embedding(512, seed=2), clip=clip, num_tokens=2,
                        seed=0, train_enhancer=True)
    trained = learn(host, model, clip, sd15[2], torch.rand(2, 64, 64, 3), start, "guard_sd2", steps=2)
    saved = load_file(files(host, "guard_sd2")[1])
    assert set(saved) == {"clip_h"} and saved["clip_h"].shape == (2, 1024)
    assert torch.equal(saved["clip_h"], trained.token_vectors["clip_h"])
    assert not torch.equal(saved["clip_h"], start.token_vectors["clip_h"])

    def encode(text):
        (cond,) = host.run("CLIPTextEncode", clip=clip, text=text)
        return cond[0][0]
    with_identity = encode("a photo of embedding:guard_sd2 person")
    handle = host.pack_module("nodes.host.text_encoders").read_clip(clip).encoders[0]
    assert handle.key == "clip_h"
    ids = handle.name_token_ids("a photo of") + list(trained.token_vectors["clip_h"].unbind(0)) + \
        handle.name_token_ids("person")
    with torch.inference_mode():
        by_hand = clip.encode_from_tokens({"h": [handle.sequence(ids)]})
    assert torch.allclose(with_identity, by_hand, atol=1e-5)
    assert not torch.allclose(with_identity, encode("a photo of person"))

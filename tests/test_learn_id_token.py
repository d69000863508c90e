"""Learn ID Token in-process through the real host: real photos, saved files used by the host,
SDXL, interrupt and resume, and the failure paths."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from support import real_faces, tiny_models
from support.images import to_image_tensor

FAST = dict(steps=3, batch_size=2, learning_rate=0.0015, seed=5, train_enhancer="from identity", resolution=64,
            gradient_checkpointing="off", precision="fp32", save_every=0, resume=False)



def learn(host, model, clip, vae, images, identity, name, **overrides):
    """(trained identity, loss curve); the third output hands the same CLIP on."""
    trained, curve, clip_after = host.run("IDEA_LearnIDToken", model=model, clip=clip, vae=vae, images=images,
                                          identity=identity, name=name, **{**FAST, **overrides})
    assert clip_after is clip
    return trained, curve


def sdxl_identity(host, clip):
    (identity,) = host.run("IDEA_IDEnhancer", face_embedding=host.face_embedding(128), clip=clip, num_tokens=2,
                           seed=1, train_enhancer=True)
    return identity


@pytest.fixture(scope="module")
def sd15(host, cache_dir):
    """Loaded by the core loader node inside inference mode, as in a user's graph: the weights are
    inference tensors, which training must cope with."""
    model, clip, vae = tiny_models.load_checkpoint(host, cache_dir)
    assert next(model.model.parameters()).is_inference()
    return model, clip, vae


@pytest.fixture(scope="module")
def obama(host, sd15):
    """Aligned crops and the identity of the real Obama photos (real SFace/YuNet pack)."""
    real_faces.write_real_pack(host.base / "models", "sface_yunet")
    crops = []
    for name in ("obama", "obama2"):
        face, crop, _agreement = host.run("IDEA_FaceIDEmbed", images=to_image_tensor(real_faces.load_photo(name)),
                              model_pack="sface_yunet", provider="CPU", face_selection="largest", face_index=0,
                              detection_size=640, crop_size=128)
        crops.append(crop)
    (identity,) = host.run("IDEA_IDEnhancer", face_embedding=face, clip=sd15[1], num_tokens=2, seed=0,
                           train_enhancer=True)
    return torch.cat(crops), identity


def files(host, name):
    models = host.base / "models"
    return models / "idea" / f"{name}.safetensors", models / "embeddings" / f"{name}.safetensors"


def test_real_photos_move_tokens_adapter_and_enhancer_reproducibly(host, sd15, obama):
    crops, identity = obama
    a, curve = learn(host, *sd15, crops, identity, "obama_a")
    b, _ = learn(host, *sd15, crops, identity, "obama_b")
    assert not torch.equal(a.token_vectors["clip_l"], identity.token_vectors["clip_l"])
    assert float(a.adapter.gamma) != 0.0
    assert any(not torch.equal(p, q) for p, q in zip(a.enhancer.state_dict().values(),
                                                      identity.enhancer.state_dict().values()))
    for key, value in a.token_vectors.items():
        assert torch.equal(value, b.token_vectors[key])
    for (name, p), q in zip(a.adapter.state_dict().items(), b.adapter.state_dict().values()):
        assert torch.equal(p, q), name
    assert a.metadata["training"]["steps_done"] == 3 and len(a.metadata["training"]["losses"]) == 3
    assert curve.shape == (1, 256, 512, 3)
    assert all(path.exists() for path in files(host, "obama_a"))


def test_frozen_enhancer_stays_at_its_seeded_start(host, sd15, obama):
    crops, identity = obama
    trained, _ = learn(host, *sd15, crops, identity, "obama_frozen", steps=2, train_enhancer="off")
    for p, q in zip(trained.enhancer.state_dict().values(), identity.enhancer.state_dict().values()):
        assert torch.equal(p, q)
    assert not trained.train_enhancer


def test_saved_embedding_works_in_prompts_and_the_identity_file_loads(host, sd15, obama):
    _, clip, _ = sd15
    trained, _ = learn(host, *sd15, obama[0], obama[1], "obama_prompt", steps=2)
    identity_path, embedding_path = files(host, "obama_prompt")
    saved = load_file(embedding_path)
    assert set(saved) == {"clip_l"} and torch.equal(saved["clip_l"], trained.token_vectors["clip_l"])

    def encode(text):
        (cond,) = host.run("CLIPTextEncode", clip=clip, text=text)
        return cond[0][0]
    with_identity = encode("a photo of embedding:obama_prompt person")
    assert not torch.allclose(with_identity, encode("a photo of person"))
    # the host inserted exactly the learned vectors: same as our caption path with those vectors
    layout = host.pack_module("nodes.host.text_encoders").read_clip(clip)
    handle = layout.encoders[0]
    ids = handle.name_token_ids("a photo of") + list(trained.token_vectors["clip_l"].unbind(0)) + \
        handle.name_token_ids("person")
    with torch.inference_mode():
        by_hand = clip.encode_from_tokens({"l": [handle.sequence(ids)]})
    assert torch.allclose(with_identity, by_hand, atol=1e-5)
    (loaded,) = host.run("IDEA_LoadIdentity", identity_file="obama_prompt.safetensors")
    assert torch.equal(loaded.token_vectors["clip_l"], trained.token_vectors["clip_l"])
    assert identity_path.exists()


def test_sdxl_shaped_model_trains_and_saves_both_encoders(host, sd15):
    model, clip = tiny_models.build_sdxl_like()
    identity = sdxl_identity(host, clip)
    trained, _ = learn(host, model, clip, sd15[2], torch.rand(2, 80, 80, 3), identity, "xl_person", steps=2)
    saved = load_file(files(host, "xl_person")[1])
    assert saved["clip_l"].shape == (2, 768) and saved["clip_g"].shape == (2, 1280)
    assert not torch.equal(trained.token_vectors["clip_g"], identity.token_vectors["clip_g"])
    (loaded,) = host.run("IDEA_LoadIdentity", identity_file="xl_person.safetensors")
    assert loaded.arch == "sdxl" and loaded.ctx_dim == 2048


def test_interrupt_after_k_steps_then_resume_finishes_the_requested_steps(host, sd15, obama):
    import comfy.model_management
    import comfy.utils
    crops, identity = obama

    def interrupt_at_two(value, total, preview, node_id=None):
        if value == 2:
            comfy.model_management.interrupt_current_processing(True)
    comfy.utils.set_progress_bar_global_hook(interrupt_at_two)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            learn(host, *sd15, crops, identity, "obama_resume", steps=4)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
        comfy.model_management.interrupt_current_processing(False)
    load_identity = host.pack_module("idea.identity_file").load_identity
    partial = load_identity(files(host, "obama_resume")[0])
    assert partial.metadata["training"]["steps_done"] == 2
    with pytest.raises(FileExistsError, match="trained for 2 of 4 steps.*resume"):
        learn(host, *sd15, crops, identity, "obama_resume", steps=4)
    finished, _ = learn(host, *sd15, crops, identity, "obama_resume", steps=4, resume=True)
    record = finished.metadata["training"]
    assert record["steps_done"] == 4 and len(record["losses"]) == 4
    assert record["losses"][:2] == partial.metadata["training"]["losses"]
    assert load_identity(files(host, "obama_resume")[0]).metadata["training"]["steps_done"] == 4
    # resuming a finished identity reuses it untouched; resuming a name never used trains a new one
    before = files(host, "obama_resume")[0].read_bytes()
    reused, _ = learn(host, *sd15, crops, identity, "obama_resume", steps=4, resume=True)
    assert torch.equal(reused.token_vectors["clip_l"], finished.token_vectors["clip_l"])
    assert files(host, "obama_resume")[0].read_bytes() == before
    fresh, _ = learn(host, *sd15, crops, identity, "obama_new_with_resume", steps=1, resume=True)
    assert fresh.metadata["training"]["steps_done"] == 1


def test_existing_user_files_are_never_overwritten(host, sd15, obama):
    user_file = files(host, "taken")[1]
    user_file.parent.mkdir(parents=True, exist_ok=True)
    user_file.write_bytes(b"somebody's own embedding")
    with pytest.raises(FileExistsError, match="Nothing was overwritten"):
        learn(host, *sd15, obama[0], obama[1], "taken", steps=1)
    assert user_file.read_bytes() == b"somebody's own embedding"
    assert not files(host, "taken")[0].exists()


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_save(host, sd15, obama):
    draw_step = host.pack_module("idea.training_recipe").draw_step
    # latents are [clean, poisoned, clean mirror, poisoned mirror]; find a seed whose first draw is clean
    seed = next(s for s in range(100) if int(draw_step(s, 0, 1, 4).sample_indices[0]) % 2 == 0
                and any(int(draw_step(s, k, 1, 4).sample_indices[0]) % 2 for k in range(1, 5)))
    bad_step = next(k for k in range(1, 5) if int(draw_step(seed, k, 1, 4).sample_indices[0]) % 2)
    images = obama[0].clone()
    images[1] = float("nan")
    with pytest.raises(RuntimeError, match=rf"loss became nan at step {bad_step + 1}.*last good save"):
        learn(host, *sd15, images, obama[1], "obama_nan", steps=5, batch_size=1, seed=seed, save_every=1)
    kept = host.pack_module("idea.identity_file").load_identity(files(host, "obama_nan")[0])
    assert kept.metadata["training"]["steps_done"] == bad_step


def test_bad_inputs_are_refused_clearly(host, sd15, obama):
    with pytest.raises(ValueError, match="empty image batch"):
        learn(host, *sd15, torch.zeros(0, 64, 64, 3), obama[1], "nobody")
    with pytest.raises(ValueError, match="not usable as a file"):
        learn(host, *sd15, obama[0], obama[1], "../escape")
    xl_identity = sdxl_identity(host, tiny_models.build_sdxl_like()[1])
    with pytest.raises(ValueError, match="trained for SDXL.*SD1.x"):
        learn(host, *sd15, obama[0], xl_identity, "mismatch")


def test_out_of_memory_names_the_ways_out(host, sd15, obama, monkeypatch):
    trainer = host.pack_module("nodes.training.trainer").IDTokenTrainer

    def run_out_of_memory(self):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
    monkeypatch.setattr(trainer, "run", run_out_of_memory)
    with pytest.raises(RuntimeError, match="batch_size.*gradient_checkpointing.*precision"):
        learn(host, *sd15, obama[0], obama[1], "obama_oom", steps=1)


def test_checkpointing_gives_the_same_steps_and_leaves_the_model_untouched(host, sd15, obama):
    model = sd15[0]
    options_before = repr(model.model_options)
    wrappers_before = repr(model.wrappers)
    plain, _ = learn(host, *sd15, obama[0], obama[1], "obama_plain", steps=2)
    ckpt, _ = learn(host, *sd15, obama[0], obama[1], "obama_ckpt", steps=2, gradient_checkpointing="on")
    assert torch.allclose(plain.token_vectors["clip_l"], ckpt.token_vectors["clip_l"], atol=1e-5)
    assert plain.metadata["training"]["losses"] == pytest.approx(ckpt.metadata["training"]["losses"], rel=1e-4)
    unet = model.model.diffusion_model
    assert not any("forward" in m.__dict__ for m in unet.modules())
    assert all(p.grad is None for p in unet.parameters())
    assert all(p.is_inference() for p in unet.parameters())  # the aliases used in training are gone
    assert repr(model.model_options) == options_before and repr(model.wrappers) == wrappers_before

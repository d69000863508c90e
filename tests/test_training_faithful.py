"""Learn ID Token trains as the authors' released code does: the 81 released caption templates, the
released anchor names, SDXL's pooled text from each step's own captions, 768 px for 768-v models, an
exact resume, the clip-skip layer kept with the identity, and frozen loaded identities."""
from __future__ import annotations

import logging
import warnings

import pytest
import torch

from support import tiny_models

FAST = dict(steps=4, batch_size=2, learning_rate=0.0015, seed=11, train_enhancer="from identity", resolution=64,
            gradient_checkpointing="off", precision="fp32", save_every=0, resume=False)


@pytest.fixture(scope="module")
def sd15(host, cache_dir):
    return tiny_models.load_checkpoint(host, cache_dir)


@pytest.fixture(scope="module")
def sd15_identity(host, sd15):
    (identity,) = host.run("IDEA_IDEnhancer", face_embedding=host.face_embedding(512, seed=3), clip=sd15[1],
                           num_tokens=2, seed=0, train_enhancer=True)
    return identity


def images():
    return torch.rand(2, 72, 72, 3, generator=torch.Generator().manual_seed(1))


def learn(host, model, clip, vae, identity, name, **overrides):
    return host.run("IDEA_LearnIDToken", model=model, clip=clip, vae=vae, images=images(), identity=identity,
                    name=name, **{**FAST, **overrides})[0]


def saved(host, name):
    base = host.base / "models"
    return [base / "idea" / f"{name}.safetensors", base / "embeddings" / f"{name}.safetensors",
            base / "idea_resume" / f"{name}.safetensors"]


# --- the recipe's data -----------------------------------------------------------------------------

def test_captions_are_the_released_81_templates(host):
    recipe = host.pack_module("idea.training_recipe")
    templates = recipe.CAPTION_TEMPLATES
    assert len(templates) == 81 and templates[:27] == recipe.SMALL_TEMPLATES
    assert templates[27] == "an illustration of a {}" and templates[54] == "a depiction of a {}"
    assert templates[28] == templates[55] == "a rendering of a {}"  # not "a photo of ...": repeated as is
    assert sum(t.startswith(("an illustration of", "a depiction of")) for t in templates) == 30  # 37 %
    drawn = torch.cat([recipe.draw_step(0, step, 8, 2).caption_indices for step in range(200)])
    assert int(drawn.max()) == 80 and int(drawn.min()) == 0  # every block is drawn from


def test_identity_records_the_released_anchor_list(sd15_identity):
    assert sd15_identity.metadata["anchor_names"] == "wiki_names_v2.txt (691 names)"


def test_default_resolution_follows_the_base_and_its_prediction(host):
    recipe = host.pack_module("idea.training_recipe")
    assert [recipe.default_resolution(a, "eps") for a in ("sd1", "sd2", "sdxl")] == [512, 512, 1024]
    assert recipe.default_resolution("sd2", "v") == 768


def test_sd2_768_v_model_trains_at_768_by_default(host, sd15, monkeypatch):
    """Through the node up to the encoding of the references (encoding at 768 px on the CPU would
    cost a minute and show nothing more): the size it asks for is 768 for a v-model, 512 for eps."""
    node_module = host.pack_module("nodes.learn_id_token")
    asked = []

    class Recorded(Exception):
        pass

    def record_size(vae, images, size):
        asked.append(size)
        raise Recorded
    monkeypatch.setattr(node_module, "reference_latents", record_size)
    for prediction in ("v", "eps"):
        model, clip = tiny_models.build_sd2_like(prediction=prediction)
        (identity,) = host.run("IDEA_IDEnhancer", face_embedding=host.face_embedding(512), clip=clip,
                               num_tokens=2, seed=0, train_enhancer=True)
        with pytest.raises(Recorded):
            learn(host, model, clip, sd15[2], identity, f"sd2_{prediction}", steps=1, batch_size=1, resolution=0)
    assert asked == [768, 512]


# --- SDXL: the pooled text of each step's captions -------------------------------------------------

def test_sdxl_pooled_text_follows_each_steps_captions_with_gradient(host):
    """y = [CLIP-G pooled output of the step's captions with the current vectors ; size embedding],
    as the host's own CLIPTextEncode + sampler make it at inference, and it carries a gradient to the
    CLIP-G tokens."""
    model, clip = tiny_models.build_sdxl_like()
    (identity,) = host.run("IDEA_IDEnhancer", face_embedding=host.face_embedding(128), clip=clip, num_tokens=2,
                           seed=1, train_enhancer=True)
    trainer_mod, recipe = host.pack_module("nodes.training.trainer"), host.pack_module("idea.training_recipe")
    layout = host.pack_module("nodes.host.text_encoders").read_clip(clip)
    encoder = host.pack_module("nodes.training.caption_encoder").CaptionEncoder(clip, layout)
    calls = []

    def record(apply_model, args):
        y = args["c"]["y"]
        vectors = state.identity.token_vectors
        (to_g,) = torch.autograd.grad(y[:, :1280].sum(), vectors["clip_g"], retain_graph=True)
        calls.append((y.detach().clone(), {k: v.detach().clone() for k, v in vectors.items()}, to_g))
        return apply_model(args["input"], args["timestep"], **args["c"])

    patched = model.clone()
    patched.set_model_unet_function_wrapper(record)
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    settings = recipe.TrainSettings(steps=3, batch_size=2, seed=4, resolution=64)
    with torch.inference_mode(False):
        state = trainer_mod.TrainingState(identity.clone(), settings)
        trainer_mod.IDTokenTrainer(patched, clip, state, latents).run()

    assert len(calls) == 3
    size_tail = model.model.encode_adm(pooled_output=torch.zeros(1, 1280), width=64, height=64)[:, 1280:]
    for step, (y, vectors, to_g) in enumerate(calls):
        captions = recipe.draw_step(settings.seed, step, 2, 2).caption_indices.tolist()
        for row, caption in enumerate(captions):
            tokens = {h.token_key: [[(t, 1.0) for t in encoder.tokens(h.key, [caption], vectors[h.key])[0]]]
                      for h in layout.encoders}
            with torch.no_grad():
                _, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
            torch.testing.assert_close(y[row, :1280], pooled[0].float(), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(y[row, 1280:], size_tail[0])
        assert to_g.abs().sum() > 0
    assert not torch.equal(calls[0][0], calls[1][0]) and not torch.equal(calls[1][0], calls[2][0])


# --- resume ----------------------------------------------------------------------------------------

def test_two_steps_then_resume_to_four_equals_four_straight_steps(host, sd15, sd15_identity):
    learn(host, *sd15, sd15_identity, "straight")
    learn(host, *sd15, sd15_identity, "resumed", steps=2)
    assert saved(host, "resumed")[2].exists()  # the optimiser's state, beside the identity
    learn(host, *sd15, sd15_identity, "resumed", resume=True)
    for straight, resumed in zip(saved(host, "straight"), saved(host, "resumed")):
        assert straight.read_bytes() == resumed.read_bytes(), straight.name


def test_resume_without_the_optimiser_state_warns_and_still_finishes(host, sd15, sd15_identity, caplog):
    learn(host, *sd15, sd15_identity, "no_state", steps=2)
    saved(host, "no_state")[2].unlink()
    with caplog.at_level(logging.WARNING):
        trained = learn(host, *sd15, sd15_identity, "no_state", resume=True)
    assert "fresh optimiser" in caplog.text and "no saved optimiser state" in caplog.text
    assert trained.metadata["training"]["steps_done"] == 4
    # fresh moments land elsewhere than the exact resume above (the state is what makes it exact)
    assert saved(host, "no_state")[0].read_bytes() != saved(host, "straight")[0].read_bytes()


def test_an_orphan_optimiser_state_is_not_overwritten_by_a_new_run(host, sd15, sd15_identity):
    orphan = saved(host, "orphan")[2]
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left from an earlier run")
    with pytest.raises(FileExistsError, match="Nothing was overwritten"):
        learn(host, *sd15, sd15_identity, "orphan", steps=1)
    assert orphan.read_bytes() == b"left from an earlier run"


# --- the clip-skip layer ---------------------------------------------------------------------------

def test_identity_keeps_its_clip_layer_and_another_layer_is_named(host, sd15, sd15_identity):
    model, clip, _ = sd15
    assert sd15_identity.clip_layers == {"clip_l": "last"}
    (same,) = host.run("CLIPSetLastLayer", clip=clip, stop_at_clip_layer=-1)  # SD1.x: -1 is the last layer
    (skipped,) = host.run("CLIPSetLastLayer", clip=clip, stop_at_clip_layer=-2)
    with pytest.raises(ValueError, match="clip_l: last layer.*clip_l: layer -2.*CLIP Set Last Layer"):
        learn(host, model, skipped, sd15[2], sd15_identity, "skipped", steps=1)
    trained = learn(host, model, same, sd15[2], sd15_identity, "layer_last", steps=1)
    identity_file = host.pack_module("idea.identity_file")
    loaded = identity_file.load_identity(saved(host, "layer_last")[0])
    assert loaded.clip_layers == {"clip_l": "last"} == trained.clip_layers
    apply = dict(model=model, identity=loaded, weight=1.0, start_at=0.0, end_at=1.0, apply_to="cond")
    host.run("IDEA_ApplyIDAdapter", **apply, clip=same)
    with pytest.raises(ValueError, match="layer -2"):
        host.run("IDEA_ApplyIDAdapter", **apply, clip=skipped)
    (skipped_identity,) = host.run("IDEA_IDEnhancer", face_embedding=host.face_embedding(512), clip=skipped,
                                   num_tokens=2, seed=0, train_enhancer=True)
    assert skipped_identity.clip_layers == {"clip_l": "-2"}


def test_loaded_identities_are_frozen(host, sd15, sd15_identity):
    learn(host, *sd15, sd15_identity, "frozen", steps=1)
    (loaded,) = host.run("IDEA_LoadIdentity", identity_file="frozen.safetensors")
    tensors = [*loaded.adapter.parameters(), *loaded.enhancer.parameters(), *loaded.token_vectors.values()]
    assert not any(t.requires_grad for t in tensors)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        host.run("IDEA_ApplyIDAdapter", model=sd15[0], identity=loaded, weight=1.0, start_at=0.0, end_at=1.0,
                 apply_to="cond")

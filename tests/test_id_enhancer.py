"""ID-Enhancer and Load Identity through the real host (in-process)."""
from __future__ import annotations

import pytest
import torch

from support import tiny_models



@pytest.fixture(scope="module")
def sd15(host, cache_dir):
    return tiny_models.build_sd15_in_process(cache_dir)


def fused(identity):
    """Z as a node downstream computes it (node outputs are inference tensors)."""
    with torch.inference_mode():
        return identity.fused_tokens()


def run_enhancer(host, clip, num_tokens=2, seed=0, train_enhancer=True, dim=512):
    face = host.face_embedding(dim, rows=2, model_name="synthetic")
    (identity,) = host.run("IDEA_IDEnhancer", face_embedding=face, clip=clip, num_tokens=num_tokens, seed=seed,
                           train_enhancer=train_enhancer)
    return identity


def test_sd15_anchor_equals_the_hand_computed_cross_initialisation(host, sd15):
    _, clip, _ = sd15
    identity = run_enhancer(host, clip)
    names = host.pack_module("idea.anchor").load_name_list()
    enc, tok = clip.cond_stage_model.clip_l, clip.tokenizer.clip_l
    table = enc.transformer.get_input_embeddings().weight.detach().float()
    # column means by hand: k-th BPE token of every name (BOS/EOS stripped) that has one
    columns = [[], []]
    for name in names:
        ids = tok.tokenizer(name)["input_ids"][1:-1]
        for k in range(min(2, len(ids))):
            columns[k].append(table[ids[k]])
    means = torch.stack([torch.stack(c).mean(0) for c in columns])
    # [BOS, m1, m2, EOS, EOS-padding...] through the transformer, last layer (SD1.x)
    ids = [tok.start_token, 0, 0, tok.end_token] + [tok.pad_token] * 73
    embeds = table[torch.tensor(ids)].clone()
    embeds[1:3] = means
    with torch.inference_mode():
        out = enc.transformer(None, None, embeds=embeds.unsqueeze(0), num_tokens=[4],
                              intermediate_output=None, dtype=torch.float32)[0]
    expected = out[0, 1:3].float()
    assert identity.arch == "sd1" and identity.anchor.shape == (2, 768)
    assert torch.allclose(identity.anchor, expected, atol=2e-3, rtol=1e-3)
    assert torch.equal(identity.initial_vectors["clip_l"], identity.anchor)
    assert torch.equal(identity.token_vectors["clip_l"], identity.initial_vectors["clip_l"])


def test_sdxl_clip_gives_per_encoder_vectors_and_a_2048_anchor(host):
    _, clip = tiny_models.build_sdxl_like()
    identity = run_enhancer(host, clip, num_tokens=2, dim=128)
    assert identity.arch == "sdxl" and identity.anchor.shape == (2, 2048)
    assert identity.initial_vectors["clip_l"].shape == (2, 768)
    assert identity.initial_vectors["clip_g"].shape == (2, 1280)
    assert torch.equal(torch.cat([identity.initial_vectors["clip_l"], identity.initial_vectors["clip_g"]], -1),
                       identity.anchor)
    assert fused(identity).shape == (2, 2048)


def test_sd2_clip_gives_clip_h_vectors(host):
    _, clip = tiny_models.build_sd2_like()
    identity = run_enhancer(host, clip, num_tokens=3)
    assert identity.arch == "sd2" and identity.initial_vectors["clip_h"].shape == (3, 1024)


def test_enhancer_is_seeded_and_settings_are_carried(host, sd15):
    _, clip, _ = sd15
    a, b = run_enhancer(host, clip, seed=7), run_enhancer(host, clip, seed=7, train_enhancer=False)
    c = run_enhancer(host, clip, seed=8)
    for (name, pa), (_, pb), (_, pc) in zip(a.enhancer.state_dict().items(), b.enhancer.state_dict().items(),
                                            c.enhancer.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(fused(a), fused(c))
    assert a.train_enhancer and not b.train_enhancer
    assert a.metadata["face_embedding_size"] == 512 and a.face_model_name == "synthetic"


def test_anchor_is_cached_per_clip_and_follows_clip_skip(host, sd15):
    _, clip, _ = sd15
    anchors = host.pack_module("nodes.host.textual_anchor")
    first = run_enhancer(host, clip).anchor
    assert len(anchors._CACHE[clip.cond_stage_model]) >= 1
    assert torch.equal(run_enhancer(host, clip).anchor, first)
    (skipped,) = host.run("CLIPSetLastLayer", clip=clip, stop_at_clip_layer=-2)
    assert not torch.allclose(run_enhancer(host, skipped).anchor, first)


def test_other_text_encoders_are_refused_clearly(host):
    import comfy.sdxl_clip
    import comfy.supported_models_base
    target = comfy.supported_models_base.ClipTarget(comfy.sdxl_clip.SDXLTokenizer,
                                                    comfy.sdxl_clip.SDXLRefinerClipModel)
    refiner = tiny_models._clip(target, {"clip_g_model_config": tiny_models.text_encoder_config(1280, 20)},
                                seed=3, embedding_directory=None)
    with pytest.raises(Exception, match=r"SD1\.x, SD2\.x, SDXL and \(experimental\) FLUX\.1.*SDXLRefinerClipModel"):
        run_enhancer(host, refiner)


def test_load_identity_reads_files_from_models_idea(host, sd15):
    _, clip, _ = sd15
    identity = run_enhancer(host, clip, seed=3)
    folder = host.base / "models" / "idea"
    host.pack_module("idea.identity_writing").save_identity(identity, folder / "alice.safetensors")
    options = host.node("IDEA_LoadIdentity").INPUT_TYPES()["required"]["identity_file"][1]["options"]
    assert "alice.safetensors" in options
    (loaded,) = host.run("IDEA_LoadIdentity", identity_file="alice.safetensors")
    assert torch.equal(loaded.anchor, identity.anchor) and loaded.arch == "sd1"
    assert torch.equal(fused(loaded), fused(identity))


def test_load_identity_refuses_foreign_and_missing_files(host):
    folder = host.base / "models" / "idea"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "foreign.safetensors").write_bytes(b"PK\x03\x04 a zip, not safetensors")
    with pytest.raises(Exception, match="only ID-EA .safetensors identity files are accepted"):
        host.run("IDEA_LoadIdentity", identity_file="foreign.safetensors")
    with pytest.raises(Exception, match=r"not found in .*models/idea"):
        host.run("IDEA_LoadIdentity", identity_file="nobody.safetensors")


def test_load_identity_offers_a_file_name_even_before_any_identity_is_saved(host, tmp_path, monkeypatch):
    """With models/idea/ empty the list is empty: the default still names the file Learn ID Token
    writes under its default name (the node search preview printed 'undefined'), and checking the
    prompt says where that file goes."""
    import folder_paths
    monkeypatch.setitem(folder_paths.folder_names_and_paths, "idea", ([str(tmp_path)], {".safetensors"}))
    node = host.node("IDEA_LoadIdentity")
    spec = node.INPUT_TYPES()["required"]["identity_file"][1]
    assert spec["options"] == [] and spec["default"] == "my_person.safetensors"
    message = node.validate_inputs(identity_file="my_person.safetensors")
    assert str(tmp_path) in message and "Learn ID Token (name 'my_person')" in message

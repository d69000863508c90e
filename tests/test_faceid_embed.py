"""FaceID Embed in-process through the real host: synthetic packs (always) and the real SFace/YuNet
tier on real photos."""
from __future__ import annotations

import itertools
import logging
import shutil

import numpy as np
import pytest
import torch

from support import real_faces
from support.images import to_image_tensor
from support.synthetic_faces import (face_in_box, noise_image, two_faces, write_no_face_pack,
                                     write_synthetic_pack, write_two_face_pack)

DEFAULTS = dict(provider="CPU", face_selection="largest", face_index=0, detection_size=640, crop_size=128)


def embed(host, images, model_pack, **overrides):
    """(face embedding, aligned crops); the agreement text is tested in test_reference_agreement.py."""
    args = {**DEFAULTS, **overrides}
    return host.run("IDEA_FaceIDEmbed", images=images, model_pack=model_pack, **args)[:2]


@pytest.fixture(scope="module")
def models_root(host):
    return host.base / "models"


def test_synthetic_face_is_found_embedded_and_cropped_around_its_landmarks(host, models_root):
    h, w = 480, 640
    box, kps = face_in_box(200, 120, 180)
    write_synthetic_pack(models_root, "syn_one", [(box, kps)], image_hw=(h, w), emb_dim=512)
    photo = noise_image(h, w, seed=1) // 4  # dark noise
    nose = kps[2].round().astype(int)
    photo[nose[1] - 3:nose[1] + 4, nose[0] - 3:nose[0] + 4] = 255  # a bright dot on the nose
    face, crops = embed(host, to_image_tensor(photo), "syn_one", crop_size=256)

    assert face.model_name == "syn_one" and face.dim == 512 and face.count == 1
    assert torch.allclose(face.embeddings.norm(dim=-1), torch.ones(1), atol=1e-5)
    assert torch.allclose(face.mean, face.embeddings[0], atol=1e-6)
    assert np.allclose(face.boxes[0].numpy(), box, atol=0.05)
    assert np.allclose(face.keypoints[0].numpy(), kps, atol=0.05)
    assert crops.shape == (1, 256, 256, 3) and crops.min() >= 0 and crops.max() <= 1
    # the nose lands where the training template puts it (independent check of the alignment)
    template = host.pack_module("idea.face_framing").FRAMINGS["face"].template(256)
    brightness = crops[0].sum(-1).numpy()
    dot_y, dot_x = np.argwhere(brightness > 0.9 * brightness.max()).mean(0)  # the dot's centre
    assert abs(dot_y - template[2, 1]) <= 2 and abs(dot_x - template[2, 0]) <= 2


def test_several_photos_give_per_photo_rows_and_their_normalised_mean(host, models_root):
    box, kps = face_in_box(150, 150, 200)
    write_synthetic_pack(models_root, "syn_batch", [(box, kps)], image_hw=(512, 512))
    photos = to_image_tensor(*(noise_image(512, 512, seed=s) for s in (2, 3, 4)))
    face, crops = embed(host, photos, "syn_batch")
    assert face.count == 3 and crops.shape[0] == 3
    assert not torch.allclose(face.embeddings[0], face.embeddings[1])
    expected = torch.nn.functional.normalize(face.embeddings.mean(0), dim=0)
    assert torch.allclose(face.mean, expected, atol=1e-6)


def test_largest_or_indexed_face_among_several(host, models_root):
    write_two_face_pack(models_root, "syn_two", image_hw=(512, 512))
    big, small = two_faces((512, 512))
    photo = to_image_tensor(noise_image(512, 512, seed=5))
    largest, _ = embed(host, photo, "syn_two")
    assert np.allclose(largest.boxes[0].numpy(), big[0], atol=0.05)
    right, _ = embed(host, photo, "syn_two", face_selection="index", face_index=1)
    assert np.allclose(right.boxes[0].numpy(), small[0], atol=0.05)
    with pytest.raises(Exception, match=r"has 2 face\(s\).*face index 4"):
        embed(host, photo, "syn_two", face_selection="index", face_index=4)


def test_no_face_names_the_photo(host, models_root):
    write_no_face_pack(models_root, "syn_none")
    photos = to_image_tensor(noise_image(256, 256, 1), noise_image(256, 256, 2))
    with pytest.raises(Exception, match=r"no face found in photo 1 of 2"):
        embed(host, photos, "syn_none")


def test_missing_pack_names_the_expected_folder_and_what_exists(host, models_root):
    write_no_face_pack(models_root, "syn_present")
    with pytest.raises(Exception) as err:
        embed(host, to_image_tensor(noise_image(64, 64)), "antelopev2")
    message = str(err.value)
    assert str(models_root / "insightface" / "models" / "antelopev2") in message
    assert "syn_present" in message and ".onnx" in message


def test_nested_pack_folder_is_tolerated_and_listed(host, models_root):
    box, kps = face_in_box(100, 100, 150)
    inner = write_synthetic_pack(models_root, "syn_nest_tmp", [(box, kps)], image_hw=(400, 400))
    nested = models_root / "insightface" / "models" / "syn_nested" / "syn_nested"
    nested.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(inner), str(nested))
    face, _ = embed(host, to_image_tensor(noise_image(400, 400)), "syn_nested")
    assert face.count == 1
    options = host.node("IDEA_FaceIDEmbed").INPUT_TYPES()["required"]["model_pack"][1]["options"]
    assert "syn_nested" in options and "antelopev2" in options


def test_pack_without_recogniser_is_refused(host, models_root):
    box, kps = face_in_box(100, 100, 150)
    folder = write_synthetic_pack(models_root, "syn_detonly", [(box, kps)])
    for f in folder.glob("*.onnx"):
        if f.name != "det.onnx":
            f.unlink()
    with pytest.raises(Exception, match=r"has no recognition model.*needs a detector"):
        embed(host, to_image_tensor(noise_image(200, 200)), "syn_detonly")


def test_face_models_are_loaded_once_and_reused(host, models_root):
    box, kps = face_in_box(100, 100, 150)
    write_synthetic_pack(models_root, "syn_cache", [(box, kps)], image_hw=(400, 400))
    face_models = host.pack_module("idea.face_models")
    embed(host, to_image_tensor(noise_image(400, 400)), "syn_cache")
    cached = [m for m in face_models._CACHE.values() if m.name == "syn_cache"]
    embed(host, to_image_tensor(noise_image(400, 400, seed=9)), "syn_cache", detection_size=480)
    assert [m for m in face_models._CACHE.values() if m.name == "syn_cache"] == cached and len(cached) == 1


@pytest.fixture(scope="module")
def real_embeddings(host, models_root):
    real_faces.write_real_pack(models_root, "sface_yunet")
    out = {}
    for name in real_faces.PHOTOS:
        face, crops = embed(host, to_image_tensor(real_faces.load_photo(name)), "sface_yunet", crop_size=256)
        assert crops.shape == (1, 256, 256, 3)
        out[name] = face
    return out


def test_real_faces_embedding_size_is_read_from_the_model(real_embeddings):
    assert {f.dim for f in real_embeddings.values()} == {real_faces.EMBEDDING_SIZE}


def test_real_faces_same_person_close_different_people_far(real_embeddings):
    for a, b in itertools.combinations(real_embeddings, 2):
        cosine = float(real_embeddings[a].mean @ real_embeddings[b].mean)
        if real_faces.person(a) == real_faces.person(b):
            assert cosine > 0.6, (a, b, cosine)
        else:
            assert cosine < 0.45, (a, b, cosine)


def test_a_corrupt_model_file_is_named_with_the_fix(host, models_root):
    box, kps = face_in_box(100, 100, 150)
    folder = write_synthetic_pack(models_root, "syn_corrupt", [(box, kps)])
    (folder / "rec.onnx").write_bytes(b"\x08\x07 truncated download")
    with pytest.raises(Exception, match=r"cannot load face model .*rec\.onnx.*intact copy"):
        embed(host, to_image_tensor(noise_image(200, 200)), "syn_corrupt")


def cuda_outcome(onnx_file) -> str:
    """What the installed onnxruntime really does with a session asked for CUDA: 'not offered' (a CPU
    build), 'fails to load' (onnxruntime-gpu whose CUDA libraries do not load: it logs and quietly
    runs on the CPU) or 'runs'."""
    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "not offered"
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    return "runs" if "CUDAExecutionProvider" in session.get_providers() else "fails to load"


@pytest.fixture(scope="module")
def cuda_pack(models_root):
    box, kps = face_in_box(100, 100, 150)
    folder = write_synthetic_pack(models_root, "syn_cuda", [(box, kps)], image_hw=(400, 400))
    return folder, cuda_outcome(folder / "rec.onnx")


def test_provider_cuda_is_an_error_naming_the_fix_unless_the_session_really_runs_on_cuda(host, cuda_pack):
    folder, outcome = cuda_pack
    photo = to_image_tensor(noise_image(400, 400))
    if outcome == "runs":
        face, _ = embed(host, photo, "syn_cuda", provider="CUDA")
        assert face.count == 1
        models = host.pack_module("idea.face_models")._CACHE[(str(folder.resolve()), "CUDA")]
        assert models.providers[0] == "CUDAExecutionProvider"
        return
    fix = r"onnxruntime-gpu|CUDA and cuDNN" if outcome == "fails to load" else r"offers only"
    with pytest.raises(Exception, match=rf"execution provider CUDA requested[\s\S]*({fix})[\s\S]*'auto' or 'CPU'"):
        embed(host, photo, "syn_cuda", provider="CUDA")


def test_provider_auto_says_in_the_log_where_it_really_runs(host, cuda_pack, caplog):
    folder, outcome = cuda_pack
    with caplog.at_level(logging.INFO):
        face, _ = embed(host, to_image_tensor(noise_image(400, 400)), "syn_cuda", provider="auto")
    assert face.count == 1
    models = host.pack_module("idea.face_models")._CACHE[(str(folder.resolve()), "auto")]
    device = "CUDA" if outcome == "runs" else "the CPU"
    assert models.providers[0] == ("CUDAExecutionProvider" if outcome == "runs" else "CPUExecutionProvider")
    assert f"face models in {folder} run on {device}" in caplog.text
    if outcome == "fails to load":  # the silent fallback of onnxruntime-gpu, said out loud with the fix
        assert "its CUDA provider failed to load" in caplog.text and "CUDA and cuDNN" in caplog.text

"""The framing of the pictures Learn ID Token trains on, measured with a real face detector.

The authors' released run trained on CelebA-HQ style portraits: YuNet's landmarks on its 9 input
images put the eyes 0.242 of the side apart (0.214-0.261), their midpoint at 0.474 of the height and
the mouth at 0.729. The pixels measured here are the ones Learn ID Token hands to the VAE (the real
VAE, observed), made from real photos by FaceID Embed with the real YuNet detector, and measured
with that detector again.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from support import real_faces, tiny_models
from support.images import to_image_tensor

from idea.identity import IdentityEmbedding
from idea.identity_file import load_identity
from idea.identity_writing import save_identity

PHOTOS = tuple(real_faces.PHOTOS)  # four people, six photos
SIDE = 256  # crops and training resolution alike, so the trained pixels are the crops themselves
EYE_DISTANCE = (0.214, 0.261)
EYE_HEIGHT = (0.474 - 0.03, 0.474 + 0.03)
MOUTH_HEIGHT = (0.729 - 0.04, 0.729 + 0.04)
WIDER = 0.02


class ObservedVAE:
    """The checkpoint's own VAE, remembering the pixels it is asked to encode."""

    def __init__(self, vae):
        self.vae, self.encoded = vae, []

    def encode(self, pixels):
        self.encoded.append(pixels.detach().clone())
        return self.vae.encode(pixels)


@pytest.fixture(scope="module")
def sd15(host, cache_dir):
    return tiny_models.load_checkpoint(host, cache_dir)


@pytest.fixture(scope="module")
def pack(host):
    real_faces.write_real_pack(host.base / "models", "sface_yunet")
    return host.pack_module("idea.face_models").load_face_models(
        host.base / "models" / "insightface" / "models" / "sface_yunet", "CPU")


def face_id_embed(host, photo: str, framing: str | None):
    framing_input = {} if framing is None else {"framing": framing}
    face, crops, _ = host.run("IDEA_FaceIDEmbed", images=to_image_tensor(real_faces.load_photo(photo)),
                              model_pack="sface_yunet", provider="CPU", face_selection="largest", face_index=0,
                              detection_size=640, crop_size=SIDE, **framing_input)
    return face, crops


def trained_pixels(host, sd15, framing: str | None, name: str):
    """(FaceID Embed's crops, the pixels Learn ID Token encoded, the trained identity)."""
    model, clip, vae = sd15
    made = [face_id_embed(host, photo, framing) for photo in PHOTOS]
    crops = torch.cat([c for _, c in made])
    (identity,) = host.run("IDEA_IDEnhancer", face_embedding=made[0][0], clip=clip, num_tokens=2, seed=0,
                           train_enhancer=True)
    observed = ObservedVAE(vae)
    trained, _, _ = host.run("IDEA_LearnIDToken", model=model, clip=clip, vae=observed, images=crops,
                             identity=identity, name=name, steps=1, batch_size=1, learning_rate=0.0015, seed=0,
                             train_enhancer="from identity", resolution=SIDE, gradient_checkpointing="off",
                             precision="fp32", save_every=0, resume=False)
    [pixels] = observed.encoded
    return crops, pixels, trained


def landmarks(host, pack, picture: torch.Tensor) -> np.ndarray:
    """The 5 landmarks the real detector finds on one [S, S, 3] picture, as shares of its side."""
    pipeline = host.pack_module("idea.face_pipeline")
    pack.prepare_detector(640)
    [bgr] = pipeline.images_to_bgr_uint8(picture.unsqueeze(0))
    faces = pipeline.detect_faces(pack, bgr)
    assert faces, "the detector finds no face in a training picture"
    return max(faces, key=lambda f: f.area).keypoints / picture.shape[0]


def framing_of(host, pack, pictures: torch.Tensor) -> list[tuple[float, float, float]]:
    """Per picture: (eye distance, eye height, mouth height), shares of the side."""
    measured = []
    for picture in pictures:
        points = landmarks(host, pack, picture)
        eyes, mouth = points[:2], points[3:]
        measured.append((float(np.linalg.norm(eyes[1] - eyes[0])), float(eyes[:, 1].mean()),
                         float(mouth[:, 1].mean())))
    return measured


def inside(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


@pytest.fixture(scope="module")
def default_run(host, sd15):
    return trained_pixels(host, sd15, None, "framing_default")


def test_training_pictures_are_framed_like_the_released_data(host, pack, default_run):
    """Every picture's eye and mouth heights lie in the released ranges, and so does the mean eye
    distance. One photo's eye distance varies with the face's proportions (the alignment fits all
    five points) as the released images' did (0.214-0.261): each photo, averaged over the picture and
    its mirror to even out the detector's own left-right noise (up to 0.024 here), stays within that
    range widened by WIDER."""
    crops, pixels, _ = default_run
    assert pixels.shape == (2 * len(PHOTOS), SIDE, SIDE, 3)  # each photo and its mirror
    measured = np.array(framing_of(host, pack, pixels))
    for photo, (_, eye_height, mouth_height) in zip(PHOTOS * 2, measured):
        assert inside(eye_height, EYE_HEIGHT), (photo, eye_height)
        assert inside(mouth_height, MOUTH_HEIGHT), (photo, mouth_height)
    assert inside(float(measured[:, 0].mean()), EYE_DISTANCE), measured[:, 0]
    per_photo = (measured[:len(PHOTOS), 0] + measured[len(PHOTOS):, 0]) / 2
    wider = (EYE_DISTANCE[0] - WIDER, EYE_DISTANCE[1] + WIDER)
    assert all(inside(float(d), wider) for d in per_photo), dict(zip(PHOTOS, per_photo.round(3)))


def test_faceid_embeds_crops_are_exactly_what_training_sees(default_run):
    crops, pixels, _ = default_run
    assert torch.equal(pixels[:len(PHOTOS)], crops.float())
    assert torch.equal(pixels[len(PHOTOS):], crops.float().flip(2))


def test_the_identity_records_its_framing_and_keeps_it_in_its_file(host, default_run):
    _, _, trained = default_run
    assert trained.framing == "face"
    saved = load_identity(host.base / "models" / "idea" / "framing_default.safetensors")
    assert saved.framing == "face"


def test_head_and_shoulders_is_the_wider_framing_and_is_recorded(host, sd15, pack):
    _, pixels, trained = trained_pixels(host, sd15, "head and shoulders", "framing_wide")
    assert trained.framing == "head and shoulders"
    for photo, (eye_distance, _, mouth_height) in zip(PHOTOS * 2, framing_of(host, pack, pixels)):
        assert eye_distance < EYE_DISTANCE[0], (photo, eye_distance)
        assert mouth_height < MOUTH_HEIGHT[0], (photo, mouth_height)


def test_identity_files_from_before_framing_was_recorded_still_load(host, tmp_path):
    """Files of 0.1.0 carry no framing (their crops were all head and shoulders): they load, and say
    it was not recorded."""
    gen = torch.Generator().manual_seed(3)
    identity = IdentityEmbedding.create("sd1", {"clip_l": torch.randn(2, 768, generator=gen)},
                                        torch.randn(2, 768, generator=gen), torch.randn(128, generator=gen),
                                        "sface_yunet", metadata={"anchor_names": "wiki_names_v2.txt"})
    folder = host.base / "models" / "idea"
    save_identity(identity, folder / "before_framing.safetensors", overwrite=True)
    (loaded,) = host.run("IDEA_LoadIdentity", identity_file="before_framing.safetensors")
    assert loaded.framing is None
    assert torch.equal(loaded.token_vectors["clip_l"], identity.token_vectors["clip_l"])

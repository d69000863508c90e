"""Face Similarity in-process through the real host, on real photos with the real SFace/YuNet pack."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from support import real_faces
from support import images
from support.images import to_image_tensor

PACK = "sface_yunet"
SIDE = 640  # photos are letterboxed into one square so they can share an IMAGE batch
SCORED = ("obama2", "biden", "astronaut", "grace_hopper")
DEFAULTS = dict(provider="CPU", detection_size=640)


def letterbox(photo: np.ndarray, side: int = SIDE) -> np.ndarray:
    return images.letterbox(photo, side)


def grey(side: int = SIDE) -> np.ndarray:
    return np.full((side, side, 3), 128, dtype=np.uint8)


def similarity(host, images, reference, model_pack=PACK, **overrides):
    return host.run("IDEA_FaceSimilarity", images=images, reference=reference, model_pack=model_pack,
                    **{**DEFAULTS, **overrides})


@pytest.fixture(scope="module")
def reference(host):
    """Obama's face embedding from obama.jpg, made by FaceID Embed with the real pack."""
    real_faces.write_real_pack(host.base / "models", PACK)
    face, *_ = host.run("IDEA_FaceIDEmbed", images=to_image_tensor(real_faces.load_photo("obama")),
                       model_pack=PACK, provider="CPU", face_selection="largest", face_index=0,
                       detection_size=640, crop_size=128)
    return face


@pytest.fixture(scope="module")
def scored(host, reference):
    """Obama (another photo), Biden, the astronaut, Grace Hopper and a flat grey image, one batch."""
    photos = [letterbox(real_faces.load_photo(name)) for name in SCORED] + [grey()]
    return similarity(host, to_image_tensor(*photos), reference)


def test_the_same_person_scores_highest(scored):
    per_image, _, _, _ = scored
    assert len(per_image) == len(SCORED) + 1
    obama = per_image[0]
    assert obama > 0.6, per_image
    for name, value in zip(SCORED[1:], per_image[1:len(SCORED)]):
        assert value < obama - 0.3, (name, per_image)


def test_image_without_a_face_is_a_miss_and_left_out_of_the_mean(scored):
    per_image, mean, share, text = scored
    assert per_image[-1] == 0.0
    assert share == pytest.approx(len(SCORED) / (len(SCORED) + 1))
    assert mean == pytest.approx(float(np.mean(per_image[:len(SCORED)])), abs=1e-6)
    assert f"image {len(SCORED) + 1}: no face" in text
    assert text.startswith(f"image 1: {per_image[0]:.2f}, image 2: ")
    assert text.endswith(f"mean {mean:.2f} over {len(SCORED)}/{len(SCORED) + 1} images with a face")


def test_scores_equal_the_cosine_with_faceid_embed_of_the_same_photo(host, reference):
    photo = letterbox(real_faces.load_photo("obama3"))
    per_image, mean, share, _ = similarity(host, to_image_tensor(photo), reference)
    again, *_ = host.run("IDEA_FaceIDEmbed", images=to_image_tensor(photo), model_pack=PACK, provider="CPU",
                        face_selection="largest", face_index=0, detection_size=640, crop_size=128)
    assert per_image[0] == pytest.approx(float(again.mean @ reference.mean), abs=1e-5)
    assert mean == per_image[0] and share == 1.0


def test_no_face_anywhere_gives_zero_mean_and_says_so(host, reference):
    per_image, mean, share, text = similarity(host, to_image_tensor(grey(256), grey(256)), reference)
    assert per_image == [0.0, 0.0] and mean == 0.0 and share == 0.0
    assert text == "image 1: no face, image 2: no face; no face in any of the 2 images"


def test_reference_from_another_model_is_refused(host, reference):
    FaceEmbedding = type(reference)
    rows = torch.nn.functional.normalize(torch.randn(1, 512), dim=-1)
    foreign = FaceEmbedding.from_rows(rows, "antelopev2", torch.ones(1), torch.zeros(1, 5, 2), torch.zeros(1, 4))
    with pytest.raises(Exception, match=r"the reference was embedded with antelopev2 \(size 512\).*"
                                        r"sface_yunet \(size 128\); choose the same model pack"):
        similarity(host, to_image_tensor(grey(64)), foreign)


def test_same_size_but_another_pack_name_is_refused(host, reference):
    real_faces.write_real_pack(host.base / "models", "sface_copy")
    with pytest.raises(Exception, match=r"embedded with sface_yunet \(size 128\).*sface_copy \(size 128\)"):
        similarity(host, to_image_tensor(grey(64)), reference, model_pack="sface_copy")


def test_same_as_reference_scores_with_the_pack_the_reference_was_embedded_with(host, reference):
    """The default: a workflow names its pack once, in FaceID Embed."""
    photo = to_image_tensor(letterbox(real_faces.load_photo("obama2")))
    assert similarity(host, photo, reference, model_pack="same as reference") == similarity(host, photo, reference)


def test_schema_has_tooltips_on_every_input_and_lists_the_packs(host, reference):
    spec = host.node("IDEA_FaceSimilarity").INPUT_TYPES()["required"]
    assert set(spec) == {"images", "reference", "model_pack", "provider", "detection_size"}
    assert all(opts.get("tooltip") for _, opts in spec.values())
    optional = host.node("IDEA_FaceSimilarity").INPUT_TYPES()["optional"]  # prompts saved before still run
    assert set(optional) == {"face_selection", "face_index"} and all(o.get("tooltip") for _, o in optional.values())
    assert PACK in spec["model_pack"][1]["options"]
    assert spec["model_pack"][1]["default"] == spec["model_pack"][1]["options"][0] == "same as reference"
    assert spec["reference"][0] == "IDEA_FACE_EMBEDDING"


def side_by_side(left: str, right: str) -> np.ndarray:
    """Two people in one picture: two letterboxed photos next to each other."""
    return np.concatenate([letterbox(real_faces.load_photo(left), SIDE // 2),
                           letterbox(real_faces.load_photo(right), SIDE // 2)], axis=1)


def test_in_a_picture_of_two_people_the_chosen_face_is_scored(host, reference):
    """Obama on the left, Biden on the right: by position each gets their own score; a position with
    no face is a miss."""
    picture = to_image_tensor(side_by_side("obama2", "biden"))
    by_index = [similarity(host, picture, reference, face_selection="index", face_index=i)[0][0] for i in (0, 1)]
    assert by_index[0] > 0.6 and by_index[1] < by_index[0] - 0.3, by_index
    swapped = to_image_tensor(side_by_side("biden", "obama2"))
    assert similarity(host, swapped, reference, face_selection="index", face_index=1)[0][0] > 0.6
    per_image, mean, share, text = similarity(host, picture, reference, face_selection="index", face_index=2)
    assert per_image == [0.0] and share == 0.0 and "no face" in text

"""Reference photos that disagree: the math in plain torch, and FaceID Embed on the real-photo tier
(real SFace/YuNet pack, three photos of Obama and one of Biden)."""
from __future__ import annotations

import pytest
import torch

from idea.errors import error_title
from idea.face_agreement import (THRESHOLDS, ReferenceMismatchError, apply_agreement, check_references,
                                 leave_one_out_similarity, measure_agreement, threshold_for)
from idea.face_embedding import FaceEmbedding
from support import real_faces
from support.images import letterbox, to_image_tensor

OBAMAS = ("obama", "obama2", "obama3")
SIDE = 640  # photos letterboxed to one size so they form one batch


def embedding_of(rows: torch.Tensor, name: str = "syn") -> FaceEmbedding:
    n = rows.shape[0]
    return FaceEmbedding.from_rows(rows, name, torch.ones(n), torch.zeros(n, 5, 2), torch.zeros(n, 4))


def people(*who: int, dim: int = 128, spread: float = 0.3) -> torch.Tensor:
    """One row per photo: person k's direction plus a little per-photo noise."""
    gen = torch.Generator().manual_seed(1)
    centres = torch.nn.functional.normalize(torch.randn(4, dim, generator=gen), dim=-1)
    return torch.stack([centres[k] + spread / dim ** 0.5 * torch.randn(dim, generator=gen) for k in who])


# --- the math ------------------------------------------------------------------------------------

def test_leave_one_out_is_the_cosine_with_the_normalised_mean_of_the_others():
    rows = torch.nn.functional.normalize(torch.randn(5, 16, generator=torch.Generator().manual_seed(0)), dim=-1)
    got = leave_one_out_similarity(rows)
    for i in range(5):
        others = torch.cat([rows[:i], rows[i + 1:]])
        mean = torch.nn.functional.normalize(others.mean(0), dim=0)
        assert float(got[i]) == pytest.approx(float(rows[i] @ mean), abs=1e-6)


def test_thresholds_follow_the_recogniser_unless_chosen():
    assert threshold_for(128) == THRESHOLDS[128] and threshold_for(512) == THRESHOLDS[512]
    assert THRESHOLDS[512] < THRESHOLDS[128]  # ArcFace packs score the same person lower than SFace
    assert threshold_for(512, 0.6) == 0.6


def test_stop_names_the_odd_photo_warn_keeps_all_drop_keeps_the_rest():
    face = embedding_of(people(0, 0, 1, 0))
    agreement = measure_agreement(face)
    assert agreement.odd == [2]
    with pytest.raises(ReferenceMismatchError, match=r"photo 3 \(0\.\d\d\) looks like someone else"):
        apply_agreement(face, agreement, "stop")
    assert apply_agreement(face, agreement, "warn") == [0, 1, 2, 3]
    assert apply_agreement(face, agreement, "drop") == [0, 1, 3]
    assert error_title(ReferenceMismatchError) == "ID-EA.ReferenceMismatchError"


def test_drop_refuses_when_no_majority_agrees():
    for who in ((0, 1), (0, 0, 1, 1), (0, 1, 2)):
        face = embedding_of(people(*who))
        agreement = measure_agreement(face)
        assert agreement.odd, who
        with pytest.raises(ReferenceMismatchError, match="cannot tell which person is meant"):
            apply_agreement(face, agreement, "drop")


def test_one_photo_or_one_person_passes_untouched():
    single = embedding_of(people(0))
    crops = torch.rand(1, 8, 8, 3)
    kept, kept_crops, text = check_references(single, crops)
    assert kept is single and kept_crops is crops and "nothing to compare" in text
    same = embedding_of(people(0, 0, 0))
    kept, _, text = check_references(same, torch.rand(3, 8, 8, 3))
    assert kept is same and text.endswith(f"all 3 photos agree (threshold {THRESHOLDS[128]:.2f})")


def test_subset_equals_the_embedding_of_those_photos_alone():
    rows = people(0, 0, 1, 0)
    subset = embedding_of(rows).subset([0, 1, 3])
    alone = embedding_of(rows[[0, 1, 3]])
    assert torch.equal(subset.embeddings, alone.embeddings) and torch.equal(subset.mean, alone.mean)


# --- FaceID Embed on the real photos ---------------------------------------------------------------

@pytest.fixture(scope="module")
def real_pack(host):
    real_faces.write_real_pack(host.base / "models", "sface_yunet")
    return "sface_yunet"


def host_error(host):
    """The class as the host loaded it (the standalone `idea` package is another copy)."""
    return host.pack_module("idea.face_agreement").ReferenceMismatchError


def faceid(host, pack, names, **overrides):
    photos = to_image_tensor(*(letterbox(real_faces.load_photo(n), SIDE) for n in names))
    inputs = dict(images=photos, model_pack=pack, provider="CPU", face_selection="largest", face_index=0,
                  detection_size=640, crop_size=128, on_mismatch="stop", min_agreement=0.0)
    return host.run("IDEA_FaceIDEmbed", **{**inputs, **overrides})


def test_three_photos_of_one_person_pass_and_the_text_shows_each(host, real_pack):
    face, crops, text = faceid(host, real_pack, OBAMAS)
    agreement = measure_agreement(face)
    print("Obama x3, each with the mean of the others:", agreement.similarities)
    assert face.count == 3 and crops.shape[0] == 3 and not agreement.odd
    assert min(agreement.similarities) > THRESHOLDS[128] + 0.25  # far from the line, not just above it
    for i, s in enumerate(agreement.similarities):
        assert f"photo {i + 1}: {s:.2f} with the others, matches 2 of 2" in text


def test_another_person_is_named_with_the_similarity(host, real_pack):
    with pytest.raises(host_error(host)) as caught:
        faceid(host, real_pack, (*OBAMAS, "biden"))
    message = str(caught.value)
    print(message)
    assert "photo 4 (0." in message and "photo 1 " not in message and "photo 2 " not in message
    score = float(message.split("photo 4 (", 1)[1][:4])
    assert score < THRESHOLDS[128]
    assert "on_mismatch" in message  # names the ways out


def test_warn_keeps_every_photo_and_says_so(host, real_pack):
    face, crops, text = faceid(host, real_pack, (*OBAMAS, "biden"), on_mismatch="warn")
    assert face.count == 4 and crops.shape[0] == 4
    assert "photo 4: 0." in text and "looks like someone else" in text and "on_mismatch: warn" in text


def test_drop_gives_exactly_the_embedding_of_the_agreeing_photos(host, real_pack):
    dropped, dropped_crops, text = faceid(host, real_pack, ("obama", "biden", "obama2", "obama3"),
                                          on_mismatch="drop")
    alone, alone_crops, _ = faceid(host, real_pack, OBAMAS)
    assert torch.equal(dropped.mean, alone.mean) and torch.equal(dropped.embeddings, alone.embeddings)
    assert torch.equal(dropped_crops, alone_crops)
    assert "dropped photo 2 (0." in text and "using 3 photos" in text


def test_a_chosen_threshold_overrides_the_recogniser_default(host, real_pack):
    with pytest.raises(host_error(host), match="below 0.99"):
        faceid(host, real_pack, OBAMAS, min_agreement=0.99)

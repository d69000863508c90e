"""FaceID Embed through the real server (POST /prompt): success, and bad input that names the fix
while the server keeps working."""
from __future__ import annotations

import numpy as np
import pytest

from support import real_faces
from support.images import save_png
from support.server import PromptFailed, execution_error


@pytest.fixture(scope="module")
def face_server(server):
    real_faces.write_real_pack(server.base / "models", "sface_yunet")
    save_png(real_faces.load_photo("obama"), server.base / "input" / "obama.png")
    save_png(np.full((256, 256, 3), 128, np.uint8), server.base / "input" / "grey.png")
    return server


def embed_prompt(image: str, model_pack: str = "sface_yunet", crop_size: int = 128) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "IDEA_FaceIDEmbed",
              "inputs": {"images": ["1", 0], "model_pack": model_pack, "provider": "CPU",
                         "face_selection": "largest", "face_index": 0, "detection_size": 640,
                         "crop_size": crop_size}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 1]}},
    }


def test_object_info_lists_the_node_with_the_packs_on_disk(face_server):
    info = face_server.get("/object_info/IDEA_FaceIDEmbed")["IDEA_FaceIDEmbed"]
    assert info["display_name"] == "FaceID Embed (Face Embedding)"
    options = info["input"]["required"]["model_pack"][1]["options"]
    assert "sface_yunet" in options and "antelopev2" in options
    assert all("tooltip" in spec[1] for spec in info["input"]["required"].values())


def test_real_photo_runs_to_success_with_a_crop_preview(face_server):
    entry = face_server.run_ok(embed_prompt("obama.png"))
    images = entry["outputs"]["3"]["images"]
    assert len(images) == 1 and images[0]["filename"].endswith(".png")


def test_bad_input_is_refused_or_ends_in_an_error_that_names_the_fix(face_server):
    no_face = face_server.run(embed_prompt("grey.png"))
    assert no_face["status"]["status_str"] == "error"
    error = execution_error(no_face)
    assert error["node_type"] == "IDEA_FaceIDEmbed"
    assert "no face found in photo 1 of 1" in error["exception_message"]

    # a missing pack is refused when the prompt is queued (nothing runs), with where its files go
    with pytest.raises(PromptFailed) as refused:
        face_server.run(embed_prompt("obama.png", model_pack="antelopev2"))
    expected = face_server.base / "models" / "insightface" / "models" / "antelopev2"
    assert "answered 400" in str(refused.value)
    assert str(expected) in str(refused.value) and "sface_yunet" in str(refused.value)

    # the server is still healthy and answers the next prompt
    again = face_server.run_ok(embed_prompt("obama.png", crop_size=192))
    assert again["outputs"]["3"]["images"]

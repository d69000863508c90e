"""Face Similarity through the real server: wired after FaceID Embed, its text reaches the history."""
from __future__ import annotations

import re

import numpy as np

from support import real_faces
from support.images import save_png

PACK = "sface_yunet"


def test_similarity_after_faceid_embed_on_the_server(server):
    real_faces.write_real_pack(server.base / "models", PACK)
    save_png(real_faces.load_photo("obama"), server.base / "input" / "sim_reference.png")
    save_png(real_faces.load_photo("obama2"), server.base / "input" / "sim_same_person.png")
    save_png(np.full((300, 200, 3), 128, dtype=np.uint8), server.base / "input" / "sim_grey.png")
    face = dict(provider="CPU", detection_size=640)
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sim_reference.png"}},
        "2": {"class_type": "IDEA_FaceIDEmbed", "inputs": {
            "images": ["1", 0], "model_pack": PACK, "face_selection": "largest", "face_index": 0,
            "crop_size": 128, **face}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "sim_same_person.png"}},
        "4": {"class_type": "LoadImage", "inputs": {"image": "sim_grey.png"}},
        "5": {"class_type": "ImageBatch", "inputs": {"image1": ["3", 0], "image2": ["4", 0]}},
        "6": {"class_type": "IDEA_FaceSimilarity", "inputs": {
            "images": ["5", 0], "reference": ["2", 0], "model_pack": PACK, **face}},
    }
    entry = server.run_ok(prompt, timeout=300)
    text = entry["outputs"]["6"]["text"][0]
    match = re.fullmatch(r"image 1: (0\.\d\d), image 2: no face; mean (0\.\d\d) over 1/2 images with a face", text)
    assert match, text
    assert float(match.group(1)) > 0.6 and match.group(1) == match.group(2)

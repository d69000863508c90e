"""The API-format nodes of "a photo -> FaceID Embed -> ID-Enhancer -> Learn ID Token -> loss curve",
shared by the server tests of each base (SD1.5's checkpoint, the small FLUX's loaders)."""
from __future__ import annotations


def photo_to_identity(model: list, clip: list, vae: list, name: str, start: int, photo: str = "obama2.png",
                      steps: int = 2, batch_size: int = 2, train_enhancer: bool = True) -> dict:
    """Nodes start..start+4: LoadImage, FaceID Embed (the real SFace/YuNet pack), ID-Enhancer, Learn ID
    Token (64 px, the recipe's rate) and a PreviewImage of its loss curve. model/clip/vae: links."""
    image, face, enhancer, learn, preview = (str(start + i) for i in range(5))
    return {
        image: {"class_type": "LoadImage", "inputs": {"image": photo}},
        face: {"class_type": "IDEA_FaceIDEmbed",
               "inputs": {"images": [image, 0], "model_pack": "sface_yunet", "provider": "CPU",
                          "face_selection": "largest", "face_index": 0, "detection_size": 640, "crop_size": 128}},
        enhancer: {"class_type": "IDEA_IDEnhancer",
                   "inputs": {"face_embedding": [face, 0], "clip": clip, "num_tokens": 2, "seed": 0,
                              "train_enhancer": train_enhancer}},
        learn: {"class_type": "IDEA_LearnIDToken",
                "inputs": {"model": model, "clip": clip, "vae": vae, "images": [face, 1],
                           "identity": [enhancer, 0], "name": name, "steps": steps, "batch_size": batch_size,
                           "learning_rate": 0.0015, "seed": 0, "train_enhancer": "from identity",
                           "resolution": 64, "gradient_checkpointing": "auto", "precision": "auto",
                           "save_every": 0, "resume": False}},
        preview: {"class_type": "PreviewImage", "inputs": {"images": [learn, 1]}},
    }
